"""Engines: the only code that executes SQL (DuckDB, Spark)."""
