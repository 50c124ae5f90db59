"""Products a department clerk opens in Excel or WPS: a password-protected xlsx (or an AES zip of a
CSV) beside the Parquet file.

A recipient with ``format: xlsx`` in ``policy.yaml`` also receives ``<recipient>.xlsx``: the same
rows, Chinese column headers (:data:`core.vocabulary.FIELD_LABELS`), every identifier and phone
number as a *text* cell (an 18-digit ID written as a number loses its last digits in Excel), key
populations in Chinese (their labels in ``populations.yaml``), yes/no as 是/否, and a
说明 sheet with who the data is for, its purpose and legal basis and the run. The workbook is
encrypted with the standard Office password protection (OOXML agile encryption, AES-256, written by
``msoffcrypto-tool``), which Excel, WPS and LibreOffice open after asking for the password.

A recipient with ``format: csv`` receives ``<recipient>.zip`` instead: the same rows and headers as
``<recipient>.csv`` (UTF-8 with a byte-order mark, so Excel and WPS read the Chinese) and a
``说明.txt``, in a zip encrypted with AES-256 (WinZip AE-2, written by ``pyzipper``), which 7-Zip,
WinRAR and Bandizip open after asking for the password. A CSV keeps no cell types: the 说明 says how to
import it in Excel with the ID column as text (a double-clicked CSV turns an 18-digit ID into a number
and loses its last digits), and a clerk who only double-clicks should get ``format: xlsx``.

The password is derived from the recipient's product key (HMAC-SHA256, 20 characters of base32),
so it changes when the key is rotated (``silobreaker keys rotate``) and the platform never stores
it anywhere else; ``silobreaker product password <recipient>`` prints it for delivery out of band.
The Parquet product stays the canonical one (anchored in the audit log, read by Python and DuckDB
recipients); the xlsx's SHA-256 is recorded in the same audit entry.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import logging
import math
import multiprocessing
import os
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import msoffcrypto
import pyarrow as pa
import pyzipper
import xlsxwriter
from msoffcrypto.method.ecma376_agile import ECMA376Agile

from core.threads import usable_cores
from core.vocabulary import (
    DISTRICT_TIME_ZONE,
    FIELD_LABELS,
    RESIDENCE_STATUS_LABELS,
    RESIDENCE_TYPE_LABELS,
    SEX_LABELS,
    display_width,
)
from publish.crypto import LocalKmsClient
from publish.populations import default_populations

if TYPE_CHECKING:
    import openpyxl

__all__ = [
    "CSV_README",
    "DATA_SHEET",
    "KeptDerivation",
    "README_SHEET",
    "OfficeFile",
    "SheetTooLong",
    "office_password",
    "read_csv_zip",
    "read_xlsx",
    "write_csv_zip",
    "write_office_files",
    "write_plain_xlsx",
    "write_xlsx",
]

DATA_SHEET = "数据"
README_SHEET = "说明"
CSV_README = "说明.txt"
_CSV_IMPORT_HINT = ("用 Excel 打开时请勿直接双击：依次点 数据 → 从文本/CSV，选中本文件，把公民身份号码、联系电话等列的"
                    "数据类型设为“文本”后再加载，否则18位号码的后几位会丢失。WPS：数据 → 导入数据，同样把这些列设为文本。")
_PASSWORD_CONTEXT = b"silobreaker office password v1"
log = logging.getLogger(__name__)


def office_password(product_key: bytes) -> str:
    """The xlsx password of a recipient: 20 base32 characters keyed by its product key (100 bits)."""
    digest = hmac.new(product_key, _PASSWORD_CONTEXT, hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii")[:20]


_CODE_LABELS = {"sex": SEX_LABELS, "residence_status": RESIDENCE_STATUS_LABELS, "residence_type": RESIDENCE_TYPE_LABELS}


def _cell(value: object, column: str = "", labels: Mapping[str, str] | None = None) -> object:
    """A value as a cell: text stays text (IDs, phones), lists are joined (key populations by their
    Chinese ``labels``), booleans are 是/否, sex 男/女, residence status and type in Chinese."""
    if value is None:
        return None
    if column in _CODE_LABELS:
        return _CODE_LABELS[column].get(str(value), value)
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list | tuple):
        return "、".join((labels or {}).get(str(v), str(v)) for v in value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        # A cell holds no time zone (XlsxWriter refuses one): the time as the district's clock shows it.
        value = value.astimezone(ZoneInfo(DISTRICT_TIME_ZONE)).replace(tzinfo=None)
    if isinstance(value, date) and value.year < _EXCEL_FIRST_YEAR:
        return value.isoformat()  # Excel's dates begin in 1900: an earlier one would be a broken cell, so it is text
    return value


_EXCEL_FIRST_YEAR = 1900
_BATCH_ROWS = 10_000


def _rows(table: pa.Table, labels: Mapping[str, str] | None):
    """The header (Chinese) and every row as cells: text columns as ``str``, whatever their content, but for
    a whole date in a column of dates kept as text (:data:`_DATES_AS_TEXT`), which is a date cell a clerk can
    filter and count years from (a date known to the month or year only stays text: ``1964-05``)."""
    labels = default_populations().labels if labels is None else labels
    yield [FIELD_LABELS.get(name, name) for name in table.column_names]
    text_columns = {i for i, field in enumerate(table.schema)
                    if pa.types.is_string(field.type) or pa.types.is_large_string(field.type)}
    dates = {i for i in text_columns if table.column_names[i] in _DATES_AS_TEXT}
    for row in (row for batch in table.to_batches(_BATCH_ROWS) for row in batch.to_pylist()):  # not every row at once
        yield [_date_or_text(v) if i in dates and v is not None
               else str(_cell(v, name, labels)) if i in text_columns and v is not None else _cell(v, name, labels)
               for i, (name, v) in enumerate(row.items())]


#: Product columns of dates kept as text, since a source may know one to the month or year only.
_DATES_AS_TEXT = frozenset({"birth_date"})


def _date_or_text(value: str) -> date | str:
    try:
        day = date.fromisoformat(value) if len(value) == 10 else None
    except ValueError:
        return value
    return day if day is not None and day.year >= _EXCEL_FIRST_YEAR else value


def _workbook(table: pa.Table, about: Mapping[str, str | int] | None, labels: Mapping[str, str] | None,
              extra: Mapping[str, pa.Table] | None = None) -> tuple[io.BytesIO, list[str]]:
    """The workbook in memory, and what writing it had to cut short (one note per sheet, for the log)."""
    plain = io.BytesIO()
    # Made in memory: no part of the workbook is written anywhere in the clear (openpyxl's write-only mode wrote
    # each sheet to a file in the system's temporary folder until it saved). Every str is written as a string
    # cell, so an 18-digit ID stays text and a department's "=HYPERLINK(...)" is never a formula.
    workbook = xlsxwriter.Workbook(plain, {
        "in_memory": True, "strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False,
        # every cell at the top of its row, level with the wrapped text beside it (dates too: their format is made
        # on these properties)
        "default_date_format": "yyyy-mm-dd", "default_format_properties": {"valign": "top"}})
    formats = _Formats(workbook)
    recipient = str((about or {}).get("接收方") or "")
    notes = [note for name, rows in {DATA_SHEET: table, **(extra or {})}.items()
             if (note := _sheet(workbook.add_worksheet(name), name, rows, labels, formats, recipient))]
    if about:
        readme = workbook.add_worksheet(README_SHEET)
        lines = [["项目", "内容"], *([label, text] for label, text in about.items())]
        label_width = _widths(lines)[0]
        readme.set_column(0, 0, label_width)
        readme.set_column(1, 1, _README_WIDTH, formats.wrapped)
        readme.write_row(0, 0, lines[0], formats.heading)
        for r, line in enumerate(lines[1:], start=1):
            readme.write_row(r, 0, line)
            if (height := _height(_lines(line[1], _README_WIDTH))) is not None:
                readme.set_row(r, height)
        readme.set_paper(9)
        readme.fit_to_pages(1, 0)
    workbook.close()
    plain.seek(0)
    return plain, notes


class _Formats:
    """The cell formats a workbook's sheets share."""

    def __init__(self, workbook: xlsxwriter.Workbook) -> None:
        self.stamp = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self.wrapped = workbook.add_format({"text_wrap": True})
        self.heading = workbook.add_format({"bold": True, "text_wrap": True, "bg_color": "#DDEBF7", "border": 1})


