"""Comparison levels, table-driven: ``{left, right, expected level}`` rows that read like the spec.

Each case goes through :func:`prepare_records` first, as the engine does, so raw forms (15-digit IDs,
traditional characters, 男/女) are compared after the same normalisation staging applies.
"""

from __future__ import annotations

import numpy as np
import pytest

from dedup.compare import RecordArrays, compare_pairs, level_labels
from dedup.prepare import prepare_records
from dedup.settings import LinkSettings
from tests.dedup.dedup_helpers import broken_check, mistype, records, transpose, valid_id

SETTINGS = LinkSettings()

ID_A = valid_id("330106", "19850312", "001")  # a man born 1985-03-12
ID_B = valid_id("330106", "19850312", "002")  # his twin sister: same area and birth date
ID_15 = "330106850312001"  # ID_A in the pre-1999 15-digit form
ID_A_TYPO = mistype(ID_A, 3)  # one digit of the area code mistyped
ID_A_SWAP = transpose(ID_A, 15)  # sequence "001" keyed as "010"
# A valid ID whose check character is X, to show the case of the X does not matter.
ID_X = next(i for i in (valid_id("330106", "19700101", f"{n:03d}") for n in range(200)) if i.endswith("X"))


def levels(left: dict[str, str], right: dict[str, str]) -> dict[str, str]:
    """Level label per comparison field for the pair (left, right)."""
    prepared = prepare_records(records([{"record_id": "t:1", **left}, {"record_id": "t:2", **right}]))
    arrays = RecordArrays.from_prepared(prepared)
    codes = compare_pairs(arrays, np.array([0]), np.array([1]), SETTINGS.comparisons)
    return {c.field: level_labels(c, codes[c.field]).iloc[0] for c in SETTINGS.comparisons}


def test_fixtures_are_what_they_claim() -> None:
    assert ID_A_SWAP != ID_A and sorted(ID_A_SWAP) == sorted(ID_A)
    assert ID_A_TYPO != ID_A and len(ID_A_TYPO) == 18


ID_CASES = [
    # (left, right, expected level, why)
    (ID_A, ID_A, "exact", "same ID"),
    (ID_A, ID_15, "exact", "15-digit form equals its 18-digit upgrade after staging"),
    (ID_X.lower(), ID_X, "exact", "case of the check character X does not matter"),
    (ID_A, ID_A_TYPO, "typo", "one digit mistyped"),
    (ID_A, ID_A_SWAP, "typo", "two adjacent digits transposed"),
    (ID_A, broken_check(ID_A), "typo", "wrong check character only"),
    (ID_A, mistype(ID_A_TYPO, 5), "close", "two digits mistyped"),
    (ID_A, ID_B, "different", "two different valid IDs (twins), though two digits apart"),
    (ID_A, valid_id("110105", "19491231", "002"), "different", "unrelated IDs"),
    (ID_A, "", "null", "missing on one side"),
    ("", "", "null", "missing on both sides never counts as equal"),
    (ID_A, "33010619850312", "null", "malformed (14 digits) is treated as missing"),
]


@pytest.mark.parametrize(("left", "right", "expected", "why"), ID_CASES, ids=[case[3] for case in ID_CASES])
def test_id_number_levels(left: str, right: str, expected: str, why: str) -> None:
    assert levels({"id_number": left}, {"id_number": right})["id_number"] == expected, why


BIRTH_CASES = [
    ("1985-03-12", "1985-03-12", "day", "exact"),
    ("1985-03-12", "19850312", "day", "same day, another layout"),
    ("1985-03-12", "1985年3月12日", "day", "same day, Chinese layout without padding"),
    ("1985-03-12", "1985-03", "month", "census gives year-month only"),
    ("1985-03", "1985-03", "month", "both year-month"),
    ("1985-03-12", "1985", "year", "year only"),
    ("1985-03-04", "1985-04-03", "swapped", "day and month swapped"),
    ("1985-03-12", "1985-03-13", "near", "off by one day"),
    ("1985-03-12", "1985-03-10", "near", "two days off"),
    ("1985-03-12", "1985-08-12", "near", "one digit of the month mistyped"),
    ("1985-03-12", "1985-03-21", "near", "two neighbouring digits of the day swapped"),
    ("1985-03-12", "1984-03-12", "near", "the same day a year off"),
    ("1985-03-12", "1985-04", "near", "the neighbouring month at month precision (census)"),
    ("1985-03", "1986-03", "near", "the same month a year off at month precision"),
    ("1985-03-12", "1985-06", "different", "three months off at month precision"),
    ("1985-03-12", "1985-07-30", "different", "months apart at day precision"),
    ("1985-03-03", "1985-05-17", "different", "equal day and month cannot be a swap"),
    ("1985-03-12", "", "null", "missing"),
    ("1985-03-12", "不详", "null", "unparseable is missing"),
]


