"""sources.yaml validation: every bad file fails at load naming the file, the key and the fix."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from connectors import SourceConfig, SourcesFile, load_sources
from core.errors import ConfigError
from core.home import DataHome
from core.vocabulary import CONSENT_FIELDS, DATE_FORMATS, PERSON_FIELDS

VALID = """\
version: 1
sources:
  - name: civil_affairs
    department: 民政
    kind: sql
    url: "sqlite:///${SILOBREAKER_HOME}/demo/civil_affairs.sqlite"
    table: mz_resident
    primary_key: [jmbh]
    columns: {name: xm, sex: xb, id_number: sfzh}
    values:
      sex: {1: M, "2": F, 男: M, 女: F}
  - name: health_visits
    department: 卫健
    kind: csv
    path: demo/health_visits.csv
    encoding: gbk
    primary_key: [visit_id]
    columns: {name: 姓名, lives_alone: 独居}
    values:
      lives_alone: {是: true, 否: false}
  - name: consent_registry
    department: 数据专班
    role: consent
    kind: parquet
    path: demo/consent_registry.parquet
    primary_key: [consent_id]
    columns: {id_number: sfzh, purpose: purpose, status: status}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(dedent(text), encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_sources(path)
    message = str(caught.value)
    assert str(path) in message
    return message


def test_valid_file_loads_with_defaults_and_text_values(tmp_path: Path) -> None:
    sources = load_sources(write(tmp_path, VALID))

    assert [s.name for s in sources.sources] == ["civil_affairs", "health_visits", "consent_registry"]
    civil = sources.source("civil_affairs")
    assert civil.role == "person"
    assert civil.encoding == "auto"
    assert civil.date_formats == list(DATE_FORMATS)
    # YAML reads 1 as a number and true as a boolean; the value mappings keep them as text.
    assert civil.values["sex"] == {"1": "M", "2": "F", "男": "M", "女": "F"}
    assert sources.source("health_visits").values["lives_alone"] == {"是": "true", "否": "false"}
    assert sources.consent_source is not None and sources.consent_source.name == "consent_registry"
    assert [s.name for s in sources.person_sources] == ["civil_affairs", "health_visits"]


def test_field_lists_match_the_architecture() -> None:
    assert len(PERSON_FIELDS) == 23 and "case_type" in PERSON_FIELDS and "purpose" not in PERSON_FIELDS
    assert CONSENT_FIELDS == ("id_number", "name", "purpose", "recipient", "status", "decided_at", "channel",
                              "categories", "expires_at", "guardian_id_number")


def test_unknown_kind_names_key_and_choices(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID.replace("kind: csv", "kind: excel"))

    assert "sources[1].kind" in message
    assert "'excel'" in message and "'xlsx'" in message


def test_unknown_canonical_field_names_the_key_path_and_suggests(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID.replace("columns: {name: 姓名", "columns: {nmae: 姓名"))

    assert "sources[1].columns.nmae" in message
    assert "did you mean 'name'" in message
    assert "birth_date" in message  # the allowed fields are listed


def test_consent_field_in_person_source_points_at_role(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID.replace("columns: {name: xm,", "columns: {purpose: yt, name: xm,"))

    assert "sources[0].columns.purpose" in message
    assert "role: consent" in message


def test_missing_primary_key_shows_an_example(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID.replace("    primary_key: [visit_id]\n", ""))

    assert "sources[1].primary_key" in message
    assert "required" in message
    assert "primary_key: [jmbh]" in message


def test_empty_primary_key_is_rejected(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID.replace("primary_key: [visit_id]", "primary_key: []"))

    assert "sources[1].primary_key" in message


def test_both_table_and_query_is_rejected(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID.replace("table: mz_resident", "table: mz_resident\n    query: SELECT 1"))

    assert "sources[0].query" in message
    assert "exactly one of table or query" in message


def test_sql_without_table_or_query_is_rejected(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID.replace("    table: mz_resident\n", ""))

    assert "sources[0].table" in message
    assert "exactly one of table or query" in message


def test_key_of_another_kind_is_rejected(tmp_path: Path) -> None:
    text = VALID.replace("path: demo/consent_registry.parquet", "path: c.parquet\n    sheet: x")
    message = load_error(tmp_path, text)

    assert "sources[2].sheet" in message
    assert "does not apply to a parquet source" in message


def test_misspelt_key_suggests_the_right_one(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID.replace("department: 卫健", "departmnet: 卫健"))

    assert "sources[1].departmnet" in message
    assert "did you mean 'department'" in message
    assert "sources[1].department: required key is missing" in message


def test_name_must_be_snake_case(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID.replace("name: health_visits", "name: Health-Visits"))

    assert "sources[1].name" in message
    assert "'Health-Visits'" in message and "snake_case" in message


def test_duplicate_source_names_are_rejected(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID.replace("name: health_visits", "name: civil_affairs"))

    assert "sources[1].name" in message
    assert "duplicate source name 'civil_affairs'" in message


def test_second_consent_source_is_rejected(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID.replace("department: 卫健", "department: 卫健\n    role: consent").replace(
        "columns: {name: 姓名, lives_alone: 独居}", "columns: {name: 姓名}").replace(
        "    values:\n      lives_alone: {是: true, 否: false}\n", ""))

    assert "sources[2].role" in message
    assert "at most one source has role: consent" in message


def test_values_for_an_unmapped_field_are_rejected(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID.replace("values:\n      sex:", "values:\n      grid:"))

    assert "sources[0].values.grid" in message
    assert "add columns.grid" in message


def test_wrong_version_is_rejected(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID.replace("version: 1", "version: 2"))

    assert "version" in message and "version: 1" in message


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID.replace("primary_key: [jmbh]", "primary_key: [jmbh"))

    assert "not valid YAML" in message
    assert "line 9" in message


