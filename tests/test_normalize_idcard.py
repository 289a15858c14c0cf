import datetime

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkaudit.normalize import (
    IdInfo,
    check_char,
    mask_id,
    mask_ids,
    normalize_id,
    normalize_ids,
    upgrade_15,
)

VALID = "11010519491231002X"
FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


def test_check_char_standard_vector() -> None:
    assert check_char(VALID[:17]) == "X"


def test_upgrade_15() -> None:
    assert upgrade_15("310112850409522") == "310112198504095227"


@pytest.mark.parametrize(
    ("raw", "number", "status"),
    [
        ("310112850409522", "310112198504095227", "upgraded_15"),
        (VALID, VALID, "valid"),
        ("11010519491231002x", VALID, "valid"),
        (VALID.translate(FULL_WIDTH), VALID, "valid"),
        ("１１０１０５１９４９１２３１００２ｘ", VALID, "valid"),
        (" 110105 19491231-002X\t", VALID, "valid"),
        ("110105-1949-1231-002X", VALID, "valid"),
        ("'11010519491231002X", VALID, "valid"),
        ("\u300011010519491231002X\u00a0", VALID, "valid"),
        ("110105194912310021", "110105194912310021", "bad_checksum"),
        ("11010519491231002", "11010519491231002", "malformed"),
        ("110105194902300021", "110105194902300021", "malformed"),  # 30 February
        ("110105189912310028", "110105189912310028", "malformed"),  # born before 1900
        ("310112851309522", "310112851309522", "malformed"),  # month 13
        ("1101051949123100X2", "1101051949123100X2", "malformed"),
        ("abc", "abc", "malformed"),
        (4.50124e17, "4.50124e+17", "malformed"),  # Excel float: digits already lost
        (110105194912310021, "110105194912310021", "bad_checksum"),
        (310112850409522, "310112198504095227", "upgraded_15"),
        (310112850409522.0, "310112198504095227", "upgraded_15"),
        (None, None, "missing"),
        (float("nan"), None, "missing"),
        ("", None, "missing"),
        ("   ", None, "missing"),
        ("无", None, "missing"),
        ("-", None, "missing"),
        ("0", None, "missing"),
        ("NULL", None, "missing"),
        ("null", None, "missing"),
        ("None", None, "missing"),
    ],
)
def test_normalize_id_table(raw: object, number: str | None, status: str) -> None:
    info = normalize_id(raw)
    assert (info.id_number, info.status) == (number, status)


def test_normalize_id_details() -> None:
    assert normalize_id(VALID) == IdInfo(VALID, "valid", datetime.date(1949, 12, 31), "F", "110105")
    upgraded = normalize_id("310112850409522")
    assert upgraded.birth_date == datetime.date(1985, 4, 9)
    assert upgraded.sex == "F"  # last digit of a 15-digit number: 2
    assert normalize_id("310112850409511").sex == "M"
    assert normalize_id("110105194912310021") == IdInfo(
        "110105194912310021", "bad_checksum", datetime.date(1949, 12, 31), "F", "110105"
    )
    assert normalize_id("abc") == IdInfo("abc", "malformed", None, None, None)


# --- generated IDs -------------------------------------------------------------------------

_dates = st.dates(datetime.date(1890, 1, 1), datetime.date(2035, 12, 31))


@st.composite
def id_like(draw: st.DrawFn) -> str:
    """Plausible and implausible ID cells: right or wrong check, 15 digits, dirty formatting."""
    region = draw(st.from_regex(r"[1-8][0-9]{5}", fullmatch=True))
    born = draw(_dates)
    seq = draw(st.from_regex(r"[0-9]{3}", fullmatch=True))
    first17 = f"{region}{born:%Y%m%d}{seq}"
    kind = draw(st.sampled_from(["valid", "wrong", "fifteen", "short", "impossible"]))
    if kind == "valid":
        value = first17 + check_char(first17)
    elif kind == "wrong":
        value = first17 + draw(st.sampled_from("0123456789X"))
    elif kind == "fifteen":
        value = f"{region}{born:%y%m%d}{seq}"
    elif kind == "short":
        value = first17[: draw(st.integers(0, 16))]
    else:
        value = (
            f"{region}{born.year}{draw(st.integers(0, 99)):02d}{draw(st.integers(0, 99)):02d}{seq}X"
        )
    if draw(st.booleans()):
        value = value.replace("X", "x")
    if draw(st.booleans()):
        value = value.translate(FULL_WIDTH)
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(value)))
        value = value[:cut] + draw(st.sampled_from([" ", "-", "\u3000", "'", "—"])) + value[cut:]
    return value