@pytest.mark.parametrize(("left", "right", "expected", "why"), BIRTH_CASES, ids=[case[3] for case in BIRTH_CASES])
def test_birth_date_levels(left: str, right: str, expected: str, why: str) -> None:
    assert levels({"birth_date": left}, {"birth_date": right})["birth_date"] == expected, why


def test_birth_date_falls_back_to_id_number() -> None:
    # No stated birth date on the right: the one inside the ID stands in for it.
    assert levels({"birth_date": "1985-03-12"}, {"id_number": ID_A})["birth_date"] == "day"
    assert levels({"birth_date": "1985-03-13"}, {"id_number": ID_A})["birth_date"] == "near"
    assert levels({"birth_date": "1985-05-20"}, {"id_number": ID_A})["birth_date"] == "different"


def test_valid_id_overrules_a_stated_birth_date() -> None:
    # A slip on the form (the 13th) under a valid ID born on the 12th: the check character protects
    # the ID's date, so the record is compared as born on the 12th.
    assert levels({"birth_date": "1985-03-12"}, {"birth_date": "1985-03-13", "id_number": ID_A})["birth_date"] == "day"
    assert levels({"birth_date": "1985-05-20"}, {"birth_date": "1985-05-20", "id_number": ID_A})["birth_date"] == "different"


GENERIC_ID_CASES = [
    # Identifiers of another scheme (FEBRL's soc_sec_id, a patient number): no check digit to rely on.
    ("1234567", "1234567", "exact", "same identifier"),
    ("AB-123 456", "ab123456", "exact", "separators and case do not matter"),
    ("1234567", "1234568", "typo", "one character substituted"),
    ("1234567", "1234576", "typo", "two adjacent characters swapped"),
    ("1234567", "123467", "typo", "one character dropped"),
    ("1234567", "7654321", "different", "another identifier"),
    ("1234567", "1243576", "close", "two edits apart"),
    ("1234567", "1298567", "close", "two characters substituted"),
    ("1234567", "1987567", "different", "three edits apart"),
    ("1234567", "0000000", "null", "a placeholder is missing"),
    ("1234567", "12", "null", "too short to identify anyone"),
]


@pytest.mark.parametrize(("left", "right", "expected", "why"), GENERIC_ID_CASES, ids=[case[3] for case in GENERIC_ID_CASES])
def test_generic_identifier_levels(left: str, right: str, expected: str, why: str) -> None:
    assert levels({"id_number": left}, {"id_number": right})["id_number"] == expected, why


