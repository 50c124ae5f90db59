"""What executes the pair-sized work of linking: DuckDB on this machine, or Apache Spark on a cluster.

:func:`dedup.engine.link_records` prepares the records, fits the model, clusters and keeps person ids
the same way whatever runs underneath. The work that grows with the candidate pairs — making them
from the blocking rules, comparing and scoring every one, drawing and counting the EM's training sample, finding
the pairs inside linked components, and the connected components of the links — goes through a
:class:`PairBackend`. Both backends run the same declarations (:class:`dedup.settings.LinkSettings`)
through the same level tests (:func:`dedup.compare.compare_pairs`) and the same scorer
(:func:`scored_batch`): they differ in where the pairs live and who loops over their batches.

``linking.yaml`` chooses (``engine: duckdb`` or ``engine: spark``); :func:`open_backend` opens it.

Example:
    >>> with open_backend(settings) as backend:                                   # doctest: +SKIP
    ...     report = backend.candidate_pairs(prepared, settings)
    ...     scored = backend.scored_pairs(arrays, settings, model, report.candidate_pairs)
"""

from __future__ import annotations

import logging
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Protocol, TypeVar

import duckdb
import numpy as np
import pandas as pd

from core.memory import duckdb_memory_limit
from core.threads import usable_cores
from dedup.blocking import PAIRS_TABLE, BlockingReport, candidate_pairs, iter_pair_batches
from dedup.cluster import components
from dedup.compare import STATED_FIELDS, RecordArrays, by_similarity, compare_pairs, level_columns
from dedup.model import FellegiSunterModel, TrainingPatterns, count_patterns
from dedup.prepare import TEXT
from dedup.score import lowest_kept, score_pairs
from dedup.settings import LinkSettings

__all__ = ["BATCH_THREADS", "DuckDBBackend", "PairBackend", "empty_pairs", "even_batch_size", "grouped_records", "in_threads",
           "open_backend", "sample_sql", "scored_batch"]

log = logging.getLogger(__name__)

_In = TypeVar("_In")
_Out = TypeVar("_Out")

#: Batches of pairs compared at once, in threads: most of a comparison is numpy and rapidfuzz, which run
#: outside the GIL. One batch per core, at most four (each batch in flight holds ``chunk_size`` pairs):
#: on 2 cores, 5M candidate pairs of 1M records scored in 8.4 s against 11.7 s one batch at a time
#: (``benchmarks/results/splink_compare.md``).
BATCH_THREADS = min(4, usable_cores())

#: Pairs read from DuckDB at a time where only their two positions are looked at (8 MB a batch).
_STREAM_BATCH = 1 << 20