def _sheet(sheet, name: str, rows: pa.Table, labels: Mapping[str, str] | None, formats: _Formats,
           recipient: str) -> str | None:
    """Write ``rows`` into ``sheet``, set up for the screen and for print; a note of what was cut short, if any."""
    if rows.num_rows > _EXCEL_ROWS - 1:
        raise SheetTooLong(name, rows.num_rows)
    cells = _rows(rows, labels)
    head = [next(cells), *islice(cells, _WIDTH_SAMPLE)]
    # Columns as wide as their text (a CJK character is two), so a clerk reads 住址 without dragging; a longer text
    # (an address, a warning) wraps in a column :data:`_WRAP_WIDTH` wide, so a row prints on one page's width.
    # Widths are those of every row, found while writing (column formats are written when the workbook closes).
    widths = _widths(head)
    _for_print(sheet, len(head[0]), rows.num_rows, recipient)
    stamps = [i for i, field in enumerate(rows.schema) if pa.types.is_timestamp(field.type)]
    cut = 0
    for r, row in enumerate(chain(head, cells)):
        if any(_unfit(v) for v in row):
            row, n = _fitted(row)
            cut += n
        # XlsxWriter stops writing a row at a cell it cannot write: never a row cut short in silence.
        if error := sheet.write_row(r, 0, row, formats.heading if r == 0 else None):
            raise ValueError(f"{name}: row {r + 1} could not be written whole (XlsxWriter error {error})")
        lines = 1
        for i, value in enumerate(row):
            # 2 units a character bounds a text's width: only a text that may be wide is measured
            if isinstance(value, str) and 2 * len(value) + 2 > min(widths[i], _WRAP_WIDTH):
                widths[i] = max(widths[i], min(60.0, display_width(value) + 2))
                lines = max(lines, _lines(value, _WRAP_WIDTH))
        # As tall as its wrapped text: Excel sizes such a row when it opens the file, LibreOffice and WPS do not.
        if (height := _height(lines)) is not None:
            sheet.set_row(r, height)
        for i in stamps if r else ():
            if isinstance(row[i], date):  # (an early one is text, _cell)
                sheet.write_datetime(r, i, row[i], formats.stamp)
    for i, width in enumerate(widths):
        sheet.set_column(i, i, min(width, _WRAP_WIDTH), formats.wrapped if width > _WRAP_WIDTH else None)
    if cut:
        return (f"{name}: {cut} cell(s) longer than an Excel cell holds (32,767 characters) cut short and marked "
                f"{_CUT_MARK}; the Parquet product holds them whole")
    return None


