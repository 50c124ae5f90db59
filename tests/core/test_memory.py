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