def in_threads(function: Callable[[_In], _Out], items: Iterable[_In], threads: int = BATCH_THREADS) -> Iterator[_Out]:
    """``function`` of each item, in item order, run on up to ``threads`` items at a time.

    Items are drawn from ``items`` only as threads free up, so at most ``threads`` of them (batches of
    pairs streamed from DuckDB) are held at once; ``Executor.map`` would draw them all first.
    """
    if threads <= 1:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="silobreaker-pairs") as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def even_batch_size(total: int, most: int, threads: int = BATCH_THREADS) -> int:
    """Pairs per batch to cut ``total`` pairs into for :func:`in_threads`: at most ``most`` each, and as many
    batches of one size as a multiple of ``threads`` allows, so no thread is left alone with the last.

    Example:
        >>> even_batch_size(4_959_605, 1_000_000, threads=2)  # six batches, three a thread
        826601
    """
    batches = -(-max(total, 1) // max(most, 1))
    batches = -(-batches // threads) * threads
    return max(1, -(-total // batches))


class PairBackend(Protocol):
    """The pair-sized steps of linking, executed where the pairs live."""

    def candidate_pairs(self, prepared: pd.DataFrame, settings: LinkSettings) -> BlockingReport:
        """Make the candidate pairs of ``prepared`` (:mod:`dedup.blocking`'s rules) and keep them."""
        ...

    def training_patterns(self, arrays: RecordArrays, settings: LinkSettings, keep: float, seed: int) -> TrainingPatterns:
        """About ``keep`` of the candidate pairs (all of them at ``keep >= 1``), as :func:`sample_sql`
        chooses them — the same pairs on every backend — compared and counted by pattern
        (:func:`dedup.model.count_patterns`) where they are: what the EM fits on."""
        ...

    def scored_pairs(
        self, arrays: RecordArrays, settings: LinkSettings, model: FellegiSunterModel, total: int
    ) -> pd.DataFrame:
        """Every candidate pair compared and scored; the links, near misses and vetoed ones kept
        (:func:`scored_batch`), in pair order."""
        ...

    def pairs_inside(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(rid_l, rid_r)`` of the candidate pairs whose two records have one label (a linked component)."""
        ...

    def components(self, n_records: int, link_l: np.ndarray, link_r: np.ndarray) -> np.ndarray:
        """A label per record ``0..n_records-1``, equal exactly for records the links connect; each label
        is below ``n_records``."""
        ...


def scored_batch(
    arrays: RecordArrays,
    settings: LinkSettings,
    model: FellegiSunterModel,
    rid_l: np.ndarray,
    rid_r: np.ndarray,
    rule: np.ndarray,
) -> pd.DataFrame:
    """Compare and score one batch of candidate pairs; the links, near misses and vetoed pairs of it,
    each with its level codes and its waterfall (``w_prior`` and the contribution ``w_<field>`` of every
    comparison), in the columns of :func:`empty_pairs`.

    Names and addresses (:func:`dedup.compare.by_similarity`) are compared last, one after the other, each only on
    the pairs that the comparisons made so far leave able to reach the review band with the most the others could
    add (:meth:`FellegiSunterModel.most`). A pair so dropped is never kept, so the pairs returned are the same; most
    candidate pairs are two strangers in one block, told apart already by their ID numbers, birth dates or phones.
    """
    comparisons = settings.comparisons
    later = [c for c in comparisons if by_similarity(c)]
    levels = compare_pairs(arrays, rid_l, rid_r, [c for c in comparisons if not by_similarity(c)])
    rid_l, rid_r, rule = np.asarray(rid_l), np.asarray(rid_r), np.asarray(rule)
    for n, comparison in enumerate(later):
        most = (model.prior_weight + model.most_contributions(levels, arrays, rid_l, rid_r)
                + np.float32(sum(model.most(c.field) for c in later[n:])))
        # The bound is summed in another order than the score: a hundredth of a bit of room for rounding.
        able = np.flatnonzero(most >= lowest_kept(settings) - 0.01)
        rid_l, rid_r, rule = rid_l[able], rid_r[able], rule[able]
        more = compare_pairs(arrays, rid_l, rid_r, [comparison]).drop(columns=["ids_both_valid", "id_valid_any"])
        levels = pd.concat([levels.iloc[able].reset_index(drop=True), more], axis=1)
    levels = levels[level_columns(comparisons)]
    scored = score_pairs(levels, settings, model.contributions(levels, arrays, rid_l, rid_r), model.prior_weight)
    mask = scored.kept
    batch = levels.loc[mask].reset_index(drop=True)
    batch.insert(0, "rid_l", np.asarray(rid_l, dtype=np.int32)[mask])
    batch.insert(1, "rid_r", np.asarray(rid_r, dtype=np.int32)[mask])
    batch["rule"] = np.asarray(rule, dtype=np.int16)[mask]
    batch["score"] = scored.score[mask]
    batch["decision"] = scored.decision[mask].reset_index(drop=True)
    batch["veto"] = scored.veto[mask].reset_index(drop=True)
    batch["w_prior"] = np.float32(model.prior_weight)
    for name, contribution in scored.contributions.items():
        batch[f"w_{name}"] = contribution[mask]
    batch["context"] = pd.Series(model.context_of(levels)[mask], dtype=TEXT)
    return batch


def empty_pairs(settings: LinkSettings) -> pd.DataFrame:
    """The columns of scored pairs (:func:`scored_batch`) and their types, no rows."""
    columns: dict[str, pd.Series] = {
        "rid_l": pd.Series([], dtype=np.int32),
        "rid_r": pd.Series([], dtype=np.int32),
    }
    for comparison in settings.comparisons:
        columns[comparison.field] = pd.Series([], dtype=np.int8)
    columns["ids_both_valid"] = pd.Series([], dtype=bool)
    columns["id_valid_any"] = pd.Series([], dtype=bool)
    for stated in STATED_FIELDS:
        if settings.comparison(stated) is not None:
            columns[f"stated_{stated}"] = pd.Series([], dtype=np.int8)
    columns["rule"] = pd.Series([], dtype=np.int16)
    columns["score"] = pd.Series([], dtype=np.float32)
    columns["decision"] = pd.Series([], dtype=TEXT)
    columns["veto"] = pd.Series([], dtype=TEXT)
    columns["w_prior"] = pd.Series([], dtype=np.float32)
    for comparison in settings.comparisons:
        columns[f"w_{comparison.field}"] = pd.Series([], dtype=np.float32)
    columns["context"] = pd.Series([], dtype=TEXT)
    return pd.DataFrame(columns)


def sample_sql(table: str, keep: float, seed: int) -> str:
    """SQL for ``rid_l, rid_r`` of about ``keep`` of the pairs in ``table`` (all at ``keep >= 1``), chosen by
    :func:`_pair_bucket_sql` rather than a sampler: the same input gives the same sample however the
    threads split the scan, on either engine. In no order: the sample is counted by pattern
    (:class:`dedup.model.TrainingPatterns`), and counts do not depend on the order pairs come in."""
    where = f" WHERE {_pair_bucket_sql(seed)} < {int(keep * 1_000_000)}" if keep < 1.0 else ""
    return f"SELECT rid_l, rid_r FROM {table}{where}"


_PRIME = 2_147_483_647  # 2³¹ − 1


def _pair_bucket_sql(seed: int) -> str:
    """SQL for a bucket ``0..999999`` of each pair ``(rid_l, rid_r)``, mixed with ``seed`` — integer
    arithmetic (multiplications modulo the prime 2³¹ − 1, never past 2⁴⁷) that DuckDB and Spark SQL
    evaluate alike, so both engines train on the same sample; an engine's own ``hash`` would not."""
    pair = f"((CAST(rid_l AS BIGINT) * 1000003 + rid_r) % {_PRIME})"
    mixed = f"(({pair} * 48271 + {int(seed) % _PRIME}) % {_PRIME})"
    return f"((({mixed} * 69621) % {_PRIME}) % 1000000)"


def grouped_records(labels: np.ndarray) -> pd.DataFrame:
    """``rid, label`` of the records whose label (component) holds more than one record: the only ones a
    pair inside a component can join (:meth:`PairBackend.pairs_inside`)."""
    rid = np.flatnonzero(np.bincount(labels, minlength=0)[labels] > 1).astype(np.int32)
    return pd.DataFrame({"rid": rid, "label": labels[rid].astype(np.int64)})


class DuckDBBackend:
    """The pairs in a DuckDB table on this machine, spilling to a temporary folder past the memory limit;
    compared and scored batch by batch of ``settings.chunk_size`` in this process. Only this backend links
    incrementally (:mod:`dedup.incremental` runs its SQL on :attr:`con`).

    Args:
        con: a connection owned by the caller, with its temp directory and memory limit set.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def candidate_pairs(self, prepared: pd.DataFrame, settings: LinkSettings) -> BlockingReport:
        return candidate_pairs(self.con, prepared, settings)

    def training_patterns(self, arrays: RecordArrays, settings: LinkSettings, keep: float, seed: int) -> TrainingPatterns:
        sample = self.con.sql(sample_sql(PAIRS_TABLE, keep, seed)).to_arrow_reader(settings.chunk_size)
        counts = in_threads(
            lambda batch: count_patterns(arrays, settings, batch.column("rid_l").to_numpy(), batch.column("rid_r").to_numpy()),
            sample)
        return TrainingPatterns.from_counts(list(counts), settings)

    def scored_pairs(
        self, arrays: RecordArrays, settings: LinkSettings, model: FellegiSunterModel, total: int
    ) -> pd.DataFrame:
        kept: list[pd.DataFrame] = []
        compared = 0
        batches = iter_pair_batches(self.con, even_batch_size(total, settings.chunk_size))
        for n_pairs, batch in in_threads(lambda pairs: (len(pairs[0]), scored_batch(arrays, settings, model, *pairs)), batches):
            kept.append(batch)
            compared += n_pairs
            log.info("compared %d / %d candidate pairs", compared, total)
        return pd.concat(kept, ignore_index=True) if kept else empty_pairs(settings)

    def pairs_inside(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Streamed and looked up by position in numpy: two hash joins of every pair with the labels cost more.
        inside_l: list[np.ndarray] = [np.zeros(0, dtype=np.int32)]
        inside_r: list[np.ndarray] = [np.zeros(0, dtype=np.int32)]
        for rid_l, rid_r, _ in iter_pair_batches(self.con, _STREAM_BATCH):
            inside = labels[rid_l] == labels[rid_r]
            inside_l.append(rid_l[inside])
            inside_r.append(rid_r[inside])
        return np.concatenate(inside_l), np.concatenate(inside_r)

    @staticmethod
    def components(n_records: int, link_l: np.ndarray, link_r: np.ndarray) -> np.ndarray:
        return components(n_records, link_l, link_r)


@contextmanager
def open_backend(settings: LinkSettings) -> Iterator[PairBackend]:
    """The backend ``settings.engine`` names, open for one linking run.

    DuckDB gets a private in-memory database spilling to a temporary folder removed afterwards; Spark a
    session on ``settings.spark.master`` (:func:`dedup.spark.spark_session`), whose cached pairs are
    released afterwards (the session itself is kept for the next run in this process: starting a JVM
    costs seconds).

    Raises:
        ConfigError: ``engine: spark`` without PySpark installed.
    """
    if settings.engine == "spark":
        session = settings.spark.session()
        from dedup.spark import SparkBackend

        backend = SparkBackend(session)
        try:
            yield backend
        finally:
            backend.release()
        return
    with tempfile.TemporaryDirectory(prefix="silobreaker-dedup-") as spill, duckdb.connect() as con:
        con.execute(f"SET temp_directory = '{spill}'")
        con.execute(f"SET memory_limit = '{duckdb_memory_limit()}'")
        # DuckDB's allocator (jemalloc) otherwise keeps what blocking freed until it is reused, and the
        # process holds it through scoring, on top of what scoring needs.
        con.execute("SET allocator_background_threads = true")
        yield DuckDBBackend(con)
