"""The county's people: the poverty register's households and members, everyone else, and
the look-alike strangers (same name and birth date; an ID one digit away) built to fool a linker.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from linkaudit.sample import _pools
from linkaudit.sample._chars import char_tables, random_names
from linkaudit.sample._ids import code17, date_parts
from linkaudit.sample._plan import Plan

AS_OF_YEAR = 2015
AS_OF = np.datetime64("2015-12-31")

# Household groups of the register.
FALSE_EXIT, EXIT_2014, EXIT_2015, POOR = range(4)
STATUS_EXITED, STATUS_POOR = "已脱贫", "贫困户"
HEAD, SPOUSE, SON, DAUGHTER, GRANDSON, GRANDDAUGHTER, FATHER, MOTHER, DAUGHTER_IN_LAW = range(9)
_SIZE_P = np.array([0.08, 0.14, 0.20, 0.24, 0.17, 0.10, 0.05, 0.02])

VILLAGES = [v for _, vs in _pools.TOWNSHIPS for v in vs]
VILLAGE_TOWNSHIP = np.array([t for t, (_, vs) in enumerate(_pools.TOWNSHIPS) for _ in vs])
_VILLAGE_START = np.cumsum([0] + [len(vs) for _, vs in _pools.TOWNSHIPS])


@dataclass(frozen=True)
class Region:
    """Where a county's people are registered: its own region code, and the codes drawn for
    those registered elsewhere."""

    home: int
    elsewhere: tuple[int, ...]


MASHAN = Region(_pools.COUNTY_CODE, tuple(code for code, _ in _pools.OTHER_REGIONS))


def county_region(index: int) -> Region:
    """The ``index``-th county of a scenario beyond one county (0 = Mashan): its home code from
    `_pools.COUNTY_CODES`; residents registered elsewhere come from the other Nanning codes
    (Mashan's own in place of the county's, so there are always eleven)."""
    home = _pools.COUNTY_CODES[index]
    return Region(home, tuple(_pools.COUNTY_CODE if c == home else c for c in MASHAN.elsewhere))


@dataclass
class People:
    """Everyone in the scenario; rows ``0..R-1`` are the register's rows in file order."""

    name: np.ndarray  # (n, 3) uint32 code points
    male: np.ndarray  # bool
    birth: np.ndarray  # datetime64[D]
    region: np.ndarray  # int64, 6-digit region code of the ID
    seq: np.ndarray  # int64, 3-digit sequence of the ID (odd = male)
    township: np.ndarray  # int64 index into TOWNSHIPS
    village: np.ndarray  # int64 index into VILLAGES, -1 = a street address

    def __len__(self) -> int:
        return len(self.male)

    def codes(self) -> np.ndarray:
        """The 17-digit ID bodies as int64."""
        return code17(self.region, self.birth, self.seq)

    def age(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Age in whole years on the audit date (31 December, so birth year is enough)."""
        birth = self.birth if rows is None else self.birth[rows]
        return AS_OF_YEAR - date_parts(birth)[0]

    def take(self, index: np.ndarray) -> People:
        """A subset (copy) of the rows."""
        return People(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def extend(self, other: People) -> People:
        """These rows followed by the other's."""
        return People(
            **{
                f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)])
                for f in fields(self)
            }
        )


@dataclass
class Register:
    """The poverty register: household-level and person-level arrays in file order."""

    hh_group: np.ndarray
    hh_size: np.ndarray
    hh_township: np.ndarray
    hh_village: np.ndarray
    hh_identified: np.ndarray
    hh_exit_year: np.ndarray  # 0 = not exited
    hh_income: np.ndarray  # cents per capita
    hh_flag: dict[str, np.ndarray]  # household plants and decoys by name
    hh: np.ndarray  # person → household index
    relation: np.ndarray
    ethnicity: np.ndarray

    @property
    def persons(self) -> int:
        """Number of register rows."""
        return len(self.hh)

    @property
    def households(self) -> int:
        """Number of households."""
        return len(self.hh_size)


