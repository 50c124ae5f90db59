"""Products a department clerk opens in Excel or WPS: a password-protected xlsx beside the Parquet file.

A recipient with ``format: xlsx`` in ``policy.yaml`` also receives ``<recipient>.xlsx``: the same
rows, Chinese column headers (:data:`core.vocabulary.FIELD_LABELS`), every identifier and phone
number as a *text* cell (an 18-digit ID written as a number loses its last digits in Excel), key
populations in Chinese (:data:`core.vocabulary.KEY_POPULATION_LABELS`), yes/no as 是/否, and a
说明 sheet with who the data is for, its purpose and legal basis and the run. The workbook is
encrypted with the standard Office password protection (OOXML agile encryption, AES-256, written by
``msoffcrypto-tool``), which Excel, WPS and LibreOffice open after asking for the password.

The password is derived from the recipient's product key (HMAC-SHA256, 20 characters of base32),
so it changes when the key is rotated (``silobreaker keys rotate``) and the platform never stores
it anywhere else; ``silobreaker product password <recipient>`` prints it for delivery out of band.
The Parquet product stays the canonical one (anchored in the audit log, read by Python and DuckDB
recipients); the xlsx's SHA-256 is recorded in the same audit entry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
from collections.abc import Mapping
from pathlib import Path

import msoffcrypto
import openpyxl
import pyarrow as pa
from msoffcrypto.format.ooxml import OOXMLFile

from core.vocabulary import FIELD_LABELS, KEY_POPULATION_LABELS, SEX_LABELS

__all__ = ["DATA_SHEET", "README_SHEET", "office_password", "read_xlsx", "write_plain_xlsx", "write_xlsx"]

DATA_SHEET = "数据"
README_SHEET = "说明"
_PASSWORD_CONTEXT = b"silobreaker office password v1"


def office_password(product_key: bytes) -> str:
    """The xlsx password of a recipient: 20 base32 characters keyed by its product key (100 bits)."""
    digest = hmac.new(product_key, _PASSWORD_CONTEXT, hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii")[:20]


def _cell(value: object, column: str = "") -> object:
    """A value as a cell: text stays text (IDs, phones), lists are joined, booleans are 是/否, sex 男/女."""
    if value is None:
        return None
    if column == "sex":
        return SEX_LABELS.get(str(value), value)
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list | tuple):
        return "、".join(KEY_POPULATION_LABELS.get(str(v), str(v)) for v in value)
    return value


def _workbook(table: pa.Table, about: Mapping[str, str] | None) -> io.BytesIO:
    workbook = openpyxl.Workbook(write_only=True)
    data = workbook.create_sheet(DATA_SHEET)
    data.append([FIELD_LABELS.get(name, name) for name in table.column_names])
    text_columns = {i for i, field in enumerate(table.schema)
                    if pa.types.is_string(field.type) or pa.types.is_large_string(field.type)}
    for row in table.to_pylist():
        # openpyxl writes a str as a shared string: Excel shows and keeps it as text, all 18 digits.
        data.append([str(_cell(v, name)) if i in text_columns and v is not None else _cell(v, name)
                     for i, (name, v) in enumerate(row.items())])
    if about:
        readme = workbook.create_sheet(README_SHEET)
        readme.append(["项目", "内容"])
        for label, text in about.items():
            readme.append([label, text])
    plain = io.BytesIO()
    workbook.save(plain)
    plain.seek(0)
    return plain


def write_xlsx(table: pa.Table, path: Path, password: str, about: Mapping[str, str]) -> None:
    """Write ``table`` as a password-protected xlsx at ``path``.

    Args:
        table: the product's rows.
        path: the file to write.
        password: the workbook password (:func:`office_password`).
        about: rows of the 说明 sheet, label → text (recipient, purpose, legal basis, run …).
    """
    with open(path, "wb") as out:
        OOXMLFile(_workbook(table, about)).encrypt(password, out)


def write_plain_xlsx(table: pa.Table, path: Path) -> None:
    """Write ``table`` as an xlsx without a password (a recipient's own copy, inside its zone)."""
    Path(path).write_bytes(_workbook(table, None).getvalue())


def read_xlsx(path: str | Path, password: str) -> openpyxl.Workbook:
    """Open a delivered xlsx the way an office suite does: decrypt with the password, then read.

    Raises:
        ValueError: the password is wrong.
    """
    with open(path, "rb") as f:
        office = msoffcrypto.OfficeFile(f)
        office.load_key(password=password)
        plain = io.BytesIO()
        try:
            office.decrypt(plain)
        except msoffcrypto.exceptions.InvalidKeyError as e:
            raise ValueError(f"wrong password for {path}") from e
    plain.seek(0)
    return openpyxl.load_workbook(plain)

