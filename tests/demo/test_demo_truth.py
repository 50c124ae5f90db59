"""The ground truth accounts for every row, and the district holds what the brief promises."""

from __future__ import annotations

import pandas as pd
import pytest

from demo.generate import MESS_RATES, PERSON_SOURCES, DemoSummary
from demo.mess import QUARANTINE_MINIMUM_ROWS
from tests.demo.demo_helpers import (
    ADDRESS_COLUMNS,
    BIRTH_COLUMNS,
    ID_COLUMNS,
    KEY_COLUMNS,
    NAME_COLUMNS,
    id_is_valid,
    looks_like_id,
    normal_form,
    read_source,
    record_ids,
    truth,
)


def _rows_with_truth(demo: DemoSummary, source: str) -> pd.DataFrame:
    ground_truth, _, persons = truth(demo)
    frame = read_source(demo, source)
    frame["record_id"] = source + ":" + frame[KEY_COLUMNS[source]].astype(str)
    frame = frame.merge(ground_truth, on="record_id", how="left", validate="one_to_one")
    return frame.merge(persons, left_on="true_person_id", right_on="person_id", how="left", suffixes=("", "_true"))


def test_ground_truth_covers_every_source_row_exactly_once(demo: DemoSummary) -> None:
    ground_truth, _, persons = truth(demo)
    sources = (*PERSON_SOURCES, "grid_updates")
    written = pd.concat([record_ids(demo, source) for source in sources], ignore_index=True)
    assert ground_truth["record_id"].is_unique
    assert written.is_unique
    assert set(ground_truth["record_id"]) == set(written)
    assert len(ground_truth) == sum(demo.counts[s] for s in sources)
    assert set(ground_truth["true_person_id"]) <= set(persons["person_id"])
    assert (ground_truth["source"] == ground_truth["record_id"].str.split(":").str[0]).all()


def test_every_person_has_a_distinct_valid_id(demo: DemoSummary) -> None:
    _, _, persons = truth(demo)
    assert len(persons) == demo.persons
    assert persons["id_number"].is_unique
    assert persons["id_number"].map(id_is_valid).all()
    # The ID embeds the birth date and, in its 17th digit, the sex (odd = male).
    assert (persons["id_number"].str[6:14] == persons["birth_date"].str.replace("-", "")).all()
    assert ((persons["id_number"].str[16].astype(int) % 2 == 1) == (persons["sex"] == "M")).all()
    assert persons["id_number"].str.startswith("330106").mean() > 0.5


def test_twins_share_birth_surname_and_home_but_not_their_id(demo: DemoSummary) -> None:
    _, negatives, persons = truth(demo)
    twins = negatives[negatives["kind"] == "twin"]
    assert len(twins) == pytest.approx(0.005 * demo.persons / 2, abs=3)
    people = persons.set_index("person_id")
    a, b = people.loc[twins["person_a"]].reset_index(), people.loc[twins["person_b"]].reset_index()
    assert (a["birth_date"] == b["birth_date"]).all()
    assert (a["surname"] == b["surname"]).all()
    assert (a["address"] == b["address"]).all()
    assert (a["name"] != b["name"]).all()
    assert (a["id_number"] != b["id_number"]).all()
    assert a["id_number"].map(id_is_valid).all() and b["id_number"].map(id_is_valid).all()
    assert (a["twin_of"] == b["person_id"]).all()


def test_namesakes_share_name_and_birth_year_but_are_different_people(demo: DemoSummary) -> None:
    _, negatives, persons = truth(demo)
    namesakes = negatives[negatives["kind"] == "namesake"]
    assert len(namesakes) > 10, "common names (王伟, 张丽) recur"
    people = persons.set_index("person_id")
    a, b = people.loc[namesakes["person_a"]].reset_index(), people.loc[namesakes["person_b"]].reset_index()
    assert (a["name"] == b["name"]).all()
    assert (a["birth_date"].str[:4] == b["birth_date"].str[:4]).all()
    assert (a["id_number"] != b["id_number"]).all()
    assert (namesakes["person_a"] < namesakes["person_b"]).all()
    assert not negatives.duplicated(["person_a", "person_b"]).any()


def test_within_source_duplicates_exist_and_differ_slightly(demo: DemoSummary) -> None:
    civil = _rows_with_truth(demo, "civil_affairs")
    per_person = civil.groupby("true_person_id")["record_id"].count()
    twice = per_person[per_person == 2].index
    share = len(twice) / len(per_person)
    assert share == pytest.approx(MESS_RATES["civil_affairs"]["duplicate"], abs=0.01)
    assert per_person.max() == 2
    entries = civil[civil["true_person_id"].isin(twice)].sort_values("true_person_id")
    compared = ["xm", "sfzh", "lxdh", "jtzz"]
    first, second = entries.iloc[::2][compared].to_numpy(), entries.iloc[1::2][compared].to_numpy()
    assert (first != second).any(axis=1).all(), "a duplicate entry varies in name, ID, phone or address"


