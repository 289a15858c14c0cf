"""Keeping personal data out of what people read: ID-shaped values masked in every output and
message, CSV cells that a spreadsheet would run as formulas neutralised, temp files private.

An *ID-shaped* value is 15 digits, or 17 digits and a check digit or X (either case), standing
alone (not inside a longer run of letters and digits); runs of 16, 17 and 19 digits (an ID with
a digit lost or doubled) count too. It is masked as the ID column is: the
region (first six) and the last four stay, the middle becomes stars — '450124********123X'.
Record keys, household keys and evidence fields often hold ID numbers (a register with no other
key), so masking is applied to every text cell and message, not to the ID column alone.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from linkaudit.audit.rules import Rule
    from linkaudit.config import Manifest
    from linkaudit.engines.base import Engine

# An ID standing alone: not glued to ASCII letters, digits or '_'. Beyond the 15- and
# 18-character forms, a run of 16, 17 or 19 digits (an ID with a digit lost or doubled) and an
# 18-character ID with one letter typed for a digit ('45O124...') are masked too: the invalid_id
# rule lists exactly those, and they are still that person's ID.
_TOKEN_RE = re.compile(r"(?<![0-9A-Za-z_])[0-9A-Za-z]{15,19}(?![0-9A-Za-z_])")
_ID_FORMS = re.compile(
    r"[0-9]{15,19}|[0-9]{17}[Xx]|(?=[0-9]*[A-Za-z][0-9]*[0-9Xx]$)[0-9A-Za-z]{18}"
)


def _typo_alternatives() -> list[str]:
    """An 18-character ID with one letter at position p (0-16), head (6) and tail (4) grouped."""
    out = []
    for p in range(17):
        if p < 6:
            out.append(f"([0-9]{{{p}}}[A-Za-z][0-9]{{{5 - p}}})[0-9]{{8}}([0-9]{{3}}[0-9Xx])")
        elif p < 14:
            out.append(f"([0-9]{{6}})[0-9]{{{p - 6}}}[A-Za-z][0-9]{{{13 - p}}}([0-9]{{3}}[0-9Xx])")
        else:
            out.append(f"([0-9]{{6}})[0-9]{{8}}([0-9]{{{p - 14}}}[A-Za-z][0-9]{{{16 - p}}}[0-9Xx])")
    return out


# The same for polars and DuckDB (Rust regex and RE2 have no look-around; an ASCII word boundary
# is the same test), one pattern per length so that the stars keep the length; the typo forms in
# one alternation whose unmatched groups expand to nothing.
_B = r"(?-u:\b)"
_TYPOS = _typo_alternatives()
_ID_PL = [
    (rf"{_B}([0-9]{{6}})[0-9]{{{n - 10}}}([0-9]{{4}}){_B}", "${1}" + "*" * (n - 10) + "${2}")
    for n in range(15, 20)
] + [
    (rf"{_B}([0-9]{{6}})[0-9]{{8}}([0-9]{{3}}[Xx]){_B}", "${1}********${2}"),
    (
        rf"{_B}(?:{'|'.join(_TYPOS)}){_B}",
        "".join(f"${{{2 * i + 1}}}" for i in range(len(_TYPOS)))
        + "********"
        + "".join(f"${{{2 * i + 2}}}" for i in range(len(_TYPOS))),
    ),
]
_ID_ANY_PL = rf"{_B}(?:[0-9]{{15,19}}|[0-9]{{17}}[Xx]|{'|'.join(_TYPOS)}){_B}"
# DuckDB (RE2): a search for an ID standing alone, for counting which columns hold IDs (the
# plain forms: a column of IDs is told by its valid ones, and this pattern is much cheaper).
_ID_SQL = r"(^|[^0-9A-Za-z_])([0-9]{15,19}|[0-9]{17}[Xx])($|[^0-9A-Za-z_])"

# Leading characters that make a spreadsheet read a cell as a formula (OWASP CSV injection):
# = + - @, tab and carriage return.
_FORMULA_LEAD_PL = r"^[=+\-@\t\r]"

TMP_PREFIX = ".linkaudit-tmp-"
_WHOLE_NUMBER_TYPES = frozenset({"BIGINT", "HUGEINT", "UBIGINT", "UHUGEINT", "DECIMAL(18,0)"})


# -- masking ---------------------------------------------------------------------------------


def _mask_match(m: re.Match[str]) -> str:
    text = m.group(0)
    if not _ID_FORMS.fullmatch(text):
        return text
    return text[:6] + "*" * (len(text) - 10) + text[-4:]


def mask_text(text: str) -> str:
    """Every ID-shaped part of a text masked: 'P 450124199001011234' → 'P 450124********1234'."""
    return _TOKEN_RE.sub(_mask_match, text)


def has_id(text: str) -> bool:
    return any(_ID_FORMS.fullmatch(m.group(0)) for m in _TOKEN_RE.finditer(text))


def mask_value(value: Any) -> Any:
    """mask_text through strings, lists, tuples and dicts (e.g. a JSON answer); others as is."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(mask_value(v) for v in value)
    return value


