"""The warehouse: golden records, consent, products, and the atomic swap."""

from __future__ import annotations

import json
from datetime import date

import duckdb
import pandas as pd
import pytest

from core.errors import TerminalError
from core.home import DataHome
from publish import DiskSpaceError, Generations, Warehouse, WarehouseReader
from tests.publish.conftest import LI, ZHANG, make_inputs, policy, read_shared, records

STATUTORY = dict(name="civil", description="民政", kind="department", level="district", purpose="service_delivery",
                 legal_basis="statutory", columns=["person_id", "name", "id_number", "phone"])
HEALTH = dict(name="health_doctors", description="卫健", kind="department", level="district",
              purpose="service_delivery", legal_basis="consent", consent_recipient="health",
              columns=["person_id", "name", "phone"], mask={"phone": "partial"})
GRID = dict(name="grid_1", description="网格员", kind="grid_worker", level="grid", purpose="service_delivery",
            legal_basis="statutory", columns=["person_id", "name", "key_populations"],
            key_populations=["elderly", "elderly_living_alone", "young_child"], scope={"grid": "翠苑社区第1网格"})
ANALYST = dict(name="analysts", description="统计", kind="analyst", level="district", purpose="statistics",
               legal_basis="statutory", columns=["person_id", "sex", "age"], pseudonymise=True,
               k_anonymity={"k": 2})


def published(tmp_path, district, *recipients, **changes):
    wh = Warehouse(tmp_path)
    candidate = wh.build_candidate(make_inputs(district, **changes), policy(*recipients))
    wh.publish(candidate)
    return wh, candidate


@pytest.mark.integration
def test_golden_record_prefers_trusted_source_and_keeps_conflicts(tmp_path, district):
    wh, _ = published(tmp_path, district, STATUTORY)
    with WarehouseReader(wh.home).connect() as con:
        row = con.execute(
            "SELECT name, phone, phone_source, chronic_disease, sources, record_count, conflict_fields, "
            "elderly_living_alone, age FROM unified_population WHERE person_id = 'P_zhang'"
        ).fetchall()[0]
        conflicts = con.execute(
            "SELECT source, value FROM field_conflicts WHERE person_id='P_zhang' AND field='phone'"
        ).fetchall()
    name, phone, phone_source, disease, sources, count, conflict_fields, elderly_alone, age = row
    assert (name, phone, phone_source) == ("张伟", "13800000001", "civil_affairs")
    assert disease == "高血压" and sources == ["civil_affairs", "health"] and count == 2
    assert elderly_alone is True and age == 76
    # phone differs between departments but phone is not a conflict key: only identity fields are
    assert "phone" not in conflict_fields and conflicts == []


@pytest.mark.integration
def test_census_year_month_birth_date_gives_age_and_young_child(tmp_path, district):
    wh, _ = published(tmp_path, district, STATUTORY)
    with WarehouseReader(wh.home).connect() as con:
        age, young = con.execute(
            "SELECT age, young_child FROM unified_population WHERE person_id='P_wang'"
        ).fetchall()[0]
    assert (age, young) == (3, True)


@pytest.mark.integration
def test_withdrawn_consent_removes_person_from_consent_based_product_only(tmp_path, district):
    wh, candidate = published(tmp_path, district, STATUTORY, HEALTH)
    products = {p.recipient: read_shared(tmp_path, p.recipient) for p in candidate.products}
    # 张伟 granted then withdrew consent for health: gone from health's product, still in the statutory one.
    assert set(products["health_doctors"]["person_id"]) == {"P_li"}
    assert {"P_zhang", "P_li", "P_wang"} == set(products["civil"]["person_id"])
    with WarehouseReader(wh.home).connect() as con:
        status = con.execute(
            "SELECT consent['service_delivery@health'] FROM unified_population WHERE person_id='P_zhang'"
        ).fetchall()[0][0]
        log = con.execute("SELECT recipient, row_count, legal_basis FROM publication_log ORDER BY recipient").fetchall()
    assert status == "withdrawn"
    assert log == [("civil", 3, "statutory"), ("health_doctors", 1, "consent")]


@pytest.mark.integration
def test_products_hold_only_policy_columns_masked_and_scoped(tmp_path, district):
    _, candidate = published(tmp_path, district, HEALTH, GRID, ANALYST)
    by_name = {p.recipient: read_shared(tmp_path, p.recipient) for p in candidate.products}
    assert list(by_name["health_doctors"].columns) == ["person_id", "name", "phone"]
    assert by_name["health_doctors"]["phone"].isna().tolist() == [True]  # 李娜 has no phone; masks keep nulls
    assert set(by_name["grid_1"]["person_id"]) == {"P_zhang", "P_wang"}  # 李娜 is not in the grid
    analysts = by_name["analysts"]
    assert list(analysts.columns) == ["person_key", "sex", "age"]
    assert not analysts["person_key"].isin(["P_zhang", "P_li", "P_wang"]).any()
    assert analysts["person_key"].str.fullmatch(r"[0-9a-f]{24}").all()


