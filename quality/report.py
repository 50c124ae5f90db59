"""The supervisors' quality report: one self-contained HTML file per run (opens offline, no server).

In Chinese, with the English field and measure names beside: a scorecard (departments x quality
dimensions, change since the previous run, grade), trends over runs (plotly charts; plotly.js
is read from ``plotly.min.js`` beside the report, written once per data home, so nothing is fetched), conflicts between departments with the department likely wrong
and masked examples, the top fixes per department, quarantined rows fixed since the last run, the
linking summary and the Great Expectations results.

Rendering only: what the report shows arrives as :class:`ReportInputs`, which the warehouse's
reader (:meth:`publish.WarehouseReader.report_inputs`) fills from the published tables. Every
number on the scorecard and in the trends is a row of ``quality_metrics`` (see ``docs/quality.md``
for the SQL of each); examples and rule messages come from ``quarantine`` and ``field_conflicts``.

When a blocking check stops publication, :func:`render_blocked_report` writes the report anyway:
why the run was blocked (the failed expectations with observed value and threshold, and each
failed step's message), this attempt's staging counts, and the last published scorecard.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from core.home import DataHome
from core.vocabulary import FIELD_LABELS, MASKS, mask_long_numbers
from quality.expectations import describe_outcome
from quality.metrics import DIMENSIONS, grade
from quality.staging_report import StagingReport
from staging.dates import CHINA_TZ

__all__ = [
    "DIMENSION_LABELS",
    "ReportInputs",
    "collect_report_data",
    "mask_message",
    "mask_value",
    "render_blocked_report",
    "render_quality_report",
]

log = logging.getLogger(__name__)


DIMENSION_LABELS: dict[str, str] = {
    "completeness": "完整性",
    "validity": "有效性",
    "uniqueness": "唯一性",
    "consistency": "一致性",
    "timeliness": "及时性",
    "repeated_entry": "重复录入",
    "overall": "综合",
}
"""Chinese label of each dimension (the English name is shown beside it)."""

TOP_FIXES = 3
"""Quarantine rules shown per department, most rows first."""

EXAMPLES_PER_KIND = 3
"""People shown as masked examples per kind of conflict."""


@dataclass(frozen=True)
class ReportInputs:
    """What the report of one published run reads from the warehouse.

    Attributes:
        run_id: the published run shown.
        metrics: every run's ``quality_metrics`` rows.
        runs: ``run_id, published_at`` of every published run, oldest first.
        validation: this run's ``validation_results`` (suite, expectation, column_name, …).
        top_fixes: per source its :data:`TOP_FIXES` commonest quarantine rules
            (``source, rule, rows, column_name, example``).
        conflict_examples: up to :data:`EXAMPLES_PER_KIND` people per conflicting field, one row per
            source and value (``field, person_id, source, value, likely_wrong``).
        departments: source -> department label.
    """

    run_id: str
    metrics: pd.DataFrame
    runs: pd.DataFrame
    validation: pd.DataFrame
    top_fixes: pd.DataFrame
    conflict_examples: pd.DataFrame
    departments: Mapping[str, str] = field(default_factory=dict)


def mask_value(field: str, value: Any) -> str:
    """Mask an identifier for display as the canonical vocabulary's mask of that field does:
    ``张*``, ``330106********0012``, ``138****0001``, ``示范区西溪…``, ``1950-01-**``; other fields as they are."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    text = str(value)
    mask = MASKS.get(field)
    return mask.apply(text) if mask is not None else text


def mask_message(message: Any) -> str:
    """A quarantine message with long numbers (ID and phone numbers) masked: ``3301********17``."""
    if message is None or (isinstance(message, float) and message != message):
        return ""
    return mask_long_numbers(str(message))


