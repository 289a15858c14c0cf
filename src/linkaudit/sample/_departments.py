"""The six department registries as clean internal tables: who owns each record, and its fields.

Each builder returns a polars frame with an ``owner`` column (row of ``People``) and the
record's canonical fields in clean form (text categories, ``Date``s, amounts in cents).
Noise and each department's own headers and formats are applied later, in ``_write``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from linkaudit.sample import _pools
from linkaudit.sample._chars import char_tables
from linkaudit.sample._plan import BUSINESS, CAR, HOUSING, PAYROLL, Plan
from linkaudit.sample._population import VILLAGE_TOWNSHIP, VILLAGES, People, Register

TOWNSHIP_NAMES = np.array([t for t, _ in _pools.TOWNSHIPS])
TOWNSHIP_SHORT = np.array(
    [t.removesuffix("瑶族乡").removesuffix("镇").removesuffix("乡") for t in TOWNSHIP_NAMES]
)
VILLAGE_NAMES = np.array([*VILLAGES, ""])  # index -1 → ""
SEAT = 0  # index of 白山镇 in TOWNSHIPS
WINDOW_START = np.datetime64("2015-01-01")
AS_OF = np.datetime64("2015-12-31")
_YEAR = 365


@dataclass
class Cast:
    """Who plays which part: everything the department builders need to know."""

    people: People
    register: Register
    registrants: int  # rows 0..registrants-1 of people are register rows
    others: np.ndarray  # rows of ordinary non-registrants
    clean: np.ndarray  # register rows free to own decoy records
    headline: dict[str, np.ndarray]  # rule → register rows planted for it
    car_counts: np.ndarray  # cars per row of headline[CAR]
    deaths: dict[str, tuple[np.ndarray, np.ndarray]]  # label → (rows, death dates)
    lookalikes: dict[str, np.ndarray]  # department → stranger rows owning one counted record
    medical_hh: dict[str, np.ndarray]  # label → household indexes with controlled medical costs
    medical_owners: np.ndarray  # register rows allowed ordinary medical rows


def pick(rng: np.random.Generator, pool: np.ndarray, count: int) -> np.ndarray:
    """``count`` distinct items of ``pool`` in random order (fewer if the pool is smaller)."""
    return rng.permutation(pool)[: min(count, len(pool))]


def dates_between(
    rng: np.random.Generator, low: np.ndarray | str, high: np.ndarray | str, n: int
) -> np.ndarray:
    """Uniform random days in ``[low, high]`` (scalars or arrays)."""
    low = np.broadcast_to(np.asarray(low, dtype="datetime64[D]"), (n,))
    high = np.maximum(np.broadcast_to(np.asarray(high, dtype="datetime64[D]"), (n,)), low)
    span = (high - low).astype(np.int64) + 1
    return low + (rng.random(n) * span).astype(np.int64)


def cat(*parts: str | np.ndarray | pl.Series) -> pl.Series:
    """Concatenate string constants and per-row arrays into one string series."""
    columns = {f"c{i}": p for i, p in enumerate(parts) if not isinstance(p, str)}
    exprs = [
        pl.lit(p) if isinstance(p, str) else pl.col(f"c{i}").cast(pl.String)
        for i, p in enumerate(parts)
    ]
    return pl.DataFrame(columns).select(pl.concat_str(exprs).alias("s")).to_series()


def _choice(
    rng: np.random.Generator,
    values: tuple[str, ...],
    n: int,
    weights: tuple[float, ...] | None = None,
) -> np.ndarray:
    p = None if weights is None else np.array(weights, dtype=np.float64) / sum(weights)
    return np.array(values)[rng.choice(len(values), size=n, p=p)]


def _frame(owner: np.ndarray, **columns: np.ndarray | pl.Series) -> pl.DataFrame:
    return pl.DataFrame({"owner": owner.astype(np.int64), **columns})


def _parts(frames: list[pl.DataFrame]) -> pl.DataFrame:
    return pl.concat([f for f in frames if f.height], how="vertical")


def _aged(cast: Cast, rows: np.ndarray, low: int, high: int) -> np.ndarray:
    age = cast.people.age(rows)
    return rows[(age >= low) & (age <= high)]


# --- addresses ---------------------------------------------------------------------------


def home_address(people: People, rows: np.ndarray, rng: np.random.Generator) -> pl.Series:
    """Where a person lives: their village, or a county-seat street."""
    township = people.township[rows]
    village = people.village[rows]
    street = np.array(_pools.SEAT_STREETS)[rng.integers(0, len(_pools.SEAT_STREETS), len(rows))]
    number = rng.integers(1, 300, len(rows)).astype(str)
    rural = cat(_pools.COUNTY, TOWNSHIP_NAMES[township], VILLAGE_NAMES[village])
    urban = cat(_pools.COUNTY, TOWNSHIP_NAMES[township], street, number, "号")
    return pl.Series(np.where(village >= 0, rural.to_numpy(), urban.to_numpy()))


def seat_street(rng: np.random.Generator, n: int, estate: bool) -> pl.Series:
    """An address on a county-seat street, optionally a flat in an estate."""
    street = np.array(_pools.SEAT_STREETS)[rng.integers(0, len(_pools.SEAT_STREETS), n)]
    number = rng.integers(1, 300, n).astype(str)
    if not estate:
        return cat(_pools.COUNTY, _pools.COUNTY_SEAT, street, number, "号")
    name = np.array(_pools.ESTATES)[rng.integers(0, len(_pools.ESTATES), n)]
    block = rng.integers(1, 20, n).astype(str)
    room = (rng.integers(1, 19, n) * 100 + rng.integers(1, 5, n)).astype(str)
    return cat(
        _pools.COUNTY, _pools.COUNTY_SEAT, street, number, "号", name, block, "栋", room, "室"
    )


def village_address(
    rng: np.random.Generator, township: np.ndarray, village: np.ndarray
) -> pl.Series:
    """A house in a hamlet of a village."""
    n = len(township)
    hamlet = np.array(_pools.HAMLETS)[rng.integers(0, len(_pools.HAMLETS), n)]
    number = rng.integers(1, 120, n).astype(str)
    return cat(
        _pools.COUNTY, TOWNSHIP_NAMES[township], VILLAGE_NAMES[village], hamlet, number, "号"
    )


def market_street(rng: np.random.Generator, township: np.ndarray) -> pl.Series:
    """An address on the market street of a (non-seat) township."""
    number = rng.integers(1, 200, len(township)).astype(str)
    return cat(
        _pools.COUNTY, TOWNSHIP_NAMES[township], TOWNSHIP_SHORT[township], "街", number, "号"
    )


def random_villages(
    rng: np.random.Generator, n: int, exclude_seat: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Random (township, village) pairs, optionally outside the county seat."""
    allowed = np.flatnonzero(VILLAGE_TOWNSHIP != SEAT) if exclude_seat else np.arange(len(VILLAGES))
    village = allowed[rng.integers(0, len(allowed), n)]
    return VILLAGE_TOWNSHIP[village], village


