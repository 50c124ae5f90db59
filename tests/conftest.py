"""Shared pipeline runs for the tests that need a real warehouse, report and Dagster run.

A pipeline run takes seconds; copying a data home takes milliseconds. So a new test gets its run
from these fixtures rather than starting its own:

- ``published_demo`` (session): a 500-person demo district, generated, run once and published;
  ``(settings, outcome)``. Read it and never change it: every test of the process shares it.
- ``demo_copy`` (per test): a private copy of that home, to corrupt or correct and run again. Its
  Dagster instance is empty (the run history is not copied), as on a fresh home.
- ``copy_data_home(settings, to)`` (session): the same copy of any home, e.g. of a module's own run
  at another size or seed (``demo_run`` in ``tests/pipelines/test_pipeline.py``).

``make test`` runs the suite in parallel (pytest-xdist, one worker process per core): a session
fixture then runs once per worker, so it must not depend on another test having run first, and
each test works in its own ``tmp_path``. Temporary directories live in memory (tmpfs) where the
machine has one: see :func:`pytest_configure`.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from core.home import DataHome
from demo.generate import generate_demo
from pipelines.cli import RunOutcome, run_pipeline
from pipelines.settings import DEMO_POLICY, DEMO_SOURCES, Settings
from tests.spark import spark  # noqa: F401  (a fixture: the tests' Spark session)

PERSONS = 500
REPO_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "dagster.yaml"

TMPFS = Path("/dev/shm")
#: Free space tmpfs must have: a whole run's temporary directories take up to 1 GB (two workers) and
#: pytest keeps those of the last three runs.
TMPFS_NEEDED = 4 * 1024**3


def pytest_configure(config: pytest.Config) -> None:
    """Put ``tmp_path`` and every data home built from it on tmpfs when the machine has one.

    A pipeline run commits a few hundred times to Dagster's SQLite event log and writes DuckDB files;
    on a disk each commit waits for fsync, which tests do not need (they kill processes, never the
    machine). Nothing else changes: same files, paths, locks and permissions, only in memory.
    ``--basetemp`` or ``PYTEST_DEBUG_TEMPROOT`` (set it to ``/tmp`` to opt out) take precedence.
    """
    if config.option.basetemp or os.environ.get("PYTEST_DEBUG_TEMPROOT"):
        return
    try:
        roomy = os.access(TMPFS, os.W_OK | os.X_OK) and shutil.disk_usage(TMPFS).free >= TMPFS_NEEDED
    except OSError:
        roomy = False
    if roomy:
        os.environ["PYTEST_DEBUG_TEMPROOT"] = str(TMPFS)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto``: a worker for each core idle now plus one, up to the cores there are; none (a serial run)
    when that makes fewer than two.

    Each worker repeats the imports and session fixtures (~80 s of CPU in all), which pays only where
    other work leaves cores free. Measured on 2 cores: with one of them busy elsewhere, two workers
    took 302 s against 457 s serially; with both busy (three other suites running), two workers took
    1,476 s against 1,119 s. ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still decides when set.
    """
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    try:
        idle = _idle_cores()
    except (OSError, ValueError):
        return None
    workers = min(round(idle) + 1, len(os.sched_getaffinity(0)))
    return workers if workers >= 2 else 0


def _idle_cores(seconds: float = 1.0) -> float:
    """Cores left idle over the next ``seconds``, from the kernel's counters (Linux /proc/stat)."""

    def times() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return fields[3] + fields[4], sum(fields[:8])  # idle + iowait, all but guest time

    idle, total = times()
    time.sleep(seconds)
    idle_after, total_after = times()
    return os.cpu_count() * (idle_after - idle) / max(total_after - total, 1)


@pytest.fixture(scope="session")
def published_demo(tmp_path_factory) -> tuple[Settings, RunOutcome]:
    """A demo district of 500 people, run once through the whole pipeline and published."""
    home = tmp_path_factory.mktemp("quality-home")
    generate_demo(home, persons=PERSONS, seed=23)
    settings = Settings(home, DEMO_SOURCES, DEMO_POLICY)
    outcome = run_pipeline(settings)
    assert outcome.success, outcome.failures
    return settings, outcome


@pytest.fixture(scope="session")
def copy_data_home(tmp_path_factory) -> Callable[[Settings, Path], Settings]:
    """``copy(settings, to)``: a copy of ``settings.home`` at ``to`` with an empty Dagster instance.

    The home's files are copied as they are (its links are relative, its lock is the kernel's, not
    the file's); its Dagster run history is not. In its place goes an instance whose databases were
    created once per session and never used: the same as a first run would create, ~2 s cheaper.
    """
    empty = DataHome.at(tmp_path_factory.mktemp("empty-instance"))
    empty.dagster_dir.mkdir(parents=True)
    shutil.copyfile(REPO_DAGSTER_YAML, empty.dagster_config_file)
    with dg.DagsterInstance.from_config(str(empty.dagster_dir)) as instance:
        instance.get_runs(limit=1)  # creates the run, event log and schedule databases

    def copy(settings: Settings, to: Path) -> Settings:
        shutil.copytree(settings.home, to, symlinks=True, ignore=shutil.ignore_patterns("dagster"))
        copied = dataclasses.replace(settings, home=DataHome.at(to))
        shutil.copytree(empty.dagster_dir, copied.home.dagster_dir)
        return copied

    return copy


@pytest.fixture
def demo_copy(published_demo, copy_data_home, tmp_path) -> Settings:
    """A private copy of the published demo's data home, to corrupt or correct and re-run."""
    settings, _ = published_demo
    return copy_data_home(settings, tmp_path / "home")
