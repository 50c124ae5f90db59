"""From accepted links to persons: connected components, split wherever a veto is broken.

Linking is pairwise, so transitivity can chain two people together (A–x, x–B) even when no single
link is wrong by itself. Two guarantees are enforced after the fact: no person ever holds two different
valid ID numbers, and no person holds both records of a vetoed pair (the caller passes those as
cannot-link pairs). A component that breaks either is re-built greedily from its strongest links down,
refusing any link that would break them (Kruskal's maximum spanning forest with cannot-link
constraints); the refused links are reported as ``cut``.

Persons are named by :func:`dedup.ids.assign_stable_ids`, which keeps earlier ids and issues opaque new ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["Clusters", "cluster_links", "components"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Clusters:
    """Cluster label per record (0..n_clusters-1) and which links were cut to keep the clusters consistent."""

    labels: np.ndarray
    cut: np.ndarray
    split_components: int

    @property
    def n_clusters(self) -> int:
        """How many clusters (persons) there are."""
        return int(self.labels.max()) + 1 if len(self.labels) else 0


def components(n_records: int, link_l: np.ndarray, link_r: np.ndarray) -> np.ndarray:
    """Connected-component label of each record ``0..n_records-1`` under the links."""
    if n_records == 0:
        return np.zeros(0, dtype=np.int64)
    link_l = np.asarray(link_l, dtype=np.int64)
    link_r = np.asarray(link_r, dtype=np.int64)
    graph = coo_matrix((np.ones(len(link_l), dtype=np.int8), (link_l, link_r)), shape=(n_records, n_records)).tocsr()
    return connected_components(graph, directed=False)[1].astype(np.int64)


def cluster_links(
    n_records: int,
    link_l: np.ndarray,
    link_r: np.ndarray,
    link_score: np.ndarray,
    valid_id: pd.Series | np.ndarray,
    cannot_link: tuple[np.ndarray, np.ndarray] | None = None,
    find_components: Callable[[int, np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> Clusters:
    """Cluster records ``0..n_records-1`` joined by links, one valid ID number to exactly one person.

    Records that share a valid ID always end up together; records with two different valid IDs never do.

    Args:
        n_records: number of records (``rid`` runs from 0 to ``n_records - 1``).
        link_l, link_r: record positions of each accepted link.
        link_score: score of each link; stronger links are kept first when a component must be split.
        valid_id: per record, its ID number if valid, else null.
        cannot_link: optional pairs of record positions that a veto says are two people (vetoed
            pairs); a component holding both ends of one is split like one holding two valid IDs.
        find_components: what labels the connected components (``(n_records, link_l, link_r) ->
            labels``, each below ``n_records``): :func:`components` here, or the backend the pairs
            live on (:meth:`dedup.backend.PairBackend.components`). The split that follows runs here,
            over the conflicted components only.

    Returns:
        :class:`Clusters` with labels and a mask over the links of those cut.

    Example:
        >>> c = cluster_links(3, np.array([0, 1]), np.array([1, 2]), np.array([9.0, 12.0]),
        ...                   pd.Series(["110105194912310021", None, "11010519491231002X"]))
        >>> c.labels.tolist(), c.cut.tolist()
        ([0, 1, 1], [True, False])
    """
    link_l = np.asarray(link_l, dtype=np.int64)
    link_r = np.asarray(link_r, dtype=np.int64)
    link_score = np.asarray(link_score, dtype=np.float64)
    cut = np.zeros(len(link_l), dtype=bool)
    if n_records == 0:
        return Clusters(np.zeros(0, dtype=np.int64), cut, 0)

    id_codes = pd.factorize(pd.Series(valid_id).reset_index(drop=True), use_na_sentinel=True)[0].astype(np.int64)
    has_id = id_codes >= 0
    # One valid ID is one person, even where the scores did not link its records (a name change
    # and a mistyped birth date together can outweigh an equal ID): tie each to the first holder.
    holders = np.flatnonzero(has_id)
    # The codes are 0..k-1, so the first holder of code c is ``first[c]`` (np.unique sorts them so).
    _, first = np.unique(id_codes[holders], return_index=True)
    anchor = holders[first][id_codes[holders]]
    labels = (find_components or components)(n_records, np.r_[link_l, holders], np.r_[link_r, anchor])
    distinct_ids = pd.Series(id_codes[has_id]).groupby(labels[has_id]).nunique()
    conflicted = set(distinct_ids.index[distinct_ids.to_numpy() > 1].tolist())
    forbidden_l = forbidden_r = np.zeros(0, dtype=np.int64)
    if cannot_link is not None:
        cannot_l = np.asarray(cannot_link[0], dtype=np.int64)
        cannot_r = np.asarray(cannot_link[1], dtype=np.int64)
        together = labels[cannot_l] == labels[cannot_r]
        forbidden_l, forbidden_r = cannot_l[together], cannot_r[together]
        conflicted.update(labels[forbidden_l].tolist())
    if conflicted:
        log.info("clustering: splitting %d component(s) that join records a veto keeps apart", len(conflicted))
        conflicted_labels = np.fromiter(conflicted, dtype=np.int64, count=len(conflicted))
        in_conflict = np.isin(labels[link_l], conflicted_labels)
        labels, cut_inside = _split(
            labels,
            link_l[in_conflict],
            link_r[in_conflict],
            link_score[in_conflict],
            id_codes,
            np.isin(labels, conflicted_labels),
            forbidden_l,
            forbidden_r,
        )
        cut[np.flatnonzero(in_conflict)[cut_inside]] = True
    # Renumber densely so labels are 0..k-1 whatever the splits did.
    labels = pd.factorize(labels)[0].astype(np.int64)
    return Clusters(labels, cut, len(conflicted))


def _split(
    labels: np.ndarray,
    link_l: np.ndarray,
    link_r: np.ndarray,
    link_score: np.ndarray,
    id_codes: np.ndarray,
    member: np.ndarray,
    forbidden_l: np.ndarray,
    forbidden_r: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Re-link the records in conflicted components, strongest link first, refusing any link that would
    unite two different valid IDs or the two ends of a cannot-link pair. Runs only over conflicted
    components, which are few and small."""
    parent: dict[int, int] = {}
    owner: dict[int, int] = {}
    members: dict[int, list[int]] = {}
    apart: dict[int, set[int]] = {}

    def find(node: int) -> int:
        root = node
        while root != parent[root]:
            root = parent[root]
        while node != root:
            parent[node], node = root, parent[node]
        return root

    for node in np.flatnonzero(member).tolist():
        parent[node] = node
        owner[node] = int(id_codes[node])
        members[node] = [node]
        apart[node] = set()
    for a, b in zip(forbidden_l.tolist(), forbidden_r.tolist(), strict=True):
        apart[a].add(b)
        apart[b].add(a)

    def join(a: int, b: int) -> None:
        if len(members[a]) < len(members[b]):
            a, b = b, a
        parent[b] = a
        owner[a] = owner[a] if owner[a] >= 0 else owner[b]
        members[a].extend(members.pop(b))
        apart[a].update(apart.pop(b))

    # Records carrying the same valid ID are one person whatever else they disagree on: a typo in
    # one record's birth date must not cut it away from the others holding its own ID.
    first_with_id: dict[int, int] = {}
    for node in np.flatnonzero(member & (id_codes >= 0)).tolist():
        code = int(id_codes[node])
        if code not in first_with_id:
            first_with_id[code] = node
        elif find(node) != find(first_with_id[code]):
            join(find(first_with_id[code]), find(node))

    # Ties broken by record position, so the same input always splits the same way.
    order = np.lexsort((link_r, link_l, -link_score))
    cut = np.zeros(len(link_l), dtype=bool)
    for index in order.tolist():
        a, b = find(int(link_l[index])), find(int(link_r[index]))
        if a == b:
            continue
        id_a, id_b = owner[a], owner[b]
        if (id_a >= 0 and id_b >= 0 and id_a != id_b) or any(find(node) == b for node in apart[a]):
            cut[index] = True
            continue
        join(a, b)

    new_labels = labels.copy()
    offset = int(labels.max()) + 1
    nodes = np.flatnonzero(member)
    new_labels[nodes] = offset + np.array([find(int(node)) for node in nodes.tolist()], dtype=np.int64)
    return new_labels, cut