def other_townships(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random township indexes other than the county seat."""
    return rng.integers(1, len(TOWNSHIP_NAMES), n)


# --- payroll ---------------------------------------------------------------------------------


def _employers() -> tuple[np.ndarray, np.ndarray]:
    names = [n for n, _ in _pools.COUNTY_EMPLOYERS]
    kinds = [k for _, k in _pools.COUNTY_EMPLOYERS]
    for township in TOWNSHIP_NAMES:
        for suffix, kind in _pools.TOWNSHIP_EMPLOYERS:
            names.append(f"{_pools.COUNTY}{township}{suffix}")
            kinds.append(kind)
    return np.array(names), np.array(kinds)


def _payroll_rows(
    rng: np.random.Generator, people: People, owner: np.ndarray, status: np.ndarray
) -> pl.DataFrame:
    names, kinds = _employers()
    employer = rng.integers(0, len(names), len(owner))
    birth = people.birth[owner]
    low = np.maximum(birth + 20 * _YEAR + 5, np.datetime64("1978-09-01"))
    start = dates_between(
        rng, low, np.minimum(low + 30 * _YEAR, np.datetime64("2015-11-30")), len(owner)
    )
    return _frame(
        owner,
        employer=names[employer],
        employer_type=kinds[employer],
        employment_status=status,
        start_date=start,
    )


def payroll(rng: np.random.Generator, cast: Cast, plan: Plan) -> pl.DataFrame:
    """Fiscally-supported staff: planted active registrants, retired/departed ones, strangers."""
    n = plan.n
    active = cast.headline[PAYROLL]
    free = np.setdiff1d(cast.clean, active)
    retired = pick(rng, _aged(cast, free, 60, 90), n["payroll_retired"])
    departed = pick(rng, _aged(cast, np.setdiff1d(free, retired), 25, 55), n["payroll_departed"])
    lookalike = cast.lookalikes["payroll"]
    planted = len(active) + len(retired) + len(departed) + len(lookalike)
    others = pick(rng, _aged(cast, cast.others, 22, 85), max(n["payroll_rows"] - planted, 0))
    age = cast.people.age(others)
    other_status = np.where(
        age >= 60, "退休", np.where(rng.random(len(others)) < 0.92, "在职", "离职")
    )
    owner = np.concatenate([active, retired, departed, lookalike, others])
    status = np.concatenate(
        [
            np.full(len(active), _pools.EMPLOYMENT_ACTIVE),
            np.full(len(retired), "退休"),
            np.full(len(departed), "离职"),
            np.full(len(lookalike), _pools.EMPLOYMENT_ACTIVE),
            other_status,
        ]
    )
    return _payroll_rows(rng, cast.people, owner, status)


# --- vehicles --------------------------------------------------------------------------------


def _vehicle_rows(
    rng: np.random.Generator,
    people: People,
    owner: np.ndarray,
    vtype: np.ndarray,
    status: np.ndarray,
) -> pl.DataFrame:
    low = np.maximum(people.birth[owner] + 18 * _YEAR + 5, np.datetime64("2000-01-01"))
    registered = dates_between(rng, low, "2015-12-31", len(owner))
    return _frame(owner, vehicle_type=vtype, vehicle_status=status, registered_on=registered)


def vehicles(rng: np.random.Generator, cast: Cast, plan: Plan) -> pl.DataFrame:
    """Motor vehicles: counted cars of planted owners, non-car and closed-car decoys, others."""
    n = plan.n
    car_owner = np.repeat(cast.headline[CAR], cast.car_counts)
    non_car = pick(rng, _aged(cast, cast.clean, 18, 70), n["vehicles_non_car"])
    closed = pick(rng, _aged(cast, cast.clean, 20, 65), n["vehicles_closed_car"])
    lookalike = cast.lookalikes["vehicles"]
    planted = len(car_owner) + len(non_car) + len(closed) + len(lookalike)
    count = max(n["vehicles_rows"] - planted, 0)
    adults = _aged(cast, cast.others, 18, 80)
    others = adults[rng.integers(0, len(adults), count)]
    other_is_car = rng.random(count) < 0.65
    other_type = np.where(
        other_is_car,
        _choice(rng, _pools.CAR_TYPES, count, _pools.CAR_TYPE_WEIGHTS),
        _choice(rng, _pools.NON_CAR_TYPES, count, _pools.NON_CAR_TYPE_WEIGHTS),
    )
    other_status = _choice(rng, ("正常", "注销", "报废"), count, (88, 7, 5))
    non_car_status = _choice(rng, ("正常", "注销", "报废"), len(non_car), (90, 6, 4))
    owner = np.concatenate([car_owner, non_car, closed, lookalike, others])
    vtype = np.concatenate(
        [
            _choice(rng, _pools.CAR_TYPES, len(car_owner), _pools.CAR_TYPE_WEIGHTS),
            _choice(rng, _pools.NON_CAR_TYPES, len(non_car), _pools.NON_CAR_TYPE_WEIGHTS),
            _choice(rng, _pools.CAR_TYPES, len(closed), _pools.CAR_TYPE_WEIGHTS),
            _choice(rng, _pools.CAR_TYPES, len(lookalike), _pools.CAR_TYPE_WEIGHTS),
            other_type,
        ]
    )
    status = np.concatenate(
        [
            np.full(len(car_owner), _pools.VEHICLE_COUNTED_STATUS),
            non_car_status,
            _choice(rng, _pools.VEHICLE_OTHER_STATUS, len(closed)),
            np.full(len(lookalike), _pools.VEHICLE_COUNTED_STATUS),
            other_status,
        ]
    )
    return _vehicle_rows(rng, cast.people, owner, vtype, status)


def plates(rng: np.random.Generator, n: int, letter: str = "A") -> pl.Series:
    """Distinct plates, 桂A·XY123 (two symbols, three digits); ``letter`` is the prefecture's."""
    symbols = len(_pools.PLATE_SYMBOLS)
    code = rng.choice(symbols * symbols * 1000, size=n, replace=False)
    alphabet = np.array(list(_pools.PLATE_SYMBOLS))
    first = alphabet[code // (symbols * 1000)]
    second = alphabet[code // 1000 % symbols]
    digits = np.char.zfill((code % 1000).astype(str), 3)
    return cat(f"桂{letter}·", first, second, digits)


# --- property --------------------------------------------------------------------------------


def _property_rows(
    rng: np.random.Generator, owner: np.ndarray, ptype: np.ndarray, location: pl.Series
) -> pl.DataFrame:
    n = len(owner)
    low = np.select(
        [
            ptype == "商品房",
            ptype == _pools.PROPERTY_RESETTLEMENT,
            ptype == _pools.PROPERTY_ECONOMY,
        ],
        [60.0, 25.0, 50.0],
        80.0,
    )
    span = np.select(
        [ptype == "商品房", ptype == _pools.PROPERTY_RESETTLEMENT], [80.0, 100.0], 160.0
    )
    area = np.round(low + rng.random(n) * span, 2)
    registered = dates_between(rng, "2005-01-01", "2015-12-31", n)
    return _frame(
        owner, location=location, property_type=ptype, area=area, registered_on=registered
    )


def _locations(
    rng: np.random.Generator, people: People, owner: np.ndarray, kind: np.ndarray
) -> pl.Series:
    """Location text by kind: seat_flat, seat_house, home_village, other_village, other_street,
    resettlement, economy, nanning."""
    n = len(owner)
    township, village = people.township[owner], people.village[owner].copy()
    # Street dwellers of the county seat own their homestead in one of its villages.
    village[village < 0] = 0
    other_t, other_v = random_villages(rng, n, exclude_seat=True)
    seat_villages = np.flatnonzero(VILLAGE_TOWNSHIP == SEAT)
    seat_v = seat_villages[rng.integers(0, len(seat_villages), n)]
    block, unit, room = (
        rng.integers(1, 30, n).astype(str),
        rng.integers(1, 5, n).astype(str),
        rng.integers(101, 605, n).astype(str),
    )
    region = np.array([name for _, name in _pools.OTHER_REGIONS[:6]])[rng.integers(0, 6, n)]
    number = rng.integers(1, 300, n).astype(str)
    options = {
        "seat_flat": seat_street(rng, n, estate=True),
        "seat_house": pl.Series(
            np.where(
                rng.random(n) < 0.5,
                seat_street(rng, n, estate=False).to_numpy(),
                village_address(rng, np.zeros(n, dtype=np.int64), seat_v).to_numpy(),
            )
        ),
        "home_village": village_address(rng, township, village),
        "other_village": village_address(rng, other_t, other_v),
        "other_street": market_street(rng, other_townships(rng, n)),
        "resettlement": cat(
            _pools.COUNTY,
            _pools.COUNTY_SEAT,
            "易地扶贫搬迁安置小区",
            block,
            "栋",
            unit,
            "单元",
            room,
            "号",
        ),
        "economy": cat(
            _pools.COUNTY, _pools.COUNTY_SEAT, "城东经济适用住房小区", block, "栋", room, "室"
        ),
        "nanning": cat(region, "民族大道", number, "号"),
    }
    out = np.empty(n, dtype=object)
    for label, values in options.items():
        mask = kind == label
        out[mask] = values.to_numpy()[mask]
    return pl.Series(out.astype(str))


def property_(rng: np.random.Generator, cast: Cast, plan: Plan) -> pl.DataFrame:
    """Real estate: planted county-seat homes, homestead/resettlement/elsewhere decoys, others."""
    n = plan.n
    people = cast.people
    counted = cast.headline[HOUSING]
    counted_type = np.where(rng.random(len(counted)) < 0.7, "商品房", "自建房")
    counted_kind = np.where(counted_type == "商品房", "seat_flat", "seat_house")
    homestead = pick(rng, _aged(cast, cast.clean, 25, 90), n["property_homestead"])
    resettled = pick(rng, _aged(cast, cast.clean, 25, 90), n["property_resettlement_seat"])
    commercial = pick(rng, _aged(cast, cast.clean, 25, 70), n["property_commercial_elsewhere"])
    selfbuilt = pick(rng, _aged(cast, cast.clean, 25, 80), n["property_selfbuilt_elsewhere"])
    lookalike = cast.lookalikes["property"]
    planted = (
        len(counted)
        + len(homestead)
        + len(resettled)
        + len(commercial)
        + len(selfbuilt)
        + len(lookalike)
    )
    count = max(n["property_rows"] - planted, 0)
    others = pick(rng, _aged(cast, cast.others, 22, 95), count)
    other_type = _choice(
        rng,
        (
            "商品房",
            "自建房",
            _pools.PROPERTY_ECONOMY,
            _pools.PROPERTY_HOMESTEAD,
            _pools.PROPERTY_RESETTLEMENT,
        ),
        len(others),
        (40, 25, 5, 28, 2),
    )
    where = rng.random(len(others))
    other_kind = np.select(
        [
            (other_type == "商品房") & (where < 0.7),
            (other_type == "商品房") & (where < 0.9),
            other_type == "商品房",
            (other_type == "自建房") & (where < 0.3),
            other_type == "自建房",
            other_type == _pools.PROPERTY_ECONOMY,
            other_type == _pools.PROPERTY_RESETTLEMENT,
        ],
        [
            "seat_flat",
            "other_street",
            "nanning",
            "seat_house",
            "home_village",
            "economy",
            "resettlement",
        ],
        "home_village",
    )
    owner = np.concatenate(
        [counted, homestead, resettled, commercial, selfbuilt, lookalike, others]
    )
    ptype = np.concatenate(
        [
            counted_type,
            np.full(len(homestead), _pools.PROPERTY_HOMESTEAD),
            np.full(len(resettled), _pools.PROPERTY_RESETTLEMENT),
            np.full(len(commercial), "商品房"),
            np.full(len(selfbuilt), "自建房"),
            np.full(len(lookalike), "商品房"),
            other_type,
        ]
    )
    commercial_kind = np.where(rng.random(len(commercial)) < 0.8, "other_street", "nanning")
    kind = np.concatenate(
        [
            counted_kind,
            np.full(len(homestead), "home_village"),
            np.full(len(resettled), "resettlement"),
            commercial_kind,
            np.full(len(selfbuilt), "other_village"),
            np.full(len(lookalike), "seat_flat"),
            other_kind,
        ]
    )
    # Homesteads stay in the owner's own village, which may be in the county seat (never
    # counted); the self-built decoys go to a village of another township.
    return _property_rows(rng, owner, ptype, _locations(rng, people, owner, kind))


# --- business --------------------------------------------------------------------------------


def _entity_names(
    rng: np.random.Generator, people: People, owner: np.ndarray, etype: np.ndarray
) -> pl.Series:
    n = len(owner)
    tables = char_tables()
    pool = np.concatenate([tables.given_male, tables.given_female])
    brand = pool[rng.integers(0, len(pool), (n, 2))].astype(np.uint32).view("<U2").ravel()
    township = people.township[owner]
    town = TOWNSHIP_NAMES[township]
    shop = cat(
        _pools.COUNTY,
        town,
        brand,
        np.array(_pools.SHOP_KINDS)[rng.integers(0, len(_pools.SHOP_KINDS), n)],
    )
    company_kind = np.array(_pools.COMPANY_KINDS)[rng.integers(0, len(_pools.COMPANY_KINDS), n)]
    company = cat(_pools.COUNTY, brand, company_kind, "有限公司")
    sole = cat(_pools.COUNTY, brand, company_kind, "经营部")
    coop = cat(
        _pools.COUNTY,
        town,
        brand,
        np.array(_pools.COOP_KINDS)[rng.integers(0, len(_pools.COOP_KINDS), n)],
        "专业合作社",
    )
    return pl.Series(
        np.select(
            [etype == "个体工商户", etype == "有限责任公司", etype == "个人独资企业"],
            [shop.to_numpy(), company.to_numpy(), sole.to_numpy()],
            coop.to_numpy(),
        )
    )


def business(rng: np.random.Generator, cast: Cast, plan: Plan) -> pl.DataFrame:
    """Business registrations: planted active owners, closed ones and cooperatives, others."""
    n = plan.n
    counted = cast.headline[BUSINESS]
    closed = pick(rng, _aged(cast, cast.clean, 20, 70), n["business_closed"])
    coop = pick(rng, _aged(cast, cast.clean, 22, 70), n["business_cooperative"])
    lookalike = cast.lookalikes["business"]
    planted = len(counted) + len(closed) + len(coop) + len(lookalike)
    count = max(n["business_rows"] - planted, 0)
    adults = _aged(cast, cast.others, 20, 75)
    others = adults[rng.integers(0, len(adults), count)]
    kinds = (*_pools.ENTITY_COUNTED, _pools.ENTITY_COOPERATIVE)
    owner = np.concatenate([counted, closed, coop, lookalike, others])
    etype = np.concatenate(
        [
            _choice(rng, _pools.ENTITY_COUNTED, len(counted), _pools.ENTITY_COUNTED_WEIGHTS),
            _choice(rng, _pools.ENTITY_COUNTED, len(closed), _pools.ENTITY_COUNTED_WEIGHTS),
            np.full(len(coop), _pools.ENTITY_COOPERATIVE),
            _choice(rng, _pools.ENTITY_COUNTED, len(lookalike), _pools.ENTITY_COUNTED_WEIGHTS),
            _choice(rng, kinds, count, (70, 12, 4, 14)),
        ]
    )
    status = np.concatenate(
        [
            _choice(rng, _pools.STATUS_ACTIVE, len(counted), (70, 30)),
            _choice(rng, _pools.STATUS_CLOSED, len(closed), (75, 25)),
            _choice(rng, ("存续", "在业", "注销"), len(coop), (70, 20, 10)),
            _choice(rng, _pools.STATUS_ACTIVE, len(lookalike), (70, 30)),
            _choice(rng, ("存续", "在业", "注销", "吊销"), count, (60, 15, 20, 5)),
        ]
    )
    low = np.maximum(cast.people.birth[owner] + 18 * _YEAR + 5, np.datetime64("2003-01-01"))
    registered = dates_between(rng, low, "2015-12-31", len(owner))
    names = _entity_names(rng, cast.people, owner, etype)
    return _frame(
        owner, entity_name=names, entity_type=etype, entity_status=status, registered_on=registered
    )


# --- deaths ----------------------------------------------------------------------------------


def deaths(rng: np.random.Generator, cast: Cast, plan: Plan) -> pl.DataFrame:
    """Death registrations: the planted registrant deaths and ordinary deaths of others."""
    rows = [r for r, _ in cast.deaths.values()]
    dates = [d for _, d in cast.deaths.values()]
    planted = sum(len(r) for r in rows)
    count = max(plan.n["deaths_rows"] - planted, 0)
    pool = cast.others
    age = cast.people.age(pool)
    weight = np.where(age >= 50, np.exp((age - 50) / 15.0), 0.05)
    # Weighted sampling without replacement (Efraimidis-Spirakis): the largest log(u)/w win.
    keys = np.log(rng.random(len(pool))) / weight
    others = pool[np.argsort(-keys, kind="stable")[: min(count, len(pool))]]
    low = np.maximum(cast.people.birth[others] + 1, np.datetime64("2013-01-01"))
    rows.append(others)
    dates.append(dates_between(rng, low, "2016-03-31", len(others)))
    owner = np.concatenate(rows)
    return _frame(
        owner, death_date=np.concatenate(dates), address=home_address(cast.people, owner, rng)
    )


# --- medical ---------------------------------------------------------------------------------


def _amounts(rng: np.random.Generator, n: int) -> np.ndarray:
    """Ordinary self-paid amounts in cents (median about 120 yuan)."""
    return np.clip(rng.lognormal(np.log(12_000), 1.0, n), 500, 300_000).astype(np.int64)


def household_rows(
    rng: np.random.Generator,
    register: Register,
    households: np.ndarray,
    totals: np.ndarray,
    low: str,
    high: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of 2-8 settlements per household, by random members, summing to exactly the
    household's total (cents); returns (owner rows, cents, settlement dates)."""
    starts = np.cumsum(register.hh_size) - register.hh_size
    k = rng.integers(2, 9, len(households))
    hh = np.repeat(households, k)
    group = np.repeat(np.arange(len(households)), k)
    owner = starts[hh] + (rng.random(len(hh)) * register.hh_size[hh]).astype(np.int64)
    weight = rng.gamma(2.0, 1.0, len(hh))
    weight /= np.bincount(group, weights=weight)[group]
    # 1 yuan floor per row keeps every row positive; the remainder goes to each first row.
    budget = np.repeat(totals, k) - 100 * np.repeat(k, k)
    cents = 100 + np.floor(budget * weight).astype(np.int64)
    first = np.cumsum(k) - k
    cents[first] += totals - np.bincount(group, weights=cents).astype(np.int64)
    return owner, cents, dates_between(rng, low, high, len(hh))


def medical(rng: np.random.Generator, cast: Cast, plan: Plan) -> pl.DataFrame:
    """Medical settlements: ordinary rows (capped per exited household below the risk
    threshold), the planted high-cost households and their decoys, and others' rows."""
    n = plan.n
    reg = cast.register
    owners = cast.medical_owners[
        rng.integers(0, len(cast.medical_owners), n["medical_registrant_rows"])
    ]
    cents = _amounts(rng, len(owners))
    settled = dates_between(rng, "2014-01-01", "2016-03-31", len(owners))
    # Keep every other exited household's 12-month self-paid sum at or below 4,500 yuan.
    hh = reg.hh[owners]
    in_window = (settled >= WINDOW_START) & (settled <= AS_OF) & (reg.hh_exit_year[hh] > 0)
    total = np.bincount(hh[in_window], weights=cents[in_window], minlength=reg.households)
    factor = np.where(total > 450_000, 450_000 / np.maximum(total, 1), 1.0)
    cents = np.where(in_window, np.floor(cents * factor[hh]).astype(np.int64), cents)
    cents = np.maximum(cents, 1)

    parts_owner, parts_cents, parts_dates = [owners], [cents], [settled]
    specs = {
        "risk": (5_200_00, 25_000_00, "2015-01-05", "2015-12-28"),
        "near_threshold": (4_000_00, 4_999_99, "2015-01-05", "2015-12-28"),
        "at_threshold": (5_000_00, 5_000_00, "2015-01-05", "2015-12-28"),
        "before_window": (6_000_00, 20_000_00, "2014-01-01", "2014-11-30"),
        "after_as_of": (6_000_00, 15_000_00, "2016-01-05", "2016-03-31"),
        "poor_high": (6_000_00, 20_000_00, "2015-01-05", "2015-12-28"),
    }
    for label, (low, high, first_day, last_day) in specs.items():
        households = cast.medical_hh[label]
        totals = rng.integers(low, high + 1, len(households))
        o, c, d = household_rows(rng, reg, households, totals, first_day, last_day)
        parts_owner.append(o)
        parts_cents.append(c)
        parts_dates.append(d)
    planted = sum(len(o) for o in parts_owner)
    count = max(n["medical_rows"] - planted, 0)
    others = cast.others[rng.integers(0, len(cast.others), count)]
    parts_owner.append(others)
    parts_cents.append(_amounts(rng, count))
    parts_dates.append(dates_between(rng, "2014-01-01", "2016-03-31", count))
    owner = np.concatenate(parts_owner)
    self_paid = np.concatenate(parts_cents)
    total_cost = (self_paid / rng.uniform(0.25, 0.7, len(owner))).astype(np.int64)
    provider = _choice(rng, _pools.MEDICAL_PROVIDERS, len(owner), (40, 20, 10, 15, 15))
    kind = np.where(
        self_paid > 150_000, "住院", _choice(rng, _pools.MEDICAL_KINDS, len(owner), (85, 15))
    )
    return _frame(
        owner,
        provider=provider,
        medical_kind=kind,
        total_cost=total_cost,
        self_paid=self_paid,
        settled_on=np.concatenate(parts_dates),
    )
