"""Stable person ids: hand-made cases that read like the rules, then a re-run of a linked demo district."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from dedup import PreviousLinking, assign_stable_ids, link_records
from tests.dedup.dedup_helpers import staged_demo


def mapping(pairs: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"record_id": list(pairs), "person_id": list(pairs.values())})


def run(clusters: list[list[str]], previous: dict[str, str] | None = None, issued: list[str] | None = None):
    """Assign ids to ``clusters`` (lists of record ids); return record → id and history as tuples."""
    record_ids = [r for cluster in clusters for r in cluster]
    labels = np.array([i for i, cluster in enumerate(clusters) for _ in cluster])
    ids = assign_stable_ids(pd.Series(record_ids), labels, mapping(previous) if previous else None, issued, KEY)
    by_record = dict(zip(ids.mapping["record_id"], ids.mapping["person_id"], strict=True))
    history = [
        (row.kind, None if pd.isna(row.old_id) else row.old_id, row.new_id, row.records)
        for row in ids.history.itertuples()
    ]
    return by_record, history


KEY = bytes(range(100, 132))


def fresh(smallest: str, key: bytes = KEY) -> str:
    """The id a new person whose smallest record is ``smallest`` gets under ``key``, computed independently."""
    return "P" + hashlib.sha256((key.hex() + smallest).encode()).hexdigest()[:12]


def test_new_ids_are_keyed_so_nobody_can_compute_them_from_record_keys():
    ids, _ = run([["民政:1"]])
    assert ids["民政:1"] == fresh("民政:1")
    assert ids["民政:1"] != "P" + hashlib.sha1("民政:1".encode()).hexdigest()[:12]  # the old, guessable scheme
    other = assign_stable_ids(pd.Series(["民政:1"]), np.array([0]), id_key=bytes(range(32))).mapping
    unkeyed = [assign_stable_ids(pd.Series(["民政:1"]), np.array([0])).mapping["person_id"][0] for _ in range(2)]
    assert other["person_id"][0] == fresh("民政:1", bytes(range(32))) != ids["民政:1"]
    assert unkeyed[0] != unkeyed[1]  # without the district's key, new ids are random


def test_first_run_ids_are_the_keyed_hash_of_the_smallest_record_and_all_new():
    ids, history = run([["b:1", "a:1"], ["c:1"]])
    assert ids == {"a:1": fresh("a:1"), "b:1": fresh("a:1"), "c:1": fresh("c:1")}
    assert sorted(history) == sorted([("new", None, fresh("a:1"), 2), ("new", None, fresh("c:1"), 1)])


def test_unchanged_and_grown_persons_keep_their_ids():
    previous = {"a:1": "P_A", "b:1": "P_A", "c:1": "P_C"}
    ids, history = run([["a:1", "b:1", "d:1"], ["c:1"]], previous)
    assert ids == {"a:1": "P_A", "b:1": "P_A", "d:1": "P_A", "c:1": "P_C"}
    assert history == []


def test_merge_keeps_the_largest_overlap_and_records_the_absorbed_id():
    previous = {"a:1": "P_A", "a:2": "P_A", "b:1": "P_B"}
    ids, history = run([["a:1", "a:2", "b:1"]], previous)
    assert set(ids.values()) == {"P_A"}
    assert history == [("merge", "P_B", "P_A", 1)]


def test_split_keeps_the_id_on_the_larger_part_and_issues_a_new_one_for_the_rest():
    previous = {"a:1": "P_A", "a:2": "P_A", "a:3": "P_A"}
    ids, history = run([["a:1"], ["a:2", "a:3"]], previous)
    assert ids["a:2"] == ids["a:3"] == "P_A"
    assert ids["a:1"] == fresh("a:1")
    assert history == [("split", "P_A", fresh("a:1"), 1)]


@pytest.mark.parametrize(
    ("clusters", "winner"),
    [
        # equal overlap: the cluster holding the smaller record id keeps the old id
        ([["a:2"], ["a:1"]], "a:1"),
        ([["x:9", "a:1"], ["a:2", "b:5"]], "a:1"),
    ],
)
def test_ties_are_broken_by_the_smallest_record_id(clusters, winner):
    ids, _ = run(clusters, {"a:1": "P_A", "a:2": "P_A"})
    assert ids[winner] == "P_A"
    assert sum(v == "P_A" for v in ids.values()) == len(next(c for c in clusters if winner in c))


def test_a_cluster_that_loses_its_best_old_id_takes_its_next_one():
    # D overlaps A most; C overlaps A (2) more than B (1) but A goes to D, so C continues B.
    previous = {"a:1": "P_A", "a:2": "P_A", "a:3": "P_A", "a:4": "P_A", "a:5": "P_A", "b:1": "P_B"}
    ids, history = run([["a:1", "a:2", "a:3"], ["a:4", "a:5", "b:1"]], previous)
    assert ids["a:1"] == "P_A" and ids["a:4"] == "P_B"
    assert history == [("split", "P_A", "P_B", 2)]


def test_an_id_ever_issued_is_never_issued_again():
    # a:1's plain hash was issued before (its person was later merged away): the new person gets another.
    ids, history = run([["a:1"]], issued=[fresh("a:1")])
    assert ids["a:1"] != fresh("a:1") and ids["a:1"].startswith("P") and len(ids["a:1"]) == 13
    assert history == [("new", None, ids["a:1"], 1)]
    again, _ = run([["a:1"]], issued=[fresh("a:1")])
    assert again == ids
    # Taken by a person of the last run's mapping, not among the issued ids given: not issued either, and
    # neither is its salted successor once that is taken too (two rounds of clashes); others are unaffected.
    first_salt, _ = run([["b:1"]], issued=[fresh("b:1")])
    previous = {"z:1": fresh("b:1"), "z:2": fresh("b:1"), "z:3": first_salt["b:1"], "z:4": "P000000000000"}
    ids, history = run([["b:1"], ["c:1"], ["z:4"]], previous=previous)
    assert ids["b:1"] not in {fresh("b:1"), first_salt["b:1"]} and ids["c:1"] == fresh("c:1")
    assert ids["z:4"] == "P000000000000" and ("new", None, ids["b:1"], 1) in history


def test_previous_mapping_needs_record_and_person_columns():
    with pytest.raises(ValueError, match="record_id, person_id"):
        PreviousLinking(mapping=pd.DataFrame({"record_id": ["a:1"]}))


# -- a linked population re-run with 5% new and corrected records ------------------------------------


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> pd.DataFrame:
    return staged_demo(tmp_path_factory.mktemp("ids_home"), persons=400, seed=5)


def scramble(records: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """A keying disaster: name, birth date, ID, phone and address of ``rows`` replaced by unrelated values."""
    out = records.copy()
    positions = out.index[rows]
    out.loc[positions, "name"] = [f"错{chr(0x4E00 + 97 * i)}{chr(0x4E00 + 389 * i + 7)}" for i in range(len(rows))]
    out.loc[positions, "birth_date"] = "1901-01-01"
    out.loc[positions, ["id_number", "phone", "address"]] = None
    return out


def test_rerun_with_new_and_corrected_records_keeps_ids_and_records_every_merge_and_split(staged):
    rng = np.random.default_rng(3)
    n = len(staged)
    held_back = rng.choice(n, size=n // 20, replace=False)  # 5% arrive only in the second run
    rest = np.setdiff1d(np.arange(n), held_back)
    fixed, broken = np.split(rng.choice(rest, size=n // 20, replace=False), 2)
    # Run 1: `fixed` records are garbled (each stands alone), `broken` ones still fine.
    first_records = scramble(staged, fixed).iloc[rest]
    first = link_records(first_records)
    # Run 2: `fixed` corrected (they rejoin their persons: merges), `broken` garbled (splits), 5% new.
    second_records = scramble(staged, broken)
    second = link_records(second_records, previous=PreviousLinking(mapping=first.mapping))

    old = first.mapping.set_index("record_id")["person_id"]
    new = second.mapping.set_index("record_id")["person_id"]
    assert new.index.is_unique and len(new) == n
    assert second.stats["ids_continued"] == len(set(new) & set(old)) > 0

    # Unchanged persons — the same records in run 1 and run 2 — keep their ids.
    def record_sets(ids: pd.Series) -> pd.Series:
        return ids.groupby(ids).apply(lambda x: frozenset(x.index))

    before, after = record_sets(old), record_sets(new)
    unchanged = pd.Index(before.to_numpy()).intersection(pd.Index(after.to_numpy()))
    kept = {before[before == s].index[0]: after[after == s].index[0] for s in unchanged}
    assert len(kept) > 0.6 * len(before)  # the rest gained, lost or swapped records
    assert all(o == a for o, a in kept.items())

    # Every change is in the history, computed here independently from the two mappings.
    common = old.index.intersection(new.index)
    moves = pd.DataFrame({"old_id": old[common].to_numpy(), "new_id": new[common].to_numpy()})
    moves = moves[moves["old_id"] != moves["new_id"]].value_counts().rename("records").reset_index()
    moves["kind"] = np.where(moves["old_id"].isin(set(new)), "split", "merge")
    expected = set(moves[["kind", "old_id", "new_id", "records"]].itertuples(index=False, name=None))
    history = second.history
    changes = history[history["kind"] != "new"]
    assert set(changes[["kind", "old_id", "new_id", "records"]].itertuples(index=False, name=None)) == expected
    assert {"merge", "split"} <= set(changes["kind"])
    born = set(new) - set(old)
    assert set(history.loc[history["kind"] == "new", "new_id"]) == born - set(changes["new_id"])

    # No id of run 1 names anyone in run 2 unless it continues that person (shares records with it).
    for person_id in set(new) & set(old):
        assert (old[new.index[new == person_id].intersection(old.index)] == person_id).any()
    # And an id merged away in run 2 stays retired in run 3, even if its records split off again.
    merged_away = set(changes.loc[changes["kind"] == "merge", "old_id"])
    third = link_records(
        scramble(staged, fixed),
        previous=PreviousLinking(mapping=second.mapping, issued=pd.Series(sorted(set(old) | set(new)))),
    )
    assert merged_away and not merged_away & set(third.mapping["person_id"])


def test_history_is_ordered_by_kind_then_old_id_then_new_id_new_persons_without_one():
    # P_A splits in two and P_C keeps one of its pieces; P_B and P_D merge; x:1 and y:1 are new.
    previous = {"a:1": "P_A", "a:2": "P_A", "a:3": "P_A", "b:1": "P_B", "d:1": "P_D", "d:2": "P_D", "c:1": "P_C"}
    ids, history = run([["a:1", "a:2"], ["a:3", "c:1"], ["b:1", "d:1", "d:2"], ["y:1"], ["x:1"]], previous)
    assert [kind for kind, *_ in history] == ["merge", "new", "new", "split"]
    assert history[0] == ("merge", "P_B", "P_D", 1)
    assert history[1:3] == sorted([("new", None, ids["x:1"], 1), ("new", None, ids["y:1"], 1)], key=lambda row: row[2])
    assert history[3] == ("split", "P_A", "P_C", 1)
