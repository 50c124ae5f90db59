"""One policy entry for every grid: ``scope: {grid: "*"}`` gives each grid of the register its own product,
the same rows a hand-written entry for that grid would give, with the reasons and a renewal list."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from pydantic import ValidationError

from core.home import DataHome
from publish import AuditLog, Warehouse, product_key
from publish.areas import load_area_register
from publish.office import office_password, read_xlsx
from publish.products import RENEWAL_SHEET
from publish.scopes import area_slug, scope_areas
from tests.publish.conftest import make_inputs, policy, read_shared
from tests.publish.test_privacy import GRID1, GRID2, GRID_WORKER, PEOPLE, _district

pytestmark = pytest.mark.integration

GRID_WORKERS = dict(GRID_WORKER, name="grid_workers", scope={"grid": "*"}, format="xlsx",
                    columns=[*GRID_WORKER["columns"], "reasons", "consent_until"])
# The district's addresses read 示范区翠苑社区第1网格P_a号: the number after the community is the grid's.
REGISTER = "街道,社区,网格,楼栋\n西溪街道,翠苑社区,翠苑社区第1网格,1\n西溪街道,翠苑社区,翠苑社区第2网格,2\n" \
           "西溪街道,翠苑社区,翠苑社区第3网格,3\n"


def _night(tmp_path, run_id: str = "run1", as_of: date = date(2026, 11, 23), change=None):
    """One publication of the district for every grid and one grid by hand, on ``as_of`` (``change``: called with
    the district before it is published)."""
    register_file = tmp_path / "areas.csv"
    register_file.write_text(REGISTER, encoding="utf-8")
    district = _district()
    consent = district["consent"]
    # 安老伯's consent to the grid service ends in 30 days: still listed, and on the renewal list.
    soon = consent[consent["id_number"] == PEOPLE["P_a"][1]].iloc[[0]].assign(
        record_id="consent:soon", source_key="soon", decided_at=pd.Timestamp("2026-02-01", tz="UTC"),
        expires_at=pd.Timestamp("2026-12-22T16:00", tz="UTC"))
    # 陈小明 (4) signed for himself again, for a year, now expired: his own consent never let the worker
    # hold his data, so he is not on the renewal list (no_guardian_consent, not expired)
    child = consent[consent["id_number"] == PEOPLE["P_c"][1]].iloc[[0]].assign(
        record_id="consent:child", source_key="child", decided_at=pd.Timestamp("2025-06-01", tz="UTC"),
        expires_at=pd.Timestamp("2026-06-01", tz="UTC"))
    district["consent"] = pd.concat([consent, soon, child], ignore_index=True)
    if change is not None:
        change(district)
    home = tmp_path / "home"
    fixed = dict(GRID_WORKER, name="by_hand_grid_1", columns=GRID_WORKERS["columns"])
    wh = Warehouse(home)
    candidate = wh.build_candidate(make_inputs(district, run_id, as_of=as_of, areas=load_area_register(register_file)),
                                   policy(GRID_WORKERS, fixed))
    wh.publish(candidate)
    return home, candidate


@pytest.fixture
def published(tmp_path):
    return _night(tmp_path)


def _renewals(home, name: str) -> tuple[dict[str, str], dict[str, str]]:
    """The renewal list of ``name``'s workbook (name → status) and its 说明."""
    workbook = read_xlsx(DataHome.at(home).office_file(name, "xlsx"), office_password(product_key(home, name)))
    rows = list(workbook[RENEWAL_SHEET].iter_rows(values_only=True))
    assert rows[0] == ("姓名", "同意有效期至", "续签情况")
    return {row[0]: row[-1] for row in rows[1:]}, dict(workbook["说明"].iter_rows(min_row=2, values_only=True))


def test_every_grid_of_the_register_gets_its_own_product(published):
    home, candidate = published
    names = sorted(p.recipient for p in candidate.products)
    assert names == ["by_hand_grid_1", "grid_workers_cuiyuan_1", "grid_workers_cuiyuan_2", "grid_workers_cuiyuan_3"]
    keys = {name: product_key(home, name) for name in names}
    assert len(set(keys.values())) == 4, "each grid's product under its own key"
    assert read_shared(home, "grid_workers_cuiyuan_3").empty, "a grid with nobody listed still gets its (empty) list"
    grid2 = read_shared(home, "grid_workers_cuiyuan_2")
    assert set(grid2["person_id"]) == {"P_b"}
    log = candidate.read("SELECT recipient, policy_entry, area, row_count, withheld FROM publication_log "
                         "ORDER BY recipient").set_index("recipient")
    assert log.loc["grid_workers_cuiyuan_2", "policy_entry"] == "grid_workers"
    assert log.loc["grid_workers_cuiyuan_2", "area"] == GRID2
    assert pd.isna(log.loc["by_hand_grid_1", "area"])


