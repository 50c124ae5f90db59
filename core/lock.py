"""One run at a time per data home: an OS lock the kernel releases when its holder dies.

Two syncs on one data home would read each other's intermediate files and overwrite each other's
publication. :func:`hold_data_home` takes an exclusive ``flock`` on the home's lock file before
anything is read and keeps it for the whole run; a second run fails at once with a
:class:`DataHomeBusyError` naming the run, process and start time that hold it. A holder killed with
``kill -9`` holds nothing: the kernel drops the lock with the process, and the next run simply takes
it. Re-entrant within one process (the CLI takes the lock, then Dagster's resource asks again).

Example:
    >>> with hold_data_home(home, run_id="2f1c…"):     # doctest: +SKIP
    ...     run_the_sync()
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from core.errors import TransientError
from core.home import DataHome, HomeLike
from core.vocabulary import DISTRICT_TIME_ZONE

__all__ = ["DataHomeBusyError", "hold_data_home", "lock_holder"]

log = logging.getLogger(__name__)

# Locks this process holds, by lock file: taking one again (the CLI, then Dagster's resource) nests.
_HELD: dict[Path, int] = {}


class DataHomeBusyError(TransientError):
    """Another run holds the data home; it is worth trying again once that run has finished."""


def lock_holder(home: HomeLike) -> dict[str, object] | None:
    """Who last took the lock (``run_id``, ``pid``, ``host``, ``started_at``), as written in the lock file."""
    path = DataHome.at(home).lock_file
    try:
        return json.loads(path.read_text(encoding="utf-8") or "null")
    except (OSError, json.JSONDecodeError):
        return None


@contextmanager
def hold_data_home(home: HomeLike, run_id: str) -> Iterator[bool]:
    """Hold the data home's run lock while the block runs.

    Yields:
        ``True`` if this call took the lock, ``False`` if this process already held it (nested).

    Raises:
        DataHomeBusyError: another process holds it; the message names its run, PID, host and start.
    """
    home = DataHome.at(home)
    path = home.lock_file
    if path in _HELD:
        yield False
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as e:
        os.close(fd)
        raise DataHomeBusyError(_busy_message(home, lock_holder(home))) from e
    try:
        holder = {"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(),
                  "started_at": datetime.now(UTC).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode("utf-8"), 0)
        _HELD[path] = fd
        log.info("run %s holds %s", run_id, home.root)
        yield True
    finally:
        _HELD.pop(path, None)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _busy_message(home: DataHome, holder: dict[str, object] | None) -> str:
    who = (f"run {holder.get('run_id')} (PID {holder.get('pid')} on {holder.get('host')}, started "
           f"{_district_time(holder.get('started_at'))})") if holder else "another process"
    return (f"the data home {home.root} is in use by {who}; only one run at a time may use a data home. "
            "Wait for it to finish and run again; if that process is gone, the system has already released "
            "the lock and the next run takes it")


def _district_time(stamp: object) -> str:
    """A lock's start (UTC, as written) on the district's clock, which the data team's own is."""
    try:
        started = datetime.fromisoformat(str(stamp))
    except ValueError:
        return f"{stamp} UTC"
    return f"{started.astimezone(ZoneInfo(DISTRICT_TIME_ZONE)):%Y-%m-%d %H:%M:%S} Beijing time"
