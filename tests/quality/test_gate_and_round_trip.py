"""The blocking gate keeps a broken source out, and quarantined rows come back once corrected."""

from __future__ import annotations

import hashlib
import re
import sqlite3

import dagster as dg
import duckdb
import pandas as pd
import pytest

from connectors import load_sources
from core.vocabulary import QUARANTINE_RULE_TEXTS
from pipelines.cli import main, run_pipeline
from pipelines.graph import build_definitions
from publish import WarehouseReader
from quality.corrections import ISSUE_COLUMNS, QUARANTINED, build_corrections
from quality.quarantine import write_department_file
from tests.quality.conftest import warehouse_path

pytestmark = pytest.mark.integration


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_thirty_percent_invalid_ids_block_publication_and_the_report_says_why(demo_copy):
    database = demo_copy.home.demo_dir / "civil_affairs.sqlite"
    with sqlite3.connect(database) as db:
        # Break the check digit of 30% of the 18-digit IDs: each stays well-formed, so no row is
        # quarantined, and only the source-level threshold (at most 10% invalid) can stop it. The system stamps
        # 更新时间 (gxsj, the watermark the demo reads this table by) on each row it updates.
        db.execute("""UPDATE mz_resident SET sfzh = substr(sfzh, 1, 17) || CASE substr(sfzh, 18, 1) WHEN '0' THEN '1' ELSE '0' END,
                             gxsj = datetime('now')
                      WHERE length(sfzh) = 18 AND rowid % 10 < 3""")
    before = sha256(warehouse_path(demo_copy))
    latest_before = demo_copy.home.latest_report.read_text(encoding="utf-8")

    outcome = run_pipeline(demo_copy)

    assert not outcome.success
    assert outcome.reports["civil_affairs"].validation.success is False
    assert all(outcome.reports[s].validation.success for s in ("health", "justice", "census"))
    assert sha256(warehouse_path(demo_copy)) == before
    with duckdb.connect(str(warehouse_path(demo_copy)), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [outcome.run_id]).fetchall()[0][0] == 0
    report = demo_copy.home.report_file(outcome.run_id).read_text(encoding="utf-8")
    assert report != latest_before
    assert demo_copy.home.latest_report.read_text(encoding="utf-8") == report
    blocked = report.split('id="blocked-reasons"', 1)[1].split("</table>", 1)[0]
    [row] = re.findall(r'<tr data-source="civil_affairs" data-expectation="expect_column_values_to_be_in_set" '
                       r'data-column="id_number_valid">(.*?)</tr>', blocked, flags=re.S)
    # In Chinese: the department, what is checked, what the data showed against what is allowed, and why.
    assert "民政" in row and "公民身份号码校验位正确" in row
    assert "不符合的不超过10%" in row and re.search(r"\d+\.\d%不符合（\d+行）", row)
    assert "本次运行未发布" in report and 'id="scorecard"' in report  # with the last publication below


