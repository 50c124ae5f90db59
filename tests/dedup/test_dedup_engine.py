"""End to end on a hand-made district: 22 records of 11 people, twins and namesakes included.

The expected partition is written out in full, so any change in blocking, weights, vetoes or
clustering that merges or splits one of these people fails here.
"""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from dedup import LinkSettings, link_records
from dedup.backend import even_batch_size, in_threads
from dedup.settings import VETOES
from tests.dedup.dedup_helpers import ID_KEY, mistype, records, transpose, valid_id

ADDR_ZHANG = "示范区西溪街道翠苑社区3栋201"
ADDR_WANG = "示范区东湖街道和睦社区5栋302"
ID_ZHANG = valid_id("330106", "19850312", "011")
ID_DAWEI = valid_id("330106", "19900601", "013")
ID_XIAOWEI = valid_id("330106", "19900601", "015")
ID_LINA_88 = valid_id("330106", "19880105", "022")
ID_LINA_92 = valid_id("330102", "19920720", "024")
ID_CHEN = valid_id("330106", "19791123", "026")
ID_LIU = valid_id("330106", "19750930", "031")
ID_ZHAO = valid_id("330106", "19800403", "042")

FIXTURE = records(
    [
        # 张伟: the same man in three registers, the health one in traditional characters, the old
        # 15-digit ID and a spaced phone; the census knows only his birth month.
        {"record_id": "civil_affairs:1", "source": "civil_affairs", "name": "张伟", "sex": "M", "birth_date": "1985-03-12",
         "id_number": ID_ZHANG, "phone": "13800000001", "address": ADDR_ZHANG},
        {"record_id": "health:1", "source": "health", "name": "張偉", "sex": "男", "birth_date": "1985/3/12",
         "id_number": "330106850312011", "phone": "138 0000 0001", "address": ADDR_ZHANG},
        {"record_id": "census:1", "source": "census", "name": "张伟", "sex": "1", "birth_date": "1985-03", "address": ADDR_ZHANG},
        # Twins 王大伟 / 王小伟: same surname, birthday, address and home phone, similar names, two valid IDs.
        {"record_id": "civil_affairs:2", "source": "civil_affairs", "name": "王大伟", "sex": "M", "birth_date": "1990-06-01",
         "id_number": ID_DAWEI, "phone": "057188880000", "address": ADDR_WANG},
        {"record_id": "civil_affairs:3", "source": "civil_affairs", "name": "王小伟", "sex": "M", "birth_date": "1990-06-01",
         "id_number": ID_XIAOWEI, "phone": "057188880000", "address": ADDR_WANG},
        {"record_id": "health:2", "source": "health", "name": "王大伟", "sex": "M", "birth_date": "1990-06-01",
         "id_number": transpose(ID_DAWEI, 15), "phone": "057188880000", "address": ADDR_WANG},
        {"record_id": "health:3", "source": "health", "name": "王小伟", "sex": "M", "birth_date": "1990-06-01",
         "id_number": ID_XIAOWEI, "address": ADDR_WANG},
        {"record_id": "census:2", "source": "census", "name": "王大伟", "sex": "M", "birth_date": "1990-06", "address": ADDR_WANG},
        {"record_id": "census:3", "source": "census", "name": "王小伟", "sex": "M", "birth_date": "1990-06", "address": ADDR_WANG},
        # Namesakes 李娜 (同名同姓): born 1988 and 1992, different IDs and homes.
        {"record_id": "civil_affairs:4", "source": "civil_affairs", "name": "李娜", "sex": "F", "birth_date": "1988-01-05",
         "id_number": ID_LINA_88, "address": "示范区南山街道朝阳社区1栋101"},
        {"record_id": "justice:4", "source": "justice", "name": "李娜", "sex": "女", "birth_date": "1988-01-05",
         "phone": "13900000004", "address": "示范区南山街道朝阳社区1栋101"},
        {"record_id": "civil_affairs:5", "source": "civil_affairs", "name": "李娜", "sex": "F", "birth_date": "1992-07-20",
         "id_number": ID_LINA_92, "address": "示范区北塘街道湖畔社区7栋702"},
        {"record_id": "census:5", "source": "census", "name": "李娜", "sex": "F", "birth_date": "1992-07",
         "address": "示范区北塘街道湖畔社区7栋702"},
        # 陈静 typed as the homophone 陈婧 in health, found by pinyin + birth month and the phone.
        {"record_id": "civil_affairs:6", "source": "civil_affairs", "name": "陈静", "sex": "F", "birth_date": "1979-11-23",
         "id_number": ID_CHEN, "phone": "13700000006"},
        {"record_id": "health:6", "source": "health", "name": "陈婧", "sex": "F", "birth_date": "1979-11-23", "phone": "13700000006"},
        # 刘德华 with a character missing and a mistyped ID digit in justice: only his flat and
        # birth month bring the two records together.
        {"record_id": "civil_affairs:7", "source": "civil_affairs", "name": "刘德华", "sex": "M", "birth_date": "1975-09-30",
         "id_number": ID_LIU, "address": "示范区清河街道东风社区1幢2单元301室"},
        {"record_id": "justice:7", "source": "justice", "name": "刘华", "sex": "M", "birth_date": "1975-09-30",
         "id_number": mistype(ID_LIU, 3), "address": "清河街道东风社区1-2-301"},
        # 赵敏 with day and month swapped in health; the ID vouches for her.
        {"record_id": "civil_affairs:8", "source": "civil_affairs", "name": "赵敏", "sex": "F", "birth_date": "1980-04-03",
         "id_number": ID_ZHAO},
        {"record_id": "health:8", "source": "health", "name": "赵敏", "sex": "F", "birth_date": "1980-03-04", "id_number": ID_ZHAO},
        # 孙丽 appears once.
        {"record_id": "civil_affairs:9", "source": "civil_affairs", "name": "孙丽", "sex": "F", "birth_date": "1960-02-02"},
        # 周杰: same name, birthday, phone and flat, but a man (his valid ID says so) and a woman: two people.
        {"record_id": "health:10", "source": "health", "name": "周杰", "sex": "M", "birth_date": "1995-05-05",
         "id_number": valid_id("330106", "19950505", "017"), "phone": "13600000010", "address": ADDR_WANG},
        {"record_id": "justice:10", "source": "justice", "name": "周杰", "sex": "F", "birth_date": "1995-05-05",
         "phone": "13600000010", "address": ADDR_WANG},
    ]
)

