"""Grid workers' updates in the golden record, 户籍地 beside 居住地, and the base register's gaps per grid.

A district of seven: what each grid worker reported, what the departments hold, and what the unified table,
the grid lists and ``census_gaps`` must then say."""

from __future__ import annotations

import pandas as pd
import pytest

from publish import Warehouse, WarehouseReader
from publish.areas import load_area_register
from staging.schema import CANONICAL_COLUMNS, empty_consent_frame
from tests.publish.conftest import make_inputs, policy, read_shared, records, staging_report

pytestmark = pytest.mark.integration

GRID1, GRID2 = "翠苑社区第1网格", "翠苑社区第2网格"
REGISTER = "街道,社区,网格,楼栋\n西溪街道,翠苑社区,翠苑社区第1网格,1-10\n西溪街道,翠苑社区,翠苑社区第2网格,11-20\n"
HOME = "示范区西溪街道翠苑社区"

# A statutory list (民政 service under the 社区 law): consent is not what these tests are about.
GRID_LIST = dict(name="grid_list", description="网格员", kind="grid_worker", level="grid", purpose="service_delivery",
                 legal_basis="statutory", legal_reference="城市居民委员会组织法",
                 columns=["person_id", "name", "phone", "residence_type", "key_populations"],
                 scope={"grid": "*"}, population=["elderly", "elderly_living_alone"])
# Everyone is a man: one class of k 2, so no row is suppressed or left out here (that is test_anonymity.py's).
ANALYSTS = dict(name="analysts", description="统计", kind="analyst", level="district", purpose="statistics",
                legal_basis="statutory", legal_reference="统计法", pseudonymise=True,
                columns=["person_id", "sex", "key_populations"], key_populations=["elderly"],
                k_anonymity={"k": 2, "known_populations": []})


def _record(source, key, person, name, birth, **fields):
    precision = "month" if len(birth) == 7 else "day"
    return dict(record_id=f"{source}:{key}", source=source, source_key=key, name=name, birth_date=birth,
                birth_date_precision=precision, sex=fields.pop("sex", "M"), _person=person, **fields)


ROWS = [
    # 老周 (86): civil affairs says he does not live alone (2025); the worker found him alone, new phone (2026-10)
    _record("civil_affairs", "1", "P_zhou", "周大山", "1940-01-01", phone="13800000001", lives_alone=False,
            address=f"{HOME}3幢1单元101室", record_date="2025-01-01"),
    _record("grid_updates", "1", "P_zhou", "周大山", "1940-01", phone="13900000002", lives_alone=True,
            residence_status="present", change="独居", reported_by="周丽", note="老伴去世后独居",
            address="翠苑社区3-1-101", record_date="2026-10-01"),
    # 老李 (91), living alone by civil affairs; reported deceased
    _record("civil_affairs", "2", "P_li", "李长根", "1935-05-05", lives_alone=True, address=f"{HOME}4幢1单元101室",
            record_date="2025-06-01"),
    _record("census", "2", "P_li", "李长根", "1935-05", address=f"{HOME}4幢1单元101室"),
    _record("grid_updates", "2", "P_li", "李长根", "1935-05", residence_status="deceased", change="死亡",
            reported_by="周丽", record_date="2026-09-01"),
    # 王伟 (72): reported moved out in March, but civil affairs registered him living here in August
    _record("grid_updates", "3", "P_wang", "王伟", "1954-02", residence_status="moved_out", change="迁出",
            reported_by="周丽", record_date="2026-03-01"),
    _record("civil_affairs", "3", "P_wang", "王伟", "1954-02-02", residence_status="present",
            address=f"{HOME}6幢1单元101室", record_date="2026-08-01"),
    _record("census", "3", "P_wang", "王伟", "1954-02", address=f"{HOME}6幢1单元101室",
            hukou_address=f"{HOME}6幢1单元101室"),
    # 张三: only the census knows him; registered in 合肥 (流动人口)
    _record("census", "4", "P_zhang", "张三", "1988-03", address=f"{HOME}5幢2单元202室",
            hukou_address="安徽省合肥市蜀山区人民路1号"),
    # 李四: lives in grid 1, registered at a flat of grid 2 (人户分离) by the census; civil affairs writes another 户籍
    _record("census", "5", "P_lisi", "李四", "1975-07", address=f"{HOME}5幢2单元202室",
            hukou_address=f"{HOME}12幢1单元101室"),
    _record("civil_affairs", "5", "P_lisi", "李四", "1975-07-07", address=f"{HOME}5幢2单元202室",
            hukou_address="安徽省合肥市蜀山区人民路9号", record_date="2026-02-01"),
    # 王五: registered where he lives, written in another way (人户一致)
    _record("census", "6", "P_wu", "王五", "1980-01", address=f"{HOME}7幢1单元301室", hukou_address="翠苑社区7-1-301"),
    _record("health", "6", "P_wu", "王五", "1980-01-01", address=f"{HOME}7幢1单元301室", record_date="2026-05-01"),
    # 赵六: moved in; only the grid worker knows him
    _record("grid_updates", "7", "P_zhao", "赵六", "1990-09", residence_status="present", change="迁入",
            address="翠苑社区8-1-101", reported_by="周丽", record_date="2026-10-15"),
    # 孙七: known to civil affairs, not to the census, and reported deceased: on no list at all
    _record("civil_affairs", "8", "P_sun", "孙七", "1930-01-01", address=f"{HOME}9幢1单元101室",
            record_date="2024-01-01"),
    _record("grid_updates", "8", "P_sun", "孙七", "1930-01", residence_status="deceased", change="死亡",
            reported_by="周丽", record_date="2026-10-20"),
]


