import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkaudit.normalize import SURNAME_READINGS, normalize_name, normalize_names, pinyin_key


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("劉 德華", "刘德华"),
        ("韋國榮", "韦国荣"),
        ("Ａ\u3000Ｂ", "AB"),
        ("阿依古丽•买买提", "阿依古丽·买买提"),
        ("阿依古丽．买买提", "阿依古丽·买买提"),
        ("阿依古丽.买买提", "阿依古丽·买买提"),
        ("阿依古丽・买买提", "阿依古丽·买买提"),
        ("阿依古丽 · 买买提", "阿依古丽·买买提"),
        ("王.李.张.赵", "王·李·张·赵"),
        ("A.B", "A.B"),  # a dot between Latin letters is left alone
        ("\u200b李\u00a0四\t", "李四"),
        ("陸藍", "陆蓝"),
        ("A \u0301", "Á"),  # the space goes, then the accent composes with the letter
        ("薴", "苎"),  # OpenCC maps 薴 to 苧 and 苧 to 苎
        (None, None),
        ("", None),
        ("   ", None),
        ("\u3000", None),
    ],
)
def test_normalize_name_table(raw: str | None, expected: str | None) -> None:
    assert normalize_name(raw) == expected


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("韦小宝", "wei xiao bao"),
        ("曾小明", "zeng xiao ming"),
        ("单雄", "shan xiong"),
        ("覃", "qin"),
        ("小曾", "xiao ceng"),  # the surname reading applies to the first character only
        ("绿", "lv"),
        ("阿依古丽·买买提", "a yi gu li mai mai ti"),
        ("AB", "a b"),
        ("·", None),
        ("", None),
        (None, None),
    ],
)
def test_pinyin_key_table(name: str | None, key: str | None) -> None:
    assert pinyin_key(name) == key


def test_homophones_share_a_key() -> None:
    assert pinyin_key("韦") == pinyin_key("维") == "wei"
    assert pinyin_key(normalize_name("韋小寶")) == pinyin_key("维小宝")


def test_surname_table_is_used() -> None:
    for surname, reading in SURNAME_READINGS.items():
        key = pinyin_key(surname + "明")
        assert key is not None and key.split(" ")[0] == reading


# Traditional characters, homophones, dots, full-width letters, every kind of space, and a
# few characters NFKC composes across (combining accent, Hangul jamo).
_ALPHABET = (
    "刘德华劉國華韋韦维陸陆藍蓝曾单覃尉乐长重小明宝"
    "·•．・‧∙⋅.ＡＢａｂAb1１ \u3000\u00a0\u200b\t"
    "e\u0301\u1100\u1161"
)
_names = st.text(alphabet=_ALPHABET, max_size=8)


@given(st.lists(st.one_of(st.none(), _names), max_size=30))
def test_bulk_agrees_with_scalar(values: list[str | None]) -> None:
    frame = normalize_names(pl.Series(values, dtype=pl.Utf8))
    expected = [(normalize_name(v), pinyin_key(normalize_name(v))) for v in values]
    assert list(frame.iter_rows()) == expected


@given(st.lists(st.one_of(st.none(), st.text(max_size=6)), max_size=20))
def test_bulk_agrees_with_scalar_any_text(values: list[str | None]) -> None:
    frame = normalize_names(pl.Series(values, dtype=pl.Utf8))
    expected = [(normalize_name(v), pinyin_key(normalize_name(v))) for v in values]
    assert list(frame.iter_rows()) == expected


@given(st.one_of(_names, st.text(max_size=6)))
def test_normalize_name_idempotent(value: str) -> None:
    once = normalize_name(value)
    assert normalize_name(once) == once


def test_bulk_edge_cases() -> None:
    empty = normalize_names(pl.Series("n", [], dtype=pl.Utf8))
    assert empty.schema == pl.Schema({"name_norm": pl.Utf8, "name_pinyin": pl.Utf8})
    assert empty.height == 0
    nulls = normalize_names(pl.Series("n", [None, None]))
    assert nulls.rows() == [(None, None), (None, None)]
    blanks = normalize_names(pl.Series("n", ["", " ", "·"]))
    assert blanks.rows() == [(None, None), (None, None), ("·", None)]
    repeated = normalize_names(pl.Series("n", ["劉德華", None, "劉 德華", "刘德华"]))
    assert repeated.get_column("name_norm").to_list() == ["刘德华", None, "刘德华", "刘德华"]


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("长孙无忌", "zhang sun wu ji"),
        ("单于丹", "chan yu dan"),
        ("澹台明", "tan tai ming"),
        ("万俟卨", "mo qi xie"),
        ("尉迟恭", "yu chi gong"),
        ("单于", "shan yu"),  # a two-character name: surname 单, given name 于
        ("薄熙", "bo xi"),
        ("黑明", "he ming"),
        ("都兰", "du lan"),
        ("召强", "shao qiang"),
        ("能芳", "nai fang"),
        ("洗玉", "xian yu"),
        ("折英", "she ying"),
        ("阚华", "kan hua"),
        ("乜军", "nie jun"),
        ("乾隆", "qian long"),  # 乾 is not simplified to 干 (gan)
    ],
)
def test_surname_readings(name: str, key: str) -> None:
    from linkaudit.normalize.names import normalize_names

    assert pinyin_key(normalize_name(name)) == key
    bulk = normalize_names(pl.Series([name, "韦小宝"]))
    assert bulk.get_column("name_pinyin").to_list() == [key, "wei xiao bao"]


def test_traditional_qian_is_kept() -> None:
    assert normalize_name("乾") == "乾"
    assert normalize_name("黃國榮") == "黄国荣"
