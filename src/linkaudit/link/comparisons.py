"""Comparisons: small named pieces that turn a candidate pair into an ordered agreement level.

Each comparison is a SQL CASE expression over the beneficiary row `l` and the department row
`r` that yields a level index (0 = strongest agreement) or NULL when it cannot be compared
(a value missing). Levels are named so that `explain` can say what agreed. The SQL is built by
pure functions and is portable (DuckDB functions only where noted).
"""

from __future__ import annotations

import functools
import operator
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    field_validator,
)

from linkaudit.store import quote_ident


@dataclass(frozen=True)
class Level:
    label: str
    condition: str  # SQL boolean over l.* and r.*
    #: A level that, for true matches, should essentially never occur (two valid, different
    #: IDs); its m probability is floored very low rather than estimated up from noise.
    rare_for_matches: bool = False
    #: Upper bound of u for levels two different people essentially never reach (the same
    #: valid citizen ID). Random pairs cannot measure so small a u: the few true matches among
    #: them dominate it, and the link would lean on the prior instead of on the ID.
    u_cap: float | None = None
    #: Lower bound of m for disagreement levels that true matches do show in real data even
    #: when a sample has none (people move house): keeps one field from vetoing a link.
    m_floor: float | None = None


@dataclass(frozen=True)
class Comparison:
    """An ordered list of levels; the first whose condition holds is the pair's level."""

    name: str
    columns: tuple[str, ...]
    levels: tuple[Level, ...]
    null_condition: str
    #: Column whose value frequency adjusts the weight of level 0 (term-frequency adjustment).
    tf_column: str | None = None
    description: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    def level_sql(self) -> str:
        parts = [f"WHEN {self.null_condition} THEN NULL"]
        parts += [f"WHEN {lvl.condition} THEN {i}" for i, lvl in enumerate(self.levels[:-1])]
        return f"CASE {' '.join(parts)} ELSE {len(self.levels) - 1} END"

    @property
    def labels(self) -> list[str]:
        return [lvl.label for lvl in self.levels]


def _c(side: str, column: str) -> str:
    return f"{side}.{quote_ident(column)}"


def citizen_id() -> Comparison:
    """Citizen ID agreement, falling back to birth dates when either side has no usable ID.

    Every single-digit typo and every adjacent transposition breaks the MOD 11-2 check, so a
    near-miss counts only when one side fails its check; two valid numbers that differ belong
    to two people, however close they are. The near-miss levels are single edits of the whole
    18-character number, exactly: a typo in the first 17 characters keeps the check character,
    a typo in the check character keeps the 17-character prefix, an adjacent swap (positions
    17-18 included) is one edit. A prefix one digit off *and* another check character is two
    edits (a neighbouring county's resident, typically) and falls to "id different".
    """
    l17 = "substr(l.id_number, 1, 17)"
    r17 = "substr(r.id_number, 1, 17)"
    l18 = "l.id_number"
    r18 = "r.id_number"
    both = "l.id_usable AND r.id_usable"
    one_bad = "(l.id_suspect OR r.id_suspect)"
    no_id = "NOT (l.id_usable AND r.id_usable)"
    birth_str_l = "strftime(l.birth_date, '%Y%m%d')"
    birth_str_r = "strftime(r.birth_date, '%Y%m%d')"
    same_length = f"length({l18}) = 18 AND length({r18}) = 18"
    levels = (
        Level("id exact", f"{both} AND l.id_number = r.id_number", u_cap=1e-9),
        Level(
            "id check character typo",
            f"{both} AND {one_bad} AND {same_length} AND {l17} = {r17}",
            u_cap=1e-8,
        ),
        Level(
            "id one digit mistyped",
            f"{both} AND {one_bad} AND {same_length} AND hamming({l18}, {r18}) = 1 "
            f"AND substr({l18}, 18, 1) = substr({r18}, 18, 1)",
            u_cap=1e-8,
        ),
        Level(
            "id two digits transposed",
            f"{both} AND {one_bad} AND {same_length} AND hamming({l18}, {r18}) = 2 "
            f"AND damerau_levenshtein({l18}, {r18}) = 1",
            u_cap=1e-8,
        ),
        Level("no id, birth date exact", f"{no_id} AND l.birth_date = r.birth_date"),
        Level(
            "no id, birth date one digit off",
            f"{no_id} AND levenshtein({birth_str_l}, {birth_str_r}) = 1",
        ),
        Level("no id, birth date differs", f"{no_id}"),
        Level("id different", "TRUE", rare_for_matches=True),
    )
    null = "NOT (l.id_usable AND r.id_usable) AND (l.birth_date IS NULL OR r.birth_date IS NULL)"
    return Comparison(
        "citizen_id",
        ("id_number", "id_usable", "id_suspect", "birth_date"),
        levels,
        null,
        description="citizen ID (birth date when either ID is missing)",
    )