EXPECTED = {
    frozenset({"civil_affairs:1", "health:1", "census:1"}),
    frozenset({"civil_affairs:2", "health:2", "census:2"}),
    frozenset({"civil_affairs:3", "health:3", "census:3"}),
    frozenset({"civil_affairs:4", "justice:4"}),
    frozenset({"civil_affairs:5", "census:5"}),
    frozenset({"civil_affairs:6", "health:6"}),
    frozenset({"civil_affairs:7", "justice:7"}),
    frozenset({"civil_affairs:8", "health:8"}),
    frozenset({"civil_affairs:9"}),
    frozenset({"health:10"}),
    frozenset({"justice:10"}),
}


def partition(mapping: pd.DataFrame) -> set[frozenset[str]]:
    return {frozenset(group["record_id"]) for _, group in mapping.groupby("person_id")}


@pytest.fixture(scope="module")
def result():
    return link_records(FIXTURE, id_key=ID_KEY)


def test_expected_persons_exactly(result) -> None:
    assert partition(result.mapping) == EXPECTED


def test_mapping_has_one_row_per_record_in_input_order(result) -> None:
    assert result.mapping["record_id"].tolist() == FIXTURE["record_id"].tolist()
    assert list(result.mapping.columns) == ["record_id", "person_id", "id_number_disputed"]
    assert not result.mapping["id_number_disputed"].any(), "nobody here carries another resident's ID number"


def test_person_id_is_the_keyed_hash_of_the_smallest_record_id(result) -> None:
    for person_id, group in result.mapping.groupby("person_id"):
        assert person_id == "P" + hashlib.sha256((ID_KEY.hex() + min(group["record_id"])).encode()).hexdigest()[:12]


def test_person_id_is_stable_when_other_records_change(result) -> None:
    shuffled = FIXTURE.sample(frac=1.0, random_state=7)
    again = link_records(shuffled, id_key=ID_KEY)
    assert dict(zip(again.mapping["record_id"], again.mapping["person_id"], strict=True)) == dict(
        zip(result.mapping["record_id"], result.mapping["person_id"], strict=True)
    )


def test_no_link_joins_the_twins(result) -> None:
    twin_a = {"civil_affairs:2", "health:2", "census:2"}
    twin_b = {"civil_affairs:3", "health:3", "census:3"}
    links = result.pairs[result.pairs["decision"] == "link"]
    across = links[
        (links["record_id_l"].isin(twin_a) & links["record_id_r"].isin(twin_b))
        | (links["record_id_l"].isin(twin_b) & links["record_id_r"].isin(twin_a))
    ]
    assert across.empty


