"""A department's own rows, in its own columns and in the form it sent them: what a file handed back
to a department is made of.

:func:`department_rows` turns quarantined rows back into the department's rows (``raw_record``: the
source's own column names and values, as its system holds them); :func:`write_department_file`
writes rows in the format the department sent: CSV in the declared encoding and delimiter for a CSV
source, an Excel workbook (same sheet name, every cell text, so an ID number keeps its 18 digits)
for an xlsx source, UTF-8 CSV with BOM (so Excel reads Chinese) for a database or parquet source.
The connectors read declared columns only, so columns appended for the clerk are ignored when a
corrected file goes back.

``silobreaker corrections export`` (:mod:`quality.corrections`) builds the clerk's file from these.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from connectors.config import SourceConfig
from connectors.grid_form import GRID_FORM_SHEET
from core.errors import ConfigError

__all__ = ["QUARANTINE_READ_COLUMNS", "department_rows", "export_suffix", "own_columns", "write_department_file"]

log = logging.getLogger(__name__)

QUARANTINE_READ_COLUMNS = ("row_number", "rule", "rules", "field", "column", "value", "message", "raw_record")
"""The quarantine columns a corrections file is built from (a staged quarantine frame or the published table)."""

_TEXT_FORMAT = "@"
_WIDEST_COLUMN = 60


def own_columns(source: SourceConfig) -> list[str]:
    """The source's key and declared columns, in declaration order: its own columns when no row says more."""
    return list(dict.fromkeys([*source.primary_key, *source.columns.values()]))


def department_rows(source: SourceConfig, quarantine: pd.DataFrame) -> pd.DataFrame:
    """The quarantined rows in the source's own columns and values, in the order given.

    Args:
        source: the source's declaration (``sources.yaml``).
        quarantine: its quarantine rows, with at least ``raw_record`` (the row as JSON).
    """
    records = [json.loads(text) for text in quarantine["raw_record"]]
    columns = list(records[0]) if records else own_columns(source)
    rows = pd.DataFrame(records, columns=columns, index=quarantine.index).astype(object)
    return rows.where(rows.notna(), None)


def export_suffix(source: SourceConfig) -> str:
    """The file type a department gets its rows back in: ``.xlsx`` for an Excel source, else ``.csv``."""
    return ".xlsx" if source.kind == "xlsx" else ".csv"


def write_department_file(source: SourceConfig, rows: pd.DataFrame, path: Path) -> Path:
    """Write ``rows`` to ``path`` in the department's own format; return ``path``.

    Args:
        source: the source's declaration (``sources.yaml``).
        rows: the rows, every cell text or ``None``.
        path: ``.xlsx`` writes a workbook (the source's sheet name, every cell formatted as text),
            anything else CSV in the source's encoding and delimiter (UTF-8 with BOM for a
            database or parquet source, or an ``auto`` encoding).

    Raises:
        ConfigError: a value cannot be written in the source's encoding (names the fix).

    Example:
        >>> write_department_file(health, rows, Path("var/corrections/health.csv"))   # doctest: +SKIP
        PosixPath('var/corrections/health.csv')
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".xlsx":
        # A grid worker's form comes back under the name the form has (a source reads its first sheet, by any name).
        _write_workbook(rows, path, source.sheet or (GRID_FORM_SHEET if source.role == "grid_updates" else "Sheet1"))
    else:
        encoding = source.encoding if source.kind == "csv" and source.encoding != "auto" else "utf-8-sig"
        delimiter = source.delimiter if source.kind == "csv" else ","
        try:
            rows.to_csv(path, index=False, encoding=encoding, sep=delimiter)
        except UnicodeEncodeError as e:
            path.unlink(missing_ok=True)
            raise ConfigError(
                f"export of {source.name!r}: a value cannot be written in {encoding} ({e}); "
                f"pass --out with a .xlsx name or declare encoding: gb18030 for this source"
            ) from e
    log.info("wrote %d rows of %s to %s", len(rows), source.name, path)
    return path


def _write_workbook(rows: pd.DataFrame, path: Path, sheet: str) -> None:
    # Every cell is text and formatted as text, so Excel/WPS keeps an 18-digit ID number whole even
    # after the clerk edits the cell (a number cell keeps 15 digits).
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        rows.to_excel(writer, sheet_name=sheet, index=False)
        worksheet = writer.sheets[sheet]
        for column in worksheet.iter_cols(min_row=1, max_row=len(rows) + 1):
            for cell in column:
                cell.number_format = _TEXT_FORMAT
            widest = max((len(str(cell.value)) for cell in column if cell.value is not None), default=4)
            worksheet.column_dimensions[column[0].column_letter].width = min(_WIDEST_COLUMN, 2 * widest + 2)
        worksheet.freeze_panes = "A2"
