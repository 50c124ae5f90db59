"""Staging: the canonical person record, the normalisers, and source -> canonical mapping with quarantine.

Plain, vectorised functions over pandas DataFrames; no Dagster. ``dedup`` and ``publish`` use the
normalisers (:mod:`staging.normalize`) so they read names, IDs and dates exactly as staging does.
"""

from staging._rules import source_keys
from staging.normalize import (
    CHINA_TZ,
    COMPOUND_SURNAME_READINGS,
    DATE_COLUMNS,
    ID_COLUMNS,
    MIDDLE_DOT,
    SURNAME_READINGS,
    TIMESTAMP_COLUMNS,
    clean_text,
    date_precision,
    id_check_digit,
    name_pinyin,
    normalize_address,
    normalize_name,
    normalize_phone,
    parse_dates,
    parse_id_numbers,
    parse_timestamps,
    to_halfwidth,
    to_simplified,
)
from staging.schema import (
    BOOLEAN_FIELDS,
    CANONICAL_COLUMNS,
    CONSENT_COLUMNS,
    CONSENT_QUARANTINE_RULES,
    PERSON_QUARANTINE_RULES,
    QUARANTINE_COLUMNS,
    empty_canonical_frame,
    empty_consent_frame,
    empty_quarantine_frame,
)
from staging.stage import (
    UNMAPPED_VALUE_COLUMNS,
    StageResult,
    stage_consent_records,
    stage_person_records,
)

__all__ = [
    "BOOLEAN_FIELDS",
    "CANONICAL_COLUMNS",
    "CHINA_TZ",
    "COMPOUND_SURNAME_READINGS",
    "CONSENT_COLUMNS",
    "CONSENT_QUARANTINE_RULES",
    "DATE_COLUMNS",
    "ID_COLUMNS",
    "MIDDLE_DOT",
    "PERSON_QUARANTINE_RULES",
    "QUARANTINE_COLUMNS",
    "SURNAME_READINGS",
    "TIMESTAMP_COLUMNS",
    "UNMAPPED_VALUE_COLUMNS",
    "StageResult",
    "clean_text",
    "date_precision",
    "empty_canonical_frame",
    "empty_consent_frame",
    "empty_quarantine_frame",
    "id_check_digit",
    "name_pinyin",
    "normalize_address",
    "normalize_name",
    "normalize_phone",
    "parse_dates",
    "parse_id_numbers",
    "parse_timestamps",
    "source_keys",
    "stage_consent_records",
    "stage_person_records",
    "to_halfwidth",
    "to_simplified",
]
