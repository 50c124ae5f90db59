"""Parquet sources: every Arrow type arrives as text by the same rules as SQL values."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors import read_source
from core.errors import SourceError

pytestmark = pytest.mark.integration


def consent_source(make_source, **overrides):
    fields = {
        "name": "consent_registry",
        "role": "consent",
        "kind": "parquet",
        "path": "consent.parquet",
        "primary_key": ["consent_id"],
        "columns": {"id_number": "sfzh", "purpose": "purpose", "decided_at": "decided_at"},
    }
    return make_source(**{**fields, **overrides})


def test_arrow_types_become_text(make_source, assert_text_only, tmp_path: Path) -> None:
    table = pa.table(
        {
            "consent_id": pa.array([1, 2, None], pa.int64()),
            "sfzh": pa.array(["11010119900307777X", "", None], pa.string()),
            "purpose": pa.array(["跨部门共享", "统计", "科研"], pa.large_string()),
            "score": pa.array([1.0, 2.5, None], pa.float64()),
            "decided_at": pa.array([dt.datetime(2025, 1, 2, 9, 15), dt.datetime(2025, 3, 4), None], pa.timestamp("us")),
            "birth": pa.array([dt.date(1990, 3, 7), None, dt.date(2001, 1, 1)], pa.date32()),
            "withdrawn": pa.array([False, True, None], pa.bool_()),
            "amount": pa.array([Decimal("12.50"), Decimal("300.00"), None], pa.decimal128(10, 2)),
        }
    )
    pq.write_table(table, tmp_path / "consent.parquet")

    extract = read_source(consent_source(make_source), tmp_path)

    frame = extract.frame
    assert_text_only(frame)
    assert frame.to_dict("list") == {
        "consent_id": ["1", "2", None],
        "sfzh": ["11010119900307777X", None, None],
        "purpose": ["跨部门共享", "统计", "科研"],
        "score": ["1", "2.5", None],
        "decided_at": ["2025-01-02 09:15:00", "2025-03-04", None],
        "birth": ["1990-03-07", None, "2001-01-01"],
        "withdrawn": ["false", "true", None],
        "amount": ["12.5", "300", None],
    }
    assert extract.lineage.content_hash == hashlib.sha256((tmp_path / "consent.parquet").read_bytes()).hexdigest()
    assert extract.lineage.row_count == 3


def test_pandas_index_is_not_a_column(make_source, tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"consent_id": ["a", "b"], "sfzh": ["1", "2"], "purpose": ["统计", "统计"], "decided_at": ["x", "y"]},
        index=[10, 20],
    )
    frame.to_parquet(tmp_path / "consent.parquet", index=True)

    extracted = read_source(consent_source(make_source), tmp_path).frame

    assert list(extracted.columns) == ["consent_id", "sfzh", "purpose", "decided_at"]


def test_file_that_is_not_parquet_is_a_source_error(make_source, tmp_path: Path) -> None:
    (tmp_path / "consent.parquet").write_bytes(b"not parquet at all")

    with pytest.raises(SourceError, match="not a readable Parquet file"):
        read_source(consent_source(make_source), tmp_path)