def test_quarantine_defects_are_what_they_claim(demo: DemoSummary) -> None:
    for source in PERSON_SOURCES:
        rows = _rows_with_truth(demo, source)
        name, birth = rows[NAME_COLUMNS[source]], rows[BIRTH_COLUMNS[source]]
        number = rows[ID_COLUMNS[source]].astype(str)
        flagged = {d: rows["defects"].str.contains(d) for d in ("missing_name", "malformed_id", "bad_birth_date")}
        if len(rows) >= QUARANTINE_MINIMUM_ROWS:
            assert all(f.any() for f in flagged.values()), source
        assert (name[flagged["missing_name"]] == "").all() and (name[~flagged["missing_name"]] != "").all(), source
        assert not number[flagged["malformed_id"]].map(looks_like_id).any(), source
        sound = number[~flagged["malformed_id"] & (number != "")]
        assert sound.map(looks_like_id).all(), source
        bad = birth[flagged["bad_birth_date"]].astype(str)
        assert bad.str.fullmatch(r"不详|[0-9]{4}(-13-45|1345|/13/45|年13月45日|\.13\.45|13)").all(), source


def test_ids_are_damaged_at_their_documented_rates(demo: DemoSummary) -> None:
    for source in PERSON_SOURCES:
        rows = _rows_with_truth(demo, source)
        number = rows[ID_COLUMNS[source]].astype(str).map(normal_form)
        rates = MESS_RATES[source]
        fifteen = number.str.fullmatch(r"[0-9]{15}")
        true_id = rows.loc[fifteen, "id_number"]
        assert (number[fifteen] == true_id.str[:6] + true_id.str[8:17]).all(), "area + yymmdd + sequence"
        eighteen = number.str.fullmatch(r"[0-9]{17}[0-9X]")
        typo = rows["defects"].str.contains("id_typo")
        borrowed = rows["defects"].str.contains("borrowed_id")
        assert not number[typo].map(id_is_valid).any(), source
        own = eighteen & ~typo & ~borrowed
        assert (number[own] == rows.loc[own, "id_number"]).all(), source
        assert (number[borrowed] != rows.loc[borrowed, "id_number"]).all(), source
        if len(rows) > 1000:  # rates are only meaningful on enough rows
            assert (number == "").mean() == pytest.approx(rates["id_missing"], abs=0.01), source
            assert fifteen.mean() == pytest.approx(rates["id_15_digit"], abs=0.01), source
            assert typo.mean() == pytest.approx(rates["id_typo"], abs=0.008), source


def test_a_borrowed_id_is_a_household_members_valid_number_and_the_pair_is_a_hard_negative(demo: DemoSummary) -> None:
    _, negatives, persons = truth(demo)
    owner = persons.set_index("id_number")["person_id"]
    household = persons.set_index("person_id")["address"]
    borrowed = pd.concat([_rows_with_truth(demo, source) for source in ("civil_affairs", "health")], ignore_index=True)
    borrowed = borrowed[borrowed["defects"].str.contains("borrowed_id")]
    assert len(borrowed) > 0, "a few rows in 民政 and 卫健 carry a spouse's or a parent's number"
    numbers = borrowed[ID_COLUMNS["civil_affairs"]].where(borrowed["source"] == "civil_affairs",
                                                          borrowed[ID_COLUMNS["health"]]).astype(str).map(normal_form)
    assert numbers.map(id_is_valid).all()
    lender = numbers.map(owner)
    assert lender.notna().all() and (lender != borrowed["true_person_id"]).all()
    assert (lender.map(household) == borrowed["true_person_id"].map(household)).all(), "someone of the same household"
    pairs = negatives[negatives["kind"] == "borrowed_id"]
    assert len(pairs) > 0
    expected = {frozenset(pair) for pair in zip(borrowed["true_person_id"], lender, strict=True)}
    assert {frozenset(pair) for pair in zip(pairs["person_a"], pairs["person_b"], strict=True)} <= expected
    assert (pairs["person_a"] < pairs["person_b"]).all()


def test_names_carry_homophones_traditional_characters_and_stray_spaces(demo: DemoSummary) -> None:
    census = _rows_with_truth(demo, "census")
    clean = census["defects"] == ""
    assert (census.loc[clean, "姓名"] == census.loc[clean, "name"]).all()
    share = census["defects"].str.contains("homophone").mean()
    assert share == pytest.approx(MESS_RATES["census"]["homophone"], abs=0.012)
    homophone = census["defects"] == "homophone"
    assert homophone.any()
    assert (census.loc[homophone, "姓名"] != census.loc[homophone, "name"]).all()
    assert (census.loc[homophone, "姓名"].str.len() == census.loc[homophone, "name"].str.len()).all()
    traditional = census["defects"].str.contains("traditional")
    assert census.loc[traditional, "住址"].str.contains("區|單元|門").all()
    spaced = pd.concat([census["姓名"], census["住址"], census["公民身份号码"]])
    assert spaced.str.contains("\u3000").any() and spaced.str.contains(" ").any()
    assert spaced.str.contains("[０-９]").any()


