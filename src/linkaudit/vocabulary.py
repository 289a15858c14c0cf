"""Shared names that several layers must spell the same way. A leaf: imports nothing of ours.

ID statuses (the `id_status` column of every `reg_<registry>` table, see normalize.idcard):
- ``valid``: 18 characters, known province, real birth date not after the audit date, check
  character right.
- ``upgraded_15``: a correct old 15-digit number, stored in its 18-digit form.
- ``bad_checksum``: shaped and dated like a valid number but the check character is wrong
  (a typo somewhere): the linker may still use it, as a suspect.
- ``malformed``: not an ID number (wrong length, impossible date, unknown province code ...).
- ``future_birth``: a real birth date after the audit's reference date (or today).
- ``float_damaged``: the number went through a floating-point cell or scientific notation
  (``4.50124198703021e+17``), so its last digits are lost: never linked on.
- ``missing``: blank or a placeholder (``无``, ``不详``, ``null``, ``-`` ...).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

__all__ = [
    "DATE_PRECISIONS",
    "ID_STATUSES",
    "TRUSTED_ID_STATUSES",
    "header_synonyms",
    "rule_vocabulary",
]

ID_STATUSES = (
    "valid",
    "upgraded_15",
    "bad_checksum",
    "malformed",
    "future_birth",
    "float_damaged",
    "missing",
)

#: Statuses whose number identifies a person (duplicate registrations, entity resolution).
TRUSTED_ID_STATUSES = ("valid", "upgraded_15")

#: Precision of a parsed date, stored in `<field>_precision`; the date is the period's first day.
DATE_PRECISIONS = ("day", "month", "year")


def _data(name: str) -> Any:
    text = resources.files("linkaudit").joinpath("data", name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


@cache
def rule_vocabulary() -> dict[str, frozenset[str]]:
    """Per canonical field, the values the shipped rules know (data/vocabulary.yaml)."""
    return {
        f: frozenset(str(v) for v in vs) for f, vs in _data("vocabulary.yaml")["fields"].items()
    }


@cache
def header_synonyms() -> dict[str, dict[str, tuple[str, ...]]]:
    """Per registry kind (`any`: every registry), per canonical field (and `key`, `household`),
    the headers departments use for it, most likely first (data/headers.yaml)."""
    return {
        kind: {f: tuple(str(h) for h in hs) for f, hs in fields.items()}
        for kind, fields in _data("headers.yaml").items()
    }
