"""A night built on the last generation (publish.carry) publishes what a whole build does."""

from __future__ import annotations

import shutil
from datetime import date

import duckdb
import pandas as pd
import pytest

import publish.carry
import publish.warehouse
from core.home import DataHome
from publish import Warehouse
from publish.areas import load_area_register
from tests.publish.conftest import LI, make_inputs, policy, records, warehouse_rewritten

STATUTORY = dict(name="civil", description="民政", kind="department", level="district", purpose="service_delivery",
                 legal_basis="statutory", columns=["person_id", "name", "id_number", "phone", "address"])

# What differs between two builds of the same night by nature: when and by which run they were made.
_RUN_COLUMNS = {"run_id", "published_at", "first_run_id", "path", "audit_seq", "audit_hash", "content_hash",
                "fingerprint"}


def _publish(home, district, run_id, **changes) -> None:
    wh = Warehouse(home)
    wh.publish(wh.build_candidate(make_inputs(district, run_id=run_id, **changes), policy(STATUTORY)))


def _state(home) -> dict:
    with duckdb.connect(str(DataHome.at(home).warehouse_file), read_only=True) as con:
        frame = con.execute("SELECT * FROM carry_state").df()
    assert len(frame) == 1
    return frame.iloc[0].to_dict()


def _tables(home) -> dict[str, pd.DataFrame]:
    """Every table of the published warehouse, its rows sorted, without what names the run."""
    out = {}
    with duckdb.connect(str(DataHome.at(home).warehouse_file), read_only=True) as con:
        for (table,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE table_name <> 'carry_state'").fetchall():
            columns = [c for (c, *_) in con.execute(f"DESCRIBE {table}").fetchall() if c not in _RUN_COLUMNS]
            listed = ", ".join(f'"{c}"' for c in columns)
            out[table] = con.execute(f"SELECT {listed} FROM {table} ORDER BY ALL").df()
    return out


def _next_day(district: dict) -> dict:
    """A day's changes: a new phone, a record moved to another person, a record gone, a new record."""
    recs = district["records"].copy()
    recs.loc[recs["record_id"] == "health:9", "phone"] = "13911112222"
    recs = recs[recs["record_id"] != "census:5"]
    new = records(dict(record_id="health:77", source="health", source_key="77", name="赵敏", sex="F",
                       birth_date="1990-07-07", birth_date_precision="day", record_date="2026-11-01",
                       address="示范区西溪街道翠苑社区2幢"))
    recs = pd.concat([recs, new], ignore_index=True)
    mapping = pd.DataFrame({"record_id": ["civil_affairs:1", "health:9", "health:10", "health:77"],
                            "person_id": ["P_zhang", "P_li", "P_li", "P_zhao"]})  # health:9 now judged 李娜's
    return {**district, "records": recs, "mapping": mapping}


def _carried_and_whole(tmp_path, night1: dict, night2: dict, both: dict | None = None,
                       **changes2) -> tuple[dict, dict, dict]:
    """Night 2 built on night 1 and built whole: the carried state, and every table of both (``both``:
    inputs of both nights, such as the area register)."""
    carried, whole = tmp_path / "carried", tmp_path / "whole"
    both = both or {}
    changes2 = {**both, **changes2}
    _publish(carried, night1, "run1", **both)
    assert _state(carried)["built"] == "whole"
    shutil.copytree(carried, whole, symlinks=True)
    (DataHome.at(whole).kept_dir / "publication.json").unlink()  # as run --full leaves it: nothing kept
    _publish(carried, night2, "run2", **changes2)
    _publish(whole, night2, "run2", **changes2)
    assert _state(whole)["built"] == "whole" and _state(whole)["why_whole"] == "nothing kept (first run, or run --full)"
    a, b = _tables(carried), _tables(whole)
    assert a.keys() == b.keys()
    for table in a:
        pd.testing.assert_frame_equal(a[table], b[table], obj=table)
    return _state(carried), a, b


def test_a_carried_night_publishes_every_table_a_whole_build_does(tmp_path, district):
    state, carried, _ = _carried_and_whole(tmp_path, district, _next_day(district))

    assert state["built"] == "carried" and state["nights_carried"] == 1
    # civil_affairs:1 and health:10 carried as they are; health:9 (new phone, new person) and health:77 (new)
    # written; census:5 (gone) deleted.
    assert (state["rows_carried"], state["rows_written"]) == (2, 2)
    # 张伟 (lost health:9), 李娜 (gained it), 赵敏 (new); 王芳 is gone
    assert state["persons_written"] == 3
    assert set(carried["source_records"]["record_id"]) == {"civil_affairs:1", "health:9", "health:10", "health:77"}
    assert set(carried["unified_population"]["person_id"]) == {"P_zhang", "P_li", "P_zhao"}


def _household(district: dict) -> dict:
    """张伟 and 李娜 at one flat, 王芳 at another, the census's records placing them."""
    recs = district["records"].copy()
    recs.loc[recs["record_id"].isin(["civil_affairs:1", "health:10"]), "address"] = "示范区西溪街道翠苑社区1幢2单元301室"
    recs.loc[recs["record_id"] == "census:5", "address"] = "示范区西溪街道翠苑社区3幢1单元102室"
    return {**district, "records": recs}


def test_a_move_rewrites_both_households_it_leaves_and_joins(tmp_path, district):
    night1 = _household(district)
    recs = night1["records"].copy()  # 李娜 moves to 王芳's flat, 张伟 now lives alone
    recs.loc[recs["record_id"] == "health:10", ["address", "record_date"]] = ["示范区西溪街道翠苑社区3幢1单元102室", "2026-11-20"]
    state, carried, _ = _carried_and_whole(tmp_path, night1, {**night1, "records": recs})

    assert state["built"] == "carried" and state["rows_written"] == 1
    assert state["persons_written"] == 3  # 李娜, and the households of 张伟 (she left) and 王芳 (she joined)
    sizes = carried["unified_population"].set_index("person_id")["household_size"].to_dict()
    assert sizes == {"P_zhang": 1, "P_li": 2, "P_wang": 2}


def test_a_year_later_every_age_and_what_follows_from_it_is_written_again(tmp_path, district):
    night1 = _household(district)
    state, carried, _ = _carried_and_whole(tmp_path, night1, night1, as_of=date(2027, 11, 23))

    assert state["built"] == "carried" and state["rows_written"] == 0
    assert state["persons_written"] == 3  # every age moved on (and the households they are counted in)
    ages = carried["unified_population"].set_index("person_id")["age"].to_dict()
    assert ages == {"P_zhang": 77, "P_li": 42, "P_wang": 4}


def test_a_consent_decision_rewrites_only_its_persons_row(tmp_path, district):
    consent = pd.concat([district["consent"], pd.DataFrame({
        "record_id": ["consent:4"], "source": "consent_registry", "source_key": ["4"], "id_number": [LI],
        "name": ["李娜"], "purpose": ["service_delivery"], "recipient": ["*"], "status": ["withdrawn"],
        "decided_at": pd.to_datetime(["2026-11-20"], utc=True), "channel": ["电话"]})], ignore_index=True)
    state, carried, _ = _carried_and_whole(tmp_path, district, {**district, "consent": consent})

    assert state["built"] == "carried" and state["rows_written"] == 0 and state["persons_written"] == 1
    row = carried["unified_population"].set_index("person_id").loc["P_li"]
    assert dict(row["consent"])["service_delivery@*"] == "withdrawn"


def test_carried_rows_take_the_nights_extraction_time(tmp_path, district):
    first = district["records"].assign(extracted_at=pd.Timestamp("2026-11-22 02:00", tz="UTC"))
    _publish(tmp_path, {**district, "records": first}, "run1")
    tonight = pd.Timestamp("2026-11-23 02:00", tz="UTC")
    _publish(tmp_path, {**district, "records": first.assign(extracted_at=tonight)}, "run2")

    assert _state(tmp_path)["built"] == "carried" and _state(tmp_path)["rows_written"] == 0
    with duckdb.connect(str(DataHome.at(tmp_path).warehouse_file), read_only=True) as con:
        assert con.execute("SELECT DISTINCT extracted_at FROM source_records").fetchall() == [(tonight.to_pydatetime(),)]


def test_a_night_builds_whole_when_the_area_register_changes(tmp_path, district):
    register = tmp_path / "areas.csv"
    register.write_text("street,community,grid,buildings\n西溪街道,翠苑社区,翠苑社区第1网格,1-12\n", encoding="utf-8")
    home = tmp_path / "home"
    _publish(home, district, "run1", areas=load_area_register(register))
    _publish(home, district, "run2", areas=load_area_register(register))
    assert _state(home)["built"] == "carried"

    register.write_text("street,community,grid,buildings\n西溪街道,翠苑社区,翠苑社区第1网格,1-1\n"
                        "西溪街道,翠苑社区,翠苑社区第2网格,2-12\n", encoding="utf-8")
    _publish(home, district, "run3", areas=load_area_register(register))

    state = _state(home)
    assert state["built"] == "whole" and "area register" in state["why_whole"]
    with duckdb.connect(str(DataHome.at(home).warehouse_file), read_only=True) as con:
        # civil_affairs:1 (翠苑社区1幢) is placed by the new register, as a carried row would not be
        assert con.execute("SELECT address_grid FROM source_records WHERE record_id = 'civil_affairs:1'").fetchone() \
            == ("翠苑社区第1网格",)
        assert con.execute("SELECT grid FROM unified_population WHERE person_id = 'P_zhang'").fetchone() \
            == ("翠苑社区第1网格",)


def test_a_whole_build_comes_at_least_every_whole_every_nights(tmp_path, district, monkeypatch):
    monkeypatch.setattr(publish.carry, "WHOLE_EVERY", 3)
    built = []
    for night in range(1, 7):
        _publish(tmp_path, district, f"run{night}")
        built.append((_state(tmp_path)["built"], _state(tmp_path)["nights_carried"]))
    assert built == [("whole", 0), ("carried", 1), ("carried", 2), ("whole", 0), ("carried", 1), ("carried", 2)]


def test_a_publication_without_carry_state_is_not_built_on(tmp_path, district):
    _publish(tmp_path, district, "run1")
    with warehouse_rewritten(tmp_path) as con:  # as a warehouse of an earlier version
        con.execute("DROP TABLE carry_state")
    _publish(tmp_path, district, "run2")
    assert _state(tmp_path)["built"] == "whole"
    assert _state(tmp_path)["why_whole"] == "the last publication does not record how it was built"


@pytest.mark.parametrize("changed", ["name", "person"])
def test_a_changed_record_is_written_again(tmp_path, district, changed):
    _publish(tmp_path, district, "run1")
    day = dict(district)
    if changed == "name":
        day["records"] = district["records"].assign(
            name=district["records"]["name"].where(district["records"]["record_id"] != "health:10", "李娜娜"))
    else:
        day["mapping"] = district["mapping"].assign(
            person_id=district["mapping"]["person_id"].where(district["mapping"]["record_id"] != "census:5", "P_new"))
    _publish(tmp_path, day, "run2")

    assert (_state(tmp_path)["rows_carried"], _state(tmp_path)["rows_written"]) == (3, 1)
    with duckdb.connect(str(DataHome.at(tmp_path).warehouse_file), read_only=True) as con:
        rows = con.execute("SELECT record_id, person_id, name FROM source_records ORDER BY record_id").fetchall()
    expected = {"health:10": ("health:10", "P_li", "李娜娜")} if changed == "name" else \
        {"census:5": ("census:5", "P_new", "王芳")}
    assert [r for r in rows if r[0] in expected] == list(expected.values())
    assert len(rows) == 4


def test_records_with_a_new_column_are_written_whole(tmp_path, district):
    _publish(tmp_path, district, "run1")
    _publish(tmp_path, {**district, "records": district["records"].assign(pet_name="小张")}, "run2")

    state = _state(tmp_path)
    assert state["built"] == "whole" and "columns" in state["why_whole"]
    with duckdb.connect(str(DataHome.at(tmp_path).warehouse_file), read_only=True) as con:
        assert con.execute("SELECT DISTINCT pet_name FROM source_records").fetchall() == [("小张",)]


def test_night_after_night_each_carried_warehouse_equals_a_whole_build(tmp_path, district):
    night1 = _household(district)
    moved = night1["records"].copy()
    moved.loc[moved["record_id"] == "health:10", ["address", "record_date"]] = ["示范区西溪街道翠苑社区3幢1单元102室",
                                                                                "2026-11-20"]
    nights = [
        (night1, {}),
        ({**night1, "records": moved}, {}),  # 李娜 moves
        (_next_day({**night1, "records": moved}), {"as_of": date(2026, 11, 24)}),  # records change, a day passes
        (_next_day({**night1, "records": moved}), {"as_of": date(2027, 2, 2)}),  # 李娜's birthday
    ]
    carried = tmp_path / "carried"
    _publish(carried, *nights[0][:1], "run1")
    for number, (inputs, changes) in enumerate(nights[1:], start=2):
        whole = tmp_path / f"whole{number}"
        shutil.copytree(carried, whole, symlinks=True)  # the same home (keys, audit log) the night before
        (DataHome.at(whole).kept_dir / "publication.json").unlink()
        _publish(carried, inputs, f"run{number}", **changes)
        _publish(whole, inputs, f"run{number}", **changes)
        assert (_state(carried)["built"], _state(carried)["nights_carried"]) == ("carried", number - 1)
        a, b = _tables(carried), _tables(whole)
        for table in a:
            pd.testing.assert_frame_equal(a[table], b[table], obj=f"night {number}: {table}")


def _pairs(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["record_id_l", "record_id_r", "score"])


def test_link_pairs_and_consent_decisions_keep_the_rows_tonight_still_holds(tmp_path, district, monkeypatch):
    compared = {}

    def spy(con, table, incoming):
        compared[table] = publish.carry.carry_rows(con, table, incoming)
        return compared[table]

    monkeypatch.setattr(publish.warehouse, "carry_rows", spy)
    night1 = {"link_pairs": _pairs(("civil_affairs:1", "health:9", 12.0), ("health:9", "health:10", 3.5),
                                   ("census:5", "health:10", -2.0))}
    # a pair rescored, a pair gone, a new pair; a decision withdrawn and a new one
    night2 = {"link_pairs": _pairs(("civil_affairs:1", "health:9", 12.0), ("health:9", "health:10", 4.25),
                                   ("civil_affairs:1", "census:5", 1.0))}
    consent = district["consent"].copy()
    consent.loc[0, "status"] = "withdrawn"
    consent = pd.concat([consent, consent.iloc[[1]].assign(record_id="consent:9", source_key="9")], ignore_index=True)
    carried, whole = tmp_path / "carried", tmp_path / "whole"
    _publish(carried, district, "run1", **night1)
    shutil.copytree(carried, whole, symlinks=True)
    (DataHome.at(whole).kept_dir / "publication.json").unlink()
    for home in (carried, whole):
        _publish(home, {**district, "consent": consent}, "run2", **night2)

    a, b = _tables(carried), _tables(whole)
    for table in ("link_pairs", "consent_decisions"):
        pd.testing.assert_frame_equal(a[table], b[table], obj=table)
    assert _state(carried)["built"] == "carried"
    assert sorted(a["link_pairs"]["score"]) == [1.0, 4.25, 12.0]
    # row by row: the unchanged pair and decisions kept; the rescored and new pair, the withdrawal and the
    # new decision written
    assert compared == {"link_pairs": (1, 2), "consent_decisions": (len(district["consent"]) - 1, 2)}
    assert len(a["consent_decisions"]) == len(district["consent"]) + 1


def test_carry_rows_writes_only_the_rows_that_changed_and_falls_back_when_it_cannot_compare(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.register("before", _pairs(("a", "b", 1.0), ("a", "c", 2.0), ("b", "c", 3.0)))
    con.execute("CREATE TABLE link_pairs AS SELECT * FROM before")
    tonight = _pairs(("a", "b", 1.0), ("a", "c", 2.5), ("c", "d", 4.0))
    con.register("tonight", tonight)

    con.execute("CREATE TEMP TABLE _changed (record_id_l VARCHAR)")
    # (a,b) kept; (a,c) and (c,d) written, (b,c) gone; the record_id_l of the rows deleted and written noted
    assert publish.carry.carry_rows(con, "link_pairs", "tonight", changed=("record_id_l", "_changed")) == (1, 2)
    assert sorted(con.execute("SELECT * FROM _changed").fetchall()) == [("a",), ("b",), ("c",)]
    assert con.execute("SELECT * FROM link_pairs ORDER BY ALL").fetchall() == [("a", "b", 1.0), ("a", "c", 2.5),
                                                                              ("c", "d", 4.0)]
    # The same rows again (a registry sent unchanged): all kept, none written.
    assert publish.carry.carry_rows(con, "link_pairs", "tonight") == (3, 0)
    assert con.execute("SELECT count(*) FROM link_pairs").fetchall() == [(3,)]
    # A row twice tonight: comparing rows cannot count repeats, so the table goes, to be written whole.
    con.register("twice", pd.concat([tonight, tonight.iloc[[0]]], ignore_index=True))
    assert publish.carry.carry_rows(con, "link_pairs", "twice") is None
    assert not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'link_pairs'").fetchone()[0]
    # Other column types (or order, or names): written whole too.
    con.execute("CREATE TABLE link_pairs AS SELECT * FROM before")
    con.register("typed", tonight.assign(score=tonight["score"].astype("float32")))
    assert publish.carry.carry_rows(con, "link_pairs", "typed") is None
    con.execute("CREATE TABLE link_pairs AS SELECT * FROM before")
    con.register("reordered", tonight[["record_id_r", "record_id_l", "score"]])
    assert publish.carry.carry_rows(con, "link_pairs", "reordered") is None
    assert publish.carry.carry_rows(con, "link_pairs", "tonight") is None  # no such table (any more)


def test_the_area_conflicts_and_hukou_places_of_the_persons_written_follow_their_records(tmp_path, district):
    register = tmp_path / "areas.csv"
    register.write_text("street,community,grid,buildings\n西溪街道,翠苑社区,翠苑社区第1网格,1-12\n"
                        "西溪街道,文新社区,文新社区第1网格,1-12\n", encoding="utf-8")
    elsewhere = ["西溪街道", "文新社区", "文新社区第1网格"]
    recs = district["records"].copy()
    # night 1: 张伟's health visit states another community than civil affairs (a conflict); 王芳's 户籍 is
    # outside the district (a place no register names)
    recs.loc[recs["record_id"] == "health:9", ["street", "community", "grid"]] = elsewhere
    recs.loc[recs["record_id"] == "census:5", ["address", "hukou_address"]] = ["示范区西溪街道翠苑社区3幢",
                                                                              "甘肃省兰州市城关区某街道5号"]
    night1 = {**district, "records": recs}
    # night 2: the visit corrected (no conflict left); civil affairs places 李娜 in 翠苑 where health says 文新
    # (a new conflict); 王芳's 户籍 is now in 文新社区, another flat than where she lives
    recs = recs.copy()
    recs.loc[recs["record_id"] == "health:9", ["street", "community", "grid"]] = ["西溪街道", "翠苑社区", "翠苑社区第1网格"]
    recs.loc[recs["record_id"] == "health:10", ["street", "community", "grid"]] = elsewhere
    recs.loc[recs["record_id"] == "census:5", "hukou_address"] = "示范区西溪街道文新社区2幢"
    li = records(dict(record_id="civil_affairs:2", source="civil_affairs", source_key="2", name="李娜", sex="F",
                      birth_date="1985-02-02", birth_date_precision="day", id_number=LI, id_number_valid=True,
                      id_sex="F", street="西溪街道", community="翠苑社区", grid="翠苑社区第1网格", record_date="2026-04-01"))
    mapping = pd.concat([district["mapping"], pd.DataFrame({"record_id": ["civil_affairs:2"], "person_id": ["P_li"]})],
                        ignore_index=True)
    night2 = {**district, "records": pd.concat([recs, li], ignore_index=True), "mapping": mapping}

    state, carried, _ = _carried_and_whole(tmp_path, night1, night2, both={"areas": load_area_register(register)})

    assert state["built"] == "carried"
    assert set(carried["area_conflicts"]["person_id"]) == {"P_li"}
    population = carried["unified_population"].set_index("person_id")
    assert population.loc["P_wang", "residence_type"] == "separated"  # 人户分离 (was floating: 户籍 elsewhere)
    assert population.loc["P_li", "community"] == "文新社区"  # the later record's area


def test_a_grant_that_expires_between_two_nights_rewrites_its_persons_row(tmp_path, district, monkeypatch):
    # No decision changes; 李娜's grant expires on the 24th, between the nights of the 23rd and the 25th.
    consent = district["consent"].assign(expires_at=pd.to_datetime([None, None, "2026-11-24"], utc=True))
    changed = []
    real = publish.carry.carry_unified_population

    def spy(con, golden, as_of, place, consent_changed=None):
        changed.append(sorted(r[0] for r in con.execute(f"SELECT person_id FROM {consent_changed}").fetchall()))
        return real(con, golden, as_of, place, consent_changed)

    monkeypatch.setattr(publish.warehouse, "carry_unified_population", spy)
    night = {**district, "consent": consent}
    state, carried, _ = _carried_and_whole(tmp_path, night, night, both={"as_of": date(2026, 11, 23)},
                                           as_of=date(2026, 11, 25))

    assert state["built"] == "carried" and state["rows_written"] == 0
    assert changed == [["P_li"]]  # found by comparing the consent rows, not every person's maps
    assert state["persons_written"] == 1
    effective = dict(carried["unified_population"].set_index("person_id").loc["P_li", "effective_consent"])
    assert set(effective.values()) == {"expired"}