_MAX_NAME = 8


def _char_mismatches(a: str, b: str) -> str:
    """Positions where two equal-length names differ, counted on characters (DuckDB's
    levenshtein counts UTF-8 bytes, so one Chinese character would count as up to three)."""
    terms = [f"(substr({a}, {i}, 1) <> substr({b}, {i}, 1))::INT" for i in range(1, _MAX_NAME + 1)]
    return "(" + " + ".join(terms) + ")"


def _alternate_pinyin(name: str, pinyin: str) -> str:
    """The pinyin key read with the surname's other common reading (覃 qin -> tan), NULL for
    a surname with one reading (the table is `normalize.names.SURNAME_ALTERNATE_READINGS`)."""
    # Imported here: the manifest's models import this module, and the normalisers bring
    # polars and opencc, which an unchanged rerun (audit.rerun) never needs.
    from linkaudit.normalize.names import surname_alternates

    whens = " ".join(
        f"WHEN left({name}, 1) = '{ch}' AND starts_with({pinyin}, '{main} ') "
        f"THEN '{alt} ' || substr({pinyin}, {len(main) + 2})"
        for ch, (main, alt) in sorted(surname_alternates().items())
    )
    return f"CASE {whens} END"


def chinese_name(column: str = "name", pinyin: str = "name_pinyin") -> Comparison:
    """Chinese names: exact, homophone (same toneless pinyin, a surname with two common
    readings matching under either), one character off, similar."""
    lc, rc, lp, rp = _c("l", column), _c("r", column), _c("l", pinyin), _c("r", pinyin)
    homophone = (
        f"{lp} = {rp} OR {_alternate_pinyin(lc, lp)} = {rp} OR {lp} = {_alternate_pinyin(rc, rp)}"
    )
    levels = (
        Level("name exact", f"{lc} = {rc}"),
        Level("name homophone", homophone),
        Level(
            "name one character off",
            # In a two-character name one character off leaves only the surname: not evidence.
            f"length({lc}) = length({rc}) AND length({lc}) BETWEEN 3 AND {_MAX_NAME} "
            f"AND {_char_mismatches(lc, rc)} = 1",
        ),
        # Two-character names sharing one character share little more than a surname; a level
        # of its own lets EM weigh it (weak, yet enough beside an exact ID for a look-alike).
        Level(
            "name one of two characters off",
            f"length({lc}) = 2 AND length({rc}) = 2 AND {_char_mismatches(lc, rc)} = 1",
        ),
        Level("name pinyin similar", f"jaro_winkler_similarity({lp}, {rp}) >= 0.9"),
        Level("name differs", "TRUE"),
    )
    return Comparison(
        f"{column}",
        (column, pinyin),
        levels,
        f"{lc} IS NULL OR {rc} IS NULL",
        tf_column=column,
        description="Chinese name on characters and toneless pinyin",
    )


def _banded(column: str, bands: list[tuple[str, str]], tf: bool, description: str) -> Comparison:
    """exact, then the given (label, SQL over lc/rc) bands, then differs."""
    lc, rc = _c("l", column), _c("r", column)
    levels = [Level(f"{column} exact", f"{lc} = {rc}")]
    levels += [Level(f"{column} {label}", cond.format(l=lc, r=rc)) for label, cond in bands]
    levels.append(Level(f"{column} differs", "TRUE"))
    return Comparison(
        column,
        (column,),
        tuple(levels),
        f"{lc} IS NULL OR {rc} IS NULL",
        tf_column=column if tf else None,
        description=description,
    )


