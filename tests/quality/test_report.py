"""Report pieces that need no browser: masking, the CLI re-render, a report with no history."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from core.home import DataHome
from pipelines.cli import main
from publish import WarehouseReader
from quality import render_blocked_report
from quality.report import mask_message, mask_value
from quality.texts import LANGUAGES, REPORT_TEXTS, ReportTexts
from tests.quality.conftest import chinese_characters, english_words, visible_text


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
    assert html.count('class="scorecard-row"') == 5 and "plotly" in html
    assert '<html lang="zh-CN">' in html and english_words(html) == []

    # The platform team asks for the same report in English.
    assert main(["report", "--home", str(demo_copy.home), "--lang", "en"]) == 0
    english = (reports / "latest.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in english and "<h1>Data quality report</h1>" in english
    assert "why it matters" in english and "数据质量报告" not in english
    assert english.count('class="scorecard-row"') == 5 and len(english_words(english)) > 200


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
    assert 'id="blocked"' not in html and "本次运行未发布" not in html and html.count('class="scorecard-row"') == 5


def test_every_message_the_template_asks_for_exists_in_every_language():
    ids = {lang: set(REPORT_TEXTS[lang]) for lang in LANGUAGES}
    assert ids["zh"] == ids["en"] and len(ids["zh"]) > 60
    template = (Path(__file__).resolve().parents[2] / "quality" / "templates" / "report.html.j2").read_text(encoding="utf-8")
    asked = set(re.findall(r"""\bt\(["']([a-z_.]+)["']\s*[,)]""", template))
    assert len(asked) > 50 and asked - ids["zh"] == set()
    # A Chinese message must not slip English in (a code name belongs in <code>, outside the message).
    shown = {k: re.sub(r"\{\w+\}", "", text) for k, text in REPORT_TEXTS["zh"].items() if k != "html_lang"}
    assert [k for k, text in shown.items() if english_words(f"<p>{text}</p>")] == []
    with pytest.raises(ValueError, match="choose one of zh, en"):
        ReportTexts("fr")


def test_english_words_are_found_outside_code_and_proper_nouns():
    # The check the report is held to, shown failing on what the report used to say.
    assert english_words("<p>人口普查 census: <code>silobreaker quarantine export</code> Great Expectations</p>") == ["census"]
    assert english_words("<p>未通过 FAIL</p><script>var x = 'pass'</script><style>td { color: red }</style>") == ["FAIL"]


@pytest.mark.integration
def test_the_published_report_is_chinese_with_whole_counts_and_says_why_health_uniqueness_is_low(published_demo):
    settings, outcome = published_demo
    html = settings.home.report_file(outcome.run_id).read_text(encoding="utf-8")
    assert english_words(html) == [] and chinese_characters(html) > 2000
    text = visible_text(html)
    assert not re.search(r"\bnan\b|\bNone\b|\d\.0(?![\d%])", text)  # no 7260.0, nan or None shown
    validation = html.split('id="validation"', 1)[1].split("</table>", 1)[0]
    counts = re.findall(r'</td>\s*<td class="num">([^<]*)</td>\s*<td class="num">', validation)
    assert len(counts) > 40 and all(re.fullmatch(r"—|\d{1,3}(,\d{3})*", c) for c in counts), counts
    assert "通过" in validation and "pass" not in visible_text(validation)
    # Department labels instead of source codes, in the tables and the chart legends alike.
    assert ">census<" not in html
    legends = {json.loads(f'"{name}"') for name in re.findall(r'"name":"((?:[^"\\]|\\.)*)"', html)}
    assert legends == {"民政", "卫健", "司法", "人口普查", "政务服务", "网格"}
    # The visit log's uniqueness is low by design: the note sits in its cell, nowhere else.
    notes = {source: "唯一性低属正常" in cell for source, cell in re.findall(
        r'<tr class="scorecard-row" data-source="(\w+)">.*?data-dimension="uniqueness">(.*?)</td>', html, flags=re.S)}
    assert notes == {"census": False, "civil_affairs": False, "health": True, "justice": False, "grid_updates": True}
    assert "按设计每次就诊一行，唯一性低属正常，不计入综合得分和等级" in html


def test_the_trend_charts_leave_out_a_visit_logs_ungraded_uniqueness():
    from quality.report import _drawn_scores

    metrics = pd.DataFrame([
        ("r1", "health", "uniqueness", "score", 0.537), ("r1", "health", "uniqueness", "one_row_per:visit", None),
        ("r1", "health", "completeness", "score", 0.9), ("r1", "census", "uniqueness", "score", 0.99),
        ("r2", "health", "uniqueness", "score", 0.6), ("r0", "census", "uniqueness", "score", 0.5),
    ], columns=["run_id", "source", "dimension", "measure", "value"])
    drawn = _drawn_scores(metrics, {"r1": 0, "r2": 1})
    # r2's health declared no visit grain that run, so it is drawn; r0 is not among the runs charted.
    assert sorted(zip(drawn["run_id"], drawn["source"], drawn["dimension"])) == [
        ("r1", "census", "uniqueness"), ("r1", "health", "completeness"), ("r2", "health", "uniqueness")]
