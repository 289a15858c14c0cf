"""How many of everything the scenario plants, at scale 1 and scaled.

At scale 1 the headline numbers are the Mashan audit's own; at any other scale every count is
``round(count * scale)`` (Python's round), and the overlap cells of the four headline rules are
adjusted so that each rule's total and the distinct total are both exactly the rounded numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PAYROLL, CAR, HOUSING, BUSINESS = (
    "payroll_active",
    "car_owner",
    "county_seat_housing",
    "business_owner",
)
HEADLINE_RULES = (PAYROLL, CAR, HOUSING, BUSINESS)
RULE_IDS = (
    PAYROLL, CAR, HOUSING, BUSINESS,
    "false_exit", "income_above_line", "deceased_registered", "working_age_death_risk",
    "medical_cost_risk", "duplicate_registration", "invalid_id",
)  # fmt: skip

# The audit's findings (DOMAIN.md): persons per rule, distinct persons, cars.
HEADLINE_TOTALS = {PAYROLL: 343, CAR: 2454, HOUSING: 43, BUSINESS: 439}
HEADLINE_DISTINCT = 3119
CARS = 2645
# Overlap cells at scale 1: persons in exactly these rules (singles follow from the totals).
# Extra memberships: pairs 92+42+12+4+2 = 152, triples 2*(1+2+1) = 8, total 160 = 3279 - 3119.
OVERLAP_CELLS: dict[tuple[str, ...], int] = {
    (PAYROLL, CAR): 92,
    (CAR, BUSINESS): 42,
    (CAR, HOUSING): 12,
    (PAYROLL, BUSINESS): 4,
    (HOUSING, BUSINESS): 2,
    (PAYROLL, CAR, HOUSING): 1,
    (CAR, HOUSING, BUSINESS): 2,
    (PAYROLL, CAR, BUSINESS): 1,
}

# Counts at scale 1; each is scaled with round(count * scale).
BASE: dict[str, int] = {
    # register
    "households": 25_000,
    "false_exit_households": 608,
    "false_exit_persons": 2_272,
    # 608 / 6,681 = 9.10 %, 2,272 / 25,528 = 8.90 %: the audit's shares of the 2014 exits
    "exit2014_households": 6_681,
    "exit2014_persons": 25_528,
    "exit2015_households": 5_200,
    "exit2014_at_line": 40,  # income exactly 2,736
    "exit2014_below_national": 150,  # 2,736 < income < 2,800
    "exit2015_at_line": 30,  # income exactly 2,855
    "poor_near_line": 120,  # 贫困户, 2,800 <= income < 2,855
    "income_above_line_households": 75,
    "income_above_line_at_line": 10,  # exactly 2,855, flagged (>=)
    "duplicate_pairs": 120,
    "duplicate_same_household": 48,  # of the pairs
    "invalid_bad_checksum": 100,
    "invalid_malformed": 50,
    "invalid_missing": 50,
    # deaths
    "working_age_deaths": 60,  # one per household
    "deaths_elderly": 160,
    "deaths_exited_before_window": 40,
    "deaths_poor_in_window": 40,
    "deaths_after_as_of": 80,
    # medical
    "medical_risk_households": 80,
    "medical_near_threshold": 50,
    "medical_at_threshold": 10,
    "medical_before_window": 40,
    "medical_after_as_of": 20,
    "medical_poor_high": 60,
    "medical_registrant_rows": 15_000,
    # department decoys for registrants
    "payroll_retired": 80,
    "payroll_departed": 60,
    "vehicles_non_car": 4_000,
    "vehicles_closed_car": 300,
    "property_homestead": 2_500,
    "property_resettlement_seat": 400,
    "property_commercial_elsewhere": 60,
    "property_selfbuilt_elsewhere": 300,
    "business_closed": 200,
    "business_cooperative": 300,
    # non-registrants built to fool a linker (each owns one counted record)
    "twins_name_birth": 300,
    "near_id_neighbours": 300,
    # department sizes (rows), non-registrants fill up to these
    "population_others": 200_000,
    "payroll_rows": 12_000,
    "vehicles_rows": 60_000,
    "property_rows": 20_000,
    "business_rows": 15_000,
    "deaths_rows": 6_000,
    "medical_rows": 40_000,
}


def scaled(count: int, scale: float) -> int:
    """``round(count * scale)``, the scenario's one scaling rule."""
    return round(count * scale)


@dataclass
class Plan:
    """Scaled counts, the headline overlap cells and the cars per car owner."""

    scale: float
    n: dict[str, int]
    cells: dict[tuple[str, ...], int] = field(default_factory=dict)
    cars: int = 0

    def rule_total(self, rule: str) -> int:
        """Persons planted for one headline rule (sum of the cells containing it)."""
        return sum(c for members, c in self.cells.items() if rule in members)

    @property
    def distinct(self) -> int:
        """Distinct persons over the four headline rules."""
        return sum(self.cells.values())


def make_plan(scale: float) -> Plan:
    """Scale every count; solve the headline cells so totals and distinct are exact."""
    n = {key: scaled(value, scale) for key, value in BASE.items()}
    # Household sizes must be feasible (1 to 9 persons each).
    for prefix in ("false_exit", "exit2014"):
        households, persons = n[f"{prefix}_households"], n[f"{prefix}_persons"]
        n[f"{prefix}_persons"] = min(max(persons, households), 9 * households)
    n["exit2014_households"] = max(n["exit2014_households"], n["false_exit_households"])
    n["exit2014_persons"] = max(
        n["exit2014_persons"],
        n["false_exit_persons"] + n["exit2014_households"] - n["false_exit_households"],
    )

    totals = {rule: scaled(count, scale) for rule, count in HEADLINE_TOTALS.items()}
    distinct = scaled(HEADLINE_DISTINCT, scale)
    cells = {members: scaled(count, scale) for members, count in OVERLAP_CELLS.items()}
    extra_needed = sum(totals.values()) - distinct
    extra = sum((len(m) - 1) * c for m, c in cells.items())
    # The largest cell absorbs the rounding difference in overlaps.
    cells[(PAYROLL, CAR)] = max(0, cells[(PAYROLL, CAR)] + extra_needed - extra)
    for rule in HEADLINE_RULES:
        in_overlaps = sum(c for m, c in cells.items() if rule in m)
        # At tiny scales overlaps may exceed a total: shrink the cells containing the rule.
        for members in sorted(cells, key=lambda m: -cells[m]):
            if in_overlaps <= totals[rule]:
                break
            if rule in members and cells[members]:
                cut = min(cells[members], in_overlaps - totals[rule])
                cells[members] -= cut
                in_overlaps -= cut
    for rule in HEADLINE_RULES:
        cells[(rule,)] = totals[rule] - sum(c for m, c in cells.items() if rule in m)
    plan = Plan(scale=scale, n=n, cells={m: c for m, c in cells.items()})
    owners = plan.rule_total(CAR)
    plan.cars = max(scaled(CARS, scale), owners)
    return plan