NAME_CASES = [
    ("张伟", "张伟", "exact", "same characters"),
    ("张伟", "張偉", "exact", "traditional form is simplified by staging"),
    ("张伟", "张 伟", "exact", "stray space"),
    ("张伟", "张玮", "homophone", "homophone: same pinyin zhang wei"),
    ("单田芳", "单天芳", "homophone", "surname reading shan on both sides"),
    ("吴宇", "昊宇", "shape", "形近字: 吴 wu misread as 昊 hao"),
    ("李宇轩", "李字轩", "shape", "形近字: 宇 yu misread as 字 zi"),
    ("吴宇", "昊字", "shape", "形近字: two look-alike characters"),
    ("刘德华", "刘华", "similar", "one character missing"),
    ("王小明", "王晓敏", "near_homophone", "front and back nasal confused (xiao ming / xiao min)"),
    ("刘玲", "刘琳", "near_homophone", "模糊音: ling / lin"),
    ("周晨", "周晟", "near_homophone", "模糊音: chen / cheng"),
    ("张丽", "臧丽", "near_homophone", "模糊音: zhang / zang"),
    ("王小明", "王小亮", "similar", "one character another (ming / liang)"),
    ("李娜", "李强", "different", "different given name"),
    ("阿依古丽·买买提", "阿依古丽•买买提", "exact", "minority name: another middle dot"),
    ("阿依古丽·买买提", "阿依古丽", "shared", "minority name: given-name-only form"),
    ("张伟", "李伟", "different", "different surname"),
    ("张伟", "", "null", "missing"),
    # Latin names (no Chinese characters): words stand in for pinyin, in either order.
    ("smith john", "smith john", "exact", "Latin: same name"),
    ("Smith, John", "smith john", "homophone", "Latin: case and punctuation only"),
    ("smith john", "john smith", "homophone", "Latin: given name and surname in the other order"),
    ("smith jonathan", "smith jonathon", "typo", "Latin: one letter off"),
    ("jonathan smith", "smith jonathon", "typo", "Latin: one letter off, words in the other order"),
    ("eveston adam", "eveston travis", "shared", "Latin: surname kept, given name replaced"),
    ("ebert charlie", "ebhrt seanna", "partial", "Latin: surname a letter off, given name replaced"),
    ("eveston", "eveston travis", "shared", "Latin: given name missing on one side"),
    ("smith john", "brown mary", "different", "Latin: nothing in common"),
    ("walker ann", "moore beth", "different", "Latin: no word close to another"),
]


@pytest.mark.parametrize(("left", "right", "expected", "why"), NAME_CASES, ids=[case[3] for case in NAME_CASES])
def test_name_levels(left: str, right: str, expected: str, why: str) -> None:
    assert levels({"name": left}, {"name": right})["name"] == expected, why


OTHER_CASES = [
    ("sex", "M", "男", "equal"),
    ("sex", "F", "2", "equal"),
    ("sex", "M", "F", "different"),
    ("sex", "M", "", "null"),
    ("phone", "13800138000", "+86 138-0013-8000", "equal"),
    ("phone", "13800138000", "13900139000", "different"),
    ("address", "示范区西溪街道翠苑社区3栋201", "示范区西溪街道翠苑社区3栋201", "exact"),
    ("address", "示范区西溪街道翠苑社区3幢2单元501室", "西溪街道翠苑社区3-2-501", "household"),
    ("address", "示范区西溪街道翠苑社区3幢2单元501室", "示范区西溪街道翠苑社区3栋2单元501室", "household"),
    ("address", "示范区西溪街道翠苑社区3幢2单元501室", "示范区西溪街道翠苑社区3幢2单元502室", "similar"),
    ("address", "示范区西溪街道翠苑社区3栋201", "示范区东湖街道和睦社区9栋1101", "different"),
    ("address", "12 wallaby place delmar 2119 nsw", "delmar 12 wallaby place 2119 nsw", "household"),
    ("address", "12 wallaby place delmar 2119 nsw", "12 walaby place delmar 2119 nsw", "similar"),
    ("address", "12 wallaby place delmar 2119 nsw", "wallaby place delmar", "partial"),
    ("address", "12 wallaby place delmar 2119 nsw", "7 kent street milton 3165 vic", "different"),
]


@pytest.mark.parametrize(("field", "left", "right", "expected"), OTHER_CASES)
def test_other_levels(field: str, left: str, right: str, expected: str) -> None:
    assert levels({field: left}, {field: right})[field] == expected


def test_sex_falls_back_to_valid_id() -> None:
    # ID_B is even in the 17th digit: a woman. A record stating M cannot be her.
    assert levels({"sex": "M"}, {"id_number": ID_B})["sex"] == "different"
    assert levels({"sex": "M"}, {"id_number": ID_A})["sex"] == "equal"


