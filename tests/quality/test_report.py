"""Report pieces that need no browser: masking, the CLI re-render, a report with no history."""

from __future__ import annotations

import pytest

from core.home import DataHome
from pipelines.cli import main
from publish import WarehouseReader
from quality import render_blocked_report
from quality.report import mask_message, mask_value


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("name", "张伟", "张*"),
        ("name", "欧阳娜娜", "欧***"),
        ("id_number", "330106195001010012", "330106********0012"),
        ("phone", "13800000001", "138****0001"),
        ("address", "示范区西溪街道翠苑社区1幢", "示范区西溪街…"),
        ("birth_date", "1950-01-01", "1950-01-**"),
        ("birth_date", "1950-01", "1950-01"),
        ("sex", "M", "M"),
        ("name", None, ""),
    ],
)
def test_identifiers_are_masked(field, value, shown):
    assert mask_value(field, value) == shown


def test_long_numbers_in_messages_are_masked():
    message = "身份证号 '33010620241211017' has 17 characters; expected 18 (or the old 15)"
    assert mask_message(message) == "身份证号 '3301***********17' has 17 characters; expected 18 (or the old 15)"


@pytest.mark.integration
def test_report_command_rerenders_the_latest_published_run(demo_copy, capsys):
    reports = demo_copy.home.reports_dir
    for old in reports.glob("*.html"):
        old.unlink()
    assert main(["report", "--home", str(demo_copy.home)]) == 0
    [written] = [p for p in reports.glob("quality-*.html")]
    assert written.name.removeprefix("quality-").removesuffix(".html") in capsys.readouterr().out
    html = (reports / "latest.html").read_text(encoding="utf-8")
    assert html.count('class="scorecard-row"') == 4 and "plotly" in html


def test_report_command_without_a_warehouse_says_what_to_do(tmp_path, capsys):
    assert main(["report", "--home", str(tmp_path)]) == 2
    assert "silobreaker run" in capsys.readouterr().err


@pytest.mark.integration
def test_a_failed_run_that_did_publish_gets_its_ordinary_report(published_demo, tmp_path):
    settings, outcome = published_demo
    reader = WarehouseReader(settings.home)
    home = DataHome.at(tmp_path)
    path = render_blocked_report(home, outcome.run_id, {"quality_report": "disk full"}, {},
                                 reader.report_inputs(reader.last_run().run_id))
    assert path == home.report_file(outcome.run_id)
    html = path.read_text(encoding="utf-8")
    assert "Publication blocked" not in html and html.count('class="scorecard-row"') == 4
