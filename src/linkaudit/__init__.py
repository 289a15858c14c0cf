"""linkaudit: link a welfare register against other departments' registries and flag
ineligible beneficiaries.

The library is usable without the CLI::

    from linkaudit import load_manifest, load_workspace
    manifest = load_manifest("sample_data/mashan/linkaudit.yaml")
    report = load_workspace(manifest)
"""

from linkaudit.config import Manifest, RegistryConfig, load_manifest
from linkaudit.errors import LinkauditError
from linkaudit.load import LoadReport, load_workspace
from linkaudit.store import Workspace

__version__ = "0.1.0"

__all__ = [
    "LinkauditError",
    "LoadReport",
    "Manifest",
    "RegistryConfig",
    "Workspace",
    "__version__",
    "load_manifest",
    "load_workspace",
]