@pytest.mark.integration
def test_phone_mask_hides_the_middle_digits(tmp_path, district):
    recipient = dict(STATUTORY, name="masked", mask={"phone": "partial", "id_number": "partial"})
    _, candidate = published(tmp_path, district, recipient)
    frame = read_shared(tmp_path, "masked").set_index("person_id")
    assert frame.loc["P_zhang", "phone"] == "138****0001"
    assert frame.loc["P_zhang", "id_number"] == ZHANG[:6] + "********" + ZHANG[14:]
    assert frame.loc["P_li", "id_number"] == LI[:6] + "********" + LI[14:]


@pytest.mark.integration
def test_discarded_candidate_leaves_previous_publication_intact(tmp_path, district):
    wh, _ = published(tmp_path, district, STATUTORY)
    before = (DataHome.at(tmp_path).warehouse_file).read_bytes()
    shrunk = district["records"].iloc[:1]
    candidate = wh.build_candidate(
        make_inputs(district, run_id="run2", records=shrunk, mapping=district["mapping"].iloc[:1]), policy(STATUTORY)
    )
    wh.discard(candidate)
    assert (DataHome.at(tmp_path).warehouse_file).read_bytes() == before
    assert not candidate.path.exists() and not candidate.products_dir.exists()


@pytest.mark.integration
def test_history_tables_are_carried_over_between_runs(tmp_path, district):
    wh, _ = published(tmp_path, district, STATUTORY)
    wh.publish(wh.build_candidate(make_inputs(district, run_id="run2"), policy(STATUTORY)))
    with duckdb.connect(str(wh.path), read_only=True) as con:
        runs = [r[0] for r in con.execute("SELECT run_id FROM runs ORDER BY published_at").fetchall()]
        logged = con.execute("SELECT count(*) FROM publication_log").fetchall()[0][0]
    assert runs == ["run1", "run2"] and logged == 2


@pytest.mark.integration
def test_unmapped_record_is_refused(tmp_path, district):
    wh = Warehouse(tmp_path)
    with pytest.raises(ValueError, match="1 staged records have no person_id"):
        wh.build_candidate(make_inputs(district, mapping=district["mapping"].iloc[:3]), policy(STATUTORY))


@pytest.mark.integration
def test_the_run_after_a_restore_builds_on_the_restored_generation(tmp_path, district):
    # Seen: after `silobreaker restore`, the next run carried history, remembered decisions and issued
    # ids over from the newest generation — the one just rolled back — not from the restored one.
    wh, _ = published(tmp_path, district, STATUTORY)
    wh.publish(wh.build_candidate(make_inputs(district, run_id="run2"), policy(STATUTORY)))
    restored = wh.generations.restore()
    assert wh.generations.base().name == restored.name != wh.generations.last_good().name
    wh.publish(wh.build_candidate(make_inputs(district, run_id="run3"), policy(STATUTORY)))
    with duckdb.connect(str(wh.path), read_only=True) as con:
        runs = [r[0] for r in con.execute("SELECT run_id FROM runs ORDER BY published_at").fetchall()]
    assert runs == ["run1", "run3"]  # run2 was rolled back: its publication is in the audit log, not the base


@pytest.mark.integration
def test_conflicts_count_real_differences_not_notation(tmp_path):
    # Seen: 89% of address conflicts were one flat written two ways, and birth dates differing by day
    # were missed because they were compared at year-month.
    def rec(key, person, address=None, birth="1950-01-01", precision="day"):
        return dict(record_id=f"{key}", source=key.split(":")[0], source_key=key.split(":")[1], name="张伟", sex="M",
                    birth_date=birth, birth_date_precision=precision, address=address, record_date="2026-01-01")

    recs = records(
        rec("civil_affairs:1", "A", "示范区西溪街道翠苑社区3幢2单元501室"), rec("health:1", "A", "西溪街道翠苑社区3-2-501"),
        rec("civil_affairs:2", "B", "示范区西溪街道翠苑社区3幢2单元501室"), rec("health:2", "B", "西溪街道翠苑社区5栋1单元101室"),
        rec("civil_affairs:3", "C", birth="1950-01-01"), rec("health:3", "C", birth="1950-01-15"),
        rec("civil_affairs:4", "D", birth="1950-01-15"), rec("census:4", "D", birth="1950-01", precision="month"),
    )
    mapping = pd.DataFrame({"record_id": recs["record_id"], "person_id": ["A", "A", "B", "B", "C", "C", "D", "D"]})
    district = {"records": recs, "mapping": mapping, "consent": pd.DataFrame(
        columns=["record_id", "source", "source_key", "id_number", "name", "purpose", "recipient", "status",
                 "decided_at", "channel"])}
    wh = Warehouse(tmp_path)
    wh.publish(wh.build_candidate(make_inputs(district), policy(STATUTORY)))
    with duckdb.connect(str(wh.path), read_only=True) as con:
        conflicts = dict(con.execute("SELECT person_id, conflict_fields FROM unified_population").fetchall())
        disputed = con.execute("SELECT DISTINCT person_id, field FROM field_conflicts ORDER BY 1").fetchall()
    assert conflicts == {"A": [], "B": ["address"], "C": ["birth_date"], "D": []}
    assert disputed == [("B", "address"), ("C", "birth_date")]


