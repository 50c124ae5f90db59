"""Fixtures for the connector tests: the real database servers and small source builders."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from connectors import SourceConfig, safe_url

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_MARIADB_URL = "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4"


def _reachable(url: str) -> str:
    """The URL if its server answers; otherwise fail on CI (a server must be there) or skip."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.DBAPIError as e:
        message = f"database {safe_url(url)} is unreachable: {e.orig}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the local PostgreSQL test database (override with SILOBREAKER_TEST_POSTGRES_URL)."""
    return _reachable(os.environ.get("SILOBREAKER_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))


@pytest.fixture(scope="session")
def mariadb_url() -> str:
    """URL of the local MariaDB test database (override with SILOBREAKER_TEST_MARIADB_URL)."""
    return _reachable(os.environ.get("SILOBREAKER_TEST_MARIADB_URL", DEFAULT_MARIADB_URL))


@pytest.fixture
def unique_table_name() -> str:
    """A table name no other test run uses, so runs in parallel cannot collide."""
    return f"sb_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_source() -> Callable[..., SourceConfig]:
    """Build a SourceConfig with test defaults; keyword arguments override them."""

    def build(**overrides: Any) -> SourceConfig:
        fields: dict[str, Any] = {
            "name": "test_source",
            "department": "测试",
            "primary_key": ["编号"],
            "columns": {"name": "姓名"},
        }
        fields.update(overrides)
        return SourceConfig(**fields)

    return build


@pytest.fixture
def assert_text_only() -> Callable[[pd.DataFrame], None]:
    """Check the connector contract: every cell is a Python str (never empty) or None."""

    def check(frame: pd.DataFrame) -> None:
        for column in frame.columns:
            for value in frame[column].tolist():
                assert value is None or (isinstance(value, str) and value != ""), (column, value)

    return check


@pytest.fixture
def sql_table(request: pytest.FixtureRequest, unique_table_name: str) -> Iterator[tuple[str, str]]:
    """A uniquely named people table on the server named by ``request.param``; dropped afterwards.

    Yields (url, table name). Columns carry Chinese names and text, an integer key, a date,
    an 18-digit BIGINT, a NUMERIC and a TIMESTAMP, with nulls and an empty string.
    """
    url = request.getfixturevalue(request.param)
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    table = sa.Table(
        unique_table_name,
        metadata,
        sa.Column("编号", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("姓名", sa.String(50)),
        sa.Column("出生日期", sa.Date),
        sa.Column("身份证号", sa.BigInteger),
        sa.Column("补贴", sa.Numeric(10, 2)),
        sa.Column("登记时间", sa.DateTime),
        sa.Column("备注", sa.String(50)),
    )
    rows = [
        {"编号": 2, "姓名": "李四", "出生日期": dt.date(1985, 12, 1), "身份证号": None, "补贴": Decimal("300.00"),
         "登记时间": dt.datetime(2024, 1, 2, 0, 0), "备注": ""},
        {"编号": 1, "姓名": "张三", "出生日期": dt.date(1990, 3, 7), "身份证号": 110101199003077777,
         "补贴": Decimal("12.50"), "登记时间": dt.datetime(2024, 5, 6, 8, 30, 15), "备注": "独居 老人"},
    ]
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(table.insert(), rows)
        yield url, unique_table_name
    finally:
        metadata.drop_all(engine)
        engine.dispose()
