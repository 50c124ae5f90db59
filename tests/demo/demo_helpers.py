"""Helpers for the demo tests: read each generated system in its own format, check IDs by definition.

The readers use the standard libraries of each format (sqlite3, csv via pandas, openpyxl, pyarrow),
not silobreaker's connectors, so that these tests judge the generator alone.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import unicodedata
from pathlib import Path

import openpyxl
import pandas as pd

from demo.generate import DemoSummary

KEY_COLUMNS = {"civil_affairs": "jmbh", "health": "visit_id", "justice": "编号", "census": "普查编号"}
BIRTH_COLUMNS = {"civil_affairs": "csrq", "health": "dob", "justice": "出生日期", "census": "出生年月"}
NAME_COLUMNS = {"civil_affairs": "xm", "health": "patient_name", "justice": "姓名", "census": "姓名"}
ID_COLUMNS = {"civil_affairs": "sfzh", "health": "id_card", "justice": "身份证号", "census": "公民身份号码"}
ADDRESS_COLUMNS = {"civil_affairs": "jtzz", "health": "home_address", "justice": "居住地址", "census": "住址"}
_ID_SHAPE = re.compile(r"[0-9]{17}[0-9X]|[0-9]{15}")


def read_source(summary: DemoSummary, source: str) -> pd.DataFrame:
    """One generated source as a frame of text (``""`` for empty); xlsx date cells become ``date`` objects."""
    path = summary.files[source]
    if source == "civil_affairs":
        with sqlite3.connect(path) as connection:
            frame = pd.read_sql_query("SELECT * FROM mz_resident", connection, dtype=object)
        return frame.fillna("")
    if source == "health":
        return pd.read_csv(path, encoding="gbk", dtype=str, keep_default_na=False)
    if source == "census":
        return pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    if source == "justice":
        workbook = openpyxl.load_workbook(path, read_only=True)
        rows = list(workbook["在册人员"].iter_rows(values_only=True))
        workbook.close()
        frame = pd.DataFrame(rows[1:], columns=rows[0], dtype=object)
        return frame.map(lambda v: "" if v is None else v.date() if isinstance(v, dt.datetime) else v)
    if source == "consent_registry":
        return pd.read_parquet(path)
    if source == "grid_updates":  # the grid-update form: every cell text
        frame = pd.read_excel(path, sheet_name=0, dtype=str, keep_default_na=False)
        return frame
    raise ValueError(f"unknown demo source {source!r}")


def record_ids(summary: DemoSummary, source: str) -> pd.Series:
    """``<source>:<key>`` for every row of a person source, in file order."""
    frame = read_source(summary, source)
    if source == "grid_updates":  # the form's key: 填报日期|填报人|序号
        return source + ":" + frame["填报日期"] + "|" + frame["填报人"] + "|" + frame["序号"]
    return source + ":" + frame[KEY_COLUMNS[source]].astype(str)


def id_is_valid(id_number: str) -> bool:
    """GB 11643 by its definition: 17 digits weighted 2^(17-i) mod 11, check = (12 - sum mod 11) mod 11."""
    if not re.fullmatch(r"[0-9]{17}[0-9X]", id_number):
        return False
    total = sum(int(d) * pow(2, 17 - i, 11) for i, d in enumerate(id_number[:17]))
    check = (12 - total % 11) % 11
    try:
        dt.date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    except ValueError:
        return False
    return id_number[17] == ("X" if check == 10 else str(check))


def normal_form(text: str) -> str:
    """NFKC with every space removed: what a normaliser would make of full-width forms and stray spaces."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def looks_like_id(text: str) -> bool:
    """An 18- or 15-character ID shape once full-width forms and spaces are normalised."""
    return bool(_ID_SHAPE.fullmatch(normal_form(text)))


def truth(summary: DemoSummary) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Ground truth, hard negatives and persons."""
    return (
        pd.read_parquet(summary.ground_truth),
        pd.read_parquet(summary.hard_negatives),
        pd.read_parquet(summary.persons_truth),
    )


def files_under(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` by relative path, with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
