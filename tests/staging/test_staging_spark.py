"""Staged on Spark, a source is staged as on one machine: the demo district's sources, chunk by chunk
as Spark tasks (``local[2]``), give the staged rows, quarantine, soft problems and unmapped values that
staging each whole in this process gives."""

from __future__ import annotations

import pytest

from connectors import load_sources, read_source
from demo.generate import SOURCES_YAML, generate_demo
from staging import stage_consent_records, stage_person_records
from staging.spark import SparkChunks
from tests.spark import SPARK
from tests.staging.test_staging_reuse import assert_same_staging

pytestmark = pytest.mark.integration


def test_the_demo_sources_staged_on_spark_are_staged_as_on_one_machine(spark, tmp_path, caplog) -> None:
    generate_demo(tmp_path, persons=3_000, seed=5)
    runner = SparkChunks(SPARK.model_copy(update={"stage_rows": 700}))
    caplog.set_level("INFO", logger="staging.spark")
    chunked_sources, quarantined = 0, 0
    for source in load_sources(SOURCES_YAML).sources:
        extract = read_source(source, tmp_path)
        stage_fn = stage_consent_records if source.role == "consent" else stage_person_records
        form = {"form_fields": ["change"]} if source.role == "grid_updates" else {}

        def stage(**options):
            return stage_fn(extract.frame, source=source.name, primary_key=source.primary_key, columns=source.columns,
                            values=source.values, date_formats=source.date_formats,
                            extracted_at=extract.lineage.extracted_at, truncated_rows=extract.truncated_rows,
                            **form, **options)

        whole, on_spark = stage(), stage(runner=runner)
        assert_same_staging(on_spark, whole)
        chunked_sources += len(extract.frame) > 700
        quarantined += len(whole.quarantine)
    tasks = [r.getMessage() for r in caplog.records if r.name == "staging.spark"]
    assert chunked_sources >= 4 and len(tasks) == chunked_sources, tasks
    assert quarantined > 0