COMMUNITY_CASES = [
    # (left address, right address, left community, right community, expected, why)
    ("示范区西溪街道翠苑社区3幢2单元501室", "西溪街道翠苑社区3-2-501", "翠苑社区", "翠苑社区", "null",
     "the same flat implies the community: the address comparison counts it, once"),
    ("示范区西溪街道翠苑社区3幢2单元501室", "示范区西溪街道翠苑社区7幢1单元101室", "翠苑社区", "翠苑社区", "equal",
     "another flat in the same community"),
    ("示范区西溪街道翠苑社区3幢2单元501室", "示范区东湖街道和睦社区9幢1单元1101室", "翠苑社区", "和睦社区", "different",
     "moved to another community"),
    ("示范区西溪街道翠苑社区3幢2单元501室", "示范区西溪街道翠苑社区7幢1单元101室", "翠苑社区", "", "null",
     "community missing on one side: that source does not say, and is not second-guessed"),
    ("示范区西溪街道翠苑社区3幢2单元501室", "示范区西溪街道翠苑社区7幢1单元101室", "", "", "equal",
     "no record gives a community: each is read from its address"),
    ("示范区西溪街道丰收社区3幢2单元501室", "示范区西溪街道翠苑社区7幢1单元101室", "", "", "different",
     "no community given: each read from its address, and they differ"),
]


@pytest.mark.parametrize(("left", "right", "left_c", "right_c", "expected", "why"), COMMUNITY_CASES,
                         ids=[case[5] for case in COMMUNITY_CASES])
def test_community_levels(left: str, right: str, left_c: str, right_c: str, expected: str, why: str) -> None:
    got = levels({"address": left, "community": left_c}, {"address": right, "community": right_c})
    assert got["community"] == expected, why


def stated_levels(left: dict[str, str], right: dict[str, str]) -> dict[str, str]:
    """Level labels of ``stated_sex`` and ``stated_birth_date`` for the pair (left, right)."""
    prepared = prepare_records(records([{"record_id": "t:1", **left}, {"record_id": "t:2", **right}]))
    codes = compare_pairs(RecordArrays.from_prepared(prepared), np.array([0]), np.array([1]), SETTINGS.comparisons)
    return {field: level_labels(SETTINGS.comparison(field), codes[f"stated_{field}"]).iloc[0]
            for field in ("sex", "birth_date")}


STATED_CASES = [
    # (left, right, expected stated sex, expected stated birth date, why)
    ({"sex": "M", "birth_date": "1985-03-12", "id_number": ID_A}, {"sex": "F", "birth_date": "1953-07-15", "id_number": ID_A},
     "different", "different", "one number, and the records say another sex and another date"),
    ({"sex": "M", "birth_date": "1985-03-12", "id_number": ID_A}, {"sex": "", "birth_date": "", "id_number": ID_A},
     "equal", "day", "a record that states nothing takes what its number says"),
    ({"sex": "M", "birth_date": "1985-03-12", "id_number": ID_A}, {"sex": "女", "birth_date": "1985-12-03", "id_number": ID_A},
     "different", "swapped", "the stated values are compared with the same level tests: day and month swapped"),
    ({"sex": "M", "birth_date": "1985-03-12", "id_number": ID_A}, {"sex": "F", "birth_date": "1953-07-15", "id_number": ID_B},
     "null", "null", "two numbers: the usual, ID-backed comparison says it all"),
    ({"sex": "M", "birth_date": "1985-03-12", "id_number": ID_A}, {"sex": "F", "birth_date": "1953-07-15", "id_number": ID_A_TYPO},
     "null", "null", "a mistyped number is not shared"),
]


@pytest.mark.parametrize(("left", "right", "sex", "birth", "why"), STATED_CASES, ids=[case[4] for case in STATED_CASES])
def test_stated_levels_compare_what_records_sharing_a_valid_id_say(left, right, sex, birth, why) -> None:
    assert stated_levels(left, right) == {"sex": sex, "birth_date": birth}, why
    # The usual comparison sees the number's sex and date on both sides of a shared number.
    if left["id_number"] == right["id_number"]:
        assert {k: v for k, v in levels(left, right).items() if k in ("sex", "birth_date")} == {"sex": "equal", "birth_date": "day"}


OLD_FLAT = "示范区西溪街道翠苑社区3幢2单元501室"
NEW_FLAT = "示范区东湖街道和睦社区9幢1单元1101室"
OTHER_FLAT = "示范区北塘街道湖畔社区7幢1单元702室"