@pytest.fixture
def warehouse(tmp_path):
    register_file = tmp_path / "areas.csv"
    register_file.write_text(REGISTER, encoding="utf-8")
    recs = records(*ROWS)
    mapping = pd.DataFrame({"record_id": [r["record_id"] for r in ROWS], "person_id": [r["_person"] for r in ROWS]})
    district = {"records": recs, "mapping": mapping, "consent": empty_consent_frame()}
    sources = ("civil_affairs", "health", "census")
    inputs = make_inputs(
        district, areas=load_area_register(register_file), base_source="census",
        trust={"civil_affairs": 0, "health": 1, "census": 2, "grid_updates": 3},
        staging_reports=[*(staging_report(s) for s in sources), staging_report("grid_updates", role="grid_updates")])
    home = tmp_path / "home"
    wh = Warehouse(home)
    candidate = wh.build_candidate(inputs, policy(GRID_LIST, ANALYSTS))
    wh.publish(candidate)
    with WarehouseReader(home).connect() as con:
        people = con.execute("SELECT * FROM unified_population").df().set_index("person_id")
        gaps = con.execute("SELECT person_id, gap, grid FROM census_gaps").df()
        updates = con.execute("SELECT * FROM grid_updates").df().set_index("record_id")
        keys = con.execute("SELECT person_id, category FROM key_residents").df()
    return home, people, gaps, updates, keys


def test_the_newest_grid_update_says_whether_a_person_lives_alone_and_gives_the_phone(warehouse):
    _, people, _, updates, keys = warehouse
    zhou = people.loc["P_zhou"]
    assert zhou["lives_alone"] and zhou["elderly_living_alone"]
    assert (zhou["phone"], zhou["phone_source"]) == ("13900000002", "grid_updates")
    assert ("P_zhou", "elderly_living_alone") in set(keys.itertuples(index=False, name=None))
    assert updates.loc["grid_updates:1", "taken"] and updates.loc["grid_updates:1", "change"] == "独居"
    # the name and birth date are the registers', not the worker's typing
    assert (zhou["birth_date"], zhou["birth_date_source"]) == ("1940-01-01", "civil_affairs")
    # Seen: the worker's shorthand 翠苑社区3-1-101 (the flat civil affairs writes in full) became the address every
    # department's product shows. The update says he lives there (its date), the register how that is written.
    assert (zhou["address"], zhou["address_source"], str(zhou["address_date"])[:10]) == (
        f"{HOME}3幢1单元101室", "grid_updates", "2026-10-01")
    # A flat no department has written stays as the worker wrote it: it is all anyone knows.
    assert people.loc["P_zhao", "address"] == "翠苑社区8-1-101"


def test_a_deceased_person_leaves_key_populations_and_the_grid_list_but_stays_in_the_table(warehouse):
    home, people, _, updates, keys = warehouse
    li = people.loc["P_li"]
    assert (li["residence_status"], li["residence_status_source"]) == ("deceased", "grid_updates")
    assert not li["elderly"] and not li["elderly_living_alone"] and len(li["key_populations"]) == 0
    assert "P_li" not in set(keys["person_id"])
    listed = read_shared(home, "grid_list_cuiyuan_1")
    assert "P_zhou" in set(listed["person_id"]) and "P_li" not in set(listed["person_id"])
    assert updates.loc["grid_updates:2", "taken"] and updates.loc["grid_updates:2", "status_now"] == "deceased"


def test_an_analyst_row_is_a_resident_so_a_missing_category_does_not_say_who_died(warehouse):
    # Seen: a departed person shows no key population, so an analyst row of someone over 60 without `elderly`
    # told that its person had died or moved out (54 rows of a 20,000-person district).
    home, people, *_ = warehouse
    rows = read_shared(home, "analysts")
    present = people["residence_status"].isna() | ~people["residence_status"].isin(["deceased", "moved_out"])
    assert len(rows) == present.sum() < len(people)  # 李长根 and 孙七 are reported deceased
    assert (rows["key_populations"].map(list).map(lambda k: "elderly" in k)).sum() == (
        present & people["elderly"]).sum() == (present & (people["age"] >= 60)).sum()


