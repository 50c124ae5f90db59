"""The supervisors' quality report: one self-contained HTML file per run (opens offline, no server).

In Chinese (``lang="en"`` renders the same template in English for the platform team; the words are
:mod:`quality.texts`): a scorecard (departments x quality dimensions, change since the previous run,
grade, a note where a measure is low by design), trends over runs (plotly charts; plotly.js is read
from ``plotly.min.js`` beside the report, written once per data home, so nothing is fetched),
conflicts between departments with the department likely wrong and masked examples, the top fixes
per department, quarantined rows fixed since the last run, the linking summary and the Great
Expectations results.

Rendering only: what the report shows arrives as :class:`ReportInputs`, which the warehouse's
reader (:meth:`publish.WarehouseReader.report_inputs`) fills from the published tables. Every
number on the scorecard and in the trends is a row of ``quality_metrics`` (see ``docs/quality.md``
for the SQL of each); examples come from ``quarantine`` and ``field_conflicts``.

When a blocking check stops publication, :func:`render_blocked_report` writes the report anyway:
why the run was blocked (the failed expectations with observed value and threshold, and each
failed step's message), this attempt's staging counts, and the last published scorecard.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from core.home import DataHome
from core.vocabulary import MASKS, QUARANTINE_RULE_TEXTS, SOFT_PROBLEM_TEXTS, mask_long_numbers, soft_problem_text
from quality.expectations import describe_outcome, expectation_text
from quality.metrics import DIMENSIONS, grade
from quality.staging_report import StagingReport
from quality.texts import ReportTexts
from staging.dates import CHINA_TZ

__all__ = [
    "ReportInputs",
    "collect_report_data",
    "fix_first",
    "mask_message",
    "mask_value",
    "render_blocked_report",
    "render_quality_report",
]

log = logging.getLogger(__name__)

TOP_FIXES = 3
"""Quarantine rules shown per department in a blocked run's attempt, most rows first."""

FIX_FIRST_SHOWN = 10
"""Entries of the fix-first list shown before the rest is folded away."""

_KIND_ORDER = ("conflict", "duplicate", "soft", "quarantine", "expectation")
"""Order among problems that affect as many: linked people's data before rows held back."""

EXAMPLES_PER_KIND = 3
"""People shown as masked examples per kind of conflict."""

_ACCEPTED = re.compile(r"accepted by (\S+) \(--accept-drop\)")


@dataclass(frozen=True)
class ReportInputs:
    """What the report of one published run reads from the warehouse.

    Attributes:
        run_id: the published run shown.
        metrics: every run's ``quality_metrics`` rows.
        runs: ``run_id, published_at`` of every published run, oldest first.
        validation: this run's ``validation_results`` (suite, expectation, column_name, …).
        problems: every problem of the run, one row per kind, source and code (``kind, source, code,
            field, persons, rows, value, message``): quarantine rules, fields a department likely has
            wrong, soft problems, persons entered twice in a register, failed expectations; ranked
            into the fix-first list by :func:`fix_first`.
        conflict_examples: up to :data:`EXAMPLES_PER_KIND` people per conflicting field, one row per
            source and value (``field, person_id, source, value, likely_wrong``).
        departments: source -> department label.
        grids: per grid (``grid, listed, withheld, open, acknowledged, closed, rules``): its worker's list
            and its risk warnings (``risk_warnings``), most open warnings first.
    """

    run_id: str
    metrics: pd.DataFrame
    runs: pd.DataFrame
    validation: pd.DataFrame
    problems: pd.DataFrame
    conflict_examples: pd.DataFrame
    departments: Mapping[str, str] = field(default_factory=dict)
    grids: pd.DataFrame | None = None


def mask_value(field: str, value: Any) -> str:
    """Mask an identifier for display as the canonical vocabulary's mask of that field does:
    ``张*``, ``330106********0012``, ``138****0001``, ``示范区西溪…``, ``1950-01-**``; other fields as they are."""
    if _missing(value):
        return ""
    text = str(value)
    mask = MASKS.get(field)
    return mask.apply(text) if mask is not None else text


def mask_message(message: Any) -> str:
    """A quarantine message with long numbers (ID and phone numbers) masked: ``3301********17``."""
    if _missing(message):
        return ""
    return mask_long_numbers(str(message))


