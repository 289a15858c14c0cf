"""linkaudit: link a welfare register against other departments' registries and flag
ineligible beneficiaries.

The library is usable without the CLI::

    from linkaudit import load_manifest, run_audit
    manifest = load_manifest("sample_data/mashan/linkaudit.yaml")
    result = run_audit(manifest)          # load + link + rules + outputs
    result.summary["rules"]["car_owner"]  # {'persons': ..., 'households': ..., ...}

The public names are imported on first use (PEP 562), so that `linkaudit --help` and
`--version` do not load polars, DuckDB and the pinyin dictionaries.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from linkaudit._version import __version__

#: Public name -> module that defines it.
_PUBLIC = {
    "AuditResult": "linkaudit.audit.run",
    "run_audit": "linkaudit.audit.run",
    "Manifest": "linkaudit.config",
    "RegistryConfig": "linkaudit.config",
    "load_manifest": "linkaudit.config",
    "LinkauditError": "linkaudit.errors",
    "EvalReport": "linkaudit.evaluate",
    "evaluate_links": "linkaudit.evaluate",
    "LinkReport": "linkaudit.link.engine",
    "link_workspace": "linkaudit.link.engine",
    "LoadReport": "linkaudit.load",
    "load_workspace": "linkaudit.load",
    "Workspace": "linkaudit.engines.duckdb",
}

__all__ = [
    "AuditResult",
    "EvalReport",
    "LinkReport",
    "LinkauditError",
    "LoadReport",
    "Manifest",
    "RegistryConfig",
    "Workspace",
    "__version__",
    "evaluate_links",
    "link_workspace",
    "load_manifest",
    "load_workspace",
    "run_audit",
]

if TYPE_CHECKING:
    from linkaudit.audit.run import AuditResult, run_audit
    from linkaudit.config import Manifest, RegistryConfig, load_manifest
    from linkaudit.engines.duckdb import Workspace
    from linkaudit.errors import LinkauditError
    from linkaudit.evaluate import EvalReport, evaluate_links
    from linkaudit.link.engine import LinkReport, link_workspace
    from linkaudit.load import LoadReport, load_workspace


assert sorted(_PUBLIC) == [n for n in __all__ if n != "__version__"]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'linkaudit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
