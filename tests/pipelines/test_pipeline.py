"""The whole Dagster graph on a small generated district, in a temporary data home."""

from __future__ import annotations

import hashlib

import dagster as dg
import duckdb
import pandas as pd
import pytest

from core.home import DataHome
from demo.generate import generate_demo
from pipelines.cli import main, run_pipeline
from pipelines.graph import build_definitions
from pipelines.settings import DEMO_POLICY, DEMO_SOURCES, Settings
from publish import AuditLog, load_policy, product_key, read_product

pytestmark = pytest.mark.integration

PERSONS = 2_000


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    generate_demo(home, persons=PERSONS, seed=13)
    settings = Settings(home, DEMO_SOURCES, DEMO_POLICY)
    return settings, run_pipeline(settings)


def query(settings: Settings, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(settings.home.warehouse_file), read_only=True) as con:
        return con.execute(sql).df()


def shared(settings: Settings, recipient: str) -> pd.DataFrame:
    """A product decrypted with its recipient's key."""
    return read_product(settings.home.product_file(recipient), product_key(settings.home, recipient)).to_pandas()


def test_definitions_load_with_checks_and_schedule(tmp_path):
    defs = build_definitions(Settings(tmp_path, DEMO_SOURCES, DEMO_POLICY))
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_schedule_def("daily_sync").cron_schedule == "0 2 * * *"
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert {"raw_health", "staged_health", "quarantine_health", "record_person_map", "unified_population",
            "shared_products", "quality_report"} <= keys


def test_assets_are_grouped_and_owned_by_department_and_the_sensor_watches_every_job(tmp_path, monkeypatch):
    defs = build_definitions(Settings(tmp_path, DEMO_SOURCES, DEMO_POLICY))
    graph = defs.resolve_asset_graph()
    health = [key for key in graph.get_all_asset_keys() if graph.get(key).group_name == "health"]
    assert {k.to_user_string() for k in health} == {"raw_health", "staged_health", "quarantine_health",
                                                     "staging_report_health"}
    assert all(graph.get(key).owners == ["team:health"] for key in health)
    sensor = defs.resolve_sensor_def("blocked_quality_report")
    # No job list: every job of the code location, "Materialize all" (__ASSET_JOB) too. Dagster has no
    # public accessor for the list; before this change it held the sync job.
    assert not sensor._monitored_jobs
    assert defs.resolve_schedule_def("daily_sync").default_status == dg.DefaultScheduleStatus.STOPPED  # the demo

    district = tmp_path / "sources.yaml"  # a configured district: the nightly sync is on by default
    district.write_text(DEMO_SOURCES.read_text(encoding="utf-8").replace(
        "name: health\n", "name: health\n    owner: weijian-data@district.example.cn\n", 1), encoding="utf-8")
    monkeypatch.setenv("SILOBREAKER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SILOBREAKER_SOURCES", str(district))
    defs = build_definitions(Settings.from_env(), from_env=True)
    assert defs.resolve_schedule_def("daily_sync").default_status == dg.DefaultScheduleStatus.RUNNING
    assert defs.resolve_sensor_def("new_department_files").default_status == dg.DefaultSensorStatus.RUNNING
    graph = defs.resolve_asset_graph()
    assert graph.get(dg.AssetKey("raw_health")).owners == ["weijian-data@district.example.cn"]
    warehouse = defs.resources["warehouse"]
    assert isinstance(warehouse.home, dg.EnvVar) and warehouse.home.env_var_name == "SILOBREAKER_HOME"
    assert isinstance(warehouse.policy_file, str)  # not set in the environment: the demo's path


def test_the_unified_population_asset_carries_its_table_name_and_column_schema(demo_run):
    settings, outcome = demo_run
    with dg.DagsterInstance.from_config(str(settings.home.dagster_dir)) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("unified_population"))
    metadata = event.asset_materialization.metadata
    assert metadata["dagster/table_name"].value == "silobreaker.main.unified_population"
    columns = {c.name: c.type for c in metadata["dagster/column_schema"].value.columns}
    published = query(settings, "SELECT column_name, data_type FROM duckdb_columns() "
                                "WHERE table_name = 'unified_population'")
    assert columns == dict(zip(published["column_name"], published["data_type"], strict=True))
    assert columns["birth_day"] == "DATE"
    # Declared on the asset too, from the warehouse's data dictionary (publish/catalog.py), so the UI shows the table
    # and its columns before anything is materialized (seen: an audit found them on the materialization only).
    defs = build_definitions(settings)
    declared = defs.resolve_assets_def("unified_population").specs_by_key[dg.AssetKey("unified_population")].metadata
    assert declared["dagster/table_name"] == "silobreaker.main.unified_population"
    assert {c.name: c.type for c in declared["dagster/column_schema"].columns} == columns
    assert all(c.description for c in declared["dagster/column_schema"].columns)


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
    assert set(accounted["source"]) == {"civil_affairs", "health", "justice", "census", "grid_updates"}
    for row in accounted.itertuples():
        assert row.extracted == row.mapped + row.quarantined, row
    reasons = query(settings, "SELECT count(*) AS n FROM quarantine WHERE rule IS NULL OR message IS NULL")
    assert reasons["n"][0] == 0
    assert query(settings, "SELECT count(*) AS n FROM quarantine")["n"][0] > 0