def test_emptied_required_column_blocks_publication(demo_copy):
    census = demo_copy.home.demo_dir / "census_extract.csv"
    frame = pd.read_csv(census, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    frame["出生年月"] = ""
    frame.to_csv(census, encoding="utf-8-sig", index=False)
    before = sha256(warehouse_path(demo_copy))

    outcome = run_pipeline(demo_copy)

    assert not outcome.success
    failed = [o for o in outcome.reports["census"].validation.outcomes if not o.success]
    assert [(o.kind, o.column) for o in failed] == [("expect_column_values_to_not_be_null", "birth_date")]
    assert sha256(warehouse_path(demo_copy)) == before
    report = demo_copy.home.latest_report.read_text(encoding="utf-8")
    assert "birth_date" in report.split('id="blocked-reasons"', 1)[1].split("</table>", 1)[0]

    # Runs from the UI or the schedule get the same report from the run-failure sensor.
    demo_copy.home.latest_report.unlink()
    sensor = build_definitions(demo_copy).resolve_sensor_def("blocked_quality_report")
    with dg.DagsterInstance.from_config(str(demo_copy.home.dagster_dir)) as instance:
        [failure] = instance.all_logs(outcome.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        context = dg.build_run_status_sensor_context(
            sensor_name=sensor.name, dagster_event=failure.dagster_event, dagster_instance=instance,
            dagster_run=instance.get_run_by_id(outcome.run_id)).for_run_failure()
        sensor(context)
    again = demo_copy.home.latest_report.read_text(encoding="utf-8")
    assert "本次运行未发布" in again and "<code>stage_census" in again


def test_export_correct_reingest_shrinks_quarantine_and_counts_fixes(demo_copy, capsys):
    out = demo_copy.home.root / "to-fix" / "health.csv"
    assert main(["quarantine", "export", "--source", "health", "--home", str(demo_copy.home), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out

    exported = pd.read_csv(out, encoding="gbk", dtype=str, keep_default_na=False)
    source_file = demo_copy.home.demo_dir / "health_visits.csv"
    original = pd.read_csv(source_file, encoding="gbk", dtype=str, keep_default_na=False)
    assert list(exported.columns) == [*original.columns, *ISSUE_COLUMNS]
    exported = exported[exported["问题类型"] == QUARANTINED]
    fixable = exported[exported["问题说明"] == QUARANTINE_RULE_TEXTS["unparseable_birth_date"].problem].copy()
    assert len(fixable) > 0
    # The department looks the date up and corrects it; the ID number carries it here.
    fixable["dob"] = fixable["id_card"].str.slice(6, 10) + "-" + fixable["id_card"].str.slice(10, 12) + "-" + \
        fixable["id_card"].str.slice(12, 14)
    corrected = original.set_index("visit_id")
    corrected.loc[fixable["visit_id"], "dob"] = fixable.set_index("visit_id")["dob"]
    corrected.reset_index().to_csv(source_file, encoding="gbk", index=False)

    with duckdb.connect(str(warehouse_path(demo_copy)), read_only=True) as con:
        [(before,)] = con.execute("SELECT count(*) FROM quarantine WHERE source = 'health'").fetchall()

    outcome = run_pipeline(demo_copy)

    assert outcome.success, outcome.failures
    with duckdb.connect(str(warehouse_path(demo_copy)), read_only=True) as con:
        [(after,)] = con.execute("SELECT count(*) FROM quarantine WHERE source = 'health'").fetchall()
        [(fixed, previous)] = con.execute(
            "SELECT numerator, denominator FROM quality_metrics WHERE run_id = ? AND source = 'health' AND measure = 'fixed'",
            [outcome.run_id]).fetchall()
        staged = con.execute("SELECT count(*) FROM source_records WHERE record_id IN (SELECT 'health:' || unnest(?))",
                             [list(fixable["visit_id"])]).fetchall()[0][0]
        # What is newly quarantined is counted for every source read, 0 included (users audit: the report showed
        # 新增 — for a department with none beside 3 for another).
        new = dict(con.execute("SELECT source, numerator FROM quality_metrics WHERE run_id = ? AND measure = 'new'",
                               [outcome.run_id]).fetchall())
        was = dict(con.execute("SELECT source, denominator FROM quality_metrics WHERE run_id = ? AND measure = 'fixed'",
                               [outcome.run_id]).fetchall())
        read = {s for (s,) in con.execute("SELECT source FROM extraction_log WHERE run_id = ?", [outcome.run_id]).fetchall()}
        # The rows fixed end their span in the first run; every other one reaches this run.
        [(ended, ongoing)] = con.execute(
            "SELECT sum(rows) FILTER (WHERE last_run_id <> ?), sum(rows) FILTER (WHERE last_run_id = ?) "
            "FROM quarantine_history WHERE source = 'health'", [outcome.run_id, outcome.run_id]).fetchall()
    assert after == before - len(fixable)
    assert fixed == staged == len(fixable) and previous == before - _key_rule_rows(exported)
    assert (ended, ongoing) == (len(fixable), after)
    assert set(new) == read and new["health"] == 0  # corrected rows only: nothing new in health
    # last run's quarantine, 0 where there was none (re-check: was —); a consent registry's decisions are not person
    # records, whose fixing this measure sees
    assert set(was) == read - {"consent_registry"} and 0 in was.values()
    report = demo_copy.home.latest_report.read_text(encoding="utf-8")
    row = report.split('id="fixed"', 1)[1].split('data-source="health"', 1)[1].split("</tr>", 1)[0]
    assert f'<td class="num fixed-count">{len(fixable)}</td>' in row


def _key_rule_rows(exported: pd.DataFrame) -> int:
    key_problems = [QUARANTINE_RULE_TEXTS[r].problem for r in ("missing_source_key", "duplicate_source_key")]
    return int(exported["问题说明"].str.split("；").str[0].isin(key_problems).sum())


def test_xlsx_source_exports_a_workbook_with_its_sheet(published_demo, tmp_path):
    settings, _ = published_demo
    justice = next(s for s in load_sources(settings.sources_file).sources if s.name == "justice")
    quarantine = WarehouseReader(settings.home).quarantined_rows("justice")
    path = write_department_file(justice, build_corrections(justice, quarantine, None).rows, tmp_path / "justice.xlsx")
    workbook = pd.read_excel(path, sheet_name=None, dtype=str)
    assert list(workbook) == [justice.sheet]
    assert {"编号", "姓名", "身份证号", *ISSUE_COLUMNS} <= set(workbook[justice.sheet].columns)
