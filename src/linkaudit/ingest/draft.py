"""`linkaudit init DIR`: a first manifest for a county's own files, drafted from what `inspect`
sees in them.

Every guess carries its evidence as a comment; what the tool cannot know is left as a marked
placeholder: the audit date (the audit stops with its clear error until it is set), the
county's parameters, and the meaning of department codes (written as a commented-out `values:`
template with the codes found, never guessed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from linkaudit.config import IDENTITY_FIELDS, MANIFEST_NAME, SUFFIX_FORMATS
from linkaudit.errors import InputFileError, LinkauditError
from linkaudit.ingest.profile import FileProfile, profile_file
from linkaudit.privacy import mask_text
from linkaudit.vocabulary import header_synonyms

__all__ = ["Draft", "DraftedRegistry", "data_files", "draft_manifest", "write_draft"]

#: Folders next to the manifest that are not data: outputs, truth of a sample, the workspace.
_NOT_DATA = {"out", "truth", ".linkaudit"}


@dataclass
class DraftedRegistry:
    name: str
    profile: FileProfile
    path: str
    key: str | None
    fields: dict[str, str]
    #: Vocabulary fields holding values the shipped rules do not know: field → codes.
    codes: dict[str, list[str]]
    lines: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "registry": self.name,
            "file": self.path,
            "role": "beneficiaries" if self.name == "poverty" else "source",
            "key": self.key,
            "fields": self.fields,
            "unmapped_codes": self.codes,
        }


@dataclass
class Draft:
    folder: Path
    registries: list[DraftedRegistry]
    skipped: dict[str, str]
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "manifest": str(self.folder / MANIFEST_NAME),
            "registries": [r.as_dict() for r in self.registries],
            "skipped": self.skipped,
        }


def data_files(folder: Path) -> list[Path]:
    """The data files in a folder and one level below it (e.g. data/), by suffix."""
    found: list[Path] = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and entry.name not in _NOT_DATA and not entry.name.startswith("."):
            found += [p for p in sorted(entry.iterdir()) if p.is_file()]
        elif entry.is_file():
            found.append(entry)
    return [p for p in found if p.suffix.lower() in SUFFIX_FORMATS and not p.name.startswith(".")]


def _scalar(value: object) -> str:
    """A YAML scalar that reads back as this text (quoted where YAML would read it otherwise)."""
    text = str(value)
    try:
        plain = yaml.safe_load(f"k: {text}") == {"k": text}
    except yaml.YAMLError:
        plain = False
    return (
        text
        if plain and text == text.strip() and "#" not in text
        else json.dumps(text, ensure_ascii=False)
    )


def _field_order(kind: str | None) -> list[str]:
    own = [f for f in header_synonyms().get(kind or "", {}) if f not in ("key", "household")]
    return [*IDENTITY_FIELDS, *own]


def _registry_lines(reg: DraftedRegistry, beneficiaries: bool) -> list[str]:
    p = reg.profile
    mapped = p.mapped()
    out = [f"  {reg.name}:", f"    # {mask_text(reg.path)}: {p.rows:,} rows; {p.registry_evidence}"]
    if beneficiaries:
        out.append("    role: beneficiaries")
    out.append(f"    path: {_scalar(reg.path)}")
    if p.format in ("csv", "tsv", "jsonl") and p.encoding:
        out.append(f"    encoding: {p.encoding}")
    if p.sheet is not None:
        out.append(
            f"    sheet: {_scalar(p.sheet)}"
            + (f"  # of {', '.join(p.sheets)}" if len(p.sheets) > 1 else "")
        )
    if p.header_row != 1:
        out.append(f"    header_row: {p.header_row}  # rows above it: a title")
    key = mapped.get("key")
    if reg.key is not None:
        out.append(f"    key: {_scalar(reg.key)}  # unique in all {p.rows:,} rows")
    elif key is not None:
        out.append(
            f"    # key: {_scalar(key.header)}  ← not unique ({key.rows - key.nulls - key.distinct:,} "
            "repeated, or empty values): not used"
        )
    if reg.key is None:
        if beneficiaries:
            out.append(
                "    # no unique key column: each person gets a stable surrogate key (a keyed hash "
                "of the ID number); set `key:` if the register has its own"
            )
        else:
            out.append("    # no key column found: records are keyed by their row number")
    household = mapped.get("household")
    if beneficiaries and household is not None:
        out.append(f"    household: {_scalar(household.header)}  # {household.evidence}")
    out.append("    fields:")
    for name, column in reg.fields.items():
        evidence = mapped[name].evidence if name in mapped else ""
        out.append(
            f"      {name}: {_scalar(column)}" + (f"  # {mask_text(evidence)}" if evidence else "")
        )
    if reg.codes:
        out.append(
            "    # values:  ← codes the shipped rules do not know (their meaning is not guessed): "
            "write each one's term, e.g. 正常, then uncomment"
        )
        for name, codes in reg.codes.items():
            listed = ", ".join(f"{_scalar(c)}: ?" for c in codes)
            out.append(f"    #   {name}: {{{listed}}}")
    unmapped = [c.header for c in p.columns if c.field is None]
    if unmapped:
        out.append(f"    # not mapped: {', '.join(mask_text(h) for h in unmapped)}")
    return out


def draft_manifest(folder: Path) -> Draft:
    """Profile every data file of a folder and draft its manifest (text and what was found)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LinkauditError(f"{folder}: not a folder", hint="name the folder holding the files")
    files = data_files(folder)
    if not files:
        raise LinkauditError(
            f"{folder}: no data files (csv, tsv, xlsx, parquet, jsonl) here or one level below",
            hint="put the department files in this folder or in its data/ folder",
        )
    registries: list[DraftedRegistry] = []
    skipped: dict[str, str] = {}
    names: set[str] = set()
    for path in files:
        rel = path.relative_to(folder).as_posix()
        try:
            profile = profile_file(path)
        except InputFileError as exc:
            skipped[rel] = exc.message
            continue
        mapped = profile.mapped()
        if "name" not in mapped and "id_number" not in mapped:
            skipped[rel] = "no name or ID number column found: its records cannot be linked"
            continue
        base = (
            profile.registry
            or "".join(
                ch if ch.isascii() and (ch.isalnum() or ch == "_") else "_" for ch in path.stem
            ).strip("_")
            or "registry"
        )
        if not base.isidentifier():
            base = f"r_{base}"
        name, n = base, 2
        while name in names:
            name, n = f"{base}_{n}", n + 1
        names.add(name)
        key = mapped.get("key")
        chosen_key = key.header if key is not None and key.unique else None
        fields = {f: mapped[f].header for f in _field_order(profile.registry) if f in mapped}
        codes = {
            f: list(mapped[f].unknown_values or {}) for f in fields if mapped[f].unknown_values
        }
        registries.append(DraftedRegistry(name, profile, rel, chosen_key, fields, codes))
    beneficiaries = next((r for r in registries if r.profile.registry == "poverty"), None)
    lines = [
        f"# Drafted by `linkaudit init` from the data files in {folder.name}/. Each guess says why",
        "# in a comment: check them, fill in the marked placeholders (←), then run",
        "# `linkaudit audit`.",
        "database: linkaudit.duckdb",
        "output: out/",
        "# as_of: YYYY-MM-DD  ← required: the audit's reference date (or pass --as-of)",
        "# parameters:  ← the county's own settings for the shipped rules",
        "#   county_seat: ...  ← the county seat's township, e.g. 白山镇 (county_seat_housing)",
        "#   poverty_line: {2014: ..., 2015: ...}  ← only if the county applied its own line",
        "registries:",
    ]
    if beneficiaries is None:
        lines.insert(
            3,
            "# ← no file looks like the poverty register: give one registry `role: beneficiaries`",
        )
    for reg in registries:
        reg.lines = _registry_lines(reg, reg is beneficiaries)
        lines += reg.lines
    if skipped:
        lines.append("# files not used:")
        lines += [f"#   {mask_text(rel)}: {mask_text(why)}" for rel, why in skipped.items()]
    return Draft(folder, registries, skipped, "\n".join(lines) + "\n")


def write_draft(folder: Path, force: bool = False) -> Draft:
    """Draft folder/linkaudit.yaml and write it; an existing manifest only with force."""
    target = Path(folder) / MANIFEST_NAME
    if target.exists() and not force:
        raise LinkauditError(
            f"{target}: a manifest is already there; it is not overwritten",
            hint="edit it, move it away, or add --force to replace it with a new draft",
        )
    draft = draft_manifest(Path(folder))
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(draft.text, encoding="utf-8")
    tmp.replace(target)
    return draft
