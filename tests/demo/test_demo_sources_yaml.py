"""demo/sources.yaml declares the generated systems as they are: files, columns, codes, date formats."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import yaml

from connectors.config import load_sources
from demo.generate import FILES, SOURCES_YAML, DemoSummary
from demo.mess import QUARANTINE_MINIMUM_ROWS
from tests.demo.demo_helpers import BIRTH_COLUMNS, read_source, truth


def test_declarations_are_yaml_and_pass_the_connector_model() -> None:
    raw = yaml.safe_load(SOURCES_YAML.read_text(encoding="utf-8"))
    assert raw["version"] == 1
    assert [s["name"] for s in raw["sources"]] == list(FILES)
    sources = load_sources(SOURCES_YAML)
    assert sources.consent_source is not None and sources.consent_source.name == "consent_registry"
    assert [s.name for s in sources.person_sources] == ["civil_affairs", "health", "justice", "census", "grid_updates"]
    assert sources.base_source is not None and sources.base_source.name == "census"


def test_declarations_point_at_the_generated_files(demo: DemoSummary) -> None:
    for source in load_sources(SOURCES_YAML).sources:
        if source.kind == "sql":
            assert "${SILOBREAKER_HOME}" in (source.url or "")
            assert source.resolved_url(demo.home) == f"sqlite:///{demo.files[source.name]}"
        else:
            assert not source.path.startswith("/")
            assert source.resolved_path(demo.home) == demo.files[source.name]


@pytest.mark.parametrize("name", list(FILES))
def test_declared_columns_exist_and_primary_keys_are_unique(demo: DemoSummary, name: str) -> None:
    source = load_sources(SOURCES_YAML).source(name)
    frame = read_source(demo, name)
    declared = {*source.columns.values(), *source.primary_key}
    assert declared <= set(frame.columns), declared - set(frame.columns)
    assert not frame.duplicated(source.primary_key).any()


@pytest.mark.parametrize("name", list(FILES))
def test_value_maps_cover_every_code_the_files_use(demo: DemoSummary, name: str) -> None:
    source = load_sources(SOURCES_YAML).source(name)
    frame = read_source(demo, name)
    assert source.values, "every demo source translates some codes"
    for field, mapping in source.values.items():
        used = set(frame[source.columns[field]].astype(str)) - {""}
        assert used <= set(mapping), f"{name}.{field}: {used - set(mapping)} not in the values map"


def test_codes_translate_to_canonical_values() -> None:
    sources = load_sources(SOURCES_YAML)
    civil, health = sources.source("civil_affairs"), sources.source("health")
    assert civil.values["sex"] == {"男": "M", "女": "F"} and health.values["sex"] == {"1": "M", "2": "F"}
    assert civil.values["lives_alone"] == {"是": "true", "否": "false"}
    assert civil.values["disability_grade"] == {"一级": "1", "二级": "2", "三级": "3", "四级": "4"}
    assert health.columns["pregnant"] == health.columns["chronic_disease"] == "diagnosis"
    assert health.values["pregnant"]["孕产妇建档"] == "true"
    assert sources.source("consent_registry").values["status"] == {
        "同意": "granted", "拒绝": "refused", "撤回": "withdrawn", "删除": "deletion_requested"}
    assert sources.source("justice").columns["case_type"] == sources.source("justice").columns["corrections"] == "矫正类别"


@pytest.mark.parametrize("name", ["civil_affairs", "health", "justice", "census"])
def test_declared_date_formats_read_every_sound_birth_date_and_no_bad_one(demo: DemoSummary, name: str) -> None:
    formats = load_sources(SOURCES_YAML).source(name).date_formats
    ground_truth, _, _ = truth(demo)
    frame = read_source(demo, name)
    key = load_sources(SOURCES_YAML).source(name).primary_key[0]
    defects = ground_truth.set_index("record_id").loc[name + ":" + frame[key].astype(str), "defects"].to_numpy()
    bad = pd.Series(defects).str.contains("bad_birth_date").to_numpy()
    births = frame[BIRTH_COLUMNS[name]]
    texts = births[births.map(lambda v: isinstance(v, str))]

    def readable(text: str) -> bool:
        for fmt in formats:
            try:
                dt.datetime.strptime(text, fmt)
            except ValueError:
                continue
            return True
        return False

    parsed = texts.map(readable)
    assert parsed[~bad[texts.index]].all()
    assert not parsed[bad[texts.index]].any()
    assert bad.any() or len(frame) < QUARANTINE_MINIMUM_ROWS
