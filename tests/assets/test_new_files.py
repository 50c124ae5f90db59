"""A department drops a new export: the sensor starts one sync once the file has settled."""

from __future__ import annotations

import os
import time

import dagster as dg

from assets.new_files import SETTLE_SECONDS
from connectors import load_sources
from pipelines.graph import build_definitions
from pipelines.settings import DEMO_POLICY, DEMO_SOURCES, Settings


def _tick(sensor, cursor):
    context = dg.build_sensor_context(cursor=cursor)
    result = sensor(context)
    return result, context.cursor


def test_a_changed_settled_export_starts_one_sync_and_a_file_being_copied_waits(tmp_path):
    settings = Settings(tmp_path, DEMO_SOURCES, DEMO_POLICY)
    files = {s.name: s.resolved_path(settings.home) for s in load_sources(DEMO_SOURCES).sources if s.kind != "sql"}
    assert files, "the demo has file sources"
    long_ago = time.time() - 3600
    for path in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"old export")
        os.utime(path, (long_ago, long_ago))
    sensor = build_definitions(settings).resolve_sensor_def("new_department_files")
    assert sensor.job_name == "sync" and sensor.default_status == dg.DefaultSensorStatus.STOPPED  # the demo

    first, cursor = _tick(sensor, None)
    assert isinstance(first, dg.SkipReason) and cursor  # the first tick only records what is there
    same, cursor = _tick(sensor, cursor)
    assert isinstance(same, dg.SkipReason) and "no department file changed" in same.skip_message

    name, path = next(iter(files.items()))
    path.write_bytes(b"new export, still being copied")
    copying, unchanged_cursor = _tick(sensor, cursor)
    assert isinstance(copying, dg.SkipReason) and name in copying.skip_message
    assert unchanged_cursor == cursor  # seen again at the next tick
    settled = time.time() - SETTLE_SECONDS - 5
    os.utime(path, (settled, settled))
    request, cursor = _tick(sensor, cursor)
    assert isinstance(request, dg.RunRequest) and request.tags["silobreaker/changed_sources"] == name
    again, _ = _tick(sensor, cursor)
    assert isinstance(again, dg.SkipReason)  # one run per change
