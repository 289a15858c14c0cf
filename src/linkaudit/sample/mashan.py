"""The synthetic Mashan county scenario (马山县, Guangxi, 450124) with its planted truth.

A county population, its poverty register (建档立卡) and six department registries, built so
that at scale 1 the audit's findings hold exactly: 343 payroll staff, 2,454 car owners with
2,645 cars, 43 county-seat home owners, 439 business owners (3,119 distinct), and 608
households / 2,272 persons falsely declared out of poverty in 2014. Smaller risk and
data-quality cases, decoys that a careless rule or linker would flag, and clerical noise on the
department side complete it. ``generate`` writes the workspace (manifest, data, truth) and is
byte-deterministic for a given scale and seed.

Layout written::

    linkaudit.yaml       the manifest
    data/                poverty.csv payroll.xlsx vehicles.csv (GBK) property.parquet
                         business.jsonl deaths.csv (UTF-8 BOM) medical.csv
    truth/links.csv      registry,record_key,person_key for every record of a registrant
    truth/flags.csv      rule_id,person_key,household_key,evidence_registry,evidence_key
    truth/summary.json   scale, seed, counts per rule, rows per registry, noise counts
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from linkaudit.errors import LinkauditError
from linkaudit.sample import _departments as dep
from linkaudit.sample import _pools, hard
from linkaudit.sample._chars import names_to_str
from linkaudit.sample._departments import TOWNSHIP_NAMES, VILLAGE_NAMES, Cast, pick
from linkaudit.sample._ids import CHECK_CHARS, ascii_to_str, digits17, id_ascii
from linkaudit.sample._noise import identity_noise, noise_counts
from linkaudit.sample._plan import CAR, HEADLINE_RULES, RULE_IDS, Plan, make_plan
from linkaudit.sample._population import (
    EXIT_2014,
    EXIT_2015,
    FALSE_EXIT,
    MASHAN,
    POOR,
    People,
    Region,
    Register,
    build_others,
    build_register,
    county_region,
    make_unique,
    neighbours,
    twins,
)
from linkaudit.sample._truth import FLAG_COLUMNS, POVERTY_LINE, evaluate, rule_counts
from linkaudit.sample._write import (
    DEPARTMENTS,
    POVERTY_COLUMNS,
    manifest_text,
    plain_amount,
    write_csv,
    write_json,
    write_jsonl,
    write_parquet,
    write_payroll_xlsx,
)

__all__ = ["DEFAULT_SEED", "generate"]

DEFAULT_SEED = 20151231
AS_OF = "2015-12-31"
# Shares of the look-alike strangers by the department holding their one counted record.
_LOOKALIKE_SPLIT = (("payroll", 80), ("vehicles", 120), ("business", 60), ("property", 40))
_BUILDERS = {
    "payroll": dep.payroll,
    "vehicles": dep.vehicles,
    "property": dep.property_,
    "business": dep.business,
    "deaths": dep.deaths,
    "medical": dep.medical,
}


def _rng(seed: int, part: str, county: int = 0) -> np.random.Generator:
    """An independent stream per part (and per county after the first), so changing one part
    leaves the others' data alone."""
    key = [seed, zlib.crc32(part.encode("utf-8"))]
    return np.random.default_rng(key + [county] if county else key)


def _numbered(prefix: str, numbers: np.ndarray) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(numbers.astype(str), 8))


