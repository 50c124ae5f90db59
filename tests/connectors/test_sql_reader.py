"""SQL sources on SQLite and on the real PostgreSQL and MariaDB servers of this machine."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from connectors import read_source
from core.errors import ConfigError, SourceError, SourceUnavailableError
from core.home import DataHome

pytestmark = pytest.mark.integration

# Rows are read ordered by the primary key (编号), whatever order they were inserted in.
EXPECTED = {
    "编号": ["1", "2"],
    "姓名": ["张三", "李四"],
    "出生日期": ["1990-03-07", "1985-12-01"],
    "身份证号": ["110101199003077777", None],  # BIGINT beyond 2**53 keeps every digit
    "补贴": ["12.5", "300"],
    "登记时间": ["2024-05-06 08:30:15", "2024-01-02"],
    "备注": ["独居 老人", None],
}
COLUMNS = {"name": "姓名", "birth_date": "出生日期", "id_number": "身份证号"}


def sql_source(make_source, **overrides):
    return make_source(**{"kind": "sql", "columns": COLUMNS, **overrides})


@pytest.mark.parametrize("sql_table", ["postgres_url", "mariadb_url"], indirect=True)
def test_table_round_trip(make_source, assert_text_only, sql_table: tuple[str, str], tmp_path: Path) -> None:
    url, table = sql_table
    source = sql_source(make_source, url=url, table=table)
    before = dt.datetime.now(dt.UTC)

    first = read_source(source, tmp_path)
    second = read_source(source, tmp_path)

    assert_text_only(first.frame)
    assert first.frame.to_dict("list") == EXPECTED
    lineage = first.lineage
    assert lineage.kind == "sql" and lineage.row_count == 2 and lineage.encoding is None
    assert lineage.location.endswith(f"table {table}")
    assert lineage.extracted_at >= before
    # The same rows read twice hash the same: reads are ordered and the serialisation is stable.
    assert lineage.content_hash == second.lineage.content_hash


@pytest.mark.parametrize("sql_table", ["postgres_url", "mariadb_url"], indirect=True)
def test_query_with_colon_and_percent_literals(make_source, sql_table: tuple[str, str], tmp_path: Path) -> None:
    url, table = sql_table
    # ':30' must not become a bind parameter, nor '%' a format placeholder.
    query = f"SELECT * FROM {table} WHERE 姓名 LIKE '张%' AND '10:30' = '10:30'"
    if url.startswith("postgresql"):
        query = query.replace(f"FROM {table}", f'FROM "{table}"').replace("姓名 LIKE", '"姓名" LIKE')

    frame = read_source(sql_source(make_source, url=url, query=query), tmp_path).frame

    assert frame["姓名"].tolist() == ["张三"]
    assert frame["补贴"].tolist() == ["12.5"]


@pytest.mark.parametrize("sql_table", ["postgres_url", "mariadb_url"], indirect=True)
def test_missing_column_is_named_before_reading(make_source, sql_table: tuple[str, str], tmp_path: Path) -> None:
    url, table = sql_table
    source = sql_source(make_source, url=url, table=table, columns={"name": "姓名", "phone": "电话"})

    with pytest.raises(SourceError) as caught:
        read_source(source, tmp_path)

    message = str(caught.value)
    assert "columns.phone names column '电话'" in message
    assert "Columns found: 编号, 姓名, 出生日期" in message
    assert f"table {table}" in message


@pytest.mark.parametrize("server", ["postgres_url", "mariadb_url"])
def test_missing_table_is_terminal(make_source, request, server: str, unique_table_name: str, tmp_path: Path) -> None:
    url = request.getfixturevalue(server)

    with pytest.raises(SourceError, match="the table does not exist.*correct table in sources.yaml"):
        read_source(sql_source(make_source, url=url, table=unique_table_name), tmp_path)


@pytest.mark.parametrize("server", ["postgres_url", "mariadb_url"])
def test_unknown_database_is_terminal_not_transient(make_source, request, server: str, tmp_path: Path) -> None:
    url = request.getfixturevalue(server).replace("/test", "/sb_no_such_database")

    with pytest.raises(SourceError, match="refused the connection") as caught:
        read_source(sql_source(make_source, url=url, table="t"), tmp_path)

    assert not isinstance(caught.value, SourceUnavailableError)


@pytest.mark.parametrize("server", ["postgres_url", "mariadb_url"])
def test_sql_error_in_query_is_terminal(make_source, request, server: str, tmp_path: Path) -> None:
    url = request.getfixturevalue(server)

    with pytest.raises(SourceError, match="rejected the read") as caught:
        read_source(sql_source(make_source, url=url, query="SELEC 1"), tmp_path)

    assert caught.value.__cause__ is not None


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://reader:S3cret-pw@127.0.0.1:1/test",
        "mysql+pymysql://reader:S3cret-pw@127.0.0.1:1/test?charset=utf8mb4",
    ],
)
def test_refused_connection_is_transient_and_hides_the_password(make_source, url: str, tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailableError) as caught:
        read_source(sql_source(make_source, url=url, table="t"), tmp_path)

    message = str(caught.value)
    assert "S3cret-pw" not in message
    assert "reader:***@127.0.0.1:1" in message
    assert "may work on retry" in message
    assert caught.value.__cause__ is not None


def make_sqlite(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE mz_resident (jmbh INTEGER PRIMARY KEY, xm TEXT, csrq TEXT, nl INTEGER, bz TEXT)")
        conn.executemany(
            "INSERT INTO mz_resident VALUES (?, ?, ?, ?, ?)",
            [(2, "李四", "1985/12/01", None, ""), (1, "张三", "1990-03-07", 34, "低保")],
        )
    conn.close()


def sqlite_source(make_source, **overrides):
    fields = {
        "name": "civil_affairs",
        "url": "sqlite:///${SILOBREAKER_HOME}/demo/civil_affairs.sqlite",
        "table": "mz_resident",
        "primary_key": ["jmbh"],
        "columns": {"name": "xm", "birth_date": "csrq"},
    }
    return sql_source(make_source, **{**fields, **overrides})


def test_sqlite_table_under_the_data_home(make_source, assert_text_only, tmp_path: Path) -> None:
    make_sqlite(DataHome.at(tmp_path).demo_dir / "civil_affairs.sqlite")

    extract = read_source(sqlite_source(make_source), tmp_path)

    assert_text_only(extract.frame)
    assert extract.frame.to_dict("list") == {
        "jmbh": ["1", "2"],
        "xm": ["张三", "李四"],
        "csrq": ["1990-03-07", "1985/12/01"],
        "nl": ["34", None],
        "bz": ["低保", None],
    }
    assert extract.lineage.location == f"sqlite:///{tmp_path}/demo/civil_affairs.sqlite table mz_resident"


def test_sqlite_query_with_relative_url(make_source, tmp_path: Path) -> None:
    make_sqlite(DataHome.at(tmp_path).demo_dir / "civil_affairs.sqlite")
    query = "SELECT jmbh, xm, csrq FROM mz_resident WHERE nl > 30"
    source = sqlite_source(make_source, url="sqlite:///demo/civil_affairs.sqlite", table=None, query=query)

    frame = read_source(source, tmp_path).frame

    assert frame.to_dict("list") == {"jmbh": ["1"], "xm": ["张三"], "csrq": ["1990-03-07"]}


def test_sqlite_hash_changes_when_a_value_changes(make_source, tmp_path: Path) -> None:
    database = DataHome.at(tmp_path).demo_dir / "civil_affairs.sqlite"
    make_sqlite(database)
    before = read_source(sqlite_source(make_source), tmp_path).lineage.content_hash
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE mz_resident SET xm = '张叁' WHERE jmbh = 1")
    conn.close()

    after = read_source(sqlite_source(make_source), tmp_path).lineage.content_hash

    assert before != after


def test_missing_sqlite_file_is_not_created(make_source, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="civil_affairs.sqlite does not exist"):
        read_source(sqlite_source(make_source), tmp_path)

    assert not (DataHome.at(tmp_path).demo_dir / "civil_affairs.sqlite").exists()


def test_unset_variable_in_url_is_a_config_error(make_source, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SB_TEST_DB_PASSWORD", raising=False)
    source = sql_source(make_source, url="postgresql+psycopg://u:${SB_TEST_DB_PASSWORD}@127.0.0.1/test", table="t")

    with pytest.raises(ConfigError, match="key url: environment variable SB_TEST_DB_PASSWORD is not set"):
        read_source(source, tmp_path)


def test_unknown_dialect_is_terminal(make_source, tmp_path: Path) -> None:
    source = sql_source(make_source, url="postgress://u@127.0.0.1/test", table="t")

    with pytest.raises(SourceError, match="cannot use this URL.*correct url in sources.yaml"):
        read_source(source, tmp_path)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_sqlite_file_is_named_as_such_with_the_fix(make_source, tmp_path: Path, damage: str) -> None:
    database = DataHome.at(tmp_path).demo_dir / "civil_affairs.sqlite"
    make_sqlite(database)
    if damage == "garbage":
        database.write_bytes(b"this is a spreadsheet, not a database " * 200)
    else:
        database.write_bytes(database.read_bytes()[:4096] + b"\0" * 100)

    with pytest.raises(SourceError) as caught:
        read_source(sqlite_source(make_source), tmp_path)

    assert "not a readable SQLite database" in str(caught.value) and "fresh copy" in str(caught.value)
