"""Fault injection: a nightly sync nobody watches must fail closed.

Each case breaks one thing the way districts have seen it break, runs the sync from the command
line, and shows the exit code, the message, that the last publication (warehouse, products, audit
log, person ids) is intact, and that the next run with the fault gone recovers with no manual step.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import openpyxl
import pandas as pd
import pytest

import publish.generations as generations_module
from assets.blocked_report import run_failures
from core.errors import ConfigError
from core.home import DataHome
from pipelines.cli import EXIT_BUSY, main, run_pipeline
from pipelines.graph import build_definitions
from pipelines.settings import DEMO_POLICY, DEMO_SOURCES, Settings
from pipelines.storage import stored_frame
from publish import AuditLog, Generations

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


def pristine(home: DataHome) -> dict:
    """The demo's source files as they are now, to put back once a fault has been shown."""
    return {path: path.read_bytes() for path in home.demo_dir.iterdir() if path.is_file()}


def assert_recovers(home: DataHome, sources: dict, ids: pd.Series) -> None:
    """With the fault gone, the next run publishes with no manual step and every person keeps their id."""
    for path, content in sources.items():
        path.write_bytes(content)
    assert run(home) == 0
    assert person_ids(home).reindex(ids.index).equals(ids)


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
    assert "本次运行未发布" in report and 'data-expectation="row_drop"' in report and "读取行数没有骤减" in report

    health.write_bytes(original)
    assert run(home) == 0
    after = person_ids(home)
    assert after.reindex(ids.index).equals(ids)


def test_a_database_table_cut_to_a_few_rows_blocks(demo_copy, capsys):
    home = demo_copy.home
    before, ids, sources = publication(home), person_ids(home), pristine(home)
    with sqlite3.connect(home.demo_dir / "civil_affairs.sqlite") as db:
        db.execute("DELETE FROM mz_resident WHERE rowid > 5")

    rc = run(home)

    assert_blocked_and_intact(home, before, ids, rc, capsys.readouterr().out)
    assert_recovers(home, sources, ids)


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
    before, ids, sources = publication(home), person_ids(home), pristine(home)
    health = home.demo_dir / "health_visits.csv"
    frame = pd.read_csv(health, dtype=str, keep_default_na=False, encoding="gbk")
    frame.loc[frame.index % 2 == 0, "dob"] = "#VALUE!"  # an Excel formula error pasted over half the dates
    frame.to_csv(health, index=False, encoding="gbk")

    rc = run(home, "--json")
    captured = capsys.readouterr()

    assert rc == 1 and publication(home) == before
    pd.testing.assert_series_equal(person_ids(home), ids)
    summary = json.loads(captured.out)
    assert summary["success"] is False
    [blocked] = summary["blocked"]
    assert (blocked["subject"], blocked["check"]) == ("health", "quarantine_share") and "quarantined" in blocked["message"]
    assert [f["subject"] for f in summary["failures"]] == ["stage_health"]
    kept = summary["publication"]
    assert not kept["by_this_run"] and kept["run_id"] == Generations(home).current().run_id
    # The operator's console says which stage failed and what it kept from running.
    assert "清洗 stage health: " in captured.err and "失败 FAILED" in captured.err
    assert "未运行 not run: 归并 link, 发布 publish, 质量报告 report" in captured.err
    assert_recovers(home, sources, ids)


def test_an_emptied_consent_registry_blocks(demo_copy, capsys):
    home = demo_copy.home
    before, ids, sources = publication(home), person_ids(home), pristine(home)
    registry = home.demo_dir / "consent_registry.parquet"
    pd.read_parquet(registry).iloc[0:0].to_parquet(registry, index=False)

    rc = run(home)
    out = capsys.readouterr().out

    assert_blocked_and_intact(home, before, ids, rc, out)
    assert "consent_registry" in out
    assert_recovers(home, sources, ids)