def test_linking_matches_ground_truth_and_keeps_twins_apart(demo_run):
    settings, _ = demo_run
    truth = pd.read_parquet(settings.home.demo_truth_dir / "ground_truth.parquet")
    mapping = query(settings, "SELECT record_id, person_id FROM record_person").merge(truth, on="record_id")

    def pairs(groups: pd.Series) -> int:
        sizes = groups.value_counts()
        return int((sizes * (sizes - 1) // 2).sum())

    both = pairs(mapping["person_id"] + "|" + mapping["true_person_id"])
    precision, recall = both / pairs(mapping["person_id"]), both / pairs(mapping["true_person_id"])
    f1 = 2 * precision * recall / (precision + recall)
    assert f1 >= 0.95, (precision, recall)

    negatives = pd.read_parquet(settings.home.demo_truth_dir / "hard_negatives.parquet")
    twins = negatives[negatives["kind"] == "twin"]
    person_of = mapping.groupby("true_person_id")["person_id"].agg(set)
    merged = [
        (a, b) for a, b in zip(twins["person_a"], twins["person_b"], strict=True)
        if a in person_of and b in person_of and person_of[a] & person_of[b]
    ]
    assert len(twins) > 0 and merged == []


def test_a_record_under_a_household_members_id_waits_for_review_and_rides_on_no_ones_consent(demo_run):
    settings, _ = demo_run
    disputed = query(settings, """
        SELECT r.record_id, r.person_id, r.id_number, u.id_number AS golden_id_number,
               (SELECT count(*) FROM review_queue q WHERE r.record_id IN (q.record_id_a, q.record_id_b)
                  AND q.reason = 'id_sharing_conflict' AND q.reason_label LIKE '公民身份号码冲突%') AS queued
        FROM source_records r JOIN unified_population u USING (person_id) WHERE r.id_number_disputed""")
    assert len(disputed) > 0, "the demo keys a few rows with a household member's number"
    assert (disputed["queued"] > 0).all()
    assert (disputed["golden_id_number"] != disputed["id_number"]).all()
    truth = pd.read_parquet(settings.home.demo_truth_dir / "ground_truth.parquet").set_index("record_id")
    assert truth.loc[disputed["record_id"], "defects"].str.contains("borrowed_id").all(), "no false alarm"
    # No consent decision made under the borrowed number counts for the borrower's person.
    carried = query(settings, """
        SELECT count(*) AS n FROM consent_effective e JOIN consent_decisions c ON c.record_id = e.decision_id
        JOIN source_records r ON r.person_id = e.person_id AND r.id_number_disputed AND r.id_number = c.id_number""")
    assert carried["n"][0] == 0
    lenders = query(settings, """
        SELECT count(*) AS n FROM consent_effective e JOIN consent_decisions c ON c.record_id = e.decision_id
        WHERE c.id_number IN (SELECT id_number FROM source_records WHERE id_number_disputed)""")
    assert lenders["n"][0] > 0, "the numbers' holders do have decisions: they just do not travel"


def test_products_and_report_are_written(demo_run):
    settings, outcome = demo_run
    log = query(settings, f"SELECT recipient, row_count, content_hash, path FROM publication_log WHERE run_id = '{outcome.run_id}'")
    grids = pd.read_csv(settings.home.demo_dir / "areas.csv", encoding="utf-8-sig")["网格"]
    area_products = {r for r in log["recipient"] if r.startswith("grid_workers_")}
    assert len(area_products) == grids.nunique() >= 10, "every grid of the register has its own list"
    assert set(log["recipient"]) - area_products == {"civil_affairs_assistance", "health_family_doctors",
                                                     "statistics_analysts", "district_statistics"}
    for row in log.itertuples():
        data = open(row.path, "rb").read()
        assert hashlib.sha256(data).hexdigest() == row.content_hash
        assert read_product(row.path, product_key(settings.home, row.recipient)).num_rows == row.row_count
    analysts = shared(settings, "statistics_analysts")
    assert "person_id" not in analysts.columns and "name" not in analysts.columns
    grid = shared(settings, "grid_workers_cuiyuan_1")
    expected = query(settings, """
        SELECT count(*) AS n FROM unified_population u
        WHERE grid = '翠苑社区第1网格'
          AND list_has_any(key_populations, ['elderly_living_alone', 'disabled', 'low_income_household', 'young_child'])
          AND person_id NOT IN (SELECT person_id FROM deletion_requests)
          AND (SELECT arg_max(effective_status, decided_at) FROM consent_effective c WHERE c.person_id = u.person_id
               AND purpose = 'service_delivery' AND recipient IN ('grid', '*') AND category = 'basic'
               AND (by_guardian OR NOT u.minor_under_14)) = 'granted'
          AND (NOT u.minor_under_14 OR (SELECT arg_max(effective_status, decided_at) FROM consent_effective c
               WHERE c.person_id = u.person_id AND purpose = 'service_delivery' AND recipient IN ('grid', '*')
               AND category = 'minor' AND by_guardian) = 'granted')""")["n"][0]
    assert len(grid) == expected
    assert grid["address"].dropna().str.contains("翠苑社区").all()
    report = (settings.home.latest_report).read_text(encoding="utf-8")
    for source in ("civil_affairs", "health", "justice", "census"):
        assert source in report


def test_malformed_source_fails_alone_and_keeps_last_publication(demo_run, copy_data_home, tmp_path):
    settings, _ = demo_run
    home = tmp_path / "home"
    broken = copy_data_home(settings, home)
    health = DataHome.at(home).demo_dir / "health_visits.csv"
    text = health.read_bytes().decode("gbk")
    header, rest = text.split("\n", 1)
    health.write_bytes((header.replace("patient_name", "huanzhe_xm") + "\n" + rest).encode("gbk"))
    warehouse = DataHome.at(home).warehouse_file
    before = hashlib.sha256(warehouse.read_bytes()).hexdigest()

    outcome = run_pipeline(broken)

    assert not outcome.success
    [(step, message)] = outcome.failures.items()
    assert step == "raw_health"
    assert "health_visits.csv" in message and "patient_name" in message
    assert hashlib.sha256(warehouse.read_bytes()).hexdigest() == before
    # The other sources ran: this run's own folder holds their staged records.
    assert DataHome.at(home).asset_base(outcome.run_id, ["staged_census"]).with_suffix(".arrow").exists()


def test_rerun_keeps_person_ids_records_history_and_applies_review_decisions(demo_run, copy_data_home, tmp_path,
                                                                              capsys):
    settings, first = demo_run
    home = tmp_path / "home"
    again = copy_data_home(settings, home)
    old = query(again, "SELECT record_id, person_id FROM record_person").set_index("record_id")["person_id"]
    # 5% more census rows (re-entered people, under new census numbers) and one newcomer.
    census_file = DataHome.at(home).demo_dir / "census_extract.csv"
    census = pd.read_csv(census_file, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    extra = census.sample(frac=0.05, random_state=1).assign(普查编号=lambda x: "PCX" + x["普查编号"].str[2:])
    newcomer = census.iloc[[0]].assign(普查编号="PCN000000001", 姓名="欧阳测试", 出生年月="199901", 公民身份号码="",
                                       住址="示范区南山街道石桥社区99幢9单元909室")
    pd.concat([census, extra, newcomer]).to_csv(census_file, index=False, encoding="utf-8-sig")
    # A reviewer splits a linked pair and joins a queued one.
    linked = query(again, """
        SELECT p.record_id_l, p.record_id_r FROM link_pairs p
        JOIN record_person a ON a.record_id = p.record_id_l JOIN record_person b ON b.record_id = p.record_id_r
        JOIN source_records r ON r.record_id = p.record_id_l
        WHERE p.decision = 'link' AND r.id_number IS NULL AND a.person_id = b.person_id
          AND (SELECT count(*) FROM record_person m WHERE m.person_id = a.person_id) = 2
        ORDER BY 1, 2 LIMIT 1""").iloc[0]
    queued = query(again, "SELECT * FROM review_queue WHERE NOT same_person_now AND reason = 'near_miss' "
                          "ORDER BY score DESC LIMIT 1").iloc[0]
    assert main(["review", "decide", linked.record_id_l, linked.record_id_r, "different", "--home", str(home)]) == 0
    assert main(["review", "decide", queued.record_id_a, queued.record_id_b, "same", "--by", "wang.fang",
                 "--home", str(home)]) == 0

    outcome = run_pipeline(again)

    assert outcome.success, outcome.failures
    new = query(again, "SELECT record_id, person_id FROM record_person").set_index("record_id")["person_id"]
    assert new[linked.record_id_l] != new[linked.record_id_r]
    assert new[queued.record_id_a] == new[queued.record_id_b]
    # Every person the decisions did not touch keeps its id.
    touched = old[[linked.record_id_l, queued.record_id_a, queued.record_id_b]]
    untouched = old[~old.isin(touched)].index
    assert (new[untouched] == old[untouched]).all()
    # The history names the split, the merge and the newcomer; no id is issued twice.
    history = query(again, f"SELECT kind, old_id, new_id, records FROM person_id_history WHERE run_id = '{outcome.run_id}'")
    assert ["split", old[linked.record_id_l], new[linked.record_id_r], 1] in history.values.tolist()
    absorbed = ({old[queued.record_id_a], old[queued.record_id_b]} - {new[queued.record_id_a]}).pop()
    assert ["merge", absorbed, new[queued.record_id_a]] in history[["kind", "old_id", "new_id"]].values.tolist()
    assert history[history["kind"] == "new"]["new_id"].tolist() == [new["census:PCN000000001"]]
    assert set(history["kind"]) == {"split", "merge", "new"}
    issued = query(again, "SELECT person_id, first_run_id FROM issued_person_ids")
    assert issued["person_id"].is_unique and set(old) | set(new) <= set(issued["person_id"])
    carried = query(again, f"SELECT kind, count(*) AS n FROM person_id_history WHERE run_id = '{first.run_id}' GROUP BY kind")
    assert carried.values.tolist() == [["new", old.nunique()]]  # the first run's issues, carried over
    decisions = query(again, "SELECT decision, decided_by FROM review_decisions ORDER BY decision")
    assert decisions["decision"].tolist() == ["different", "same"] and "wang.fang" in decisions["decided_by"].tolist()
    queue = query(again, "SELECT record_id_a, record_id_b FROM review_queue")
    assert (queued.record_id_a, queued.record_id_b) not in set(queue.itertuples(index=False, name=None))
    capsys.readouterr()
    assert main(["review", "list", "--home", str(home)]) == 0
    assert f"{len(queue)} pair(s) await review (0 decided since the last run" in capsys.readouterr().out


def test_withdrawal_in_the_registry_takes_effect_at_the_next_run(demo_run, copy_data_home, tmp_path):
    settings, first = demo_run
    home = tmp_path / "home"
    again = copy_data_home(settings, home)
    doctors = set(shared(again, "health_family_doctors")["person_id"])
    register = set(shared(again, "civil_affairs_assistance")["person_id"])
    person = sorted(doctors & register or doctors)[0]
    id_number, name = query(again, f"SELECT id_number, name FROM unified_population WHERE person_id = '{person}'").iloc[0]
    registry_file = DataHome.at(home).demo_dir / "consent_registry.parquet"
    registry = pd.read_parquet(registry_file)
    withdrawal = {**registry.iloc[0].to_dict(), "consent_id": "CS99999999", "sfzh": id_number, "xm": name,
                  "purpose": "service_delivery", "recipient": "*", "status": "撤回",
                  "decided_at": "2026-11-22 09:00:00", "lb": "basic", "yxq": "", "jhr": ""}
    pd.concat([registry, pd.DataFrame([withdrawal])]).to_parquet(registry_file, index=False)

    outcome = run_pipeline(again)

    assert outcome.success, outcome.failures
    assert set(shared(again, "health_family_doctors")["person_id"]) == doctors - {person}
    assert set(shared(again, "civil_affairs_assistance")["person_id"]) == register  # statutory: unchanged
    log = AuditLog(home)
    # one entry per product and run: a "*" entry has one product per grid of the register
    products = query(again, "SELECT run_id, count(*) AS n FROM publication_log GROUP BY run_id")["n"]
    assert list(products) == [products.iloc[0]] * 2 and products.iloc[0] > len(load_policy(DEMO_POLICY).recipients)
    assert log.verify().ok and log.verify().entries == products.sum()
    received = {(e["run_id"], e["recipient"]) for e in log.person(id_number)}
    assert (first.run_id, "health_family_doctors") in received
    assert (outcome.run_id, "health_family_doctors") not in received
    assert (outcome.run_id, "statistics_analysts") in received
    runs = {e["run_id"]: e for e in log.entries() if e["recipient"] == "health_family_doctors"}
    assert runs[outcome.run_id]["exclusions"].get("withdrawn", 0) == runs[first.run_id]["exclusions"].get("withdrawn", 0) + 1


def test_the_code_location_writes_files_its_owner_only_reads(tmp_path):
    # Seen: the run-failure sensor's report, written by Dagster's code server, was -rw-r--r--.
    import os
    import subprocess
    import sys
    from pathlib import Path

    probe = "import os, pipelines.definitions; print(oct(os.umask(0)))"
    env = {**os.environ, "SILOBREAKER_HOME": str(tmp_path / "home"), "DAGSTER_HOME": str(tmp_path / "dagster")}
    umask = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True,
                           cwd=Path(__file__).resolve().parents[2]).stdout.strip()
    assert umask == "0o77"
