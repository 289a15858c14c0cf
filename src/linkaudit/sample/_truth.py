"""The truth: every rule evaluated on the clean internal tables, where the owner of every
department record is known. The generator checks these against its plan, so the truth is what
the rules say about the data, not merely what was meant to be planted.
"""

from __future__ import annotations

import polars as pl

from linkaudit.sample import _pools
from linkaudit.sample._ids import is_valid
from linkaudit.sample._plan import BUSINESS, CAR, HOUSING, PAYROLL, RULE_IDS

AS_OF = pl.date(2015, 12, 31)
WINDOW_START = pl.date(2015, 1, 1)
POVERTY_LINE = {2011: 2536, 2012: 2625, 2013: 2736, 2014: 2736, 2015: 2855, 2016: 2952}
CURRENT_LINE = POVERTY_LINE[2015]
MEDICAL_THRESHOLD_CENTS = 5_000_00
FLAG_COLUMNS = ("rule_id", "person_key", "household_key", "evidence_registry", "evidence_key")


def _flags(frame: pl.DataFrame, rule: str, registry: str | None) -> pl.DataFrame:
    evidence = pl.col("record_key") if registry else pl.lit("")
    return frame.select(
        pl.lit(rule).alias("rule_id"),
        "person_key",
        "household_key",
        pl.lit(registry or "").alias("evidence_registry"),
        evidence.alias("evidence_key"),
    )


def _members(register: pl.DataFrame, households: pl.DataFrame) -> pl.DataFrame:
    """Every member of the given households, crossed with their evidence records."""
    return households.join(register.select("person_key", "household_key"), on="household_key")


def evaluate(register: pl.DataFrame, departments: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """All flags, one row per (rule, person, evidence record), sorted.

    ``register`` has person_key, household_key, row, birth_date, id_text, poverty_status,
    exit_year, income (cents); each department frame has record_key, owner and its fields.
    """
    linked = {
        name: frame.join(register, left_on="owner", right_on="row", how="inner")
        for name, frame in departments.items()
    }
    parts = [
        _flags(
            linked["payroll"].filter(pl.col("employment_status") == _pools.EMPLOYMENT_ACTIVE),
            PAYROLL,
            "payroll",
        ),
        _flags(
            linked["vehicles"].filter(
                pl.col("vehicle_type").is_in(_pools.CAR_TYPES)
                & (pl.col("vehicle_status") == _pools.VEHICLE_COUNTED_STATUS)
            ),
            CAR,
            "vehicles",
        ),
        _flags(
            linked["property"].filter(
                pl.col("property_type").is_in(_pools.PROPERTY_COUNTED)
                & pl.col("location").str.contains(_pools.COUNTY_SEAT, literal=True)
            ),
            HOUSING,
            "property",
        ),
        _flags(
            linked["business"].filter(
                pl.col("entity_type").is_in(_pools.ENTITY_COUNTED)
                & pl.col("entity_status").is_in(_pools.STATUS_ACTIVE)
            ),
            BUSINESS,
            "business",
        ),
    ]

    line = (
        pl.col("exit_year").replace_strict(POVERTY_LINE, default=None, return_dtype=pl.Int64) * 100
    )
    exited = pl.col("poverty_status") == "已脱贫"
    parts.append(_flags(register.filter(exited & (pl.col("income") < line)), "false_exit", None))
    parts.append(
        _flags(
            register.filter(
                (pl.col("poverty_status") == "贫困户") & (pl.col("income") >= CURRENT_LINE * 100)
            ),
            "income_above_line",
            None,
        )
    )

    dead = linked["deaths"].filter(pl.col("death_date") <= AS_OF)
    parts.append(_flags(dead, "deceased_registered", "deaths"))
    birth, death = pl.col("birth_date"), pl.col("death_date")
    age_at_death = (
        death.dt.year() - birth.dt.year()
        - ((death.dt.month() * 100 + death.dt.day()) < (birth.dt.month() * 100 + birth.dt.day())).cast(pl.Int32)
    )  # fmt: skip
    working_age = dead.filter(
        exited & (death >= WINDOW_START) & (age_at_death >= 16) & (age_at_death <= 59)
    ).select("household_key", "record_key")
    parts.append(_flags(_members(register, working_age), "working_age_death_risk", "deaths"))

    settled = linked["medical"].filter(
        exited
        & (pl.col("settled_on") >= WINDOW_START)
        & (pl.col("settled_on") <= AS_OF)
        & (pl.col("self_paid") > 0)
    )
    heavy = (
        settled.group_by("household_key")
        .agg(pl.col("self_paid").sum().alias("total"))
        .filter(pl.col("total") > MEDICAL_THRESHOLD_CENTS)
    )
    evidence = settled.join(heavy.select("household_key"), on="household_key").select(
        "household_key", "record_key"
    )
    parts.append(_flags(_members(register, evidence), "medical_cost_risk", "medical"))

    ids = register.filter(pl.col("id_text") != "")
    repeated = ids.group_by("id_text").len().filter(pl.col("len") > 1).select("id_text")
    parts.append(_flags(ids.join(repeated, on="id_text"), "duplicate_registration", None))
    valid = is_valid(register["id_text"].to_numpy())
    parts.append(_flags(register.filter(pl.Series(~valid)), "invalid_id", None))

    flags = pl.concat(parts, how="vertical").unique()
    return flags.sort(list(FLAG_COLUMNS))


def rule_counts(flags: pl.DataFrame) -> dict[str, dict[str, int]]:
    """Persons, households and evidence records per rule (cars for car_owner)."""
    counts: dict[str, dict[str, int]] = {}
    for rule in RULE_IDS:
        rows = flags.filter(pl.col("rule_id") == rule)
        evidence = rows.filter(pl.col("evidence_key") != "")
        entry = {
            "persons": rows["person_key"].n_unique(),
            "households": rows["household_key"].n_unique(),
            "evidence_records": evidence.select("evidence_registry", "evidence_key")
            .unique()
            .height,
        }
        if rule == CAR:
            entry["cars"] = entry["evidence_records"]
        counts[rule] = entry
    return counts