@pytest.mark.integration
def test_the_warehouse_is_written_in_a_format_duckdb_1_tools_read(tmp_path, district):
    # Seen: analysts' DuckDB 1.x tools (DBeaver's driver, R, JDBC builds) refused a DuckDB 2.0 file.
    wh, _ = published(tmp_path, district, STATUTORY)
    wh.publish(wh.build_candidate(make_inputs(district, run_id="run2"), policy(STATUTORY)))  # carried over too
    with duckdb.connect(str(wh.path), read_only=True) as con:
        tags = con.execute("SELECT tags FROM duckdb_databases() WHERE database_name = current_database()").fetchone()[0]
    assert tags["storage_version"] == "v1.2.0+"


@pytest.mark.integration
def test_dates_that_always_name_a_day_are_dates(tmp_path, district):
    wh, _ = published(tmp_path, district, STATUTORY)
    with duckdb.connect(str(wh.path), read_only=True) as con:
        zhang = con.execute("SELECT last_seen, name_date, phone_date FROM unified_population "
                            "WHERE person_id = 'P_zhang'").fetchone()
        census = con.execute("SELECT record_date, birth_day FROM source_records WHERE record_id = 'census:5'").fetchone()
        health = con.execute("SELECT birth_day FROM source_records WHERE record_id = 'health:10'").fetchone()
    # 张伟's civil affairs record (2026-01-01) gives the golden name and phone; the health one (2026-06-01) is newer.
    assert zhang == (date(2026, 6, 1), date(2026, 1, 1), date(2026, 1, 1))
    assert census == (date(2026, 1, 1), None)  # 2023-03: the census knows the month only
    assert health == (date(1985, 2, 2),)


@pytest.mark.integration
def test_analysts_get_a_date_where_the_day_is_known(tmp_path, district):
    wh, _ = published(tmp_path, district, STATUTORY)
    with duckdb.connect(str(wh.path), read_only=True) as con:
        rows = con.execute("SELECT person_id, birth_date, birth_date_precision, birth_day, typeof(birth_day) "
                           "FROM unified_population ORDER BY person_id").fetchall()
    by_person = {r[0]: r[1:] for r in rows}
    assert by_person["P_zhang"][1:3] == ("day", date(1950, 1, 1)) and by_person["P_zhang"][3] == "DATE"
    assert by_person["P_wang"][:3] == ("2023-03", "month", None)  # the census knows the month only


@pytest.mark.integration
def test_the_consent_map_agrees_with_the_products_on_a_tie(tmp_path, district):
    # Review finding: person_consent took any of two decisions made at the same instant, so the
    # consent map could say granted where the products apply the withdrawal.
    consent = district["consent"].copy()
    consent.loc[consent["record_id"] == "consent:2", "decided_at"] = consent.loc[0, "decided_at"]  # a tie
    district = {**district, "consent": consent}
    wh, _ = published(tmp_path, district, STATUTORY, HEALTH)
    with duckdb.connect(str(wh.path), read_only=True) as con:
        status = con.execute("SELECT status FROM person_consent WHERE person_id = 'P_zhang' "
                             "AND recipient = 'health'").fetchone()[0]
    assert status == "withdrawn"


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"),
                                   duckdb.TransactionException('TransactionContext Error: Failed to commit: Could not '
                                                               'write file "silobreaker.duckdb.wal": No space left on '
                                                               'device')])