def collect_report_data(inputs: ReportInputs, lang: str = "zh") -> dict[str, Any]:
    """Everything the report template shows for ``inputs.run_id``, its words in ``lang``."""
    t = ReportTexts(lang)
    metrics, runs, run_id = inputs.metrics, inputs.runs, inputs.run_id
    departments = dict(inputs.departments)
    order = {r: i for i, r in enumerate(runs["run_id"])}
    previous = _previous_run(runs, run_id)
    current = metrics[metrics["run_id"] == run_id]
    before = metrics[metrics["run_id"] == previous] if previous else metrics.iloc[0:0]
    return {
        "scorecard": _scorecard(current, before, t),
        "district": _district(current),
        "conflicts": _conflicts(inputs.conflict_examples, current, t, departments),
        "fix_first": fix_first(inputs.problems, lang, departments),
        "fixed": _fixed(current),
        "validation": _validation(inputs.validation, t, departments),
        "charts": _charts(metrics, runs, order, t, departments),
        "previous_run": previous,
        "run_count": len(runs),
        "grids": _grids(inputs.grids),
    }


def render_quality_report(inputs: ReportInputs, home: DataHome, lang: str = "zh") -> Path:
    """Write the report of the published run ``inputs.run_id`` (and a copy as the latest report).

    Args:
        inputs: what the warehouse holds for that run (:meth:`publish.WarehouseReader.report_inputs`).
        home: the data home whose reports folder is written into.
        lang: ``zh`` (the default: supervisors read Chinese) or ``en``.
    """
    data = collect_report_data(inputs, lang)
    return _write(home, inputs.run_id, lang, blocked=None, departments=dict(inputs.departments),
                  shown_run=inputs.run_id, **data)