def sizes_with_total(rng: np.random.Generator, count: int, total: int) -> np.ndarray:
    """``count`` household sizes between 1 and 9 that add up to exactly ``total``."""
    sizes = rng.choice(np.arange(1, 9), size=count, p=_SIZE_P).astype(np.int64)
    diff = total - int(sizes.sum())
    while diff:
        room = np.flatnonzero(sizes < 9) if diff > 0 else np.flatnonzero(sizes > 1)
        picked = rng.choice(room, size=min(abs(diff), len(room)), replace=False)
        sizes[picked] += 1 if diff > 0 else -1
        diff = total - int(sizes.sum())
    return sizes


def _villages_of(rng: np.random.Generator, township: np.ndarray) -> np.ndarray:
    start = _VILLAGE_START[township]
    width = _VILLAGE_START[township + 1] - start
    return start + (rng.random(len(township)) * width).astype(np.int64)


def _townships(rng: np.random.Generator, n: int) -> np.ndarray:
    weights = np.array(_pools.TOWNSHIP_WEIGHTS, dtype=np.float64)
    return rng.choice(len(weights), size=n, p=weights / weights.sum())


def _income(
    rng: np.random.Generator, group: np.ndarray, plan: Plan
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per-capita income in cents by household group, with the boundary decoys; flags."""
    n = plan.n
    income = np.zeros(len(group), dtype=np.int64)
    flags: dict[str, np.ndarray] = {}

    def block(g: int, sizes: list[tuple[str, int]]) -> dict[str, np.ndarray]:
        idx = rng.permutation(np.flatnonzero(group == g))
        out, at = {}, 0
        for label, size in sizes:
            out[label] = idx[at : at + size]
            at += size
        out["rest"] = idx[at:]
        return out

    def tail(size: int, low: int) -> np.ndarray:
        return low + 1 + np.minimum(rng.gamma(2.0, 70_000, size=size).astype(np.int64), 600_000)

    b = block(FALSE_EXIT, [])
    income[b["rest"]] = rng.integers(150_000, 273_600, size=len(b["rest"]))
    b = block(
        EXIT_2014, [("at", n["exit2014_at_line"]), ("below_national", n["exit2014_below_national"])]
    )
    income[b["at"]] = 273_600
    income[b["below_national"]] = rng.integers(273_601, 280_000, size=len(b["below_national"]))
    income[b["rest"]] = tail(len(b["rest"]), 280_000)
    flags["exit2014_at_line"], flags["exit2014_below_national"] = b["at"], b["below_national"]
    b = block(EXIT_2015, [("at", n["exit2015_at_line"])])
    income[b["at"]] = 285_500
    income[b["rest"]] = tail(len(b["rest"]), 285_500)
    flags["exit2015_at_line"] = b["at"]
    above, at_line = n["income_above_line_households"], n["income_above_line_at_line"]
    b = block(
        POOR,
        [
            ("at", min(at_line, above)),
            ("above", max(above - at_line, 0)),
            ("near", n["poor_near_line"]),
        ],
    )
    income[b["at"]] = 285_500
    income[b["above"]] = rng.integers(285_501, 400_000, size=len(b["above"]))
    income[b["near"]] = rng.integers(280_000, 285_500, size=len(b["near"]))
    income[b["rest"]] = rng.integers(100_000, 280_000, size=len(b["rest"]))
    flags["income_above_line"] = np.concatenate([b["at"], b["above"]])
    flags["poor_near_line"] = b["near"]
    return income, flags


def build_register(
    rng: np.random.Generator, plan: Plan, region: Region = MASHAN
) -> tuple[Register, People]:
    """Households (groups, incomes, places) and their members (relations, sexes, ages, names)."""
    n = plan.n
    h_fe, p_fe = n["false_exit_households"], n["false_exit_persons"]
    h14, p14 = n["exit2014_households"], n["exit2014_persons"]
    h15 = n["exit2015_households"]
    h_poor = max(
        n["households"] - h14 - h15, n["income_above_line_households"] + n["poor_near_line"]
    )
    group = np.repeat([FALSE_EXIT, EXIT_2014, EXIT_2015, POOR], [h_fe, h14 - h_fe, h15, h_poor])
    size = np.concatenate(
        [
            sizes_with_total(rng, h_fe, p_fe),
            sizes_with_total(rng, h14 - h_fe, p14 - p_fe),
            rng.choice(np.arange(1, 9), size=h15 + h_poor, p=_SIZE_P),
        ]
    ).astype(np.int64)
    income, index_flags = _income(rng, group, plan)
    township = _townships(rng, len(group))
    village = _villages_of(rng, township)
    late = rng.random(len(group))
    identified = np.where(
        ((group == EXIT_2015) & (late < 0.1)) | ((group == POOR) & (late < 0.15)), 2015, 2014
    )
    exit_year = np.select([group <= EXIT_2014, group == EXIT_2015], [2014, 2015], 0)

    # File order: by township, village, then at random.
    order = np.lexsort((rng.random(len(group)), village, township))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    flags = {}
    for label, idx in index_flags.items():
        mask = np.zeros(len(group), dtype=bool)
        mask[rank[idx]] = True
        flags[label] = mask
    group, size, income = group[order], size[order], income[order]
    township, village, identified, exit_year = (
        township[order],
        village[order],
        identified[order],
        exit_year[order],
    )

    # --- members ---
    households = len(group)
    hh = np.repeat(np.arange(households), size)
    starts = np.cumsum(size) - size
    k = np.arange(len(hh)) - starts[hh]
    head_age = np.clip(rng.normal(50, 13, size=households), 25, 85).astype(np.int64)
    has_spouse = rng.random(households) < 0.85
    has_parent = (rng.random(households) < 0.35) & (head_age < 60) & (size >= 4)
    grand = (head_age >= 52) & (rng.random(households) < 0.5)
    u = rng.random(len(hh))
    person_size = size[hh]
    ha = head_age[hh]
    relation = np.full(len(hh), SON)
    relation[k == 0] = HEAD
    relation[(k == 1) & has_spouse[hh]] = SPOUSE
    relation[(k == person_size - 1) & (k >= 2) & has_parent[hh]] = FATHER
    relation[(k >= 3) & grand[hh] & (relation == SON)] = GRANDSON
    relation[(k == 2) & grand[hh] & (person_size >= 5)] = DAUGHTER_IN_LAW
    head_male = rng.random(households) < 0.88
    male = rng.random(len(hh)) < 0.52
    male[relation == HEAD] = head_male[hh][relation == HEAD]
    male[relation == SPOUSE] = ~head_male[hh][relation == SPOUSE]
    male[relation == DAUGHTER_IN_LAW] = False
    relation[(relation == SON) & ~male] = DAUGHTER
    relation[(relation == GRANDSON) & ~male] = GRANDDAUGHTER
    relation[(relation == FATHER) & (u < 0.7)] = MOTHER
    male[relation == FATHER] = True
    male[relation == MOTHER] = False

    age = np.select(
        [relation == HEAD, relation == SPOUSE, (relation == SON) | (relation == DAUGHTER),
         (relation == GRANDSON) | (relation == GRANDDAUGHTER), (relation == FATHER) | (relation == MOTHER)],
        [ha, ha + rng.normal(-2, 3, len(hh)), ha - rng.uniform(20, 36, len(hh)),
         ha - rng.uniform(44, 60, len(hh)), ha + rng.uniform(22, 32, len(hh))],
        ha - rng.uniform(22, 32, len(hh)),
    )  # fmt: skip
    age = np.clip(age, 0, 97).astype(np.int64)
    age[relation == SPOUSE] = np.maximum(age[relation == SPOUSE], 18)
    age[relation == DAUGHTER_IN_LAW] = np.maximum(age[relation == DAUGHTER_IN_LAW], 18)

    tables = char_tables()
    head_surname = tables.surnames[
        rng.choice(len(tables.surnames), size=households, p=tables.surname_p)
    ]
    own_surname = tables.surnames[
        rng.choice(len(tables.surnames), size=len(hh), p=tables.surname_p)
    ]
    inherits = np.isin(relation, [HEAD, SON, DAUGHTER, GRANDSON, GRANDDAUGHTER, FATHER])
    surname = np.where(inherits, head_surname[hh], own_surname)
    names = random_names(rng, male, surname)

    hh_ethnic = rng.choice(3, size=households, p=[0.85, 0.12, 0.03])
    yao = np.isin(township, [9, 10]) & (rng.random(households) < 0.4)
    hh_ethnic[yao] = 2
    ethnicity = np.where(
        rng.random(len(hh)) < 0.9, hh_ethnic[hh], rng.choice(3, size=len(hh), p=[0.85, 0.12, 0.03])
    )

    people = People(
        name=names,
        male=male,
        birth=birth_dates(rng, age),
        region=regions(rng, len(hh), 0.98, region),
        seq=sequences(rng, male),
        township=township[hh],
        village=village[hh],
    )
    register = Register(
        hh_group=group,
        hh_size=size,
        hh_township=township,
        hh_village=village,
        hh_identified=identified,
        hh_exit_year=exit_year,
        hh_income=income,
        hh_flag=flags,
        hh=hh,
        relation=relation,
        ethnicity=ethnicity,
    )
    return register, people


def birth_dates(rng: np.random.Generator, age: np.ndarray) -> np.ndarray:
    """A random day in the birth year implied by the age on 31 December 2015."""
    year = AS_OF_YEAR - age
    start = (year - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    length = ((year + 1 - 1970).astype("datetime64[Y]").astype("datetime64[D]") - start).astype(
        np.int64
    )
    return start + (rng.random(len(age)) * length).astype(np.int64)


def regions(
    rng: np.random.Generator, n: int, local_share: float, region: Region = MASHAN
) -> np.ndarray:
    """Region codes: the county's own with the given share, else another Nanning-area code."""
    others = np.array(region.elsewhere, dtype=np.int64)
    return np.where(
        rng.random(n) < local_share, region.home, others[rng.integers(0, len(others), n)]
    )


def sequences(rng: np.random.Generator, male: np.ndarray) -> np.ndarray:
    """Three-digit sequence numbers whose parity gives the sex (odd = male)."""
    return 2 * rng.integers(0, 500, size=len(male)) + male.astype(np.int64)


def build_others(rng: np.random.Generator, count: int, region: Region = MASHAN) -> People:
    """Residents who are not on the register (and some registered elsewhere)."""
    # A rural population pyramid: fewer old people, a dip for migrant-age adults.
    ages = np.arange(0, 96)
    weight = np.where(ages < 60, 1.0, np.exp(-(ages - 60) / 12.0)) * np.where(
        (ages >= 20) & (ages < 40), 0.85, 1.0
    )
    age = rng.choice(ages, size=count, p=weight / weight.sum())
    male = rng.random(count) < 0.51
    township = _townships(rng, count)
    village = _villages_of(rng, township)
    # A quarter of the county seat lives on its streets rather than in its villages.
    village[(township == 0) & (rng.random(count) < 0.25)] = -1
    return People(
        name=random_names(rng, male),
        male=male,
        birth=birth_dates(rng, age),
        region=regions(rng, count, 0.85, region),
        seq=sequences(rng, male),
        township=township,
        village=village,
    )


def _in_sorted(sorted_codes: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Whether each of ``codes`` is in the sorted array."""
    if not len(sorted_codes):
        return np.zeros(len(codes), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_codes, codes), len(sorted_codes) - 1)
    return sorted_codes[pos] == codes


def make_unique(
    rng: np.random.Generator, people: People, fixed: int = 0, outside: np.ndarray | None = None
) -> None:
    """Redraw sequence numbers (keeping sex) until every ID body is unique; rows < fixed stay
    (and may collide with each other: the planted duplicate registrations). ``outside``: the
    sorted ID bodies of other counties already written, which no row >= fixed may take."""
    codes = people.codes()
    # Stable: within a run of equal codes rows stay in index order, so the first is kept
    # (fixed rows come first) and every later one moves.
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    todo = order[1:][sorted_codes[1:] == sorted_codes[:-1]]
    todo = np.unique(todo[todo >= fixed])
    if outside is not None and len(outside):
        clash_outside = np.flatnonzero(_in_sorted(outside, codes))
        todo = np.union1d(todo, clash_outside[clash_outside >= fixed])
    if not len(todo):
        return
    settled = np.ones(len(codes), dtype=bool)
    settled[todo] = False
    taken = np.sort(codes[settled])
    if outside is not None and len(outside):
        taken = np.sort(np.concatenate([taken, outside]))
    accepted = np.empty(0, dtype=np.int64)
    for _ in range(100):
        people.seq[todo] = sequences(rng, people.male[todo])
        new = code17(people.region[todo], people.birth[todo], people.seq[todo])
        pos = np.minimum(np.searchsorted(taken, new), len(taken) - 1)
        clash = (taken[pos] == new) | np.isin(new, accepted)
        _, first = np.unique(new, return_index=True)
        repeated = np.ones(len(new), dtype=bool)
        repeated[first] = False
        clash |= repeated
        accepted = np.concatenate([accepted, new[~clash]])
        todo = todo[clash]
        if not len(todo):
            return
    raise RuntimeError("could not make ID numbers unique")


def twins(
    rng: np.random.Generator, people: People, source: np.ndarray, region: Region = MASHAN
) -> People:
    """Strangers with the same name, sex and birth date as ``source`` rows, their own ID."""
    twin = people.take(source)
    twin.region = regions(rng, len(source), 0.7, region)
    twin.seq = sequences(rng, twin.male)
    township = _townships(rng, len(source))
    twin.township, twin.village = township, _villages_of(rng, township)
    return twin


def neighbours(
    rng: np.random.Generator,
    people: People,
    source: np.ndarray,
    outside: np.ndarray | None = None,
) -> People:
    """Strangers whose valid ID differs from ``source``'s in one sequence digit (the check
    character recomputed), with a name that is neither the same nor a homophone: a surname of
    another reading. IDs already taken by ``people`` (or in the sorted ``outside``) are avoided."""
    near = people.take(source)
    taken = np.sort(people.codes())
    if outside is not None and len(outside):
        taken = np.sort(np.concatenate([taken, outside]))
    todo = np.arange(len(source))
    original = near.seq.copy()
    for _ in range(100):
        position = rng.integers(0, 3, size=len(todo))  # hundreds, tens, units of the sequence
        # Changing the units digit by an even step keeps the sex parity.
        step = np.where(
            position == 2,
            2 * rng.integers(1, 5, size=len(todo)),
            rng.integers(1, 10, size=len(todo)),
        )
        power = 10 ** (2 - position)
        digit = original[todo] // power % 10
        near.seq[todo] = original[todo] + ((digit + step) % 10 - digit) * power
        codes = near.codes()
        pos = np.minimum(np.searchsorted(taken, codes), len(taken) - 1)
        clash = taken[pos] == codes
        _, first = np.unique(codes, return_index=True)
        repeated = np.ones(len(codes), dtype=bool)
        repeated[first] = False
        todo = np.flatnonzero(clash | repeated)
        if not len(todo):
            break
    else:
        raise RuntimeError("could not place one-digit-away ID numbers")

    tables = char_tables()
    order = np.argsort(tables.surnames)
    keys = tables.surnames[order]
    readings = np.array([tables.reading(chr(c)) for c in keys])

    def reading_of(codes: np.ndarray) -> np.ndarray:
        return readings[np.searchsorted(keys, codes)]

    source_reading = reading_of(near.name[:, 0])
    new = random_names(rng, near.male)
    for _ in range(100):
        clash = reading_of(new[:, 0]) == source_reading
        if not clash.any():
            break
        new[clash] = random_names(rng, near.male[clash])
    near.name = new
    township = _townships(rng, len(source))
    near.township, near.village = township, _villages_of(rng, township)
    return near
