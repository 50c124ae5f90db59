"""Which record each golden field comes from: the streaming ``arg_min`` of a text key must choose exactly
what the declared order says, written here independently as ``first(… ORDER BY …)``, on records full of
ties, missing values, invalid IDs, grid updates and sources of many ranks."""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest

from publish import golden
from publish.golden import GoldenRecords, _golden_sql
from staging.schema import empty_canonical_frame

TRUST = {f"s{i:02d}": i for i in range(12)}  # ranks beyond 9: the key pads them
GRID, BASE = "s11", "s03"

# The order each golden field is chosen by, as MISSION.md and publish.golden describe it.
TAIL = ("CASE source " + " ".join(f"WHEN '{s}' THEN {r}" for s, r in TRUST.items()) + f" ELSE {len(TRUST)} END, "
        "record_date DESC NULLS LAST, record_id")
ORDERS = {
    "name": TAIL,
    "sex": f"id_sex IS NOT NULL AND sex = id_sex DESC NULLS LAST, {TAIL}",
    "birth_date": f"CASE birth_date_precision WHEN 'day' THEN 0 WHEN 'month' THEN 1 ELSE 2 END, {TAIL}",
    "id_number": f"id_number_valid DESC NULLS LAST, {TAIL}",
    "phone": f"CASE WHEN source = '{GRID}' THEN record_date END DESC NULLS LAST, {TAIL}",
    "address": f"record_date DESC NULLS LAST, {TAIL}",
    "hukou_address": f"source = '{BASE}' DESC, {TAIL}",
    "residence_status": f"record_date DESC NULLS LAST, {TAIL}",
}


