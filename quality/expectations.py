"""Great Expectations 1.x suites for staged sources and published tables.

Suites are declared as data (:class:`ExpectationSpec` rows) and executed by :func:`validate_frame`
on an ephemeral, in-memory GX context with analytics and progress bars off, so validation never
touches the network (government intranets are air-gapped) and never writes a GX project to disk.

Example:
    >>> summary = validate_frame(staged, staged_person_suite("health", rules.for_source("health")))
    >>> summary.success, summary.failed_expectations(), summary.warnings()

The staged sources' suites are built from the rules file by :mod:`quality.rules`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from core.vocabulary import CONSENT_STATUSES

__all__ = [
    "ExpectationOutcome",
    "ExpectationSpec",
    "SuiteSpec",
    "ValidationSummary",
    "consent_suite",
    "describe_outcome",
    "unified_population_suite",
    "validate_frame",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExpectationSpec:
    """One expectation, declared as data.

    Args:
        kind: the GX expectation class name, e.g. ``"ExpectColumnValuesToNotBeNull"``.
        kwargs: its arguments, e.g. ``{"column": "record_id"}``.
        why: what a failure means for the people using the data (shown in reports).
        severity: ``error`` (its failure fails the suite and blocks) or ``warn`` (reported only).
    """

    kind: str
    kwargs: dict[str, Any]
    why: str
    severity: str = "error"


@dataclass(frozen=True)
class SuiteSpec:
    """A named list of expectations for one table."""

    name: str
    expectations: tuple[ExpectationSpec, ...]


@dataclass(frozen=True)
class ExpectationOutcome:
    """The result of one expectation, reduced to what a person reads."""

    kind: str
    column: str | None
    success: bool
    why: str
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    observed_value: Any = None
    mostly: float | None = None
    severity: str = "error"
    min_value: Any = None
    max_value: Any = None

    def observed(self) -> str:
        """What the data showed, e.g. ``30.4% unexpected (85 rows)`` or ``column missing``."""
        return describe_outcome(self.__dict__)[0]

    def threshold(self) -> str:
        """What the expectation allows, e.g. ``at most 10% unexpected``."""
        return describe_outcome(self.__dict__)[1]


def describe_outcome(outcome: Mapping[str, Any]) -> tuple[str, str]:
    """``(observed, threshold)`` of an outcome (an :class:`ExpectationOutcome` or its dict form)."""
    kind = outcome.get("kind")
    if kind in ("row_drop", "persons_drop"):
        unit = "rows" if kind == "row_drop" else "persons"
        now, least, before = outcome.get("observed_value"), outcome.get("min_value"), outcome.get("max_value")
        change = f"{100 * (now - before) / before:+.1f}%".replace("-", "−") if before else "n/a"
        return f"{now} {unit} ({change} vs {before} in the last publication)", f"at least {least} {unit}"
    if kind == "quarantine_share":
        share = outcome.get("unexpected_percent") or 0.0
        return (f"{share:.1f}% quarantined ({outcome.get('unexpected_count')} of {outcome.get('observed_value')} rows)",
                f"at most {100 * (outcome.get('max_value') or 0):.0f}% quarantined")
    if kind == "expect_column_to_exist":
        return "column missing", "column present"
    low, high = outcome.get("min_value"), outcome.get("max_value")
    if kind == "expect_table_row_count_to_be_between":
        low = 1 if low is None and high is None else low
        if high is None:
            return f"{outcome.get('observed_value')} rows", f"at least {low} row{'s' if low != 1 else ''}"
        return f"{outcome.get('observed_value')} rows", f"between {low or 0} and {high} rows"
    if kind == "expect_column_max_to_be_between":
        return f"newest {outcome.get('observed_value')}", f"newest on or after {low}"
    percent, mostly = outcome.get("unexpected_percent"), outcome.get("mostly")
    observed = (f"{percent:.1f}% unexpected ({outcome.get('unexpected_count')} rows)"
                if percent is not None and percent == percent else str(outcome.get("observed_value")))
    threshold = f"at most {100 * (1 - mostly):.0f}% unexpected" if mostly is not None else "none unexpected"
    if kind == "expect_column_values_to_be_between":
        threshold += f" outside {low if low is not None else '…'}–{high if high is not None else '…'}"
    return observed, threshold


@dataclass(frozen=True)
class ValidationSummary:
    """The outcome of one suite on one frame."""

    suite: str
    success: bool
    row_count: int
    outcomes: tuple[ExpectationOutcome, ...] = field(default_factory=tuple)

    def failed_expectations(self) -> list[ExpectationOutcome]:
        """The ``error`` expectations that did not hold: the reasons the suite failed."""
        return [o for o in self.outcomes if not o.success and o.severity != "warn"]

    def warnings(self) -> list[ExpectationOutcome]:
        """The ``warn`` expectations that did not hold: reported, not blocking."""
        return [o for o in self.outcomes if not o.success and o.severity == "warn"]

    def with_outcomes(self, extra: tuple[ExpectationOutcome, ...]) -> ValidationSummary:
        """This summary with ``extra`` outcomes (e.g. the guards) added; ``error`` ones decide success too."""
        outcomes = (*self.outcomes, *extra)
        success = all(o.success for o in outcomes if o.severity != "warn")
        return ValidationSummary(self.suite, success, self.row_count, outcomes)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able form (stored by the IO manager, read by the report)."""
        return {
            "suite": self.suite,
            "success": self.success,
            "row_count": self.row_count,
            "outcomes": [o.__dict__ for o in self.outcomes],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationSummary:
        """Inverse of :meth:`as_dict`."""
        return cls(
            suite=data["suite"],
            success=data["success"],
            row_count=data["row_count"],
            outcomes=tuple(ExpectationOutcome(**o) for o in data["outcomes"]),
        )


def _spec(kind: str, why: str, **kwargs: Any) -> ExpectationSpec:
    return ExpectationSpec(kind=kind, kwargs=kwargs, why=why)


def consent_suite(source: str) -> SuiteSpec:
    """Expectations for the staged consent registry."""
    return SuiteSpec(
        name=f"staged_{source}",
        expectations=(
            _spec("ExpectColumnValuesToBeUnique", "consent decisions are identified by their key", column="record_id"),
            _spec("ExpectColumnValuesToNotBeNull", "a decision must name its subject", column="id_number"),
            _spec(
                "ExpectColumnValuesToBeInSet",
                "only the canonical consent statuses are meaningful",
                column="status",
                value_set=list(CONSENT_STATUSES),
            ),
            _spec("ExpectColumnValuesToNotBeNull", "a decision without a time cannot be ordered", column="decided_at"),
        ),
    )


def unified_population_suite() -> SuiteSpec:
    """Expectations the unified population table must meet before it replaces the published one."""
    return SuiteSpec(
        name="unified_population",
        expectations=(
            _spec("ExpectTableRowCountToBeBetween", "publishing no one would wipe every product", min_value=1),
            _spec("ExpectColumnValuesToNotBeNull", "every person needs a stable id", column="person_id"),
            _spec("ExpectColumnValuesToBeUnique", "one row per person", column="person_id"),
            _spec("ExpectColumnValuesToNotBeNull", "every person has a name from some source", column="name"),
            _spec(
                "ExpectColumnValuesToBeUnique",
                "two people must never share a valid resident ID number",
                column="id_number",
            ),
            _spec("ExpectColumnValuesToBeBetween", "each person stands on at least one record", column="record_count", min_value=1),
        ),
    )


def _context():
    # Analytics off before GX is imported: its usage-statistics client reads this at start-up.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx, gx.get_context(mode="ephemeral", project_config=config)


def _gx_ready(frame: pd.DataFrame) -> pd.DataFrame:
    # GX's pandas metrics compare with Python objects; nullable extension dtypes (pd.NA) make
    # value-set and regex expectations raise on missing values, so hand it plain object columns.
    ready = frame.astype(object).where(frame.notna(), None)
    if "birth_date" in frame.columns and "birth_year" not in frame.columns:
        # GX's range expectation parses text bounds as dates and fails on partial dates ("1950",
        # "1950-03"); every precision states its year, so ranges are checked on that.
        years = pd.to_numeric(frame["birth_date"].astype("string").str.slice(0, 4), errors="coerce")
        ready["birth_year"] = years.astype(object).where(years.notna(), None)
    return ready


def validate_frame(frame: pd.DataFrame, suite: SuiteSpec) -> ValidationSummary:
    """Run ``suite`` on ``frame`` with Great Expectations and summarise the result."""
    gx, context = _context()
    source = context.data_sources.add_pandas(name="silobreaker")
    asset = source.add_dataframe_asset(name=suite.name)
    ready = _gx_ready(frame)
    batch = asset.add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": ready})
    gx_suite = gx.ExpectationSuite(name=suite.name)
    # GX does not promise to report results in the order expectations were added (it groups them),
    # so each expectation carries its position in ``meta`` and results are matched back by it.
    for index, spec in enumerate(suite.expectations):
        column = spec.kwargs.get("column")
        meta = {"silobreaker_index": index}
        if column is not None and column not in ready.columns:
            gx_suite.add_expectation(gx.expectations.ExpectColumnToExist(column=column, meta=meta))
        else:
            gx_suite.add_expectation(getattr(gx.expectations, spec.kind)(**spec.kwargs, meta=meta))
    # BASIC holds every field read below (counts, percentages, observed values); GX's default (SUMMARY)
    # also counts the unexpected values, which nothing here reads: about a third of the time.
    result = batch.validate(gx_suite, result_format="BASIC")
    by_index = {int(res.expectation_config.meta["silobreaker_index"]): res for res in result.results}
    outcomes = []
    for index, spec in enumerate(suite.expectations):
        res = by_index[index]
        detail = dict(res.result or {})
        outcomes.append(
            ExpectationOutcome(
                kind=res.expectation_config.type,
                column=spec.kwargs.get("column"),
                success=bool(res.success),
                why=spec.why,
                unexpected_count=detail.get("unexpected_count"),
                unexpected_percent=detail.get("unexpected_percent"),
                observed_value=_jsonable(detail.get("observed_value")),
                mostly=spec.kwargs.get("mostly"),
                severity=spec.severity,
                min_value=_jsonable(spec.kwargs.get("min_value")),
                max_value=_jsonable(spec.kwargs.get("max_value")),
            )
        )
    # Only ``error`` expectations decide the suite; GX's own verdict counts the ``warn`` ones too.
    success = all(o.success for o in outcomes if o.severity != "warn")
    summary = ValidationSummary(suite=suite.name, success=success, row_count=len(frame), outcomes=tuple(outcomes))
    log.info("suite %s: %s (%d rows)", suite.name, "passed" if summary.success else "FAILED", len(frame))
    return summary


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
