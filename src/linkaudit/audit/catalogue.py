"""Where the shipped rule catalogue is: `rules/` in a source checkout, package data
(`linkaudit/rules/`) when installed; and which rules an audit reads."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from linkaudit.config import Manifest

_PACKAGE = Path(__file__).resolve().parents[1]


def shipped_rules_dir() -> Path:
    checkout = _PACKAGE.parents[1] / "rules"
    if (_PACKAGE.parent.name == "src") and (checkout / "car_owner.yaml").exists():
        return checkout
    return _PACKAGE / "rules"


def rule_paths(manifest: Manifest, override: list[Path] | None = None) -> list[Path]:
    """The rule files or folders of an audit: `--rules`, else the manifest's, else shipped."""
    if override:
        return override
    return manifest.rules or [shipped_rules_dir()]
