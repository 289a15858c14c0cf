"""Normalisers for registry values: each a pure scalar function plus a vectorised bulk one."""

from linkaudit.normalize.amounts import (
    parse_amount,
    parse_amounts,
    parse_int,
    parse_ints,
    read_amounts,
    read_ints,
)
from linkaudit.normalize.dates import DateValue, parse_date, parse_dates, read_date, read_dates
from linkaudit.normalize.idcard import (
    ID_PLACEHOLDERS,
    ID_STATUSES,
    PROVINCE_CODES,
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
    "ID_PLACEHOLDERS",
    "ID_STATUSES",
    "PROVINCE_CODES",
    "SURNAME_READINGS",
    "DateValue",
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
    "read_amounts",
    "read_date",
    "read_dates",
    "read_ints",
    "upgrade_15",
]
