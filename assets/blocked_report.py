"""The quality report of a run whose publication was blocked, written by a run-failure sensor.

A blocking check stops ``publish`` and therefore ``quality_report``; supervisors still need to
know why nothing new was published. For runs launched from the Dagster UI or the schedule this
sensor writes the report (the CLI writes it itself, as in-process runs trigger no sensors).
"""

from pathlib import Path
from typing import Any

import dagster as dg

from publish import Warehouse
from quality import load_staging_reports, render_blocked_report

__all__ = ["build_blocked_report_sensor"]


def build_blocked_report_sensor(job: Any, home: Path) -> dg.SensorDefinition:
    """A sensor on the failures of ``job`` (the ``sync`` asset job) that writes the blocked-run report into ``<home>/reports``."""

    @dg.run_failure_sensor(name="blocked_quality_report", monitored_jobs=[job],
                           default_status=dg.DefaultSensorStatus.RUNNING,
                           description="write the quality report of a failed sync, saying why nothing was published")
    def blocked_quality_report(context: dg.RunFailureSensorContext) -> None:
        failures = {event.step_key: _root_message(event.step_failure_data.error)
                    for event in context.get_step_failure_events()}
        path = render_blocked_report(Warehouse(home), Path(home) / "reports", context.dagster_run.run_id, failures,
                                     load_staging_reports(home))
        context.log.info(f"blocked run report written to {path}")

    return blocked_quality_report


def _root_message(error) -> str:
    # Dagster wraps user errors; the innermost cause carries our message with source and fix.
    while error.cause is not None:
        error = error.cause
    return error.message.strip()
