"""Clerical review: the queue of uncertain pairs, the decision log, and decisions binding later runs."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from core.errors import TerminalError
from core.home import DataHome
from dedup import DecisionLog, PreviousLinking, build_review_queue, link_records
from dedup.review import QUEUE_COLUMNS, REVIEW_REASONS, effective_decisions, format_review_queue, normalize_decisions
from tests.dedup.dedup_helpers import ID_KEY, records
from tests.dedup.test_dedup_engine import FIXTURE

# 孙丽 married and registered with justice as 孙美丽 at a new address: nothing but sex and birthday agree.
SUN_LI_AGAIN = {"record_id": "justice:9", "source": "justice", "name": "孙美丽", "sex": "F", "birth_date": "1960-02-02",
                "address": "示范区北塘街道湖畔社区2栋101"}
DISTRICT = pd.concat([FIXTURE, records([SUN_LI_AGAIN])], ignore_index=True)


def person_of(result) -> pd.Series:
    return result.mapping.set_index("record_id")["person_id"]


def decisions(*rows: tuple[str, str, str]) -> pd.DataFrame:
    return normalize_decisions(pd.DataFrame(rows, columns=["record_id_a", "record_id_b", "decision"]))


def test_different_keeps_two_high_scoring_records_apart():
    before = link_records(DISTRICT)
    # 陈静 / 陈婧: linked on pinyin, birthday and phone.
    [score] = before.pairs.query("record_id_l == 'civil_affairs:6' and record_id_r == 'health:6'")["score"]
    assert person_of(before)["civil_affairs:6"] == person_of(before)["health:6"]

    after = link_records(DISTRICT, previous=PreviousLinking(
        mapping=before.mapping, decisions=decisions(("health:6", "civil_affairs:6", "different"))))

    ids = person_of(after)
    assert ids["civil_affairs:6"] != ids["health:6"]
    assert ids["civil_affairs:6"] == person_of(before)["civil_affairs:6"]  # a 1–1 tie: the smaller record id keeps it
    [row] = after.pairs.query("record_id_l == 'civil_affairs:6' and record_id_r == 'health:6'").itertuples()
    assert row.score == score and row.decision == "cut"
    assert after.history[["kind", "old_id"]].values.tolist() == [["split", ids["civil_affairs:6"]]]
    # Everyone else is untouched.
    others = person_of(before).drop(["health:6"])
    assert (ids[others.index] == others).all()


def test_same_joins_two_records_nothing_else_links():
    before = link_records(DISTRICT, id_key=ID_KEY)
    assert person_of(before)["civil_affairs:9"] != person_of(before)["justice:9"]

    after = link_records(DISTRICT, id_key=ID_KEY, previous=PreviousLinking(
        mapping=before.mapping, decisions=decisions(("civil_affairs:9", "justice:9", "same"))))

    ids = person_of(after)
    # One record each: the tie goes to the smaller old id, and the other is recorded as merged into it.
    kept, absorbed = sorted([person_of(before)["civil_affairs:9"], person_of(before)["justice:9"]])
    assert ids["civil_affairs:9"] == ids["justice:9"] == kept
    assert after.history[["kind", "old_id", "new_id"]].values.tolist() == [["merge", absorbed, kept]]
    assert after.stats["review_same"] == 1


def test_same_cannot_unite_two_different_valid_ids():
    # The twins 王大伟 / 王小伟 hold two valid IDs: a decision cannot make them one person.
    after = link_records(DISTRICT, previous=PreviousLinking(decisions=decisions(("civil_affairs:2", "civil_affairs:3", "same"))))
    assert person_of(after)["civil_affairs:2"] != person_of(after)["civil_affairs:3"]
    assert after.stats["review_overruled"] == 1


def test_the_latest_decision_on_a_pair_is_in_force():
    log = pd.DataFrame({
        "record_id_a": ["health:6", "civil_affairs:6"], "record_id_b": ["civil_affairs:6", "health:6"],
        "decision": ["different", "same"],
        "decided_at": [datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)],
    })
    [row] = effective_decisions(log).itertuples()
    assert (row.record_id_a, row.record_id_b, row.decision) == ("civil_affairs:6", "health:6", "same")
    after = link_records(DISTRICT, previous=PreviousLinking(decisions=log))
    assert person_of(after)["civil_affairs:6"] == person_of(after)["health:6"]


def uncertain_pairs() -> pd.DataFrame:
    return pd.DataFrame({
        "record_id_l": ["civil_affairs:9", "civil_affairs:1", "census:5"],
        "record_id_r": ["justice:9", "health:1", "civil_affairs:5"],
        "score": [8.5, 31.5, 9.0],
        "decision": ["near_miss", "link", "near_miss"],
        "veto": [None, None, None],
        "rule": ["birth_date_sex", "id_number", "name_birth"],
        "name": ["different", "exact", "exact"],
        "w_name": [-3.0, 5.0, 5.0],
    })


def test_queue_holds_undecided_uncertain_pairs_with_both_records_and_evidence():
    mapping = pd.DataFrame({"record_id": DISTRICT["record_id"], "person_id": "P" + DISTRICT.index.astype(str)})
    seen = pd.DataFrame({"record_id_a": ["civil_affairs:9"], "record_id_b": ["justice:9"], "first_seen_run": ["run-1"]})

    queue = build_review_queue(uncertain_pairs(), DISTRICT, mapping, decisions(), seen)

    assert list(queue.columns) == list(QUEUE_COLUMNS)
    assert queue[["record_id_a", "record_id_b"]].values.tolist() == [
        ["census:5", "civil_affairs:5"], ["civil_affairs:9", "justice:9"]]  # highest score first, pair ordered
    sun = queue.iloc[1]
    assert (sun.name_a, sun.name_b, sun.birth_date_a, sun.source_b) == ("孙丽", "孙美丽", "1960-02-02", "justice")
    assert sun.evidence == "name=different (-3.0)" and sun.first_seen_run == "run-1" and not sun.same_person_now
    assert pd.isna(queue.iloc[0].first_seen_run)

    decided = build_review_queue(uncertain_pairs(), DISTRICT, mapping,
                                 decisions(("justice:9", "civil_affairs:9", "different")), seen)
    assert decided["record_id_a"].tolist() == ["census:5"]


def test_decision_log_appends_and_reloads(tmp_path):
    log = DecisionLog.in_home(tmp_path)
    assert log.load().empty
    log.record("justice:9", "civil_affairs:9", "same", by="wang.fang", note="married name")
    log.record("health:6", "civil_affairs:6", "different", by="li.na")
    loaded = log.load()
    assert log.path == DataHome.at(tmp_path).review_decisions_file
    assert loaded[["record_id_a", "record_id_b", "decision", "decided_by"]].values.tolist() == [
        ["civil_affairs:9", "justice:9", "same", "wang.fang"],
        ["civil_affairs:6", "health:6", "different", "li.na"],
    ]
    assert loaded["note"].iloc[0] == "married name" and pd.isna(loaded["note"].iloc[1])
    assert loaded["decided_at"].notna().all()
    after = link_records(DISTRICT, previous=PreviousLinking(decisions=loaded))
    ids = person_of(after)
    assert ids["civil_affairs:9"] == ids["justice:9"] and ids["civil_affairs:6"] != ids["health:6"]


@pytest.mark.parametrize(("a", "b", "decision", "message"), [
    ("a:1", "b:1", "maybe", "not one of"),
    ("a:1", "a:1", "same", "two different records"),
])
def test_decision_log_refuses_impossible_decisions(tmp_path, a, b, decision, message):
    with pytest.raises(TerminalError, match=message):
        DecisionLog.in_home(tmp_path).record(a, b, decision, by="x")
    assert not (DataHome.at(tmp_path).review_decisions_file).exists()


def test_queue_holds_id_sharing_conflicts_but_not_other_vetoed_pairs_and_says_why():
    mapping = pd.DataFrame({"record_id": DISTRICT["record_id"], "person_id": "P" + DISTRICT.index.astype(str)})
    pairs = pd.concat([uncertain_pairs(), pd.DataFrame({
        "record_id_l": ["civil_affairs:1", "civil_affairs:2"], "record_id_r": ["civil_affairs:9", "civil_affairs:3"],
        "score": [3.0, 20.0], "decision": ["vetoed", "vetoed"], "veto": ["id_sharing_conflict", "distinct_valid_ids"],
        "rule": ["id_number", "household_birth_month"], "name": ["different", "similar"], "w_name": [-6.0, -3.0],
    })], ignore_index=True)

    queue = build_review_queue(pairs, DISTRICT, mapping, decisions())

    reasons = dict(zip(zip(queue["record_id_a"], queue["record_id_b"]), zip(queue["reason"], queue["reason_label"]),
                       strict=True))
    assert reasons == {
        ("census:5", "civil_affairs:5"): ("near_miss", REVIEW_REASONS["near_miss"]),
        ("civil_affairs:9", "justice:9"): ("near_miss", REVIEW_REASONS["near_miss"]),
        ("civil_affairs:1", "civil_affairs:9"): ("id_sharing_conflict", REVIEW_REASONS["id_sharing_conflict"]),
    }, "twins (two valid IDs) are settled; a borrowed ID number waits for a person, whatever its score"
    assert "公民身份号码冲突" in format_review_queue(queue)
