"""The workspace manifest (`linkaudit.yaml`): typed models, validated up front.

Every problem in a manifest is collected and reported together, each with the manifest path and
the key it concerns, so a user fixes the file in one pass.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from linkaudit.errors import ManifestError
from linkaudit.link.comparisons import COMPARATORS, ComparisonSpec

FORMATS = ("csv", "tsv", "xlsx", "parquet", "jsonl")
SUFFIX_FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
ENCODINGS = ("auto", "utf-8", "utf-8-sig", "gbk", "gb18030", "gb2312")

#: Identity fields the linker understands.
IDENTITY_FIELDS = ("name", "id_number", "birth_date", "sex", "address")

#: Canonical fields with a type; every other mapped field is carried through as text.
DATE_FIELDS = frozenset(
    {"birth_date", "death_date", "registered_on", "start_date", "settled_on", "end_date"}
)
AMOUNT_FIELDS = frozenset({"income_per_capita", "self_paid", "area", "amount", "total_cost"})
INT_FIELDS = frozenset({"household_size", "identified_year", "exit_year"})
#: `excel_serial`: a date column whose numbers are Excel serials (also in a CSV's text).
FieldType = Literal["text", "date", "excel_serial", "amount", "int"]
DATE_TYPES = ("date", "excel_serial")


def field_type(canonical: str, overrides: dict[str, FieldType] | None = None) -> FieldType:
    """The type a canonical field is parsed as (manifest `types:` wins)."""
    if overrides and canonical in overrides:
        return overrides[canonical]
    if canonical in DATE_FIELDS:
        return "date"
    if canonical in AMOUNT_FIELDS:
        return "amount"
    if canonical in INT_FIELDS:
        return "int"
    return "text"


def _code_text(code: str | int | float | bool) -> str:
    """A department code as the text it is in the file (YAML reads `1:` as the number 1)."""
    if isinstance(code, float) and code.is_integer():
        return str(int(code))
    return str(code)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RegistryConfig(_Strict):
    """One department's registry: where it is, how to read it, which column is which field."""

    name: str = ""
    department: str = ""
    role: Literal["beneficiaries", "source"] = "source"
    path: Path
    format: Literal["csv", "tsv", "xlsx", "parquet", "jsonl"] | None = None
    encoding: str = "auto"
    sheet: str | int | None = None
    header_row: int = Field(default=1, ge=1)
    delimiter: str | None = None
    key: str | None = None
    household: str | None = None
    fields: dict[str, str] = Field(default_factory=dict)
    #: Whose place the mapped `address` is: the person's residence (`address`, the default),
    #: or not the person's (`none`: a business registry's 住所 is the premises), in which case
    #: the linker does not compare it with the beneficiary's township and village.
    residence: Literal["address", "none"] = "address"
    types: dict[str, FieldType] = Field(default_factory=dict)
    #: Department codes mapped to the canonical vocabulary at load, per field:
    #: `{vehicle_status: {A: 正常, E: 注销}}`. Values not listed are kept as they are (and
    #: reported when a shipped rule's vocabulary does not know them).
    values: dict[str, dict[str | int | float | bool, str]] = Field(default_factory=dict)

    @field_validator("values")
    @classmethod
    def _codes_as_text(
        cls, value: dict[str, dict[str | int | float | bool, str]]
    ) -> dict[str, dict[str | int | float | bool, str]]:
        for canonical, mapping in value.items():
            for code in mapping:
                if isinstance(code, bool):
                    # YAML reads Y, N, yes, no, on, off as booleans: which was meant is lost.
                    raise ValueError(
                        f"{canonical}: a code reads as the boolean {code}; quote the codes "
                        "(e.g. 'Y': 正常)"
                    )
        return {
            canonical: {_code_text(code): str(v) for code, v in mapping.items()}
            for canonical, mapping in value.items()
        }

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        if value is not None and len(value) != 1:
            raise ValueError(f"the delimiter must be one character, not {value!r}")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        value = value.strip().lower().replace("_", "-")
        if value in ("utf8",):
            value = "utf-8"
        if value not in ENCODINGS:
            raise ValueError(f"unknown encoding {value!r}; use one of {', '.join(ENCODINGS)}")
        return value

    @property
    def resolved_format(self) -> str:
        if self.format:
            return self.format
        return SUFFIX_FORMATS.get(self.path.suffix.lower(), "")

    def canonical_type(self, canonical: str) -> FieldType:
        return field_type(canonical, self.types)


#: Columns every loaded registry has (see ingest.canonical).
BASE_COLUMNS = (
    "_key",
    "_row",
    "name",
    "name_raw",
    "name_pinyin",
    "id_number",
    "id_status",
    "id_birth_date",
    "id_region",
    "id_usable",
    "id_suspect",
    "birth_date",
    "birth_date_precision",
    "birth_date_mismatch",
    "sex",
    "address",
)


