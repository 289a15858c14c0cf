import datetime

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkaudit.normalize import (
    ID_PLACEHOLDERS,
    ID_STATUSES,
    PROVINCE_CODES,
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
        (4.50124e17, "4.50124e+17", "float_damaged"),  # Excel float: digits already lost
        (4.50124198703021e17, "4.50124198703021e+17", "float_damaged"),
        ("4.50124198703021e+17", "4.50124198703021e+17", "float_damaged"),  # a CSV of floats
        ("4.50124E+17", "4.50124E+17", "float_damaged"),  # as Excel shows it
        ("450124198703021234.0", "450124198703021234.0", "float_damaged"),
        (float(2**53), "9007199254740992.0", "float_damaged"),
        ("310112850409522.0", "310112198504095227", "upgraded_15"),  # a float holding 15 digits
        ("310112850409522.5", "310112850409522.5", "malformed"),
        ("000000194912310026", "000000194912310026", "malformed"),  # no such province
        ("991051194912310022", "991051194912310022", "malformed"),
        ("100000850409522", "100000850409522", "malformed"),
        ("110105210012310025", "110105210012310025", "future_birth"),  # born in 2100
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
        *((p, None, "missing") for p in ID_PLACEHOLDERS),
        ("未知", None, "missing"),
        ("?", None, "missing"),
        ("00", None, "missing"),
        ("000000000000000000", None, "missing"),
        ("--", None, "missing"),
        ("—", None, "missing"),
        ("N/A", None, "missing"),
        ("不详", None, "missing"),
        ("\u3000\u3000", None, "missing"),
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


AS_OF = datetime.date(2015, 12, 31)


def test_birth_after_the_audit_date_is_future_birth() -> None:
    # Issue #9: a birth date after the audit date counted as valid.
    born_2016 = "110105201601010012"
    born_2016 = born_2016[:17] + check_char(born_2016[:17])
    assert normalize_id(born_2016, as_of=AS_OF) == IdInfo(
        born_2016, "future_birth", None, None, None
    )
    assert normalize_id(born_2016, as_of=datetime.date(2016, 1, 1)).status == "valid"
    # Without a reference date the check uses today.
    far = "110105209901010012"
    far = far[:17] + check_char(far[:17])
    assert normalize_id(far).status == "future_birth"
    frame = normalize_ids(pl.Series([born_2016, VALID]), as_of=AS_OF)
    assert frame.get_column("id_status").to_list() == ["future_birth", "valid"]
    assert frame.get_column("id_birth_date").to_list() == [None, datetime.date(1949, 12, 31)]


def test_province_code_is_checked() -> None:
    # Issue #9: 000000... and 99.... passed as valid when their check character was right.
    for region in ("000000", "990000", "191234", "470000", "840000"):
        first17 = f"{region}19491231002"
        number = first17 + check_char(first17)
        assert normalize_id(number).status == "malformed", region
        assert normalize_ids(pl.Series([number])).get_column("id_status")[0] == "malformed"
    for prefix in ("11", "45", "65", "71", "81", "82", "83"):
        first17 = f"{prefix}010519491231002"
        assert normalize_id(first17 + check_char(first17)).status == "valid", prefix
    # A foreigner's permanent residence ID (2023): 9, then the province of issue.
    first17 = "94515619491231002"
    assert normalize_id(first17 + check_char(first17)).status == "valid"
    assert set(PROVINCE_CODES) >= {"11", "45", "71", "81", "82", "83"}


def test_numeric_workbook_cell_with_18_digits_is_float_damaged() -> None:
    # fastexcel writes the float 4.50124198703021e17 as these digits: the last three are noise.
    text = "450124198703020992"
    assert normalize_id(text).status == "bad_checksum"  # a text cell: a typo, maybe
    assert normalize_id(text, numeric_cell=True) == IdInfo(text, "float_damaged", None, None, None)
    frame = normalize_ids(
        pl.Series([text, text, "450124850302123"]), numeric=pl.Series([True, False, True])
    )
    assert frame.get_column("id_status").to_list() == [
        "float_damaged",
        "bad_checksum",
        "upgraded_15",
    ]


def test_every_status_is_in_the_shared_list() -> None:
    assert set(ID_STATUSES) == {
        "valid", "upgraded_15", "bad_checksum", "malformed", "future_birth", "float_damaged",
        "missing",
    }  # fmt: skip


# --- generated IDs -------------------------------------------------------------------------

_dates = st.dates(datetime.date(1890, 1, 1), datetime.date(2035, 12, 31))


@st.composite
def id_like(draw: st.DrawFn) -> str:
    """Plausible and implausible ID cells: right or wrong check, 15 digits, dirty formatting."""
    region = draw(
        st.one_of(
            st.from_regex(r"[1-9][0-9]{5}", fullmatch=True),
            st.sampled_from(sorted(PROVINCE_CODES)).map(lambda p: p + "0124"),
        )
    )
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
    assert info.status in ID_STATUSES
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


def _expected_frame(
    values: list[object], numeric: list[bool] | None = None
) -> list[dict[str, object]]:
    flags = numeric or [False] * len(values)
    infos = [
        normalize_id(v, as_of=AS_OF, numeric_cell=f) for v, f in zip(values, flags, strict=True)
    ]
    return [
        {
            "id_number": i.id_number,
            "id_status": i.status,
            "id_birth_date": i.birth_date,
            "id_sex": i.sex,
            "id_region": i.region,
        }
        for i in infos
    ]


@given(st.lists(st.one_of(st.none(), id_like(), _messy_text, st.text(max_size=20)), max_size=30))
def test_bulk_agrees_with_scalar_text(values: list[str | None]) -> None:
    series = pl.Series(values, dtype=pl.Utf8)
    assert normalize_ids(series, as_of=AS_OF).to_dicts() == _expected_frame(values)


@given(
    st.lists(st.tuples(st.one_of(st.none(), id_like(), _messy_text), st.booleans()), max_size=30)
)
def test_bulk_agrees_with_scalar_numeric_cells(cells: list[tuple[str | None, bool]]) -> None:
    values = [v for v, _ in cells]
    flags = [f for _, f in cells]
    frame = normalize_ids(pl.Series(values, dtype=pl.Utf8), as_of=AS_OF, numeric=pl.Series(flags))
    assert frame.to_dicts() == _expected_frame(values, flags)


@given(st.lists(st.one_of(st.none(), st.integers(-(10**18), 10**18)), max_size=30))
def test_bulk_agrees_with_scalar_int(values: list[int | None]) -> None:
    series = pl.Series(values, dtype=pl.Int64)
    assert normalize_ids(series, as_of=AS_OF).to_dicts() == _expected_frame(values)


@given(st.lists(st.one_of(st.none(), st.floats(), st.integers(0, 10**18).map(float)), max_size=30))
def test_bulk_agrees_with_scalar_float(values: list[float | None]) -> None:
    series = pl.Series(values, dtype=pl.Float64)
    assert normalize_ids(series, as_of=AS_OF).to_dicts() == _expected_frame(values)


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
