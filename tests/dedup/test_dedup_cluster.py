"""Clustering: components of links, split wherever two valid ID numbers would share a person."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dedup.cluster import cluster_links

ID_1 = "11010519491231002X"
ID_2 = "110105194912310021"


def groups(labels: np.ndarray) -> set[frozenset[int]]:
    return {frozenset(np.flatnonzero(labels == label).tolist()) for label in np.unique(labels)}


def test_components_follow_links() -> None:
    clusters = cluster_links(5, np.array([0, 1, 3]), np.array([1, 2, 4]), np.array([10.0, 10.0, 10.0]),
                             pd.Series([None] * 5, dtype="string"))
    assert groups(clusters.labels) == {frozenset({0, 1, 2}), frozenset({3, 4})}
    assert not clusters.cut.any() and clusters.split_components == 0


def test_chain_between_two_valid_ids_is_cut_at_its_weakest_link() -> None:
    # 0 (ID_1) -- 1 (no ID) -- 2 (ID_2): record 1 stays with the side it is more strongly linked to.
    clusters = cluster_links(3, np.array([0, 1]), np.array([1, 2]), np.array([11.0, 15.0]),
                             pd.Series([ID_1, None, ID_2], dtype="string"))
    assert groups(clusters.labels) == {frozenset({0}), frozenset({1, 2})}
    assert clusters.cut.tolist() == [True, False]
    assert clusters.split_components == 1


def test_same_valid_id_stays_together_when_splitting() -> None:
    # 0 and 3 share ID_1; 2 holds ID_2; the weak link 1-2 is the one refused.
    clusters = cluster_links(
        4,
        np.array([0, 1, 0]),
        np.array([1, 2, 3]),
        np.array([12.0, 10.5, 20.0]),
        pd.Series([ID_1, None, ID_2, ID_1], dtype="string"),
    )
    assert groups(clusters.labels) == {frozenset({0, 1, 3}), frozenset({2})}
    assert clusters.cut.tolist() == [False, True, False]


def test_no_cluster_ever_holds_two_valid_ids() -> None:
    rng = np.random.default_rng(3)
    n = 300
    left, right = rng.integers(0, n, 900), rng.integers(0, n, 900)
    keep = left != right
    ids = pd.Series([f"ID{index % 40}" if index % 3 == 0 else None for index in range(n)], dtype="string")
    clusters = cluster_links(n, left[keep], right[keep], rng.random(keep.sum()), ids)
    per_cluster = ids.groupby(clusters.labels).nunique()
    assert per_cluster.max() == 1


def test_cannot_link_pair_is_separated_keeping_the_stronger_side() -> None:
    # 0 -- 1 -- 2 linked, but a veto says 0 and 2 are two people; 1 stays with 2 (stronger link).
    clusters = cluster_links(
        3,
        np.array([0, 1]),
        np.array([1, 2]),
        np.array([10.5, 19.0]),
        pd.Series([None] * 3, dtype="string"),
        cannot_link=(np.array([0]), np.array([2])),
    )
    assert groups(clusters.labels) == {frozenset({0}), frozenset({1, 2})}
    assert clusters.cut.tolist() == [True, False]


def test_cannot_link_across_components_changes_nothing() -> None:
    clusters = cluster_links(
        4, np.array([0, 2]), np.array([1, 3]), np.array([12.0, 12.0]), pd.Series([None] * 4, dtype="string"),
        cannot_link=(np.array([0]), np.array([3])),
    )
    assert groups(clusters.labels) == {frozenset({0, 1}), frozenset({2, 3})}
    assert clusters.split_components == 0


def test_records_sharing_a_valid_id_stay_together_when_a_veto_splits_their_component():
    # 0 and 2 carry the same valid ID; 2 has a typo'd birth date, so a veto keeps it apart from 3,
    # which is strongly linked to 0 through 1. The split must still keep 2 with its ID-mate 0.
    valid = pd.Series(["340104197210111755", None, "340104197210111755", None])
    clusters = cluster_links(
        4,
        np.array([0, 1, 0]),
        np.array([1, 3, 2]),
        np.array([30.0, 20.0, 10.0]),
        valid,
        cannot_link=(np.array([2]), np.array([3])),
    )
    labels = clusters.labels.tolist()
    assert labels[0] == labels[2]
    assert labels[2] != labels[3]


def test_records_sharing_a_valid_id_are_one_person_even_unlinked() -> None:
    # No link between 0 and 2, but they carry the same valid ID: one person.
    clusters = cluster_links(
        4, np.array([1]), np.array([3]), np.array([12.0]), pd.Series([ID_1, None, ID_1, None], dtype="string")
    )
    assert groups(clusters.labels) == {frozenset({0, 2}), frozenset({1, 3})}