def _records(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)

    def pick(values, missing=0.3):
        chosen = rng.choice(np.asarray(values, dtype=object), n)
        chosen[rng.random(n) < missing] = None
        return pd.Series(chosen, dtype="string")

    days = pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 4, n) * 400, unit="D")
    record_date = pd.Series(days.date, dtype=object).where(rng.random(n) > 0.25, None)
    return pd.DataFrame({
        "person_id": pd.Series(rng.integers(0, n // 4, n).astype(str), dtype="string"),
        "record_id": pd.Series([f"r{i:05d}" for i in rng.permutation(n)], dtype="string"),
        "source": pick(list(TRUST), missing=0),
        "record_date": record_date,
        "name": pick(["张伟", "张 伟", "李娜"]),
        "sex": pick(["M", "F"]),
        "id_sex": pick(["M", "F"], missing=0.5),
        "birth_date": pick(["1950-01-01", "1950-01", "1950"]),
        "birth_date_precision": pick(["day", "month", "year"], missing=0),
        "id_number": pick(["330106195001010012", "33010619500101001X", "1234"]),
        "id_number_valid": pd.array(rng.choice([True, False, None], n), dtype="boolean"),
        "id_number_disputed": pd.array(rng.random(n) < 0.1, dtype="boolean"),
        "phone": pick(["13800000000", "13900000000"]),
        "address": pick(["翠苑一区3幢", "翠苑二区5幢", "翠苑5幢", "西溪街道翠苑二区5幢"]),  # short and full forms
        "flat": pick(["f1", "f2"]),
        "hukou_address": pick(["翠苑一区3幢", "外省某地"]),
        "residence_status": pick(["在住", "迁出", "死亡"]),
        "chronic_disease": pick(["高血压", "糖尿病"], missing=0.6),
    })


def _golden_of(con: duckdb.DuckDBPyConnection, records: pd.DataFrame, columns: str) -> pd.DataFrame:
    """``records`` as ``source_records`` on ``con``, and ``columns`` of the golden CTEs over them, by person.
    Only the golden CTEs: the areas, households and 户籍 places they are joined with are not built here."""
    others = empty_canonical_frame().drop(columns=records.columns, errors="ignore")
    con.register("_frame", pd.concat([records, others], axis=1))
    con.execute("CREATE TABLE source_records AS SELECT * REPLACE (CAST(record_date AS DATE) AS record_date) FROM _frame "
                "ORDER BY person_id, record_id")
    GoldenRecords(TRUST, grid_sources=(GRID,), base=BASE)._add_picked(con, "source_records")
    sql = _golden_sql(date(2026, 1, 1), register=False)
    picks = sql[sql.index("WITH golden AS"):sql.index(", aged AS (")]
    return con.execute(f"{picks} SELECT {columns} FROM golden ORDER BY person_id").df()


@pytest.fixture(params=["one aggregate", "ranges of persons"])
def pick_records(request, monkeypatch):
    """The golden values chosen in one aggregate, and in ranges of persons of ~500 records (as over 1M records)."""
    if request.param == "ranges of persons":
        monkeypatch.setattr(golden, "PICK_RECORDS", 500)


def test_each_golden_field_comes_from_the_record_its_declared_order_puts_first(pick_records):
    with duckdb.connect() as con:
        records = _records(4000, seed=3)
        fields = ", ".join(f"{f}, {f}_source, {f}_date" for f in ORDERS) + ", birth_date_precision, _address_flat"
        chosen = _golden_of(con, records, f"person_id, {fields}")

        def first(column: str, field: str) -> str:
            usable = f"{field} IS NOT NULL" + (" AND NOT coalesce(id_number_disputed, false)" if field == "id_number" else "")
            return f"first({column} ORDER BY {ORDERS[field]}) FILTER (WHERE {usable})"

        reference = ", ".join(
            f"{first(field, field)} AS {field}, {first('source', field)} AS {field}_source, "
            f"{first('record_date', field)} AS {field}_date" for field in ORDERS)
        expected = con.execute(
            f"SELECT person_id, {reference}, {first('birth_date_precision', 'birth_date')} AS birth_date_precision, "
            f"{first('flat', 'address')} AS _address_flat FROM source_records GROUP BY person_id ORDER BY person_id").df()
        # A grid worker's address of a flat a department wrote for the person is shown in the fullest department
        # wording of it (then the most trusted), where that is fuller than the worker's.
        worded = con.execute(f"""
            WITH picked AS (SELECT person_id, {first('flat', 'address')} AS f, {first('source', 'address')} AS s,
                                   {first('address', 'address')} AS a FROM source_records GROUP BY person_id)
            SELECT r.person_id, first(r.address ORDER BY length(r.address) DESC, {TAIL}) AS worded
            FROM source_records r JOIN picked p ON p.person_id = r.person_id AND r.flat = p.f
            WHERE p.s = '{GRID}' AND r.source <> '{GRID}' AND r.address IS NOT NULL AND length(r.address) > length(p.a)
            GROUP BY r.person_id""").df()
    worded = expected["person_id"].map(worded.set_index("person_id")["worded"])
    assert worded.notna().sum() > 5 and (worded.dropna() != expected["address"][worded.notna()]).any()
    expected["address"] = worded.fillna(expected["address"])
    assert len(chosen) > 900
    pd.testing.assert_frame_equal(chosen, expected, check_dtype=False)
    # The random records exercise what the key must get right: ties broken by rank, then date, then id.
    assert records.groupby("person_id").size().max() >= 6


# What a person's records disagree on, and what they hold, written the direct way.
CONFLICTS = {
    "name": "count(DISTINCT name) > 1",
    "sex": "count(DISTINCT sex) > 1",
    "birth_date": ("count(DISTINCT birth_date) FILTER (WHERE birth_date_precision = 'day') > 1 "
                   "OR count(DISTINCT substr(birth_date, 1, 7)) > 1"),
    "id_number": "count(DISTINCT CASE WHEN id_number_valid THEN id_number END) > 1",
    "address": "count(DISTINCT coalesce(flat, address)) > 1",
    "residence_status": "count(DISTINCT residence_status) > 1",
}


def test_conflicts_sources_and_record_lists_are_what_the_records_hold(pick_records):
    with duckdb.connect() as con:
        chosen = _golden_of(con, _records(4000, seed=5),
                            "person_id, conflict_fields, sources, record_ids, chronic_disease, record_count")
        tests = ", ".join(f"CASE WHEN {test} THEN '{field}' END" for field, test in CONFLICTS.items())
        expected = con.execute(f"""
            SELECT person_id, list_filter([{tests}], lambda x: x IS NOT NULL) AS conflict_fields,
                list(DISTINCT source ORDER BY source) AS sources, list(record_id ORDER BY record_id) AS record_ids,
                string_agg(DISTINCT chronic_disease, ',' ORDER BY chronic_disease) AS chronic_disease,
                count(*) AS record_count
            FROM source_records GROUP BY person_id ORDER BY person_id""").df()
    pd.testing.assert_frame_equal(chosen, expected, check_dtype=False)
    assert chosen["conflict_fields"].map(len).gt(0).mean() > 0.5  # the random records do disagree
    assert chosen["chronic_disease"].str.contains(",", na=False).any()


def test_ranges_of_persons_hold_every_record_once_and_each_person_whole(monkeypatch):
    monkeypatch.setattr(golden, "PICK_RECORDS", 500)
    with duckdb.connect() as con:
        con.register("_frame", _records(4000, seed=7))
        con.execute("CREATE TABLE source_records AS SELECT * FROM _frame ORDER BY person_id, record_id")
        ranges = golden._person_ranges(con, "source_records")
        counted = [con.execute(f"SELECT count(*), count(DISTINCT person_id) FROM {r}").fetchone() for r in ranges]
        persons = con.execute(" UNION ALL ".join(f"SELECT DISTINCT person_id FROM {r}" for r in ranges)).df()
        total = con.execute("SELECT count(DISTINCT person_id) FROM source_records").fetchone()[0]
    assert len(ranges) == 8
    assert sum(records for records, _ in counted) == 4000
    assert all(300 <= records <= 700 for records, _ in counted)
    assert len(persons) == persons["person_id"].nunique() == total


def test_a_grid_workers_address_is_shown_in_the_fullest_wording_a_department_gives_that_flat():
    full, short = "示范区西溪街道翠苑社区10幢1单元101室", "翠苑社区10-1-101"
    rows = [  # person, source, date, address, flat
        ("P_b", "s00", "2025-01-01", full, "f1"), ("P_b", GRID, "2026-10-01", short, "f1"),  # worker's short form
        ("P_c", "s00", "2026-05-01", short, "f1"), ("P_c", GRID, "2026-10-21", full, "f1"),  # a department's short one
        ("P_d", "s00", "2025-01-01", full, "f1"), ("P_d", GRID, "2026-10-01", "翠苑社区9-9-909", "f9"),  # moved
    ]
    records = _records(len(rows), seed=1).assign(**{  # other fields random: the address is what this is about
        "person_id": pd.Series([r[0] for r in rows], dtype="string"),
        "record_id": pd.Series([f"r{i}" for i in range(len(rows))], dtype="string"),
        "source": pd.Series([r[1] for r in rows], dtype="string"),
        "record_date": pd.Series([date.fromisoformat(r[2]) for r in rows], dtype=object),
        "address": pd.Series([r[3] for r in rows], dtype="string"),
        "flat": pd.Series([r[4] for r in rows], dtype="string"),
    })
    with duckdb.connect() as con:
        chosen = _golden_of(con, records, "person_id, address, address_source").set_index("person_id")
    assert chosen.loc["P_b"].tolist() == [full, GRID]  # the register's wording; the worker's update says he is there
    assert chosen.loc["P_c", "address"] == full  # a department's short form never replaces the worker's full one
    assert chosen.loc["P_d", "address"] == "翠苑社区9-9-909"  # another flat: where the worker found them
