"""A record keyed with another resident's valid ID number: kept apart, queued for review, not the number's holder.

张建国 is in 民政 and 卫健 under his own number. 民政 also keyed 李秀英, who lives in his building, with
his number; 卫健 has her without any. Name, sex and birth date all contradict the number on her 民政
record, so it is hers, not his, whatever the shared number says.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from dedup import LinkSettings, PreviousLinking, link_records
from dedup.compare import CodedStrings, RecordArrays
from dedup.id_sharing import without_borrowed_ids
from dedup.prepare import prepare_records
from dedup.review import REVIEW_REASONS, normalize_decisions
from tests.dedup.dedup_helpers import ID_KEY, records, valid_id

HIS_ID = valid_id("330106", "19500101", "011")  # a man born 1950-01-01
HOME = "示范区西溪街道翠苑社区3幢2单元501室"
HIM = {"name": "张建国", "sex": "男", "birth_date": "1950-01-01", "id_number": HIS_ID, "address": HOME, "phone": "13800000001"}
HER = {"name": "李秀英", "sex": "女", "birth_date": "1953-07-15", "address": "示范区西溪街道翠苑社区3幢1单元302室",
       "phone": "13900000002"}
STRAY = {"record_id": "civil_affairs:2", "source": "civil_affairs", **HER, "id_number": HIS_ID}
DISTRICT = records([
    STRAY,  # first, so the number's first holder in input order is the borrower
    {"record_id": "civil_affairs:1", "source": "civil_affairs", **HIM},
    {"record_id": "health:1", "source": "health", **HIM, "birth_date": "1950/1/1"},
    {"record_id": "health:2", "source": "health", **HER},
])


def person_of(result) -> pd.Series:
    return result.mapping.set_index("record_id")["person_id"]


def decisions(*rows: tuple[str, str, str]) -> pd.DataFrame:
    return normalize_decisions(pd.DataFrame(rows, columns=["record_id_a", "record_id_b", "decision"]))


@pytest.fixture(scope="module")
def result():
    return link_records(DISTRICT, id_key=ID_KEY)


def test_the_borrowed_number_does_not_merge_her_into_him(result) -> None:
    ids = person_of(result)
    assert ids["civil_affairs:1"] == ids["health:1"], "his two records still share his number"
    assert ids["civil_affairs:2"] != ids["civil_affairs:1"]
    assert ids["civil_affairs:2"] == ids["health:2"], "her records link on name, birth date, phone and flat"


def test_only_her_record_is_marked_as_not_holding_the_number(result) -> None:
    disputed = result.mapping.set_index("record_id")["id_number_disputed"]
    assert disputed.to_dict() == {"civil_affairs:2": True, "civil_affairs:1": False, "health:1": False, "health:2": False}
    assert (result.stats["id_sharing_conflicts"], result.stats["ids_disputed"]) == (2, 1)


def test_each_of_his_records_is_vetoed_against_hers(result) -> None:
    vetoed = result.pairs[result.pairs["veto"].eq("id_sharing_conflict").fillna(False)]
    assert {frozenset(pair) for pair in vetoed[["record_id_l", "record_id_r"]].itertuples(index=False)} == {
        frozenset({"civil_affairs:1", "civil_affairs:2"}), frozenset({"health:1", "civil_affairs:2"})}
    assert set(vetoed["decision"]) == {"vetoed"}


def test_the_conflict_waits_for_a_reviewer_labelled_in_chinese(result) -> None:
    queue = result.review_queue[result.review_queue["reason"] == "id_sharing_conflict"]
    assert len(queue) == 2
    assert set(queue["reason_label"]) == {REVIEW_REASONS["id_sharing_conflict"]}
    assert REVIEW_REASONS["id_sharing_conflict"].startswith("公民身份号码冲突")
    row = queue[queue["record_id_a"] == "civil_affairs:1"].iloc[0]
    # Both records side by side, as the departments wrote them: the same number, two people.
    assert (row.id_number_a, row.id_number_b) == (HIS_ID, HIS_ID)
    assert (row.name_a, row.sex_a, row.name_b, row.sex_b) == ("张建国", "男", "李秀英", "女")
    assert not row.same_person_now


def test_a_reviewer_who_judges_them_one_person_is_followed(result) -> None:
    after = link_records(DISTRICT, id_key=ID_KEY, previous=PreviousLinking(
        mapping=result.mapping, decisions=decisions(("civil_affairs:1", "civil_affairs:2", "same"))))
    ids = person_of(after)
    assert ids["civil_affairs:2"] == ids["civil_affairs:1"] == ids["health:1"]
    assert not after.mapping["id_number_disputed"].any(), "judged the same person: the number is hers to hold"
    assert "civil_affairs:1" not in set(after.review_queue["record_id_a"])


def test_a_reviewer_who_judges_them_two_people_keeps_the_number_his(result) -> None:
    after = link_records(DISTRICT, id_key=ID_KEY, previous=PreviousLinking(
        mapping=result.mapping, decisions=decisions(("civil_affairs:2", "civil_affairs:1", "different"))))
    ids = person_of(after)
    assert ids["civil_affairs:2"] != ids["civil_affairs:1"]
    assert after.mapping.set_index("record_id")["id_number_disputed"]["civil_affairs:2"]
    assert after.review_queue[["record_id_a", "record_id_b"]].values.tolist() == [["civil_affairs:2", "health:1"]]


def test_without_the_veto_the_number_merges_them_as_before() -> None:
    settings = LinkSettings(vetoes=("distinct_valid_ids", "different_sex", "contradicting_birth_dates"))
    ids = person_of(link_records(DISTRICT, settings, id_key=ID_KEY))
    assert ids["civil_affairs:2"] == ids["civil_affairs:1"]


def test_her_record_under_his_number_joins_her_record_under_her_own() -> None:
    # 卫健 has her real number: once her 民政 record is linked without his, her two records are one
    # person holding her number (before, two valid numbers kept them apart and his number kept it with him).
    her_id = valid_id("330106", "19530715", "022")
    district = records([
        STRAY,
        {"record_id": "civil_affairs:1", "source": "civil_affairs", **HIM},
        {"record_id": "health:2", "source": "health", **HER, "id_number": her_id},
    ])
    result = link_records(district, id_key=ID_KEY)
    ids = person_of(result)
    assert ids["civil_affairs:2"] == ids["health:2"] != ids["civil_affairs:1"]
    assert result.mapping.set_index("record_id")["id_number_disputed"].to_dict() == {
        "civil_affairs:2": True, "civil_affairs:1": False, "health:2": False}


def test_when_neither_record_agrees_with_the_number_neither_holds_it() -> None:
    # His own record states a birth date a year off his number, hers everything else: the number
    # vouches for neither, so both wait for a reviewer without it (fail closed).
    district = records([
        STRAY,
        {"record_id": "civil_affairs:1", "source": "civil_affairs", **HIM, "birth_date": "1951-01-01"},
    ])
    result = link_records(district, id_key=ID_KEY)
    assert result.mapping["id_number_disputed"].tolist() == [True, True]
    assert person_of(result)["civil_affairs:2"] != person_of(result)["civil_affairs:1"]
    assert result.review_queue["reason"].tolist() == ["id_sharing_conflict"]
    assert len(result.pairs) == 1, "reported once, as written: not again as two records without a number"


def test_taking_a_borrowed_number_off_refreshes_the_arrays_as_preparing_them_anew_would() -> None:
    prepared = prepare_records(DISTRICT)
    borrowed = (prepared["record_id"] == "civil_affairs:2").to_numpy()
    redone = without_borrowed_ids(DISTRICT, prepared, borrowed)
    [row] = redone.loc[borrowed].itertuples()
    assert (pd.isna(row.id_number), row.id_number_valid, row.sex, row.birth_date) == (True, False, "F", "1953-07-15")
    assert redone.loc[~borrowed].equals(prepared.loc[~borrowed])

    def columns(arrays: RecordArrays) -> dict:
        out = {}
        for spec in dataclasses.fields(arrays):
            value = getattr(arrays, spec.name)
            if isinstance(value, CodedStrings):
                out[spec.name] = [value.values[c] if c >= 0 else None for c in value.codes]  # whatever the codes
            elif isinstance(value, np.ndarray):
                out[spec.name] = value.tolist()
        return out

    refreshed = RecordArrays.from_prepared(prepared).with_identities_of(redone, np.flatnonzero(borrowed))
    anew = RecordArrays.from_prepared(redone)
    assert columns(refreshed) == columns(anew)
    assert columns(refreshed.as_stated()) == columns(anew.as_stated())


def test_patched_codes_decode_to_the_new_values_and_append_the_unseen_ones() -> None:
    coded = CodedStrings.of(pd.Series(["M", "F", None, "M", "F"]))
    patched = coded.patched(np.array([0, 2, 4]), CodedStrings.of(pd.Series(["X", "F", None])))
    assert [patched.values[c] if c >= 0 else None for c in patched.codes] == ["X", "F", "F", "M", None]
    assert patched.codes[[1, 3]].tolist() == coded.codes[[1, 3]].tolist(), "the other rows keep their codes"
    assert coded.codes.tolist() == [0, 1, -1, 0, 1], "the original is left as it was"
    emptied = coded.patched(np.array([1]), CodedStrings.of(pd.Series([None])))
    assert emptied.codes.tolist() == [0, -1, -1, 0, 1] and emptied.values is coded.values


def test_every_two_records_of_a_valid_number_are_paired_once_in_record_order(caplog):
    from dedup.id_sharing import _shared_id_pairs

    a, b, c = (valid_id("330106", "19500101", f"{n:03d}") for n in (11, 21, 31))
    numbers = [c, a, None, b, a, c, "330106195001010012", c, b, a, a]  # c ×3, a ×4 (over the cap of 3), b ×2
    prepared = pd.DataFrame({"rid": np.arange(len(numbers)), "id_number": numbers,
                             "id_number_valid": [n is not None and n != "330106195001010012" for n in numbers]})
    left, right = _shared_id_pairs(prepared, 3)
    assert list(zip(left.tolist(), right.tolist(), strict=True)) == [(0, 5), (0, 7), (3, 8), (5, 7)]
    assert "1 valid ID number(s) carried by more than 3 records" in caplog.text
    none = _shared_id_pairs(prepared.iloc[:2], 3)
    assert [len(side) for side in none] == [0, 0]
