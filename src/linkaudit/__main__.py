from linkaudit.cli import main

main()
