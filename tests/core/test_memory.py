"""DuckDB's memory cap for the heavy steps: an eighth of the machine by default, the environment's when set."""

from __future__ import annotations

import os

import duckdb

from core.memory import ARROW_POOL_ENV, DUCKDB_MEMORY_ENV, duckdb_memory_limit, use_system_allocator


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


def test_arrow_allocates_with_malloc_unless_the_environment_chooses(monkeypatch):
    """A run's process gives Arrow the C library's allocator (faster to hand out fresh memory, lower
    peak at 1M people); ``ARROW_DEFAULT_MEMORY_POOL`` set by an operator is left to choose."""
    import pyarrow as pa

    before = pa.default_memory_pool()
    try:
        pa.set_memory_pool(pa.mimalloc_memory_pool())
        monkeypatch.setenv(ARROW_POOL_ENV, "mimalloc")
        assert use_system_allocator() == "mimalloc"
        monkeypatch.delenv(ARROW_POOL_ENV)
        assert use_system_allocator() == "system"
        assert pa.array(["甲", "乙"]).to_pandas().tolist() == ["甲", "乙"]  # and Arrow works on it
    finally:
        pa.set_memory_pool(before)


def test_the_cli_and_the_dagster_definitions_take_the_system_allocator(monkeypatch, tmp_path):
    import subprocess
    import sys

    import pyarrow as pa

    from pipelines.cli import main

    monkeypatch.delenv(ARROW_POOL_ENV, raising=False)
    before = pa.default_memory_pool()
    try:
        pa.set_memory_pool(pa.mimalloc_memory_pool())
        main(["review", "list", "--home", str(tmp_path / "home")])  # whatever it finds there
        assert pa.default_memory_pool().backend_name == "system"
    finally:
        pa.set_memory_pool(before)
    probe = "import pyarrow as pa; import pipelines.definitions; print(pa.default_memory_pool().backend_name)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "SILOBREAKER_HOME": str(tmp_path / "home")})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "system"