def test_an_area_product_holds_what_a_hand_written_entry_for_that_grid_holds(published):
    home, candidate = published
    expanded, by_hand = read_shared(home, "grid_workers_cuiyuan_1"), read_shared(home, "by_hand_grid_1")
    assert len(expanded) > 0
    pd.testing.assert_frame_equal(expanded, by_hand)
    withheld = candidate.read("SELECT recipient, withheld FROM publication_log").set_index("recipient")["withheld"]
    assert dict(withheld["grid_workers_cuiyuan_1"]) == dict(withheld["by_hand_grid_1"])
    # 葛爷爷's consent expired, 何婆婆 asked to be deleted, 陈小明 (4) signed without his guardian:
    # counted for the grid, not listed
    assert dict(withheld["grid_workers_cuiyuan_1"]) == {"expired": 1, "deleted": 1, "no_guardian_consent": 1}


def test_reasons_show_why_each_resident_is_listed_and_hide_what_consent_does_not_cover(published):
    home, _ = published
    grid = read_shared(home, "grid_workers_cuiyuan_1").set_index("person_id")
    assert list(grid.loc["P_a", "reasons"]) == ["年龄86岁，独居"], "安老伯's 高血压 is health data he did not consent to"
    assert list(grid.loc["P_e", "reasons"]) == ["年龄76岁，独居", "慢性病：糖尿病"]  # he named health separately
    assert str(grid.loc["P_a", "consent_until"]) == "2026-12-23"
    assert pd.isna(grid.loc["P_f", "consent_until"]), "open-ended consent"


def test_the_renewal_list_names_only_people_whose_consent_is_ending_or_lapsed_while_this_worker_held_them(tmp_path):
    name = "grid_workers_cuiyuan_1"
    home, _ = _night(tmp_path)
    statuses, about = _renewals(home, name)
    # 葛爷爷's consent ended on 2026-06-01, before this worker ever had his data: counted, never named.
    assert statuses == {"安**": "同意即将到期"}
    assert set(about["未列入人数"].split("；")) == {"本人要求删除1人", "同意已过期1人", "未取得监护人同意1人"}
    assert "1人" in about["待续同意"]
    # A blank 同意有效期至 and a masked name are explained beside the rows (users audit: nothing said what they meant).
    assert about["列：同意有效期至"].endswith("空白表示同意未设截止日期") and about["列：姓名"] == "带 * 的部分已按规定隐去"

    # A month on, 安老伯's consent has ended: last night's list held him, so tonight's names him for renewal
    # (he is no longer in the rows), and the audit records this delivery as holding him.
    home, _ = _night(tmp_path, "run2", date(2026, 12, 24))
    statuses, about = _renewals(home, name)
    assert statuses == {"安**": "同意已过期，未列入名单"}
    assert "P_a" not in set(read_shared(home, name)["person_id"])
    audit = AuditLog(home)
    held = [(e["run_id"], e["recipient"]) for e in audit.person_by_ids(["P_a"])]
    assert ("run2", name) in held and ("run1", name) in held
    assert not [e for e in audit.person_by_ids(["P_g"]) if e["run_id"] == "run2"], "葛爷爷: never named, never held"
    rows = list(read_xlsx(DataHome.at(home).office_file(name, "xlsx"),
                          office_password(product_key(home, name)))[RENEWAL_SHEET].iter_rows(values_only=True))
    assert "何" not in "".join(str(c) for row in rows for c in row), "who asked to be deleted is never named"


def test_a_person_id_that_passed_to_someone_else_does_not_get_them_named(tmp_path):
    """The last list held 安老伯 under P_a; tonight P_a is 葛爷爷's (ids move with a split or merge) and P_g 安老伯's.
    Both consents have lapsed, 葛爷爷's before the worker held him: the renewal list names only someone it held under
    their person id *and* ID number — here nobody, rather than 葛爷爷 under the id that vouched for 安老伯."""
    name = "grid_workers_cuiyuan_1"
    _night(tmp_path)

    def swap(district):
        mapping = district["mapping"]
        district["mapping"] = mapping.assign(person_id=mapping["person_id"].replace({"P_a": "P_g", "P_g": "P_a"}))
        consent = district["consent"]
        ge = consent["id_number"] == PEOPLE["P_g"][1]
        district["consent"] = consent.assign(expires_at=consent["expires_at"].where(
            ~ge | consent["expires_at"].isna(), pd.Timestamp("2026-11-01", tz="UTC")))

    home, _ = _night(tmp_path, "run2", date(2026, 12, 24), change=swap)
    statuses, _about = _renewals(home, name)
    assert statuses == {}
    assert not [e for e in AuditLog(home).person(PEOPLE["P_g"][1]) if e["run_id"] == "run2" and e["recipient"] == name]


