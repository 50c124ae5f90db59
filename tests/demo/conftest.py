"""Fixtures for the demo tests: one small generated district shared by the read-only tests."""

from __future__ import annotations

import pytest

from demo.generate import DemoSummary, generate_demo

DEMO_PERSONS = 3000


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoSummary:
    """A district of 3,000 persons, generated once; tests must only read it."""
    return generate_demo(tmp_path_factory.mktemp("demo_home"), persons=DEMO_PERSONS, seed=7)