def _first_per_group(
    rng: np.random.Generator, rows: np.ndarray, group: np.ndarray, per: int
) -> np.ndarray:
    """Up to ``per`` random rows of each group, as an ``(groups, per)`` array (-1 = none)."""
    order = np.lexsort((rng.random(len(rows)), group))
    rows, group = rows[order], group[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    counts = np.diff(np.r_[starts, len(rows)])
    out = np.full((len(starts), per), -1, dtype=np.int64)
    for k in range(per):
        has = counts > k
        out[has, k] = rows[starts[has] + k]
    return out


@dataclass
class _Scenario:
    plan: Plan
    people: People
    register: Register
    registrants: int
    id_text: np.ndarray
    cast: Cast
    decoys: dict[str, int]


def _cast(
    plan: Plan,
    seed: int,
    region: Region = MASHAN,
    county: int = 0,
    outside: np.ndarray | None = None,
) -> _Scenario:
    """Build the people and decide who plays which planted part. ``outside``: the sorted ID
    bodies of the counties built before this one, which nobody here may take."""
    n = plan.n
    register, people = build_register(_rng(seed, "register", county), plan, region)
    registrants = register.persons
    people = people.extend(
        build_others(_rng(seed, "others", county), n["population_others"], region)
    )
    make_unique(_rng(seed, "ids", county), people, outside=outside)
    base = len(people)
    rng = _rng(seed, "cast", county)
    age = people.age(np.arange(registrants))
    hh, group = register.hh, register.hh_group
    households = register.households
    exited = np.isin(group, [EXIT_2014, EXIT_2015])  # false exits stay out of other plants
    working = (age >= 20) & (age <= 55)
    has_working = np.bincount(hh, weights=working, minlength=households) > 0
    taken = np.zeros(households, dtype=bool)

    def households_for(mask: np.ndarray, count: int) -> np.ndarray:
        chosen = pick(rng, np.flatnonzero(mask & ~taken), count)
        taken[chosen] = True
        return np.sort(chosen)

    working_hh = households_for(exited & has_working, n["working_age_deaths"])
    medical_hh = {
        "risk": households_for(exited, n["medical_risk_households"]),
        "near_threshold": households_for(exited, n["medical_near_threshold"]),
        "at_threshold": households_for(exited, n["medical_at_threshold"]),
        "before_window": households_for(exited, n["medical_before_window"]),
        "after_as_of": households_for(exited, n["medical_after_as_of"]),
        "poor_high": households_for(
            (group == POOR) & ~register.hh_flag["income_above_line"], n["medical_poor_high"]
        ),
    }
    controlled = taken[hh]

    # --- deaths ---
    dead = np.zeros(registrants, dtype=bool)
    deaths: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    in_working_hh = np.isin(hh, working_hh) & working
    rows = _first_per_group(rng, np.flatnonzero(in_working_hh), hh[in_working_hh], 1)[:, 0]
    deaths["working_age"] = (rows, dep.dates_between(rng, "2015-01-10", "2015-12-20", len(rows)))
    dead[rows] = True
    death_specs = (
        ("exited_before_window", exited[hh] & working, "2014-01-01", "2014-11-30"),
        ("poor_in_window", (group[hh] == POOR) & working, "2015-01-10", "2015-12-20"),
        ("elderly", age >= 68, "2014-01-01", "2015-12-31"),
        ("after_as_of", age >= 40, "2016-01-05", "2016-03-31"),
    )
    for label, mask, low, high in death_specs:
        count = n[f"deaths_{label}"]
        rows = np.sort(pick(rng, np.flatnonzero(mask & ~controlled & ~dead), count))
        deaths[label] = (rows, dep.dates_between(rng, low, high, len(rows)))
        dead[rows] = True

    # --- duplicate and invalid registrations, in otherwise unremarkable households ---
    death_hh = np.zeros(households, dtype=bool)
    death_hh[hh[dead]] = True
    ordinary = ~taken & ~register.hh_flag["income_above_line"] & (group != FALSE_EXIT) & ~death_hh
    persons = np.arange(registrants)
    same = pick(
        rng, np.flatnonzero(ordinary & (register.hh_size >= 2)), n["duplicate_same_household"]
    )
    ordinary[same] = False
    pairs = _first_per_group(rng, persons[np.isin(hh, same)], hh[np.isin(hh, same)], 2)
    cross_count = max(n["duplicate_pairs"] - len(same), 0)
    cross = pick(rng, np.flatnonzero(ordinary), 2 * cross_count)
    ordinary[cross] = False
    one = _first_per_group(rng, persons[np.isin(hh, cross)], hh[np.isin(hh, cross)], 1)[:, 0]
    one = rng.permutation(one)
    half = len(one) // 2
    source = np.concatenate([pairs[:, 0], one[:half]])
    target = np.concatenate([pairs[:, 1], one[half : 2 * half]])
    # The second registration copies the first person's identity (name, sex, birth, ID).
    for attribute in ("name", "male", "birth", "region", "seq"):
        values = getattr(people, attribute)
        values[target] = values[source]
    invalid_count = n["invalid_bad_checksum"] + n["invalid_malformed"] + n["invalid_missing"]
    invalid_hh = pick(rng, np.flatnonzero(ordinary), invalid_count)
    invalid = rng.permutation(
        _first_per_group(rng, persons[np.isin(hh, invalid_hh)], hh[np.isin(hh, invalid_hh)], 1)[
            :, 0
        ]
    )
    id_text = _register_ids(rng, people, registrants, invalid, n)

    blocked = dead.copy()
    blocked[source] = blocked[target] = True
    blocked[invalid] = True

    # --- the four headline rules, by overlap cell ---
    eligible = np.flatnonzero(~blocked & (age >= 22) & (age <= 58))
    chosen = pick(rng, eligible, plan.distinct)
    parts: dict[str, list[np.ndarray]] = {rule: [] for rule in HEADLINE_RULES}
    at = 0
    for members in sorted(plan.cells):
        block = chosen[at : at + plan.cells[members]]
        at += len(block)
        for rule in members:
            parts[rule].append(block)
    headline = {rule: np.sort(np.concatenate(blocks)) for rule, blocks in parts.items()}
    owners = headline[CAR]
    extra = plan.cars - len(owners)
    car_counts = np.ones(len(owners), dtype=np.int64)
    if extra > 0 and len(owners):
        car_counts += np.bincount(
            rng.choice(len(owners), size=extra, replace=extra > len(owners)), minlength=len(owners)
        )

    # --- strangers that look like registrants ---
    clean = np.flatnonzero(~blocked)
    adults = clean[(age[clean] >= 22) & (age[clean] <= 58)]
    twin_source = np.sort(pick(rng, adults, n["twins_name_birth"]))
    near_source = np.sort(pick(rng, np.setdiff1d(adults, twin_source), n["near_id_neighbours"]))
    people = people.extend(twins(rng, people, twin_source, region))
    make_unique(rng, people, fixed=base, outside=outside)
    people = people.extend(neighbours(rng, people, near_source, outside))
    twin_rows = np.arange(base, base + len(twin_source))
    near_rows = np.arange(base + len(twin_source), len(people))
    lookalikes: dict[str, list[np.ndarray]] = {dept: [] for dept, _ in _LOOKALIKE_SPLIT}
    for rows in (twin_rows, near_rows):
        total = sum(w for _, w in _LOOKALIKE_SPLIT)
        at = 0
        for i, (dept, weight) in enumerate(_LOOKALIKE_SPLIT):
            size = (
                len(rows) - at
                if i == len(_LOOKALIKE_SPLIT) - 1
                else round(len(rows) * weight / total)
            )
            lookalikes[dept].append(rows[at : at + size])
            at += size

    cast = Cast(
        people=people,
        register=register,
        registrants=registrants,
        others=np.arange(registrants, base),
        clean=clean,
        headline=headline,
        car_counts=car_counts,
        deaths=deaths,
        lookalikes={dept: np.concatenate(v) for dept, v in lookalikes.items()},
        medical_hh=medical_hh,
        medical_owners=clean[~controlled[clean]],
    )
    decoys = {
        "twins_name_birth": len(twin_rows),
        "near_id_neighbours": len(near_rows),
        "duplicate_pairs": len(source),
        "duplicate_same_household": len(pairs),
        "deaths_after_as_of": len(deaths["after_as_of"][0]),
        **{f"medical_{label}": len(v) for label, v in medical_hh.items() if label != "risk"},
        **{
            label: int(mask.sum())
            for label, mask in register.hh_flag.items()
            if label != "income_above_line"
        },
    }
    return _Scenario(plan, people, register, registrants, id_text, cast, decoys)


def _register_ids(
    rng: np.random.Generator,
    people: People,
    registrants: int,
    invalid: np.ndarray,
    n: dict[str, int],
) -> np.ndarray:
    """The register's ID column: valid IDs, except the planted bad checksums, malformed
    values (wrong length, letter O for zero, month 13) and blanks."""
    digits = digits17(people.codes()[:registrants])
    chars = id_ascii(digits)
    text = ascii_to_str(chars).astype("U20")
    bad = invalid[: n["invalid_bad_checksum"]]
    malformed = invalid[len(bad) : len(bad) + n["invalid_malformed"]]
    missing = invalid[len(bad) + len(malformed) :]
    check = np.frombuffer(CHECK_CHARS.encode("ascii"), dtype=np.uint8)
    old = np.argmax(check[None, :] == chars[bad, 17][:, None], axis=1)
    wrong = chars[bad].copy()
    wrong[:, 17] = check[(old + rng.integers(1, 11, len(bad))) % 11]
    text[bad] = ascii_to_str(wrong)
    variant = np.arange(len(malformed)) % 4
    full = ascii_to_str(chars[malformed])
    month13 = digits[malformed].copy()
    month13[:, 10:12] = (1, 3)
    extra = rng.integers(0, 10, len(malformed)).astype(str)
    text[malformed] = np.select(
        [variant == 0, variant == 1, variant == 2],
        [
            full.astype("U17"),
            np.char.add(full, extra),
            np.char.replace(full, "0", "O", count=1),
        ],
        ascii_to_str(id_ascii(month13)),
    )
    text[missing] = ""
    return text


def _department_frames(
    scenario: _Scenario,
    seed: int,
    hardening: hard.Hardening | None = None,
    county: int = 0,
    key_offset: dict[str, int] | None = None,
) -> tuple[dict[str, pl.DataFrame], dict[str, pl.DataFrame], dict]:
    """Internal (with owner) and output frames per department, and noise counts. A county after
    the first numbers its records after ``key_offset[registry]`` (the earlier counties' rows)
    and writes plates of its own letter."""
    plan, cast, people = scenario.plan, scenario.cast, scenario.people
    codes = people.codes()
    internal: dict[str, pl.DataFrame] = {}
    output: dict[str, pl.DataFrame] = {}
    noise: dict[str, dict[str, dict[str, int]]] = {}
    for name, builder in _BUILDERS.items():
        rng = _rng(seed, f"dept:{name}", county)
        first = 1 + (key_offset or {}).get(name, 0)
        dept = DEPARTMENTS[name]
        frame = builder(rng, cast, plan)
        frame = frame[rng.permutation(frame.height)]
        owner = frame["owner"].to_numpy()
        strangers = owner >= scenario.registrants + len(cast.others)
        noisy = identity_noise(
            rng,
            digits17(codes[owner]),
            people.name[owner],
            people.birth[owner],
            dept.birth_fill,
            strangers,
        )
        frame = frame.with_columns(
            record_key=pl.Series(
                _numbered(dept.key_prefix, np.arange(first, first + frame.height))
            ),
            name_out=noisy.name,
            id_out=noisy.id_number,
            birth_out=pl.Series(noisy.birth_date),
            male=pl.Series(people.male[owner]),
        )
        if name == "vehicles":
            frame = frame.with_columns(
                plate=dep.plates(rng, frame.height, _pools.PLATE_LETTERS[county]),
                address=dep.home_address(people, owner, rng),
            )
        if hardening is not None:
            frame = hard.apply(hardening, name, frame)  # noise counts: the default records
        output[name] = frame.select(dept.columns())
        if hardening is not None and name == "business":
            output[name] = output[name].with_columns(frame["address"].alias(hard.PREMISES))
        # The truth needs only the owner and the clean canonical fields.
        written_only = (
            "record_key",
            "owner",
            "name_out",
            "id_out",
            "birth_out",
            "male",
            "plate",
            "address",
        )
        internal[name] = frame.select(
            "record_key", "owner", *[c for c in frame.columns if c not in written_only]
        )
        registrant = owner < scenario.registrants
        noise[name] = {
            "all": noise_counts(noisy, np.ones(len(owner), dtype=bool)),
            "true_links": noise_counts(noisy, registrant),
        }
    return internal, output, noise


def _register_frames(
    scenario: _Scenario, person_offset: int = 0, household_offset: int = 0
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The register as written (Chinese headers) and its internal form for the truth; a county
    after the first numbers its persons and households after the earlier counties'."""
    reg, people, count = scenario.register, scenario.people, scenario.registrants
    hh = reg.hh
    person_key = _numbered("P", np.arange(person_offset + 1, person_offset + count + 1))
    household_key = _numbered("H", hh + household_offset + 1)
    exit_year = pl.Series(np.where(reg.hh_exit_year[hh] > 0, reg.hh_exit_year[hh], 0)).replace(
        0, None
    )
    status = np.where(reg.hh_exit_year[hh] > 0, "已脱贫", "贫困户")
    income = pl.Series(reg.hh_income[hh])
    internal = pl.DataFrame(
        {
            "person_key": person_key,
            "household_key": household_key,
            "row": np.arange(count, dtype=np.int64),
            "birth_date": people.birth[:count],
            "id_text": scenario.id_text,
            "poverty_status": status,
            "exit_year": exit_year,
            "income": income,
        }
    )
    columns = POVERTY_COLUMNS
    written = pl.DataFrame(
        {
            columns["key"]: person_key,
            columns["household"]: household_key,
            columns["name"]: names_to_str(people.name[:count]),
            columns["sex"]: np.where(people.male[:count], "男", "女"),
            columns["ethnicity"]: np.array(_pools.ETHNICITIES)[reg.ethnicity],
            columns["id_number"]: scenario.id_text,
            columns["relation"]: np.array(_pools.RELATIONS)[reg.relation],
            columns["township"]: TOWNSHIP_NAMES[reg.hh_township[hh]],
            columns["village"]: VILLAGE_NAMES[reg.hh_village[hh]],
            columns["household_size"]: reg.hh_size[hh],
            columns["income_per_capita"]: internal.select(plain_amount(pl.col("income")))[:, 0],
            columns["identified_year"]: reg.hh_identified[hh],
            columns["poverty_status"]: status,
            columns["exit_year"]: exit_year,
        }
    ).with_columns(pl.col(columns["id_number"]).replace("", None))
    return written, internal


def _links(
    internal: dict[str, pl.DataFrame], registrants: int, person_offset: int = 0
) -> pl.DataFrame:
    frames = [
        frame.filter(pl.col("owner") < registrants).select(
            pl.lit(name).alias("registry"),
            "record_key",
            pl.format(
                "P{}", (pl.col("owner") + 1 + person_offset).cast(pl.String).str.zfill(8)
            ).alias("person_key"),
        )
        for name, frame in internal.items()
    ]
    return pl.concat(frames).sort("registry", "record_key")


def _check(plan: Plan, counts: dict[str, dict[str, int]], distinct: int) -> None:
    """The rules evaluated on the data must give exactly the planned numbers."""
    n = plan.n
    expected = {rule: plan.rule_total(rule) for rule in HEADLINE_RULES}
    expected["false_exit"] = n["false_exit_persons"]
    problems = [
        f"{rule}: {counts[rule]['persons']} persons, planned {want}"
        for rule, want in expected.items()
        if counts[rule]["persons"] != want
    ]
    if counts[CAR]["cars"] != plan.cars:
        problems.append(f"car_owner: {counts[CAR]['cars']} cars, planned {plan.cars}")
    if counts["false_exit"]["households"] != n["false_exit_households"]:
        problems.append("false_exit: household count differs from the plan")
    if distinct != plan.distinct:
        problems.append(f"ineligible_distinct: {distinct}, planned {plan.distinct}")
    planned_persons = {
        "duplicate_registration": 2 * n["duplicate_pairs"],
        "invalid_id": n["invalid_bad_checksum"] + n["invalid_malformed"] + n["invalid_missing"],
        "deceased_registered": n["working_age_deaths"]
        + n["deaths_elderly"]
        + n["deaths_exited_before_window"]
        + n["deaths_poor_in_window"],
    }
    problems += [
        f"{rule}: {counts[rule]['persons']} persons, planned {want}"
        for rule, want in planned_persons.items()
        if counts[rule]["persons"] != want
    ]
    planned_households = {
        "income_above_line": n["income_above_line_households"],
        "working_age_death_risk": n["working_age_deaths"],
        "medical_cost_risk": n["medical_risk_households"],
    }
    problems += [
        f"{rule}: {counts[rule]['households']} households, planned {want}"
        for rule, want in planned_households.items()
        if counts[rule]["households"] != want
    ]
    if problems:
        raise RuntimeError("scenario does not match its plan: " + "; ".join(problems))


def _sum_counts(parts: list[dict[str, int]]) -> dict[str, int | float]:
    total: dict[str, int | float] = {}
    for part in parts:
        for key, value in part.items():
            total[key] = total.get(key, 0) + value
    records = total.get("records", 0) or 1
    rates = {f"{k}_rate": round(v / records, 4) for k, v in total.items() if k != "records"}
    return {**total, **rates}


def _exits(reg: Register) -> dict[str, dict[str, int]]:
    return {
        str(year): {
            "households": int((reg.hh_exit_year == year).sum()),
            "persons": int(reg.hh_size[reg.hh_exit_year == year].sum()),
        }
        for year in (2014, 2015)
    }


def _summary(
    scale: float,
    seed: int,
    counts: dict[str, dict[str, int]],
    distinct: int,
    rows: dict[str, int],
    households: int,
    links: pl.DataFrame,
    exits: dict[str, dict[str, int]],
    decoys: dict[str, int],
    noise: list[dict],
) -> dict:
    return {
        "scenario": "mashan",
        "scale": scale,
        "seed": seed,
        "as_of": AS_OF,
        "poverty_line": {str(k): v for k, v in POVERTY_LINE.items()},
        "rules": {rule: counts[rule] for rule in RULE_IDS},
        "ineligible_distinct": distinct,
        "rows": rows,
        "households": households,
        "links": {
            name: links.filter(pl.col("registry") == name).height
            for name in rows
            if name != "poverty"
        },
        "exits": exits,
        "false_exit_share_of_2014_exits": {
            "households": round(
                counts["false_exit"]["households"] / max(exits["2014"]["households"], 1), 4
            ),
            "persons": round(counts["false_exit"]["persons"] / max(exits["2014"]["persons"], 1), 4),
        },
        "decoys": decoys,
        "noise": {
            "all_records": _sum_counts([v["all"] for part in noise for v in part.values()]),
            "true_links": _sum_counts([v["true_links"] for part in noise for v in part.values()]),
        },
    }


def _write_flags(flags: pl.DataFrame, truth: Path) -> None:
    # Register-only rules have no evidence record: empty fields, not quoted empty strings.
    no_evidence = pl.col("evidence_registry", "evidence_key").replace("", None)
    write_csv(flags.select(FLAG_COLUMNS).with_columns(no_evidence), truth / "flags.csv", "utf-8")


#: The largest scale one county holds (about a million registrants and two million other
#: residents; its ID numbers still fit its own region code). A larger scale spreads over
#: ``ceil(scale / COUNTY_SCALE)`` counties of equal scale.
COUNTY_SCALE = 10.0
#: payroll.xlsx holds at most 1,048,576 rows (12,000 payroll rows per unit of scale).
MAX_SCALE = 80.0


def generate(
    out_dir: Path,
    scale: float = 1.0,
    seed: int = DEFAULT_SEED,
    profile: str = "default",
    county_scale: float = COUNTY_SCALE,
) -> dict:
    """Write the Mashan scenario (manifest, data, truth) into ``out_dir``; return the summary.

    Every planted count is ``round(count * scale)`` of its scale-1 value; the same scale and
    seed always give byte-identical files. ``profile="hard"`` adds the hard linkage cases of
    `sample.hard` (and a README.md describing them). A scale above ``county_scale`` spreads
    over several counties (`_generate_counties`); tests lower ``county_scale`` to reach that
    path at a small scale.
    """
    if profile not in hard.PROFILES:
        raise LinkauditError(
            f"unknown profile {profile!r}", hint=f"use one of: {', '.join(hard.PROFILES)}"
        )
    if not scale > 0:
        raise LinkauditError(f"scale must be positive, got {scale}", hint="e.g. --scale 0.1")
    if scale > MAX_SCALE:
        raise LinkauditError(
            f"scale {scale} is too large (at most {MAX_SCALE:g}: payroll.xlsx holds at most "
            "1,048,576 rows)",
            hint="use a smaller --scale",
        )
    out_dir = Path(out_dir)
    scale = float(scale)  # 1 and 1.0 must write the same summary
    counties = math.ceil(scale / county_scale)
    if counties > 1:
        if profile != "default":
            raise LinkauditError(
                f"--profile {profile} at scale {scale:g}: the hard cases are planted in one "
                f"county only (scale at most {county_scale:g})",
                hint=f"use --scale {county_scale:g} or less with --profile {profile}",
            )
        return _generate_counties(out_dir, scale, seed, counties)
    plan = make_plan(scale)
    scenario = _cast(plan, seed)
    hardening = (
        hard.prepare(
            scenario.people, scenario.registrants, scale, seed, scenario.cast.headline[CAR]
        )
        if profile == "hard"
        else None
    )
    internal, output, noise = _department_frames(scenario, seed, hardening)
    poverty, register = _register_frames(scenario)

    flags = evaluate(register, internal)
    counts = rule_counts(flags)
    distinct = flags.filter(pl.col("rule_id").is_in(HEADLINE_RULES))["person_key"].n_unique()
    _check(plan, counts, distinct)
    links = _links(internal, scenario.registrants)

    data = out_dir / "data"
    truth = out_dir / "truth"
    data.mkdir(parents=True, exist_ok=True)
    truth.mkdir(parents=True, exist_ok=True)
    text = manifest_text()
    (out_dir / "linkaudit.yaml").write_text(
        text if hardening is None else hard.manifest(text), encoding="utf-8"
    )
    if hardening is not None:
        (out_dir / "README.md").write_text(hard.readme(hardening), encoding="utf-8")
    write_csv(poverty, data / "poverty.csv", "utf-8")
    write_payroll_xlsx(output["payroll"], data / DEPARTMENTS["payroll"].filename)
    write_csv(output["vehicles"], data / DEPARTMENTS["vehicles"].filename, "gbk")
    write_parquet(output["property"], data / DEPARTMENTS["property"].filename)
    write_jsonl(output["business"], data / DEPARTMENTS["business"].filename)
    write_csv(output["deaths"], data / DEPARTMENTS["deaths"].filename, "utf-8-sig")
    write_csv(output["medical"], data / DEPARTMENTS["medical"].filename, "utf-8")
    write_csv(links, truth / "links.csv", "utf-8")
    _write_flags(flags, truth)

    reg = scenario.register
    rows = {"poverty": poverty.height, **{name: frame.height for name, frame in output.items()}}
    summary = _summary(
        scale, seed, counts, distinct, rows, reg.households, links, _exits(reg),
        scenario.decoys, [noise],
    )  # fmt: skip
    if hardening is not None:
        summary = {**summary, "profile": profile, "hard": hardening.counts}
    write_json(summary, truth / "summary.json")
    return summary


class _Appender:
    """Department files written county by county: CSV and JSON lines appended (one header, one
    BOM); the xlsx and Parquet files, a few hundred thousand rows, kept and written at the end."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.kept: dict[str, list[pl.DataFrame]] = {"payroll": [], "property": []}
        self.started: set[Path] = set()

    def csv(self, frame: pl.DataFrame, name: str, encoding: str) -> None:
        path = self.data / name
        header = path not in self.started
        self.started.add(path)
        with path.open("wb" if header else "ab") as handle:
            if encoding == "utf-8-sig" and header:
                handle.write(b"\xef\xbb\xbf")
            text = frame.write_csv(null_value="", include_header=header)
            handle.write(text.encode("gbk" if encoding == "gbk" else "utf-8"))

    def add(self, poverty: pl.DataFrame, output: dict[str, pl.DataFrame]) -> None:
        self.csv(poverty, "poverty.csv", "utf-8")
        for name in self.kept:
            self.kept[name].append(output[name])
        self.csv(output["vehicles"], DEPARTMENTS["vehicles"].filename, "gbk")
        path = self.data / DEPARTMENTS["business"].filename
        with path.open("ab" if path in self.started else "wb") as handle:
            handle.write(output["business"].write_ndjson().encode("utf-8"))
        self.started.add(path)
        self.csv(output["deaths"], DEPARTMENTS["deaths"].filename, "utf-8-sig")
        self.csv(output["medical"], DEPARTMENTS["medical"].filename, "utf-8")

    def close(self) -> None:
        write_payroll_xlsx(
            pl.concat(self.kept["payroll"]), self.data / DEPARTMENTS["payroll"].filename
        )
        write_parquet(
            pl.concat(self.kept["property"]), self.data / DEPARTMENTS["property"].filename
        )


def _generate_counties(out_dir: Path, scale: float, seed: int, counties: int) -> dict:
    """A scenario beyond one county: ``counties`` counties of scale ``scale / counties`` each,
    built one after the other (memory bounded by one county) with their own region code
    (`_pools.COUNTY_CODES`), random streams, plate letter and key ranges, and ID numbers unique
    across counties. The files are the counties' rows one county after the other; the truth is
    the union of the counties' truths, checked county by county against the county's plan."""
    if counties > min(len(_pools.COUNTY_CODES), len(_pools.PLATE_LETTERS)):
        raise LinkauditError(
            f"scale {scale:g} needs {counties} counties; the generator knows "
            f"{min(len(_pools.COUNTY_CODES), len(_pools.PLATE_LETTERS))}",
            hint="use a smaller --scale",
        )
    plan = make_plan(scale / counties)
    data, truth = out_dir / "data", out_dir / "truth"
    data.mkdir(parents=True, exist_ok=True)
    truth.mkdir(parents=True, exist_ok=True)
    (out_dir / "linkaudit.yaml").write_text(manifest_text(), encoding="utf-8")
    files = _Appender(data)
    taken = np.empty(0, dtype=np.int64)  # sorted ID bodies of the counties built so far
    offsets = dict.fromkeys(["poverty", "households", *_BUILDERS], 0)
    links: list[pl.DataFrame] = []
    flags: list[pl.DataFrame] = []
    noise: list[dict] = []
    decoys: dict[str, int] = {}
    exits = {year: {"households": 0, "persons": 0} for year in ("2014", "2015")}
    described = []
    for county in range(counties):
        region = county_region(county)
        scenario = _cast(plan, seed, region, county, taken)
        internal, output, county_noise = _department_frames(scenario, seed, None, county, offsets)
        poverty, register = _register_frames(scenario, offsets["poverty"], offsets["households"])
        county_flags = evaluate(register, internal)
        county_distinct = county_flags.filter(pl.col("rule_id").is_in(HEADLINE_RULES))[
            "person_key"
        ].n_unique()
        _check(plan, rule_counts(county_flags), county_distinct)
        links.append(_links(internal, scenario.registrants, offsets["poverty"]))
        flags.append(county_flags)
        noise.append(county_noise)
        files.add(poverty, output)
        for label, value in scenario.decoys.items():
            decoys[label] = decoys.get(label, 0) + value
        for year, part in _exits(scenario.register).items():
            for key, value in part.items():
                exits[year][key] += value
        described.append(
            {
                "region_code": region.home,
                "registrants": scenario.registrants,
                "households": scenario.register.households,
            }
        )
        offsets["poverty"] += poverty.height
        offsets["households"] += scenario.register.households
        for name, frame in output.items():
            offsets[name] += frame.height
        taken = np.sort(np.concatenate([taken, scenario.people.codes()]))
        del scenario, internal, output, poverty, register
    files.close()
    all_links = pl.concat(links).sort("registry", "record_key")
    write_csv(all_links, truth / "links.csv", "utf-8")
    all_flags = pl.concat(flags).sort(list(FLAG_COLUMNS))
    _write_flags(all_flags, truth)
    counts = rule_counts(all_flags)
    distinct = all_flags.filter(pl.col("rule_id").is_in(HEADLINE_RULES))["person_key"].n_unique()
    rows = {name: offsets[name] for name in ("poverty", *_BUILDERS)}
    summary = _summary(
        scale, seed, counts, distinct, rows, offsets["households"], all_links, exits, decoys,
        noise,
    )  # fmt: skip
    summary["counties"] = [{"scale": plan.scale, **part} for part in described]
    write_json(summary, truth / "summary.json")
    return summary
