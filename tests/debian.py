"""Debian packages a test needs (chromium, CJK fonts, a Java runtime), installed when absent.

CI runs ``.ci/run`` as root on a fresh Debian machine: a test that needs a package installs it with
apt-get; under ``CI=true`` a package that cannot be installed fails the test instead of skipping it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

__all__ = ["JAVA", "require_packages"]

#: The Java runtime PySpark needs (the Spark engine's tests).
JAVA: dict[str, Callable[[], bool]] = {"openjdk-17-jre-headless": lambda: shutil.which("java") is not None}


def require_packages(packages: Mapping[str, Callable[[], bool]], lock_dir: Path) -> None:
    """Install the Debian ``packages`` (name -> whether what the tests need of it is present) that are
    absent; skip the calling test where they cannot be (fail under ``CI=true``).

    Parallel workers (pytest-xdist) share ``lock_dir``: one installs, the others wait for it instead of
    failing on dpkg's lock.
    """
    with open(lock_dir / "apt-get-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        problem = _install(packages)
    if problem:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(problem)
        pytest.skip(problem)


def _install(packages: Mapping[str, Callable[[], bool]]) -> str | None:
    """Why the packages are still unavailable after trying to install the missing ones, or None."""
    missing = [name for name, present in packages.items() if not present()]
    if not missing:
        return None
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return f"{', '.join(missing)} absent and cannot be installed here (needs apt-get as root)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    if subprocess.run(install, env=env, capture_output=True, timeout=900).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=600)
        done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            return f"apt-get install {' '.join(missing)} failed: {done.stderr[-500:]}"
    still = [name for name, present in packages.items() if not present()]
    return f"apt-get reported success but {', '.join(still)} is still missing" if still else None
