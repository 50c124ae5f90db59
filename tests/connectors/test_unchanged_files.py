"""A file holding the bytes of an extract the caller knows is hashed, not parsed again (issue 14)."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from connectors import read_source

ROWS = pd.DataFrame({"编号": ["1", "2"], "姓名": ["张三", "李四"]})


def write(kind: str, path: Path, rows: pd.DataFrame) -> None:
    if kind == "csv":
        rows.to_csv(path, index=False)
    elif kind == "parquet":
        rows.to_parquet(path, index=False)
    else:
        workbook = openpyxl.Workbook()
        sheet = workbook.active
        sheet.append(list(rows.columns))
        for row in rows.itertuples(index=False):
            sheet.append(list(row))
        workbook.save(path)


@pytest.mark.parametrize("kind", ["csv", "xlsx", "parquet"])
def test_an_unchanged_file_comes_back_unchanged_and_a_changed_one_is_parsed(make_source, tmp_path: Path, kind: str):
    source = make_source(kind=kind, path=f"people.{kind}")
    path = tmp_path / f"people.{kind}"
    write(kind, path, ROWS)
    first = read_source(source, tmp_path)
    assert not first.unchanged and len(first.frame) == 2

    again = read_source(source, tmp_path, known=first.lineage)

    assert again.unchanged and again.frame.empty
    assert again.lineage.content_hash == first.lineage.content_hash
    assert again.lineage.row_count == 2 and again.lineage.encoding == first.lineage.encoding
    assert again.lineage.extracted_at >= first.lineage.extracted_at

    write(kind, path, pd.concat([ROWS, pd.DataFrame({"编号": ["3"], "姓名": ["王五"]})], ignore_index=True))
    changed = read_source(source, tmp_path, known=first.lineage)

    assert not changed.unchanged and changed.frame["姓名"].tolist() == ["张三", "李四", "王五"]
    assert changed.lineage.content_hash != first.lineage.content_hash


def test_a_database_is_read_even_when_its_last_read_is_known(make_source, tmp_path: Path):
    import sqlite3

    with sqlite3.connect(tmp_path / "people.sqlite") as con:
        con.execute('CREATE TABLE people ("编号" TEXT PRIMARY KEY, "姓名" TEXT)')
        con.executemany("INSERT INTO people VALUES (?, ?)", ROWS.itertuples(index=False))
    source = make_source(kind="sql", url="sqlite:///${SILOBREAKER_HOME}/people.sqlite", table="people")
    first = read_source(source, tmp_path)

    again = read_source(source, tmp_path, known=first.lineage)

    assert not again.unchanged and again.frame["姓名"].tolist() == ["张三", "李四"]
    assert again.lineage.content_hash == first.lineage.content_hash
