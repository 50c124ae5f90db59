"""The supervisors' report in a real browser: headless Chromium (Debian's ``chromium`` package) with
Debian's CJK fonts (``fonts-noto-cjk``).

The report must load from a file with no network, log no console errors, draw its charts, show one
scorecard row per department, show no English word outside <code> and proper nouns (the legends
plotly draws included), and draw its Chinese in a CJK font rather than as tofu boxes. A screenshot
is kept in the test's tmp dir (path printed).

Both packages are installed when absent (CI runs ``.ci/run`` as root on a fresh Debian machine);
under ``CI=true`` a package that cannot be installed fails the tests instead of skipping them.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from quality.texts import ReportTexts
from tests.debian import require_packages
from tests.quality.conftest import english_words

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
PERSON_SOURCES = ("census", "civil_affairs", "grid_updates", "health", "justice")
TEMPLATE = Path(__file__).resolve().parents[2] / "quality" / "templates" / "report.html.j2"


def _cjk_fonts() -> list[str]:
    """Font families fontconfig offers for Chinese (empty without fontconfig or without such a font)."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return []
    listed = subprocess.run([fc_list, ":lang=zh", "family"], capture_output=True, text=True, timeout=60).stdout
    return [line for line in listed.splitlines() if line.strip()]


_PACKAGES = {"chromium": lambda: Path(CHROMIUM).exists(), "fonts-noto-cjk": lambda: bool(_cjk_fonts())}
"""Debian package -> whether what the tests need from it is present."""


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> str:
    require_packages(_PACKAGES, tmp_path_factory.getbasetemp().parent)
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
    # What a supervisor sees is Chinese: the page as drawn, plotly's legends and axes included.
    assert english_words(html) == []
    # Nor plotly's mode bar, whose buttons are titled in English ("Download plot as a png", "Share chart...").
    assert "modebar-btn" not in html and "Share chart" not in html
    legends = set(re.findall(r'class="legendtext"[^>]*>([^<]+)<', html))
    assert legends == {"民政", "卫健", "司法", "人口普查", "政务服务", "网格"}
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


_LINE = 60
"""Height in pixels of each line of the font sample page."""


def _sample(binary: str, tmp_path: Path, name: str, lines: tuple[str, ...], env: dict | None = None) -> list[bytes]:
    """A screenshot of ``lines``, one per :data:`_LINE` pixels, set in the report's own font stack: its pixel rows."""
    families = re.search(r"body \{ font-family: ([^;]+);", TEMPLATE.read_text(encoding="utf-8")).group(1)
    page = tmp_path / f"{name}.html"
    page.write_text(f'<!doctype html><html><head><meta charset="utf-8"><style>body {{ margin: 0; font-family: '
                    f'{families}; font-size: 32px }} p {{ margin: 0; height: {_LINE}px }}</style></head><body>'
                    + "".join(f"<p>{line}</p>" for line in lines) + "</body></html>", encoding="utf-8")
    shot = tmp_path / f"{name}.png"
    # Headless Chromium counts its (invisible) toolbar in the window size: leave room below the lines.
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=320,300", f"--screenshot={shot}"]
    done = subprocess.run([binary, *flags, page.resolve().as_uri()], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    return _pixel_rows(shot.read_bytes())


def _pixel_rows(png: bytes) -> list[bytes]:
    """The pixel rows of an 8-bit, non-interlaced RGB(A) PNG (what Chromium writes), unfiltered: no imaging library."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", ()
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", png[pos + 8:pos + 8 + length])
        elif kind == b"IDAT":
            idat += png[pos + 8:pos + 8 + length]
        pos += 12 + length
    width, height, depth, colour, _, _, interlaced = header
    assert depth == 8 and colour in (2, 6) and not interlaced, header
    bpp = 4 if colour == 6 else 3
    raw, stride = zlib.decompress(idat), width * bpp
    rows, previous = [], bytearray(stride)
    for y in range(height):
        method, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - bpp] if x >= bpp else 0
            up, corner = previous[x], previous[x - bpp] if x >= bpp else 0
            if method == 1:
                line[x] = (line[x] + left) & 255
            elif method == 2:
                line[x] = (line[x] + up) & 255
            elif method == 3:
                line[x] = (line[x] + (left + up) // 2) & 255
            elif method == 4:
                guess = left + up - corner
                near = min((abs(guess - left), 0, left), (abs(guess - up), 1, up), (abs(guess - corner), 2, corner))
                line[x] = (line[x] + near[2]) & 255
        rows.append(bytes(line))
        previous = line
    return rows


def _inked(rows: list[bytes]) -> bool:
    """Whether anything darker than the white page is drawn."""
    return any(value < 200 for row in rows for value in row)


def _fonts_without_cjk(tmp_path: Path) -> Path:
    """A fontconfig file offering every installed font but the CJK ones: what a machine without them sees."""
    listed = subprocess.run(["fc-list", "--format", "%{file}\\n"], capture_output=True, text=True, timeout=60).stdout
    dirs = sorted({str(Path(f).parent) for f in listed.splitlines() if f and "cjk" not in f.lower()})
    config = tmp_path / "fonts-without-cjk.conf"
    config.write_text('<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
                      + "".join(f"<dir>{d}</dir>" for d in dirs)
                      + f"<cachedir>{tmp_path / 'fontconfig-cache'}</cachedir></fontconfig>", encoding="utf-8")
    return config


def test_the_reports_chinese_is_drawn_in_a_cjk_font_not_as_tofu(chromium, tmp_path):
    assert _cjk_fonts(), "fontconfig offers no font for Chinese"
    title = ReportTexts("zh")("title")  # 数据质量报告, the report's own heading
    # As many characters no font has (Supplementary Private Use Area-A): drawn as missing-glyph boxes, tofu.
    tofu = "".join(chr(0xF0000 + i) for i in range(len(title)))
    rows = _sample(chromium, tmp_path, "with-cjk", (title, tofu))
    chinese, boxes = rows[:_LINE], rows[_LINE:2 * _LINE]
    assert _inked(chinese) and _inked(boxes)  # the page is not blank ...
    assert chinese != boxes  # ... and the heading is glyphs, not the boxes a missing font leaves

    # The same check on a machine without the CJK fonts sees the heading drawn as boxes: it can fail.
    without = {"FONTCONFIG_FILE": str(_fonts_without_cjk(tmp_path))}
    rows = _sample(chromium, tmp_path, "without-cjk", (title, tofu), without)
    assert _inked(rows[:_LINE]) and rows[:_LINE] == rows[_LINE:2 * _LINE]
