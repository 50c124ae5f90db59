"""How much memory DuckDB may take in the heavy steps (linking, building the publication).

DuckDB's default is 80% of the machine's memory, per connection, and a file-backed database keeps
the tables it builds in memory until that limit forces them out. Capped at an eighth of the memory
(3 GB on a 24 GB machine) it spills to disk instead: with this cap and the CLI no longer holding
every step's output, a million-people sync peaks at 6.7 GB where it took 16.3 GB
(``benchmarks/results/sync.md``). ``SILOBREAKER_DUCKDB_MEMORY`` overrides the cap (``4GB``, ``500MB``,
DuckDB's own notation): raise it on a machine with memory to spare, or when a run fails with DuckDB's
"Out of Memory Error".

Arrow's buffers (every Arrow-backed column, every frame read from a kept file) come from the C library's
allocator rather than the one pyarrow ships as its default (mimalloc; jemalloc in older wheels): a night
frees and takes gigabytes of them step after step, and those allocators handed freshly mapped memory out
slowly each time (reading the 1 GB of kept linking records: 1.6–2.3 s as a process's first read, 0.6 s
with malloc). Incremental 1M nights ran 0.93× as long and peaked 0.54 GiB lower with it
(``benchmarks/results/sync.md``). ``ARROW_DEFAULT_MEMORY_POOL`` (``mimalloc``, ``jemalloc``, ``system``)
still chooses, when set.
"""

from __future__ import annotations

import gc
import os

__all__ = ["ARROW_POOL_ENV", "DUCKDB_MEMORY_ENV", "duckdb_memory_limit", "release_garbage", "use_system_allocator"]

DUCKDB_MEMORY_ENV = "SILOBREAKER_DUCKDB_MEMORY"
ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"
_SHARE = 8  # an eighth of the machine's memory
_FLOOR = 2 * 1024**3  # at 1 GB the publication of 200,000 people ran out of memory; at 2 GB it did not


def duckdb_memory_limit() -> str:
    """DuckDB's ``memory_limit`` for a heavy step: ``$SILOBREAKER_DUCKDB_MEMORY``, else an eighth of the
    machine's memory (at least 2 GB).

    Example:
        >>> duckdb.connect(config={"memory_limit": duckdb_memory_limit()})  # doctest: +SKIP
    """
    explicit = os.environ.get(DUCKDB_MEMORY_ENV, "").strip()
    if explicit:
        return explicit
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{max(_FLOOR, total // _SHARE) // 1024**2}MB"


def release_garbage() -> int:
    """Free now what the steps before left in reference cycles (frames held by finished step contexts,
    tracebacks, pandas' internal caches), instead of whenever Python's cyclic collector next runs.

    Called as a heavy step (linking, publication) starts: at a million people the linking step otherwise
    ran with about 1.5 GB of the staging steps' garbage still held, and the run peaked at 8.3 GB instead of
    6.5 GB (``benchmarks/results/sync.md``). Returns the objects collected.
    """
    return gc.collect()


def use_system_allocator() -> str:
    """Make the C library's allocator Arrow's default for this process (see the module), unless
    ``$ARROW_DEFAULT_MEMORY_POOL`` chooses; returns the allocator in use. Called as a run's process starts
    (the CLI, the Dagster definitions)."""
    import pyarrow as pa

    if not os.environ.get(ARROW_POOL_ENV, "").strip():
        pa.set_memory_pool(pa.system_memory_pool())
    return pa.default_memory_pool().backend_name
