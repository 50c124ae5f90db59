"""SourceReader: the Dagster resource reads sources.yaml at run time and extracts by name."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from connectors import SourceReader
from core.errors import ConfigError
from core.home import DataHome

pytestmark = pytest.mark.integration

SOURCES = """\
version: 1
sources:
  - name: health_visits
    department: 卫健
    kind: csv
    path: demo/health_visits.csv
    primary_key: [就诊编号]
    columns: {name: 姓名, chronic_disease: 慢性病}
"""


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path]:
    """(sources.yaml, data home) with one GBK CSV source."""
    home = tmp_path / "home"
    (DataHome.at(home).demo_dir).mkdir(parents=True)
    (DataHome.at(home).demo_dir / "health_visits.csv").write_bytes("就诊编号,姓名,慢性病\nV1,张三,高血压\nV2,李四,\n".encode("gbk"))
    sources_file = tmp_path / "sources.yaml"
    sources_file.write_text(SOURCES, encoding="utf-8")
    return sources_file, home


def test_extract_reads_the_named_source(project: tuple[Path, Path]) -> None:
    sources_file, home = project
    reader = SourceReader(sources_file=str(sources_file), home=str(home))

    extract = reader.extract("health_visits")

    assert [s.name for s in reader.load().sources] == ["health_visits"]
    assert extract.frame["慢性病"].tolist() == ["高血压", None]
    assert extract.lineage.encoding == "gb18030"


def test_unknown_source_name_is_a_config_error(project: tuple[Path, Path]) -> None:
    sources_file, home = project

    with pytest.raises(ConfigError, match="no source named 'civil_affairs'.*health_visits"):
        SourceReader(sources_file=str(sources_file), home=str(home)).extract("civil_affairs")


def test_building_the_resource_does_not_read_the_file(tmp_path: Path) -> None:
    reader = SourceReader(sources_file=str(tmp_path / "missing.yaml"))

    with pytest.raises(ConfigError, match="missing.yaml: sources file not found"):
        reader.load()


def test_asset_uses_the_resource_with_env_var_home(project: tuple[Path, Path], monkeypatch) -> None:
    sources_file, home = project
    monkeypatch.setenv("SB_TEST_HOME", str(home))

    @dg.asset
    def health_visits_raw(source_reader: SourceReader) -> dg.MaterializeResult:
        extract = source_reader.extract("health_visits")
        return dg.MaterializeResult(metadata=extract.lineage.as_metadata())

    result = dg.materialize(
        [health_visits_raw],
        resources={"source_reader": SourceReader(sources_file=str(sources_file), home=dg.EnvVar("SB_TEST_HOME"))},
    )

    assert result.success
    metadata = result.asset_materializations_for_node("health_visits_raw")[0].metadata
    assert metadata["row_count"].value == 2
    assert metadata["location"].value == str(DataHome.at(home).demo_dir / "health_visits.csv")