def address_level_within(rows: list[dict[str, str]], left: int, right: int) -> str:
    """The address level of rows ``left`` and ``right``, compared among all of ``rows``: a move is known
    from the other records."""
    prepared = prepare_records(records([{"record_id": f"t:{i}", **row} for i, row in enumerate(rows)]))
    codes = compare_pairs(RecordArrays.from_prepared(prepared), np.array([left]), np.array([right]), SETTINGS.comparisons)
    return level_labels(SETTINGS.comparison("address"), codes["address"]).iloc[0]


@pytest.mark.parametrize(
    ("left", "right", "level"),
    [
        (OLD_FLAT, "翠苑3幢501", "building_room"),  # the unit left out: most likely one flat
        ("西溪街道翠苑3-501", OLD_FLAT, "building_room"),
        (OLD_FLAT, "翠苑3-2-501", "household"),  # the compound's name alone, the unit given: one flat
        (OLD_FLAT, "示范区西溪街道翠苑社区3幢1单元501室", "similar"),  # both name a unit, and not the same one
        ("翠苑3幢501", "翠苑3幢502", "similar"),
        ("翠苑3幢501", "丰收3幢501", "different"),
    ],
)
def test_a_flat_with_its_unit_left_out_meets_the_flat_that_names_it(left: str, right: str, level: str) -> None:
    assert address_level_within([{"address": left}, {"address": right}], 0, 1) == level


MOVE_CASES = [
    # (records, pair compared, expected address level, why)
    ([{"address": OLD_FLAT, "id_number": ID_A}, {"address": NEW_FLAT, "id_number": ID_A},
      {"name": "李娜", "address": OLD_FLAT}, {"name": "李娜", "address": "东湖街道和睦社区9-1-1101"}], (2, 3), "moved",
     "his valid number places him at both flats: his wife's records there are her old and new home"),
    ([{"address": OLD_FLAT, "id_number": ID_A}, {"address": NEW_FLAT, "id_number": ID_A}], (0, 1), "moved",
     "his own two records: civil affairs has the registered flat, health the new one"),
    ([{"address": OLD_FLAT, "id_number": ID_A}, {"address": NEW_FLAT, "id_number": ID_A_TYPO},
      {"name": "李娜", "address": OLD_FLAT}, {"name": "李娜", "address": NEW_FLAT}], (2, 3), "different",
     "a mistyped number vouches for no one: no move is known"),
    ([{"address": OLD_FLAT, "id_number": ID_A}, {"address": NEW_FLAT, "id_number": ID_A},
      {"name": "李娜", "address": OLD_FLAT}, {"name": "李娜", "address": OTHER_FLAT}], (2, 3), "different",
     "a move from the old flat to another one than this"),
    ([{"address": OLD_FLAT, "id_number": ID_A}, {"address": OLD_FLAT, "id_number": ID_A}], (0, 1), "exact",
     "one flat is still one flat"),
]


@pytest.mark.parametrize(("rows", "pair", "expected", "why"), MOVE_CASES, ids=[case[3] for case in MOVE_CASES])
def test_two_flats_one_valid_id_number_lived_at_are_a_move(rows, pair, expected, why) -> None:
    assert address_level_within(rows, *pair) == expected, why


REGISTERED_CASES = [
    # (left, right, expected address level, why)
    ({"address": NEW_FLAT, "hukou_address": OLD_FLAT}, {"address": OLD_FLAT}, "registered",
     "the census counts him where he lives and gives his 户籍地址; civil affairs keeps the registered flat"),
    ({"address": OLD_FLAT}, {"address": NEW_FLAT, "hukou_address": "西溪街道翠苑社区3-2-501"}, "registered",
     "the 户籍地址 written another way is the same flat"),
    ({"address": NEW_FLAT, "hukou_address": "江西省南昌市东湖区新华路10号"},
     {"address": OTHER_FLAT, "hukou_address": "江西省南昌市东湖区新华路10号"}, "registered",
     "both registered at one home outside the district: compared as text"),
    ({"address": NEW_FLAT, "hukou_address": OLD_FLAT}, {"address": OTHER_FLAT}, "different",
     "registered elsewhere than the other record's flat"),
    ({"address": NEW_FLAT, "hukou_address": OLD_FLAT}, {"address": NEW_FLAT}, "exact",
     "where both live decides first"),
]