def test_a_disk_that_fills_during_the_build_is_named_however_it_is_reported(tmp_path, district, monkeypatch, error):
    # Seen: DuckDB reports it on committing as a TransactionException, not an IOException, and the run ended in
    # DuckDB's words with no fix.
    import publish.warehouse

    def full(*_args, **_kwargs):
        raise error

    monkeypatch.setattr(publish.warehouse, "write_quality_metrics", full)
    with pytest.raises(DiskSpaceError, match="filled up while run .* free space on that disk and run again"):
        Warehouse(tmp_path).build_candidate(make_inputs(district), policy())
    assert not list(DataHome.at(tmp_path).generations_dir.iterdir())  # the unfinished build was removed


@pytest.mark.parametrize("recorded", [True, False])
def test_a_damaged_warehouse_is_found_by_its_digest_or_before_digests_by_opening_it(tmp_path, district, recorded):
    for run_id in ("run1", "run2"):
        wh = Warehouse(tmp_path)
        wh.publish(wh.build_candidate(make_inputs(district, run_id=run_id), policy()))
    generations = Generations(tmp_path)
    current = generations.current()
    if not recorded:  # as a generation published before 2026-12-06 recorded none
        record = DataHome.at(tmp_path).generation_record(current.name)
        record.write_text(json.dumps({k: v for k, v in json.loads(record.read_text()).items()
                                      if k != "warehouse_sha256"}), encoding="utf-8")
    assert generations.check_current() is None and generations.base().name == current.name
    path = DataHome.at(tmp_path).generation_warehouse_file(current.name)
    with open(path, "r+b") as damaged:
        if recorded:  # a byte changed inside, which only the digest sees
            damaged.seek(path.stat().st_size // 2)
            byte = damaged.read(1)
            damaged.seek(-1, 1)
            damaged.write(bytes([byte[0] ^ 0xFF]))
        else:  # before digests: its catalogue cut off, so it does not open
            damaged.truncate(4096)
    problem = generations.check_current()
    assert ("its content is not what was published (SHA-256)" if recorded else "it does not open, or is cut short") in problem
    assert generations.base().name == generations.published()[-2].name != current.name
    path.unlink()
    assert "is missing" in generations.check_current()


def test_a_missing_warehouse_with_nothing_whole_before_it_is_refused_not_read_as_nothing(tmp_path, district):
    # Seen: with the only generation's file deleted the next run built from nothing, forgetting deletion requests,
    # review decisions and person ids.
    wh = Warehouse(tmp_path)
    wh.publish(wh.build_candidate(make_inputs(district), policy()))
    generations = Generations(tmp_path)
    DataHome.at(tmp_path).generation_warehouse_file(generations.current().name).unlink()
    with pytest.raises(TerminalError, match="is missing, and no earlier generation is whole"):
        generations.require_readable()
    with pytest.raises(TerminalError, match="is missing"):
        WarehouseReader(tmp_path).connect()


def test_a_damaged_generation_is_not_restored(tmp_path, district):
    # A review: restoring one left the runs building on the newest whole generation, undoing the restore quietly.
    for run_id in ("run1", "run2"):
        wh = Warehouse(tmp_path)
        wh.publish(wh.build_candidate(make_inputs(district, run_id=run_id), policy()))
    generations = Generations(tmp_path)
    first, current = generations.published()[0], generations.current()
    DataHome.at(tmp_path).generation_warehouse_file(first.name).write_bytes(b"damaged")
    with pytest.raises(TerminalError, match=f"generation {first.name}'s warehouse is damaged or missing; nothing was "
                                            f"restored. Whole generations: {current.name}"):
        generations.restore(first.name)
    assert generations.current() == current


def test_a_candidate_failing_its_expectations_is_discarded_and_told_once(tmp_path, district, monkeypatch, caplog):
    """The gate's reason is the run's failure (the summary's FAILED publish line); it also logged a warning of its
    own, the same news twice in a blocked night's summary (review of the run summary)."""
    from publish import gate
    from quality.expectations import SuiteSpec, _spec

    wh = Warehouse(tmp_path)
    wh.publish(wh.build_candidate(make_inputs(district, run_id="run1"), policy()))
    never = SuiteSpec("unified_population", (_spec("ExpectTableRowCountToBeBetween", "a test's impossible rule",
                                                   min_value=0, max_value=0),))
    monkeypatch.setattr(gate, "unified_population_suite", lambda: never)

    with caplog.at_level("INFO", logger="publish.gate"):
        result = gate.publish_if_valid(tmp_path, make_inputs(district, run_id="run2"), policy())

    assert not result.published and "failed its expectations" in result.reason and "a test's impossible rule" in result.reason
    assert WarehouseReader(tmp_path).last_run().run_id == "run1"  # the last publication stays
    assert [r.levelname for r in caplog.records if r.name == "publish.gate"] == ["INFO"]
