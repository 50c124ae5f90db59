"""Toneless pinyin of person names, with surname readings.

Names are read character by character: a given name is not a phrase, and reading it through a
phrase dictionary would give the same character different readings in different names, which is
exactly what name matching must not see. The first character (or the first two, for a compound
surname such as 万俟) is read as a surname, because several common surnames are polyphonic and
their everyday reading is wrong for a surname (单 is "dan" in a sentence, "shan" as a surname).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from pypinyin import Style, lazy_pinyin

from staging._arrow import as_arrow, python_on_unique, to_series
from staging.text import MIDDLE_DOT

__all__ = ["COMPOUND_SURNAME_READINGS", "SURNAME_READINGS", "name_pinyin"]

SURNAME_READINGS: dict[str, str] = {
    "单": "shan",
    "解": "xie",
    "曾": "zeng",
    "查": "zha",
    "仇": "qiu",
    "区": "ou",
    "朴": "piao",
    "盖": "ge",
    "缪": "miao",
    "覃": "qin",
    # As a one-character surname 尉 is "wei" (尉健行 Wei Jianxing); "yu" only in the compound 尉迟.
    "尉": "wei",
    "乐": "yue",
    "秘": "bi",
    "种": "chong",
    "翟": "zhai",
    "薄": "bo",
    "阚": "kan",
    "长": "chang",
    "重": "chong",
    "都": "du",
    "能": "nai",
    "折": "she",
    "召": "shao",
    "员": "yun",
    "句": "gou",
    "乜": "nie",
    "隗": "wei",
    "繁": "po",
    "祭": "zhai",
    "谌": "chen",
    "厍": "she",
    "郇": "huan",
    "眭": "sui",
    "蕃": "pi",
    "黑": "he",
}
"""Readings of polyphonic one-character surnames, used for the first character of a name."""

COMPOUND_SURNAME_READINGS: dict[str, str] = {
    "万俟": "mo qi",
    "尉迟": "yu chi",
    "长孙": "zhang sun",
    "澹台": "tan tai",
}
"""Compound surnames whose reading differs from reading their characters one by one.

Matched before :data:`SURNAME_READINGS`, and only when a given name follows (``长孙`` alone is
the surname 长 and the given name 孙)."""


def name_pinyin(names: pd.Series) -> pd.Series:
    """Return the toneless, lower-case pinyin of normalised names, syllables joined by spaces.

    The first character uses its surname reading (:data:`SURNAME_READINGS`, or
    :data:`COMPOUND_SURNAME_READINGS` for the first two). Transliterated names such as
    ``阿依古丽·买买提`` have no Chinese surname: each part is read as written and ``·`` stays as a
    token between the parts. Runs of non-Chinese characters become one lower-case token. ``ü`` is
    written ``v`` (``lv``), as pinyin input methods do.

    Pass names through :func:`staging.normalize_name` first; this function reads what it is given.

    Args:
        names: normalised names, missing values allowed.

    Returns:
        A ``string`` Series on the same index; missing names stay missing.

    Example:
        ``name_pinyin(pd.Series(["单田芳", "阿依古丽·买买提"]))`` gives
        ``["shan tian fang", "a yi gu li · mai mai ti"]``.
    """
    return to_series(python_on_unique(as_arrow(names), _read_names), names.index)


# Character -> reading, filled on first sight; a process meets a few thousand distinct characters.
_READINGS_CACHE: dict[str, str | None] = {}


def _read_names(names: Sequence[str | None]) -> list[str | None]:
    readings = _char_readings(frozenset("".join(name for name in names if name)))
    return [_read_name(name, readings) if name else None for name in names]


def _read_name(name: str, readings: dict[str, str | None]) -> str:
    tokens: list[str] = []
    rest = name
    if MIDDLE_DOT not in name:
        compound = COMPOUND_SURNAME_READINGS.get(name[:2])
        if compound is not None and len(name) > 2:
            tokens.append(compound)
            rest = name[2:]
        elif name[0] in SURNAME_READINGS:
            tokens.append(SURNAME_READINGS[name[0]])
            rest = name[1:]
    foreign = ""
    for char in rest:
        reading = MIDDLE_DOT if char == MIDDLE_DOT else readings[char]
        if reading is None:
            foreign += char
            continue
        if foreign:
            tokens.append(foreign.lower())
            foreign = ""
        tokens.append(reading)
    if foreign:
        tokens.append(foreign.lower())
    return " ".join(tokens)


def _char_readings(chars: frozenset[str]) -> dict[str, str | None]:
    """Reading of every character (``None`` for a character pinyin cannot read, e.g. a letter)."""
    unknown = sorted(chars - _READINGS_CACHE.keys())
    if unknown:
        # One call for all new characters: pypinyin reads each list item as its own word.
        for char, reading in zip(unknown, lazy_pinyin(unknown, style=Style.NORMAL, errors=_unreadable), strict=True):
            _READINGS_CACHE[char] = reading or None
    return _READINGS_CACHE


def _unreadable(chars: str) -> list[str]:
    # pypinyin hands over a run of characters it cannot read; keep one empty reading per character
    # so the zip above stays aligned and the character is later kept as written.
    return [""] * len(chars)
