"""Write the demo's department systems in their real formats, byte-for-byte reproducibly.

Each writer takes columns as equal-length arrays of text (``''`` = not recorded), writes to a
temporary file beside the target and moves it into place, so a reader never sees half a file. The
same input always gives the same bytes: the xlsx zip entries and document properties carry a fixed
timestamp instead of the time of writing.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import os
import re
import sqlite3
import zipfile
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

__all__ = ["FIXED_TIMESTAMP", "XlsxColumn", "freeze_zip", "write_csv", "write_parquet", "write_sqlite", "write_xlsx"]

FIXED_TIMESTAMP = dt.datetime(2026, 11, 1, 8, 0, 0)
"""Written into the xlsx document properties, so that equal input gives equal bytes."""

_CHUNK = 100_000
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _row_chunks(columns: Sequence[np.ndarray], null_for_empty: Sequence[bool]) -> Iterator[list[tuple]]:
    """Rows as tuples of Python strings, a chunk at a time to bound memory at a million rows."""
    n = len(columns[0]) if columns else 0
    for start in range(0, n, _CHUNK):
        lists = [c[start : start + _CHUNK].tolist() for c in columns]
        lists = [[v or None for v in vs] if null else vs for vs, null in zip(lists, null_for_empty, strict=True)]
        yield list(zip(*lists, strict=True))


def write_sqlite(
    path: Path, table: str, columns: Mapping[str, np.ndarray], primary_key: str, blank_columns: Collection[str] = ()
) -> None:
    """Write one table of TEXT columns into a fresh SQLite database.

    Args:
        path: the database file (replaced if it exists).
        table: table name.
        columns: column name -> array of text, in table order.
        primary_key: the column declared PRIMARY KEY.
        blank_columns: columns whose ``''`` is stored as an empty string, as the department's
            application writes them; elsewhere ``''`` becomes NULL.
    """
    names = list(columns)
    ddl = ", ".join(f'"{c}" TEXT PRIMARY KEY' if c == primary_key else f'"{c}" TEXT' for c in names)
    insert = f'INSERT INTO "{table}" VALUES ({", ".join("?" for _ in names)})'
    with _atomic(path) as tmp:
        connection = sqlite3.connect(tmp)
        try:
            connection.execute("PRAGMA journal_mode = OFF")
            connection.execute("PRAGMA synchronous = OFF")
            connection.execute(f'CREATE TABLE "{table}" ({ddl})')
            for rows in _row_chunks(list(columns.values()), [c not in blank_columns for c in names]):
                connection.executemany(insert, rows)
            connection.commit()
        finally:
            connection.close()


def write_csv(path: Path, columns: Mapping[str, np.ndarray], encoding: str) -> None:
    """Write a CSV with a header line and CRLF line ends, as Windows export tools do.

    Args:
        path: the file (replaced if it exists).
        columns: column name -> array of text.
        encoding: ``"gbk"`` or ``"utf-8-sig"`` (UTF-8 with a byte-order mark); a character the
            encoding cannot hold raises ``UnicodeEncodeError`` rather than being replaced.
    """
    with _atomic(path) as tmp:
        with open(tmp, "w", encoding=encoding, errors="strict", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\r\n")
            writer.writerow(list(columns))
            for rows in _row_chunks(list(columns.values()), [False] * len(columns)):
                writer.writerows(rows)


class XlsxColumn:
    """How one column of the xlsx sheet is written.

    Args:
        values: text per row; ``''`` is an empty cell (or, for a date column, "use the date").
        dates: ``datetime64[D]`` per row for a date column: the cell is a real Excel date with
            ``number_format`` unless ``values`` holds a text for that row (``1980.01.02`` typed
            by hand, ``不详``), which is then written as a text cell.
        as_text: write values as text cells (number format ``@``), as IDs and phones are kept so
            that Excel does not turn them into ``3.30106E+17``.
        number_format: Excel number format of date cells.
    """

    def __init__(
        self,
        values: np.ndarray,
        *,
        dates: np.ndarray | None = None,
        as_text: bool = False,
        number_format: str = "yyyy-mm-dd",
    ) -> None:
        if dates is not None and len(dates) != len(values):
            raise ValueError(f"XlsxColumn: {len(values)} values but {len(dates)} dates; give one of each per row")
        self.values = values
        self.dates = dates
        self.as_text = as_text
        self.number_format = number_format


def write_xlsx(path: Path, sheet: str, columns: Mapping[str, XlsxColumn]) -> None:
    """Write one sheet with a header row, streaming (openpyxl write-only mode).

    Args:
        path: the workbook (replaced if it exists).
        sheet: sheet name.
        columns: header -> :class:`XlsxColumn`, all of the same length.
    """
    workbook = Workbook(write_only=True)
    worksheet = workbook.create_sheet(sheet)
    worksheet.append(list(columns))
    specs = list(columns.values())
    values = [spec.values.tolist() for spec in specs]
    dates = [
        None if spec.dates is None else spec.dates.astype("datetime64[D]").astype(object).tolist() for spec in specs
    ]
    for i in range(len(values[0]) if values else 0):
        row: list[object] = []
        for spec, texts, days in zip(specs, values, dates, strict=True):
            text = texts[i]
            if days is not None and text == "":
                cell = WriteOnlyCell(worksheet, value=dt.datetime.combine(days[i], dt.time()))
                cell.number_format = spec.number_format
                row.append(cell)
            elif text == "":
                row.append(None)
            elif spec.as_text or days is not None:
                row.append(_text_cell(worksheet, text))
            else:
                row.append(text)
        worksheet.append(row)
    workbook.properties.creator = "silobreaker demo"
    with _atomic(path) as tmp:
        workbook.save(tmp)
        freeze_zip(tmp)


def _text_cell(worksheet: object, value: str) -> WriteOnlyCell:
    cell = WriteOnlyCell(worksheet, value=value)
    cell.number_format = "@"
    return cell


_CORE_DATES = re.compile(rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)")


def freeze_zip(path: Path) -> None:
    """Rewrite a zip so entry times and the document's created/modified stamps are fixed."""
    stamp = FIXED_TIMESTAMP.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    with zipfile.ZipFile(path) as source:
        entries = [(info.filename, source.read(info.filename)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for name, data in entries:
            if name == "docProps/core.xml":
                data = _CORE_DATES.sub(lambda m: m.group(1) + stamp + m.group(3), data)
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(info, data)


def write_parquet(path: Path, table: pa.Table) -> None:
    """Write an Arrow table as a Parquet file."""
    with _atomic(path) as tmp:
        pq.write_table(table, tmp)