_EXCEL_ROWS = 1_048_576  # the rows of an Excel or WPS sheet
_WRAP_WIDTH = 28  # a column of longer text wraps at this width (Excel character units)
_README_WIDTH = 60  # the 说明 sheet's 内容 column, wrapped
_LINE_POINTS = 16  # the height of a line of wrapped text (a CJK line in the default font is ~15.6 points)
_ROW_POINTS = 409  # the tallest row Excel allows


def _lines(value: object, width: int) -> int:
    """The lines ``value`` takes in a wrapped column ``width`` units wide (each of its own lines at least one)."""
    return 1 if value is None else sum(max(1, -(-display_width(line) // (width - 2))) for line in str(value).split("\n"))


def _height(lines: int) -> float | None:
    """A row's height for ``lines`` of wrapped text (at most Excel's largest), or ``None``: one line needs none set."""
    return min(_LINE_POINTS * lines, _ROW_POINTS) if lines > 1 else None


def _for_print(sheet, columns: int, rows: int, recipient: str) -> None:
    """What a printed list needs: A4 landscape, every column on one page's width (as many pages down as it
    takes), the header row on every page, whom the list is for at the top and the care it asks for and the
    page number at the foot; on screen the header stays in view and each column filters."""
    sheet.set_paper(9)  # A4
    sheet.set_landscape()
    sheet.fit_to_pages(1, 0)
    sheet.repeat_rows(0)
    sheet.freeze_panes(1, 0)
    if columns:
        sheet.autofilter(0, 0, rows, columns - 1)
    if recipient:
        sheet.set_header(f"&C{_header_text(recipient)}")
    sheet.set_footer("&L仅限所列用途，不得转发、复制&R第 &P 页，共 &N 页")


def _header_text(text: str) -> str:
    """``text`` as a page header's words: cut to fit, then ``&`` doubled (a single one starts a header code)."""
    return text[:100].replace("&", "&&")


class SheetTooLong(ValueError):
    """A product with more rows than an Excel or WPS sheet holds: refused, never cut short."""

    def __init__(self, sheet: str, rows: int) -> None:
        self.sheet, self.rows = sheet, rows
        super().__init__(f"{rows:,} rows do not fit an Excel sheet ({sheet}: at most {_EXCEL_ROWS - 1:,} under its "
                         "header); deliver this product with format: csv")


_CELL_TEXT = 32_767  # the UTF-16 units an Excel cell holds
_CUT_MARK = "…（超长已截断）"


def _unfit(value: object) -> bool:
    """A value a cell cannot hold as it is: a text that may be longer than a cell holds, a NaN or an infinity."""
    return (isinstance(value, str) and len(value) > _CELL_TEXT // 2) or (isinstance(value, float) and not math.isfinite(value))


def _fitted(row: list[object]) -> tuple[list[object], int]:
    """``row`` with every text longer than an Excel cell holds cut to fit, marked :data:`_CUT_MARK` (how many: the
    second value), and NaN or infinity left empty, as the Parquet product's readers show a missing number (an
    error cell would be a formula in the file)."""
    out, cut = [], 0
    for value in row:
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        elif isinstance(value, str) and len(value.encode("utf-16-le")) // 2 > _CELL_TEXT:
            keep = _CELL_TEXT - len(_CUT_MARK)
            while len(value[:keep].encode("utf-16-le")) // 2 > keep:  # a character outside the BMP is two units
                keep -= 1
            value, cut = value[:keep] + _CUT_MARK, cut + 1
        out.append(value)
    return out, cut


_WIDTH_SAMPLE = 200  # rows read to size the columns


# A formula starts with = @ TAB CR, or + or -: a plain signed number (+86, -1.5) or a lone sign is left as it is, and
# anything else after a sign is guarded (-2+3+cmd|' /C calc'!A0 runs in Excel).
_FORMULA_START = re.compile(r"^(?:[=@\t\r]|[+-](?!(?:[0-9]+(?:\.[0-9]+)?)?$))")


def _csv_text(value: object) -> object:
    """A CSV value that a spreadsheet would run as a formula, quoted with a leading apostrophe (OWASP)."""
    return "'" + value if isinstance(value, str) and _FORMULA_START.match(value) else value


def _widths(rows: list[list[object]]) -> list[float]:
    """Column widths (Excel character units) fitting the text of ``rows``, 6 to 60."""
    widths: list[float] = []
    for row in rows:
        for i, value in enumerate(row):
            size = display_width("" if value is None else str(value)) + 2
            if i == len(widths):
                widths.append(size)
            else:
                widths[i] = max(widths[i], size)
    return [min(60.0, max(6.0, w)) for w in widths]


def write_xlsx(table: pa.Table, path: Path, password: str, about: Mapping[str, str | int],
               labels: Mapping[str, str] | None = None, extra: Mapping[str, pa.Table] | None = None,
               kept: KeptDerivation | None = None) -> list[str]:
    """Write ``table`` as a password-protected xlsx at ``path``; what had to be cut short to fit (notes to log).

    Args:
        table: the product's rows.
        path: the file to write.
        password: the workbook password (:func:`office_password`).
        about: rows of the 说明 sheet, label → text (recipient, purpose, legal basis, run …).
        labels: key-population code → Chinese label (default: the default categories').
        extra: more sheets after the data, name → rows (a grid worker's 待续同意 renewal list).
        kept: where the password's key derivation is kept between nights (:class:`KeptDerivation`);
            ``None``: derived afresh under a new salt.
    """
    try:
        plain, notes = _workbook(table, about, labels, extra)
    except ValueError as e:  # a sheet too long, a row that could not be written: named with its file
        raise ValueError(f"{Path(path).name}: {e}") from e
    salt, derived = (kept.load() if kept else None) or (os.urandom(_SALT_BYTES), None)
    if derived is None:
        derived = _derive(password, salt, _HASH, _SPIN_COUNT).digest()
        if kept and (note := kept.save(salt, derived)):
            notes.append(note)
    _KNOWN[(password, salt)] = derived
    try:
        encrypted = ECMA376Agile.encrypt(password, plain, salt_value=salt, spin_count=_SPIN_COUNT)
    finally:
        del _KNOWN[(password, salt)]
    Path(path).write_bytes(encrypted)
    return notes


#: The password protection Excel writes (ECMA-376 agile): SHA-512, 100,000 rounds, a 16-byte salt.
_HASH, _SPIN_COUNT, _SALT_BYTES = "SHA512", 100_000, 16
_derive = ECMA376Agile._derive_iterated_hash_from_password
_KNOWN: dict[tuple[str, bytes], bytes] = {}  # (password, salt) → derivation, while a workbook is encrypted with it


class _Derived:
    """A derivation already made, in the shape msoffcrypto's own returns (a hash object's ``digest()``)."""

    def __init__(self, digest: bytes) -> None:
        self._digest = digest

    def digest(self) -> bytes:
        return self._digest


def _known_or_derived(password: str, salt: bytes, algorithm: str, spins: int):
    known = _KNOWN.get((password, bytes(salt))) if (algorithm, spins) == (_HASH, _SPIN_COUNT) else None
    return _Derived(known) if known is not None else _derive(password, salt, algorithm, spins)


# msoffcrypto derives the password's key (100,000 SHA-512 rounds, ~0.06-0.1 s of Python) inside its encrypt
# with no way to hand it one already made; this hook hands it the kept one and otherwise derives as before.
ECMA376Agile._derive_iterated_hash_from_password = staticmethod(_known_or_derived)


@dataclass(frozen=True)
class KeptDerivation:
    """A recipient's xlsx password derivation kept between nights, sealed with its product key.

    The standard protection derives the file key from the password and a salt with 100,000 SHA-512 rounds;
    a district with 200 grids would spend those rounds 200 times a night for passwords that do not change.
    The salt and the derivation are kept in ``path`` (``<home>/kept/office``), encrypted (AES-256-GCM)
    under a key derived from the recipient's product key, so reading them takes the product key that the
    password itself derives from: nothing is readable that was not before. Each workbook still gets its
    own random file key, key-data salt and verifier; only the password's salt is the same from night to
    night, as the password is. A rotated key cannot open the kept derivation (a new one is made), nor can
    a damaged file (made anew, never an error)."""

    path: Path
    product_key: bytes
    recipient: str

    def load(self) -> tuple[bytes, bytes] | None:
        """The kept salt and derivation, or ``None`` when there is none this product key opens."""
        try:
            opened = self._sealing().unwrap_key(self.path.read_text(encoding="ascii"), self.recipient)
        except (OSError, ValueError):  # none yet, another key's, or damaged
            return None
        return (opened[:_SALT_BYTES], opened[_SALT_BYTES:]) if len(opened) == _SALT_BYTES + 64 else None

    def save(self, salt: bytes, derived: bytes) -> str | None:
        """Keep ``salt`` and ``derived`` for the next night (written whole, then renamed into place); a file
        that cannot be written is a note to log (returned: this may be a worker process), and the next night
        derives again."""
        partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.part")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(self._sealing().wrap_key(salt + derived, self.recipient), encoding="ascii")
            os.chmod(partial, 0o600)
            os.replace(partial, self.path)
        except OSError as e:
            return f"the xlsx password derivation of {self.recipient} cannot be kept for the next night ({e})"
        return None

    def _sealing(self) -> LocalKmsClient:
        # A key of its own, derived from the product key: never the key that wraps the products' data keys.
        return LocalKmsClient({self.recipient: hmac.new(self.product_key, _KEPT_CONTEXT, hashlib.sha256).digest()})


_KEPT_CONTEXT = b"silobreaker kept office derivation v1"


def write_plain_xlsx(table: pa.Table, path: Path, labels: Mapping[str, str] | None = None) -> None:
    """Write ``table`` as an xlsx without a password (a recipient's own copy, inside its zone)."""
    plain, notes = _workbook(table, None, labels)
    Path(path).write_bytes(plain.getvalue())
    for note in notes:
        log.warning("%s: %s", Path(path).name, note)


def write_csv_zip(table: pa.Table, path: Path, password: str, about: Mapping[str, str | int],
                  labels: Mapping[str, str] | None = None, extra: Mapping[str, pa.Table] | None = None) -> None:
    """Write ``table`` as ``<stem>.csv`` (UTF-8 with BOM) and a ``说明.txt`` in an AES-256 zip at ``path``.

    Args:
        table: the product's rows.
        path: the zip to write; the CSV inside is named after it (``civil_clerks.zip`` holds ``civil_clerks.csv``).
        password: the zip password (:func:`office_password`).
        about: the 说明, label → text (recipient, purpose, legal basis, run …).
        labels: key-population code → Chinese label (default: the default categories').
        extra: more CSVs in the zip, name → rows, as ``<name>.csv`` after the data (a 待续同意 renewal list).
    """
    readme = "".join(f"{label}：{value}\r\n" for label, value in {**about, "用Excel打开": _CSV_IMPORT_HINT}.items())
    with pyzipper.AESZipFile(path, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES) as archive:
        archive.setpassword(password.encode("ascii"))
        archive.setencryption(pyzipper.WZ_AES, nbits=256)
        # Names are UTF-8 (the zip's language flag is set for non-ASCII names), as 7-Zip and WinRAR read them.
        archive.writestr(f"{Path(path).stem}.csv", "\ufeff" + _csv(table, labels))
        archive.writestr(CSV_README, "\ufeff" + readme)
        for name, rows in (extra or {}).items():
            archive.writestr(f"{name}.csv", "\ufeff" + _csv(rows, labels))


def _csv(table: pa.Table, labels: Mapping[str, str] | None) -> str:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    for row in _rows(table, labels):
        writer.writerow(["" if v is None else _csv_text(v) for v in row])
    return text.getvalue()


def read_csv_zip(path: str | Path, password: str) -> tuple[str, str]:
    """Open a delivered zip as 7-Zip does: the CSV's text and the 说明's, BOM removed.

    Raises:
        ValueError: the password is wrong.
    """
    with pyzipper.AESZipFile(path) as archive:
        archive.setpassword(password.encode("ascii"))
        names = archive.namelist()
        data_name = next(n for n in names if n.endswith(".csv"))
        try:
            data, readme = archive.read(data_name), archive.read(CSV_README)
        except RuntimeError as e:  # pyzipper's "Bad password for file"
            raise ValueError(f"wrong password for {path}") from e
    return data.decode("utf-8-sig"), readme.decode("utf-8-sig")


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
    import openpyxl  # only here: the processes that write workbooks never read one

    return openpyxl.load_workbook(plain)



@dataclass(frozen=True)
class OfficeFile:
    """One password-protected file to write: a product's rows as ``xlsx`` or ``csv`` (zip)."""

    format: str
    table: pa.Table
    path: Path
    password: str
    about: Mapping[str, str | int]
    labels: Mapping[str, str] | None = None
    extra: Mapping[str, pa.Table] | None = None
    kept: KeptDerivation | None = None

    def write(self) -> str:
        """Write the file, logging what had to be cut short; its SHA-256."""
        digest, notes = self.written()
        self.log(notes)
        return digest

    def written(self) -> tuple[str, list[str]]:
        """Write the file; its SHA-256 and what had to be cut short, for the process that logs (a worker's log
        lines reach no one: the run's summary keeps the warnings of its own process)."""
        notes = []
        if self.format == "xlsx":
            notes = write_xlsx(self.table, self.path, self.password, self.about, self.labels, extra=self.extra,
                               kept=self.kept)
        else:
            write_csv_zip(self.table, self.path, self.password, self.about, self.labels, extra=self.extra)
        return hashlib.sha256(self.path.read_bytes()).hexdigest(), notes

    def log(self, notes: Sequence[str]) -> None:
        for note in notes:
            log.warning("%s: %s", self.path.name, note)


#: From this many files on they are written by a process per core: an xlsx's password protection
#: derives its key with 100,000 SHA-512 rounds (the standard spin count Excel writes), ~0.1 s of pure
#: Python each, and a district with 200 grids delivers 200 workbooks a night.
_PARALLEL_FROM = 8


def write_office_files(files: Sequence[OfficeFile]) -> list[str]:
    """Write every file, in parallel when there are many; their SHA-256 in order."""
    workers = min(usable_cores(), len(files))
    if len(files) < _PARALLEL_FROM or workers < 2:
        return [f.write() for f in files]
    # forkserver, not fork: the caller may be a Dagster run with threads (a lock a thread holds at the fork
    # stays locked in the child). The server imports this module once; each worker forks from it.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        written = list(pool.map(OfficeFile.written, files, chunksize=max(1, len(files) // (workers * 4))))
    for file, (_, notes) in zip(files, written, strict=True):
        file.log(notes)  # here, where the run's summary keeps them
    return [digest for digest, _ in written]
