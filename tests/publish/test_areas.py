"""Areas from addresses: the area register, the address matcher, and the choice between areas by recency."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from core.errors import ConfigError
from publish import Warehouse, WarehouseReader, address_areas, load_area_register
from publish.areas import add_address_places, add_person_areas
from tests.publish.conftest import make_inputs, policy, records

REGISTER = """街道,社区,网格,楼栋,别名
西溪街道,翠苑社区,翠苑一网格,1-12,翠苑新村
西溪街道,翠苑社区,翠苑二网格,"13-20,25幢",
西溪街道,桂花社区,桂花网格,,
东湖街道,和睦村,和睦村网格,1-30,
"""

STATUTORY = dict(name="civil", description="民政", kind="department", level="district", purpose="service_delivery",
                 legal_basis="statutory", columns=["person_id", "name", "street", "community", "grid"])


def write(tmp_path, text: str, encoding: str = "utf-8-sig"):
    path = tmp_path / "areas.csv"
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture
def register(tmp_path):
    return load_area_register(write(tmp_path, REGISTER))


@pytest.mark.parametrize(
    ("address", "street", "community", "grid"),
    [
        ("翠苑社区1-2-302", "西溪街道", "翠苑社区", "翠苑一网格"),
        ("杭州市西湖区翠苑街道翠苑社区3幢2单元501室", "西溪街道", "翠苑社区", "翠苑一网格"),
        ("示范区西溪街道翠苑社区１３幢２单元５０１室", "西溪街道", "翠苑社区", "翠苑二网格"),  # full-width digits
        ("西溪街道 翠苑社区 25 幢", "西溪街道", "翠苑社区", "翠苑二网格"),  # spaces as typed
        ("西溪街道翠苑12栋3单元", "西溪街道", "翠苑社区", "翠苑一网格"),  # no 社区 suffix
        ("翠苑居委会14号楼", "西溪街道", "翠苑社区", "翠苑二网格"),  # another suffix
        ("示范區西溪街道翠苑社區3幢", "西溪街道", "翠苑社区", "翠苑一网格"),  # traditional characters
        ("翠苑新村5幢", "西溪街道", "翠苑社区", "翠苑一网格"),  # an alias from the register
        ("西溪街道桂花社区88幢1单元", "西溪街道", "桂花社区", "桂花网格"),  # a grid covering the whole community
        ("东湖街道和睦村委会3组", "东湖街道", "和睦村", "和睦村网格"),  # a village and its own suffix
        ("翠苑社区21幢", "西溪街道", "翠苑社区", None),  # a building no grid covers: community, no grid
        ("翠苑社区", "西溪街道", "翠苑社区", None),  # no building number
        ("西溪街道无名社区3幢", None, None, None),  # a community the register does not know
        ("翠苑街道3号", None, None, None),  # a bare name not followed by a building number
        (None, None, None, None),
    ],
)
def test_an_address_gives_the_area_its_community_and_building_name(register, address, street, community, grid):
    found = address_areas(pd.Series([address]), register).iloc[0]
    assert tuple(None if pd.isna(v) else v for v in found[["street", "community", "grid"]]) == (street, community, grid)


def test_addresses_are_matched_in_their_order_on_their_index(register):
    found = address_areas(pd.Series(["桂花社区1幢", "无名3幢", "翠苑社区13幢"], index=[7, 3, 5]), register)
    assert list(found.index) == [7, 3, 5]
    assert found["grid"].fillna("-").tolist() == ["桂花网格", "-", "翠苑二网格"]


def test_a_register_saved_by_excel_as_gbk_reads(tmp_path):
    register = load_area_register(write(tmp_path, REGISTER.replace(",翠苑新村", ","), encoding="gbk"))
    assert register.communities == {"翠苑社区": "西溪街道", "桂花社区": "西溪街道", "和睦村": "东湖街道"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("街道,社区,网格,楼栋\n西溪街道,翠苑社区,一网格,1-x\n", "line 2 (一网格): 楼栋 '1-x' cannot be read"),
        ("街道,社区,网格,楼栋\n西溪街道,翠苑社区,一网格,12-3\n", "line 2 (一网格): 楼栋 '12-3' cannot be read"),
        ("街道,社区,网格,楼栋\n,翠苑社区,一网格,1-3\n", "line 2: 街道 is empty"),
        ("街道,社区,网格,楼栋\n西溪街道,翠苑社区,,1-3\n", "line 2 (翠苑社区): 楼栋 is given but 网格 is empty"),
        ("街道,社区,网格,楼栋\n西溪街道,翠苑社区,一网格,1-5\n西溪街道,翠苑社区,二网格,5-9\n",
         "line 3: building 5 of 翠苑社区 is in grid 二网格 and, on line 2, in grid 一网格"),
        ("街道,社区,网格,楼栋\n西溪街道,翠苑社区,一网格,1-5\n东湖街道,翠苑社区,二网格,6-9\n",
         "line 3: community 翠苑社区 is under street 东湖街道, but line 2 puts it under 西溪街道"),
        ("街道,社区,网格,楼栋\n西溪街道,翠苑社区,一网格,1-5\n西溪街道,桂花社区,一网格,1-5\n",
         "line 3: grid 一网格 is under community 桂花社区, but line 2 puts it under 翠苑社区"),
        ("街道,社区,网格,楼栋\n西溪街道,翠苑社区,一网格,\n西溪街道,翠苑社区,二网格,3-4\n",
         "line 2: grid 一网格 has no 楼栋, so it covers all of 翠苑社区"),
        ("街道,社区,网格,楼栋,别名\n西溪街道,翠苑社区,一网格,1-5,新村\n西溪街道,桂花社区,二网格,,新村\n",
         "名称 新村: addresses could mean 桂花社区 or 翠苑社区"),
        ("街道,社区,网格,楼栋号\n西溪街道,翠苑社区,一网格,1-5\n", "line 1: unknown column(s) '楼栋号' (did you mean '楼栋'?)"),
        ("街道,网格\n西溪街道,一网格\n", "line 1: column(s) 社区 missing"),
        ("街道,社区,网格,楼栋\n", "no lines; write one line per grid"),
    ],
)
def test_a_bad_register_fails_naming_the_file_the_line_and_the_fix(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_area_register(path)
    assert str(caught.value).startswith(str(path)) and expected in str(caught.value), str(caught.value)


def test_a_community_and_a_village_of_one_name_are_told_apart_by_their_suffix(tmp_path):
    register = load_area_register(write(tmp_path, "街道,社区,网格,楼栋\n西溪街道,翠苑社区,翠苑网格,\n东湖街道,翠苑村,村网格,\n"))
    found = address_areas(pd.Series(["翠苑社区3幢", "翠苑村委会5组", "翠苑3幢"]), register)
    assert found["grid"].fillna("-").tolist() == ["翠苑网格", "村网格", "-"]  # a bare 翠苑 could be either


def test_a_missing_register_says_what_file_is_expected(tmp_path):
    with pytest.raises(ConfigError, match=r"area register not found; expected a CSV with the columns 街道,社区,网格,楼栋"):
        load_area_register(tmp_path / "nowhere.csv")


def candidates(register, *rows: dict) -> duckdb.DuckDBPyConnection:
    """An in-memory warehouse with ``source_records`` from ``rows`` and their areas chosen."""
    con = duckdb.connect()
    frame = records(*rows)
    frame.insert(0, "person_id", [row.get("person_id", "P1") for row in rows])
    con.register("_records", frame)
    add_address_places(con, "_records", register)
    con.execute("CREATE TABLE source_records AS SELECT r.*, p.* EXCLUDE (address) FROM _records r "
                "LEFT JOIN _address_places p ON p.address = r.address")
    add_person_areas(con, {"civil_affairs": 0, "health": 1, "census": 2}, {"civil_affairs": "民政", "health": "卫健"})
    return con


def test_the_most_recent_record_decides_the_area_and_the_choice_is_shown(register):
    con = candidates(
        register,
        dict(record_id="civil_affairs:1", source="civil_affairs", address="西溪街道翠苑社区2幢", street="西溪街道",
             community="翠苑社区", grid="翠苑一网格", record_date="2025-01-01"),
        dict(record_id="health:1", source="health", address="西溪街道桂花社区3-1-101", record_date="2026-05-01"),
        dict(record_id="health:2", source="health", address="西溪街道桂花社区3-1-101", record_date="2024-02-01"),
    )
    chosen = con.execute("SELECT street, community, grid, grid_source, area_from_address FROM person_areas").fetchall()
    assert chosen == [("西溪街道", "桂花社区", "桂花网格", "health", True)]
    rows = con.execute("SELECT source, origin, grid, record_date, records, chosen, reason FROM area_conflicts").fetchall()
    assert rows[0] == ("health", "address", "桂花网格", "2026-05-01", 2, True,
                       "登记日期最近（2026-05-01），采用卫健记录住址对照区划登记得出的区划")
    assert {(r[0], r[1], r[2], r[5]) for r in rows[1:]} == {
        ("civil_affairs", "stated", "翠苑一网格", False), ("civil_affairs", "address", "翠苑一网格", False)}


def test_a_stated_area_more_recent_than_the_address_wins(register):
    con = candidates(
        register,
        dict(record_id="civil_affairs:1", source="civil_affairs", street="西溪街道", community="翠苑社区",
             grid="翠苑二网格", record_date="2026-03-01"),
        dict(record_id="health:1", source="health", address="翠苑社区2幢", record_date="2026-01-01"),
    )
    assert con.execute("SELECT grid, area_from_address FROM person_areas").fetchall() == [("翠苑二网格", False)]
    reason = con.execute("SELECT reason FROM area_conflicts WHERE chosen").fetchall()
    assert reason == [("登记日期最近（2026-03-01），采用民政登记的区划",)]


def test_on_the_same_date_the_area_the_address_gives_wins(register):
    # The department states 翠苑二网格, but its own address (building 2) lies in 翠苑一网格 by the register.
    con = candidates(
        register,
        dict(record_id="civil_affairs:1", source="civil_affairs", address="西溪街道翠苑社区2幢", street="西溪街道",
             community="翠苑社区", grid="翠苑二网格", record_date="2026-03-01"),
    )
    assert con.execute("SELECT grid, area_from_address FROM person_areas").fetchall() == [("翠苑一网格", True)]
    reason = con.execute("SELECT reason FROM area_conflicts WHERE chosen").fetchall()[0][0]
    assert reason == "登记日期相同（2026-03-01），采用民政记录住址对照区划登记得出的区划"


def test_agreeing_areas_and_a_missing_grid_are_no_conflict(register):
    con = candidates(
        register,
        # the address names the community only (building 21 is in no grid); the older stated grid fills it
        dict(record_id="health:1", source="health", address="翠苑社区21幢", record_date="2026-05-01"),
        dict(record_id="civil_affairs:1", source="civil_affairs", community="翠苑", grid="翠苑二网格",
             record_date="2025-01-01"),
    )
    assert con.execute("SELECT community, grid, grid_source, community_source FROM person_areas").fetchall() == [
        ("翠苑社区", "翠苑二网格", "civil_affairs", "health")]
    assert con.execute("SELECT count(*) FROM area_conflicts").fetchone()[0] == 0


def test_without_a_register_areas_come_from_what_departments_state(register):
    con = candidates(
        None,
        dict(record_id="civil_affairs:1", source="civil_affairs", address="翠苑社区2幢", street="西溪街道",
             community="翠苑社区", grid="翠苑二网格", record_date="2025-03-01"),
        dict(record_id="health:1", source="health", address="翠苑社区2幢", record_date="2026-01-01"),
    )
    assert con.execute("SELECT grid, area_from_address FROM person_areas").fetchall() == [("翠苑二网格", False)]
    assert con.execute("SELECT count(*) FROM source_records WHERE address_community IS NOT NULL").fetchone()[0] == 0


@pytest.mark.integration
def test_the_golden_record_uses_the_resolved_area(tmp_path, district, register):
    # 李娜 is known to health alone, by an address: she gets the area her address names. 张伟's civil
    # affairs record states 翠苑社区第1网格, a name the register does not use, while its address
    # (翠苑社区1幢) lies in 翠苑一网格: same record, same date, so the register's area wins, shown as a conflict.
    district["records"].loc[district["records"]["record_id"] == "health:10", "address"] = "西溪街道翠苑社区14幢"
    wh = Warehouse(tmp_path)
    wh.publish(wh.build_candidate(make_inputs(district, areas=register), policy(STATUTORY)))
    with WarehouseReader(wh.home).connect() as con:
        rows = dict(con.execute("SELECT person_id, grid FROM unified_population").fetchall())
        placed = con.execute("SELECT street_source, area_from_address FROM unified_population "
                             "WHERE person_id = 'P_li'").fetchall()
    assert rows["P_li"] == "翠苑二网格" and placed == [("health", True)]
    assert rows["P_zhang"] == "翠苑一网格"
    summary = WarehouseReader(wh.home).area_summary()
    assert (summary.placed_only_by_address, summary.in_conflict, summary.without_grid) == (1, 1, 0)
