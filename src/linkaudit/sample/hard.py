"""The `hard` profile of the Mashan scenario: the linkage cases of issue #11, planted on top of
the default scenario (whose files it leaves alone when the profile is not asked for).

What it adds, at scale 1 (every count scales like the default plants):

- namesakes without IDs, decided by village: pairs of registrants of the same sex and birth
  date living in different villages are given the same name; one department record of the
  first (vehicles, which carry the home address) loses its ID, so only the village tells;
- neighbouring-county residents: strangers from 450125 with the same name as a registrant and
  an ID whose region code is one digit off, their check character mistyped (so the two IDs are
  two edits apart);
- an ID typo together with a look-alike surname (李/季, 王/玉, 卢/户) on records with an
  address naming the registrant's village and their own birth date;
- birth-date slips: a department's birth date one digit off while the ID is right;
- business premises: the business registry gets a 住所 column (the premises on a township's
  market street), mapped as `address` with `residence: none`;
- compound surnames (长孙, 单于, 澹台, 万俟, 尉迟, 欧阳, 司马, 上官, 诸葛) and surnames with a
  special or double reading (覃 written 谭 by some departments, 单, 区, 仇, 解, 查, 曾, 朴, 盖,
  薄, 黑, 都, 召, 能, 冼, 折, 阚, 乜).

The truth is the default's, computed the same way: renamed people are renamed everywhere
(register and every department record), corrupted records keep their owner, and the added
strangers are no registrant's.
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from linkaudit.normalize.idcard import check_char
from linkaudit.sample._departments import TOWNSHIP_NAMES, VILLAGE_NAMES, market_street
from linkaudit.sample._population import People

PROFILES = ("default", "hard")

#: Planted counts at scale 1.
COUNTS = {
    "namesakes_without_id": 150,
    "neighbour_county": 150,
    "id_typo_lookalike_surname": 150,
    "birth_date_slips": 300,
    "compound_surnames": 120,
    "special_surnames": 240,
}
COMPOUND = "长孙 单于 澹台 万俟 尉迟 欧阳 司马 上官 诸葛".split()
SPECIAL = "覃单区仇解查曾朴盖薄黑都召能冼折阚乜"
LOOKALIKE = {"李": "季", "王": "玉", "卢": "户"}
#: Share of a 覃 registrant's department records written with the homophone 谭 (tan).
TAN_SHARE = 0.5
NEIGHBOUR_REGION = "450125"
#: The business registry's premises column in the hard profile.
PREMISES = "住所"

README = """# Mashan county, hard profile (`linkaudit sample mashan --profile hard`)

Synthetic data: every person and record is invented. The default scenario plus the hard
linkage cases below; truth/ holds the answers (links.csv: every department record of a
registrant; flags.csv: every flag the rules must raise).

