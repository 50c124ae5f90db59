"""Dates stated in many formats, kept exactly as precise as stated.

A census extract gives a birth year and month, a civil-affairs register a full date, an Excel
sheet a date-time at midnight. Each becomes an ISO string as precise as its format: ``YYYY-MM-DD``,
``YYYY-MM`` or ``YYYY``. Formats are tried in order, each on the values still unparsed, each
vectorised over the distinct values.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core.errors import ConfigError
from core.vocabulary import TIMESTAMP_FORMATS
from staging._arrow import WHITESPACE, as_arrow, bool_series, empty_to_null, to_series

__all__ = [
    "CHINA_TZ",
    "DATE_COLUMNS",
    "TIMESTAMP_COLUMNS",
    "date_precision",
    "parse_dates",
    "parse_timestamps",
]

CHINA_TZ = dt.timezone(dt.timedelta(hours=8), "UTC+08:00")
"""China Standard Time. A fixed offset (China has had no daylight saving since 1991), so no time
zone database is needed on an air-gapped machine."""

DATE_COLUMNS: tuple[str, ...] = ("date", "precision", "unparseable")
"""Columns of the frame :func:`parse_dates` returns, in order."""

TIMESTAMP_COLUMNS: tuple[str, ...] = ("timestamp", "unparseable")
"""Columns of the frame :func:`parse_timestamps` returns, in order."""

_PRECISION_LENGTH = {"day": 10, "month": 7, "year": 4}
# Excel cells read through openpyxl arrive as "1980-01-02 00:00:00": a date stored as a date-time.
_MIDNIGHT = r"(?:T|[\p{Z}\p{Cc}])+0?0:00(?::00(?:\.0+)?)?[\p{Z}\p{Cc}]*$"
_ANY_TIME = r"(?:T|[\p{Z}\p{Cc}])+[0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?[\p{Z}\p{Cc}]*$"
_UTC = "datetime64[us, UTC]"
_UTC_OFFSET = r"(?:Z|[+-][0-9]{2}:?[0-9]{2})$"
_LONE_DIGIT = r"(^|[^0-9])([0-9])([^0-9]|$)"
_DIRECTIVE = re.compile(r"%(.)")
_NUMERIC_WIDTHS = {
    "Y": (4, 4),
    "y": (2, 2),
    "m": (1, 2),
    "d": (1, 2),
    "H": (1, 2),
    "M": (1, 2),
    "S": (1, 2),
    "j": (1, 3),
}


def date_precision(date_format: str) -> str:
    """Return the precision a ``strptime`` format states: ``day``, ``month`` or ``year``.

    Args:
        date_format: a ``strptime`` format such as ``"%Y年%m月"``.

    Raises:
        ConfigError: if the format states no year.

    Example:
        ``date_precision("%Y-%m")`` is ``"month"``.
    """
    directives = set(_DIRECTIVE.findall(date_format))
    if not directives & {"Y", "y"}:
        raise ConfigError(
            f"date format {date_format!r} has no year; use strptime directives such as '%Y-%m-%d', '%Y%m' or '%Y'"
        )
    if directives & {"d", "j"}:
        return "day"
    if directives & {"m", "b", "B"}:
        return "month"
    return "year"


def parse_dates(values: pd.Series, formats: Sequence[str], *, drop_time: bool = False) -> pd.DataFrame:
    """Parse dates with the given formats, tried in order, keeping the stated precision.

    Full-width digits and letters are folded and spaces removed first, and a trailing midnight
    time (``"1980-01-02 00:00:00"``, as Excel dates arrive) is dropped, so ``"%Y-%m-%d"`` reads it.
    Month and day may lack their zero padding (``"1980/1/2"`` with ``"%Y/%m/%d"``) wherever a
    separator follows them; in packed formats such as ``"%Y%m%d"`` every field must be full width,
    so ``"198011"`` is never read as 1980-01-01.

    Args:
        values: dates as text, missing values allowed.
        formats: ``strptime`` formats, most likely first.
        drop_time: drop any trailing time of day, not only midnight (for "last recorded" stamps
            taken from a database timestamp).

    Returns:
        A frame on the same index with the columns of :data:`DATE_COLUMNS`: ``date`` (string,
        ``YYYY-MM-DD``, ``YYYY-MM`` or ``YYYY``), ``precision`` (string: ``day``, ``month``,
        ``year``) and ``unparseable`` (boolean: a value is present but no format matched).

    Raises:
        ConfigError: if ``formats`` is empty or a format has no year.

    Example:
        ``parse_dates(pd.Series(["1980年1月2日", "1980-01"]), ["%Y年%m月%d日", "%Y-%m"])`` gives dates
        ``["1980-01-02", "1980-01"]`` with precisions ``["day", "month"]``.
    """
    if not formats:
        raise ConfigError("no date formats given; list at least one, e.g. date_formats: ['%Y-%m-%d', '%Y%m%d']")
    # Values lose their spaces in cleaning, so the formats must lose theirs too.
    formats = [re.sub(r"\s+", "", date_format) for date_format in formats]
    precisions = [date_precision(date_format) for date_format in formats]
    encoded = pc.dictionary_encode(as_arrow(values))
    distinct = _clean_dates(encoded.dictionary, drop_time)

    dates = pa.nulls(len(distinct), pa.large_string())
    chosen = pa.nulls(len(distinct), pa.large_string())
    for date_format, precision in zip(formats, precisions, strict=True):
        candidates = pc.and_(
            pc.is_null(dates),
            pc.fill_null(pc.match_substring_regex(distinct, pattern=_shape_pattern(date_format)), False),
        )
        if not pc.any(candidates).as_py():
            continue
        parsed = _to_iso(distinct, candidates, date_format, _PRECISION_LENGTH[precision])
        dates = pc.coalesce(dates, parsed)
        chosen = pc.if_else(pc.is_valid(parsed), pa.scalar(precision, pa.large_string()), chosen)

    unparseable = pc.and_(pc.is_valid(distinct), pc.is_null(dates))
    index = values.index
    return pd.DataFrame(
        {
            "date": to_series(pc.take(dates, encoded.indices), index),
            "precision": to_series(pc.take(chosen, encoded.indices), index),
            "unparseable": bool_series(pc.fill_null(pc.take(unparseable, encoded.indices), False), index),
        },
        index=index,
    )


def parse_timestamps(values: pd.Series, formats: Sequence[str] = ()) -> pd.DataFrame:
    """Parse points in time (e.g. when consent was given) into UTC timestamps.

    ISO 8601 text (``2024-05-01``, ``2024-05-01 10:00:00``, ``2024-05-01T10:00:00+08:00``) is read
    first; ``formats`` are tried after it, in order, on what is left, then the forms registries
    commonly write (:data:`core.vocabulary.TIMESTAMP_FORMATS`: ``2026年6月1日``, ``2026/6/1 9:05``). A value without a UTC offset
    is China Standard Time (:data:`CHINA_TZ`), as Chinese government systems record it. Full-width
    characters are folded and runs of spaces collapsed first.

    Args:
        values: timestamps as text, missing values allowed.
        formats: further ``strptime`` formats, e.g. ``["%Y/%m/%d %H:%M", "%Y年%m月%d日"]``.

    Returns:
        A frame on the same index with the columns of :data:`TIMESTAMP_COLUMNS`: ``timestamp``
        (``datetime64[us, UTC]``) and ``unparseable`` (boolean: present but not readable).

    Example:
        ``parse_timestamps(pd.Series(["2024-05-01 10:00"]))`` gives ``2024-05-01 02:00:00+00:00``.
    """
    encoded = pc.dictionary_encode(as_arrow(values))
    normalized = pc.utf8_normalize(encoded.dictionary, form="NFKC")
    collapsed = pc.replace_substring_regex(normalized, pattern=WHITESPACE, replacement=" ")
    distinct = to_series(empty_to_null(pc.utf8_trim(collapsed, characters=" ")), pd.RangeIndex(len(collapsed)))

    with_offset = distinct.str.contains(_UTC_OFFSET, regex=True).fillna(False).astype(bool)
    result = pd.Series(pd.NaT, index=distinct.index, dtype=_UTC)
    result[with_offset] = pd.to_datetime(distinct[with_offset], format="ISO8601", errors="coerce", utc=True)
    local = pd.to_datetime(distinct.where(~with_offset), format="ISO8601", errors="coerce")
    for date_format in dict.fromkeys([*formats, *TIMESTAMP_FORMATS]):
        missing = local.isna() & distinct.notna() & ~with_offset
        if not missing.any():
            break
        local = local.fillna(pd.to_datetime(distinct.where(missing), format=date_format, errors="coerce"))
    local_utc = local.dt.tz_localize(CHINA_TZ).dt.tz_convert("UTC").astype(_UTC)
    result = result.where(with_offset, local_utc)

    positions = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    index = values.index
    timestamps = pd.Series(result.array.take(positions, allow_fill=True), index=index)
    present = distinct.notna().array.take(positions, allow_fill=True, fill_value=False).to_numpy(dtype=bool)
    return pd.DataFrame(
        {"timestamp": timestamps, "unparseable": bool_series(present & timestamps.isna().to_numpy(), index)},
        index=index,
    )


def _clean_dates(array: pa.Array, drop_time: bool) -> pa.Array:
    normalized = pc.utf8_normalize(array, form="NFKC")
    without_time = pc.replace_substring_regex(normalized, pattern=_ANY_TIME if drop_time else _MIDNIGHT, replacement="")
    cleaned = pc.replace_substring_regex(without_time, pattern=WHITESPACE, replacement="")
    # pandas reads "%Y-%m-%d" with a strict ISO parser that wants "01", not "1"; padding every lone
    # digit lets all separated formats accept "1980-1-2". Twice, because a match consumes the
    # separator the next lone digit needs ("-1-2"). RE2 reads the rewrite "\10" as group 1, then "0".
    for _ in range(2):
        cleaned = pc.replace_substring_regex(cleaned, pattern=_LONE_DIGIT, replacement=r"\10\2\3")
    return empty_to_null(cleaned)


def _shape_pattern(date_format: str) -> str:
    """An anchored regex of the text a format may read, with packed numeric fields at full width.

    ``strptime`` lets ``%m`` and ``%d`` take one digit even where nothing separates them from
    the next field, which makes ``"%Y%m%d"`` read ``"198011"`` as 1980-01-01; requiring full width
    there removes that ambiguity.
    """
    tokens: list[tuple[str, str]] = []  # (kind, text): kind "directive" or "literal"
    position = 0
    for match in _DIRECTIVE.finditer(date_format):
        if match.start() > position:
            tokens.append(("literal", date_format[position : match.start()]))
        letter = match.group(1)
        tokens.append(("literal", "%") if letter == "%" else ("directive", letter))
        position = match.end()
    if position < len(date_format):
        tokens.append(("literal", date_format[position:]))

    parts = []
    for i, (kind, text) in enumerate(tokens):
        if kind == "literal":
            parts.append(re.escape(text))
            continue
        if text not in _NUMERIC_WIDTHS:
            parts.append(".+?")
            continue
        shortest, longest = _NUMERIC_WIDTHS[text]
        packed = any(0 <= j < len(tokens) and tokens[j][0] == "directive" for j in (i - 1, i + 1))
        parts.append(f"[0-9]{{{longest}}}" if packed else f"[0-9]{{{shortest},{longest}}}")
    return "^" + "".join(parts) + "$"


def _to_iso(distinct: pa.Array, candidates: pa.Array, date_format: str, length: int) -> pa.Array:
    """ISO text of the candidates ``date_format`` parses, cut to the format's precision; others null."""
    texts = pc.if_else(candidates, distinct, pa.scalar(None, distinct.type))
    parsed = pd.to_datetime(to_series(texts, pd.RangeIndex(len(texts))), format=date_format, errors="coerce")
    iso = pc.strftime(pa.array(parsed, from_pandas=True), format="%Y-%m-%d")
    return pc.utf8_slice_codeunits(iso, 0, length).cast(pa.large_string())
