"""Person ids that survive re-runs: each new cluster inherits the id of the old person it overlaps most.

Clustering labels are arbitrary numbers that change whenever a record is added or corrected. This
module turns them into ids a department can keep: a cluster takes the id of the previous person it
shares the most records with, and each previous id goes to at most one cluster. Contests are settled
greedily, largest overlap first, ties broken by the smaller old id and then by the cluster's smallest
record_id — the same input always gives the same ids. A cluster left without an old id gets a fresh one,
``'P'`` + 12 hex characters of SHA-256 of a secret key and its smallest record_id, salted with ``#1``,
``#2`` … until it collides with no id ever issued: an id is never given to someone else, even after the
person it named was merged away. The key makes ids opaque: without it, nobody can compute a person's
id from a department's record keys (issue the ids of a district with its persistent key; without one,
each call draws a random key, and ids are simply issued).

What changed is reported as history rows:

- ``merge`` — ``old_id`` no longer exists; ``records`` of its records now belong to ``new_id`` (the
  absorbed id → the surviving id);
- ``split`` — ``old_id`` lives on, but ``records`` of its records now belong to ``new_id`` (a fresh id
  or another continuing person);
- ``new`` — ``new_id`` was issued for a person none of whose records belonged to an earlier one.

Example:
    >>> previous = pd.DataFrame({"record_id": ["a:1", "b:1"], "person_id": ["P1", "P1"]})
    >>> ids = assign_stable_ids(pd.Series(["a:1", "b:1", "c:1"]), np.array([0, 1, 0]), previous)
    >>> ids.mapping["person_id"].tolist()[0], ids.history["kind"].tolist()
    ('P1', ['split'])
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dedup.incremental import found_in
from dedup.prepare import TEXT
from dedup.review import QUEUE_SEEN_COLUMNS, empty_decisions, normalize_decisions
from staging._arrow import as_arrow

__all__ = ["HISTORY_COLUMNS", "PreviousLinking", "StableIds", "assign_stable_ids"]

log = logging.getLogger(__name__)

#: Columns of the history frame (the warehouse adds ``run_id``).
HISTORY_COLUMNS: tuple[str, ...] = ("kind", "old_id", "new_id", "records")


def _empty_mapping() -> pd.DataFrame:
    return pd.DataFrame({"record_id": pd.Series([], dtype=TEXT), "person_id": pd.Series([], dtype=TEXT)})


def _empty_queue_seen() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series([], dtype=TEXT) for column in QUEUE_SEEN_COLUMNS})


@dataclass(frozen=True)
class PreviousLinking:
    """What earlier runs decided, fed into :func:`dedup.link_records` so this run can build on it.

    Attributes:
        mapping: ``record_id, person_id`` of the previous publication (its ``record_person`` table).
        issued: every person id ever issued (``issued_person_ids``); the ids in ``mapping`` count too.
        decisions: clerical review decisions (see :mod:`dedup.review`), applied as must-link / cannot-link.
        queue: ``record_id_a, record_id_b, first_seen_run`` of the previous review queue, so a pair that
            stays uncertain keeps the run it was first queued in.

    Example:
        >>> PreviousLinking(mapping=pd.read_parquet("persons.parquet"))  # doctest: +SKIP
    """

    mapping: pd.DataFrame = field(default_factory=_empty_mapping)
    issued: pd.Series = field(default_factory=lambda: pd.Series([], dtype=TEXT))
    decisions: pd.DataFrame = field(default_factory=empty_decisions)
    queue: pd.DataFrame = field(default_factory=_empty_queue_seen)

    def __post_init__(self) -> None:
        missing = {"record_id", "person_id"} - set(self.mapping.columns)
        if missing:
            raise ValueError(
                f"previous mapping lacks column(s) {sorted(missing)}; give record_id, person_id "
                "as the warehouse's record_person table or `silobreaker dedup` output has them"
            )
        object.__setattr__(self, "decisions", normalize_decisions(self.decisions))

    @classmethod
    def from_tables(cls, tables: Mapping[str, pd.DataFrame], logged: pd.DataFrame | None = None) -> PreviousLinking:
        """Build from the published warehouse's tables and the review decision log.

        Args:
            tables: any of ``record_person``, ``issued_person_ids``, ``review_decisions``, ``review_queue``
                (a missing one — first run, or a warehouse published before they existed — counts as empty).
            logged: decisions from :class:`dedup.review.DecisionLog` (recorded since, or before, the last run).
        """
        mapping = tables.get("record_person")
        issued = tables.get("issued_person_ids")
        decisions = pd.concat(
            [normalize_decisions(tables.get("review_decisions")), normalize_decisions(logged)], ignore_index=True
        ).drop_duplicates(["record_id_a", "record_id_b", "decision", "decided_at"], ignore_index=True)
        queue = tables.get("review_queue")
        return cls(
            mapping=_empty_mapping() if mapping is None else mapping.loc[:, ["record_id", "person_id"]],
            issued=pd.Series([], dtype=TEXT) if issued is None else issued["person_id"].astype(TEXT),
            decisions=decisions,
            queue=_empty_queue_seen() if queue is None else queue.loc[:, list(QUEUE_SEEN_COLUMNS)],
        )


@dataclass(frozen=True)
class StableIds:
    """Person id per record (``mapping``: ``record_id, person_id`` in input order), what changed (``history``)
    and how many persons kept an id of the previous mapping (``continued``)."""

    mapping: pd.DataFrame
    history: pd.DataFrame
    continued: int = 0


def assign_stable_ids(
    record_ids: pd.Series,
    labels: np.ndarray,
    previous_mapping: pd.DataFrame | None = None,
    issued: Iterable[str] | None = None,
    id_key: bytes | None = None,
) -> StableIds:
    """Give each cluster a person id, keeping the ids of the previous run wherever the persons continue.

    Args:
        record_ids: record id per record, unique.
        labels: cluster label per record (any integers; equal label, same person).
        previous_mapping: ``record_id, person_id`` of the previous run, or None on a first run.
        issued: ids issued by any earlier run (those in ``previous_mapping`` are added); never reused.
        id_key: the secret new ids are derived with (the district's persistent key, so a rerun from
            scratch gives the same ids); ``None`` draws a random one, and new ids are then random.

    Returns:
        :class:`StableIds`: the mapping in input order and history rows :data:`HISTORY_COLUMNS`
        (``merge``, ``split``, ``new``; see the module docstring), sorted by kind, old id, new id.
    """
    record_ids = pd.Series(record_ids).reset_index(drop=True).astype(TEXT)
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(record_ids):
        raise ValueError(f"{len(record_ids)} record ids but {len(labels)} labels; give one label per record")
    previous = _empty_mapping() if previous_mapping is None else previous_mapping.loc[:, ["record_id", "person_id"]]
    current = pd.DataFrame({"record_id": record_ids, "label": labels})
    with duckdb.connect() as con:
        con.register("current_records", current)
        con.register("previous_records", previous)
        clusters = con.execute(
            "SELECT label, min(record_id) AS smallest, count(*) AS size FROM current_records GROUP BY label"
        ).df().set_index("label")
        # Ranks in string order (old id; the cluster's smallest record_id) break ties with integer work.
        overlap = con.execute(
            "WITH o AS (SELECT c.label, CAST(p.person_id AS VARCHAR) AS old_id, count(*) AS n "
            "FROM current_records c "
            "JOIN previous_records p ON c.record_id = CAST(p.record_id AS VARCHAR) "
            "WHERE p.person_id IS NOT NULL GROUP BY ALL), "
            "k AS (SELECT label, min(record_id) AS smallest FROM current_records "
            "WHERE label IN (SELECT label FROM o) GROUP BY label) "
            "SELECT o.label, o.old_id, o.n, dense_rank() OVER (ORDER BY o.old_id) AS old_rank, "
            "dense_rank() OVER (ORDER BY k.smallest) AS key_rank FROM o JOIN k USING (label)"
        ).df()
        # Plain object arrays from here on: pandas hashes them in C, Arrow-backed strings it loops over.
        overlap["old_id"] = _objects(overlap["old_id"], overlap.index)
        clusters["smallest"] = _objects(clusters["smallest"], clusters.index)
        continuing = _match(overlap)
        taken = [_id_array(previous["person_id"]), _id_array(pd.Series([] if issued is None else issued, dtype=TEXT))]
        fresh = _fresh_ids(con, clusters["smallest"].drop(continuing.index), taken,
                           id_key if id_key is not None else secrets.token_bytes(32))

    assigned = pd.concat([continuing, fresh])
    # Each record's id taken from its cluster's by Arrow, not a Python string per record made into Arrow text again.
    ids = pa.array(assigned.to_numpy(dtype=object), type=pa.string())
    positions = assigned.index.get_indexer(labels)
    if (positions < 0).any():  # every cluster is continued or issued an id above; never a record left without one
        raise AssertionError(f"person ids: {int((positions < 0).sum())} records in a cluster given no id")
    person_id = ids.take(pa.array(positions))
    mapping = pd.DataFrame({"record_id": record_ids, "person_id": pd.Series(pd.arrays.ArrowStringArray(person_id), dtype=TEXT)})
    history = _history(overlap, assigned, continuing, fresh, clusters["size"])
    log.info(
        "person ids: %d continued, %d issued, %d merge and %d split history rows",
        len(continuing), len(fresh), int((history["kind"] == "merge").sum()), int((history["kind"] == "split").sum()),
    )
    return StableIds(mapping=mapping, history=history, continued=len(continuing))


def _match(overlap: pd.DataFrame) -> pd.Series:
    """Label → old id, greedily by overlap: each label and each old id used at most once.

    Pairs are ranked by a strict total order (overlap desc, old id, the cluster's smallest record_id);
    each round accepts every pair that is the best remaining one for both its label and its old id —
    the highest remaining pair always is, so rounds end — which is exactly what a one-by-one greedy
    pass in that order would choose, without a Python loop over pairs.
    """
    if overlap.empty:
        return pd.Series([], dtype=object, index=pd.Index([], dtype=np.int64, name="label"))
    old_ids = overlap["old_id"].to_numpy(dtype=object)
    remaining = pd.DataFrame(
        {"label": overlap["label"].to_numpy(dtype=np.int64), "old": overlap["old_rank"].to_numpy(dtype=np.int64),
         "n": overlap["n"].to_numpy(dtype=np.int64), "key": overlap["key_rank"].to_numpy(dtype=np.int64),
         "row": np.arange(len(overlap))}
    ).sort_values(["n", "old", "key"], ascending=[False, True, True], ignore_index=True)
    chosen: list[pd.DataFrame] = []
    rounds = 0
    while len(remaining):
        mutual = remaining[~remaining["label"].duplicated() & ~remaining["old"].duplicated()]
        chosen.append(mutual)
        remaining = remaining[~remaining["label"].isin(mutual["label"]) & ~remaining["old"].isin(mutual["old"])]
        rounds += 1
    matched = pd.concat(chosen, ignore_index=True)
    log.debug("person ids: %d old ids matched in %d rounds", len(matched), rounds)
    return pd.Series(old_ids[matched["row"].to_numpy()], index=pd.Index(matched["label"], name="label"), dtype=object)


def _fresh_ids(con: duckdb.DuckDBPyConnection, smallest: pd.Series, taken: list[pa.Array], key: bytes) -> pd.Series:
    """Label → a new id for each cluster without an old one, never one already ``taken``.

    The ids taken are looked up by Arrow's hash: a night issues a few thousand ids against a million taken,
    and a pandas index of them took 2.3 s to build and 1.7 s to look up in a 1M night's profile
    (``benchmarks/results/sync.md``)."""
    pending = smallest
    accepted: list[pd.Series] = []
    used = list(taken)
    salt = 0
    while len(pending):
        con.register("pending_clusters", pd.DataFrame({"smallest": pending.to_numpy(dtype=object)}))
        seed = "smallest" if salt == 0 else f"smallest || '#{salt}'"
        digest = con.execute(f"SELECT 'P' || left(sha256($key || {seed}), 12) AS person_id FROM pending_clusters",
                             {"key": key.hex()}).fetchnumpy()
        con.unregister("pending_clusters")
        candidate = pd.Series(np.asarray(digest["person_id"], dtype=object), index=pending.index, dtype=object)
        clash = _found(candidate, used) | candidate.duplicated().to_numpy()
        accepted.append(candidate[~clash])
        used.append(_id_array(candidate[~clash]))
        pending = pending[clash]
        salt += 1
    if not accepted:
        return pd.Series([], dtype=object, index=pd.Index([], dtype=np.int64, name="label"))
    return pd.concat(accepted)


def _id_array(ids: pd.Series) -> pa.Array:
    """Ids as one Arrow text array, missing ones left out: the last mapping's Arrow text taken as it is, not a Python
    string per id (2.5M ids at 1M people: 0.9 s of an incremental night's linking)."""
    return pc.drop_null(as_arrow(ids).cast(pa.large_string()))


def _found(ids: pd.Series, among: list[pa.Array]) -> np.ndarray:
    """Mask of ``ids`` that are among the arrays ``among`` (:func:`dedup.incremental.found_in`).

    The ids (a night's few thousand new ones) are hashed and each array probes them, and only the values
    found are looked up again: hashing the million ids taken for every lookup cost 1.2 s a night at 1M people."""
    found = np.zeros(len(ids), dtype=bool)
    if not len(ids):
        return found
    wanted = pa.array(ids.to_numpy(dtype=object, na_value=None), type=pa.large_string())
    for array in among:
        hits = array.filter(pc.fill_null(pc.is_in(array, value_set=wanted), False))
        if len(hits):
            found |= found_in(ids, hits)
    return found


def _objects(values: pd.Series, index: pd.Index | None = None) -> pd.Series:
    array = np.asarray(values.to_numpy(dtype=object, na_value=None), dtype=object)
    return pd.Series(array, index=values.index if index is None else index, dtype=object)


def _history(
    overlap: pd.DataFrame, assigned: pd.Series, survivors: pd.Series, fresh: pd.Series, size: pd.Series
) -> pd.DataFrame:
    moved = overlap.assign(
        new_id=pd.Series(assigned.reindex(overlap["label"]).to_numpy(dtype=object), index=overlap.index, dtype=object)
    )
    moved = moved[moved["old_id"] != moved["new_id"]]
    kind = np.where(_found(moved["old_id"], [_id_array(survivors)]), "split", "merge")
    changes = pd.DataFrame(
        {"kind": kind, "old_id": moved["old_id"].to_numpy(), "new_id": moved["new_id"].to_numpy(),
         "records": moved["n"].to_numpy(dtype=np.int64)}
    )
    born = fresh[~fresh.isin(changes["new_id"])]
    new = pd.DataFrame(
        {"kind": "new", "old_id": None, "new_id": born.to_numpy(dtype=object),
         "records": size.reindex(born.index).to_numpy(dtype=np.int64)}
    )
    history = pd.concat([changes, new], ignore_index=True) if len(new) else changes
    # Sorted by Arrow: pandas sorting three columns of Python strings took seconds for a first night's million
    # new persons. No two rows share kind, old id and new id, and only new persons lack an old id (all of them),
    # so the order is pandas' whatever the sort does with a missing value.
    table = pa.table({
        **{name: pa.array(history[name].to_numpy(dtype=object, na_value=None), type=pa.string())
           for name in ("kind", "old_id", "new_id")},
        "records": history["records"].to_numpy(dtype=np.int64),
    })
    order = pc.sort_indices(table, sort_keys=[(name, "ascending") for name in ("kind", "old_id", "new_id")])
    return table.take(order).to_pandas(types_mapper={pa.string(): TEXT}.get)