def test_duplicate_yaml_key_is_rejected(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID.replace("table: mz_resident", "table: mz_resident\n    table: other"))

    assert "duplicate key 'table'" in message


def test_missing_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(ConfigError, match="nowhere.yaml: sources file not found"):
        load_sources(missing)


def test_empty_file_shows_what_is_expected(tmp_path: Path) -> None:
    message = load_error(tmp_path, "")

    assert "version: 1" in message


def test_unknown_source_name_lists_the_declared_ones(tmp_path: Path) -> None:
    sources = load_sources(write(tmp_path, VALID))

    with pytest.raises(ConfigError, match="'health_visit' .*did you mean 'health_visits'.*civil_affairs"):
        sources.source("health_visit")


def test_home_placeholder_and_relative_paths_resolve_against_home(tmp_path: Path) -> None:
    sources = load_sources(write(tmp_path, VALID))
    home = tmp_path / "home"

    assert sources.source("civil_affairs").resolved_url(home) == f"sqlite:///{home}/demo/civil_affairs.sqlite"
    assert sources.source("health_visits").resolved_path(home) == DataHome.at(home).demo_dir / "health_visits.csv"


def test_relative_sqlite_url_resolves_against_home(make_source, tmp_path: Path) -> None:
    source = make_source(kind="sql", url="sqlite:///demo/x.sqlite", table="t")

    assert source.resolved_url(tmp_path) == f"sqlite:///{tmp_path}/demo/x.sqlite"


