"""One small demo district, run once, for the tests that need a real warehouse, report and Dagster run.

Temporary directories live in memory (tmpfs) where the machine has one: see :func:`pytest_configure`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from demo.generate import generate_demo
from pipelines.cli import RunOutcome, run_pipeline
from pipelines.settings import DEMO_POLICY, DEMO_SOURCES, Settings

PERSONS = 500

TMPFS = Path("/dev/shm")
#: Free space tmpfs must have for the temporary directories of a whole run (about 250 MB each).
TMPFS_NEEDED = 2 * 1024**3


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


@pytest.fixture(scope="session")
def published_demo(tmp_path_factory) -> tuple[Settings, RunOutcome]:
    """A demo district of 500 people, run once through the whole pipeline and published."""
    home = tmp_path_factory.mktemp("quality-home")
    generate_demo(home, persons=PERSONS, seed=23)
    settings = Settings(home, DEMO_SOURCES, DEMO_POLICY)
    outcome = run_pipeline(settings)
    assert outcome.success, outcome.failures
    return settings, outcome


@pytest.fixture
def demo_copy(published_demo, tmp_path) -> Settings:
    """A private copy of the published demo's data home, to corrupt or correct and re-run."""
    settings, _ = published_demo
    home = tmp_path / "home"
    shutil.copytree(settings.home, home, symlinks=True, ignore=shutil.ignore_patterns("dagster"))
    return Settings(home, DEMO_SOURCES, DEMO_POLICY)
