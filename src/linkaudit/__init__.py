"""linkaudit: link a welfare register against other departments' registries and flag
ineligible beneficiaries.

The library is usable without the CLI::

    from linkaudit import load_manifest, run_audit
    manifest = load_manifest("sample_data/mashan/linkaudit.yaml")
    result = run_audit(manifest)          # load + link + rules + outputs
    result.summary["rules"]["car_owner"]  # {'persons': ..., 'households': ..., ...}
"""

from linkaudit._version import __version__
from linkaudit.audit.run import AuditResult, run_audit
from linkaudit.config import Manifest, RegistryConfig, load_manifest
from linkaudit.errors import LinkauditError
from linkaudit.evaluate import EvalReport, evaluate_links
from linkaudit.link.engine import LinkReport, link_workspace
from linkaudit.load import LoadReport, load_workspace
from linkaudit.store import Workspace

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
