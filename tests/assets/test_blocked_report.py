"""A blocked run's report and summary show this attempt, in silobreaker's own words."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

import pytest

from pipelines.cli import run_pipeline
from pipelines.summary import build_summary


@pytest.mark.integration
def test_a_source_that_fails_before_staging_is_not_shown_with_an_earlier_runs_counts(demo_copy):
    (demo_copy.home.demo_dir / "health_visits.csv").unlink()
    before = hashlib.sha256(demo_copy.home.warehouse_file.read_bytes()).hexdigest()
    started = datetime.now(UTC)

    outcome = run_pipeline(demo_copy)

    assert not outcome.success
    # The staging reports are this run's: health was never read, the others were staged again.
    assert "health" not in outcome.reports
    assert {"civil_affairs", "justice", "census", "consent_registry"} <= set(outcome.reports)
    assert all(r.lineage.extracted_at >= started for r in outcome.reports.values())
    # silobreaker's message (source, file, fix), not the library's, with the cause underneath.
    message = outcome.failures["raw_health"]
    assert message.startswith("source 'health' (") and "file not found" in message and "Fix: " in message
    assert message.endswith(")") and "cause: FileNotFoundError" in message
    assert hashlib.sha256(demo_copy.home.warehouse_file.read_bytes()).hexdigest() == before

    report = demo_copy.home.report_file(outcome.run_id).read_text(encoding="utf-8")
    # In Chinese, with silobreaker's own message (English, for the data team) as code beneath.
    assert "本次运行未发布" in report and "卫健：读取数据失败：<code>raw_health</code>" in report
    assert re.search(r"<code>source &#39;health&#39; \([^<]*file not found", report)
    summary = build_summary(outcome)
    assert [line for line in summary.lines() if line.startswith("health ")] == [
        f"{'health':<20}{'not read in this run':>33}"
    ]
    [health] = [s for s in summary.as_dict()["sources"] if s["source"] == "health"]
    assert health == {"source": "health", "department": "卫健", "read": False, "extracted": None, "staged": None,
                      "quarantined": None, "rows_fixed": None, "conflicts_fixed": None}
