"""What every run does first on a data home: killed runs' folders cleaned, old reports pruned."""

from __future__ import annotations

import os
import stat

from assets.run_lifecycle import REPORTS_KEPT, begin_run, end_run
from core.home import DataHome


def test_a_run_removes_killed_runs_folders_and_keeps_the_newest_finished_one(tmp_path):
    home = DataHome.at(tmp_path)
    for number, run_id in enumerate(["old", "killed", "last"]):
        home.asset_base(run_id, ["staged_x"]).parent.mkdir(parents=True)
        if run_id != "killed":
            end_run(home, run_id)
        os.utime(home.run_dir(run_id), (1_000_000 + number, 1_000_000 + number))

    notes = begin_run(None, home, "now")

    assert sorted(p.name for p in home.runs_dir.iterdir()) == ["last", "now"]
    assert notes == ["removed the working files of run killed, which was killed before it ended"]


def test_only_the_newest_reports_are_kept(tmp_path):
    home = DataHome.at(tmp_path)
    home.reports_dir.mkdir(parents=True)
    for number in range(REPORTS_KEPT + 5):
        report = home.report_file(f"run{number:03d}")
        report.write_text("<html></html>", encoding="utf-8")
        os.utime(report, (1_000_000 + number, 1_000_000 + number))
    home.latest_report.write_text("<html></html>", encoding="utf-8")
    home.report_script_file.write_text("/* plotly */", encoding="utf-8")  # the oldest file, shared by all
    os.utime(home.report_script_file, (1, 1))

    begin_run(None, home, "now")

    kept = sorted(p.name for p in home.reports_dir.glob("quality-*.html"))
    assert len(kept) == REPORTS_KEPT and kept[0] == "quality-run005.html" and home.latest_report.exists()
    assert home.report_script_file.exists()


def test_a_run_takes_group_and_other_permissions_off_the_home(tmp_path):
    home = DataHome.at(tmp_path / "home")
    home.warehouse_dir.mkdir(parents=True, mode=0o755)
    loose = home.warehouse_dir / "left-from-before.duckdb"
    loose.write_bytes(b"x")
    loose.chmod(0o644)

    begin_run(None, home, "now")

    assert stat.S_IMODE(loose.stat().st_mode) == 0o600 and stat.S_IMODE(home.warehouse_dir.stat().st_mode) == 0o700


def test_a_publication_removes_the_intermediates_of_earlier_blocked_runs_too(tmp_path):
    # Seen: a blocked run's raw extracts (IDs, diagnoses) survived the next successful run.
    from assets.run_lifecycle import discard_intermediates

    home = DataHome.at(tmp_path)
    for run in ("blocked", "now"):
        base = home.asset_base(run, ["raw_health"])
        base.parent.mkdir(parents=True, exist_ok=True)
        base.with_suffix(".arrow").write_bytes(b"restricted")
        home.run_finished_marker(run).touch()
    discard_intermediates(home, "now")
    assert not home.asset_base("blocked", []).exists() and not home.asset_base("now", []).exists()
    assert home.run_finished_marker("blocked").exists()  # the record that the run happened stays


def test_a_run_marks_any_job_s_run_left_started_by_a_killed_process_as_failed(tmp_path):
    import dagster as dg

    home = DataHome.at(tmp_path)
    with dg.instance_for_test() as instance:
        for job in ("sync", "__ASSET_JOB"):  # the schedule's job, and "Materialize all" from the UI
            instance.add_run(dg.DagsterRun(job_name=job, run_id=f"killed-{job}", status=dg.DagsterRunStatus.STARTED))
        instance.add_run(dg.DagsterRun(job_name="sync", run_id="now", status=dg.DagsterRunStatus.STARTED))

        notes = begin_run(instance, home, "now")

        statuses = {run.run_id: run.status for run in instance.get_runs()}
    assert statuses == {"killed-sync": dg.DagsterRunStatus.FAILURE, "killed-__ASSET_JOB": dg.DagsterRunStatus.FAILURE,
                        "now": dg.DagsterRunStatus.STARTED}
    assert sum("killed before it finished" in note for note in notes) == 2


