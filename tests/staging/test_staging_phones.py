"""Phone numbers: digits only, +86 / 0086 stripped, implausible numbers dropped."""

import pandas as pd
import pytest

from staging import normalize_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800138000", "13800138000"),
        ("138-0013-8000", "13800138000"),
        ("+86 138 0013 8000", "13800138000"),
        ("+8613800138000", "13800138000"),
        ("8613800138000", "13800138000"),
        ("0086 13800138000", "13800138000"),
        ("１３８００１３８０００", "13800138000"),  # full-width digits
        ("(010) 6512-3456", "01065123456"),  # landline: 0 + 10 digits
        ("0755-1234567", "07551234567"),
        ("0571 8888888", "05718888888"),
        ("+86 010 65123456", "01065123456"),  # country code before a landline with its 0
        ("010-6512", None),  # too short for a landline
        ("12800138000", None),  # no mobile number starts 12
        ("1380013800", None),  # 10 digits
        ("138001380001", None),  # 12 digits, not a landline
        ("12345", None),
        ("无", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_phone(raw, expected):
    result = normalize_phone(pd.Series([raw], dtype=object))
    assert [None if pd.isna(v) else v for v in result] == [expected]