@pytest.mark.parametrize(("left", "right", "expected", "why"), REGISTERED_CASES, ids=[case[3] for case in REGISTERED_CASES])
def test_a_registered_address_meets_the_other_records_address(left, right, expected, why) -> None:
    assert levels(left, right)["address"] == expected, why


def test_a_latin_address_gives_its_postcode_as_the_community() -> None:
    got = levels({"address": "12 wallaby place delmar 2119 nsw"}, {"address": "7 kent street delmar 2119 nsw"})
    assert got["community"] == "equal"
    assert levels({"address": "12 wallaby place delmar 2119 nsw"},
                  {"address": "7 kent street milton 3165 vic"})["community"] == "different"


ALIAS_CASES = [
    # (left, right, expected name level, why)
    ({"name": "王芳", "alias": "王小芳"}, {"name": "王小芳"}, "alias", "the other record keys her former name (曾用名)"),
    ({"name": "王小芳"}, {"name": "王芳", "alias": "王晓芳、芳芳"}, "alias", "a former name given with the same pinyin"),
    ({"name": "王芳", "alias": "王小芳"}, {"name": "王丽", "alias": "王小芳"}, "alias", "both give one former name"),
    ({"name": "王芳", "alias": "王小芳"}, {"name": "王芳"}, "exact", "the names agree: the alias is not needed"),
    ({"name": "王芳", "alias": "王小芳"}, {"name": "李娜"}, "different", "neither name is known to the other"),
    ({"name": "smith john", "alias": "jones john"}, {"name": "jones  john"}, "alias", "a Latin alias"),
]


@pytest.mark.parametrize(("left", "right", "expected", "why"), ALIAS_CASES, ids=[case[3] for case in ALIAS_CASES])
def test_a_former_name_meets_the_other_records_name(left, right, expected, why) -> None:
    assert levels(left, right)["name"] == expected, why


def test_digit_slips_count_differing_digits_and_find_one_swap_of_neighbours() -> None:
    from dedup.compare import _digit_slips

    rng = np.random.default_rng(5)
    left = rng.integers(0, 10, (4000, 8), dtype=np.uint8)
    right = left.copy()
    # Rows 0-999 equal; then one digit changed, two neighbours swapped, two far digits changed, random rows.
    right[1000:2000, 3] = (right[1000:2000, 3] + 1) % 10
    right[2000:3000, [4, 5]] = right[2000:3000, [5, 4]]
    right[2500:3000, 5] = (left[2500:3000, 4] + 1) % 10  # neighbours that differ but are not each other's digit
    right[2500:3000, 4] = (left[2500:3000, 5] + 1) % 10
    right[3000:3500, [0, 7]] = (right[3000:3500, [0, 7]] + 3) % 10
    right[3500:] = rng.integers(0, 10, (500, 8), dtype=np.uint8)

    n_diff, transposed = _digit_slips(left, right)

    for row in range(len(left)):
        where = np.flatnonzero(left[row] != right[row])
        swap = (len(where) == 2 and where[1] == where[0] + 1
                and left[row, where[0]] == right[row, where[1]] and left[row, where[1]] == right[row, where[0]])
        assert (n_diff[row], transposed[row]) == (len(where), swap), row
    assert transposed[2000:2500].sum() == np.count_nonzero(left[2000:2500, 4] != left[2000:2500, 5])
    assert not transposed[2500:3500].any()


def test_level_columns_are_the_columns_compare_pairs_gives_in_its_order() -> None:
    from dedup.compare import level_columns

    prepared = prepare_records(records([{"record_id": "t:1", "name": "张伟"}, {"record_id": "t:2", "name": "张玮"}]))
    arrays = RecordArrays.from_prepared(prepared)
    for comparisons in (SETTINGS.comparisons, SETTINGS.comparisons[::-1], SETTINGS.comparisons[2:4], ()):
        got = compare_pairs(arrays, np.array([0]), np.array([1]), comparisons)
        assert list(got.columns) == level_columns(comparisons)