def test_sex_conflict_is_vetoed_when_the_district_lists_the_veto() -> None:
    strict = link_records(FIXTURE, LinkSettings(vetoes=tuple(VETOES)), id_key=ID_KEY)
    pairs = strict.pairs
    row = pairs[(pairs["record_id_l"] == "health:10") & (pairs["record_id_r"] == "justice:10")]
    assert row["veto"].tolist() == ["different_sex"]
    assert row["decision"].tolist() == ["vetoed"]
    assert partition(strict.mapping) == EXPECTED


def test_links_explain_their_levels(result) -> None:
    pairs = result.pairs
    row = pairs[(pairs["record_id_l"] == "civil_affairs:7") & (pairs["record_id_r"] == "justice:7")].iloc[0]
    assert (row["decision"], row["id_number"], row["name"], row["birth_date"]) == ("link", "typo", "similar", "day")
    assert row["score"] >= LinkSettings().match_threshold


def test_stats_count_what_happened(result) -> None:
    stats = result.stats
    assert stats["records"] == len(FIXTURE)
    assert stats["persons"] == len(EXPECTED)
    assert stats["links"] == int((result.pairs["decision"] == "link").sum())
    assert stats["candidate_pairs"] >= stats["links"]
    assert set(stats["seconds"]) >= {"prepare", "blocking", "compare_score", "cluster", "total"}


def test_small_chunks_give_the_same_answer(result) -> None:
    # Batches of three pairs, compared several at a time in threads (dedup.backend.in_threads).
    chunked = link_records(FIXTURE, LinkSettings(chunk_size=3))
    assert partition(chunked.mapping) == EXPECTED
    pd.testing.assert_frame_equal(chunked.pairs, result.pairs)


def test_batches_in_threads_come_back_in_order_and_are_drawn_as_threads_free_up() -> None:
    drawn: list[int] = []

    def items():
        for item in range(20):
            drawn.append(item)
            yield item

    results = []
    for value in in_threads(lambda item: (item, len(drawn)), items(), threads=3):
        results.append(value[0])
        assert value[1] <= value[0] + 3  # never more than three items ahead of the one being returned
    assert results == list(range(20))


