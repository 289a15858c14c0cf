"""Where the shipped rule catalogue is: `rules/` in a source checkout, package data
(`linkaudit/rules/`) when installed."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]


def shipped_rules_dir() -> Path:
    checkout = _PACKAGE.parents[1] / "rules"
    if (_PACKAGE.parent.name == "src") and (checkout / "car_owner.yaml").exists():
        return checkout
    return _PACKAGE / "rules"