def test_env_placeholder_is_read_only_when_resolving(make_source, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SB_TEST_PG_PASSWORD", raising=False)
    # Building the declaration must not need the variable: it is read at run time only.
    source = make_source(kind="sql", url="postgresql+psycopg://reader:${SB_TEST_PG_PASSWORD}@db:5432/civil", table="t")
    monkeypatch.setenv("SB_TEST_PG_PASSWORD", "p@ss/w:rd")

    url = source.resolved_url(tmp_path)

    # The password goes into the URL's password part, special characters and all.
    from sqlalchemy.engine import make_url

    assert make_url(url).password == "p@ss/w:rd"
    assert make_url(url).host == "db"


def test_unset_env_var_names_file_source_key_and_variable(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("SB_TEST_UNSET_VAR", raising=False)
    path = write(tmp_path, VALID.replace("path: demo/health_visits.csv", "path: ${SB_TEST_UNSET_VAR}/visits.csv"))
    source = load_sources(path).source("health_visits")

    with pytest.raises(ConfigError) as caught:
        source.resolved_path(tmp_path)

    message = str(caught.value)
    assert str(path) in message
    assert "'health_visits'" in message
    assert "sources[1].path" in message
    assert "SB_TEST_UNSET_VAR is not set" in message


def test_malformed_placeholder_is_rejected_at_load(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID.replace("path: demo/health_visits.csv", "path: ${DATA/visits.csv"))

    assert "sources[1].path" in message and "malformed placeholder" in message


def test_models_forbid_unknown_keys_when_built_in_code() -> None:
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        SourcesFile.model_validate({"version": 1, "sources": [], "extra": 1})
    with pytest.raises(ValueError, match="exactly one of table or query"):
        SourceConfig(name="x", department="d", kind="sql", url="sqlite://", primary_key=["a"], columns={"name": "a"})


def test_trust_is_an_explicit_key_and_unranked_sources_follow_in_file_order(tmp_path: Path) -> None:
    assert load_sources(write(tmp_path, VALID)).trust_ranks == {"civil_affairs": 0, "health_visits": 1}
    trusted = VALID.replace("department: 卫健", "department: 卫健\n    trust: 1")
    assert load_sources(write(tmp_path, trusted)).trust_ranks == {"health_visits": 0, "civil_affairs": 1}


def test_trust_given_twice_or_to_the_consent_registry_is_refused(tmp_path: Path) -> None:
    twice = VALID.replace("department: 卫健", "department: 卫健\n    trust: 1").replace(
        "department: 民政", "department: 民政\n    trust: 1")
    assert "sources[1].trust: trust 1 is also given to sources[0]" in load_error(tmp_path, twice)
    consent = VALID.replace("department: 数据专班", "department: 数据专班\n    trust: 3")
    assert "sources[2].trust: trust ranks person sources" in load_error(tmp_path, consent)
    assert "sources[0].trust" in load_error(tmp_path, VALID.replace("department: 民政", "department: 民政\n    trust: 0"))


def test_the_demo_declares_trust_in_the_order_it_always_had():
    from pipelines.settings import DEMO_SOURCES

    assert load_sources(DEMO_SOURCES).trust_ranks == {"civil_affairs": 0, "health": 1, "justice": 2, "census": 3,
                                                   "grid_updates": 4}


def test_one_row_per_says_a_log_has_many_rows_per_person_and_defaults_to_a_register(tmp_path: Path) -> None:
    visits = VALID.replace("department: 卫健", "department: 卫健\n    one_row_per: visit")
    declared = {s.name: s.one_row_per for s in load_sources(write(tmp_path, visits)).person_sources}
    assert declared == {"civil_affairs": "person", "health_visits": "visit"}
    wrong = VALID.replace("department: 卫健", "department: 卫健\n    one_row_per: visits")
    message = load_error(tmp_path, wrong)
    assert "sources[1].one_row_per" in message and "'visit'" in message
    consent = VALID.replace("department: 数据专班", "department: 数据专班\n    one_row_per: event")
    assert "sources[2].one_row_per: one_row_per says what a person source's row stands for" in load_error(tmp_path, consent)


def test_the_demo_health_source_is_a_visit_log():
    from pipelines.settings import DEMO_SOURCES

    assert {s.name: s.one_row_per for s in load_sources(DEMO_SOURCES).person_sources} == {
        "civil_affairs": "person", "health": "visit", "justice": "person", "census": "person", "grid_updates": "event"}
