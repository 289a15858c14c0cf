"""The code's layout, checked: one executor, no import cycles, no overlong stages.

Each check compares what it finds with a listed allowance, exactly: a new offender fails the
test, and so does an offender fixed without being struck from its list (the lists only shrink).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "linkaudit"

# -- (a) one executor ------------------------------------------------------------------------

#: `.execute(` or `.sql(`: a DuckDB connection or relation run, or a sqlglot tree rendered.
EXECUTES = re.compile(r"\.(execute|sql)\(")

#: Modules outside engines/ still matching EXECUTES (link/, load.py, audit/run.py are being
#: moved to builders; none matches today).
EXECUTE_ALLOWANCE: set[str] = set()

# -- (d) SQL text only in builders -------------------------------------------------------------

#: A string that starts a SQL statement (the code writes keywords in capitals).
SQL_TEXT = re.compile(r"^\s*(SELECT|WITH|INSERT|CREATE|DELETE|UPDATE|DROP|ALTER|EXPLAIN)\b")

#: (module, function) outside engines/ holding SQL text in a function that is not a builder
#: (`*_sql`, or any function of a `*_sql.py` module): the lead's modules, still to move.
SQL_TEXT_ALLOWANCE: set[tuple[str, str]] = set()

# -- (b) import cycles -----------------------------------------------------------------------

#: Strongly connected components allowed in the import graph.
CYCLE_ALLOWANCE: set[frozenset[str]] = set()

# -- (c) stages, not scripts -----------------------------------------------------------------

MAX_FUNCTION_LINES = 80
LONG_FUNCTION_ALLOWANCE: set[tuple[str, str]] = set()


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports, at module level, in functions and under
    TYPE_CHECKING alike (a function-level import is a cycle postponed, not broken)."""
    modules = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            for target in targets:
                if target.split(".")[0] != "linkaudit":
                    continue
                found = resolve(target)
                if found and found != module:
                    graph[module].add(found)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """Tarjan's algorithm (iterative): the components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.add(frozenset(component))
    return found


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def test_only_engines_execute_sql() -> None:
    offenders = {
        _rel(path)
        for path in PACKAGE.rglob("*.py")
        if not _rel(path).startswith("engines/")
        and EXECUTES.search(path.read_text(encoding="utf-8"))
    }
    assert offenders == EXECUTE_ALLOWANCE, (
        f"new: {sorted(offenders - EXECUTE_ALLOWANCE)}; "
        f"fixed, strike from the list: {sorted(EXECUTE_ALLOWANCE - offenders)}"
    )


def sql_text_outside_builders() -> set[tuple[str, str]]:
    """(module, function) of every SQL text in a function that is not a builder."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        rel = _rel(path)
        if rel.startswith("engines/") or rel.endswith("_sql.py"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        # The innermost function holding each string constant (f-string parts included).
        owner: dict[int, str] = {}
        for function in sorted(_functions(tree), key=lambda f: f.lineno):
            for node in ast.walk(function):
                owner[id(node)] = function.name
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                function = owner.get(id(node), "<module>")
                if SQL_TEXT.match(node.value) and not function.endswith("_sql"):
                    found.add((rel, function))
    return found


def test_sql_text_only_in_builders() -> None:
    offenders = sql_text_outside_builders()
    assert offenders == SQL_TEXT_ALLOWANCE, (
        f"new: {sorted(offenders - SQL_TEXT_ALLOWANCE)}; "
        f"fixed, strike from the list: {sorted(SQL_TEXT_ALLOWANCE - offenders)}"
    )


def test_no_import_cycles() -> None:
    cycles = strongly_connected(import_graph())
    assert cycles == CYCLE_ALLOWANCE, (
        f"new: {[sorted(c) for c in cycles - CYCLE_ALLOWANCE]}; "
        f"gone, strike from the list: {[sorted(c) for c in CYCLE_ALLOWANCE - cycles]}"
    )


def test_the_cycle_finder_finds_a_function_level_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert strongly_connected(graph) == {frozenset({"a", "b", "c"})}
    # The package's own graph sees imports inside functions (outputs -> workbook was one).
    assert "linkaudit.report.workbook" in import_graph()["linkaudit.report.outputs"]


def test_no_overlong_functions_in_link_and_audit() -> None:
    long = set()
    for folder in ("link", "audit"):
        for path in (PACKAGE / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for function in _functions(tree):
                assert function.end_lineno is not None
                if function.end_lineno - function.lineno + 1 > MAX_FUNCTION_LINES:
                    long.add((_rel(path), function.name))
    assert long == LONG_FUNCTION_ALLOWANCE, (
        f"new: {sorted(long - LONG_FUNCTION_ALLOWANCE)}; "
        f"fixed, strike from the list: {sorted(LONG_FUNCTION_ALLOWANCE - long)}"
    )
