"""The Spark backend: candidate pairs made, compared and scored on an Apache Spark cluster.

``engine: spark`` in ``linking.yaml`` runs the pair-sized steps of linking (:mod:`dedup.backend`) here,
for a city whose candidate pairs outgrow one machine:

- **blocking** — each rule of :class:`dedup.settings.LinkSettings` is the same self-join as
  :func:`dedup.blocking.blocked_pairs_sql`, as Spark joins: blocks counted, those of 2..cap records
  kept, their members joined on the rule's keys, each pair once with its first rule;
- **comparing and scoring** — ``mapInPandas`` over the pairs calls :func:`dedup.backend.scored_batch`,
  the same level tests and scorer the DuckDB backend runs, on the records' arrays
  (:class:`dedup.compare.RecordArrays`, broadcast to every executor once a run) and the model;
- **the EM's sample** — the same SQL as DuckDB's (:func:`dedup.backend.sample_sql`: integer
  arithmetic both engines evaluate alike, so both train on the same pairs), compared and counted by
  pattern in ``mapInPandas`` (:func:`dedup.model.count_patterns`) and the counts summed by Spark: the
  driver receives a few thousand patterns, not the sampled pairs;
- **connected components** — min-label propagation in Spark SQL, each round checkpointed: every record
  takes the smallest label among itself and its linked records until no label moves. Nothing is
  fetched through ``spark.jars.packages`` (an intranet cannot), so no GraphFrames.

What stays on the driver: preparing the records, the EM over the pattern counts, the split of the few
components a veto breaks, stable person ids. The records' arrays travel to each executor as a broadcast,
so an executor needs memory for them (about what the DuckDB engine's process holds for them) on top of
its share of the pairs; docs/deploy.md sizes a cluster.

Example:
    >>> from dedup.settings import SparkSpec
    >>> backend = SparkBackend(spark_session(SparkSpec(master="local[2]")))   # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
from pyspark import Broadcast, StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from dedup.backend import empty_pairs, grouped_records, sample_sql, scored_batch
from dedup.blocking import BlockingReport, blocking_report, blocking_rows, coded_keys
from dedup.compare import RecordArrays
from dedup.model import PATTERN_COUNT_COLUMNS, FellegiSunterModel, TrainingPatterns, count_patterns
from dedup.settings import LinkSettings, SparkSpec

__all__ = ["SparkBackend", "spark_session"]

log = logging.getLogger(__name__)

#: Pairs per Arrow batch handed to a ``mapInPandas`` call: enough for the batched level tests to
#: amortise their start-up, few enough that a task's memory stays small.
_BATCH_PAIRS = 200_000

_PANDAS_WARNING = "PySpark does not yet fully support pandas"


def spark_session(spec: SparkSpec) -> SparkSession:
    """The Spark session ``spec`` describes (an open one is reused: its master cannot change in a process).

    The executors' Python is this interpreter, so they import the same silobreaker and libraries; the
    web UI and console progress bars are off (a nightly sync writes logs, not bars).
    """
    # PySpark 4 warns on pandas 3 at every conversion; the paths used here are tested on the pandas pinned.
    warnings.filterwarnings("ignore", message=_PANDAS_WARNING, category=FutureWarning)
    warnings.filterwarnings("ignore", message="The copy keyword is deprecated", module=r"pyspark\.")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if spec.master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # this machine only: no interface to guess
    builder = (
        SparkSession.builder.appName("silobreaker")
        .master(spec.master)
        .config("spark.driver.memory", spec.driver_memory)
        .config("spark.executor.memory", spec.executor_memory)
        .config("spark.sql.shuffle.partitions", str(spec.partitions))
        .config("spark.default.parallelism", str(spec.partitions))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(_BATCH_PAIRS))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.executorEnv.PYTHONWARNINGS", f"ignore:{_PANDAS_WARNING}:FutureWarning")
    )
    for name, value in spec.conf.items():
        builder = builder.config(name, value)
    with _stdout_to_stderr():
        session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


class SparkBackend:
    """The candidate pairs as a Spark DataFrame, persisted (memory, then disk) for the run.

    Args:
        session: from :func:`spark_session`.
    """

    def __init__(self, session: SparkSession) -> None:
        self.session = session
        self._pairs: DataFrame | None = None
        self._held: list[DataFrame] = []
        self._shared: tuple[RecordArrays, LinkSettings, Broadcast] | None = None

    def candidate_pairs(self, prepared: pd.DataFrame, settings: LinkSettings) -> BlockingReport:
        records = self._hold(self.session.createDataFrame(coded_keys(blocking_rows(prepared, settings))))
        sizes, by_rule = [], []
        for index, rule in enumerate(settings.blocking_rules):
            limit, keys = settings.block_size_limit(rule), list(rule.keys)
            present = records.where(F.expr(" AND ".join(f"`{key}` IS NOT NULL" for key in keys)))
            blocks = self._hold(present.groupBy(*keys).agg(F.count(F.lit(1)).alias("n")))
            sizes.append(blocks.select(F.lit(index).alias("rule"), F.col("n"), F.lit(limit).alias("cap")))
            members = present.join(blocks.where(F.col("n").between(2, limit)).select(*keys), on=keys, how="left_semi")
            left, right = members.select("rid", *keys).alias("l"), members.select("rid", *keys).alias("r")
            on = [F.col(f"l.`{key}`") == F.col(f"r.`{key}`") for key in keys] + [F.col("l.rid") < F.col("r.rid")]
            by_rule.append(left.join(right, on=on).select(
                F.col("l.rid").alias("rid_l"), F.col("r.rid").alias("rid_r"), F.lit(index).cast("short").alias("rule")))
        summaries = self._block_summaries(settings, sizes)
        self._pairs = self._hold(_union(by_rule).groupBy("rid_l", "rid_r").agg(F.min("rule").alias("rule")))
        total = self._pairs.count()
        log.info("blocking on Spark: %d distinct candidate pairs from %d records", total, len(prepared))
        return blocking_report(settings, summaries, total)

    @staticmethod
    def _block_summaries(settings: LinkSettings, sizes: list[DataFrame]) -> list[tuple[int, int, int, int]]:
        """Per rule, in one Spark job: the pairs its kept blocks yield, and the blocks, records and largest
        block skipped for exceeding its cap (:func:`dedup.blocking.block_summary_sql`)."""
        over = F.col("n") > F.col("cap")
        rows = _union(sizes).groupBy("rule").agg(
            F.sum(F.when(~over, F.col("n") * (F.col("n") - 1) / 2).otherwise(0)).alias("pairs"),
            F.sum(F.when(over, 1).otherwise(0)).alias("blocks"),
            F.sum(F.when(over, F.col("n")).otherwise(0)).alias("records"),
            F.max(F.when(over, F.col("n")).otherwise(0)).alias("largest"),
        ).collect()
        found = {row["rule"]: tuple(int(row[name]) for name in ("pairs", "blocks", "records", "largest")) for row in rows}
        return [found.get(index, (0, 0, 0, 0)) for index in range(len(settings.blocking_rules))]

    def training_patterns(self, arrays: RecordArrays, settings: LinkSettings, keep: float, seed: int) -> TrainingPatterns:
        self._candidates().createOrReplaceTempView("dedup_pairs")
        shared = self._records(arrays, settings)

        def count(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            records, declared = shared.value
            for batch in batches:
                yield count_patterns(records, declared, batch["rid_l"].to_numpy(), batch["rid_r"].to_numpy())

        counts = (self.session.sql(sample_sql("dedup_pairs", keep, seed))
                  .mapInPandas(count, "key long, field string, value int, pairs long")
                  .groupBy("key", "field", "value").agg(F.sum("pairs").alias("pairs")).toPandas())
        return TrainingPatterns.from_counts([counts.astype(PATTERN_COUNT_COLUMNS)], settings)

    def scored_pairs(
        self, arrays: RecordArrays, settings: LinkSettings, model: FellegiSunterModel, total: int
    ) -> pd.DataFrame:
        shape = empty_pairs(settings)
        shared, fitted = self._records(arrays, settings), self.session.sparkContext.broadcast(model)

        def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            records, declared = shared.value
            for batch in batches:
                yield _sendable(scored_batch(records, declared, fitted.value, batch["rid_l"].to_numpy(),
                                             batch["rid_r"].to_numpy(), batch["rule"].to_numpy()))

        try:
            kept = self._candidates().mapInPandas(score, _schema(shape)).toPandas()
        finally:
            fitted.destroy()
        log.info("compared %d candidate pairs on Spark, kept %d", total, len(kept))
        kept = kept.sort_values(["rid_l", "rid_r"], ignore_index=True)
        return kept.astype(shape.dtypes.to_dict())

    def pairs_inside(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        grouped = self.session.createDataFrame(grouped_records(labels))
        left = grouped.withColumnRenamed("rid", "rid_l").withColumnRenamed("label", "label_l")
        right = grouped.withColumnRenamed("rid", "rid_r").withColumnRenamed("label", "label_r")
        inside = (self._candidates().join(left, "rid_l").join(right, "rid_r")
                  .where(F.col("label_l") == F.col("label_r")).select("rid_l", "rid_r").toPandas())
        return inside["rid_l"].to_numpy(dtype=np.int32), inside["rid_r"].to_numpy(dtype=np.int32)

    def components(self, n_records: int, link_l: np.ndarray, link_r: np.ndarray) -> np.ndarray:
        labels = np.arange(n_records, dtype=np.int64)
        link_l, link_r = np.asarray(link_l, dtype=np.int64), np.asarray(link_r, dtype=np.int64)
        apart = link_l != link_r  # a record tied to itself (the holder of an ID tied to its first holder) adds nothing
        if not apart.any():
            return labels
        edges = self.session.createDataFrame(pd.DataFrame({"a": link_l[apart], "b": link_r[apart]}))
        # Both directions, so a round is one join and one min; a repeated edge only repeats a candidate for the min.
        edges = edges.union(edges.select(F.col("b").alias("a"), F.col("a").alias("b"))).localCheckpoint()
        label = edges.select(F.col("a").alias("node")).distinct().withColumn("label", F.col("node")).localCheckpoint()
        rounds = 0
        while True:
            rounds += 1
            smallest = (edges.join(label, edges["a"] == label["node"])
                        .groupBy(edges["b"].alias("node")).agg(F.min("label").alias("smallest")))
            # Every node is some edge's b, so each finds its neighbours' smallest label, and keeps its own if smaller.
            updated = (label.join(smallest, "node")
                       .select("node", F.least("label", "smallest").alias("label"),
                               (F.col("smallest") < F.col("label")).alias("moved"))
                       .localCheckpoint())
            label = updated.select("node", "label")
            if updated.where("moved").isEmpty():
                break
        found = label.toPandas()
        labels[found["node"].to_numpy(dtype=np.int64)] = found["label"].to_numpy(dtype=np.int64)
        log.info("connected components on Spark: %d links, %d rounds", int(apart.sum()), rounds)
        return labels

    def release(self) -> None:
        """Unpersist what this run cached and drop its broadcast; the session stays open for the next run."""
        for frame in self._held:
            frame.unpersist()
        self._held.clear()
        self._pairs = None
        if self._shared is not None:
            self._shared[2].destroy()
            self._shared = None

    def _records(self, arrays: RecordArrays, settings: LinkSettings) -> Broadcast:
        """``(arrays, settings)`` broadcast to the executors once a run, for counting the EM's sample and for scoring."""
        if self._shared is None or self._shared[0] is not arrays or self._shared[1] is not settings:
            if self._shared is not None:
                self._shared[2].destroy()
            self._shared = (arrays, settings, self.session.sparkContext.broadcast((arrays, settings)))
        return self._shared[2]

    def _candidates(self) -> DataFrame:
        if self._pairs is None:
            raise RuntimeError("no candidate pairs yet: call candidate_pairs first")
        return self._pairs

    def _hold(self, frame: DataFrame) -> DataFrame:
        frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
        self._held.append(frame)
        return frame


@contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """This process's standard output sent to standard error meanwhile: the JVM Spark starts inherits it, and a
    JVM that cannot start says why on its standard output — which is the run's JSON document under ``--json``."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _sendable(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its text columns as Python strings: PySpark's Arrow conversion cannot read pandas'
    Arrow-backed strings held in more than one chunk (what a concatenation leaves), and fails the task."""
    text = [name for name, dtype in frame.dtypes.items() if isinstance(dtype, pd.StringDtype)]
    return frame.astype(dict.fromkeys(text, object)) if text else frame


def _union(frames: list[DataFrame]) -> DataFrame:
    union = frames[0]
    for frame in frames[1:]:
        union = union.unionAll(frame)
    return union


_SPARK_TYPES = {
    np.dtype(np.int8): T.ByteType(), np.dtype(np.int16): T.ShortType(), np.dtype(np.int32): T.IntegerType(),
    np.dtype(np.int64): T.LongType(), np.dtype(np.float32): T.FloatType(), np.dtype(np.float64): T.DoubleType(),
    np.dtype(bool): T.BooleanType(),
}


def _schema(shape: pd.DataFrame) -> T.StructType:
    """The Spark schema of scored pairs (:func:`dedup.backend.empty_pairs`)."""
    return T.StructType([T.StructField(name, _SPARK_TYPES.get(dtype, T.StringType()), True)
                         for name, dtype in shape.dtypes.items()])
