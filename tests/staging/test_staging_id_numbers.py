"""Resident ID numbers: cleaning, the 15 -> 18 upgrade, check digit, birth date and sex."""

import datetime as dt

import pandas as pd
import pytest

from staging import ID_COLUMNS, id_check_digit, parse_id_numbers

AS_OF = dt.date(2026, 11, 23)


def valid_id(first17: str) -> str:
    return first17 + id_check_digit(first17)


def test_check_digit_of_the_standard_example():
    # GB 11643's own example. Weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2 over 11010519491231002:
    # 7+9+0+5+0+20+2+9+24+27+7+18+30+5+0+0+4 = 167; 167 mod 11 = 2; "10X98765432"[2] = "X".
    assert id_check_digit("11010519491231002") == "X"


def test_check_digit_computed_by_hand():
    # 4 4 0 5 2 4 1 9 8 0 0 1 0 1 0 0 1 weighted: 28+36+0+25+16+16+2+9+48+0+0+9+0+5+0+0+2 = 196;
    # 196 mod 11 = 9; "10X98765432"[9] = "3".
    assert id_check_digit("44052419800101001") == "3"


@pytest.mark.parametrize(
    "bad", ["1101051949123100", "110105194912310021", "1101051949123100X", "１１０１０５１９４９１２３１００２"]
)
def test_check_digit_rejects_anything_but_17_ascii_digits(bad):
    with pytest.raises(ValueError, match="17 digits"):
        id_check_digit(bad)


# (raw value, id_number, valid, upgraded, birth date, sex, malformed, what it shows)
CASES = [
    (valid_id("11010519800102123"), "110105198001021233", True, False, "1980-01-02", "M", False, "valid 18-digit ID"),
    ("11010519491231002x", "11010519491231002X", True, False, "1949-12-31", "F", False, "lower-case x"),
    ("１１０１０５１９４９１２３１００２Ｘ", "11010519491231002X", True, False, "1949-12-31", "F", False, "full-width"),
    (" 110105 19491231002X\u3000", "11010519491231002X", True, False, "1949-12-31", "F", False, "stray spaces"),
    # The 15-digit form: area 110105, birth 491231, sequence 002; "19" goes in after the area
    # code and the check character of 11010519491231002 is X (see the test above).
    ("110105491231002", "11010519491231002X", True, True, "1949-12-31", "F", False, "15 digits upgraded"),
    ("440524800101001", "440524198001010013", True, True, "1980-01-01", "M", False, "15 digits upgraded"),
    ("110105194912310021", "110105194912310021", False, False, "1949-12-31", "F", False, "wrong check digit"),
    (valid_id("11010519800230001"), valid_id("11010519800230001"), False, False, None, "M", False, "30 February"),
    (valid_id("11010520301231001"), valid_id("11010520301231001"), False, False, None, "M", False, "born in future"),
    (valid_id("11010519801301001"), valid_id("11010519801301001"), False, False, None, "M", False, "month 13"),
    ("1101051980", None, False, False, None, None, True, "10 characters"),
    ("11010519491231002Y", None, False, False, None, None, True, "a letter other than X"),
    ("3.30106E+17", None, False, False, None, None, True, "Excel scientific notation"),
    ("1101051949123100211", None, False, False, None, None, True, "19 characters"),
    ("X1010519491231002X", None, False, False, None, None, True, "X not at the end"),
]


@pytest.mark.parametrize(
    ("raw", "id_number", "valid", "upgraded", "birth", "sex", "malformed", "why"), CASES, ids=[c[-1] for c in CASES]
)
def test_parse_id_numbers(raw, id_number, valid, upgraded, birth, sex, malformed, why):
    row = parse_id_numbers(pd.Series([raw]), as_of=AS_OF).iloc[0]
    assert (row["id_number"] if pd.notna(row["id_number"]) else None) == id_number
    assert row["id_number_valid"] == valid
    assert row["id_upgraded"] == upgraded
    assert (row["id_birth_date"] if pd.notna(row["id_birth_date"]) else None) == birth
    assert (row["id_sex"] if pd.notna(row["id_sex"]) else None) == sex
    assert row["id_malformed"] == malformed
    # Only an ID invalid for no other reason than its birth day is still to come becomes valid on that day.
    assert (row["id_valid_from"] if pd.notna(row["id_valid_from"]) else None) == (
        "2030-12-31" if why == "born in future" else None)


def test_a_future_id_with_a_wrong_check_digit_never_becomes_valid():
    wrong = valid_id("11010520301231001")[:-1] + ("0" if valid_id("11010520301231001")[-1] != "0" else "1")
    assert pd.isna(parse_id_numbers(pd.Series([wrong]), as_of=AS_OF).loc[0, "id_valid_from"])


@pytest.mark.parametrize("absent", [None, "", "   ", "\u3000"])
def test_absent_id_is_neither_valid_nor_invalid_nor_malformed(absent):
    row = parse_id_numbers(pd.Series([absent], dtype=object), as_of=AS_OF).iloc[0]
    assert pd.isna(row["id_number"]) and pd.isna(row["id_number_valid"])
    assert not row["id_malformed"] and not row["id_upgraded"]


def test_leap_day_is_a_real_date_only_in_leap_years():
    ids = pd.Series([valid_id("11010520000229001"), valid_id("11010519000229001"), valid_id("11010519990229001")])
    parsed = parse_id_numbers(ids, as_of=AS_OF)
    assert parsed["id_number_valid"].tolist() == [True, False, False]  # 2000 is leap, 1900 and 1999 are not


def test_frame_shape_dtypes_and_index():
    values = pd.Series([valid_id("11010519800102123"), None, "bad"], index=[10, 20, 30])
    parsed = parse_id_numbers(values, as_of=AS_OF)
    assert tuple(parsed.columns) == ID_COLUMNS
    assert list(parsed.index) == [10, 20, 30]
    assert parsed.dtypes.astype(str).tolist() == ["string", "boolean", "boolean", "string", "string", "boolean", "string"]


def test_many_repeated_and_distinct_ids_parse_alike():
    # Both paths (de-duplicated and not) must give the same answers.
    distinct = pd.Series([valid_id(f"{110000 + i:06d}19800102{i % 1000:03d}") for i in range(12_000)])
    repeated = pd.Series([valid_id("11010519800102123"), "1101051980"] * 6_000)
    assert parse_id_numbers(distinct, as_of=AS_OF)["id_number_valid"].all()
    parsed = parse_id_numbers(repeated, as_of=AS_OF)
    assert parsed["id_malformed"].sum() == 6_000
    assert parsed["id_number"].iloc[0] == "110105198001021233"
