"""The canonical record's columns and dtypes, as docs/architecture.md states them."""

import pandas as pd

from core.vocabulary import PERSON_FIELDS
from staging import (
    CANONICAL_COLUMNS,
    CONSENT_COLUMNS,
    QUARANTINE_COLUMNS,
    empty_canonical_frame,
    empty_consent_frame,
    empty_quarantine_frame,
)


def test_canonical_columns_follow_the_contract_in_order():
    assert list(CANONICAL_COLUMNS) == [
        "record_id", "source", "source_key", "name", "name_pinyin", "sex", "birth_date", "birth_date_precision",
        "id_number", "id_number_valid", "id_upgraded", "id_birth_date", "id_sex", "birth_date_conflict",
        "sex_conflict", "phone", "address", "street", "community", "grid", "record_date", "lives_alone",
        "low_income", "pregnant", "corrections", "disability_grade", "chronic_disease", "case_type", "hukou_address",
        "residence_status", "change", "reported_by", "note", "alias", "extracted_at",
    ]
    flags = {"id_number_valid", "id_upgraded", "birth_date_conflict", "sex_conflict", "lives_alone", "low_income",
             "pregnant", "corrections"}
    assert {c for c, dtype in CANONICAL_COLUMNS.items() if dtype == "boolean"} == flags
    assert CANONICAL_COLUMNS["disability_grade"] == "Int8"
    assert CANONICAL_COLUMNS["extracted_at"] == "datetime64[us, UTC]"


def test_every_mappable_person_field_is_a_canonical_column():
    assert set(PERSON_FIELDS) <= set(CANONICAL_COLUMNS)


def test_empty_frames_have_the_declared_columns_and_dtypes():
    for frame, columns in [(empty_canonical_frame(), CANONICAL_COLUMNS), (empty_consent_frame(), CONSENT_COLUMNS),
                           (empty_quarantine_frame(), QUARANTINE_COLUMNS)]:
        assert frame.empty
        assert frame.dtypes.astype(str).to_dict() == columns
        assert isinstance(frame["source"].dtype, pd.StringDtype) and frame["source"].dtype.na_value is pd.NA