def test_a_newer_department_record_outranks_an_older_moved_out_report_and_the_update_shows_not_taken(warehouse):
    home, people, _, updates, _ = warehouse
    wang = people.loc["P_wang"]
    assert wang["residence_status"] == "present" and wang["residence_status_source"] == "civil_affairs"
    assert "residence_status" in list(wang["conflict_fields"])
    assert not updates.loc["grid_updates:3", "taken"]
    assert "P_wang" in set(read_shared(home, "grid_list_cuiyuan_1")["person_id"])


def test_hukou_from_the_base_register_first_and_the_residence_type_it_gives(warehouse):
    home, people, _, _, _ = warehouse
    assert people.loc["P_lisi", "hukou_address_source"] == "census"
    assert people.loc["P_lisi", "residence_type"] == "separated"  # registered at a flat of grid 2, lives in grid 1
    assert people.loc["P_zhang", "residence_type"] == "floating"
    assert people.loc["P_wu", "residence_type"] == "registered"  # the same flat, written 7-1-301
    assert people.loc["P_wang", "residence_type"] == "registered"
    assert pd.isna(people.loc["P_zhao", "residence_type"])  # no 户籍地址 known
    listed = read_shared(home, "grid_list_cuiyuan_1").set_index("person_id")
    assert listed.loc["P_wang", "residence_type"] == "registered"


def test_census_gaps_list_who_the_census_misses_and_who_only_it_knows_per_grid(warehouse):
    _, _, gaps, _, _ = warehouse
    found = {(r.person_id, r.gap, r.grid) for r in gaps.itertuples(index=False)}
    assert found == {
        ("P_zhou", "not_in_census", GRID1),   # civil affairs and the grid worker know him
        ("P_zhao", "not_in_census", GRID1),   # moved in, known to the grid worker alone
        ("P_zhang", "census_only", GRID1),    # no department nor worker confirms him
    }  # 孙七 (not in the census) is reported deceased: on no list


def test_without_an_area_register_residence_type_is_known_only_where_the_flats_agree(tmp_path):
    recs = records(*ROWS)
    mapping = pd.DataFrame({"record_id": [r["record_id"] for r in ROWS], "person_id": [r["_person"] for r in ROWS]})
    district = {"records": recs, "mapping": mapping, "consent": empty_consent_frame()}
    wh = Warehouse(tmp_path / "home")
    candidate = wh.build_candidate(make_inputs(district, base_source="census"), policy(GRID_LIST))
    types = candidate.read("SELECT person_id, residence_type FROM unified_population").set_index("person_id")
    assert types.loc["P_wu", "residence_type"] == "registered"
    # in the district or not cannot be told without the register: unknown, not guessed
    assert pd.isna(types.loc["P_zhang", "residence_type"]) and pd.isna(types.loc["P_lisi", "residence_type"])


FLAT_A, FLAT_B, FLAT_C = f"{HOME}10幢1单元101室", f"{HOME}10幢2单元101室", f"{HOME}10幢3单元101室"
HOUSEHOLDS = [
    # grandparents raising a grandchild; the parent was reported moved out (works away): 一老一小, 留守儿童
    ("P_gpa", "钱老汉", "1958-01-01", FLAT_A), ("P_gma", "孙老太", "1960-03-03", FLAT_A),
    ("P_kid", "钱小宝", "2018-06-06", FLAT_A), ("P_dad", "钱大伟", "1988-08-08", FLAT_A),
    # an elderly couple on their own: 空巢老人
    ("P_oa", "吴老伯", "1950-02-02", "翠苑社区10-2-101"), ("P_ob", "郑阿婆", "1952-04-04", FLAT_B),
    # a child with a parent at home: none of these
    ("P_kid2", "冯小明", "2019-09-09", FLAT_C), ("P_mum", "冯丽", "1990-10-10", FLAT_C),
]


@pytest.fixture
def households(tmp_path):
    rows = [_record("civil_affairs", f"h{i}", person, name, birth, address=address, record_date="2026-01-01")
            for i, (person, name, birth, address) in enumerate(HOUSEHOLDS)]
    rows.append(_record("grid_updates", "h9", "P_dad", "钱大伟", "1988-08", residence_status="moved_out", change="迁出",
                        note="外出务工", reported_by="周丽", record_date="2026-10-01"))
    mapping = pd.DataFrame({"record_id": [r["record_id"] for r in rows], "person_id": [r["_person"] for r in rows]})
    district = {"records": records(*rows), "mapping": mapping, "consent": empty_consent_frame()}
    inputs = make_inputs(district, trust={"civil_affairs": 0, "grid_updates": 1},
                         staging_reports=[staging_report("civil_affairs"),
                                          staging_report("grid_updates", role="grid_updates")])
    candidate = Warehouse(tmp_path / "home").build_candidate(inputs, policy(GRID_LIST))
    return candidate.read("SELECT person_id, household_size, household_working_age, household_elderly, "
                          "household_children, elderly_with_child, left_behind_child, empty_nest_elderly "
                          "FROM unified_population").set_index("person_id")


