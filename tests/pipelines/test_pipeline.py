"""The whole Dagster graph on a small generated district, in a temporary data home."""

from __future__ import annotations

import hashlib
import shutil

import dagster as dg
import duckdb
import pandas as pd
import pytest

from demo.generate import generate_demo
from pipelines.cli import run_pipeline
from pipelines.definitions import build_definitions
from pipelines.settings import DEMO_POLICY, DEMO_SOURCES, Settings

pytestmark = pytest.mark.integration

PERSONS = 2_000


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    generate_demo(home, persons=PERSONS, seed=11)
    settings = Settings(home, DEMO_SOURCES, DEMO_POLICY)
    return settings, run_pipeline(settings)


def query(settings: Settings, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(settings.home / "warehouse" / "silobreaker.duckdb"), read_only=True) as con:
        return con.execute(sql).df()


def test_definitions_load_with_checks_and_schedule(tmp_path):
    defs = build_definitions(Settings(tmp_path, DEMO_SOURCES, DEMO_POLICY))
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_schedule_def("daily_sync").cron_schedule == "0 2 * * *"
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert {"raw_health", "staged_health", "quarantine_health", "record_person_map", "unified_population",
            "shared_products", "quality_report"} <= keys


def test_whole_graph_succeeds_and_publishes(demo_run):
    settings, outcome = demo_run
    assert outcome.success, outcome.failures
    tables = set(query(settings, "SELECT table_name FROM duckdb_tables()")["table_name"])
    assert {"unified_population", "record_person", "quarantine", "person_consent", "publication_log"} <= tables
    persons = query(settings, "SELECT count(*) AS n FROM unified_population")["n"][0]
    assert 0.8 * PERSONS < persons < 1.2 * PERSONS


def test_every_extracted_record_is_mapped_or_quarantined(demo_run):
    settings, outcome = demo_run
    accounted = query(settings, """
        SELECT e.source, e.row_count AS extracted,
               (SELECT count(*) FROM record_person m WHERE split_part(m.record_id, ':', 1) = e.source) AS mapped,
               (SELECT count(*) FROM quarantine q WHERE q.source = e.source) AS quarantined
        FROM extraction_log e WHERE e.run_id = '%s' AND e.source <> 'consent_registry'""" % outcome.run_id)
    assert set(accounted["source"]) == {"civil_affairs", "health", "justice", "census"}
    for row in accounted.itertuples():
        assert row.extracted == row.mapped + row.quarantined, row
    reasons = query(settings, "SELECT count(*) AS n FROM quarantine WHERE rule IS NULL OR message IS NULL")
    assert reasons["n"][0] == 0
    assert query(settings, "SELECT count(*) AS n FROM quarantine")["n"][0] > 0


def test_linking_matches_ground_truth_and_keeps_twins_apart(demo_run):
    settings, _ = demo_run
    truth = pd.read_parquet(settings.home / "demo" / "truth" / "ground_truth.parquet")
    mapping = query(settings, "SELECT record_id, person_id FROM record_person").merge(truth, on="record_id")

    def pairs(groups: pd.Series) -> int:
        sizes = groups.value_counts()
        return int((sizes * (sizes - 1) // 2).sum())

    both = pairs(mapping["person_id"] + "|" + mapping["true_person_id"])
    precision, recall = both / pairs(mapping["person_id"]), both / pairs(mapping["true_person_id"])
    f1 = 2 * precision * recall / (precision + recall)
    assert f1 >= 0.95, (precision, recall)

    negatives = pd.read_parquet(settings.home / "demo" / "truth" / "hard_negatives.parquet")
    twins = negatives[negatives["kind"] == "twin"]
    person_of = mapping.groupby("true_person_id")["person_id"].agg(set)
    merged = [
        (a, b) for a, b in zip(twins["person_a"], twins["person_b"], strict=True)
        if a in person_of and b in person_of and person_of[a] & person_of[b]
    ]
    assert len(twins) > 0 and merged == []


def test_products_and_report_are_written(demo_run):
    settings, outcome = demo_run
    log = query(settings, f"SELECT recipient, row_count, content_hash, path FROM publication_log WHERE run_id = '{outcome.run_id}'")
    assert set(log["recipient"]) == {"civil_affairs_assistance", "health_family_doctors", "grid_worker_cuiyuan_1",
                                     "statistics_analysts"}
    for row in log.itertuples():
        data = open(row.path, "rb").read()
        assert hashlib.sha256(data).hexdigest() == row.content_hash
        assert len(pd.read_parquet(row.path)) == row.row_count
    analysts = pd.read_parquet(settings.home / "shared" / "statistics_analysts.parquet")
    assert "person_id" not in analysts.columns and "name" not in analysts.columns
    grid = pd.read_parquet(settings.home / "shared" / "grid_worker_cuiyuan_1.parquet")
    expected = query(settings, """
        SELECT count(*) AS n FROM unified_population u
        WHERE grid = '翠苑社区第1网格'
          AND list_has_any(key_populations, ['elderly_living_alone', 'disabled', 'low_income_household'])
          AND (SELECT arg_max(status, decided_at) FROM person_consent c WHERE c.person_id = u.person_id
               AND purpose = 'service_delivery' AND recipient IN ('grid', '*')) = 'granted'""")["n"][0]
    assert len(grid) == expected
    assert grid["address"].dropna().str.contains("翠苑社区").all()
    report = (settings.home / "reports" / "latest.html").read_text(encoding="utf-8")
    for source in ("civil_affairs", "health", "justice", "census"):
        assert source in report


def test_malformed_source_fails_alone_and_keeps_last_publication(demo_run, tmp_path):
    settings, _ = demo_run
    home = tmp_path / "home"
    shutil.copytree(settings.home, home, ignore=shutil.ignore_patterns("dagster"))
    broken = Settings(home, DEMO_SOURCES, DEMO_POLICY)
    health = home / "demo" / "health_visits.csv"
    text = health.read_bytes().decode("gbk")
    header, rest = text.split("\n", 1)
    health.write_bytes((header.replace("patient_name", "huanzhe_xm") + "\n" + rest).encode("gbk"))
    warehouse = home / "warehouse" / "silobreaker.duckdb"
    before = hashlib.sha256(warehouse.read_bytes()).hexdigest()
    staged_before = (home / "staging" / "staged_census.parquet").stat().st_mtime_ns

    outcome = run_pipeline(broken)

    assert not outcome.success
    [(step, message)] = outcome.failures.items()
    assert step == "raw_health"
    assert "health_visits.csv" in message and "patient_name" in message
    assert hashlib.sha256(warehouse.read_bytes()).hexdigest() == before
    assert (home / "staging" / "staged_census.parquet").stat().st_mtime_ns > staged_before
