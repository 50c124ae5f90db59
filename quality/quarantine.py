"""Quarantine round trip: give a department its held-back rows, in its own columns and encoding.

``silobreaker quarantine export --source health`` writes the rows the last run quarantined, as the
department's system holds them (``raw_record``: the source's own column names and values), in the
format the department sent them: CSV in the declared encoding and delimiter for a CSV source, an
Excel workbook (same sheet name) for an xlsx source, UTF-8 CSV (with BOM, so Excel reads Chinese)
for a database or parquet source. Two trailing columns, ``quarantine_rule`` and
``quarantine_message``, say what is wrong and how to fix it; the connectors ignore undeclared
columns, so a corrected file can go back as it is.

When the corrected rows arrive in the next extract they pass the hard rules, leave the quarantine,
and the report counts them as fixed (see ``quarantine_history`` and the ``fixed`` measure).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import duckdb
import pandas as pd

from connectors.config import SourceConfig
from core.errors import ConfigError

__all__ = ["REASON_COLUMNS", "export_quarantine", "quarantined_rows"]

log = logging.getLogger(__name__)

REASON_COLUMNS = ("quarantine_rule", "quarantine_message")
"""Columns appended after the source's own columns in an export."""


def quarantined_rows(source: SourceConfig, home: Path) -> pd.DataFrame:
    """The source's quarantined rows from the latest run, in the source's own columns.

    The latest staging output (``<home>/staging/quarantine_<source>.parquet``) is read first, so
    the rows of a run whose publication was blocked can be corrected too; without it, the published
    warehouse's ``quarantine`` table.
    """
    staged = Path(home) / "staging" / f"quarantine_{source.name}.parquet"
    if staged.exists():
        frame = pd.read_parquet(staged, columns=["row_number", "rule", "message", "raw_record"])
    else:
        warehouse = Path(home) / "warehouse" / "silobreaker.duckdb"
        if not warehouse.exists():
            raise ConfigError(
                f"no quarantine for source {source.name!r} under {home}: run the pipeline first "
                "(silobreaker run), then export"
            )
        with duckdb.connect(str(warehouse), read_only=True) as con:
            frame = con.execute(
                "SELECT row_number, rule, message, raw_record FROM quarantine WHERE source = ? ORDER BY row_number",
                [source.name],
            ).df()
    frame = frame.sort_values("row_number", kind="stable")
    records = [json.loads(text) for text in frame["raw_record"]]
    own_columns = list(dict.fromkeys([*source.primary_key, *source.columns.values()]))
    columns = list(records[0]) if records else own_columns
    rows = pd.DataFrame(records, columns=columns).astype(object)
    rows = rows.where(rows.notna(), None)
    rows[REASON_COLUMNS[0]] = frame["rule"].to_numpy(dtype=object)
    rows[REASON_COLUMNS[1]] = frame["message"].to_numpy(dtype=object)
    return rows


def export_quarantine(source: SourceConfig, home: Path, out: Path | None = None) -> Path:
    """Write the source's quarantined rows for the department to correct; return the file written.

    Args:
        source: the source's declaration (``sources.yaml``).
        home: the data home.
        out: the file to write; default ``<home>/quarantine/<source>.csv`` (``.xlsx`` for Excel sources).

    Example:
        >>> export_quarantine(health, home)          # GBK CSV, the columns of health_visits.csv
        PosixPath('var/quarantine/health.csv')
    """
    rows = quarantined_rows(source, home)
    suffix = ".xlsx" if source.kind == "xlsx" else ".csv"
    path = Path(out) if out else Path(home) / "quarantine" / f"{source.name}{suffix}"
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