def collect_report_data(inputs: ReportInputs) -> dict[str, Any]:
    """Everything the report template shows for ``inputs.run_id``."""
    metrics, runs, run_id = inputs.metrics, inputs.runs, inputs.run_id
    order = {r: i for i, r in enumerate(runs["run_id"])}
    previous = _previous_run(runs, run_id)
    current = metrics[metrics["run_id"] == run_id]
    before = metrics[metrics["run_id"] == previous] if previous else metrics.iloc[0:0]
    return {
        "scorecard": _scorecard(current, before),
        "district": _district(current),
        "conflicts": _conflicts(inputs.conflict_examples, current),
        "top_fixes": [
            {**row, "example": mask_message(row["example"])} for row in inputs.top_fixes.to_dict(orient="records")
        ],
        "fixed": _fixed(current),
        "validation": inputs.validation.to_dict(orient="records"),
        "charts": _charts(metrics, runs, order),
        "previous_run": previous,
        "run_count": len(runs),
    }


def render_quality_report(inputs: ReportInputs, home: DataHome) -> Path:
    """Write the report of the published run ``inputs.run_id`` (and a copy as the latest report).

    Args:
        inputs: what the warehouse holds for that run (:meth:`publish.WarehouseReader.report_inputs`).
        home: the data home whose reports folder is written into.
    """
    data = collect_report_data(inputs)
    return _write(home, inputs.run_id, blocked=None, departments=dict(inputs.departments),
                  shown_run=inputs.run_id, **data)


def render_blocked_report(
    home: DataHome,
    run_id: str,
    failures: Mapping[str, str],
    staging_reports: Mapping[str, StagingReport],
    last: ReportInputs | None,
) -> Path:
    """Write the report of a run whose publication was blocked, saying why.

    A run that did publish (a later step failed) gets its ordinary report instead.

    Args:
        home: the data home whose reports folder is written into.
        run_id: the blocked run.
        failures: failed step -> its error message.
        staging_reports: source -> this attempt's staging report (counts, rules, validation).
        last: the last published run's report inputs, shown below the reasons (``None`` before the
            first publication).
    """
    if last is not None and last.run_id == run_id:
        # The run did publish (a later step failed): its report is the ordinary one.
        return render_quality_report(last, home)
    reasons = [
        {"source": source, "department": report.department, **_reason(outcome.__dict__)}
        for source, report in sorted(staging_reports.items())
        for outcome in report.validation.failed_expectations()  # warnings do not block
    ]
    attempt = [
        {"source": s, "department": r.department, "extracted": r.extracted, "staged": r.staged,
         "quarantined": r.quarantined, "passed": r.validation.success,
         "rules": sorted(r.quarantine_rules.items(), key=lambda kv: -kv[1])[:TOP_FIXES]}
        for s, r in sorted(staging_reports.items())
    ]
    blocked = {"reasons": reasons, "failures": dict(failures), "attempt": attempt}
    departments = {**(dict(last.departments) if last else {}), **{s: r.department for s, r in staging_reports.items()}}
    data = collect_report_data(last) if last is not None else {}
    return _write(home, run_id, blocked=blocked, departments=departments,
                  shown_run=last.run_id if last else None, **data)


# -- building blocks ------------------------------------------------------------------------