def test_one_old_one_young_and_left_behind_children_from_who_shares_the_flat(households):
    flags = households[["elderly_with_child", "left_behind_child", "empty_nest_elderly"]]
    listed = {person: tuple(code for code, on in row.items() if on) for person, row in flags.iterrows()}
    assert listed == {
        "P_gpa": ("elderly_with_child",), "P_gma": ("elderly_with_child",),
        "P_kid": ("elderly_with_child", "left_behind_child"),
        "P_dad": (),  # moved out: in no category, and not counted in the household he left
        "P_oa": ("empty_nest_elderly",), "P_ob": ("empty_nest_elderly",),  # 10-2-101 is 10幢2单元101室
        "P_kid2": (), "P_mum": (),
    }
    counts = households[["household_size", "household_working_age", "household_elderly", "household_children"]]
    assert {person: tuple(row) for person, row in counts.astype("Int64").astype(object).iterrows()} == {
        "P_gpa": (3, 0, 2, 1), "P_gma": (3, 0, 2, 1), "P_kid": (3, 0, 2, 1),
        "P_dad": (pd.NA,) * 4,  # counted in no household: he moved out
        "P_oa": (2, 0, 2, 0), "P_ob": (2, 0, 2, 0),
        "P_kid2": (2, 1, 0, 1), "P_mum": (2, 1, 0, 1),
    }


def test_last_weeks_reports_outlive_this_weeks_empty_form(warehouse, tmp_path):
    # The next run reads an empty form: the grid-update source's records are the reports the warehouse kept.
    from assets.staged import with_earlier_reports

    home = warehouse[0]
    kept = WarehouseReader(home).kept_records("grid_updates")
    assert len(kept) == 5 and list(kept.columns) == list(CANONICAL_COLUMNS)
    assert kept.dtypes.to_dict() == {c: pd.Series(dtype=t).dtype for c, t in CANONICAL_COLUMNS.items()}
    assert set(kept["record_date"]) >= {"2026-10-01", "2026-09-01"}
    records_now = with_earlier_reports(kept.iloc[0:0], kept)  # this week: a header-only form
    departments = records(*[r for r in ROWS if r["source"] != "grid_updates"])
    rows = [r for r in ROWS]
    mapping = pd.DataFrame({"record_id": [r["record_id"] for r in rows], "person_id": [r["_person"] for r in rows]})
    district = {"records": pd.concat([departments, records_now], ignore_index=True), "mapping": mapping,
                "consent": empty_consent_frame()}
    inputs = make_inputs(district, base_source="census", trust={"civil_affairs": 0, "health": 1, "census": 2},
                         staging_reports=[*(staging_report(s) for s in ("civil_affairs", "health", "census")),
                                          staging_report("grid_updates", role="grid_updates")])
    candidate = Warehouse(tmp_path / "next").build_candidate(inputs, policy(GRID_LIST))
    status = candidate.read("SELECT person_id, residence_status, lives_alone FROM unified_population").set_index("person_id")
    assert status.loc["P_li", "residence_status"] == "deceased" and status.loc["P_zhou", "lives_alone"]


def test_a_look_up_does_not_count_a_person_reported_deceased_as_already_registered(warehouse, tmp_path):
    # A worker typing 李长根 at his old flat must not be told "someone registered matches, do not enter":
    # he died. Someone reported moved out who comes back is entered again (迁入) and linked to his record.
    from dedup.settings import LinkSettings
    from publish.lookup import LookupQuery, lookup

    home = warehouse[0]
    found = lookup(home, "grid_list_cuiyuan_1", LookupQuery(name="李长根", sex="男", birth="1935-05",
                   address="翠苑社区4-1-101"), policy(GRID_LIST), load_area_register(tmp_path / "areas.csv"),
                   LinkSettings())
    assert (found.matches, found.withheld) == ([], 0)
    alive = lookup(home, "grid_list_cuiyuan_1", LookupQuery(name="周大山", birth="1940-01", address="翠苑社区3-1-101"),
                   policy(GRID_LIST), load_area_register(tmp_path / "areas.csv"), LinkSettings())
    assert [m.fields["person_id"] for m in alive.matches] == ["P_zhou"]