_messy_text = st.text(alphabet="0123456789Xx -'\"１２ｘＸ无NUL\u3000\t\u200b.e+", max_size=22)
_any_cell = st.one_of(
    st.none(),
    id_like(),
    _messy_text,
    st.text(max_size=20),
    st.integers(-(10**19), 10**19),
    st.floats(allow_nan=True, allow_infinity=True),
)


@given(_any_cell)
def test_normalize_id_never_raises(value: object) -> None:
    info = normalize_id(value)
    assert info.status in {"valid", "upgraded_15", "bad_checksum", "malformed", "missing"}
    assert (info.id_number is None) == (info.status == "missing")
    if info.status in {"valid", "upgraded_15", "bad_checksum"}:
        assert info.id_number is not None and len(info.id_number) == 18
        assert info.region == info.id_number[:6]
    else:
        assert (info.birth_date, info.sex, info.region) == (None, None, None)


@given(_any_cell)
def test_normalize_id_idempotent(value: object) -> None:
    first = normalize_id(value)
    again = normalize_id(first.id_number)
    assert again.id_number == first.id_number
    # An upgraded number is a correct 18-digit number, so the second pass calls it valid.
    expected = "valid" if first.status == "upgraded_15" else first.status
    assert again.status == expected


def _expected_frame(values: list[object]) -> list[dict[str, object]]:
    return [
        {
            "id_number": i.id_number,
            "id_status": i.status,
            "id_birth_date": i.birth_date,
            "id_sex": i.sex,
            "id_region": i.region,
        }
        for i in map(normalize_id, values)
    ]


@given(st.lists(st.one_of(st.none(), id_like(), _messy_text, st.text(max_size=20)), max_size=30))
def test_bulk_agrees_with_scalar_text(values: list[str | None]) -> None:
    assert normalize_ids(pl.Series(values, dtype=pl.Utf8)).to_dicts() == _expected_frame(values)


@given(st.lists(st.one_of(st.none(), st.integers(-(10**18), 10**18)), max_size=30))
def test_bulk_agrees_with_scalar_int(values: list[int | None]) -> None:
    assert normalize_ids(pl.Series(values, dtype=pl.Int64)).to_dicts() == _expected_frame(values)


@given(st.lists(st.one_of(st.none(), st.floats(), st.integers(0, 10**18).map(float)), max_size=30))
def test_bulk_agrees_with_scalar_float(values: list[float | None]) -> None:
    assert normalize_ids(pl.Series(values, dtype=pl.Float64)).to_dicts() == _expected_frame(values)


def test_bulk_schema_and_null_dtype() -> None:
    frame = normalize_ids(pl.Series("id", [None, None]))
    assert frame.schema == pl.Schema(
        {
            "id_number": pl.Utf8,
            "id_status": pl.Utf8,
            "id_birth_date": pl.Date,
            "id_sex": pl.Utf8,
            "id_region": pl.Utf8,
        }
    )
    assert frame.get_column("id_status").to_list() == ["missing", "missing"]
    assert normalize_ids(pl.Series("id", [], dtype=pl.Utf8)).height == 0


# --- masking ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("450124198001011234", "450124********1234"),
        ("45012419800101123X", "450124********123X"),
        ("12345678", "12****78"),
        ("1234567", "1*****7"),
        ("abc", "***"),
        ("", ""),
        ("4501241980010112345", "45***************45"),
        (None, None),
    ],
)
def test_mask_id_table(value: str | None, masked: str | None) -> None:
    assert mask_id(value) == masked


@given(st.lists(st.one_of(st.none(), id_like(), st.text(max_size=25)), max_size=30))
def test_mask_ids_agrees_and_never_reveals_more_than_half(values: list[str | None]) -> None:
    assert mask_ids(pl.Series(values, dtype=pl.Utf8)).to_list() == [mask_id(v) for v in values]
    for value in values:
        masked = mask_id(value)
        if value is None or masked is None:
            continue
        assert len(masked) == len(value)
        if len(value) != 18:
            assert len(masked) - masked.count("*") <= len(value) / 2
