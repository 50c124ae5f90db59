"""A district whose linking.yaml says ``engine: spark`` runs the same Dagster graph, staging its sources
and linking them on Spark, and publishes the persons the DuckDB engine published (Spark ``local[2]``; a
Java runtime is installed when absent)."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from pipelines.cli import run_pipeline
from pipelines.settings import DEMO_LINKING
from publish.reader import WarehouseReader
from tests.debian import JAVA, require_packages

pytestmark = pytest.mark.integration


def _persons(home) -> dict[str, str]:
    mapping = WarehouseReader(home).read_tables("record_person")["record_person"]
    return dict(zip(mapping["record_id"], mapping["person_id"], strict=True))


def test_a_district_linked_on_spark_publishes_the_persons_duckdb_published(published_demo, demo_copy, tmp_path,
                                                                          tmp_path_factory, caplog) -> None:
    require_packages(JAVA, tmp_path_factory.getbasetemp().parent)
    caplog.set_level(logging.INFO, logger="dedup.spark")
    caplog.set_level(logging.INFO, logger="staging.spark")
    published, _ = published_demo
    linking = tmp_path / "linking.yaml"
    declared = DEMO_LINKING.read_text(encoding="utf-8")
    assert "\nengine: duckdb\n" in declared
    # A task stages 200 rows: every source of the demo district (a few hundred rows each) goes to Spark.
    spark = "\nengine: spark\nspark: {master: 'local[2]', partitions: 2, stage_rows: 200}\n"
    linking.write_text(declared.replace("\nengine: duckdb\n", spark), encoding="utf-8")
    outcome = run_pipeline(dataclasses.replace(demo_copy, linking_file=linking), full=True)
    assert outcome.success, outcome.failures
    assert any(r.name == "dedup.spark" and "candidate pairs" in r.getMessage() for r in caplog.records), "linked on Spark"
    assert any(r.name == "staging.spark" and r.getMessage().startswith("staged civil_affairs on Spark")
               for r in caplog.records), "staged on Spark"
    on_spark, on_duckdb = _persons(demo_copy.home), _persons(published.home)
    assert len(on_duckdb) > 1000
    assert on_spark == on_duckdb
