"""core.threads: work beside the caller's, and the cores a process may use."""

from __future__ import annotations

import threading

import pytest

from core.threads import beside


def test_work_beside_runs_in_another_thread_and_gives_its_result() -> None:
    caller = threading.get_ident()
    with beside(lambda a, b: (threading.get_ident(), a + b), 2, 3) as done:
        here = threading.get_ident()
    worker, total = done.result()
    assert total == 5 and here == caller and worker != caller


def test_an_error_beside_is_raised_to_the_caller() -> None:
    def fails() -> None:
        raise ValueError("a row the thread could not read")

    with pytest.raises(ValueError, match="could not read"), beside(fails) as done:
        done.result()