def render_blocked_report(
    home: DataHome,
    run_id: str,
    failures: Mapping[str, str],
    staging_reports: Mapping[str, StagingReport],
    last: ReportInputs | None,
    lang: str = "zh",
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
        lang: ``zh`` (the default) or ``en``.
    """
    if last is not None and last.run_id == run_id:
        # The run did publish (a later step failed): its report is the ordinary one.
        return render_quality_report(last, home, lang)
    t = ReportTexts(lang)
    departments = {**(dict(last.departments) if last else {}), **{s: r.department for s, r in staging_reports.items()}}
    reasons = [
        {"source": source, "department": t.department(source, departments), **_reason(outcome.__dict__, t)}
        for source, report in sorted(staging_reports.items())
        for outcome in report.validation.failed_expectations()  # warnings do not block
    ]
    attempt = [
        {"source": s, "department": t.department(s, departments), "extracted": r.extracted, "staged": r.staged,
         "quarantined": r.quarantined, "passed": r.validation.success,
         "rules": [(_rule_problem(rule, t), n) for rule, n in sorted(r.quarantine_rules.items(), key=lambda kv: -kv[1])[:TOP_FIXES]],
         "soft": [(_soft_problem(problem, t), n) for problem, n in sorted(r.soft_problems.items(), key=lambda kv: -kv[1])]}
        for s, r in sorted(staging_reports.items())
    ]
    steps = [{"step": step, "label": _step_label(step, t, departments), "message": message}
             for step, message in failures.items()]
    blocked = {"reasons": reasons, "failures": steps, "attempt": attempt}
    data = collect_report_data(last, lang) if last is not None else {}
    return _write(home, run_id, lang, blocked=blocked, departments=departments,
                  shown_run=last.run_id if last else None, **data)


# -- building blocks ------------------------------------------------------------------------


def _write(home: DataHome, run_id: str, lang: str, **context: Any) -> Path:
    t = ReportTexts(lang)
    env = Environment(loader=PackageLoader("quality", "templates"), autoescape=select_autoescape(["html", "j2"]))
    html = env.get_template("report.html.j2").render(
        run_id=run_id,
        t=t,
        generated_at=datetime.now(CHINA_TZ).strftime("%Y-%m-%d %H:%M"),
        dimensions=DIMENSIONS,
        fix_first_shown=FIX_FIRST_SHOWN,
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


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def _count(value: Any) -> int | None:
    """A count as an integer (pandas hands nullable counts over as floats: ``7260.0``, ``nan``)."""
    return None if _missing(value) else int(value)


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


def _by_design_rows(metrics: pd.DataFrame) -> pd.Series:
    """The measure rows saying a source has many rows per person by design (``one_row_per:visit``): its uniqueness
    is not graded."""
    return (metrics["dimension"] == "uniqueness") & metrics["measure"].str.startswith("one_row_per:")


def _by_design(current: pd.DataFrame, source: str) -> str | None:
    """What one row of ``source`` stands for when it has many rows per person by design (``visit``), else None."""
    hit = current[(current["source"] == source) & _by_design_rows(current)]
    return None if hit.empty else hit["measure"].iloc[0].split(":", 1)[1]


def _scorecard(current: pd.DataFrame, before: pd.DataFrame, t: ReportTexts) -> list[dict[str, Any]]:
    sources = sorted(set(current.loc[current["dimension"] == "completeness", "source"]))
    rows = []
    for source in sources:
        cells = {}
        for dimension in (*DIMENSIONS, "overall"):
            now, then = _value(current, source, dimension, "score"), _value(before, source, dimension, "score")
            cells[dimension] = {"value": now, "change": None if now is None or then is None else now - then,
                                "grade": grade(now), "note": None}
        grain = _by_design(current, source)
        if grain is not None:
            cells["uniqueness"]["note"] = t("scorecard.by_design", unit=t(f"grain.{grain}"))
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

    def count(dimension: str, measure: str) -> int | None:
        return _count(number(dimension, measure, "numerator"))

    return {
        "persons": count("linking", "persons"),
        "records": count("linking", "records"),
        "auto_merged_pairs": count("linking", "auto_merged_pairs"),
        "review_queue": count("linking", "review_queue"),
        "vetoed_pairs": count("linking", "vetoed_pairs"),
        "multi_department": count("repeated_entry", "shared_persons"),
        "shared_share": number("repeated_entry", "shared_persons"),
        "disagree_share": number("repeated_entry", "copies_disagree"),
        "conflict_persons": count("consistency", "conflict_persons") or 0,
    }


def _conflicts(examples: pd.DataFrame, current: pd.DataFrame, t: ReportTexts,
               departments: Mapping[str, str]) -> list[dict[str, Any]]:
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
                "held": [{"source": r.source, "department": t.department(r.source, departments),
                          "value": t.value(field, mask_value(field, r.value)), "likely_wrong": bool(r.likely_wrong)}
                         for r in group.drop_duplicates(["source", "value"]).itertuples()],
            })
        kinds.append({
            "field": field,
            "label": t.field(field),
            "persons": int(row.numerator),
            "share": row.value / row.denominator if row.denominator else None,
            "likely_wrong": [{"source": r.source, "department": t.department(r.source, departments),
                              "records": int(r.numerator), "of": int(r.denominator)}
                             for r in by_source.itertuples() if r.numerator],
            "examples": people,
        })
    return kinds


GRIDS_SHOWN = 30
"""Grids listed in the report's grid table (those with the most open warnings); the totals cover all."""


def _grids(grids: pd.DataFrame | None) -> dict[str, Any] | None:
    """The grid table: totals and the grids with the most open warnings (None without grid data)."""
    if grids is None or grids.empty:
        return None
    counts = [k for k in ("listed", "withheld", "open", "acknowledged", "closed", "departed", "not_in_census",
                          "census_only") if k in grids.columns]
    rows = [{"grid": r["grid"], "rules": list(r["rules"]), **{k: int(r[k]) for k in counts}}
            for r in grids.head(GRIDS_SHOWN).to_dict(orient="records")]
    totals = {k: int(grids[k].sum()) for k in counts}
    return {"rows": rows, "totals": totals, "count": len(grids), "shown": len(rows)}


def _rule_problem(rule: str, t: ReportTexts) -> str:
    text = QUARANTINE_RULE_TEXTS.get(rule)
    return text.problem if t.chinese and text is not None else rule


def _soft_problem(problem: str, t: ReportTexts) -> str:
    if not t.chinese:
        return problem
    try:
        return soft_problem_text(problem).problem
    except KeyError:  # a problem this version has no words for yet: shown as staging names it
        return problem


def fix_first(problems: pd.DataFrame, lang: str = "zh", departments: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Every problem of every department as one list, most residents affected first.

    A problem's reach is counted in persons where its records are linked to people (conflicts, soft
    problems carried as flags, duplicate entries) and in rows where they are not (quarantined rows
    never reach linking; an expectation counts rows): ``unit`` says which.

    Args:
        problems: :attr:`ReportInputs.problems`.
        lang: the language of ``problem`` and ``fix``.
        departments: source -> department label.

    Returns:
        Entries with ``kind, source, code, department, affected, unit, problem, fix, example, command``.
    """
    t, departments = ReportTexts(lang), departments or {}
    entries = []
    for p in problems.to_dict(orient="records"):
        persons, rows = _count(p.get("persons")), _count(p.get("rows"))
        affected, unit = (persons, "persons") if persons is not None else (rows, "rows")
        source = p["source"]
        problem, fix = _problem_and_fix(p["kind"], p["code"], p.get("field"), p.get("message"), t)
        entries.append({
            "kind": p["kind"], "source": source, "code": p["code"],
            "department": t.department(source, departments) if source != "*" else t("suite.unified_population"),
            "affected": affected, "unit": unit, "problem": problem, "fix": fix,
            "example": mask_value(p.get("field") or "", p.get("value")) if p["kind"] == "quarantine" else "",
            "command": f"silobreaker corrections export --source {source}" if source != "*" else None,
        })
    entries.sort(key=lambda e: (-(e["affected"] or 0), _KIND_ORDER.index(e["kind"]), e["source"], e["code"]))
    return entries


def _problem_and_fix(kind: str, code: str, field: Any, message: Any, t: ReportTexts) -> tuple[str, str]:
    """What is wrong and what the department does about it, in the report's language."""
    column = None if _missing(field) else str(field)
    if kind == "quarantine":
        text = QUARANTINE_RULE_TEXTS.get(code)
        return (text.problem, text.fix) if t.chinese and text is not None else (code, mask_message(message))
    if kind == "soft":
        if t.chinese and code.split(":", 1)[0] in SOFT_PROBLEM_TEXTS:
            text = soft_problem_text(code)
            return text.problem, text.fix
        return code, t("fix.soft.fix")
    if kind == "conflict":
        return t("fix.conflict.problem", field=t.field(code)), t("fix.conflict.fix", field=t.field(code))
    if kind == "duplicate":
        return t("fix.duplicate.problem"), t("fix.duplicate.fix")
    check = _check(code, column, None if _missing(message) else str(message), t)
    return t("fix.expectation.problem", check=check["check"]), t("fix.expectation.fix", why=check["why"] or code)


def _fixed(current: pd.DataFrame) -> list[dict[str, Any]]:
    q = current[current["dimension"] == "quarantine"]
    out = []
    for source in sorted(set(q["source"])):
        rows = q[q["source"] == source].set_index("measure")
        out.append({
            "source": source,
            "quarantined": _count(rows["numerator"].get("quarantined")) or 0,
            "fixed": _count(rows["numerator"].get("fixed")),
            "previous": _count(rows["denominator"].get("fixed")),
            "new": _count(rows["numerator"].get("new")),
        })
    return out


def _check(kind: str, column: str | None, why: str | None, t: ReportTexts) -> dict[str, Any]:
    """An expectation's name and why it matters, in the report's language, and who accepted a drop."""
    accepted = _ACCEPTED.search(why or "")
    if t.chinese:
        text = expectation_text(kind, column)
        label, meaning = text.label, text.why
    else:
        label, meaning = kind, why or ""
    return {"check": label, "why": meaning, "accepted_by": accepted.group(1) if accepted else None}


def _suite_owner(suite: str, t: ReportTexts, departments: Mapping[str, str]) -> str:
    if suite.startswith("staged_"):
        return t.department(suite.removeprefix("staged_"), departments)
    return t(f"suite.{suite}") if t.has(f"suite.{suite}") else suite


def _validation(validation: pd.DataFrame, t: ReportTexts, departments: Mapping[str, str]) -> list[dict[str, Any]]:
    rows = []
    for v in validation.to_dict(orient="records"):
        column = None if _missing(v.get("column_name")) else v["column_name"]
        percent = v.get("unexpected_percent")
        rows.append({
            "suite": v["suite"],
            "owner": _suite_owner(v["suite"], t, departments),
            "kind": v["expectation"],
            "column": column,
            "field": t.field(column),
            "success": bool(v["expectation_success"]),
            "unexpected": _count(v.get("unexpected_count")),
            "percent": None if _missing(percent) else float(percent),
            **_check(v["expectation"], column, v.get("why"), t),
        })
    return rows


def _reason(outcome: Mapping[str, Any], t: ReportTexts) -> dict[str, Any]:
    observed, threshold = describe_outcome(outcome, t.lang)
    column = outcome.get("column")
    return {"kind": outcome.get("kind"), "column": column, "field": t.field(column), "observed": observed,
            "threshold": threshold, **_check(outcome.get("kind") or "", column, outcome.get("why"), t)}


def _step_label(step: str, t: ReportTexts, departments: Mapping[str, str]) -> str:
    """What failed, in words: ``raw_health`` is reading 卫健's data; the step's own name is shown beside it."""
    name = step.split(":", 1)[0].strip()
    for prefix, key in (("raw_", "step.raw"), ("staged_", "step.stage"), ("stage_", "step.stage")):
        source = name.removeprefix(prefix)
        if name.startswith(prefix) and source in departments:
            return t(key, department=t.department(source, departments))
    return t("step.other")


def _run_labels(runs: pd.DataFrame, t: ReportTexts) -> dict[str, str]:
    """Each run's label on the charts' axis: its number and when it was published, in Beijing time."""
    labels = {}
    for i, r in enumerate(runs.itertuples()):
        published = pd.Timestamp(r.published_at)
        published = published.tz_localize("UTC") if published.tzinfo is None else published
        labels[r.run_id] = t("chart.run", n=i + 1, time=published.tz_convert(CHINA_TZ).strftime("%m-%d %H:%M"))
    return labels


def _drawn_scores(metrics: pd.DataFrame, order: Mapping[str, int]) -> pd.DataFrame:
    """The score rows the trend charts draw: every run's in ``order``, but the uniqueness of a log with many rows
    per person by design, which is not graded (the scorecard says so) and would be the lowest line of its chart
    (users audit: 卫健's visits drawn at 53.7%)."""
    scores = metrics[(metrics["measure"] == "score") & metrics["run_id"].isin(order)]
    by_design = metrics.loc[_by_design_rows(metrics), ["run_id", "source"]]
    ungraded = set(zip(by_design["run_id"], by_design["source"], strict=True))
    return scores[[not (d == "uniqueness" and (r, s) in ungraded)
                   for d, r, s in zip(scores["dimension"], scores["run_id"], scores["source"], strict=True)]].copy()


def _charts(metrics: pd.DataFrame, runs: pd.DataFrame, order: Mapping[str, int], t: ReportTexts,
            departments: Mapping[str, str]) -> list[dict[str, str]]:
    """Plotly figures as HTML fragments; the first loads plotly.js from ``plotly.min.js`` beside the report
    (written once per data home), so the report works offline without carrying 4.8 MB each run."""
    if metrics.empty or runs.empty:
        return []
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    labels = _run_labels(runs, t)
    scores = _drawn_scores(metrics, order)
    scores["order"] = scores["run_id"].map(order)
    scores = scores.sort_values(["order", "source"])
    sources = sorted(set(scores.loc[scores["source"] != "*", "source"]))
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
    colour = {s: palette[i % len(palette)] for i, s in enumerate(sources)}

    dims = (*DIMENSIONS, "overall")
    grid = make_subplots(rows=2, cols=3, subplot_titles=[t.dimension(d) for d in dims])
    for i, dimension in enumerate(dims):
        for source in sources:
            part = scores[(scores["dimension"] == dimension) & (scores["source"] == source)]
            grid.add_trace(
                go.Scatter(x=[labels[r] for r in part["run_id"]], y=part["value"], mode="lines+markers",
                           name=t.department(source, departments), legendgroup=source, showlegend=i == 0,
                           line={"color": colour[source]}),
                row=i // 3 + 1, col=i % 3 + 1,
            )
    grid.update_yaxes(range=[0, 1.02], tickformat=".0%")
    # Each run's label on two lines (number, then time), so neighbouring charts' labels do not run together.
    grid.update_layout(height=600, margin={"t": 40, "l": 40, "r": 20, "b": 60}, title_text="")

    quarantine = metrics[(metrics["dimension"] == "quarantine") & (metrics["measure"] == "quarantined")
                         & metrics["run_id"].isin(order)].copy()
    quarantine["order"] = quarantine["run_id"].map(order)
    quarantine = quarantine.sort_values("order")
    bars = go.Figure()
    for source in sorted(set(quarantine["source"])):
        part = quarantine[quarantine["source"] == source]
        bars.add_trace(go.Bar(x=[labels[r] for r in part["run_id"]], y=part["numerator"],
                              name=t.department(source, departments), marker_color=colour.get(source, "#7f7f7f")))
    bars.update_layout(barmode="stack", height=320, margin={"t": 30, "l": 40, "r": 20, "b": 40},
                       yaxis_title=t("chart.quarantine_axis"))

    # No mode bar: plotly writes its buttons' titles in English and offers "Share chart", an upload to Plotly's
    # cloud, which an air-gapped intranet must not be asked to make; hovering still shows each value.
    config = {"displaylogo": False, "responsive": True, "displayModeBar": False, "showSendToCloud": False}
    return [
        {"id": "trend-scores", "title": t("chart.scores"),
         "html": grid.to_html(full_html=False, include_plotlyjs="directory", config=config, div_id="trend-scores")},
        {"id": "trend-quarantine", "title": t("chart.quarantine"),
         "html": bars.to_html(full_html=False, include_plotlyjs=False, config=config, div_id="trend-quarantine")},
    ]
