"""Reading department files: readers, canonical columns, profiles and manifest drafts."""

#: Rows of a file whose values `inspect` and `init` sniff (headers are read in full).
SAMPLE_ROWS = 10_000
