"""Start a sync when a department drops a new export: a sensor on the files the file sources read.

Beside the nightly schedule: a 街道 that sends its corrected CSV at 10:00 sees it published before
noon, not the next morning. The sensor compares each file source's size and modification time with
what it saw last (its cursor) and asks for one ``sync`` run when any changed and has been left alone
for :data:`SETTLE_SECONDS` (a file still being copied is not read half-written). The first tick only
records what is there. SQL sources are not watched: the schedule reads them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import dagster as dg

from connectors import SourceConfig
from core.home import DataHome

__all__ = ["SETTLE_SECONDS", "build_new_files_sensor"]

SETTLE_SECONDS = 60
"""How long a changed file must stay unchanged before a run reads it."""


def _stamps(sources: Sequence[SourceConfig], home: DataHome) -> dict[str, list[int]]:
    """Source name -> [size, mtime in ns] of its file, for the file sources whose file exists."""
    stamps = {}
    for source in sources:
        if source.kind == "sql" or not source.path:
            continue
        path = source.resolved_path(home)
        if path.is_file():
            info = path.stat()
            stamps[source.name] = [info.st_size, info.st_mtime_ns]
    return stamps


def build_new_files_sensor(sources: Sequence[SourceConfig], home: DataHome, job: object, *,
                           running: bool) -> dg.SensorDefinition:
    """The ``new_department_files`` sensor on the file sources of ``sources``, requesting ``job``."""

    @dg.sensor(name="new_department_files", job=job, minimum_interval_seconds=60,
               default_status=dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED,
               description="start a sync when a file source's export changes (size or time) and has settled")
    def new_department_files(context: dg.SensorEvaluationContext):
        seen = json.loads(context.cursor) if context.cursor else None
        now = _stamps(sources, home)
        if seen is None:
            context.update_cursor(json.dumps(now))
            return dg.SkipReason(f"recorded {len(now)} file(s); a change to any of them starts a sync")
        changed = sorted(name for name, stamp in now.items() if seen.get(name) != stamp)
        if not changed:
            return dg.SkipReason("no department file changed")
        settling = [name for name in changed if time.time_ns() - now[name][1] < SETTLE_SECONDS * 1_000_000_000]
        if settling:
            return dg.SkipReason(f"{', '.join(settling)} changed less than {SETTLE_SECONDS} s ago; waiting for the "
                                 "copy to finish")
        context.update_cursor(json.dumps(now))
        key = "-".join(f"{name}:{now[name][1]}" for name in changed)
        return dg.RunRequest(run_key=key, tags={"silobreaker/changed_sources": ",".join(changed)})

    return new_department_files
