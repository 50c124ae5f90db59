"""The canonical person record, the staged consent record and the quarantine, as pandas dtypes.

These are the contract of ``docs/architecture.md`` ("Canonical person record"): every staged
person source has exactly :data:`CANONICAL_COLUMNS`, in that order, with those dtypes, whatever
the department's system looked like. Text is pandas' nullable ``string``, flags nullable
``boolean``, so a missing value is always ``pd.NA``.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

__all__ = [
    "BOOLEAN_FIELDS",
    "CANONICAL_COLUMNS",
    "CONSENT_COLUMNS",
    "CONSENT_QUARANTINE_RULES",
    "DAY_DATE_COLUMNS",
    "PERSON_QUARANTINE_RULES",
    "QUARANTINE_COLUMNS",
    "empty_canonical_frame",
    "empty_consent_frame",
    "empty_quarantine_frame",
]

_TEXT, _FLAG, _TIMESTAMP = "string", "boolean", "datetime64[us, UTC]"

CANONICAL_COLUMNS: dict[str, str] = {
    "record_id": _TEXT,
    "source": _TEXT,
    "source_key": _TEXT,
    "name": _TEXT,
    "name_pinyin": _TEXT,
    "sex": _TEXT,
    "birth_date": _TEXT,
    "birth_date_precision": _TEXT,
    "id_number": _TEXT,
    "id_number_valid": _FLAG,
    "id_upgraded": _FLAG,
    "id_birth_date": _TEXT,
    "id_sex": _TEXT,
    "birth_date_conflict": _FLAG,
    "sex_conflict": _FLAG,
    "phone": _TEXT,
    "address": _TEXT,
    "street": _TEXT,
    "community": _TEXT,
    "grid": _TEXT,
    "record_date": _TEXT,
    "lives_alone": _FLAG,
    "low_income": _FLAG,
    "pregnant": _FLAG,
    "corrections": _FLAG,
    "disability_grade": "Int8",
    "chronic_disease": _TEXT,
    "case_type": _TEXT,
    "hukou_address": _TEXT,
    "residence_status": _TEXT,
    "change": _TEXT,
    "reported_by": _TEXT,
    "note": _TEXT,
    "alias": _TEXT,
    "extracted_at": _TIMESTAMP,
}
"""Column -> pandas dtype of a staged person record, in canonical order."""


DAY_DATE_COLUMNS: tuple[str, ...] = ("record_date", "id_birth_date")
"""Staged text columns that always hold a whole day (``YYYY-MM-DD``) or null: DATE in the warehouse."""

BOOLEAN_FIELDS: tuple[str, ...] = ("lives_alone", "low_income", "pregnant", "corrections")
"""Person fields that are yes/no department attributes."""


CONSENT_COLUMNS: dict[str, str] = {
    "record_id": _TEXT,
    "source": _TEXT,
    "source_key": _TEXT,
    "id_number": _TEXT,
    "name": _TEXT,
    "purpose": _TEXT,
    "recipient": _TEXT,
    "status": _TEXT,
    "decided_at": _TIMESTAMP,
    "channel": _TEXT,
    "categories": _TEXT,
    "expires_at": _TIMESTAMP,
    "guardian_id_number": _TEXT,
    "extracted_at": _TIMESTAMP,
}
"""Column -> pandas dtype of a staged consent record, in order."""

QUARANTINE_COLUMNS: dict[str, str] = {
    "source": _TEXT,
    "source_key": _TEXT,
    "record_id": _TEXT,
    "row_number": "Int64",
    "rule": _TEXT,
    "rules": _TEXT,
    "field": _TEXT,
    "column": _TEXT,
    "value": _TEXT,
    "message": _TEXT,
    "raw_record": _TEXT,
    "subject_id_number": _TEXT,
    "extracted_at": _TIMESTAMP,
}
"""Column -> pandas dtype of a quarantine row: one per source row that broke a quarantine rule.

``rule`` is the first quarantine rule broken (in the order of :data:`PERSON_QUARANTINE_RULES` or
:data:`CONSENT_QUARANTINE_RULES`),
``rules`` all of them joined by ``,``; ``field``, ``column``, ``value`` and ``message`` describe the
first; ``row_number`` is the 1-based position in the extract and ``raw_record`` the source row as
JSON. ``subject_id_number`` is, for a consent decision, the resident ID number of the person it is
about when that can still be read: a decision that cannot be read must not be ignored for them."""

PERSON_QUARANTINE_RULES: tuple[str, ...] = (
    "truncated_row",
    "missing_source_key",
    "duplicate_source_key",
    "missing_name",
    "implausible_name",
    "excel_number_id",
    "malformed_id_number",
    "unparseable_birth_date",
    "birth_date_out_of_range",
    "unlisted_value",
    "future_record_date",
)
"""Quarantine rules for person records (a row breaking one is held back), in the order they are reported.

Not to be confused with the quality rules of ``rules.yaml`` (thresholds over a whole staged source,
:mod:`quality.rules`) or the linking vetoes (:mod:`dedup`)."""

CONSENT_QUARANTINE_RULES: tuple[str, ...] = (
    "truncated_row",
    "missing_source_key",
    "duplicate_source_key",
    "missing_id_number",
    "excel_number_id",
    "malformed_id_number",
    "unknown_status",
    "missing_purpose",
    "missing_recipient",
    "unparseable_decided_at",
    "missing_decided_at",
    "future_decided_at",
    "unparseable_expires_at",
)
"""Quarantine rules for consent records, in the order they are reported."""

def empty_canonical_frame() -> pd.DataFrame:
    """Return a person-record frame with no rows and the canonical columns and dtypes."""
    return _empty(CANONICAL_COLUMNS)


def empty_consent_frame() -> pd.DataFrame:
    """Return a consent-record frame with no rows and the consent columns and dtypes."""
    return _empty(CONSENT_COLUMNS)


def empty_quarantine_frame() -> pd.DataFrame:
    """Return a quarantine frame with no rows and the quarantine columns and dtypes."""
    return _empty(QUARANTINE_COLUMNS)


def _empty(columns: Mapping[str, str]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})
