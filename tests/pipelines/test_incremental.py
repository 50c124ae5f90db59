"""Incremental syncs (issue 14): an unchanged source is neither parsed nor staged again, and a run that
reuses kept stagings publishes what a run staging everything would."""

from __future__ import annotations

import shutil

import duckdb
import pandas as pd
import pytest

import assets.staged
from core.home import DataHome
from pipelines.cli import run_pipeline

pytestmark = pytest.mark.integration

CHANGED = "health"


@pytest.fixture
def staged_sources(monkeypatch) -> list[str]:
    """The sources a run stages (rather than reusing a kept staging), in the order it staged them."""
    calls: list[str] = []
    for name in ("stage_person_records", "stage_consent_records"):
        real = getattr(assets.staged, name)

        def spy(*args, _real=real, **kwargs):
            calls.append(kwargs["source"])
            return _real(*args, **kwargs)

        monkeypatch.setattr(assets.staged, name, spy)
    return calls


def published(home: DataHome) -> dict[str, pd.DataFrame]:
    """What a publication says about the records: each staged record, its person, the quarantine."""
    with duckdb.connect(str(home.warehouse_file), read_only=True) as con:
        return {
            "source_records": con.execute("SELECT * EXCLUDE (extracted_at) FROM source_records ORDER BY record_id").df(),
            "quarantine": con.execute(
                "SELECT * EXCLUDE (run_id, extracted_at) FROM quarantine ORDER BY source, row_number").df(),
            "extraction_log": con.execute(
                "SELECT source, row_count, content_hash, extracted_at FROM extraction_log "
                "WHERE run_id = (SELECT run_id FROM runs ORDER BY published_at DESC LIMIT 1) ORDER BY source").df(),
        }


def change_health_visits(home: DataHome) -> None:
    """A day's changes to one department's file: a corrected name, a record gone, a new visit."""
    path = home.demo_dir / "health_visits.csv"
    visits = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="gb18030")
    visits.loc[0, "patient_name"] = visits.loc[0, "patient_name"] + "华"
    new = visits.iloc[[2]].assign(visit_id=lambda v: v["visit_id"] + "9")
    pd.concat([visits.drop(index=1), new], ignore_index=True).to_csv(path, index=False, encoding="gb18030")


def test_an_unchanged_district_is_not_staged_again_and_publishes_the_same_records(demo_copy, staged_sources):
    before = published(demo_copy.home)

    outcome = run_pipeline(demo_copy)

    assert outcome.success, outcome.failures
    assert staged_sources == []
    after = published(demo_copy.home)
    for table in ("source_records", "quarantine"):
        pd.testing.assert_frame_equal(after[table], before[table])
    log_before, log_after = before["extraction_log"], after["extraction_log"]
    assert log_after[["source", "row_count", "content_hash"]].equals(log_before[["source", "row_count", "content_hash"]])
    assert (log_after["extracted_at"] > log_before["extracted_at"]).all()  # read again, just not parsed
    assert all(report.conserved for report in outcome.reports.values())


def test_a_changed_source_alone_is_staged_and_the_run_publishes_what_a_full_run_does(
        demo_copy, copy_data_home, tmp_path, staged_sources):
    full = copy_data_home(demo_copy, tmp_path / "full")
    shutil.rmtree(full.home.root / "kept")  # no staging kept: everything is staged
    for settings in (demo_copy, full):
        change_health_visits(settings.home)

    incremental_run = run_pipeline(demo_copy)
    staged_incrementally = list(staged_sources)
    full_run = run_pipeline(full)

    assert incremental_run.success and full_run.success, (incremental_run.failures, full_run.failures)
    assert staged_incrementally == [CHANGED]
    assert len(staged_sources) - len(staged_incrementally) == len(incremental_run.reports)
    incremental, everything = published(demo_copy.home), published(full.home)
    for table in ("source_records", "quarantine"):
        pd.testing.assert_frame_equal(incremental[table], everything[table])
    with duckdb.connect(str(demo_copy.home.warehouse_file), read_only=True) as a, \
            duckdb.connect(str(full.home.warehouse_file), read_only=True) as b:
        query = "SELECT record_id, person_id FROM record_person ORDER BY record_id"
        pd.testing.assert_frame_equal(a.execute(query).df(), b.execute(query).df())


def test_run_full_stages_every_source_again(demo_copy, staged_sources):
    from pipelines.cli import main

    assert main(["run", "--home", str(demo_copy.home.root), "--full"]) == 0

    kept = sorted(p.name for p in demo_copy.home.kept_dir.joinpath("staging").iterdir())
    assert sorted(staged_sources) == kept and len(kept) == 6  # every source of the demo, staged and kept again
