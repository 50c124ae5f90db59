"""Text normalisers: full-width forms, spaces, traditional characters, middle dots."""

import pandas as pd
import pytest

from staging import (
    clean_text,
    normalize_address,
    normalize_name,
    to_halfwidth,
    to_simplified,
)


def values(series: pd.Series) -> list:
    return [None if pd.isna(v) else v for v in series]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＡＢＣ１２３", "ABC123"),
        ("张\u3000伟", "张 伟"),  # the ideographic space becomes an ordinary one; nothing is trimmed
        ("（010）", "(010)"),
        ("张伟", "张伟"),
    ],
)
def test_to_halfwidth(raw, expected):
    assert to_halfwidth(pd.Series([raw])).tolist() == [expected]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" 张伟 ", "张伟"),
        ("张 伟", "张伟"),
        ("张\u3000伟", "张伟"),
        ("\t张\n伟\r", "张伟"),
        ("张\u200b伟\ufeff", "张伟"),  # zero-width space and BOM are invisible but real characters
        ("１１０１０５", "110105"),
        ("Ａｂｃ", "Abc"),
        ("", None),
        ("\u3000 ", None),
        (None, None),
    ],
)
def test_clean_text(raw, expected):
    assert values(clean_text(pd.Series([raw], dtype=object))) == [expected]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("張偉", "张伟"),
        ("劉曉明", "刘晓明"),
        ("头发", "头发"),  # already simplified: unchanged
        ("乾隆", "乾隆"),  # OpenCC keeps phrases whose characters only look traditional
    ],
)
def test_to_simplified(raw, expected):
    assert to_simplified(pd.Series([raw])).tolist() == [expected]


def test_to_simplified_keeps_newlines_and_order():
    # Batches are joined by newlines inside; a value with its own newline must not shift the others.
    assert to_simplified(pd.Series(["張\n偉", "劉", None, "陳"])).tolist() == ["张\n伟", "刘", pd.NA, "陈"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("張偉", "张伟"),
        ("张伟", "张伟"),
        (" 张 伟 ", "张伟"),
        ("张\u3000伟", "张伟"),
        ("ＬＩ　Ｍｉｎｇ", "LIMing"),
        ("阿依古丽·买买提", "阿依古丽·买买提"),
        ("阿依古丽•买买提", "阿依古丽·买买提"),  # bullet
        ("阿依古丽・买买提", "阿依古丽·买买提"),  # katakana middle dot
        ("阿依古丽･买买提", "阿依古丽·买买提"),  # half-width katakana middle dot
        ("阿依古丽‧买买提", "阿依古丽·买买提"),  # hyphenation point
        ("阿依古丽∙买买提", "阿依古丽·买买提"),  # bullet operator
        ("阿依古丽．买买提", "阿依古丽·买买提"),  # full-width full stop
        ("阿依古丽.买买提", "阿依古丽·买买提"),  # full stop
        ("阿依古丽 · 买买提", "阿依古丽·买买提"),
        ("阿依古丽··买买提", "阿依古丽·买买提"),  # doubled dot collapses
        ("·阿依古丽·", "阿依古丽"),  # dots at either end are noise
        ("", None),
        ("  ", None),
        ("·", None),
        (None, None),
    ],
)
def test_normalize_name(raw, expected):
    assert values(normalize_name(pd.Series([raw], dtype=object))) == [expected]


def test_normalize_address():
    raw = pd.Series(["北京市東城區 ３號樓　２單元", "上海市浦东新区", None])
    assert values(normalize_address(raw)) == ["北京市东城区3号楼2单元", "上海市浦东新区", None]


@pytest.mark.parametrize("dtype", [object, "str", "string"])
def test_normalisers_accept_every_text_dtype_and_keep_the_index(dtype):
    raw = pd.Series(["張偉", None], index=["a", "b"], dtype=dtype)
    result = normalize_name(raw)
    assert result.dtype == "string"
    assert list(result.index) == ["a", "b"]
    assert values(result) == ["张伟", None]
