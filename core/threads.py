"""The cores this process may use, and work run in a thread beside the caller's.

A district's machine has few cores (the one the project is measured on has two: docs/deploy.md), so the second
is put to work where the work lets go of the GIL: Arrow's kernels, DuckDB, rapidfuzz, pandas' factorising of
Arrow-backed text.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

__all__ = ["beside", "usable_cores"]

_T = TypeVar("_T")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system tells it, else every core)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@contextmanager
def beside(function: Callable[..., _T], *args: object) -> Iterator[Future[_T]]:
    """``function(*args)`` in a thread while the ``with`` block runs; ``.result()`` gives what it returned (or raises
    what it raised). The block waits for it on leaving, so nothing runs on past the caller's step.

    Worth it when much of both sides runs outside the GIL (the addresses read beside the names: preparing for
    linking at 1M records 0.87×, benchmarks/results/splink_compare.md, 2026-12-06); a Python loop on each side only
    takes turns. ``function`` must not touch what the block changes.

    Example:
        >>> with beside(sum, [1, 2, 3]) as total:
        ...     rest = max(4, 5)
        >>> total.result() + rest
        11
    """
    with ThreadPoolExecutor(1, thread_name_prefix="silobreaker-beside") as pool:
        yield pool.submit(function, *args)
