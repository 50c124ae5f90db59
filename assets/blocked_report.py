"""The quality report of a run whose publication was blocked: one function for the sensor and the CLI.

A blocking check stops ``publish`` and therefore ``quality_report``; supervisors still need to
know why nothing new was published. :func:`write_blocked_report` reads the run's own record in
Dagster's event log — the failed steps and the staging reports this attempt materialised — so a
source that failed before staging is never shown with an earlier run's counts. Runs launched from
the Dagster UI or the schedule get it from the run-failure sensor; the CLI, whose in-process runs
trigger no sensors, calls the same function.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import dagster as dg

from assets.run_lifecycle import ABANDONED_RUN
from core.errors import SilobreakerError
from core.home import DataHome
from publish import WarehouseReader
from quality import StagingReport, render_blocked_report

__all__ = ["build_blocked_report_sensor", "failure_messages", "run_failures", "run_staging_reports", "write_blocked_report"]

_REPORT_PREFIX = "staging_report_"


def failure_messages(events: Iterable[Any]) -> dict[str, str]:
    """Failed step -> the message a data team acts on, from Dagster step-failure events."""
    # One line each: a message goes to a terminal, a log line and a table cell.
    return {event.step_key: " ".join(_our_message(event.step_failure_data.error).split()) for event in events}


def run_failures(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """Every reason run ``run_id`` failed: each failed step's message, and for a failed blocking check
    that explains itself (``observed``, ``threshold``, ``why`` in its metadata, e.g. ``persons_drop``)
    what it saw against what it allows."""
    failures = failure_messages(
        entry.dagster_event for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    )
    # A run can fail before any step: its resources (the run lock, a configuration file) would not start.
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.RESOURCE_INIT_FAILURE):
        error = entry.dagster_event.event_specific_data.error
        if error is not None:
            failures["resources"] = " ".join(_our_message(error).split())
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data
        metadata = evaluation.metadata
        if evaluation.passed or not {"observed", "threshold", "why"} <= set(metadata):
            continue
        key = f"{evaluation.asset_key.to_user_string()}: {evaluation.check_name}"
        failures[key] = (f"{metadata['observed'].value}, expected {metadata['threshold'].value}: "
                         f"{metadata['why'].value}")
    return failures


def run_staging_reports(instance: dg.DagsterInstance, run_id: str) -> dict[str, StagingReport]:
    """Source -> the staging report run ``run_id`` materialised (sources it never staged are absent)."""
    reports = {}
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = entry.asset_materialization
        if materialization is None or not materialization.asset_key.path[-1].startswith(_REPORT_PREFIX):
            continue
        value = materialization.metadata.get("report")
        if value is not None:
            report = StagingReport.from_dict(value.value)
            reports[report.source] = report
    return reports


def write_blocked_report(instance: dg.DagsterInstance, run_id: str, home: DataHome, stopped: str | None = None) -> Path:
    """Write the report of the failed run ``run_id``: why it was blocked, this attempt's staging counts,
    and the last publication's scorecard (or its ordinary report, if the run did publish). ``stopped``: why the run
    failed as a whole (its failure event's message), said where no step, check or resource failed (Dagster's own
    run monitoring failed it: a lost run worker, a time-out)."""
    failures = run_failures(instance, run_id) or ({"run": " ".join(stopped.split())} if stopped else {})
    reader = WarehouseReader(home)
    last = reader.last_run()
    inputs = reader.report_inputs(last.run_id) if last else None
    return render_blocked_report(home, run_id, failures, run_staging_reports(instance, run_id), inputs)


def build_blocked_report_sensor(home: DataHome) -> dg.SensorDefinition:
    """A sensor on the failures of every job of the code location that writes the blocked-run report:
    the ``sync`` job of the schedule, and the ad-hoc run of "Materialize all" in the UI alike."""

    @dg.run_failure_sensor(name="blocked_quality_report",
                           default_status=dg.DefaultSensorStatus.RUNNING,
                           description="write the quality report of a failed sync, saying why nothing was published")
    def blocked_quality_report(context: dg.RunFailureSensorContext) -> None:
        if context.failure_event.message == ABANDONED_RUN:
            # Killed, not blocked, and marked failed by a later run, which wrote its own report: a report of this
            # one would say a check blocked it, and take latest.html from the newer run's. Seen on a home with
            # the Dagster daemon running, the machine killed mid-run.
            context.log.info(f"run {context.dagster_run.run_id} was killed before it finished; no blocked-run report")
            return
        path = write_blocked_report(context.instance, context.dagster_run.run_id, home, context.failure_event.message)
        context.log.info(f"blocked run report written to {path}")

    return blocked_quality_report


def _our_message(error: Any) -> str:
    """The message of silobreaker's own error in a Dagster error chain (it names the source, file and
    fix), else of a ``dg.Failure``, else of the innermost cause; the library's text stays underneath."""
    chain = []
    while error is not None:
        chain.append(error)
        error = error.cause
    # Subclasses are looked up now, not at import, so every room's errors are known.
    names = _subclass_names(SilobreakerError) | {"Failure"}
    ours = next((e for e in chain if e.cls_name in names), None) or chain[-1]
    message = _without_class(ours.message)
    cause = chain[-1]
    if cause is not ours and cause.cls_name not in names:
        first_line = _without_class(cause.message).splitlines()[0] if cause.message.strip() else ""
        message += f" (cause: {cause.cls_name}: {first_line})"
    return message


def _without_class(message: str) -> str:
    # Serialised messages read "module.ClassName: text".
    head, _, text = message.strip().partition(": ")
    return text if text and " " not in head else message.strip()


def _subclass_names(root: type) -> set[str]:
    names = {root.__name__}
    for sub in root.__subclasses__():
        names |= _subclass_names(sub)
    return names
