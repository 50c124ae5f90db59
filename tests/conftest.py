"""One small demo district, run once, for the tests that need a real warehouse, report and Dagster run."""

from __future__ import annotations

import shutil

import pytest

from demo.generate import generate_demo
from pipelines.cli import RunOutcome, run_pipeline
from pipelines.settings import DEMO_POLICY, DEMO_SOURCES, Settings

PERSONS = 500


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