def mask_expr(expr: pl.Expr) -> pl.Expr:
    """Vectorised mask_text for a text expression."""
    masked = expr
    for pattern, replacement in _ID_PL:
        masked = masked.str.replace_all(pattern, replacement)
    # Most cells hold no ID: the guard keeps them from going through six replacements.
    return pl.when(expr.str.contains(_ID_ANY_PL)).then(masked).otherwise(expr)


def mask_sql(column_sql: str) -> str:
    """mask_text in DuckDB SQL (RE2's \\b is the ASCII word boundary, as above; RE2 rewrites
    know groups \\1-\\9 only, so each typo form is its own replacement)."""
    patterns = [(p, r) for p, r in _ID_PL[:-1]] + [
        (rf"{_B}{alt}{_B}", "${1}********${2}") for alt in _TYPOS
    ]
    out = column_sql
    for pattern, replacement in patterns:
        re2 = pattern.replace(_B, r"\b")
        rewrite = replacement.replace("${1}", "\\1").replace("${2}", "\\2")
        out = f"regexp_replace({out}, '{re2}', '{rewrite}', 'g')"
    return out


def _text_columns(frame: pl.DataFrame) -> list[str]:
    return [name for name, dtype in frame.schema.items() if dtype in (pl.Utf8, pl.Categorical)]


def mask_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Every text column with its ID-shaped parts masked (numbers and dates untouched)."""
    cols = _text_columns(frame)
    if not cols:
        return frame
    return frame.with_columns(mask_expr(pl.col(c).cast(pl.Utf8)) for c in cols)


def neutralise_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Text cells starting with = + - @ tab or CR get a leading ' so that a spreadsheet opening
    the CSV shows them as text instead of running them. Numeric columns are left alone: a
    negative amount is a number, not a formula."""
    cols = _text_columns(frame)
    if not cols:
        return frame
    return frame.with_columns(
        pl.when(pl.col(c).cast(pl.Utf8).str.contains(_FORMULA_LEAD_PL))
        .then(pl.lit("'") + pl.col(c).cast(pl.Utf8))
        .otherwise(pl.col(c).cast(pl.Utf8))
        .alias(c)
        for c in cols
    )


def undo_neutralised(expr: pl.Expr) -> pl.Expr:
    """A text column read back from a CSV written by neutralise_formulas, the added ' gone."""
    return pl.when(expr.str.contains(r"^'[=+\-@\t\r]")).then(expr.str.slice(1)).otherwise(expr)


# -- telling the user which keys and fields hold ID numbers ----------------------------------


def id_counts_sql(table: str, columns: list[tuple[str, bool]]) -> str:
    """One count per column of `table`: its values that hold an ID number. A text column
    (`True`) is matched against the ID pattern; a number column holds one when it has 15
    digits or more (an ID read as a number)."""
    from linkaudit.store import quote_ident, quote_literal

    pattern = quote_literal(_ID_SQL)
    counts = [
        # Length first (CASE: AND does not short-circuit): most keys are short codes,
        # and the regex never sees them.
        f"count(*) FILTER (WHERE CASE WHEN length({quote_ident(c)}) >= 15 "
        f"THEN regexp_matches({quote_ident(c)}, {pattern}) ELSE false END)"
        if text
        else f"count(*) FILTER (WHERE {quote_ident(c)} >= 100000000000000)"
        for c, text in columns
    ]
    return f"SELECT {', '.join(counts)} FROM {quote_ident(table)}"


