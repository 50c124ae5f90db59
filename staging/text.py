"""Text normalisers: full-width forms, stray spaces, traditional characters, middle dots.

Every function takes a pandas Series of text (``str``, ``string`` or ``object`` with ``None``) and
returns a ``string`` Series on the same index, missing values as ``pd.NA``. The work runs on the
distinct values only and with Arrow compute kernels; OpenCC is called once per batch of distinct
values, not once per row.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence

import opencc
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from staging._arrow import (
    as_arrow,
    clean_arrow,
    empty_to_null,
    on_unique,
    python_on_unique,
    to_series,
)

__all__ = [
    "MIDDLE_DOT",
    "clean_text",
    "normalize_address",
    "normalize_aliases",
    "normalize_name",
    "to_halfwidth",
    "to_simplified",
]

MIDDLE_DOT = "\u00b7"
"""The one separator kept between the parts of a transliterated (e.g. Uyghur) name: ``·``."""

# Full-width ASCII (U+FF01-U+FF5E) sits exactly 0xFEE0 above its half-width twin; U+3000 is the
# ideographic space typed by Chinese input methods.
_HALFWIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}

# What people and OCR type for the middle dot of a transliterated name, after NFKC: bullet,
# hyphenation point, bullet operator, dot operator, word-separator middle dot, katakana middle dot
# (NFKC folds the half-width one into it), full stop (NFKC folds U+FF0E into it), middle dot.
_MIDDLE_DOTS = r"[\x{2022}\x{2027}\x{2219}\x{22C5}\x{2E31}\x{30FB}.\x{00B7}]+"

# Distinct values are converted in batches joined by a newline: OpenCC's per-call overhead then
# counts once per batch, and its phrase matching cannot cross the newline.
_OPENCC_BATCH = 20_000


def to_halfwidth(values: pd.Series) -> pd.Series:
    """Replace full-width ASCII forms and the ideographic space by their half-width twins.

    Args:
        values: text, missing values allowed.

    Returns:
        A ``string`` Series on the same index; nothing else changes (no trimming).

    Example:
        ``to_halfwidth(pd.Series(["ＡＢ１２３"]))`` gives ``["AB123"]``.
    """
    return to_series(python_on_unique(as_arrow(values), _translate_halfwidth), values.index)


def clean_text(values: pd.Series) -> pd.Series:
    """NFKC-normalise, fold full-width forms, and remove every space (leading, trailing, internal).

    NFKC already folds full-width letters, digits and punctuation and the ideographic space
    (U+3000) to half-width, so this needs no separate :func:`to_halfwidth` pass. Chinese names,
    ID numbers and addresses carry no meaningful spaces, so all of them go, including zero-width
    and other invisible characters. A value left empty becomes missing.

    Args:
        values: text, missing values allowed.

    Returns:
        A ``string`` Series on the same index.

    Example:
        ``clean_text(pd.Series([" 张\u3000伟 ", "１１０"]))`` gives ``["张伟", "110"]``.
    """
    return to_series(on_unique(as_arrow(values), clean_arrow, arrow_only=True), values.index)


def to_simplified(values: pd.Series) -> pd.Series:
    """Convert traditional Chinese characters to simplified ones (OpenCC ``t2s``).

    Args:
        values: text, missing values allowed.

    Returns:
        A ``string`` Series on the same index.

    Example:
        ``to_simplified(pd.Series(["張偉"]))`` gives ``["张伟"]``.
    """
    return to_series(python_on_unique(as_arrow(values), _simplify), values.index)


def normalize_name(values: pd.Series) -> pd.Series:
    """Normalise person names: :func:`clean_text`, simplified characters, one kind of middle dot.

    The dots people type between the parts of a transliterated name (``•・‧∙．.`` and ``·``) all
    become ``·``; repeated dots collapse to one and dots at either end are dropped. A name left
    empty becomes missing.

    Args:
        values: names, missing values allowed.

    Returns:
        A ``string`` Series on the same index.

    Example:
        ``normalize_name(pd.Series(["張 偉", "阿依古丽•买买提"]))`` gives ``["张伟", "阿依古丽·买买提"]``.
    """

    def transform(dictionary: pa.Array) -> pa.Array:
        cleaned = clean_arrow(dictionary)
        dotted = pc.replace_substring_regex(cleaned, pattern=_MIDDLE_DOTS, replacement=MIDDLE_DOT)
        trimmed = empty_to_null(pc.utf8_trim(dotted, characters=MIDDLE_DOT))
        return pa.array(_simplify(trimmed.to_pylist()), type=pa.large_string())

    return to_series(on_unique(as_arrow(values), transform), values.index)


#: What separates two names in one alias cell (曾用名: 王芳、王小芳). Not the ASCII comma: a Latin name
#: is written "smith, john".
ALIAS_SEPARATORS = r"\s*[、，;；/|]\s*"

#: The one separator between aliases once normalised.
ALIAS_SEPARATOR = "、"


def normalize_aliases(values: pd.Series, normalize: Callable[[pd.Series], pd.Series] | None = None) -> pd.Series:
    """Normalise a cell of former names or aliases (曾用名, 别名): each name as ``normalize`` does
    (:func:`normalize_name` unless given), repeats dropped, joined by ``、``; empty becomes missing.

    Example:
        ``normalize_aliases(pd.Series(["王芳，王小芳", "張 偉", "、"]))`` gives ``["王芳、王小芳", "张伟", <NA>]``.
    """

    def transform(dictionary: pa.Array) -> pa.Array:
        cells = [[] if cell is None else [p for p in re.split(ALIAS_SEPARATORS, cell) if p] for cell in dictionary.to_pylist()]
        names = (normalize or normalize_name)(pd.Series([name for cell in cells for name in cell], dtype="string")).tolist()
        out, start = [], 0
        for cell in cells:
            kept = dict.fromkeys(name for name in names[start : start + len(cell)] if isinstance(name, str))
            start += len(cell)
            out.append(ALIAS_SEPARATOR.join(kept) or None)
        return pa.array(out, type=pa.large_string())

    return to_series(on_unique(as_arrow(values), transform), values.index)


def normalize_address(values: pd.Series) -> pd.Series:
    """Normalise address text (and address parts): :func:`clean_text`, then simplified characters.

    Args:
        values: addresses, missing values allowed.

    Returns:
        A ``string`` Series on the same index.

    Example:
        ``normalize_address(pd.Series(["東城區 ３號樓"]))`` gives ``["东城区3号楼"]``.
    """

    def transform(dictionary: pa.Array) -> pa.Array:
        return pa.array(_simplify(clean_arrow(dictionary).to_pylist()), type=pa.large_string())

    return to_series(on_unique(as_arrow(values), transform), values.index)


def _translate_halfwidth(values: Sequence[str | None]) -> list[str | None]:
    return [None if value is None else value.translate(_HALFWIDTH) for value in values]


@functools.cache
def _converter() -> opencc.OpenCC:
    # Loading OpenCC's dictionaries takes a few milliseconds: once per process is enough.
    return opencc.OpenCC("t2s")


def _simplify(values: Sequence[str | None]) -> list[str | None]:
    converter = _converter()
    result: list[str | None] = []
    for start in range(0, len(values), _OPENCC_BATCH):
        batch = values[start : start + _OPENCC_BATCH]
        present = [value for value in batch if value is not None]
        converted = _convert_batch(converter, present)
        replacements = iter(converted)
        result.extend(None if value is None else next(replacements) for value in batch)
    return result


def _convert_batch(converter: opencc.OpenCC, values: list[str]) -> list[str]:
    if not any("\n" in value for value in values):
        converted = converter.convert("\n".join(values)).split("\n")
        if len(converted) == len(values):
            return converted
    # A value with its own newline would shift the split; convert such batches one by one.
    return [converter.convert(value) for value in values]