def registry_columns(reg: RegistryConfig) -> frozenset[str]:
    """The columns of a registry once loaded: the base ones, its mapped fields, each date
    field's precision (day, month, year: see ingest.canonical) and the household key.
    Here, beside the registry's model, so that validating a manifest and compiling rules read
    the same list without config importing the rule compiler."""
    cols = set(BASE_COLUMNS) | set(reg.fields)
    cols |= {f"{c}_precision" for c in reg.fields if reg.canonical_type(c) in DATE_TYPES}
    if reg.household:
        cols.add("household")
    return frozenset(cols)


class LinkageConfig(_Strict):
    """Thresholds on the match probability of a candidate pair."""

    match_threshold: float = Field(default=0.95, gt=0, lt=1)
    review_threshold: float = Field(default=0.5, gt=0, lt=1)
    #: A department record whose second-best candidate (another person) scores within this
    #: many bits of the best goes to review. log2(100) = 6.64: the best must be at least 100
    #: times likelier than the runner-up, so at most ~1% of such choices are wrong; such
    #: contests are a small share of a county's links (namesakes without IDs), which keeps
    #: overall precision above 0.9995, while a namesake elsewhere (10+ bits behind) is no doubt.
    ambiguity_margin: float = Field(default=6.64, ge=0)
    #: A blocking pass that would produce more pairs than this is skipped, with a warning.
    max_block_pairs: int = Field(default=20_000_000, ge=1)
    #: Random pairs drawn to estimate u probabilities.
    u_sample_pairs: int = Field(default=1_000_000, ge=1000)
    seed: int = 42
    #: Blocking passes: lists of keys (columns, year(col), substr(col, a, b)) or `id_variants`.
    blocking: list[str | list[str]] | None = None
    #: Comparisons, each typed by its `comparator` (link.comparisons.COMPARATORS); default:
    #: citizen ID (with birth date fallback), Chinese name (term-frequency adjusted), residence.
    comparisons: list[ComparisonSpec] | None = None


class EngineConfig(_Strict):
    """Which engine runs the heavy stages (staging, linkage, rules). DuckDB, embedded, is the
    default; Spark (`pip install 'linkaudit[spark]'`) for a province or the nation. Either way
    the workspace database keeps the load log, run history and cases."""

    name: Literal["duckdb", "spark"] = "duckdb"
    #: Spark master URL: local[N] on one machine, or the cluster's (spark://, yarn, k8s://).
    master: str = "local[2]"
    #: Extra Spark settings (spark.executor.memory, spark.sql.shuffle.partitions, ...).
    conf: dict[str, str] = Field(default_factory=dict)
    #: Where Spark keeps its tables (Parquet); default: `<database>.spark/` beside the
    #: workspace database. On a cluster: a POSIX path every executor sees (an NFS mount);
    #: hdfs:// and s3a:// are not supported yet (tables are swapped in by a local rename).
    store: Path | None = None


