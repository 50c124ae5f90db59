"""The per-run quality report: one self-contained HTML file (no server, no network)."""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

__all__ = ["collect_report_data", "render_quality_report"]

log = logging.getLogger(__name__)

_QUERIES = {
    "sources": """
        SELECT e.source, e.kind, e.location, e.row_count AS extracted, e.content_hash,
               coalesce(s.staged, 0) AS staged, coalesce(q.quarantined, 0) AS quarantined,
               coalesce(s.persons, 0) AS persons
        FROM extraction_log e
        LEFT JOIN (SELECT source, count(*) AS staged, count(DISTINCT person_id) AS persons
                   FROM source_records GROUP BY source) s USING (source)
        LEFT JOIN (SELECT source, count(*) AS quarantined FROM quarantine GROUP BY source) q USING (source)
        WHERE e.run_id = $run ORDER BY e.source""",
    "quarantine_rules": """
        SELECT source, rule, count(*) AS rows, any_value(message) AS example
        FROM quarantine GROUP BY source, rule ORDER BY source, rows DESC""",
    "validation": """
        SELECT suite, expectation, column_name, expectation_success, unexpected_count,
               round(unexpected_percent, 2) AS unexpected_percent, why
        FROM validation_results WHERE run_id = $run ORDER BY suite, expectation_success, expectation""",
    "linking": """
        SELECT (SELECT count(*) FROM record_person) AS records,
               (SELECT count(*) FROM unified_population) AS persons,
               (SELECT count(*) FROM unified_population WHERE len(sources) >= 2) AS multi_department,
               (SELECT count(*) FROM unified_population WHERE record_count > len(sources)) AS repeated_within_source,
               (SELECT count(*) FROM link_pairs) AS scored_pairs""",
    "departments_per_person": """
        SELECT len(sources) AS departments, count(*) AS persons
        FROM unified_population GROUP BY 1 ORDER BY 1""",
    "conflicts": """
        SELECT field, count(DISTINCT person_id) AS persons
        FROM field_conflicts GROUP BY field ORDER BY persons DESC""",
    "key_populations": """
        SELECT kp AS population, count(*) AS persons
        FROM (SELECT unnest(key_populations) AS kp FROM unified_population) GROUP BY kp ORDER BY persons DESC""",
    "history": "SELECT run_id, published_at, records, quarantined, persons FROM runs ORDER BY published_at DESC LIMIT 10",
}


def collect_report_data(con: Any, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """Run the report's queries against a warehouse connection; each result is a list of rows."""
    data = {}
    for name, sql in _QUERIES.items():
        params = {"run": run_id} if "$run" in sql else {}
        data[name] = con.execute(sql, params).df().to_dict(orient="records")
    return data


def render_quality_report(warehouse: Any, reports_dir: Path, run_id: str) -> Path:
    """Write ``quality-<run>.html`` (and a copy as ``latest.html``) from the published warehouse.

    Args:
        warehouse: a :class:`publish.Warehouse`; its published file is read, read-only.
        reports_dir: the folder to write into.
        run_id: the run whose extraction and validation results the report shows.
    """
    with warehouse.connect() as con:
        data = collect_report_data(con, run_id)
    env = Environment(loader=PackageLoader("quality", "templates"), autoescape=select_autoescape(["html", "j2"]))
    html = env.get_template("report.html.j2").render(
        run_id=run_id, generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), **data
    )
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / f"quality-{run_id}.html"
    path.write_text(html, encoding="utf-8")
    shutil.copyfile(path, reports_dir / "latest.html")
    log.info("quality report written to %s", path)
    return path
