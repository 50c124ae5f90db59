"""The normalisers in one place: text, names, pinyin, resident IDs, dates, phones.

Each is a pure, vectorised function over a pandas Series; ``dedup`` and ``publish`` import them
from here so they normalise exactly as staging does. The implementations live in the modules
named after what they normalise.
"""

from __future__ import annotations

from staging.dates import (
    CHINA_TZ,
    DATE_COLUMNS,
    TIMESTAMP_COLUMNS,
    date_precision,
    parse_dates,
    parse_timestamps,
)
from staging.id_numbers import ID_COLUMNS, id_check_digit, parse_id_numbers
from staging.phones import normalize_phone
from staging.pinyin import COMPOUND_SURNAME_READINGS, SURNAME_READINGS, name_pinyin
from staging.text import (
    ALIAS_SEPARATOR,
    MIDDLE_DOT,
    clean_text,
    normalize_address,
    normalize_aliases,
    normalize_name,
    to_halfwidth,
    to_simplified,
)

__all__ = [
    "ALIAS_SEPARATOR",
    "CHINA_TZ",
    "COMPOUND_SURNAME_READINGS",
    "DATE_COLUMNS",
    "ID_COLUMNS",
    "MIDDLE_DOT",
    "SURNAME_READINGS",
    "TIMESTAMP_COLUMNS",
    "clean_text",
    "date_precision",
    "id_check_digit",
    "name_pinyin",
    "normalize_address",
    "normalize_aliases",
    "normalize_name",
    "normalize_phone",
    "parse_dates",
    "parse_id_numbers",
    "parse_timestamps",
    "to_halfwidth",
    "to_simplified",
]
