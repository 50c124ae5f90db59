"""DuckDB's memory cap for the heavy steps: an eighth of the machine by default, the environment's when set."""

from __future__ import annotations

import os

import duckdb

from core.memory import DUCKDB_MEMORY_ENV, duckdb_memory_limit


def test_the_default_is_an_eighth_of_the_machine_and_at_least_two_gigabytes(monkeypatch):
    monkeypatch.delenv(DUCKDB_MEMORY_ENV, raising=False)
    total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 1024**2
    limit = duckdb_memory_limit()
    assert limit == f"{max(2048, total_mb // 8)}MB"
    setting = "SELECT current_setting('memory_limit')"
    with duckdb.connect(config={"memory_limit": limit}) as capped, duckdb.connect() as default:
        assert capped.execute(setting).fetchone()[0] != default.execute(setting).fetchone()[0]  # not 80% of RAM


def test_the_environment_sets_the_cap(monkeypatch):
    monkeypatch.setenv(DUCKDB_MEMORY_ENV, "5GB")
    assert duckdb_memory_limit() == "5GB"


def test_garbage_in_reference_cycles_is_freed_before_a_heavy_step():
    """What a finished step leaves in a reference cycle (a frame held by a context that refers to itself)
    is freed when a heavy step starts, not whenever Python's cyclic collector next runs."""
    import gc
    import weakref

    import pandas as pd

    from core.memory import release_garbage

    class StepContext:
        pass

    gc.disable()  # as if the collector had not run since the step ended
    try:
        context = StepContext()
        context.frame = pd.DataFrame({"x": range(1000)})
        context.self = context
        left = weakref.ref(context.frame)
        del context
        assert left() is not None  # a cycle: reference counting alone does not free it
        assert release_garbage() > 0
        assert left() is None
    finally:
        gc.enable()
