"""Work done in other processes, on the machine's other cores.

Much of a night's work is Python that holds the interpreter lock (normalising names and addresses, an
xlsx password's 100,000 SHA-512 rounds), so threads do not spread it over the cores: processes do.
They start from a forkserver, not by forking this process: the caller may be a Dagster run with threads,
and a lock a thread holds at the fork stays locked in the child. The server is started once per process,
importing the modules it is first given (``preload``); each worker forks from it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.context import BaseContext
from typing import Generic, TypeVar

__all__ = ["Beside", "cores", "forkserver"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0))


def forkserver(preload: Sequence[str]) -> BaseContext:
    """The forkserver context, its server importing ``preload`` when this call is the one that starts it."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload))
    return context


class Beside(Generic[T]):
    """``function(*args)`` started in a process of its own, while this one goes on; :meth:`result` waits.

    Arguments and the result travel pickled, so this pays where the work is much larger than its data
    (seconds of Python per million values, not a pass Arrow makes in a fraction of one). A worker that
    dies (killed, out of memory) is not a failed night: the call is made again here, with a warning.

    Example:
        >>> with Beside(sum, [1, 2, 3], module="builtins") as later:  # doctest: +SKIP
        ...     later.result()
        6
    """

    def __init__(self, function: Callable[..., T], *args: object, module: str) -> None:
        self._function, self._args = function, args
        self._pool = ProcessPoolExecutor(1, mp_context=forkserver([module]))
        self._future: Future[T] = self._pool.submit(function, *args)

    def result(self) -> T:
        """The call's result (its exception raised here); made here if the worker died."""
        try:
            return self._future.result()
        except BrokenProcessPool as e:
            log.warning("a worker process died (%s); %s is done in this process instead",
                        e, getattr(self._function, "__qualname__", self._function))
            return self._function(*self._args)

    def __enter__(self) -> Beside[T]:
        return self

    def __exit__(self, *_exc: object) -> None:
        # Left before its result (this process failed meanwhile): the worker is not waited for.
        self._pool.shutdown(wait=self._future.done(), cancel_futures=True)
        self._args = ()
