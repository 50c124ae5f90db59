"""core.processes.Beside: a call made in another process, its result or its exception back here, and made
here instead when the worker dies."""

from __future__ import annotations

import logging
import multiprocessing
import os

import pytest

from core.processes import Beside


def _doubled(values: list[int]) -> list[int]:
    return [2 * v for v in values]


def _refused(text: str) -> None:
    raise ValueError(f"refused: {text}")


def _dies_in_a_worker(value: int) -> int:
    if multiprocessing.parent_process() is not None:
        os._exit(3)  # as an out-of-memory kill ends a worker: no exception, no result
    return value + 1


def _pid() -> int:
    return os.getpid()


def test_the_call_is_made_in_another_process_and_its_result_comes_back() -> None:
    with Beside(_doubled, [1, 2, 3], module=__name__) as later:
        assert later.result() == [2, 4, 6]
    with Beside(_pid, module=__name__) as later:
        assert later.result() != os.getpid()


def test_an_exception_in_the_worker_is_raised_here_with_its_message() -> None:
    with Beside(_refused, "row 7", module=__name__) as later, pytest.raises(ValueError, match="refused: row 7"):
        later.result()


def test_a_worker_that_dies_is_not_a_failure_the_call_is_made_here(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="core.processes"), Beside(_dies_in_a_worker, 41, module=__name__) as later:
        assert later.result() == 42
    assert "a worker process died" in caplog.text and "_dies_in_a_worker" in caplog.text
