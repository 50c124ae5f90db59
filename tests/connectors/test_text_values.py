"""The connector contract for values: text or None, whole numbers without '.0', ISO dates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from connectors._frames import cell_text, frame_sha256, text_frame

CASES = [
    # (value from a driver or file, text handed to staging)
    ("张三", "张三"),
    ("", None),
    (" ", " "),
    (None, None),
    (float("nan"), None),
    (pd.NaT, None),
    (123, "123"),
    (123.0, "123"),
    (-7.0, "-7"),
    (12.5, "12.5"),
    (110101199003077777, "110101199003077777"),
    (np.int64(42), "42"),
    (np.float64(3.0), "3"),
    (Decimal("300.00"), "300"),
    (Decimal("12.50"), "12.5"),
    (Decimal("1E-7"), "0.0000001"),
    (True, "true"),
    (dt.date(1990, 3, 7), "1990-03-07"),
    (dt.datetime(1990, 3, 7), "1990-03-07"),
    (dt.datetime(2024, 5, 6, 8, 30, 15), "2024-05-06 08:30:15"),
    (pd.Timestamp("2024-05-06"), "2024-05-06"),
    (dt.time(8, 30), "08:30:00"),
    ("独居".encode(), "独居"),
    (b"\xff\x00", "ff00"),
]


@pytest.mark.parametrize(("value", "expected"), CASES)
def test_cell_text(value: object, expected: str | None) -> None:
    assert cell_text(value) == expected


def test_text_frame_holds_only_str_or_none_in_object_columns() -> None:
    frame = text_frame([" 姓名 ", "\ufeff编号"], [["张三", ""], [1, None]])

    assert list(frame.columns) == ["姓名", "编号"]
    assert all(frame[c].dtype == object for c in frame.columns)
    assert frame.to_dict("list") == {"姓名": ["张三", None], "编号": ["1", None]}


def test_text_frame_keeps_duplicate_column_names_apart() -> None:
    frame = text_frame(["a", "a"], [["1"], ["2"]])

    assert frame.shape == (1, 2)
    assert frame.iloc[0].tolist() == ["1", "2"]


def test_frame_hash_changes_with_any_value_null_or_order() -> None:
    base = text_frame(["a", "b"], [["1", "2"], ["x", None]])
    same = text_frame(["a", "b"], [["1", "2"], ["x", None]])
    changed_value = text_frame(["a", "b"], [["1", "2"], ["x", "y"]])
    changed_order = text_frame(["a", "b"], [["2", "1"], [None, "x"]])
    null_vs_text = text_frame(["a", "b"], [["1", "2"], ["x", "None"]])

    digest = frame_sha256(base)
    assert digest == frame_sha256(same)
    assert len(digest) == 64
    assert len({digest, frame_sha256(changed_value), frame_sha256(changed_order), frame_sha256(null_vs_text)}) == 4
