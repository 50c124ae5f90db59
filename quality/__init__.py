"""Quality: expectation suites and quality rules, the typed staging report, the quality measures and
the supervisors' report (rendered from what the warehouse's reader hands it)."""

from quality.expectations import (
    ExpectationOutcome,
    ExpectationSpec,
    SuiteSpec,
    ValidationSummary,
    consent_suite,
    expectation_key,
    unified_population_suite,
    validate_frame,
)
from quality.metrics import QUALITY_HISTORY_DDL, write_quality_metrics
from quality.report import (
    ReportInputs,
    collect_report_data,
    render_blocked_report,
    render_quality_report,
)
from quality.rules import QualityRules, QualityRulesFile, load_quality_rules, staged_person_suite
from quality.staging_report import StagingReport, build_staging_report

__all__ = [
    "QUALITY_HISTORY_DDL",
    "ExpectationOutcome",
    "ExpectationSpec",
    "QualityRules",
    "QualityRulesFile",
    "ReportInputs",
    "StagingReport",
    "SuiteSpec",
    "ValidationSummary",
    "build_staging_report",
    "collect_report_data",
    "consent_suite",
    "expectation_key",
    "load_quality_rules",
    "render_blocked_report",
    "render_quality_report",
    "staged_person_suite",
    "unified_population_suite",
    "validate_frame",
    "write_quality_metrics",
]