def id_column_warnings(ws: Engine, manifest: Manifest, rules: Iterable[Rule]) -> list[str]:
    """One warning per record key, household key or rule evidence field whose values hold ID
    numbers: they are masked in every output, which the user should know (a key masked in the
    spreadsheet is no longer a key they can look up; the case id is)."""
    from linkaudit.store import table_name

    evidence: dict[str, dict[str, list[str]]] = {}
    for rule in rules:
        for f in rule.evidence:
            evidence.setdefault(rule.registry, {}).setdefault(f, []).append(rule.id)
    warnings: list[str] = []
    for reg in manifest.registries.values():
        table = table_name("reg", reg.name)
        if not ws.has_table(table):
            continue
        types = ws.column_types(table)
        # Text holds IDs; so may a whole-number column (an ID read as a number). Dates,
        # amounts and flags cannot, and are not scanned.
        have = {c for c, t in types.items() if t == "VARCHAR" or t in _WHOLE_NUMBER_TYPES}
        checks: list[tuple[str, str]] = []  # (column in the table, what to say)
        if reg.key and "_key" in have:
            checks.append(
                (
                    "_key",
                    f"registry {reg.name!r}: the record key column {reg.key!r} holds ID numbers",
                )
            )
        if reg.household and "household" in have:
            checks.append(
                (
                    "household",
                    f"registry {reg.name!r}: the household key column {reg.household!r} holds "
                    "ID numbers",
                )
            )
        for f, rule_ids in evidence.get(reg.name, {}).items():
            if f in have:
                source = reg.fields.get(f, f)
                checks.append(
                    (
                        f,
                        f"registry {reg.name!r}: field {f!r} (column {source!r}), evidence of rule "
                        f"{', '.join(sorted(set(rule_ids)))}, holds ID numbers",
                    )
                )
        if not checks:
            continue
        counts = ws.row(id_counts_sql(table, [(c, types[c] == "VARCHAR") for c, _ in checks]))
        for (_, what), n in zip(checks, counts or (), strict=True):
            if n:
                warnings.append(
                    f"{what} ({int(n):,} values): they are masked (region and last four kept) in "
                    "every output; use the case id (疑点编号) to refer to a case"
                )
    return warnings


# -- private temp folders --------------------------------------------------------------------


@contextmanager
def private_tmpdir(*bases: Path) -> Iterator[Path]:
    """A folder only we can read (0700), `.linkaudit-tmp-<pid>-...`, in the first of `bases`
    that is writable; removed with everything in it on every way out (success, error,
    Ctrl-C). A kill -9 leaves it behind: remove_stale_tmpdirs clears it on the next run."""
    last: OSError | None = None
    path: Path | None = None
    for base in bases:
        try:
            base.mkdir(parents=True, exist_ok=True)
            path = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", dir=base))
            break
        except OSError as exc:  # e.g. a read-only parent folder: try the next one
            last = exc
    if path is None:
        assert last is not None
        raise last
    try:
        os.chmod(path, 0o700)  # mkdtemp's default; said again because it is the point
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _owner_alive(name: str) -> bool:
    """Whether the process that made a temp folder (pid in its name) is still running."""
    pid_text = name[len(TMP_PREFIX) :].split("-", 1)[0]
    if not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours to signal
        return True
    return True


def remove_stale_tmpdirs(folders: Iterable[Path], started: float | None = None) -> list[Path]:
    """Remove `.linkaudit-tmp-*` folders left by a killed run: made before `started` (the
    current run's start, default now) by a process that is no longer running."""
    cutoff = time.time() if started is None else started
    removed: list[Path] = []
    for folder in folders:
        try:
            entries = list(folder.glob(f"{TMP_PREFIX}*"))
        except OSError:
            continue
        for path in entries:
            try:
                if not path.is_dir() or path.is_symlink() or path.stat().st_mtime >= cutoff:
                    continue
            except OSError:
                continue
            if _owner_alive(path.name):
                continue
            shutil.rmtree(path, ignore_errors=True)
            if not path.exists():
                removed.append(path)
    return removed
