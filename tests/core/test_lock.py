"""The data home's run lock, as the data team meets it when a second run starts."""

from __future__ import annotations

import fcntl
import json
import os

import pytest

from core.home import DataHome
from core.lock import DataHomeBusyError, hold_data_home


def test_a_busy_home_names_its_holder_and_when_it_started_on_the_districts_clock(tmp_path):
    # Was: "started 2026-12-06T15:00:00+00:00 UTC", eight hours off the clock on the data team's wall.
    home = DataHome.at(tmp_path)
    fd = os.open(home.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, json.dumps({"run_id": "nightly-1", "pid": 4242, "host": "etl01",
                                 "started_at": "2026-12-06T15:00:00+00:00"}).encode())
        with pytest.raises(DataHomeBusyError) as busy, hold_data_home(tmp_path, "second"):
            pass
    finally:
        os.close(fd)
    assert "run nightly-1 (PID 4242 on etl01, started 2026-12-06 23:00:00 Beijing time)" in str(busy.value)