def test_a_file_gone_between_listing_and_chmod_is_no_failure(tmp_path, monkeypatch):
    # Seen: with the Dagster daemon on the home, a night ended in FileNotFoundError on dagster/…/schedules.db-wal,
    # a SQLite journal made and removed between the walk's listing and its stat.
    from pathlib import Path

    home = DataHome.at(tmp_path / "home")
    home.warehouse_dir.mkdir(parents=True)
    loose = home.warehouse_dir / "loose.duckdb"
    loose.write_bytes(b"x")
    loose.chmod(0o644)
    listing = Path.rglob
    monkeypatch.setattr(Path, "rglob", lambda self, pattern: [self / "dagster" / "gone.db-journal", *listing(self, pattern)])

    begin_run(None, home, "now")

    assert stat.S_IMODE(loose.stat().st_mode) == 0o600


def test_a_killed_run_marked_failed_by_the_next_gets_no_blocked_report(tmp_path):
    # Seen: the machine killed mid-run with the daemon up; the next run marked it failed, and the run-failure
    # sensor then wrote a report saying a check had blocked it, replacing latest.html of the newer publication.
    import dagster as dg

    from pipelines.definitions import build_definitions
    from pipelines.settings import DEMO_POLICY, DEMO_SOURCES, Settings

    settings = Settings(tmp_path, DEMO_SOURCES, DEMO_POLICY)
    home = settings.home
    home.reports_dir.mkdir(parents=True)
    home.latest_report.write_text("<html>the newer run's report</html>", encoding="utf-8")
    sensor = build_definitions(settings).resolve_sensor_def("blocked_quality_report")
    with dg.instance_for_test() as instance:
        instance.add_run(dg.DagsterRun(job_name="sync", run_id="killed", status=dg.DagsterRunStatus.STARTED))
        begin_run(instance, home, "now")
        [failure] = instance.all_logs("killed", of_type=dg.DagsterEventType.RUN_FAILURE)
        context = dg.build_run_status_sensor_context(
            sensor_name=sensor.name, dagster_event=failure.dagster_event, dagster_instance=instance,
            dagster_run=instance.get_run_by_id("killed")).for_run_failure()
        sensor(context)
    assert home.latest_report.read_text(encoding="utf-8") == "<html>the newer run's report</html>"
    assert not home.report_file("killed").exists()


def test_a_key_that_was_readable_is_named_with_what_to_do_about_it(tmp_path, caplog):
    """Privacy audit: a readable audit.key was made private with the advice `silobreaker keys rotate <recipient>`,
    which refuses any key but a product key ("no product key for 'audit'")."""
    home = DataHome.at(tmp_path / "home")
    home.keys_dir.mkdir(parents=True, mode=0o700)
    for path in (home.audit_key_file, home.product_key_file("health"), home.pseudonym_key_file("analysts"),
                 home.retired_product_key_file("clerks", "b48e423f")):
        path.write_bytes(os.urandom(32))
        path.chmod(0o644)

    begin_run(None, home, "now")

    said = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert "health.product.key" in said and "silobreaker keys rotate health" in said
    assert "audit.key" in said and "analysts.key" in said
    assert "keys rotate audit" not in said and "keys rotate analysts" not in said
    assert "no command replaces" in said
    # a retired key: rotating replaces the current one only (re-check)
    assert "clerks.product.key.b48e423f" in said and "keys rotate clerks" not in said and "stay readable" in said


def test_a_run_failed_by_dagster_itself_gets_a_report_saying_why(tmp_path):
    """Review: a run that Dagster's own monitoring fails (a lost run worker, a time-out) has no failed step or check;
    its report said nothing was published and gave no reason."""
    import dagster as dg

    from pipelines.definitions import build_definitions
    from pipelines.settings import DEMO_POLICY, DEMO_SOURCES, Settings

    settings = Settings(tmp_path, DEMO_SOURCES, DEMO_POLICY)
    sensor = build_definitions(settings).resolve_sensor_def("blocked_quality_report")
    with dg.instance_for_test() as instance:
        run = instance.add_run(dg.DagsterRun(job_name="sync", run_id="lost", status=dg.DagsterRunStatus.STARTED))
        instance.report_run_failed(run, "Run worker lost: process 4242 exited")
        [failure] = instance.all_logs("lost", of_type=dg.DagsterEventType.RUN_FAILURE)
        context = dg.build_run_status_sensor_context(
            sensor_name=sensor.name, dagster_event=failure.dagster_event, dagster_instance=instance,
            dagster_run=instance.get_run_by_id("lost")).for_run_failure()
        sensor(context)
    assert "Run worker lost: process 4242 exited" in settings.home.report_file("lost").read_text(encoding="utf-8")
