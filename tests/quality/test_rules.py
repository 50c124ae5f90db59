"""rules.yaml: its rules decide the suites, warn rules report without blocking, bad files fail at load."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from core.errors import ConfigError
from pipelines.cli import main, run_pipeline
from pipelines.graph import build_definitions
from pipelines.settings import DEMO_POLICY, DEMO_RULES, DEMO_SOURCES, Settings
from quality import load_quality_rules, staged_person_suite, validate_frame
from tests.quality.conftest import warehouse_path
from tests.quality.test_expectations import staged

DEMO = DEMO_RULES.read_text(encoding="utf-8")


def rules_file(tmp_path: Path, sources: str) -> Path:
    """The demo rules with ``sources:`` replaced by ``sources`` (YAML text)."""
    path = tmp_path / "rules.yaml"
    path.write_text(DEMO.replace("sources: {}", sources), encoding="utf-8")
    return path


def failed(summary) -> set[tuple[str, str | None]]:
    return {(o.kind, o.column) for o in summary.failed_expectations()}


def test_demo_rules_hold_the_thresholds_the_gate_has_always_had():
    rules = load_quality_rules(DEMO_RULES).defaults
    assert {k: r.min_share for k, r in rules.required_fields.items()} == {"sex": 0.5, "birth_date": 0.5, "id_number": 0.3}
    assert rules.valid_id_share.min_share == 0.9 and rules.valid_id_share.severity == "error"
    assert rules.row_count.min == 1 and rules.unique_keys is not None
    assert rules.freshness.severity == rules.row_count_change.severity == "warn"


def test_tightening_a_sources_valid_id_share_makes_only_that_source_fail(tmp_path):
    rules = load_quality_rules(rules_file(tmp_path, "sources:\n  health:\n    valid_id_share: {min_share: 0.99}"))
    frame = staged(100, invalid_share=0.05)
    health = validate_frame(frame, staged_person_suite("health", rules.for_source("health")))
    census = validate_frame(frame, staged_person_suite("census", rules.for_source("census")))
    assert not health.success and failed(health) == {("expect_column_values_to_be_in_set", "id_number_valid")}
    assert health.failed_expectations()[0].threshold() == "at most 1% unexpected"
    assert census.success


def test_a_failing_warn_rule_is_reported_and_does_not_fail_the_suite(tmp_path):
    rules = load_quality_rules(rules_file(tmp_path, "sources:\n  health:\n    valid_id_share: {min_share: 0.99, severity: warn}"))
    summary = validate_frame(staged(100, invalid_share=0.05), staged_person_suite("health", rules.for_source("health")))
    assert summary.success and not summary.failed_expectations()
    [warning] = summary.warnings()
    assert (warning.column, warning.severity, warning.unexpected_count) == ("id_number_valid", "warn", 5)


def test_overrides_replace_per_field_and_null_switches_a_rule_off(tmp_path):
    path = rules_file(tmp_path, "sources:\n  census:\n    required_fields: {id_number: {min_share: 0.8}}\n"
                                "    valid_id_share: null")
    census = load_quality_rules(path).for_source("census")
    assert {k: r.min_share for k, r in census.required_fields.items()} == {"sex": 0.5, "birth_date": 0.5, "id_number": 0.8}
    assert census.valid_id_share is None
    assert validate_frame(staged(100, invalid_share=0.5), staged_person_suite("census", census)).success


def test_birth_years_are_checked_at_the_stated_precision(tmp_path):
    rules = load_quality_rules(rules_file(tmp_path, "sources:\n  x:\n    birth_years: {earliest: 1900, latest: 1990}")).for_source("x")
    frame = staged(5)
    frame["birth_date"] = ["1900", "1900-05", "1990-12-31", None, "1950-01-01"]
    assert validate_frame(frame, staged_person_suite("x", rules)).success
    frame.loc[0, "birth_date"], frame.loc[1, "birth_date"] = "1899", "1991-01"
    [outcome] = validate_frame(frame, staged_person_suite("x", rules)).failed_expectations()
    assert (outcome.column, outcome.unexpected_count) == ("birth_year", 2)
    assert outcome.threshold() == "none unexpected outside 1900–1990"


def test_freshness_counts_back_from_the_extraction_day_and_needs_a_declared_record_date(tmp_path):
    rules = load_quality_rules(rules_file(tmp_path, "sources:\n  x:\n    freshness: {max_age_days: 30}")).for_source("x")
    frame = staged(3).assign(record_date=["2026-01-01", "2026-02-20", None])
    extracted = dt.datetime(2026, 3, 1, 20, 0, tzinfo=dt.timezone.utc)  # already 2 March in China
    fresh = staged_person_suite("x", rules, fields=["name", "record_date"], as_of=extracted)
    assert validate_frame(frame, fresh).success
    stale = staged_person_suite("x", rules, fields=["name", "record_date"], as_of=dt.date(2026, 4, 1))
    [outcome] = validate_frame(frame, stale).failed_expectations()
    assert (outcome.observed(), outcome.threshold()) == ("newest 2026-02-20", "newest on or after 2026-03-02")
    assert validate_frame(frame, staged_person_suite("x", rules, fields=["name"], as_of=dt.date(2026, 4, 1))).success


def test_row_count_bounds_and_change_against_the_last_run(tmp_path):
    path = rules_file(tmp_path, "sources:\n  x:\n    row_count: {min: 10, max: 200}\n"
                                "    row_count_change: {max_share: 0.2}")
    rules = load_quality_rules(path).for_source("x")
    assert validate_frame(staged(100), staged_person_suite("x", rules, previous_rows=90)).success
    [few] = validate_frame(staged(5), staged_person_suite("x", rules)).failed_expectations()
    assert (few.observed(), few.threshold()) == ("5 rows", "between 10 and 200 rows")
    [moved] = validate_frame(staged(100), staged_person_suite("x", rules, previous_rows=50)).failed_expectations()
    assert (moved.observed(), moved.threshold()) == ("100 rows", "between 40 and 60 rows")
    # The first run has nothing to compare with.
    assert validate_frame(staged(100), staged_person_suite("x", rules, previous_rows=None)).success


def test_duplicate_keys_fail_only_while_unique_keys_is_on(tmp_path):
    frame = staged(10)
    frame.loc[3, "record_id"] = "s:0"
    on = load_quality_rules(DEMO_RULES).defaults
    off = load_quality_rules(rules_file(tmp_path, "sources:\n  x:\n    unique_keys: null")).for_source("x")
    assert ("expect_column_values_to_be_unique", "record_id") in failed(validate_frame(frame, staged_person_suite("x", on)))
    assert validate_frame(frame, staged_person_suite("x", off)).success


@pytest.mark.parametrize(
    ("sources", "key", "expected"),
    [
        ("sources:\n  health:\n    valid_id_share: {min_share: 1.5}", "sources.health.valid_id_share.min_share",
         "less than or equal to 1"),
        ("sources:\n  health:\n    valid_id_share: {min_share: 0.9, severity: fatal}",
         "sources.health.valid_id_share.severity", "'error' or 'warn'"),
        ("sources:\n  health:\n    freshnes: {max_age_days: 3}", "sources.health.freshnes",
         "unknown key (did you mean 'freshness'?)"),
        ("sources:\n  health:\n    required_fields: {birth_dat: {min_share: 0.5}}", "sources.health",
         "did you mean 'birth_date'"),
        ("sources:\n  health:\n    birth_years: {earliest: 2000, latest: 1990}", "sources.health.birth_years",
         "earliest 2000 is after latest 1990"),
    ],
)
def test_a_bad_rules_file_fails_at_load_naming_the_file_and_the_key(tmp_path, sources, key, expected):
    path = rules_file(tmp_path, sources)
    with pytest.raises(ConfigError) as error:
        load_quality_rules(path)
    message = str(error.value)
    assert message.startswith(f"{path}: invalid rules file") and f"{key}:" in message and expected in message


def test_rules_for_an_undeclared_source_fail_when_definitions_are_built(tmp_path):
    path = rules_file(tmp_path, "sources:\n  helth:\n    valid_id_share: {min_share: 0.95}")
    with pytest.raises(ConfigError, match=r"sources\.helth: no source of that name in sources\.yaml "
                                          r"\(did you mean 'health'\?\)"):
        build_definitions(Settings(tmp_path, DEMO_SOURCES, DEMO_POLICY, path))
    consent = rules_file(tmp_path, "sources:\n  consent_registry:\n    valid_id_share: {min_share: 0.9}")
    with pytest.raises(ConfigError, match=r"sources\.consent_registry\.valid_id_share: the consent registry takes "
                                          r"only the guard rules \(row_count, row_drop, quarantine_share\)"):
        build_definitions(Settings(tmp_path, DEMO_SOURCES, DEMO_POLICY, consent))
    guards = rules_file(tmp_path, "sources:\n  consent_registry:\n    row_drop: {max_share: 0.5}")
    assert build_definitions(Settings(tmp_path, DEMO_SOURCES, DEMO_POLICY, guards))


def test_a_missing_rules_file_names_itself(tmp_path):
    with pytest.raises(ConfigError, match=r"nowhere\.yaml: rules file not found; expected a YAML file like demo/rules\.yaml"):
        load_quality_rules(tmp_path / "nowhere.yaml")


def _check_results(settings: Settings, run_id: str) -> dict[tuple[str, str], tuple[bool, dg.AssetCheckSeverity]]:
    with dg.DagsterInstance.from_config(str(settings.home.dagster_dir)) as instance:
        events = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        evaluations = [e.dagster_event.event_specific_data for e in events]
    return {(ev.asset_key.to_user_string(), ev.check_name): (ev.passed, ev.severity) for ev in evaluations}


@pytest.mark.integration
def test_a_tightened_error_rule_blocks_publication(demo_copy, tmp_path):
    # The demo's civil affairs register carries a few IDs with a wrong check digit.
    settings = Settings(demo_copy.home, demo_copy.sources_file, demo_copy.policy_file,
                        rules_file(tmp_path, "sources:\n  civil_affairs:\n    valid_id_share: {min_share: 1.0}"))
    before = warehouse_path(settings).read_bytes()

    outcome = run_pipeline(settings)

    assert not outcome.success
    [reason] = [o for o in outcome.reports["civil_affairs"].validation.outcomes if not o.success]
    assert (reason.column, reason.mostly, reason.severity) == ("id_number_valid", 1.0, "error")
    assert all(outcome.reports[s].validation.success for s in ("health", "justice", "census"))
    assert warehouse_path(settings).read_bytes() == before
    checks = _check_results(settings, outcome.run_id)
    assert checks[("staged_civil_affairs", "expectations")] == (False, dg.AssetCheckSeverity.ERROR)


@pytest.mark.integration
def test_a_failing_warn_rule_is_reported_and_publication_goes_on(demo_copy, tmp_path):
    settings = Settings(demo_copy.home, demo_copy.sources_file, demo_copy.policy_file,
                        rules_file(tmp_path, "sources:\n  civil_affairs:\n    valid_id_share: {min_share: 1.0, severity: warn}"))

    outcome = run_pipeline(settings)

    assert outcome.success, outcome.failures
    validation = outcome.reports["civil_affairs"].validation
    assert validation.success is True
    assert [(o.column, o.severity) for o in validation.outcomes if not o.success] == [("id_number_valid", "warn")]
    checks = _check_results(settings, outcome.run_id)
    assert checks[("staged_civil_affairs", "expectation_warnings")] == (False, dg.AssetCheckSeverity.WARN)
    assert checks[("staged_civil_affairs", "expectations")][0] is True
    assert checks[("staged_health", "expectation_warnings")][0] is True
    with duckdb.connect(str(warehouse_path(settings)), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [outcome.run_id]).fetchall()[0][0] == 1


def test_run_with_a_bad_rules_file_stops_before_running_and_names_file_and_key(tmp_path, capsys):
    path = rules_file(tmp_path, "sources:\n  health:\n    row_count: {min: -1}")
    assert main(["run", "--home", str(tmp_path / "home"), "--rules", str(path)]) == 2
    error = capsys.readouterr().err
    assert str(path) in error and "sources.health.row_count.min" in error
    assert not (tmp_path / "home" / "warehouse").exists()
