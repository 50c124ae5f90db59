"""The supervisors' quality report: one self-contained HTML file per run (opens offline, no server).

In Chinese, with the English field and measure names beside: a scorecard (departments x quality
dimensions, change since the previous run, grade), trends over runs (plotly charts with plotly.js
inlined, so nothing is fetched), conflicts between departments with the department likely wrong
and masked examples, the top fixes per department, quarantined rows fixed since the last run, the
linking summary and the Great Expectations results.

Every number on the scorecard and in the trends is read from ``quality_metrics`` (see
``docs/quality.md`` for the SQL of each); examples and rule messages come from ``quarantine`` and
``field_conflicts``.

When a blocking check stops publication, :func:`render_blocked_report` writes the report anyway:
why the run was blocked (the failed expectations with observed value and threshold, and each
failed step's message), this attempt's staging counts, and the last published scorecard.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from quality.expectations import describe_outcome
from quality.metrics import DIMENSIONS, cross_department_records_sql, grade

__all__ = [
    "DIMENSION_LABELS",
    "collect_report_data",
    "latest_published_run",
    "load_staging_reports",
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

_FIELD_LABELS = {"name": "姓名", "sex": "性别", "birth_date": "出生日期", "id_number": "身份证号", "address": "住址"}
_EXAMPLES_PER_KIND = 3
_LONG_NUMBER = re.compile(r"[0-9Xx.Ee+]{7,}")
_TOP_FIXES = 3

_QUERIES = {
    "validation": """
        SELECT suite, expectation, column_name, expectation_success, unexpected_count,
               round(unexpected_percent, 2) AS unexpected_percent, why
        FROM validation_results WHERE run_id = $run ORDER BY suite, expectation_success, expectation""",
    "top_fixes": """
        SELECT source, rule, count(*) AS rows, any_value("column") AS column_name, any_value(message) AS example
        FROM quarantine GROUP BY source, rule
        QUALIFY row_number() OVER (PARTITION BY source ORDER BY count(*) DESC, rule) <= $top
        ORDER BY source, rows DESC""",
    "runs": "SELECT run_id, published_at FROM runs ORDER BY published_at",
}


def load_staging_reports(home: Path) -> dict[str, dict[str, Any]]:
    """The latest staging report of each source under ``<home>/staging``, by source name."""
    reports = {}
    for path in sorted((Path(home) / "staging").glob("staging_report_*.json")):
        report = json.loads(path.read_text(encoding="utf-8"))
        reports[report["source"]] = report
    return reports


def latest_published_run(con: Any) -> str | None:
    """The id of the last run the warehouse published, or ``None`` for an empty history."""
    rows = con.execute("SELECT run_id FROM runs ORDER BY published_at DESC LIMIT 1").fetchall()
    return rows[0][0] if rows else None


def mask_value(field: str, value: Any) -> str:
    """Mask an identifier for display: ``张*``, ``330106********0012``, ``138****0001``, ``示范区西溪…``.

    Birth dates keep year and month (what the comparison uses); sex is shown as is.
    """
    if value is None or (isinstance(value, float) and value != value):
        return ""
    text = str(value)
    if field == "name":
        return text[:1] + "*" * max(len(text) - 1, 1)
    if field == "id_number":
        return text[:6] + "*" * max(len(text) - 10, 0) + text[-4:] if len(text) > 10 else "*" * len(text)
    if field == "phone":
        return text[:3] + "****" + text[-4:] if len(text) >= 7 else "*" * len(text)
    if field == "address":
        return text[:6] + "…" if len(text) > 6 else text
    if field == "birth_date":
        return text[:7] + ("-**" if len(text) > 7 else "")
    return text


def mask_message(message: Any) -> str:
    """A quarantine message with long numbers (ID and phone numbers) masked: ``3301********17``."""
    if message is None or (isinstance(message, float) and message != message):
        return ""
    return _LONG_NUMBER.sub(lambda m: m.group()[:4] + "*" * (len(m.group()) - 6) + m.group()[-2:], str(message))


def collect_report_data(con: Any, run_id: str) -> dict[str, Any]:
    """Everything the report shows for ``run_id``, read from a warehouse connection."""
    metrics = con.execute("SELECT * FROM quality_metrics").df() if _has_table(con, "quality_metrics") else _empty_metrics()
    runs = con.execute(_QUERIES["runs"]).df()
    order = {r: i for i, r in enumerate(runs["run_id"])}
    previous = _previous_run(runs, run_id)
    current = metrics[metrics["run_id"] == run_id]
    before = metrics[metrics["run_id"] == previous] if previous else metrics.iloc[0:0]
    return {
        "scorecard": _scorecard(current, before),
        "district": _district(current),
        "conflicts": _conflicts(con, current),
        "top_fixes": [
            {**row, "example": mask_message(row["example"])}
            for row in con.execute(_QUERIES["top_fixes"], {"top": _TOP_FIXES}).df().to_dict(orient="records")
        ],
        "fixed": _fixed(current),
        "validation": con.execute(_QUERIES["validation"], {"run": run_id}).df().to_dict(orient="records"),
        "charts": _charts(metrics, runs, order),
        "previous_run": previous,
        "run_count": len(runs),
    }


def render_quality_report(warehouse: Any, reports_dir: Path, run_id: str) -> Path:
    """Write ``quality-<run>.html`` (and a copy as ``latest.html``) from the published warehouse.

    Args:
        warehouse: a :class:`publish.Warehouse`; its published file is read, read-only.
        reports_dir: the folder to write into.
        run_id: the published run the report shows.
    """
    with warehouse.connect() as con:
        data = collect_report_data(con, run_id)
    departments = _departments(Path(warehouse.home) / "staging")
    return _write(reports_dir, run_id, blocked=None, departments=departments, shown_run=run_id, **data)


def render_blocked_report(
    warehouse: Any,
    reports_dir: Path,
    run_id: str,
    failures: Mapping[str, str],
    staging_reports: Mapping[str, Mapping[str, Any]],
) -> Path:
    """Write the report of a run whose publication was blocked, saying why.

    A run that did publish (a later step failed) gets its ordinary report instead.

    Args:
        warehouse: a :class:`publish.Warehouse`; the last publication (if any) is shown below.
        reports_dir: the folder to write into.
        run_id: the blocked run.
        failures: failed step -> its error message.
        staging_reports: source -> this attempt's staging report (counts, rules, validation).
    """
    reasons = []
    for source, report in sorted(staging_reports.items()):
        validation = report.get("validation") or {}
        for outcome in validation.get("outcomes", []):
            if not outcome.get("success") and outcome.get("severity") != "warn":  # warnings do not block
                reasons.append({"source": source, "department": report.get("department", ""), **_reason(outcome)})
    attempt = [
        {"source": s, "department": r.get("department", ""), "extracted": r.get("extracted"), "staged": r.get("staged"),
         "quarantined": r.get("quarantined"), "passed": (r.get("validation") or {}).get("success", True),
         "rules": sorted((r.get("quarantine_rules") or {}).items(), key=lambda kv: -kv[1])[:_TOP_FIXES]}
        for s, r in sorted(staging_reports.items())
    ]
    blocked: dict[str, Any] | None = {"reasons": reasons, "failures": dict(failures), "attempt": attempt}
    data: dict[str, Any] = {}
    shown_run = None
    if Path(warehouse.path).exists():
        with warehouse.connect() as con:
            shown_run = latest_published_run(con)
            if shown_run == run_id:
                # The run did publish (a later step failed): its report is the ordinary one.
                data = collect_report_data(con, shown_run)
                blocked = None
            elif shown_run:
                data = collect_report_data(con, shown_run)
    departments = _departments(Path(warehouse.home) / "staging")
    return _write(reports_dir, run_id, blocked=blocked, departments=departments, shown_run=shown_run, **data)


# -- building blocks ------------------------------------------------------------------------


def _write(reports_dir: Path, run_id: str, **context: Any) -> Path:
    env = Environment(loader=PackageLoader("quality", "templates"), autoescape=select_autoescape(["html", "j2"]))
    html = env.get_template("report.html.j2").render(
        run_id=run_id,
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        dimensions=DIMENSIONS,
        labels=DIMENSION_LABELS,
        field_labels=_FIELD_LABELS,
        **context,
    )
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / f"quality-{run_id}.html"
    path.write_text(html, encoding="utf-8")
    shutil.copyfile(path, reports_dir / "latest.html")
    log.info("quality report written to %s", path)
    return path


def _has_table(con: Any, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name]).fetchall()[0][0])


def _empty_metrics() -> pd.DataFrame:
    return pd.DataFrame(columns=["run_id", "source", "dimension", "measure", "value", "numerator", "denominator"])


def _previous_run(runs: pd.DataFrame, run_id: str) -> str | None:
    ids = list(runs["run_id"])
    if run_id not in ids or ids.index(run_id) == 0:
        return None
    return ids[ids.index(run_id) - 1]


def _departments(staging_dir: Path) -> dict[str, str]:
    names = {}
    for path in sorted(staging_dir.glob("staging_report_*.json")):
        report = json.loads(path.read_text(encoding="utf-8"))
        names[report["source"]] = report.get("department", "")
    return names


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


def _conflicts(con: Any, current: pd.DataFrame) -> list[dict[str, Any]]:
    district = current[(current["source"] == "*") & current["measure"].str.startswith("conflict_persons:")]
    wrong = current[(current["dimension"] == "consistency") & current["measure"].str.startswith("likely_wrong:")]
    examples = con.execute(f"""
        WITH c AS ({cross_department_records_sql()}),
        picked AS (
            SELECT field, person_id FROM (SELECT DISTINCT field, person_id FROM c)
            QUALIFY row_number() OVER (PARTITION BY field ORDER BY hash(person_id)) <= {_EXAMPLES_PER_KIND}
        )
        SELECT c.field, c.person_id, c.source, c.value, c.likely_wrong FROM c SEMI JOIN picked USING (field, person_id)
        ORDER BY c.field, c.person_id, c.source, c.value""").df()
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
    """Plotly figures as HTML fragments; the first carries plotly.js inline so the file works offline."""
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
         "html": grid.to_html(full_html=False, include_plotlyjs=True, config=config, div_id="trend-scores")},
        {"id": "trend-quarantine", "title": "隔离行数趋势 Quarantined rows over runs",
         "html": bars.to_html(full_html=False, include_plotlyjs=False, config=config, div_id="trend-quarantine")},
    ]
