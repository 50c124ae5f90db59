"""Expectation suites, their results, and the quality report."""

from quality.expectations import (
    ExpectationOutcome,
    ExpectationSpec,
    SuiteSpec,
    ValidationSummary,
    consent_suite,
    unified_population_suite,
    validate_frame,
)
from quality.metrics import QUALITY_HISTORY_DDL, write_quality_metrics
from quality.report import (
    collect_report_data,
    latest_published_run,
    load_staging_reports,
    render_blocked_report,
    render_quality_report,
)
from quality.rules import RuleSet, RulesFile, load_rules, staged_person_suite

__all__ = [
    "QUALITY_HISTORY_DDL",
    "ExpectationOutcome",
    "RuleSet",
    "RulesFile",
    "ExpectationSpec",
    "SuiteSpec",
    "ValidationSummary",
    "collect_report_data",
    "consent_suite",
    "latest_published_run",
    "load_rules",
    "load_staging_reports",
    "render_blocked_report",
    "render_quality_report",
    "staged_person_suite",
    "unified_population_suite",
    "validate_frame",
    "write_quality_metrics",
]
