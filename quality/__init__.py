"""Expectation suites, their results, and the quality report."""

from quality.expectations import (
    ExpectationOutcome,
    ExpectationSpec,
    SuiteSpec,
    ValidationSummary,
    consent_suite,
    staged_person_suite,
    unified_population_suite,
    validate_frame,
)
from quality.report import collect_report_data, render_quality_report

__all__ = [
    "ExpectationOutcome",
    "ExpectationSpec",
    "SuiteSpec",
    "ValidationSummary",
    "collect_report_data",
    "consent_suite",
    "render_quality_report",
    "staged_person_suite",
    "unified_population_suite",
    "validate_frame",
]