@pytest.mark.parametrize(("total", "most", "threads", "batches"), [
    (4_959_605, 1_000_000, 2, 6),  # 1M records: three batches a thread (five full ones and a small one left one alone)
    (4_959_605, 1_000_000, 4, 8),
    (900_000, 1_000_000, 2, 2),  # fewer pairs than two batches hold: one a thread, not one batch and an idle thread
    (7, 4, 2, 2),
    (7, 4, 3, 3),
    (3, 4, 4, 3),  # fewer pairs than threads: one pair a batch
    (0, 4, 2, 0),
])
def test_even_batches_fit_the_chunk_and_give_each_thread_as_many(total: int, most: int, threads: int, batches: int) -> None:
    size = even_batch_size(total, most, threads)
    assert 1 <= size <= most
    assert -(-total // size) == batches


def test_no_records() -> None:
    empty = link_records(FIXTURE.iloc[0:0])
    assert empty.mapping.empty and empty.pairs.empty and empty.stats["persons"] == 0


def test_twins_without_ids_in_one_census_stay_apart() -> None:
    # Twins 张子涵 / 张子轩: one flat, one birth month, no ID numbers. Only the first twin's civil-affairs
    # record carries an ID. One census holding two names that sound different in one flat is two people.
    twin_id = valid_id("330106", "20080329", "938")
    rows = records(
        [
            {"record_id": "civil_affairs:1", "source": "civil_affairs", "name": "张子涵", "sex": "F",
             "birth_date": "2008-03-29", "id_number": twin_id, "address": ADDR_ZHANG},
            {"record_id": "census:1", "source": "census", "name": "张子涵", "sex": "F", "birth_date": "2008-03",
             "address": ADDR_ZHANG},
            {"record_id": "census:2", "source": "census", "name": "张子轩", "sex": "F", "birth_date": "2008-03",
             "address": ADDR_ZHANG},
        ]
    )
    assert partition(link_records(rows).mapping) == {
        frozenset({"civil_affairs:1", "census:1"}),
        frozenset({"census:2"}),
    }


def test_census_that_lists_a_person_twice_under_a_homophone_links_them() -> None:
    # The census enumerator typed 张紫涵 once and, on a second visit, 张梓涵 (both zhang zi han): an
    # input-method slip, not a twin — parents give twins names that sound different.
    rows = records(
        [
            {"record_id": "civil_affairs:1", "source": "civil_affairs", "name": "张紫涵", "sex": "F",
             "birth_date": "2008-03-29", "id_number": valid_id("330106", "20080329", "938"), "address": ADDR_ZHANG},
            {"record_id": "census:1", "source": "census", "name": "张紫涵", "sex": "F", "birth_date": "2008-03",
             "address": ADDR_ZHANG},
            {"record_id": "census:2", "source": "census", "name": "张梓涵", "sex": "F", "birth_date": "2008-03",
             "address": ADDR_ZHANG},
        ]
    )
    assert partition(link_records(rows).mapping) == {frozenset({"civil_affairs:1", "census:1", "census:2"})}


def test_register_that_reenters_people_links_a_homophone_visit() -> None:
    # A health register enters 张伟 at every visit (his ID repeats, so the register re-enters people);
    # one visit without the ID was typed as 张玮. An input-method slip, not a second person.
    his_id = valid_id("330106", "19850312", "011")
    visit = {"source": "health", "name": "张伟", "sex": "M", "birth_date": "1985-03-12", "address": ADDR_ZHANG}
    rows = records(
        [
            {"record_id": "health:1", **visit, "id_number": his_id},
            {"record_id": "health:2", **visit, "id_number": his_id},
            {"record_id": "health:3", **visit, "name": "张玮"},
        ]
    )
    assert partition(link_records(rows).mapping) == {frozenset({"health:1", "health:2", "health:3"})}


def test_latin_names_and_a_generic_identifier_link() -> None:
    # Data the engine has never seen: Latin names (surname and given name swapped in one record) and a
    # social-security number in id_number (not a resident ID: no check digit, no date inside).
    rows = records(
        [
            {"record_id": "a:1", "source": "a", "name": "Smith John", "birth_date": "1980-01-02",
             "id_number": "4821733", "address": "12 wallaby place delmar 2119 nsw"},
            {"record_id": "b:1", "source": "b", "name": "john smith", "birth_date": "19800102",
             "id_number": "4821733", "address": "delmar 12 wallaby place 2119 nsw"},
            {"record_id": "b:2", "source": "b", "name": "smith joan", "birth_date": "1980-01-02",
             "id_number": "9140268", "address": "7 kent street milton 3165 vic"},
        ]
    )
    assert partition(link_records(rows).mapping) == {frozenset({"a:1", "b:1"}), frozenset({"b:2"})}


def test_namesakes_born_the_same_day_stay_apart() -> None:
    # Two boys called 杨宇, born the same day in different flats. The second has no ID anywhere; his
    # health record (no ID, different flat) would link to the first on name and birthday alone.
    first_id = valid_id("330106", "20210102", "611")
    other_flat = "示范区北塘街道湖畔社区6幢1单元1101室"
    rows = records(
        [
            {"record_id": "civil_affairs:1", "source": "civil_affairs", "name": "杨宇", "sex": "M",
             "birth_date": "2021-01-02", "id_number": first_id, "address": ADDR_ZHANG},
            {"record_id": "census:1", "source": "census", "name": "杨宇", "sex": "M", "birth_date": "2021-01",
             "id_number": first_id, "address": ADDR_ZHANG},
            {"record_id": "health:2", "source": "health", "name": "杨宇", "sex": "M", "birth_date": "2021-01-02",
             "phone": "13262696472", "address": "北塘街道湖畔社区6-1-1101"},
            {"record_id": "census:2", "source": "census", "name": "杨宇", "sex": "M", "birth_date": "2021-01",
             "address": other_flat},
        ]
    )
    assert partition(link_records(rows).mapping) == {
        frozenset({"civil_affairs:1", "census:1"}),
        frozenset({"health:2", "census:2"}),
    }


def test_each_phase_is_told_in_order_with_what_it_produced() -> None:
    told: list[tuple[str, int]] = []
    linked = link_records(FIXTURE, on_phase=lambda phase, count: told.append((phase, count)))
    assert [phase for phase, _ in told] == ["prepare", "blocking", "train", "compare_score", "cluster"]
    counts = dict(told)
    assert counts["prepare"] == len(FIXTURE) and counts["cluster"] == len(EXPECTED) == linked.stats["persons"]
    assert counts["blocking"] == linked.stats["candidate_pairs"] and counts["compare_score"] == len(linked.pairs)