| case | planted (scale 1) | how it is decidable |
|---|---|---|
| namesakes without IDs | {namesakes_without_id} pairs | a vehicle record without ID matches two registrants by name and birth date; its address names one's village |
| neighbouring-county residents | {neighbour_county} | same name, ID region one digit off and check character mistyped: two edits from the registrant's ID, not one |
| ID typo + look-alike surname | {id_typo_lookalike_surname} | 李/季, 王/玉, 卢/户 with one mistyped ID digit; the record's birth date and address (township and village) open the candidate |
| birth-date slips | {birth_date_slips} | the department's birth date one digit off; the ID is right |
| business premises | every business record | 住所 is the premises: the manifest says `residence: none` |
| compound surnames | {compound_surnames} | 长孙 zhang sun, 单于 chan yu, 澹台 tan tai, 万俟 mo qi, 尉迟 yu chi, ... |
| special / double readings | {special_surnames} | 覃 qin (written 谭 tan by some departments), 单 shan, 区 ou, 仇 qiu, 薄 bo, 黑 he, ... |
"""


def _rng(seed: int, part: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(f"hard:{part}".encode())])


def _codes(text: str) -> np.ndarray:
    out = np.zeros(3, dtype=np.uint32)
    for i, ch in enumerate(text[:3]):
        out[i] = ord(ch)
    return out


def _text(codes: np.ndarray) -> str:
    return "".join(chr(c) for c in codes if c)


@dataclass
class Hardening:
    """What the hard profile changes, decided once from the cast."""

    scale: float
    seed: int
    registrants: int
    #: registrant -> their registered township and village names.
    township: np.ndarray
    village: np.ndarray
    #: registrant -> true birth date (datetime64[D]).
    birth: np.ndarray
    #: first registrant of each namesake pair (their vehicle record loses its ID).
    namesakes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    tan: set[int] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)

    def n(self, key: str) -> int:
        return max(int(round(COUNTS[key] * self.scale)), 1)


def prepare(
    people: People, registrants: int, scale: float, seed: int, car_owners: np.ndarray
) -> Hardening:
    """Rename registrants (namesakes, compound and special surnames) in ``people`` in place,
    so the register and every department record carry the new names."""
    rng = _rng(seed, "prepare")
    names = people.name
    birth = people.birth[:registrants]
    male = people.male[:registrants]
    hh_village = people.village[:registrants]
    hard = Hardening(
        scale, seed, registrants, people.township[:registrants], hh_village, birth.copy()
    )
    free = np.ones(registrants, dtype=bool)
    # Namesakes: same sex and birth date, different villages.
    frame = pl.DataFrame(
        {"row": np.arange(registrants), "birth": birth, "male": male, "village": hh_village}
    ).filter(pl.Series(free) & (pl.col("village") >= 0))
    owners = frame.filter(pl.col("row").is_in(car_owners.tolist()))
    pairs = (
        owners.join(frame, on=["birth", "male"], suffix="_b")
        .filter((pl.col("row") != pl.col("row_b")) & (pl.col("village") != pl.col("village_b")))
        .sort("row", "row_b")
    )
    used: set[int] = set()
    chosen: list[tuple[int, int]] = []
    order = rng.permutation(pairs.height)
    rows_a, rows_b = pairs["row"].to_numpy(), pairs["row_b"].to_numpy()
    for i in order:  # a few thousand candidate pairs at most
        a, b = int(rows_a[i]), int(rows_b[i])
        if a in used or b in used:
            continue
        used.update((a, b))
        chosen.append((a, b))
        if len(chosen) == hard.n("namesakes_without_id"):
            break
    for a, b in chosen:
        names[b] = names[a]
    hard.namesakes = np.array([a for a, _ in chosen], dtype=np.int64)
    free[list(used)] = False
    # Compound surnames and special readings.
    pool = np.flatnonzero(free)
    picks = rng.choice(pool, hard.n("compound_surnames") + hard.n("special_surnames"), False)
    compound, special = np.split(picks, [hard.n("compound_surnames")])
    for i, row in enumerate(compound):
        given = _text(names[row])[-1]
        names[row] = _codes(COMPOUND[i % len(COMPOUND)] + given)
    for i, row in enumerate(special):
        old = _text(names[row])
        surname = SPECIAL[i % len(SPECIAL)]
        names[row] = _codes(surname + old[1:])
        if surname == "覃" and rng.random() < TAN_SHARE:
            hard.tan.add(int(row))
    hard.counts = {
        "namesake_pairs": len(chosen),
        "compound_surnames": len(compound),
        "special_surnames": len(special),
    }
    return hard


def _typo17(number: str, rng: np.random.Generator) -> str:
    pos = int(rng.integers(6, 17))
    digit = str((int(number[pos]) + int(rng.integers(1, 10))) % 10)
    return number[:pos] + digit + number[pos + 1 :]


def _slip(day: dt.date) -> dt.date:
    """One digit of the date off: a digit of the day moved by one, within the month."""
    if day.day == 30:
        return day - dt.timedelta(days=10)
    if day.day >= 28 or day.day % 10 == 9:
        return day - dt.timedelta(days=1)
    return day + dt.timedelta(days=1)


def apply(hard: Hardening, registry: str, frame: pl.DataFrame) -> pl.DataFrame:
    """The hard cases of one department frame (internal columns: owner, name_out, id_out,
    birth_out, address, record_key ...); returns the frame with rows changed or added."""
    rng = _rng(hard.seed, f"apply:{registry}")
    owner = frame["owner"].to_numpy()
    name = frame["name_out"].to_numpy().astype(object)
    ident = frame["id_out"].to_numpy().astype(object)
    birth = frame["birth_out"].to_list()
    registrant = owner < hard.registrants
    # 覃 written 谭 by departments.
    for i in np.flatnonzero(registrant & np.isin(owner, list(hard.tan))):
        if isinstance(name[i], str) and name[i].startswith("覃"):
            name[i] = "谭" + name[i][1:]
    has_address = "address" in frame.columns and registry in ("vehicles", "deaths")
    valid = np.array(
        [isinstance(x, str) and len(x) == 18 and check_char(x[:17]) == x[17] for x in ident]
    )
    counts: dict[str, int] = {}
    valid &= ~np.isin(owner, hard.namesakes)
    if has_address:
        address = frame["address"].to_list()
        rural = np.array([hard.village[o] >= 0 if o < hard.registrants else False for o in owner])
        # Namesakes: the first of each pair loses the ID on one vehicle record.
        if registry == "vehicles":
            seen: set[int] = set()
            for i in np.flatnonzero(np.isin(owner, hard.namesakes) & rural):
                if int(owner[i]) in seen:
                    continue
                seen.add(int(owner[i]))
                ident[i] = ""
                birth[i] = hard.birth[owner[i]].astype(object)  # the record's own birth date
                address[i] = _home(hard, int(owner[i]))
            counts["namesakes_without_id"] = len(seen)
        # ID typo + look-alike surname, with own birth date and a village address.
        share = 0.5 if registry == "vehicles" else 0.5
        eligible = np.flatnonzero(
            registrant
            & rural
            & valid
            & np.array([isinstance(x, str) and x[:1] in LOOKALIKE for x in name])
            & ~np.isin(owner, hard.namesakes)
        )
        take = rng.permutation(eligible)[: int(hard.n("id_typo_lookalike_surname") * share)]
        for i in take:
            ident[i] = _typo17(ident[i][:17], rng) + ident[i][17]
            name[i] = LOOKALIKE[name[i][0]] + name[i][1:]
            birth[i] = hard.birth[owner[i]].astype(object)
            address[i] = _home(hard, int(owner[i]))
        valid[take] = False  # no slip on top
        counts["id_typo_lookalike_surname"] = len(take)
        frame = frame.with_columns(pl.Series("address", address, dtype=pl.Utf8))
    # Birth-date slips where the ID is right.
    dated = np.flatnonzero(registrant & valid & np.array([b is not None for b in birth]))
    slips = rng.permutation(dated)[: max(hard.n("birth_date_slips") // 6, 1)]
    for i in slips:
        birth[i] = _slip(birth[i])
    counts["birth_date_slips"] = len(slips)
    frame = frame.with_columns(
        pl.Series("name_out", _strings(name), dtype=pl.Utf8),
        pl.Series("id_out", _strings(ident), dtype=pl.Utf8),
        pl.Series("birth_out", birth, dtype=frame["birth_out"].dtype),
    )
    if registry == "business":
        township = rng.integers(1, len(TOWNSHIP_NAMES), frame.height)
        frame = frame.with_columns(address=market_street(rng, township))
    if registry == "vehicles":
        frame, added = _neighbours(hard, frame, rng)
        counts["neighbour_county"] = added
    for key, value in counts.items():
        hard.counts[key] = hard.counts.get(key, 0) + value
    return frame


def _strings(values: np.ndarray) -> list[str | None]:
    return [None if v is None else str(v) for v in values.tolist()]


def _home(hard: Hardening, row: int) -> str:
    return f"马山县{TOWNSHIP_NAMES[hard.township[row]]}{VILLAGE_NAMES[hard.village[row]]}"


def _neighbours(
    hard: Hardening, frame: pl.DataFrame, rng: np.random.Generator
) -> tuple[pl.DataFrame, int]:
    """Strangers from the neighbouring county: a registrant's name and birth date, an ID
    whose region is one digit off (450124 -> 450125) with a mistyped check character."""
    owner = frame["owner"].to_numpy()
    ident = frame["id_out"].to_list()
    rows = [
        i
        for i in np.flatnonzero(owner < hard.registrants)
        if isinstance(ident[i], str)
        and len(ident[i]) == 18
        and ident[i].startswith("450124")
        and check_char(ident[i][:17]) == ident[i][17]
    ]
    take = rng.permutation(rows)[: hard.n("neighbour_county")]
    strangers = np.flatnonzero(owner >= hard.registrants)
    if not len(take) or not len(strangers):
        return frame, 0
    base = frame[rng.choice(strangers, len(take)).tolist()]
    new_ids, new_names, new_births = [], [], []
    for i in take:
        body = NEIGHBOUR_REGION + ident[i][6:17]
        right = check_char(body)
        wrong = next(
            c
            for c in "0123456789X"[int(rng.integers(0, 11)) :] + "0123456789X"
            if c not in (right, ident[i][17])
        )
        new_ids.append(body + wrong)
        new_names.append(frame["name_out"][int(i)])
        new_births.append(frame["birth_out"][int(i)])
    last = frame.height
    prefix = str(frame["record_key"][0])[:2]
    keys = [f"{prefix}9{n:07d}" for n in range(last + 1, last + 1 + len(take))]
    base = base.with_columns(
        pl.Series("record_key", keys, dtype=pl.Utf8),
        pl.Series("name_out", new_names, dtype=pl.Utf8),
        pl.Series("id_out", new_ids, dtype=pl.Utf8),
        pl.Series("birth_out", new_births, dtype=frame["birth_out"].dtype),
        pl.Series(
            "address", [f"武鸣县城厢镇{n}号" for n in range(1, len(take) + 1)], dtype=pl.Utf8
        ),
    )
    return pl.concat([frame, base.select(frame.columns)]), len(take)


def manifest(text: str) -> str:
    """The default manifest with the business registry's premises address mapped as an
    address that is not the person's."""
    marker = "      entity_name: 主体名称\n"
    assert marker in text
    return text.replace(
        "    key: 注册号\n    fields:\n",
        "    key: 注册号\n    residence: none          # 住所 is the premises, not the home\n"
        "    fields:\n      address: 住所\n",
    )


def readme(hard: Hardening) -> str:
    return README.format(**{k: hard.counts.get(k, 0) for k in COUNTS})