def test_excel_float_ids_are_quarantined_naming_excel_never_staged_as_another_id(demo_copy):
    home = demo_copy.home
    before, ids, sources = publication(home), person_ids(home), pristine(home)
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
    # One row of a small sheet is more than 5% of it: the run is blocked, and the last publication stays.
    assert not outcome.success and publication(home) == before
    assert_recovers(home, sources, ids)


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

    assert outcome.success
    assert outcome.reports["health"].quarantine_rules.get("implausible_name") == 1
    assert outcome.reports["census"].quarantine_rules.get("truncated_row") == 1
    with duckdb.connect(str(home.warehouse_file), read_only=True) as con:
        longest = con.execute("SELECT max(length(name)) FROM source_records").fetchone()[0]
    assert longest <= 64
    # Published: the run's intermediate files (restricted data) are gone; the quarantine is in the warehouse.
    assert not home.asset_base(outcome.run_id, []).exists() and stored_frame(home, "staged_health") is None


# -- faults of the process and the disk: each case runs the sync in a child process and kills it ---------

REPO = Path(__file__).resolve().parents[2]


def faulty_run(point: str, home: DataHome, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.pipelines.faults", point, str(home.root), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=600)


def sync_runs(home: DataHome) -> list[dg.DagsterRun]:
    with dg.DagsterInstance.from_config(str(home.dagster_dir)) as instance:
        return list(instance.get_runs(dg.RunsFilter(job_name="sync")))


def audit_run_ids(home: DataHome) -> set[str]:
    return {entry["run_id"] for entry in AuditLog(home).entries()}


@pytest.mark.parametrize("point", ["build", "journal"])
def test_a_kill_before_the_switch_leaves_the_last_publication_whole_and_the_next_run_cleans_up(demo_copy, capsys,
                                                                                               point):
    home = demo_copy.home
    before, ids = publication(home), person_ids(home)

    killed = faulty_run(point, home)

    assert killed.returncode == -signal.SIGKILL
    assert publication(home) == before  # warehouse, every product and the audit log: the old generation, whole
    assert run(home) == 0
    out = capsys.readouterr().out
    assert "RECOVERED" in out and ("never finished" in out or "undid the publication" in out)
    # Said once (seen by an audit: each recovery also as a WARNING line of the same summary).
    recovered = [line.removeprefix("RECOVERED ") for line in out.splitlines() if line.startswith("RECOVERED ")]
    assert not [line for line in out.splitlines() if line.startswith("WARNING") and any(n in line for n in recovered)]
    assert AuditLog(home).verify().ok
    assert person_ids(home).reindex(ids.index).equals(ids)
    assert [r.status for r in sync_runs(home) if r.status == dg.DagsterRunStatus.STARTED] == []
    assert not any(p.name != Generations(home).current().name and not home.generation_record(p.name).exists()
                   for p in home.generations_dir.iterdir())


@pytest.mark.parametrize("torn", [False, True])
def test_a_kill_after_the_switch_publishes_whole_and_the_next_run_writes_its_audit_entries(demo_copy, capsys, torn):
    home = demo_copy.home
    before = publication(home)
    logged_before = audit_run_ids(home)

    killed = faulty_run("switch", home)

    assert killed.returncode == -signal.SIGKILL
    after = publication(home)
    assert after != before and after[str(home.audit_log_file.relative_to(home.root))] == before[
        str(home.audit_log_file.relative_to(home.root))]
    assert home.publication_journal.exists()
    if torn:
        # Seen: a run killed while it appended its entries left the log ending in part of one (the kernel stopped
        # the write at a page boundary), and every later run failed on reading that line.
        first = json.loads(home.publication_journal.read_text(encoding="utf-8"))["entries"][0]
        line = json.dumps(first, ensure_ascii=False, sort_keys=True).encode()
        with home.audit_log_file.open("ab") as log:
            log.write(line[: len(line) // 2])
    killed_run = Generations(home).current().run_id
    assert run(home) == 0
    assert "finished the publication of generation" in capsys.readouterr().out
    assert killed_run in audit_run_ids(home) - logged_before and AuditLog(home).verify().ok
    failed = [r for r in sync_runs(home) if r.run_id == killed_run]
    assert [r.status for r in failed] == [dg.DagsterRunStatus.FAILURE]


def test_an_audit_log_that_cannot_be_written_fails_the_run_and_the_next_run_completes_it(demo_copy, capsys):
    home = demo_copy.home
    logged_before = audit_run_ids(home)

    failed = faulty_run("audit-fails", home)

    assert failed.returncode == 1
    assert "audit entries could not be appended" in failed.stdout + failed.stderr
    published = Generations(home).current().run_id
    assert published not in audit_run_ids(home)
    assert run(home) == 0
    assert published in audit_run_ids(home) - logged_before and AuditLog(home).verify().ok


def test_a_disk_that_fills_during_the_build_keeps_the_last_publication(demo_copy):
    # (however the disk says it is full: tests/publish/test_warehouse.py)
    home = demo_copy.home
    before = publication(home)

    failed = faulty_run("disk-full", home)

    assert failed.returncode == 1
    assert "filled up" in failed.stdout and "free space on that disk" in failed.stdout
    assert publication(home) == before
    assert [p.name for p in home.generations_dir.iterdir()] == [Generations(home).current().name]


def test_a_run_storage_that_cannot_write_is_named_as_a_full_disk_and_the_next_run_goes_on(demo_copy, capsys):
    # Seen: with the disk full, Dagster's run storage under the home failed ("disk I/O error") and the run ended in
    # a traceback with nothing on stdout.
    home = demo_copy.home
    before = publication(home)

    failed = faulty_run("run-storage-full", home)

    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert "is full or failing" in failed.stderr and "Free space on that disk and run again" in failed.stderr
    assert publication(home) == before
    assert run(home) == 0


def test_too_little_disk_space_is_refused_before_building_with_the_numbers(demo_copy, capsys, monkeypatch):
    home = demo_copy.home
    before = publication(home)
    monkeypatch.setattr(generations_module.shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(10**9, 10**9, 1024))

    assert run(home) == 1

    out = capsys.readouterr().out
    assert "not enough disk space" in out and "MB are free" in out and "2.2× the" in out
    assert publication(home) == before


def test_a_second_run_exits_at_once_naming_the_holder_and_a_killed_holder_frees_the_home(demo_copy, capsys):
    home = demo_copy.home
    holder = subprocess.Popen([sys.executable, "-m", "tests.pipelines.faults", "hold", str(home.root)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert run(home) == EXIT_BUSY
        error = capsys.readouterr().err
        assert "run-held-by-the-test" in error and f"PID {holder.pid}" in error and "started" in error
    finally:
        holder.kill()
        holder.wait()
    assert run(home) == 0


def _damage(path: Path, how: str) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as damaged:
        if how == "overwritten":
            # Seen: a file damaged inside still opens, and its checksum errors then stopped every run.
            rng = np.random.default_rng(3)
            for offset in range(1 << 20, min(size, 16 << 20), 1 << 20):
                damaged.seek(offset)
                damaged.write(rng.bytes(4096))
        else:  # cut to half: the catalogue, in the first blocks, still reads
            damaged.truncate(size // 2)


@pytest.mark.parametrize("keep", ["half", "overwritten"])  # cut short (the catalogue still reads), damaged inside
def test_a_damaged_warehouse_is_reported_and_the_last_good_generation_carries_on(demo_copy, capsys, keep):
    home = demo_copy.home
    ids = person_ids(home)
    assert run(home) == 0
    first, second = [g.run_id for g in Generations(home).published()][-2:]
    _damage(home.warehouse_file, keep)
    capsys.readouterr()
    assert main(["audit", "verify", "--home", str(home.root)]) == 1
    out = capsys.readouterr().out  # seen: "agrees", read from the generation before under the damaged file's name
    assert "is damaged" in out and f"reading generation {Generations(home).published()[-2].name}" in out

    assert run(home) == 0

    assert "is damaged" in capsys.readouterr().out
    with duckdb.connect(str(home.warehouse_file), read_only=True) as con:
        runs = [r[0] for r in con.execute("SELECT run_id FROM runs ORDER BY published_at").fetchall()]
    assert first in runs and second not in runs  # its history was in the damaged file
    assert person_ids(home).reindex(ids.index).equals(ids)


def test_a_damaged_warehouse_with_nothing_whole_before_it_stops_the_run_naming_the_file_and_the_fix(demo_copy, capsys):
    # Seen: every later run failed with a traceback from whichever step read it first, and `audit verify` crashed.
    home = demo_copy.home
    assert len(Generations(home).published()) == 1
    _damage(home.warehouse_file, "half")
    before = publication(home)

    assert run(home) == 2  # not retried by a scheduler: a person must put the file back

    captured = capsys.readouterr()
    said = captured.out + captured.err
    assert "is damaged" in said and "no earlier generation is whole" in said and "from a backup" in said
    assert "Traceback" not in said
    assert publication(home) == before
    assert main(["audit", "verify", "--home", str(home.root)]) == 1
    out = capsys.readouterr().out
    assert "no earlier generation is whole" in out


@pytest.mark.parametrize("ending", ["garbage", "no newline"])
def test_an_audit_log_ending_in_something_else_than_an_entry_stops_the_run_before_it_reads(demo_copy, capsys,
                                                                                          ending):
    # Seen: the run read, staged and linked every source before its publish step found the log's last line.
    home = demo_copy.home
    if ending == "garbage":
        with home.audit_log_file.open("ab") as log:
            log.write(b'{"garbage": tru')
    else:  # a whole entry that lost its newline
        home.audit_log_file.write_bytes(home.audit_log_file.read_bytes()[:-1])
    before = publication(home)

    assert run(home) == 2

    error = capsys.readouterr().err
    assert ("is not an entry" if ending == "garbage" else "lacks its newline") in error
    assert "put back the log from that export" in error
    assert publication(home) == before
    assert "抽取 extract" not in error  # no source was read


def test_a_bad_policy_fails_before_anything_is_read_naming_file_line_and_key(demo_copy, tmp_path, capsys):
    home = demo_copy.home
    before = publication(home)
    runs_before = sorted(p.name for p in home.runs_dir.iterdir())
    policy = tmp_path / "policy.yaml"
    text = DEMO_POLICY.read_text(encoding="utf-8")
    policy.write_text(text.replace("    purpose: service_delivery\n", "    purpose: service_delivery\n    colums: [name]\n", 1),
                      encoding="utf-8")

    assert run(home, "--policy", str(policy)) == 2

    error = capsys.readouterr().err
    line = 1 + policy.read_text(encoding="utf-8").split("\n").index("    colums: [name]")
    assert str(policy) in error and f"line {line}, recipients[0].colums: unknown key (did you mean 'columns'?)" in error
    assert publication(home) == before and sorted(p.name for p in home.runs_dir.iterdir()) == runs_before
    assert run(home) == 0  # with the file put right, nothing else is needed


def test_restore_publishes_an_earlier_generation_again_and_the_audit_log_records_it(demo_copy, capsys):
    home = demo_copy.home
    first = publication(home)
    assert run(home) == 0
    generations = Generations(home).published()
    capsys.readouterr()

    assert main(["restore", "--json", "--home", str(home.root)]) == 0

    restored = json.loads(capsys.readouterr().out)["restored"]
    assert (restored["generation"], restored["run_id"]) == (generations[-2].name, generations[-2].run_id)
    assert Generations(home).current().name == generations[-2].name
    restored = publication(home)
    assert {k: v for k, v in restored.items() if "audit" not in k} == {k: v for k, v in first.items() if "audit" not in k}
    assert f"restore-{generations[-2].name}" in audit_run_ids(home) and AuditLog(home).verify().ok
    assert main(["restore", "--list", "--home", str(home.root)]) == 0
    assert "<- current" in capsys.readouterr().out


def test_the_linking_settings_file_decides_how_the_pipeline_links(demo_copy, tmp_path):
    strict = tmp_path / "linking.yaml"
    strict.write_text("version: 1\nmatch_probability: 0.999999\n", encoding="utf-8")

    assert run(demo_copy.home, "--linking", str(strict)) == 0

    with duckdb.connect(str(demo_copy.home.warehouse_file), read_only=True) as con:
        weakest = con.execute("SELECT min(match_weight) FROM link_pairs WHERE decision = 'link'").fetchone()[0]
    assert weakest >= 19.9  # log2(p / (1 - p)) of 0.999999; the default 0.999 links from 10 bits
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nmatch_probability: 1.5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"(?s)bad\.yaml: invalid linking settings.*line 2, match_probability"):
        build_definitions(Settings(demo_copy.home, DEMO_SOURCES, DEMO_POLICY, linking_file=bad))


def test_far_fewer_persons_block_even_when_each_source_drop_was_accepted(demo_copy, capsys):
    home = demo_copy.home
    before, ids = publication(home), person_ids(home)
    for name, encoding in (("census_extract.csv", "utf-8-sig"), ("health_visits.csv", "gbk")):
        truncate_csv(home.demo_dir / name, 3, encoding)

    rc = run(home, "--accept-drop", "census", "--accept-drop", "health")
    out = capsys.readouterr().out

    assert_blocked_and_intact(home, before, ids, rc, out)
    assert "FAILED record_person_map: persons_drop:" in out and "persons (−" in out
    assert run(home, "--accept-drop", "census", "--accept-drop", "health", "--accept-drop", "persons") == 0


def test_a_run_launched_by_dagster_itself_holds_the_home_too(demo_copy):
    # The UI and the schedule start the sync job without the CLI: the run_lock resource takes the lock.
    home = demo_copy.home
    job = build_definitions(demo_copy).resolve_job_def("sync")
    holder = subprocess.Popen([sys.executable, "-m", "tests.pipelines.faults", "hold", str(home.root)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with dg.DagsterInstance.ephemeral() as instance:
            blocked = job.execute_in_process(instance=instance, raise_on_error=False)
            failures = run_failures(instance, blocked.run_id)
        assert not blocked.success
        assert any("in use by run run-held-by-the-test" in message for message in failures.values())
    finally:
        holder.kill()
        holder.wait()
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance)
    assert result.success and home.run_finished_marker(result.run_id).exists()


def test_a_consent_decision_that_cannot_be_read_never_revives_anyone(demo_copy, capsys):
    # 注销 instead of the registry's 删除, 作废 for 撤回: words neither the registry's map nor the common
    # vocabulary knows. 撤销 is not in the map either, but registries commonly write it for 撤回.
    home = demo_copy.home
    with duckdb.connect(str(home.warehouse_file), read_only=True) as con:
        deleted = {r[0] for r in con.execute("SELECT person_id FROM deletion_requests").fetchall()}
    assert deleted
    registry = home.demo_dir / "consent_registry.parquet"
    decisions = pd.read_parquet(registry)
    withdrawals = decisions.index[decisions["status"] == "撤回"][:3]
    revoked = decisions.index[decisions["status"] == "撤回"][3:6]
    decisions.loc[decisions["status"] == "删除", "status"] = "注销"
    decisions.loc[withdrawals, "status"] = "作废"
    decisions.loc[revoked, "status"] = "撤销"
    decisions.to_parquet(registry, index=False)

    assert run(home) == 0  # a few unreadable rows among thousands: the district publishes, without them

    with duckdb.connect(str(home.warehouse_file), read_only=True) as con:
        problems = {r[0] for r in con.execute("SELECT person_id FROM consent_problems").fetchall()}
        excluded = con.execute("SELECT recipient, person_id FROM consent_exclusions "
                               "WHERE reason IN ('consent_unreadable', 'deleted')").df()
        withdrawn = {r[0] for r in con.execute(
            "SELECT person_id FROM consent_problems WHERE decision_id IN ("
            + ", ".join(f"'consent_registry:{k}'" for k in decisions.loc[withdrawals, "consent_id"]) + ")").fetchall()}
    assert deleted <= problems and len(withdrawn) >= 1
    with duckdb.connect(str(home.warehouse_file), read_only=True) as con:
        understood = con.execute(
            "SELECT DISTINCT status FROM consent_decisions WHERE record_id IN ("
            + ", ".join(f"'consent_registry:{k}'" for k in decisions.loc[revoked, "consent_id"]) + ")").fetchall()
    assert understood == [("withdrawn",)]
    analysts = set(excluded.loc[excluded["recipient"] == "statistics_analysts", "person_id"])
    # A deletion written 注销 still keeps them out of the analysts' table: the request read last run is
    # remembered ('deleted'), and the row it became is unreadable ('consent_unreadable').
    assert deleted <= analysts
    doctors = set(excluded.loc[excluded["recipient"] == "health_family_doctors", "person_id"])
    assert doctors <= problems
    out = capsys.readouterr().out
    assert "consent_registry" in out and "cannot be read" in out


def test_a_header_only_grid_form_publishes_and_keeps_every_earlier_report(demo_copy):
    # A quiet week: the clerk's new form is empty. Last week's deaths and moves must not come back to life.
    from connectors.grid_form import write_grid_update_form

    home = demo_copy.home

    def departed() -> dict[str, str]:
        with duckdb.connect(str(home.warehouse_file), read_only=True) as con:
            return dict(con.execute("SELECT person_id, residence_status FROM unified_population "
                                    "WHERE residence_status IN ('moved_out', 'deceased')").fetchall())

    before = departed()
    assert before, "the demo's form reports deaths and moves"
    write_grid_update_form(home.demo_dir / "grid_updates.xlsx")
    assert run(home) == 0
    assert departed() == before
    with duckdb.connect(str(home.warehouse_file), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM grid_updates").fetchone()[0] >= len(before)


def test_a_step_output_damaged_between_steps_fails_the_run_naming_the_file_and_the_next_run_publishes(
        demo_copy, capsys, monkeypatch):
    # A run's own frames (runs/<run>/) are read by the next step: one changed on disk in between (a failing disk)
    # must stop the run before anything is published from it, not be read as other persons.
    from pipelines.storage import FileIOManager

    home = demo_copy.home
    before, ids = publication(home), person_ids(home)
    write = FileIOManager.handle_output
    damaged: list[Path] = []

    def write_then_damage(self, context, obj):
        write(self, context, obj)
        if context.asset_key.path[-1] == "record_person_map":
            path = home.asset_base(context.run_id, context.asset_key.path).with_suffix(".arrow")
            data = bytearray(path.read_bytes())
            middle = len(data) // 2
            data[middle:middle + 3] = bytes(b ^ 0x5A for b in data[middle:middle + 3])
            path.write_bytes(bytes(data))
            damaged.append(path)

    monkeypatch.setattr(FileIOManager, "handle_output", write_then_damage)
    rc = run(home, "--full")
    out = capsys.readouterr().out

    assert damaged
    assert_blocked_and_intact(home, before, ids, rc, out)
    assert damaged[0].name in out and "changed since it was written" in out
    monkeypatch.setattr(FileIOManager, "handle_output", write)
    assert run(home) == 0
    assert person_ids(home).reindex(ids.index).equals(ids)