def string(
    column: str, thresholds: tuple[float, ...] = (0.92, 0.8), tf: bool = False
) -> Comparison:
    """Generic text: exact, then Jaro-Winkler similarity bands."""
    bands = [
        (f"jaro-winkler >= {t}", f"jaro_winkler_similarity({{l}}, {{r}}) >= {t}")
        for t in thresholds
    ]
    return _banded(column, bands, tf, f"text {column}")


def exact(column: str, tf: bool = False) -> Comparison:
    return _banded(column, [], tf, f"exact {column}")


def edit_distance(column: str, distances: tuple[int, ...] = (1, 2), tf: bool = False) -> Comparison:
    """Codes and numbers typed by hand: exact, then Damerau-Levenshtein distance bands."""
    bands = [(f"within {d} edits", f"damerau_levenshtein({{l}}, {{r}}) <= {d}") for d in distances]
    return _banded(column, bands, tf, f"edit distance on {column}")


def date(column: str = "birth_date") -> Comparison:
    lc, rc = _c("l", column), _c("r", column)
    ls, rs = f"strftime({lc}, '%Y%m%d')", f"strftime({rc}, '%Y%m%d')"
    levels = (
        Level(f"{column} exact", f"{lc} = {rc}"),
        Level(f"{column} one digit off", f"levenshtein({ls}, {rs}) = 1"),
        Level(f"{column} same year", f"year({lc}) = year({rc})"),
        Level(f"{column} differs", "TRUE"),
    )
    return Comparison(
        column, (column,), levels, f"{lc} IS NULL OR {rc} IS NULL", description=f"date {column}"
    )


def residence(address: str = "address") -> Comparison:
    """The department's address text against the beneficiary's township and village."""
    ra = _c("r", address)
    lt, lv = _c("l", "township"), _c("l", "village")
    levels = (
        Level("address in the same village", f"contains({ra}, {lv}) AND contains({ra}, {lt})"),
        Level("address in the same township", f"contains({ra}, {lt})"),
        Level("address elsewhere", "TRUE", m_floor=0.02),
    )
    return Comparison(
        "residence",
        (address, "township", "village"),
        levels,
        f"{ra} IS NULL OR {lt} IS NULL OR {lv} IS NULL",
        description="department address vs registered township and village",
    )


# -- the comparator registry ----------------------------------------------------------------
#
# A comparator is one settings model (its manifest keys, typed, unknown keys rejected) whose
# `build()` returns the Comparison; `COMPARATORS` lists them. Adding a comparator is one class
# here and one entry in `_REGISTERED`: manifest validation, the discriminated union on
# `comparator` and the linker all read this table.

#: A canonical field name as a comparison setting (the column is quoted when SQL is built).
FieldName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
#: A Jaro-Winkler similarity band's lower bound.
Similarity = Annotated[float, Field(gt=0, le=1)]
#: An edit-distance band's upper bound.
Distance = Annotated[int, Field(ge=1)]


