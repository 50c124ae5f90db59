"""Pinyin of names: toneless, surname readings, transliterated names."""

import pandas as pd
import pytest

from staging import name_pinyin, normalize_name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("张伟", "zhang wei"),
        ("单田芳", "shan tian fang"),  # 单 is "dan" in a sentence, "shan" as a surname
        ("王单", "wang dan"),  # ... but only as the surname
        ("曾国藩", "zeng guo fan"),  # not "ceng"
        ("解缙", "xie jin"),  # not "jie"
        ("查良镛", "zha liang yong"),
        ("仇英", "qiu ying"),
        ("区建华", "ou jian hua"),
        ("朴树", "piao shu"),
        ("万俟卨", "mo qi xie"),  # compound surname
        ("尉迟恭", "yu chi gong"),
        ("吕布", "lv bu"),  # ü is written v
        ("阿依古丽·买买提", "a yi gu li · mai mai ti"),
        ("Tom张", "tom zhang"),
    ],
)
def test_name_pinyin(name, expected):
    assert name_pinyin(pd.Series([name])).tolist() == [expected]


def test_homophones_share_their_pinyin():
    assert name_pinyin(pd.Series(["王晓明", "王小明"])).nunique() == 1


def test_traditional_and_simplified_names_read_alike_after_normalisation():
    assert name_pinyin(normalize_name(pd.Series(["張偉", "张伟"]))).tolist() == ["zhang wei", "zhang wei"]


def test_missing_names_stay_missing():
    result = name_pinyin(pd.Series([None, "张伟"], dtype=object))
    assert result.isna().tolist() == [True, False]
    assert result.dtype == "string"
