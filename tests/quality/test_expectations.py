"""Great Expectations suites: they pass on good data and fail, with the reason, on broken data."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipelines.settings import DEMO_RULES
from quality import ValidationSummary, load_quality_rules, staged_person_suite, unified_population_suite, validate_frame

VALID_ID = "330106195001010012"
RULES = load_quality_rules(DEMO_RULES).defaults


def staged(n: int, invalid_share: float = 0.0) -> pd.DataFrame:
    invalid = int(n * invalid_share)
    return pd.DataFrame({
        "record_id": [f"s:{i}" for i in range(n)],
        "name": ["张伟"] * n,
        "sex": ["M"] * n,
        "id_number": [VALID_ID] * n,
        "id_number_valid": pd.array([False] * invalid + [True] * (n - invalid), dtype="boolean"),
        "birth_date": ["1950-01-01"] * n,
        "birth_date_precision": ["day"] * n,
    })


def failed_columns(summary: ValidationSummary) -> set[tuple[str, str | None]]:
    return {(o.kind, o.column) for o in summary.failed_expectations()}


def test_good_source_passes():
    summary = validate_frame(staged(50), staged_person_suite("health", RULES))
    assert summary.success and summary.row_count == 50 and not summary.failed_expectations()


def test_thirty_percent_invalid_ids_fails_the_source():
    summary = validate_frame(staged(100, invalid_share=0.3), staged_person_suite("health", RULES))
    assert not summary.success
    assert failed_columns(summary) == {("expect_column_values_to_be_in_set", "id_number_valid")}
    [outcome] = summary.failed_expectations()
    assert outcome.unexpected_count == 30 and outcome.mostly == 0.9


def test_five_percent_invalid_ids_is_tolerated():
    assert validate_frame(staged(100, invalid_share=0.05), staged_person_suite("health", RULES)).success


@pytest.mark.parametrize(
    ("column", "value", "kind"),
    [
        ("sex", "男", "expect_column_values_to_be_in_set"),
        ("id_number", "33010619500101001", "expect_column_values_to_match_regex"),
        ("birth_date", "1950/01/01", "expect_column_values_to_match_regex"),
        ("record_id", "s:0", "expect_column_values_to_be_unique"),
    ],
)
def test_each_broken_column_is_named(column, value, kind):
    frame = staged(20)
    frame.loc[5, column] = value
    summary = validate_frame(frame, staged_person_suite("health", RULES))
    assert (kind, column) in failed_columns(summary)


def test_empty_source_fails_and_missing_column_is_reported():
    empty = staged(0)
    assert ("expect_table_row_count_to_be_between", None) in failed_columns(
        validate_frame(empty, staged_person_suite("census", RULES))
    )
    no_name = staged(5).drop(columns=["name"])
    assert ("expect_column_to_exist", "name") in failed_columns(validate_frame(no_name, staged_person_suite("census", RULES)))


def test_unified_suite_rejects_two_people_sharing_an_id():
    frame = pd.DataFrame({"person_id": ["P1", "P2"], "name": ["张伟", "张伟"], "id_number": [VALID_ID, VALID_ID],
                          "record_count": [1, 2]})
    summary = validate_frame(frame, unified_population_suite())
    assert failed_columns(summary) == {("expect_column_values_to_be_unique", "id_number")}


def test_summary_round_trips_through_json_form():
    summary = validate_frame(staged(10, invalid_share=0.5), staged_person_suite("x", RULES))
    assert ValidationSummary.from_dict(summary.as_dict()) == summary


def test_outcomes_are_matched_to_their_expectation_whatever_order_gx_reports_them():
    # Declared fields put not-null expectations first; GX groups results by kind, so a positional
    # match would label the failure with another expectation's column.
    suite = staged_person_suite("health", RULES, fields=["name", "sex", "birth_date", "id_number"])
    summary = validate_frame(staged(100, invalid_share=0.3), suite)
    assert failed_columns(summary) == {("expect_column_values_to_be_in_set", "id_number_valid")}
    assert [o.column for o in summary.outcomes] == [s.kwargs.get("column") for s in suite.expectations]


def test_declared_column_emptied_fails_with_its_threshold():
    frame = staged(50)
    frame["birth_date"] = None
    summary = validate_frame(frame, staged_person_suite("census", RULES, fields=["name", "birth_date"]))
    [outcome] = summary.failed_expectations()
    assert (outcome.kind, outcome.column, outcome.unexpected_count, outcome.mostly) == (
        "expect_column_values_to_not_be_null", "birth_date", 50, 0.5)
    # Not declared, not required: a source without IDs (the census often) is not blocked for it.
    assert validate_frame(staged(50).assign(id_number=None), staged_person_suite("census", RULES, fields=["name"])).success


def test_failed_outcome_states_observed_value_and_threshold():
    [outcome] = validate_frame(staged(100, invalid_share=0.3), staged_person_suite("health", RULES)).failed_expectations()
    assert (outcome.observed(), outcome.threshold()) == ("30.0% unexpected (30 rows)", "at most 10% unexpected")
    [empty] = validate_frame(staged(0), staged_person_suite("census", RULES)).failed_expectations()
    assert (empty.observed(), empty.threshold()) == ("0 rows", "at least 1 row")


def test_every_expectation_kind_a_suite_or_guard_uses_has_its_chinese_text():
    from core.vocabulary import PERSON_FIELDS
    from quality.expectations import EXPECTATION_TEXTS, expectation_kind, expectation_text
    from quality.guards import GUARD_KINDS
    from quality.rules import QualityRules, consent_registry_suite

    every = QualityRules.model_validate({
        "required_fields": {"sex": {"min_share": 0.5}}, "value_sets": {"sex": {"values": ["M", "F"]}},
        "valid_id_share": {"min_share": 0.9}, "birth_years": {"earliest": 1900}, "row_count": {"min": 1, "max": 9},
        "row_count_change": {"max_share": 0.5}, "freshness": {"max_age_days": 365}, "unique_keys": {},
        "row_drop": {"max_share": 0.2}, "quarantine_share": {"max_share": 0.05},
    })
    # A rule added to QualityRules must be added above, so its expectation's text is checked too.
    assert every.model_fields_set == set(QualityRules.model_fields)
    suites = (staged_person_suite("health", every, fields=PERSON_FIELDS, previous_rows=100),
              consent_registry_suite("consent_registry", every), unified_population_suite())
    used = {(expectation_kind(e.kind), e.kwargs.get("column")) for suite in suites for e in suite.expectations}
    used |= {(kind, None) for kind in (*GUARD_KINDS, "expect_column_to_exist")}
    assert len({kind for kind, _ in used}) >= 10
    for kind, column in used:
        text = expectation_text(kind, column)
        assert text.label and text.why and "{" not in text.label + text.why, (kind, column)
    assert expectation_text("expect_column_values_to_not_be_null", "id_number").label == "公民身份号码不为空"
    assert expectation_text("ExpectColumnValuesToBeInSet", "id_number_valid") == EXPECTATION_TEXTS[
        "expect_column_values_to_be_in_set:id_number_valid"]


def test_an_outcome_is_described_in_chinese_for_the_report_and_in_english_for_the_log():
    from quality.expectations import describe_outcome

    outcome = {"kind": "expect_column_values_to_be_in_set", "unexpected_percent": 30.0, "unexpected_count": 30,
               "mostly": 0.9}
    assert describe_outcome(outcome) == ("30.0% unexpected (30 rows)", "at most 10% unexpected")
    assert describe_outcome(outcome, "zh") == ("30.0%不符合（30行）", "不符合的不超过10%")
    drop = {"kind": "row_drop", "observed_value": 10, "min_value": 1469, "max_value": 1836}
    assert describe_outcome(drop, "zh") == ("10行（上次发布1836行，−99.5%）", "至少1469行")


def test_known_outcomes_are_taken_and_only_the_other_expectations_run(monkeypatch):
    import dataclasses

    import quality.expectations
    from quality import expectation_key

    frame, suite = staged(100, invalid_share=0.3), staged_person_suite("health", RULES)
    full = validate_frame(frame, suite)
    keys = [expectation_key(spec) for spec in suite.expectations]
    ran: list[list[int]] = []
    real = quality.expectations._run_expectations

    def spy(frame, suite, indices):
        ran.append(list(indices))
        return real(frame, suite, indices)

    monkeypatch.setattr(quality.expectations, "_run_expectations", spy)
    known = dict(zip(keys[1:], full.outcomes[1:], strict=True))  # all but the first, as a kept staging holds them

    assert validate_frame(frame, suite, known) == full
    assert ran == [[0]]
    assert validate_frame(frame, suite, dict(zip(keys, full.outcomes, strict=True))) == full
    assert ran == [[0]]  # every outcome known: Great Expectations did not run
    # A kept outcome decides as it was kept (here: a failure taken for a success shows it is not re-run).
    flipped = dataclasses.replace(full.outcomes[-1], success=not full.outcomes[-1].success)
    assert validate_frame(frame, suite, {**known, keys[-1]: flipped}).outcomes[-1] == flipped


def test_great_expectations_does_not_fingerprint_the_frame(monkeypatch):
    """GX hashes a whole in-memory batch for a marker nothing reads (a quarter of the validation time at
    a million records); the validation must not pay it, and still judge the frame."""
    from great_expectations.execution_engine import pandas_execution_engine

    hashed: list[int] = []
    real = pandas_execution_engine.hash_pandas_dataframe
    monkeypatch.setattr(pandas_execution_engine, "hash_pandas_dataframe",
                        lambda df: hashed.append(len(df)) or real(df))
    summary = validate_frame(staged(100, invalid_share=0.3), staged_person_suite("health", RULES))
    assert hashed == []
    assert not summary.success


def test_a_validation_from_python_c_runs_to_its_end_with_pyspark_installed() -> None:
    # PySpark (the spark extra, installed with the tests) exits a process whose __main__ has no spec and
    # no file when Great Expectations imports Spark Connect: `python -c` would end silently with status 0.
    assert importlib.util.find_spec("pyspark") is not None, "the test extra installs PySpark"
    code = ("import pandas as pd; from quality.expectations import unified_population_suite, validate_frame; "
            "s = validate_frame(pd.DataFrame({'person_id': ['p1'], 'name': ['张伟'], 'id_number': [None], "
            "'record_count': [1]}), unified_population_suite()); print('validated', s.success)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    assert "validated True" in done.stdout, done.stderr[-2000:]