def test_people_who_moved_have_another_address_outside_civil_affairs(demo: DemoSummary) -> None:
    civil = _rows_with_truth(demo, "civil_affairs")
    census = _rows_with_truth(demo, "census")
    clean = "^(moved)?$"
    both = civil[civil["defects"].str.fullmatch(clean)].merge(
        census[census["defects"].str.fullmatch(clean)], on="true_person_id", suffixes=("_c", "_p")
    )
    moved = both["moved_c"]
    assert moved.any() and (~moved).any()
    assert (both.loc[moved, "jtzz"] != both.loc[moved, "住址"]).all()
    assert (both.loc[~moved, "jtzz"] == both.loc[~moved, "住址"]).all()
    assert census["moved"].mean() == pytest.approx(0.05, abs=0.02)


def test_sources_hold_the_shares_of_the_district_the_brief_gives(demo: DemoSummary) -> None:
    ground_truth, _, _ = truth(demo)
    persons_in = ground_truth.groupby("source")["true_person_id"].nunique() / demo.persons
    assert persons_in["civil_affairs"] == pytest.approx(0.60, abs=0.04)
    assert persons_in["health"] == pytest.approx(0.50, abs=0.04)
    assert persons_in["census"] == pytest.approx(0.90, abs=0.03)
    assert persons_in["justice"] == pytest.approx(0.02, abs=0.008)
    visits = ground_truth[ground_truth["source"] == "health"].groupby("true_person_id").size()
    assert visits.min() == 1 and visits.max() == 4


def test_key_populations_reach_the_departments_that_know_them(demo: DemoSummary) -> None:
    civil = _rows_with_truth(demo, "civil_affairs")
    age = (pd.Timestamp("2026-11-01") - pd.to_datetime(civil["birth_date"])).dt.days / 365.25
    assert ((civil["djlr"] == "是") == civil["lives_alone"]).all()
    assert (age[civil["djlr"] == "是"] >= 60).all()
    assert ((civil["dbh"] == "是") == civil["low_income"]).all()
    grades = civil["cjdj"].map({"": 0, "一级": 1, "二级": 2, "三级": 3, "四级": 4})
    assert (grades == civil["disability_grade"]).all()
    vulnerable = civil["lives_alone"] | civil["low_income"] | (civil["disability_grade"] > 0)
    assert vulnerable.any()

    health = _rows_with_truth(demo, "health")
    filing = health["diagnosis"] == "孕产妇建档"
    assert filing.any() and health.loc[filing, "pregnant"].all() and (health.loc[filing, "sex"] == "F").all()
    chronic = health["diagnosis"].isin(["高血压", "糖尿病", "冠心病", "慢阻肺"])
    assert (health.loc[chronic, "diagnosis"] == health.loc[chronic, "chronic_disease"]).all()

    justice = _rows_with_truth(demo, "justice")
    assert justice["corrections"].all()
    assert (justice["矫正类别"] == justice["case_type"]).all()


def test_visits_of_one_person_vary_slightly(demo: DemoSummary) -> None:
    health = _rows_with_truth(demo, "health")
    repeat = health[health.duplicated("true_person_id", keep=False)]
    varies = repeat.groupby("true_person_id")[["patient_name", "mobile"]].nunique().max(axis=1) > 1
    assert varies.any()
    assert (repeat.groupby("true_person_id")["gender"].nunique() == 1).mean() > 0.97


def test_addresses_and_grids_follow_the_district_layout(demo: DemoSummary) -> None:
    _, _, persons = truth(demo)
    # a 3,000-person district has six communities, one per street (demo.population.HOUSEHOLDS_PER_COMMUNITY)
    assert persons["street"].nunique() == 6
    assert persons["community"].nunique() == 6
    grids = persons.groupby("community")["grid"].nunique()
    assert grids.between(4, 8).all()
    assert persons["address"].str.fullmatch(r"示范区\w+街道\w+社区[0-9]+幢[1-3]单元[0-9]{3,4}室").all()
    assert (persons["grid"].str.split("第").str[0] == persons["community"]).all()
    alone = persons[persons["lives_alone"]]
    assert alone["household"].is_unique
    assert not persons.loc[~persons["lives_alone"], "household"].isin(alone["household"]).any()
    civil = read_source(demo, "civil_affairs")
    assert civil[ADDRESS_COLUMNS["civil_affairs"]].str.contains("幢").mean() > 0.95