class Manifest(_Strict):
    """A validated workspace manifest. Paths are absolute (resolved against the manifest)."""

    path: Path = Path("linkaudit.yaml")
    database: Path = Path("linkaudit.duckdb")
    #: The audit's reference date. Never defaulted to today: an audit states its date (here or
    #: with `audit --as-of`); see `require_as_of`.
    as_of: dt.date | None = None
    rules: list[Path] = Field(default_factory=list)
    output: Path = Path("out")
    parameters: dict[str, Any] = Field(default_factory=dict)
    linkage: LinkageConfig = Field(default_factory=LinkageConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    #: Policy exemptions: {person or household, rule (or '*'), reason, expires (optional)}.
    exemptions: list[dict[str, Any]] = Field(default_factory=list)
    #: The same as a CSV file with columns person, household, rule, reason, expires.
    exemptions_file: Path | None = None
    registries: dict[str, RegistryConfig]

    @property
    def root(self) -> Path:
        return self.path.parent

    def require_as_of(self) -> dt.date:
        """The audit date, or a ManifestError saying how to give it."""
        if self.as_of is None:
            raise ManifestError(
                str(self.path),
                ["as_of: the audit's reference date is not set"],
                hint="add `as_of: YYYY-MM-DD` to the manifest, or pass `--as-of YYYY-MM-DD`",
            )
        return self.as_of

    @property
    def beneficiaries(self) -> RegistryConfig:
        return next(r for r in self.registries.values() if r.role == "beneficiaries")

    @property
    def sources(self) -> list[RegistryConfig]:
        return [r for r in self.registries.values() if r.role != "beneficiaries"]


def _loc(loc: tuple[Any, ...]) -> str:
    if loc[:2] == ("linkage", "comparisons") and len(loc) > 4 and loc[3] in COMPARATORS:
        loc = loc[:3] + loc[4:]  # the union member pydantic tried is the `comparator:` value
    return ".".join(str(p) for p in loc) or "(top level)"


def _error_message(err: Any) -> tuple[str, str]:
    """(location, message) of one pydantic error, in the manifest's terms."""
    loc, msg = _loc(err["loc"]), err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key (check the spelling against the README's manifest reference)"
    elif err["type"] in ("union_tag_invalid", "union_tag_not_found") and loc.startswith(
        "linkage.comparisons."
    ):
        tag = err.get("ctx", {}).get("tag")
        loc += ".comparator"
        msg = (f"{tag!r} is not one of " if tag is not None else "missing; name one of ") + (
            ", ".join(COMPARATORS)
        )
    return loc, msg


def parse_manifest(data: Any, path: Path) -> Manifest:
    """Build a Manifest from already-parsed YAML/dict data, collecting every problem."""
    where = str(path)
    if not isinstance(data, dict):
        raise ManifestError(where, ["the manifest must be a mapping with a `registries:` key"])
    problems: list[str] = []
    raw = dict(data)
    raw["path"] = path
    registries = raw.get("registries")
    if isinstance(registries, dict):
        for reg_name, reg in registries.items():
            if isinstance(reg, dict):
                reg.setdefault("name", reg_name)
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            loc, msg = _error_message(err)
            problems.append(f"{loc}: {msg}")
        raise ManifestError(where, problems) from None

    root = path.parent
    manifest.database = (root / manifest.database).resolve()
    if manifest.engine.store is not None:
        if "://" in str(manifest.engine.store) or ":/" in str(manifest.engine.store):
            problems.append(
                f"engine.store: {manifest.engine.store} is a URL; give a path every executor "
                "sees (hdfs:// and s3a:// are not supported yet)"
            )
        manifest.engine.store = (root / manifest.engine.store).resolve()
    # Not resolved through a symlink: `out` is a link to the published set (report.publish).
    output = root / manifest.output
    manifest.output = output.parent.resolve() / output.name
    manifest.rules = [(root / p).resolve() for p in manifest.rules]
    if manifest.exemptions_file is not None:
        manifest.exemptions_file = (root / manifest.exemptions_file).resolve()
    names = list(manifest.registries)
    beneficiaries = [n for n, r in manifest.registries.items() if r.role == "beneficiaries"]
    if not names:
        problems.append("registries: no registry is defined")
    elif len(beneficiaries) != 1:
        problems.append(
            f"registries: exactly one registry must have `role: beneficiaries` (found {len(beneficiaries)}"
            + (f": {', '.join(beneficiaries)}" if beneficiaries else "")
            + ")"
        )
    for reg_name, reg in manifest.registries.items():
        where_reg = f"registries.{reg_name}"
        if not reg_name.isidentifier() or not reg_name.isascii():
            problems.append(
                f"{where_reg}: registry names must be ASCII identifiers (letters, digits, _), "
                "because rules refer to them"
            )
        reg.name = reg_name
        reg.path = (root / reg.path).resolve()
        if not reg.resolved_format:
            problems.append(
                f"{where_reg}.path: cannot tell the format from suffix {reg.path.suffix!r}; "
                f"add `format:` ({', '.join(FORMATS)})"
            )
        if reg.sheet is not None and reg.resolved_format and reg.resolved_format != "xlsx":
            problems.append(
                f"{where_reg}.sheet: only Excel files have sheets (this is {reg.resolved_format})"
            )
        if not reg.fields:
            problems.append(f"{where_reg}.fields: map at least one canonical field to a column")
        if not ({"name", "id_number"} & set(reg.fields)) and not manifest.linkage.comparisons:
            problems.append(
                f"{where_reg}.fields: needs `name` or `id_number` so its records can be linked"
            )
        for canonical in reg.fields:
            if not canonical.isidentifier() or not canonical.isascii():
                problems.append(
                    f"{where_reg}.fields.{canonical}: canonical names must be ASCII identifiers"
                )
        if reg.household and reg.role != "beneficiaries":
            problems.append(
                f"{where_reg}.household: only the beneficiaries registry has households"
            )
        for canonical in reg.types:
            if canonical not in reg.fields:
                problems.append(f"{where_reg}.types.{canonical}: not a field of this registry")
        for canonical in reg.values:
            if canonical not in reg.fields:
                problems.append(f"{where_reg}.values.{canonical}: not a field of this registry")
            elif canonical in IDENTITY_FIELDS or reg.canonical_type(canonical) != "text":
                problems.append(
                    f"{where_reg}.values.{canonical}: value maps apply to text fields only"
                )
    problems += _output_problems(manifest)
    if manifest.linkage.review_threshold > manifest.linkage.match_threshold:
        problems.append("linkage.review_threshold: must not exceed linkage.match_threshold")
    problems += _linkage_problems(manifest)
    if problems:
        raise ManifestError(where, problems)
    return manifest


MANIFEST_NAME = "linkaudit.yaml"


def manifest_path(path: str | Path | None) -> Path:
    """The manifest a command means: a file, a folder holding linkaudit.yaml, or None for
    ./linkaudit.yaml."""
    target = Path(path) if path is not None else Path.cwd()
    if target.is_dir():
        target = target / MANIFEST_NAME
    return target.resolve()


def load_manifest(path: str | Path | None = None) -> Manifest:
    """Read and validate a manifest: a file, a folder holding linkaudit.yaml, or None for
    ./linkaudit.yaml."""
    given = path
    path = manifest_path(path)
    if not path.exists():
        folder = path.parent
        hint = (
            f"pass the path to your {MANIFEST_NAME} or the folder that holds it; "
            f"`linkaudit init {folder}` drafts one for the data files there"
        )
        what = (
            "file not found"
            if given is not None and not Path(given).is_dir()
            else (f"no {MANIFEST_NAME} in {folder}")
        )
        raise ManifestError(str(path), [what], hint=hint)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ManifestError(
            str(path), ["not UTF-8 text"], hint="save the manifest as UTF-8"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ManifestError(str(path), [f"{where}invalid YAML: {problem}"]) from None
    return parse_manifest(data, path)


OUTPUT_FILES = ("exceptions.xlsx", "exceptions.csv", "links.csv", "summary.json")


def _output_problems(manifest: Manifest) -> list[str]:
    """Outputs must never land on an input (inputs are never modified)."""
    out = manifest.output
    if out.exists() and not out.is_dir():
        return [f"output: {out} is a file; name a folder for the outputs"]
    targets = {(out / name).resolve() for name in OUTPUT_FILES}
    inputs = {r.path.resolve(): f"registries.{n}.path" for n, r in manifest.registries.items()}
    inputs[manifest.path.resolve()] = "the manifest"
    if manifest.exemptions_file:
        inputs[manifest.exemptions_file.resolve()] = "exemptions_file"
    if manifest.database.resolve() in inputs:
        return [f"database: {manifest.database} is also {inputs[manifest.database.resolve()]}"]
    return [
        f"output: writing {t.name} there would overwrite {inputs[t]} ({t}); "
        "choose another output folder"
        for t in sorted(targets)
        if t in inputs
    ]


def _linkage_problems(manifest: Manifest) -> list[str]:
    from linkaudit.link.blocking import key_column, parse_passes

    problems: list[str] = []
    link = manifest.linkage
    ben = [r for r in manifest.registries.values() if r.role == "beneficiaries"]
    known = registry_columns(ben[0]) if ben else frozenset()
    if link.blocking is not None:
        for i, pass_spec in enumerate(link.blocking):
            try:
                passes = parse_passes([pass_spec])
            except ValueError as exc:
                problems.append(f"linkage.blocking.{i}: {exc}")
                continue
            missing = [k for p in passes for k in p.keys if key_column(k) not in known]
            if missing and known:
                problems.append(
                    f"linkage.blocking.{i}: {', '.join(missing)} is not a field of the "
                    "beneficiaries registry"
                )
    names: dict[str, int] = {}
    for i, spec in enumerate(link.comparisons or []):
        where = f"linkage.comparisons.{i}"
        fields = {getattr(spec, key): key for key in spec.field_keys}
        unknown = [(key, col) for col, key in fields.items() if known and col not in known]
        for key, col in unknown:
            problems.append(
                f"{where}.{key}: {col!r} is not a field of the beneficiaries registry "
                f"({', '.join(sorted(c for c in known if not c.startswith('_')))})"
            )
        comparison = spec.build()
        implied = [c for c in comparison.columns if c not in known and c not in fields]
        if implied and known:
            problems.append(
                f"{where}.comparator: {spec.comparator} compares {', '.join(implied)}, which the "
                "beneficiaries registry does not have (map them in its `fields:`)"
            )
        # Every comparison is stored as columns level_<name>, weight_<name> beside weight_prior.
        if comparison.name == "prior":
            problems.append(f"{where}.field: 'prior' is reserved; map the column to another name")
        elif comparison.name in names:
            key = "field" if "field" in spec.field_keys else "comparator"
            problems.append(
                f"{where}.{key}: a second comparison named {comparison.name!r} (the first is "
                f"linkage.comparisons.{names[comparison.name]}); compare each field once"
            )
        else:
            names[comparison.name] = i
    return problems
