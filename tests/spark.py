"""The Spark engine of the tests: ``local[2]`` on this machine, its Java runtime installed when absent."""

from __future__ import annotations

import pytest

from dedup.settings import SparkSpec
from tests.debian import JAVA, require_packages

__all__ = ["SPARK", "spark"]

#: Two cores of this machine, few shuffle partitions: the tests' data is small.
SPARK = SparkSpec(master="local[2]", partitions=4)


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory):
    """A Spark session on :data:`SPARK` for the tests of one worker, stopped after them."""
    require_packages(JAVA, tmp_path_factory.getbasetemp().parent)
    session = SPARK.session()
    yield session
    session.stop()
