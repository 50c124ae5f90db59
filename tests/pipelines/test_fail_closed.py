"""Fault injection: a nightly sync nobody watches must fail closed.

Each case breaks one thing the way districts have seen it break, runs the sync from the command
line, and shows the exit code, the message, that the last publication (warehouse, products, audit
log, person ids) is intact, and that the next run with the fault gone recovers with no manual step.
"""

from __future__ import annotations

import hashlib
import sqlite3

import duckdb
import openpyxl
import pandas as pd
import pytest

from core.home import DataHome
from pipelines.cli import main, run_pipeline
from pipelines.storage import stored_frame

pytestmark = pytest.mark.integration


def publication(home: DataHome) -> dict[str, str]:
    """sha256 of everything a publication consists of: the warehouse, each product, the audit log."""
    files = [home.warehouse_file, home.audit_log_file, *sorted(home.shared_dir.glob("*.parquet"))]
    return {str(path.relative_to(home.root)): hashlib.sha256(path.read_bytes()).hexdigest() for path in files}


def person_ids(home: DataHome) -> pd.Series:
    with duckdb.connect(str(home.warehouse_file), read_only=True) as con:
        return con.execute("SELECT record_id, person_id FROM record_person").df().set_index("record_id")["person_id"]


def run(home: DataHome, *extra: str) -> int:
    return main(["run", "--home", str(home.root), *extra])


def validation(home: DataHome, run_id_sql: str = "(SELECT max(run_id) FROM runs)") -> pd.DataFrame:
    with duckdb.connect(str(home.warehouse_file), read_only=True) as con:
        return con.execute(
            "SELECT suite, expectation, expectation_success, why FROM validation_results v "
            "WHERE run_id = (SELECT run_id FROM runs ORDER BY published_at DESC LIMIT 1)").df()


def truncate_csv(path, keep_rows: int, encoding: str) -> int:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)
    frame.iloc[:keep_rows].to_csv(path, index=False, encoding=encoding)
    return len(frame)


def assert_blocked_and_intact(home: DataHome, before: dict[str, str], ids: pd.Series, rc: int, out: str) -> None:
    assert rc == 1
    assert "FAILED" in out and "previous publication, kept because this run failed" in out
    assert publication(home) == before
    pd.testing.assert_series_equal(person_ids(home), ids)


def test_a_truncated_csv_blocks_and_the_next_full_run_keeps_every_person_id(demo_copy, capsys):
    home = demo_copy.home
    before, ids = publication(home), person_ids(home)
    health = home.demo_dir / "health_visits.csv"
    original = health.read_bytes()
    rows = truncate_csv(health, 10, "gbk")

    rc = run(home)
    out = capsys.readouterr().out

    assert_blocked_and_intact(home, before, ids, rc, out)
    assert f"{'health':<20}{10:>10}" in out
    assert "row_drop" in out and f"vs {rows} in the last publication" in out
    report = home.latest_report.read_text(encoding="utf-8")
    assert "Publication blocked" in report and "row_drop" in report

    health.write_bytes(original)
    assert run(home) == 0
    after = person_ids(home)
    assert after.reindex(ids.index).equals(ids)


def test_a_database_table_cut_to_a_few_rows_blocks(demo_copy, capsys):
    home = demo_copy.home
    before, ids = publication(home), person_ids(home)
    with sqlite3.connect(home.demo_dir / "civil_affairs.sqlite") as db:
        db.execute("DELETE FROM mz_resident WHERE rowid > 5")

    rc = run(home)

    assert_blocked_and_intact(home, before, ids, rc, capsys.readouterr().out)


def test_half_a_census_blocks_and_a_confirmed_drop_publishes_and_is_kept(demo_copy, capsys):
    home = demo_copy.home
    before, ids = publication(home), person_ids(home)
    census = home.demo_dir / "census_extract.csv"
    rows = truncate_csv(census, None, "utf-8-sig")
    truncate_csv(census, rows // 2, "utf-8-sig")

    assert_blocked_and_intact(home, before, ids, run(home), capsys.readouterr().out)

    assert run(home, "--accept-drop", "census", "--by", "wang.fang") == 0
    checks = validation(home)
    [drop] = checks[(checks["suite"] == "staged_census") & (checks["expectation"] == "row_drop")].itertuples()
    assert drop.expectation_success and "accepted by wang.fang" in drop.why


def test_a_flood_of_quarantined_rows_blocks(demo_copy, capsys):
    home = demo_copy.home
    before, ids = publication(home), person_ids(home)
    health = home.demo_dir / "health_visits.csv"
    frame = pd.read_csv(health, dtype=str, keep_default_na=False, encoding="gbk")
    frame.loc[frame.index % 2 == 0, "dob"] = "#VALUE!"  # an Excel formula error pasted over half the dates
    frame.to_csv(health, index=False, encoding="gbk")

    rc = run(home)
    out = capsys.readouterr().out

    assert_blocked_and_intact(home, before, ids, rc, out)
    assert "quarantine_share" in out


def test_an_emptied_consent_registry_blocks(demo_copy, capsys):
    home = demo_copy.home
    before, ids = publication(home), person_ids(home)
    registry = home.demo_dir / "consent_registry.parquet"
    pd.read_parquet(registry).iloc[0:0].to_parquet(registry, index=False)

    rc = run(home)
    out = capsys.readouterr().out

    assert_blocked_and_intact(home, before, ids, rc, out)
    assert "consent_registry" in out


def test_excel_float_ids_are_quarantined_naming_excel_never_staged_as_another_id(demo_copy):
    home = demo_copy.home
    workbook_path = home.demo_dir / "justice_cases.xlsx"
    workbook = openpyxl.load_workbook(workbook_path)
    sheet = workbook["在册人员"]
    column = [cell.value for cell in sheet[1]].index("身份证号") + 1
    cell = next(sheet.cell(row, column) for row in range(2, sheet.max_row + 1)
                if isinstance(sheet.cell(row, column).value, str) and len(sheet.cell(row, column).value) == 18)
    typed = cell.value
    cell.value = float(typed)  # what Excel keeps of an ID typed into a cell formatted as a number
    workbook.save(workbook_path)

    outcome = run_pipeline(demo_copy)

    report = outcome.reports["justice"]
    assert report.quarantine_rules.get("excel_number_id") == 1
    quarantine = stored_frame(home, "quarantine_justice")
    [row] = quarantine[quarantine["rule"] == "excel_number_id"].itertuples()
    assert "Excel" in row.message and "文本" in row.message
    staged = stored_frame(home, "staged_justice")
    assert str(int(float(typed))) not in set(staged["id_number"].dropna())


def test_absurd_names_and_a_cut_off_last_row_are_quarantined_not_staged(demo_copy):
    home = demo_copy.home
    health = home.demo_dir / "health_visits.csv"
    frame = pd.read_csv(health, dtype=str, keep_default_na=False, encoding="gbk")
    frame.loc[0, "patient_name"] = "张" * 512_000
    frame.to_csv(health, index=False, encoding="gbk")
    census = home.demo_dir / "census_extract.csv"
    text = census.read_text(encoding="utf-8-sig").rstrip("\n")
    census.write_text(text[: text.rfind(",")], encoding="utf-8-sig")  # the transfer stopped mid-row

    outcome = run_pipeline(demo_copy)

    assert outcome.reports["health"].quarantine_rules.get("implausible_name") == 1
    assert outcome.reports["census"].quarantine_rules.get("truncated_row") == 1
    staged = stored_frame(home, "staged_health")
    assert staged["name"].str.len().max() <= 64
