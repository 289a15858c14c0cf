"""Parse a column once per distinct value, not once per row.

A registry column holds few distinct values (years, household sizes, dates, amounts repeat
across hundreds of thousands of rows), and each parser runs regular expressions per value. The
parsers are element-wise, so parsing the distinct (value, numeric-cell) pairs and joining the
results back to the rows gives the same frame, in the same order, for a fraction of the work.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

__all__ = ["per_distinct"]

# A column with more distinct values than this share of its rows is parsed row by row: the
# hashing and the join back would cost more than they save (ID numbers are all distinct).
_MOSTLY_DISTINCT = 0.5
_VALUE = "__distinct_value"
_CELL = "__distinct_cell"

Parse = Callable[[pl.Series, "pl.Series | None"], pl.DataFrame]


def per_distinct(parse: Parse, s: pl.Series, numeric: pl.Series | None = None) -> pl.DataFrame:
    """``parse(s, numeric)``, computed on the distinct (value, numeric) pairs of ``s``.

    ``parse`` must be element-wise: each output row a function of its input value and its
    numeric flag alone. Only text and integer columns go through the distinct values: a float
    key would merge -0.0 with 0.0, which a parser may tell apart.
    """
    if not (s.dtype == pl.Utf8 or s.dtype.is_integer()) or len(s) < 2:
        return parse(s, numeric)
    keys = [_VALUE]
    columns = {_VALUE: s}
    if numeric is not None:
        # As every parser reads the mask: a missing flag is not a numeric cell.
        columns[_CELL] = numeric.cast(pl.Boolean).fill_null(False)
        keys.append(_CELL)
    rows = pl.DataFrame(columns)
    distinct = rows.unique()
    if distinct.height > _MOSTLY_DISTINCT * rows.height:
        return parse(s, numeric)
    parsed = parse(
        distinct.get_column(_VALUE).alias(s.name),
        distinct.get_column(_CELL) if numeric is not None else None,
    )
    lookup = distinct.hstack(parsed)
    return rows.join(lookup, on=keys, how="left", maintain_order="left", nulls_equal=True).drop(
        keys
    )
