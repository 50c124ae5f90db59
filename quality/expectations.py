"""Great Expectations 1.x suites for staged sources and published tables.

Suites are declared as data (:class:`ExpectationSpec` rows) and executed by :func:`validate_frame`
on an ephemeral, in-memory GX context with analytics and progress bars off, so validation never
touches the network (government intranets are air-gapped) and never writes a GX project to disk.

Example:
    >>> summary = validate_frame(staged, staged_person_suite("health", rules.for_source("health")))
    >>> summary.success, summary.failed_expectations(), summary.warnings()

The staged sources' suites are built from the rules file by :mod:`quality.rules`. What each kind
of expectation checks and why it matters, in Chinese for the supervisors' report, is
:data:`EXPECTATION_TEXTS` (the English ``why`` of each spec stays for the data team's logs).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pandas as pd

from core.vocabulary import CONSENT_STATUSES, FIELD_LABELS

__all__ = [
    "EXPECTATION_TEXTS",
    "ExpectationOutcome",
    "ExpectationSpec",
    "ExpectationText",
    "SuiteSpec",
    "ValidationSummary",
    "consent_suite",
    "describe_outcome",
    "expectation_key",
    "expectation_kind",
    "expectation_text",
    "unified_population_suite",
    "validate_frame",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExpectationText:
    """What an expectation checks and why its failure matters, in Chinese; ``{field}`` is the column's label.

    Attributes:
        label: what holds when it passes, as a heading (``{field}不为空``).
        why: what a failure means for the people using the data.
    """

    label: str
    why: str


EXPECTATION_TEXTS: Mapping[str, ExpectationText] = MappingProxyType(
    {
        "expect_column_values_to_not_be_null": ExpectationText(
            "{field}不为空", "{field}空缺过多：导出时该列多半被清空或改名，缺了它记录无法识别、匹配或追溯"
        ),
        "expect_table_row_count_to_be_between": ExpectationText(
            "行数在正常范围内", "行数为零、过多，或与上次发布相比变化过大：上游的同步或导出多半出了问题"
        ),
        "expect_column_values_to_be_unique": ExpectationText(
            "{field}不重复", "{field}重复：同一个编号指向了多条记录或多个人，无法区分，也无法追溯"
        ),
        "expect_column_values_to_be_in_set": ExpectationText(
            "{field}取值规范", "{field}出现了规定范围以外的取值，这些值无法使用"
        ),
        "expect_column_values_to_be_in_set:id_number_valid": ExpectationText(
            "公民身份号码校验位正确", "校验位不对的号码过多：多半是整份导出损坏，而不只是个别录入错误"
        ),
        "expect_column_values_to_match_regex": ExpectationText(
            "{field}格式规范", "{field}不是统一的存储格式：暂存时的统一处理出了问题，请数据专班检查"
        ),
        "expect_column_values_to_be_between": ExpectationText(
            "{field}在合理范围内", "{field}超出合理范围：多半是日期列错位或录错"
        ),
        "expect_column_max_to_be_between": ExpectationText(
            "{field}及时更新", "最新的{field}也已过期：该部门可能已停止更新登记"
        ),
        "expect_column_to_exist": ExpectationText("{field}列存在", "导出中缺少该列：多半是列被删除或改名"),
        "quarantine_share": ExpectationText(
            "隔离比例不过高", "违反隔离规则的行过多：整份导出多半已损坏（日期或身份证号列受损），照常发布会漏掉这些人"
        ),
        "row_drop": ExpectationText(
            "读取行数没有骤减", "读取的行数比上次发布骤减：多半是文件被截断或导出中断，除非登记确实减少了"
        ),
        "persons_drop": ExpectationText(
            "识别人数没有骤减", "识别出的人数比上次发布骤减：多半是某个部门的数据缺失，除非人口确实减少了"
        ),
    }
)
"""The Chinese text of each expectation kind a suite or guard uses, by the kind as outcomes name it
(``expect_column_values_to_not_be_null``); ``<kind>:<column>`` where one column makes a kind mean
something else (``id_number_valid`` in a set is the share of valid check digits)."""


def expectation_kind(kind: str) -> str:
    """The kind as outcomes and the warehouse name it: GX class names in snake case.

    Example:
        >>> expectation_kind("ExpectColumnValuesToNotBeNull")
        'expect_column_values_to_not_be_null'
    """
    return re.sub(r"(?<!^)(?=[A-Z])", "_", kind).lower()


def expectation_text(kind: str, column: str | None) -> ExpectationText:
    """The Chinese :class:`ExpectationText` of an expectation on ``column``, the column's label filled in.

    Raises:
        KeyError: a kind without a text in :data:`EXPECTATION_TEXTS` (a test keeps every kind used covered).
    """
    kind = expectation_kind(kind)
    text = EXPECTATION_TEXTS.get(f"{kind}:{column}") or EXPECTATION_TEXTS[kind]
    label = FIELD_LABELS.get(column or "", column or "")
    return ExpectationText(text.label.format(field=label), text.why.format(field=label))


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


_OUTCOME_PHRASES: Mapping[str, Mapping[str, str]] = MappingProxyType({
    "en": {
        "rows": "rows", "persons": "persons", "no_change": "n/a",
        "drop": "{now} {unit} ({change} vs {before} in the last publication)", "drop_least": "at least {least} {unit}",
        "quarantined": "{share:.1f}% quarantined ({count} of {total} rows)",
        "quarantined_most": "at most {most:.0f}% quarantined",
        "missing": "column missing", "present": "column present",
        "row_count": "{count} rows", "row_least": "at least {low} row{plural}", "row_between": "between {low} and {high} rows",
        "newest": "newest {value}", "newest_after": "newest on or after {low}",
        "unexpected": "{percent:.1f}% unexpected ({count} rows)",
        "most_unexpected": "at most {most:.0f}% unexpected", "none_unexpected": "none unexpected",
        "outside": " outside {low}–{high}",
    },
    "zh": {
        "rows": "行", "persons": "人", "no_change": "无法比较",
        "drop": "{now}{unit}（上次发布{before}{unit}，{change}）", "drop_least": "至少{least}{unit}",
        "quarantined": "隔离{share:.1f}%（{total}行中{count}行）",
        "quarantined_most": "隔离不超过{most:.0f}%",
        "missing": "缺少该列", "present": "应有该列",
        "row_count": "{count}行", "row_least": "至少{low}行", "row_between": "{low}至{high}行",
        "newest": "最新为{value}", "newest_after": "最新不早于{low}",
        "unexpected": "{percent:.1f}%不符合（{count}行）",
        "most_unexpected": "不符合的不超过{most:.0f}%", "none_unexpected": "不允许不符合",
        "outside": "（范围{low}至{high}）",
    },
})


def describe_outcome(outcome: Mapping[str, Any], lang: str = "en") -> tuple[str, str]:
    """``(observed, threshold)`` of an outcome (an :class:`ExpectationOutcome` or its dict form), in
    English (``lang="en"``, for logs and the CLI) or Chinese (``"zh"``, for the supervisors' report).

    Example:
        >>> describe_outcome({"kind": "expect_table_row_count_to_be_between", "observed_value": 0, "min_value": 1}, "zh")
        ('0行', '至少1行')
    """
    p = _OUTCOME_PHRASES[lang]
    kind = outcome.get("kind")
    if kind in ("row_drop", "persons_drop"):
        unit = p["rows"] if kind == "row_drop" else p["persons"]
        now, least, before = outcome.get("observed_value"), outcome.get("min_value"), outcome.get("max_value")
        change = f"{100 * (now - before) / before:+.1f}%".replace("-", "−") if before else p["no_change"]
        return p["drop"].format(now=now, unit=unit, change=change, before=before), p["drop_least"].format(least=least, unit=unit)
    if kind == "quarantine_share":
        share = outcome.get("unexpected_percent") or 0.0
        return (p["quarantined"].format(share=share, count=outcome.get("unexpected_count"), total=outcome.get("observed_value")),
                p["quarantined_most"].format(most=100 * (outcome.get("max_value") or 0)))
    if kind == "expect_column_to_exist":
        return p["missing"], p["present"]
    low, high = outcome.get("min_value"), outcome.get("max_value")
    if kind == "expect_table_row_count_to_be_between":
        low = 1 if low is None and high is None else low
        count = p["row_count"].format(count=outcome.get("observed_value"))
        if high is None:
            return count, p["row_least"].format(low=low, plural="s" if low != 1 else "")
        return count, p["row_between"].format(low=low or 0, high=high)
    if kind == "expect_column_max_to_be_between":
        return p["newest"].format(value=outcome.get("observed_value")), p["newest_after"].format(low=low)
    percent, mostly = outcome.get("unexpected_percent"), outcome.get("mostly")
    observed = (p["unexpected"].format(percent=percent, count=outcome.get("unexpected_count"))
                if percent is not None and percent == percent else str(outcome.get("observed_value")))
    threshold = p["most_unexpected"].format(most=100 * (1 - mostly)) if mostly is not None else p["none_unexpected"]
    if kind == "expect_column_values_to_be_between":
        threshold += p["outside"].format(low=low if low is not None else "…", high=high if high is not None else "…")
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
    with _pyspark_hidden():
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )
        from great_expectations.execution_engine import pandas_execution_engine

    # GX fingerprints every in-memory batch under 1 GB (md5 of ``hash_pandas_object``, twice per
    # validation) for a batch marker nothing here reads: at a million records of Python-object columns
    # that was a quarter of the validation's time. Frames of any size are left unhashed.
    pandas_execution_engine.HASH_THRESHOLD = 0

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx, gx.get_context(mode="ephemeral", project_config=config)


def _gx_ready(frame: pd.DataFrame, columns: set[str]) -> pd.DataFrame:
    """The ``columns`` of ``frame`` the expectations read (at least one, for a table's row count), as GX needs them."""
    wanted = [c for c in frame.columns if c in columns or (c == "birth_date" and "birth_year" in columns)]
    frame = frame[wanted or list(frame.columns[:1])]
    # GX's pandas metrics compare with Python objects; nullable extension dtypes (pd.NA) make
    # value-set and regex expectations raise on missing values, so hand it plain object columns —
    # only those read: every column of a million records as Python objects costs gigabytes.
    ready = pd.DataFrame({
        # (times stay as they are: NaT is null to GX, and a million Timestamp objects take seconds to build)
        name: column if isinstance(column.dtype, pd.DatetimeTZDtype) or column.dtype.kind == "M"
        else column.astype(object).where(column.notna(), None)
        for name, column in frame.items()}, index=frame.index)
    if "birth_date" in frame.columns and "birth_year" not in frame.columns:
        # GX's range expectation parses text bounds as dates and fails on partial dates ("1950",
        # "1950-03"); every precision states its year, so ranges are checked on that.
        years = pd.to_numeric(frame["birth_date"].astype("string").str.slice(0, 4), errors="coerce")
        ready["birth_year"] = years.astype(object).where(years.notna(), None)
    return ready


def expectation_key(spec: ExpectationSpec) -> str:
    """A text that names ``spec`` exactly (kind, arguments, why, severity): two specs with one key check the same."""
    return json.dumps([spec.kind, spec.kwargs, spec.why, spec.severity], sort_keys=True, ensure_ascii=False, default=str)


def validate_frame(
    frame: pd.DataFrame, suite: SuiteSpec, known: Mapping[str, ExpectationOutcome] | None = None
) -> ValidationSummary:
    """Run ``suite`` on ``frame`` with Great Expectations and summarise the result.

    ``known`` holds outcomes of expectations already evaluated on this very frame, by
    :func:`expectation_key` (a staging kept unchanged, :mod:`staging.reuse`): they are taken as they are
    and only the other expectations run; with every one known, Great Expectations does not run at all.
    """
    known = known or {}
    keys = [expectation_key(spec) for spec in suite.expectations]
    to_run = [index for index, key in enumerate(keys) if key not in known]
    evaluated = _run_expectations(frame, suite, to_run) if to_run else {}
    outcomes = [known[key] if index not in evaluated else evaluated[index] for index, key in enumerate(keys)]
    # Only ``error`` expectations decide the suite; GX's own verdict counts the ``warn`` ones too.
    success = all(o.success for o in outcomes if o.severity != "warn")
    summary = ValidationSummary(suite=suite.name, success=success, row_count=len(frame), outcomes=tuple(outcomes))
    log.info("suite %s: %s (%d rows)", suite.name, "passed" if summary.success else "FAILED", len(frame))
    return summary


def _run_expectations(frame: pd.DataFrame, suite: SuiteSpec, indices: list[int]) -> dict[int, ExpectationOutcome]:
    """The outcomes of ``suite``'s expectations at ``indices`` on ``frame``, by index, from one GX validation."""
    gx, context = _context()
    source = context.data_sources.add_pandas(name="silobreaker")
    asset = source.add_dataframe_asset(name=suite.name)
    ready = _gx_ready(frame, {suite.expectations[index].kwargs.get("column") for index in indices})
    batch = asset.add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": ready})
    gx_suite = gx.ExpectationSuite(name=suite.name)
    # GX does not promise to report results in the order expectations were added (it groups them),
    # so each expectation carries its position in ``meta`` and results are matched back by it.
    for index in indices:
        spec = suite.expectations[index]
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
    outcomes = {}
    for index in indices:
        spec, res = suite.expectations[index], by_index[index]
        detail = dict(res.result or {})
        outcomes[index] = ExpectationOutcome(
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
    return outcomes


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


@contextmanager
def _pyspark_hidden() -> Iterator[None]:
    """Great Expectations imported as if PySpark were not installed (the ``spark`` extra is, for linking).

    GX validates pandas frames here and never Spark ones, but imports whatever PySpark it finds, Spark
    Connect included, at start-up: seconds in every process, and Spark Connect takes a ``__main__``
    without spec or file (``python -c``, a pytest-xdist worker) for its own doctest run and exits the
    process with status 0 — the run would end as a silent success. GX records PySpark as absent and
    does not look again; linking on Spark imports it as usual afterwards.
    """
    hidden = [name for name in _SPARK_MODULES if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # an import of it raises ImportError
    try:
        yield
    finally:
        for name in hidden:
            del sys.modules[name]


#: What GX imports of PySpark: with PySpark loaded already, only Spark Connect is hidden.
_SPARK_MODULES = ("pyspark", "pyspark.sql.connect.dataframe", "pyspark.sql.connect.session")
