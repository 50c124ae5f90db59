"""Quarantine round trip: give a department its held-back rows, in its own columns and encoding.

``silobreaker quarantine export --source health`` writes the rows the last run quarantined, as the
department's system holds them (``raw_record``: the source's own column names and values), in the
format the department sent them: CSV in the declared encoding and delimiter for a CSV source, an
Excel workbook (same sheet name) for an xlsx source, UTF-8 CSV (with BOM, so Excel reads Chinese)
for a database or parquet source. Two trailing columns, ``quarantine_rule`` and
``quarantine_message``, say what is wrong and how to fix it; the connectors ignore undeclared
columns, so a corrected file can go back as it is.

When the corrected rows arrive in the next extract they pass the quarantine rules, leave the quarantine,
and the report counts them as fixed (see ``quarantine_history`` and the ``fixed`` measure).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from connectors.config import SourceConfig
from core.errors import ConfigError

__all__ = ["QUARANTINE_READ_COLUMNS", "REASON_COLUMNS", "department_rows", "export_quarantine", "export_suffix"]

log = logging.getLogger(__name__)

REASON_COLUMNS = ("quarantine_rule", "quarantine_message")
"""Columns appended after the source's own columns in an export."""

QUARANTINE_READ_COLUMNS = ("row_number", "rule", "message", "raw_record")
"""The quarantine columns an export is built from (a staged quarantine frame or the published table)."""


def department_rows(source: SourceConfig, quarantine: pd.DataFrame) -> pd.DataFrame:
    """The quarantined rows in the source's own columns, with the rule and message appended.

    Args:
        source: the source's declaration (``sources.yaml``).
        quarantine: its quarantine rows, with at least :data:`QUARANTINE_READ_COLUMNS`: the latest
            run's staged quarantine (so a blocked run's rows can be corrected too), else the published one.
    """
    frame = quarantine.sort_values("row_number", kind="stable")
    records = [json.loads(text) for text in frame["raw_record"]]
    own_columns = list(dict.fromkeys([*source.primary_key, *source.columns.values()]))
    columns = list(records[0]) if records else own_columns
    rows = pd.DataFrame(records, columns=columns).astype(object)
    rows = rows.where(rows.notna(), None)
    rows[REASON_COLUMNS[0]] = frame["rule"].to_numpy(dtype=object)
    rows[REASON_COLUMNS[1]] = frame["message"].to_numpy(dtype=object)
    return rows


def export_suffix(source: SourceConfig) -> str:
    """The file type a department gets its rows back in: ``.xlsx`` for an Excel source, else ``.csv``."""
    return ".xlsx" if source.kind == "xlsx" else ".csv"


def export_quarantine(source: SourceConfig, quarantine: pd.DataFrame, path: Path) -> Path:
    """Write the source's quarantined rows to ``path`` for the department to correct; return ``path``.

    Args:
        source: the source's declaration (``sources.yaml``).
        quarantine: its quarantine rows (see :func:`department_rows`).
        path: the file to write; ``.xlsx`` writes a workbook (the source's sheet name), anything else CSV
            in the source's encoding and delimiter (UTF-8 with BOM for a database or parquet source).

    Example:
        >>> export_quarantine(health, quarantine, Path("var/quarantine/health.csv"))   # doctest: +SKIP
        PosixPath('var/quarantine/health.csv')
    """
    rows = department_rows(source, quarantine)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".xlsx":
        rows.to_excel(path, sheet_name=source.sheet or "Sheet1", index=False, engine="openpyxl")
    else:
        encoding = source.encoding if source.kind == "csv" and source.encoding != "auto" else "utf-8-sig"
        delimiter = source.delimiter if source.kind == "csv" else ","
        try:
            rows.to_csv(path, index=False, encoding=encoding, sep=delimiter)
        except UnicodeEncodeError as e:
            raise ConfigError(
                f"quarantine export of {source.name!r}: a value cannot be written in {encoding} ({e}); "
                f"pass --out with a .xlsx name or declare encoding: gb18030 for this source"
            ) from e
    log.info("exported %d quarantined rows of %s to %s", len(rows), source.name, path)
    return path
