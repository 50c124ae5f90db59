"""Staging on an Apache Spark cluster: an extract's chunks staged as Spark tasks.

``engine: spark`` in ``linking.yaml`` stages every source here as well as linking its records
(:mod:`dedup.spark`). Staging a row — its names and pinyin, its ID number, dates, phone and address, the
quarantine rules it breaks and the message for each — depends on that row alone, but for its key's first
row in the whole extract. So the driver reads the extract and keys it (:class:`staging._rules.KeyedRows`,
a few vectorised passes), cuts it into chunks of ``spark.stage_rows`` consecutive rows that carry those
first rows, and Spark stages each chunk as a task, with the code that stages a whole extract on one
machine. The chunks' stagings are added up on the driver (:meth:`staging.stage.StageResult.combined`):
the result is the one-machine staging, row for row (``tests/staging/test_staging_spark.py``).

A chunk travels to its executor pickled, and its staging comes back the same way; the executors need the
silobreaker install the driver has (docs/deploy.md), nothing else.

Example:
    >>> stage_person_records(raw, ..., runner=SparkChunks(settings.spark))       # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from staging._rules import KeyedRows
from staging.stage import StageResult

if TYPE_CHECKING:
    from dedup.settings import SparkSpec

__all__ = ["SparkChunks"]

log = logging.getLogger(__name__)


class SparkChunks:
    """Stages the chunks of an extract as the tasks of one Spark job (:class:`staging.stage.ChunkRunner`).

    Args:
        spec: the Spark engine's settings (``linking.yaml``), ``stage_rows`` rows to a task; the session
            starts when an extract first has more than one chunk, so a district whose sources are all
            small never starts a JVM to stage.

    Raises:
        ConfigError: (staging a long extract) PySpark is not installed.
    """

    def __init__(self, spec: SparkSpec) -> None:
        self.spec = spec
        self.rows_per_chunk = spec.stage_rows

    def map(self, stage: Callable[[KeyedRows], StageResult], chunks: list[KeyedRows]) -> list[StageResult]:
        staged = self.spec.session().sparkContext.parallelize(chunks, len(chunks)).map(stage).collect()
        log.info("staged %s on Spark: %d rows in %d tasks", chunks[0].source, sum(len(chunk.raw) for chunk in chunks),
                 len(chunks))
        return staged
