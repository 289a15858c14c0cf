"""Where the shipped rule catalogue is: `rules/` in a source checkout, package data
(`linkaudit/rules/`) when installed; and which rule files an audit reads (light: the
unchanged-rerun check hashes them without loading the rule models)."""

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


def rule_files(paths: list[Path]) -> list[Path]:
    """YAML files named by paths (folders are searched, sorted for a stable order)."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(q for q in p.iterdir() if q.suffix in (".yaml", ".yml"))
        else:
            files.append(p)
    return files