class ComparatorSettings(BaseModel):
    """The manifest form of one comparison; `comparator` picks the subclass."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    comparator: str
    #: Settings whose value names a canonical field of the beneficiaries registry.
    field_keys: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def build(self) -> Comparison:
        """The comparison these settings describe (each comparator's own SQL levels)."""


class CitizenIdSettings(ComparatorSettings):
    """citizen ID with birth-date fallback (uses id_number, id_usable, id_suspect, birth_date)"""

    comparator: Literal["citizen_id"]

    def build(self) -> Comparison:
        return citizen_id()


class ChineseNameSettings(ComparatorSettings):
    """Chinese name: exact, homophone, one character off, pinyin similar"""

    comparator: Literal["chinese_name"]
    field: FieldName = "name"
    pinyin: FieldName = "name_pinyin"
    field_keys: ClassVar[tuple[str, ...]] = ("field", "pinyin")

    def build(self) -> Comparison:
        return chinese_name(self.field, self.pinyin)


def _strictly(values: tuple[Any, ...], decreasing: bool, what: str) -> tuple[Any, ...]:
    pairs = list(zip(values, values[1:], strict=False))
    if any((a <= b) if decreasing else (a >= b) for a, b in pairs):
        order = "decreasing" if decreasing else "increasing"
        # A band after a looser one is never reached: the first level that holds wins.
        raise ValueError(f"{what} must be strictly {order} (a later band would never be reached)")
    return values


class StringSettings(ComparatorSettings):
    """text: exact, then Jaro-Winkler bands (thresholds: [0.92, 0.8])"""

    comparator: Literal["string"]
    field: FieldName
    thresholds: tuple[Similarity, ...] = (0.92, 0.8)
    tf: bool = False
    field_keys: ClassVar[tuple[str, ...]] = ("field",)

    @field_validator("thresholds")
    @classmethod
    def _decreasing(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        return _strictly(value, True, "thresholds")

    def build(self) -> Comparison:
        return string(self.field, self.thresholds, self.tf)


class ExactSettings(ComparatorSettings):
    """exact equality"""

    comparator: Literal["exact"]
    field: FieldName
    tf: bool = False
    field_keys: ClassVar[tuple[str, ...]] = ("field",)

    def build(self) -> Comparison:
        return exact(self.field, self.tf)


class EditDistanceSettings(ComparatorSettings):
    """exact, then Damerau-Levenshtein bands (distances: [1, 2])"""

    comparator: Literal["edit_distance"]
    field: FieldName
    distances: tuple[Distance, ...] = (1, 2)
    tf: bool = False
    field_keys: ClassVar[tuple[str, ...]] = ("field",)

    @field_validator("distances")
    @classmethod
    def _increasing(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        return _strictly(value, False, "distances")

    def build(self) -> Comparison:
        return edit_distance(self.field, self.distances, self.tf)


class DateSettings(ComparatorSettings):
    """date: exact, one digit off, same year"""

    comparator: Literal["date"]
    field: FieldName = "birth_date"
    field_keys: ClassVar[tuple[str, ...]] = ("field",)

    def build(self) -> Comparison:
        return date(self.field)


class ResidenceSettings(ComparatorSettings):
    """department address vs the beneficiary's township and village"""

    comparator: Literal["residence"]
    field: FieldName = "address"
    field_keys: ClassVar[tuple[str, ...]] = ("field",)

    def build(self) -> Comparison:
        return residence(self.field)


_REGISTERED: tuple[type[ComparatorSettings], ...] = (
    CitizenIdSettings,
    ChineseNameSettings,
    StringSettings,
    ExactSettings,
    EditDistanceSettings,
    DateSettings,
    ResidenceSettings,
)


def _tag(settings: type[ComparatorSettings]) -> str:
    (tag,) = get_args(settings.model_fields["comparator"].annotation)
    return str(tag)


#: comparator name -> its settings model (whose docstring describes it).
COMPARATORS: dict[str, type[ComparatorSettings]] = {_tag(s): s for s in _REGISTERED}

if TYPE_CHECKING:
    ComparisonSpec = ComparatorSettings
else:
    #: One `linkage.comparisons` entry: the settings model named by its `comparator` key.
    ComparisonSpec = Annotated[
        functools.reduce(operator.or_, COMPARATORS.values()), Field(discriminator="comparator")
    ]

_SPEC = TypeAdapter(ComparisonSpec)


def build(spec: ComparatorSettings | Mapping[str, object]) -> Comparison:
    """A comparison from its settings (a mapping is validated first; raises ValidationError)."""
    settings = spec if isinstance(spec, ComparatorSettings) else _SPEC.validate_python(spec)
    return settings.build()


def default_comparisons() -> list[Comparison]:
    return [citizen_id(), chinese_name(), residence()]