def _write(home: DataHome, run_id: str, **context: Any) -> Path:
    env = Environment(loader=PackageLoader("quality", "templates"), autoescape=select_autoescape(["html", "j2"]))
    html = env.get_template("report.html.j2").render(
        run_id=run_id,
        generated_at=datetime.now(CHINA_TZ).strftime("%Y-%m-%d %H:%M 北京时间"),
        dimensions=DIMENSIONS,
        labels=DIMENSION_LABELS,
        field_labels=FIELD_LABELS,
        **context,
    )
    path = home.report_file(run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_plotly_once(home)
    path.write_text(html, encoding="utf-8")
    shutil.copyfile(path, home.latest_report)
    log.info("quality report written to %s", path)
    return path


def _write_plotly_once(home: DataHome) -> None:
    """plotly.js (4.8 MB) once per data home, beside the reports, instead of inside each of them."""
    import plotly
    from plotly.offline import get_plotlyjs

    script, stamp = home.report_script_file, home.report_script_file.with_suffix(".version")
    if script.exists() and stamp.exists() and stamp.read_text(encoding="ascii") == plotly.__version__:
        return
    script.write_text(get_plotlyjs(), encoding="utf-8")
    stamp.write_text(plotly.__version__, encoding="ascii")


def _previous_run(runs: pd.DataFrame, run_id: str) -> str | None:
    ids = list(runs["run_id"])
    if run_id not in ids or ids.index(run_id) == 0:
        return None
    return ids[ids.index(run_id) - 1]


def _value(frame: pd.DataFrame, source: str, dimension: str, measure: str) -> float | None:
    hit = frame[(frame["source"] == source) & (frame["dimension"] == dimension) & (frame["measure"] == measure)]
    if hit.empty or pd.isna(hit["value"].iloc[0]):
        return None
    return float(hit["value"].iloc[0])


def _scorecard(current: pd.DataFrame, before: pd.DataFrame) -> list[dict[str, Any]]:
    sources = sorted(set(current.loc[current["dimension"] == "completeness", "source"]))
    rows = []
    for source in sources:
        cells = {}
        for dimension in (*DIMENSIONS, "overall"):
            now, then = _value(current, source, dimension, "score"), _value(before, source, dimension, "score")
            cells[dimension] = {"value": now, "change": None if now is None or then is None else now - then,
                                "grade": grade(now)}
        rows.append({
            "source": source,
            "cells": cells,
            "shared": _value(current, source, "repeated_entry", "shared_persons"),
            "disagree": _value(current, source, "repeated_entry", "copies_disagree"),
            "quarantined": _value(current, source, "quarantine", "quarantined"),
            "grade": grade(cells["overall"]["value"]),
        })
    return rows


def _district(current: pd.DataFrame) -> dict[str, Any]:
    def number(dimension: str, measure: str, part: str = "value") -> Any:
        hit = current[(current["source"] == "*") & (current["dimension"] == dimension) & (current["measure"] == measure)]
        return None if hit.empty or pd.isna(hit[part].iloc[0]) else hit[part].iloc[0]

    return {
        "persons": number("linking", "persons"),
        "records": number("linking", "records"),
        "auto_merged_pairs": number("linking", "auto_merged_pairs"),
        "review_queue": number("linking", "review_queue"),
        "vetoed_pairs": number("linking", "vetoed_pairs"),
        "multi_department": number("repeated_entry", "shared_persons", "numerator"),
        "shared_share": number("repeated_entry", "shared_persons"),
        "disagree_share": number("repeated_entry", "copies_disagree"),
        "conflict_persons": number("consistency", "conflict_persons", "numerator") or 0,
    }


def _conflicts(examples: pd.DataFrame, current: pd.DataFrame) -> list[dict[str, Any]]:
    district = current[(current["source"] == "*") & current["measure"].str.startswith("conflict_persons:")]
    wrong = current[(current["dimension"] == "consistency") & current["measure"].str.startswith("likely_wrong:")]
    kinds = []
    for row in district.sort_values("numerator", ascending=False).itertuples():
        field = row.measure.split(":", 1)[1]
        by_source = wrong[wrong["measure"] == f"likely_wrong:{field}"].sort_values("numerator", ascending=False)
        people = []
        for person_id, group in examples[examples["field"] == field].groupby("person_id", sort=True):
            people.append({
                "person": f"{person_id[:8]}…",
                "held": [{"source": r.source, "value": mask_value(field, r.value), "likely_wrong": bool(r.likely_wrong)}
                           for r in group.drop_duplicates(["source", "value"]).itertuples()],
            })
        kinds.append({
            "field": field,
            "persons": int(row.numerator),
            "share": row.value / row.denominator if row.denominator else None,
            "likely_wrong": [{"source": r.source, "records": int(r.numerator), "of": int(r.denominator)}
                             for r in by_source.itertuples() if r.numerator],
            "examples": people,
        })
    return kinds


def _fixed(current: pd.DataFrame) -> list[dict[str, Any]]:
    q = current[current["dimension"] == "quarantine"]
    out = []
    for source in sorted(set(q["source"])):
        rows = q[q["source"] == source].set_index("measure")
        fixed = rows["numerator"].get("fixed")
        out.append({
            "source": source,
            "quarantined": int(rows["numerator"].get("quarantined", 0) or 0),
            "fixed": None if fixed is None or pd.isna(fixed) else int(fixed),
            "previous": None if "fixed" not in rows.index else int(rows.loc["fixed", "denominator"]),
            "new": None if "new" not in rows.index else int(rows.loc["new", "numerator"]),
        })
    return out


def _reason(outcome: Mapping[str, Any]) -> dict[str, Any]:
    observed, threshold = describe_outcome(outcome)
    return {"expectation": outcome.get("kind"), "column": outcome.get("column"), "observed": observed,
            "threshold": threshold, "why": outcome.get("why")}


def _charts(metrics: pd.DataFrame, runs: pd.DataFrame, order: Mapping[str, int]) -> list[dict[str, str]]:
    """Plotly figures as HTML fragments; the first loads plotly.js from ``plotly.min.js`` beside the report
    (written once per data home), so the report works offline without carrying 4.8 MB each run."""
    if metrics.empty or runs.empty:
        return []
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    labels = {r.run_id: f"{i + 1}: {pd.Timestamp(r.published_at).strftime('%m-%d %H:%M')}" for i, r in enumerate(runs.itertuples())}
    scores = metrics[(metrics["measure"] == "score") & metrics["run_id"].isin(order)].copy()
    scores["order"] = scores["run_id"].map(order)
    scores = scores.sort_values(["order", "source"])
    sources = sorted(set(scores.loc[scores["source"] != "*", "source"]))
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
    colour = {s: palette[i % len(palette)] for i, s in enumerate(sources)}

    dims = (*DIMENSIONS, "overall")
    grid = make_subplots(rows=2, cols=3, subplot_titles=[f"{DIMENSION_LABELS[d]} {d}" for d in dims])
    for i, dimension in enumerate(dims):
        for source in sources:
            part = scores[(scores["dimension"] == dimension) & (scores["source"] == source)]
            grid.add_trace(
                go.Scatter(x=[labels[r] for r in part["run_id"]], y=part["value"], mode="lines+markers",
                           name=source, legendgroup=source, showlegend=i == 0, line={"color": colour[source]}),
                row=i // 3 + 1, col=i % 3 + 1,
            )
    grid.update_yaxes(range=[0, 1.02], tickformat=".0%")
    grid.update_layout(height=560, margin={"t": 40, "l": 40, "r": 20, "b": 40}, title_text="")

    quarantine = metrics[(metrics["dimension"] == "quarantine") & (metrics["measure"] == "quarantined")
                         & metrics["run_id"].isin(order)].copy()
    quarantine["order"] = quarantine["run_id"].map(order)
    quarantine = quarantine.sort_values("order")
    bars = go.Figure()
    for source in sorted(set(quarantine["source"])):
        part = quarantine[quarantine["source"] == source]
        bars.add_trace(go.Bar(x=[labels[r] for r in part["run_id"]], y=part["numerator"], name=source,
                              marker_color=colour.get(source, "#7f7f7f")))
    bars.update_layout(barmode="stack", height=320, margin={"t": 30, "l": 40, "r": 20, "b": 40},
                       yaxis_title="隔离行数 quarantined rows")

    config = {"displaylogo": False, "responsive": True}
    return [
        {"id": "trend-scores", "title": "各维度得分趋势 Dimension scores over runs",
         "html": grid.to_html(full_html=False, include_plotlyjs="directory", config=config, div_id="trend-scores")},
        {"id": "trend-quarantine", "title": "隔离行数趋势 Quarantined rows over runs",
         "html": bars.to_html(full_html=False, include_plotlyjs=False, config=config, div_id="trend-quarantine")},
    ]
