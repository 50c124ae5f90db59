"""The data team's `dg` command loads the project's definitions, as `dg dev` serves them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_dg_check_defs_loads_the_project(tmp_path):
    dg = Path(sys.executable).parent / "dg"
    # As docs/operations.md writes it: VIRTUAL_ENV names the venv dg runs from.
    env = {**os.environ, "SILOBREAKER_HOME": str(tmp_path), "DAGSTER_HOME": str(tmp_path / "dagster"),
           "VIRTUAL_ENV": str(Path(sys.executable).parent.parent)}
    (tmp_path / "dagster").mkdir()
    done = subprocess.run([str(dg), "check", "defs", "--use-active-venv"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All definitions loaded successfully" in done.stdout + done.stderr
    # Users audit: without it dg printed "The active virtual environment does not match…" twice first.
    assert "does not match" not in done.stdout + done.stderr, done.stdout + done.stderr
