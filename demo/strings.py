"""Vectorised text helpers for the demo generator: numpy ``StringDType`` arrays throughout.

Building a million addresses or dates one Python string at a time would dominate the run; numpy's
``np.strings`` functions do it in C on variable-width string arrays.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DATE_STYLES", "STRING", "cat", "date_parts", "format_dates", "numbered"]

STRING = np.dtypes.StringDType()
"""The variable-width string dtype every text array of the generator uses."""

DATE_STYLES = ("iso", "compact", "slash", "chinese", "dotted", "year_month")
"""Styles :func:`format_dates` writes: 1980-01-02, 19800102, 1980/1/2, 1980年1月2日, 1980.01.02, 198001."""


def cat(*parts: np.ndarray | str) -> np.ndarray:
    """Concatenate string arrays and literals element-wise.

    Example:
        ``cat("第", np.array([3]).astype(STRING), "网格")`` gives ``["第3网格"]``.
    """
    out = np.asarray(parts[0], dtype=STRING) if isinstance(parts[0], str) else parts[0]
    for part in parts[1:]:
        out = np.strings.add(out, part)
    return out


def numbered(prefix: str, n: int, width: int) -> np.ndarray:
    """Keys ``prefix`` + zero-padded 1..n, wider than ``width`` only if ``n`` needs it.

    Example:
        ``numbered("MZ", 2, 7)`` gives ``["MZ0000001", "MZ0000002"]``.
    """
    width = max(width, len(str(n)))
    return np.strings.add(prefix, np.strings.zfill(np.arange(1, n + 1).astype(STRING), width))


def date_parts(dates: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Year, month and day of ``datetime64`` dates as unpadded strings."""
    days = dates.astype("datetime64[D]")
    year = days.astype("datetime64[Y]").astype(np.int64) + 1970
    month = days.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (days - days.astype("datetime64[M]")).astype(np.int64) + 1
    return year.astype(STRING), month.astype(STRING), day.astype(STRING)


def format_dates(dates: np.ndarray, style: str) -> np.ndarray:
    """``datetime64`` dates as text in one of :data:`DATE_STYLES`.

    Raises:
        ValueError: an unknown style; the message lists the known ones.
    """
    if style not in DATE_STYLES:
        raise ValueError(f"unknown date style {style!r}; expected one of {', '.join(DATE_STYLES)}")
    y, m, d = date_parts(dates)
    mm, dd = np.strings.zfill(m, 2), np.strings.zfill(d, 2)
    if style == "iso":
        return cat(y, "-", mm, "-", dd)
    if style == "compact":
        return cat(y, mm, dd)
    if style == "slash":
        return cat(y, "/", m, "/", d)
    if style == "chinese":
        return cat(y, "年", m, "月", d, "日")
    if style == "dotted":
        return cat(y, ".", mm, ".", dd)
    return cat(y, mm)
