"""The supervisors' report in a real browser: headless Chromium (Debian's ``chromium`` package).

The report must load from a file with no network, log no console errors, draw its charts and show
one scorecard row per department. A screenshot is kept in the test's tmp dir (path printed).
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
PERSON_SOURCES = ("census", "civil_affairs", "health", "justice")


def _install_chromium() -> str | None:
    """Install Debian's chromium when absent (CI runs as root); return why it is unavailable, or None."""
    if Path(CHROMIUM).exists():
        return None
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return "chromium is absent and cannot be installed here (needs apt-get as root)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    if subprocess.run(install, env=env, capture_output=True, timeout=600).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=600)
        done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            return f"apt-get install chromium failed: {done.stderr[-500:]}"
    return None if Path(CHROMIUM).exists() else "apt-get reported success but /usr/bin/chromium is missing"


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> str:
    # Parallel workers (pytest-xdist) share the session's temporary root: one installs, the others
    # wait for it instead of failing on dpkg's lock.
    with open(tmp_path_factory.getbasetemp().parent / "chromium-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        problem = _install_chromium()
    if problem:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    return CHROMIUM


def _chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", f"--user-data-dir={profile}",
             "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", "--window-size=1300,2600"]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=120)


_CONSOLE_ERROR = re.compile(r"Uncaught|CONSOLE.*(?:Error|error)|ERR_FILE_NOT_FOUND|net::ERR_")


def console_errors(stderr: str) -> list[str]:
    """Lines of Chromium's log that are page errors (uncaught exceptions, console errors, failed loads)."""
    return [line for line in stderr.splitlines() if _CONSOLE_ERROR.search(line)]


def test_report_loads_without_errors_draws_charts_and_scores_every_department(published_demo, chromium, tmp_path):
    settings, outcome = published_demo
    report = settings.home.report_file(outcome.run_id)
    url = report.resolve().as_uri()
    source = report.read_text(encoding="utf-8")
    # Offline: nothing is fetched from anywhere but plotly.js, read once per data home from beside the report.
    assert re.search(r"<script[^>]+src=\"(?!plotly\.min\.js\")|<link[^>]+href=|<img[^>]+src=\"?http", source) is None
    assert 'src="plotly.min.js"' in source and settings.home.report_script_file.stat().st_size > 1_000_000
    assert len(source) < 1_000_000  # not 4.8 MB a run any more

    dom = _chromium(chromium, tmp_path / "profile-dom", "--dump-dom", url)
    shot = tmp_path / "quality-report.png"
    screenshot = _chromium(chromium, tmp_path / "profile-shot", f"--screenshot={shot}", url)
    print(f"report screenshot: {shot}")

    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console_errors(dom.stderr) == [] and console_errors(screenshot.stderr) == []
    html = dom.stdout
    rows = re.findall(r'<tr class="scorecard-row" data-source="([a-z_]+)"', html)
    assert sorted(rows) == list(PERSON_SOURCES)
    # plotly draws into <svg class="main-svg"> only when its script loaded and ran in the page.
    for chart in ("trend-scores", "trend-quarantine"):
        drawn = html.split(f'id="{chart}"', 1)[1].split("</figure>", 1)[0]
        assert 'class="main-svg"' in drawn and ("scatterlayer" in drawn or "barlayer" in drawn), chart
    assert shot.exists() and shot.stat().st_size > 10_000


def test_console_errors_are_caught(chromium, tmp_path):
    # The check above would be worthless if a broken page passed it.
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><html><body><script>undefinedFunction()</script></body></html>", encoding="utf-8")
    result = _chromium(chromium, tmp_path / "profile", "--dump-dom", page.resolve().as_uri())
    assert any("Uncaught" in line for line in console_errors(result.stderr)), result.stderr[-2000:]