def test_a_membership_that_does_not_read_as_its_entry_recorded_vouches_for_nobody(tmp_path, caplog):
    name = "grid_workers_cuiyuan_1"
    home, _ = _night(tmp_path)
    entry = next(e for e in AuditLog(home).entries() if e["recipient"] == name)
    members = DataHome.at(home).audit_members_file(entry["seq"])
    members.write_bytes(members.read_bytes() + b"f" * 64 + b"\n")  # one more well-formed line than was recorded
    home, _ = _night(tmp_path, "run2", date(2026, 12, 24))
    assert _renewals(home, name)[0] == {}, "安老伯 would be named on a membership that reads as recorded"
    assert f"the membership of entry {entry['seq']} does not read back as recorded" in caplog.text


def test_area_slugs_read_the_names_and_keep_homophones_apart():
    assert area_slug("grid", "翠苑社区第1网格", "翠苑社区") == "cuiyuan_1"
    assert area_slug("grid", "第2网格", "兰亭社区") == "lanting_2"
    assert area_slug("community", "翠苑村") == "cuiyuan"
    assert area_slug("street", "西溪街道") == "xixi"
    entry = policy(dict(GRID_WORKERS, kind="department", scope={"community": "*"}, level="community")).recipients[0]
    areas = pd.DataFrame({"street": ["西溪街道"] * 3, "community": ["翠苑社区", "翠园社区", "兰亭社区"],
                          "grid": [None] * 3})
    slugs = [slug for slug, _, _ in scope_areas(entry, areas)]
    assert len(set(slugs)) == 3 and "lanting" in slugs
    assert all(s.startswith("cuiyuan_") for s in slugs if s != "lanting"), "翠苑 and 翠园 read alike: both hashed"
    again = [slug for slug, _, _ in scope_areas(entry, areas.iloc[::-1])]
    assert sorted(again) == sorted(slugs), "stable whatever the order"


def test_grids_named_alike_in_two_communities_are_two_products():
    entry = policy(GRID_WORKERS).recipients[0]
    areas = pd.DataFrame({"street": ["西溪街道"] * 2, "community": ["翠苑社区", "兰亭社区"], "grid": ["第1网格"] * 2})
    found = scope_areas(entry, areas)
    assert [(slug, scope) for slug, scope, _ in found] == [
        ("lanting_1", {"community": "兰亭社区", "grid": "第1网格"}),
        ("cuiyuan_1", {"community": "翠苑社区", "grid": "第1网格"})]
    assert [label for _, _, label in found] == ["兰亭社区第1网格", "翠苑社区第1网格"]


@pytest.mark.parametrize("change, message", [
    (dict(scope={"community": "*", "grid": "*"}), "one level only"),
    (dict(scope={"community": "*", "grid": GRID1}), "narrowest level"),
    (dict(level="community"), "set level: grid"),
    (dict(legal_basis="statutory", legal_reference="x"), "consent_until"),
    (dict(population=[], columns=["name", "reasons"]), "reasons"),
])
def test_wrong_area_entries_fail_with_the_fix(change, message):
    with pytest.raises(ValidationError, match=message):
        policy(dict(GRID_WORKERS, **change))


def test_a_list_that_shows_addresses_is_in_their_order_numbers_as_numbers():
    # Seen: a grid worker's list came in person-id order, flats of one building scattered over the pages.
    import duckdb

    from publish import product_query_sql
    from publish.policy import Recipient

    con = duckdb.connect()
    con.execute("""CREATE TABLE unified_population AS SELECT * FROM (VALUES
        ('P1', '兰亭社区10栋1单元101室'), ('P2', '兰亭社区5栋2单元1201室'), ('P3', NULL), ('P4', '兰亭社区5栋2单元401室'),
        ('P5', '兰亭社区5栋2单元401室')) t(person_id, address)""")
    con.execute("ALTER TABLE unified_population ADD COLUMN id_number VARCHAR; "
                "ALTER TABLE unified_population ADD COLUMN street VARCHAR; "
                "ALTER TABLE unified_population ADD COLUMN community VARCHAR; "
                "ALTER TABLE unified_population ADD COLUMN grid VARCHAR")
    con.execute("CREATE TABLE deletion_requests (person_id VARCHAR); CREATE TABLE consent_problems (person_id VARCHAR)")
    register = Recipient.model_validate(dict(name="register", description="民政", kind="department", level="district",
                                             purpose="service_delivery", legal_basis="statutory",
                                             legal_reference="社会救助暂行办法", columns=["person_id", "address"]))
    sql, params = product_query_sql(register)
    assert [r[0] for r in con.execute(sql, params).fetchall()] == ["P4", "P5", "P2", "P1", "P3"]
    analysts = register.model_copy(update={"pseudonymise": True})  # no address shown, nothing ordered by it
    sql, params = product_query_sql(analysts)
    assert [r[0] for r in con.execute(sql, params).fetchall()] == ["P1", "P2", "P3", "P4", "P5"]
