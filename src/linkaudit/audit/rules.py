"""Declarative audit rules: the YAML format, loading and validation.

A rule file holds one rule (a mapping) or several (a list, or a mapping with `rules:`):

```yaml
id: car_owner
title: {zh: 拥有汽车, en: Owns a counted car}
severity: ineligible            # ineligible | risk | data_quality
scope: person                   # person | household (any member matches: flag the household)
registry: vehicles              # the registry it looks at; the beneficiaries registry for
                                # register-only rules
condition: >                    # SQL boolean over the registry's canonical fields; `person.x`
  vehicle_type NOT IN $excluded_types   # is the linked beneficiary's field, $name a parameter,
  AND vehicle_status = '正常'            # as_of the audit's reference date
parameters: {excluded_types: [普通二轮摩托车, 轮式拖拉机]}
evidence: [plate, vehicle_type, vehicle_status, registered_on]
window: {field: settled_on, months: 12}          # optional: within N months before as_of
aggregate: {by: household, having: "sum(self_paid) > $limit"}   # optional; `by` is person,
                                # household or a parameter ($medical_cost_by) that says which
duplicate_of: [id_number]       # optional, register-only: same values as another beneficiary
```
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from linkaudit.audit.catalogue import rule_files
from linkaudit.errors import RuleError

Severity = Literal["ineligible", "risk", "data_quality"]


class Title(BaseModel):
    model_config = ConfigDict(extra="forbid")
    zh: str
    en: str


class Window(BaseModel):
    model_config = ConfigDict(extra="forbid")
    field: str
    months: int | None = Field(default=None, ge=1)
    days: int | None = Field(default=None, ge=1)


AGGREGATE_UNITS = ("person", "household")


class Aggregate(BaseModel):
    """Records grouped per unit (one member's records, or the whole household's), kept when
    `having` holds. `by` may name a parameter (`$medical_cost_by`) so a county picks the unit
    in its manifest's `parameters:` without writing its own rule."""

    model_config = ConfigDict(extra="forbid")
    by: str = Field(default="household", pattern=r"^(person|household|\$[a-z][a-z0-9_]*)$")
    having: str

    @property
    def parameter(self) -> str | None:
        """The parameter naming the unit, if `by` is one."""
        return self.by[1:] if self.by.startswith("$") else None


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: Title
    severity: Severity
    scope: Literal["person", "household"] = "person"
    registry: str
    condition: str = "TRUE"
    parameters: dict[str, Any] = Field(default_factory=dict)
    evidence: list[str] = Field(default_factory=list)
    window: Window | None = None
    aggregate: Aggregate | None = None
    duplicate_of: list[str] | None = None
    #: A `$table[key]` whose key is in the data but not in the table: stop the audit
    #: (`error`, the default) or leave those rows unflagged and count them (`not_flagged`).
    lookup_missing: Literal["error", "not_flagged"] = "error"
    description: str = ""
    source: str = ""  # file the rule came from (filled on loading)

    @field_validator("condition", mode="before")
    @classmethod
    def _yaml_boolean(cls, value: Any) -> Any:
        # `condition: TRUE` in YAML is a boolean, not text: accept it as the SQL it reads as.
        return str(value).upper() if isinstance(value, bool) else value


def _rule_dicts(data: Any) -> list[Any]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and "rules" in data and isinstance(data["rules"], list):
        return data["rules"]
    return [data]


def load_rules(paths: list[Path]) -> list[Rule]:
    """Read and validate every rule in the files; report every problem together."""
    problems: list[str] = []
    rules: list[Rule] = []
    files = rule_files(paths)
    for p in paths:
        if not p.exists():
            problems.append(f"{p}: file or folder not found")
    if not files and not problems:
        problems.append(f"{', '.join(str(p) for p in paths)}: no rule files (*.yaml) found")
    seen: dict[str, str] = {}
    for file in files:
        if not file.exists():
            continue
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8-sig"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            problems.append(f"{file}:{where} not valid YAML ({getattr(exc, 'problem', exc)})")
            continue
        for i, raw in enumerate(_rule_dicts(data)):
            rid = raw.get("id", f"#{i + 1}") if isinstance(raw, dict) else f"#{i + 1}"
            if not isinstance(raw, dict):
                problems.append(f"{file}: rule {rid}: must be a mapping")
                continue
            try:
                rule = Rule.model_validate({**raw, "source": str(file)})
            except ValidationError as exc:
                for err in exc.errors():
                    loc = ".".join(str(x) for x in err["loc"])
                    msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
                    problems.append(f"{file}: rule {rid}: {loc}: {msg}")
                continue
            if rule.id in seen:
                problems.append(f"{file}: rule {rule.id}: id already used in {seen[rule.id]}")
                continue
            seen[rule.id] = str(file)
            rules.append(rule)
    if problems:
        raise RuleError(
            problems, hint="fix the rule files; `linkaudit rules check` lists all problems"
        )
    return rules


def ruleset_hash(rules: list[Rule]) -> str:
    text = "\n".join(
        r.model_dump_json(exclude={"source"}) for r in sorted(rules, key=lambda r: r.id)
    )
    return hashlib.sha256(text.encode()).hexdigest()
