"""Normalisers for registry values: each a pure scalar function plus a vectorised bulk one."""

from linkaudit.normalize.amounts import parse_amount, parse_amounts, parse_int, parse_ints
from linkaudit.normalize.dates import parse_date, parse_dates
from linkaudit.normalize.idcard import (
    ID_STATUSES,
    IdInfo,
    check_char,
    mask_id,
    mask_ids,
    normalize_id,
    normalize_ids,
    upgrade_15,
)
from linkaudit.normalize.names import (
    SURNAME_READINGS,
    normalize_name,
    normalize_names,
    pinyin_key,
)

__all__ = [
    "ID_STATUSES",
    "SURNAME_READINGS",
    "IdInfo",
    "check_char",
    "mask_id",
    "mask_ids",
    "normalize_id",
    "normalize_ids",
    "normalize_name",
    "normalize_names",
    "parse_amount",
    "parse_amounts",
    "parse_date",
    "parse_dates",
    "parse_int",
    "parse_ints",
    "pinyin_key",
    "upgrade_15",
]
