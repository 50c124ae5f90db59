"""A department clerk with Excel or WPS only: the delivered xlsx opens with its password, IDs intact."""

from __future__ import annotations

import csv
import hashlib
import io

import pytest

from core.home import DataHome
from pipelines.cli import main
from publish import AuditLog, Warehouse
from publish.office import DATA_SHEET, README_SHEET, read_csv_zip, read_xlsx
from tests.publish.conftest import ZHANG, make_inputs, policy

pytestmark = pytest.mark.integration

CLERK = dict(name="civil_clerks", description="民政 救助科", kind="department", level="district",
             purpose="service_delivery", legal_basis="statutory", legal_reference="社会救助暂行办法",
             columns=["person_id", "name", "sex", "id_number", "phone", "lives_alone", "key_populations"],
             key_populations=["elderly_living_alone"], format="xlsx")


@pytest.fixture
def home(tmp_path, district):
    wh = Warehouse(tmp_path)
    wh.publish(wh.build_candidate(make_inputs(district), policy(CLERK)))
    return tmp_path


def _password(home, capsys) -> str:
    assert main(["product", "password", "civil_clerks", "--home", str(home)]) == 0
    return capsys.readouterr().out.split()[0]


def test_the_clerk_opens_the_workbook_with_its_password_and_the_id_is_text(home, capsys):
    path = DataHome.at(home).office_file("civil_clerks")
    assert path.read_bytes()[:8] == bytes.fromhex("d0cf11e0a1b11ae1")  # an encrypted Office file, not a zip
    workbook = read_xlsx(path, _password(home, capsys))  # decrypt as an office suite does, read with openpyxl
    rows = list(workbook[DATA_SHEET].iter_rows(values_only=True))
    assert rows[0] == ("人员编号", "姓名", "性别", "公民身份号码", "联系电话", "独居", "重点人群")
    zhang = next(r for r in rows[1:] if r[1] == "张伟")
    assert zhang[3] == ZHANG and isinstance(zhang[3], str)  # all 18 digits, as text
    assert workbook[DATA_SHEET].cell(row=rows.index(zhang) + 1, column=4).data_type == "s"
    assert zhang[2] == "男" and zhang[4] == "13800000001" and zhang[5] == "是" and zhang[6] == "独居老人"
    about = dict(list(workbook[README_SHEET].iter_rows(values_only=True))[1:])
    assert about["法律依据"] == "法定职责（社会救助暂行办法）" and about["记录数"] == len(rows) - 1  # a number
    assert about["接收方"] == "民政 救助科（接收方编号 civil_clerks）"  # the clerk's words first
    # What a column means where its name does not say (users audit: nothing said what 〔W…〕 or a blank was);
    # masking is explained only where this recipient's values are masked.
    assert about["列：人员编号"].startswith("同一居民") and about["列：重点人群"].startswith("按本区重点人群目录")
    assert "列：姓名" not in about and "列：联系电话" not in about
    assert about["用途"] == "服务提供"
    entry = AuditLog(home).entries()[-1]  # the entry recording this delivery, by the number the clerk quotes
    assert about["审计记录号"].startswith(f"{entry['seq']}（") and entry["recipient"] == "civil_clerks"


def test_a_wrong_password_opens_nothing_and_the_audit_log_holds_the_file(home, capsys):
    path = DataHome.at(home).office_file("civil_clerks")
    with pytest.raises(ValueError, match="wrong password"):
        read_xlsx(path, "12345678")
    assert ZHANG.encode() not in path.read_bytes() and "张伟".encode() not in path.read_bytes()
    entry = AuditLog(home).entries()[-1]
    assert entry["office_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert AuditLog(home).verify().ok


def test_read_out_writes_the_format_its_suffix_names_or_refuses(home, tmp_path, capsys):
    csv = tmp_path / "clerks.csv"
    assert main(["product", "read", "civil_clerks", "--home", str(home), "--out", str(csv)]) == 0
    data = csv.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and ZHANG.encode() in data  # UTF-8 with BOM, for Excel/WPS
    xlsx = tmp_path / "clerks.xlsx"
    assert main(["product", "read", "civil_clerks", "--home", str(home), "--out", str(xlsx)]) == 0
    assert xlsx.read_bytes()[:2] == b"PK"  # a plain workbook
    assert main(["product", "read", "civil_clerks", "--home", str(home), "--out", str(tmp_path / "x.txt")]) == 2
    assert "write .parquet, .csv" in capsys.readouterr().err
    from publish import office

    with pytest.MonkeyPatch.context() as patch:  # a product longer than a sheet: refused, with what to write instead
        patch.setattr(office, "_EXCEL_ROWS", 2)
        assert main(["product", "read", "civil_clerks", "--home", str(home), "--out", str(tmp_path / "long.xlsx")]) == 2
    assert "do not fit an Excel sheet" in (err := capsys.readouterr().err) and "write .csv or .parquet" in err
    assert not (tmp_path / "long.xlsx").exists()
    assert not (tmp_path / "x.txt").exists()
    # a mistyped query is an error message, not a traceback
    assert main(["product", "read", "civil_clerks", "--home", str(home), "--sql", "SELEC 1"]) == 2
    assert "the decrypted table is called product" in capsys.readouterr().err


CSV_CLERK = {**CLERK, "name": "justice_clerks", "format": "csv"}


def test_a_csv_recipient_gets_an_aes_zip_that_opens_with_the_same_password(tmp_path, district, capsys):
    wh = Warehouse(tmp_path)
    wh.publish(wh.build_candidate(make_inputs(district), policy(CSV_CLERK)))
    path = DataHome.at(tmp_path).office_file("justice_clerks", "csv")
    assert path.name == "justice_clerks.zip" and not DataHome.at(tmp_path).office_file("justice_clerks").exists()
    assert ZHANG.encode() not in path.read_bytes() and "张伟".encode("utf-8") not in path.read_bytes()
    with pytest.raises(ValueError, match="wrong password"):
        read_csv_zip(path, "12345678")
    assert main(["product", "password", "justice_clerks", "--home", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "justice_clerks.zip" in out
    data, readme = read_csv_zip(path, out.split()[0])  # as 7-Zip does: password, then the BOM CSV inside
    rows = list(csv.reader(io.StringIO(data)))
    assert rows[0] == ["人员编号", "姓名", "性别", "公民身份号码", "联系电话", "独居", "重点人群"]
    zhang = next(r for r in rows[1:] if r[1] == "张伟")
    assert zhang[3] == ZHANG and zhang[2] == "男" and zhang[5] == "是" and zhang[6] == "独居老人"
    assert "法定职责（社会救助暂行办法）" in readme and "文本" in readme  # how to keep the ID as text in Excel
    raw = path.read_bytes()  # AES-256, not the breakable ZipCrypto: method 99 and an AE extra field of strength 3
    assert raw[:4] == b"PK\x03\x04" and raw[8:10] == (99).to_bytes(2, "little")
    extra = raw.index(b"\x01\x99\x07\x00")  # header 0x9901, 7 bytes: version, "AE", strength, method
    assert raw[extra + 6:extra + 8] == b"AE" and raw[extra + 8] == 3
    assert AuditLog(tmp_path).entries()[-1]["office_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_text_a_spreadsheet_would_run_as_a_formula_stays_text(tmp_path):
    # a department's address field holding =HYPERLINK(...) must not become a live formula in a delivered file
    import pyarrow as pa

    from publish.office import read_csv_zip, read_xlsx, write_csv_zip, write_xlsx

    table = pa.table({"address": ['=HYPERLINK("http://x.example","点此")', "示范区翠苑社区1幢"], "phone": ["+86", "-1"]})
    # After a sign, only a plain number is left as it is (a staged address loses its spaces: -2+3+cmd|'/Ccalc'!A0).
    from publish.office import _csv_text

    for attack in ("-2+3+cmd|'/Ccalc'!A0", "+1+1", '-1+HYPERLINK("http://x")', "@SUM(A1)", "\t=1", "+86 138"):
        assert _csv_text(attack) == "'" + attack, attack
    for plain in ("+8613800138000", "-1.5", "-", "13800138000", "示范区-1号"):
        assert _csv_text(plain) == plain, plain
    write_xlsx(table, tmp_path / "a.xlsx", "P" * 20, {"接收方": "x"})
    cells = [(c.value, c.data_type) for row in read_xlsx(tmp_path / "a.xlsx", "P" * 20)["数据"].iter_rows(min_row=2)
             for c in row]
    assert ('=HYPERLINK("http://x.example","点此")', "s") in cells and all(kind == "s" for _, kind in cells)
    write_csv_zip(table, tmp_path / "a.zip", "P" * 20, {"接收方": "x"})
    data, _ = read_csv_zip(tmp_path / "a.zip", "P" * 20)
    lines = data.splitlines()
    assert lines[1].startswith("\"'=HYPERLINK") and lines[1].endswith(",+86"), lines  # +86 is a number, kept
    assert lines[2].endswith(",-1")


def test_the_password_derivation_is_kept_sealed_between_nights_and_each_workbook_still_opens(tmp_path, monkeypatch):
    """A recipient's 100,000-round password derivation is made once and kept, sealed with its product key:
    the next night's workbook is encrypted without deriving again and opens with the same password; a
    rotated product key or a damaged kept file derives afresh, never fails."""
    import os

    import pyarrow as pa
    from msoffcrypto.method.ecma376_agile import ECMA376Agile

    from publish import office
    from publish.office import KeptDerivation, office_password, write_xlsx

    # msoffcrypto derives through the hook, which derives with office._derive: counting it counts them all.
    assert ECMA376Agile._derive_iterated_hash_from_password is office._known_or_derived
    derivations = []
    derive = office._derive
    monkeypatch.setattr(office, "_derive", lambda *a: derivations.append(a[1]) or derive(*a))
    table = pa.table({"id_number": ["330106195001010012"], "name": ["张三"]})
    key = os.urandom(32)
    password = office_password(key)
    kept = KeptDerivation(tmp_path / "kept" / "grid_1.derivation", key, "grid_1")

    write_xlsx(table, tmp_path / "night1.xlsx", password, {"接收方": "网格员"}, kept=kept)
    assert len(derivations) == 1  # made once, and msoffcrypto did not make it again
    assert kept.path.stat().st_mode & 0o777 == 0o600
    assert kept.path.read_bytes().find(kept.load()[1]) == -1  # sealed, not the derivation in the clear
    write_xlsx(table, tmp_path / "night2.xlsx", password, {"接收方": "网格员"}, kept=kept)
    assert len(derivations) == 1  # the next night derives nothing
    first, second = ((tmp_path / n).read_bytes() for n in ("night1.xlsx", "night2.xlsx"))
    assert first != second  # each file its own file key and key-data salt

    rotated = os.urandom(32)
    assert KeptDerivation(kept.path, rotated, "grid_1").load() is None
    assert KeptDerivation(kept.path, key, "grid_2").load() is None  # sealed to its recipient too
    write_xlsx(table, tmp_path / "rotated.xlsx", office_password(rotated), {"接收方": "网格员"},
               kept=KeptDerivation(kept.path, rotated, "grid_1"))
    kept.path.write_bytes(b"damaged")
    write_xlsx(table, tmp_path / "damaged.xlsx", password, {"接收方": "网格员"}, kept=kept)
    assert len(derivations) == 3
    assert office._KNOWN == {}  # a derivation is held in memory only while its workbook is encrypted
    for name, words in (("night1", password), ("night2", password), ("rotated", office_password(rotated)),
                        ("damaged", password)):
        sheet = read_xlsx(tmp_path / f"{name}.xlsx", words)[DATA_SHEET]
        assert [c.value for c in next(sheet.iter_rows(min_row=2))] == ["330106195001010012", "张三"], name
    with pytest.raises(ValueError, match="wrong password"):
        read_xlsx(tmp_path / "night2.xlsx", office_password(rotated))


def test_a_derivation_that_cannot_be_kept_is_logged_and_the_workbook_still_written(tmp_path, caplog):
    import os

    import pyarrow as pa

    from publish.office import KeptDerivation, OfficeFile, office_password, write_xlsx

    (tmp_path / "kept").write_text("a file where the folder should be")
    key = os.urandom(32)
    kept = KeptDerivation(tmp_path / "kept" / "office" / "grid_1.derivation", key, "grid_1")
    # A note the writer returns (review: logged in a worker process, it reached no one), logged where the file is.
    notes = write_xlsx(pa.table({"name": ["张三"]}), tmp_path / "a.xlsx", office_password(key), {"接收方": "网格员"},
                       kept=kept)
    assert len(notes) == 1 and "grid_1" in notes[0] and "cannot be kept" in notes[0]
    OfficeFile("xlsx", pa.table({"name": ["张三"]}), tmp_path / "b.xlsx", office_password(key), {"接收方": "网格员"},
               kept=kept).write()
    assert "b.xlsx: the xlsx password derivation of grid_1 cannot be kept" in caplog.text
    assert kept.load() is None
    assert [c.value for c in next(read_xlsx(tmp_path / "a.xlsx", office_password(key))[DATA_SHEET].iter_rows(min_row=2))] == ["张三"]


def test_every_row_of_a_long_product_is_in_the_workbook_in_order(tmp_path):
    """Columns are sized from the first rows; the rows read to size them are written, and none after them is
    lost (the 201st row of every workbook longer than the sample was dropped: a grid worker missing a person)."""
    import pyarrow as pa

    from publish.office import _WIDTH_SAMPLE, read_xlsx, write_plain_xlsx, write_xlsx

    n = 2 * _WIDTH_SAMPLE + 50
    table = pa.table({"id_number": [f"33010619500101{i:04d}" for i in range(n)], "name": [f"住户{i}" for i in range(n)]})
    renewals = pa.table({"name": [f"续签{i}" for i in range(n)]})
    write_xlsx(table, tmp_path / "a.xlsx", "P" * 20, {"接收方": "网格员"}, extra={"待续同意": renewals})
    workbook = read_xlsx(tmp_path / "a.xlsx", "P" * 20)
    rows = list(workbook[DATA_SHEET].iter_rows(min_row=2, values_only=True))
    assert rows == list(zip(table["id_number"].to_pylist(), table["name"].to_pylist(), strict=True))
    assert [r[0] for r in workbook["待续同意"].iter_rows(min_row=2, values_only=True)] == renewals["name"].to_pylist()
    write_plain_xlsx(table, tmp_path / "plain.xlsx")
    import openpyxl

    plain = openpyxl.load_workbook(tmp_path / "plain.xlsx")[DATA_SHEET]
    assert [r[1] for r in plain.iter_rows(min_row=2, values_only=True)] == table["name"].to_pylist()


def test_no_part_of_a_workbook_is_written_in_the_clear_while_it_is_made(tmp_path, monkeypatch):
    """A workbook is made in memory and only its encrypted file written: nothing of a product lands in the system's
    temporary folder, where a process killed mid-way would leave it outside the restricted zone."""
    import tempfile

    import pyarrow as pa

    from publish import office

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    found: list[str] = []
    rows = office._rows

    def watched(*args, **kwargs):  # every row handed to the workbook: what lies in the temporary folder now?
        yield from rows(*args, **kwargs)
        found.extend(p.name for p in scratch.rglob("*") if p.is_file())

    monkeypatch.setattr(office, "_rows", watched)
    table = pa.table({"id_number": ["330106195001010012"] * 300, "name": ["张三"] * 300})
    office.write_xlsx(table, tmp_path / "a.xlsx", "P" * 20, {"接收方": "网格员"}, extra={"待续同意": table})
    office.write_plain_xlsx(table, tmp_path / "plain.xlsx")
    assert found == [] and not any(scratch.iterdir())
    assert len(list(office.read_xlsx(tmp_path / "a.xlsx", "P" * 20)[DATA_SHEET].iter_rows())) == 301


def test_dates_are_date_cells_and_a_product_too_long_for_a_sheet_is_refused(tmp_path, monkeypatch):
    import datetime as dt

    import pyarrow as pa

    from publish import office

    table = pa.table({"consent_until": pa.array([dt.date(2027, 3, 1), None], pa.date32()),
                      "status_at": pa.array([dt.datetime(2026, 12, 6, 8, 30), None], pa.timestamp("s")),
                      "age": [71, 5], "score": [float("nan"), float("inf")]})
    office.write_xlsx(table, tmp_path / "a.xlsx", "P" * 20, {"接收方": "网格员"})
    sheet = office.read_xlsx(tmp_path / "a.xlsx", "P" * 20)[DATA_SHEET]
    until, at, age, score = next(sheet.iter_rows(min_row=2))
    assert score.value is None  # a NaN (or an infinity) is an empty cell, never an error formula
    assert until.value == dt.datetime(2027, 3, 1) and until.number_format == "yyyy-mm-dd"
    assert at.value == dt.datetime(2026, 12, 6, 8, 30) and at.number_format == "yyyy-mm-dd hh:mm:ss"
    assert age.value == 71 and age.data_type == "n"
    assert [c.value for c in next(sheet.iter_rows(min_row=3))] == [None, None, 5, None]
    # A sheet holds 1,048,576 rows: a longer product is refused with the fix, never cut short silently.
    monkeypatch.setattr(office, "_EXCEL_ROWS", 2)
    with pytest.raises(ValueError, match="b.xlsx: 2 rows .* format: csv"):
        office.write_xlsx(table, tmp_path / "b.xlsx", "P" * 20, {"接收方": "网格员"})
    assert not (tmp_path / "b.xlsx").exists()


def test_a_text_longer_than_an_excel_cell_is_cut_marked_and_the_rest_of_its_row_written(tmp_path, caplog):
    """An Excel cell holds 32,767 characters: a longer text (a department's absurd address field) is cut and marked,
    with a warning, and the cells after it in its row are still written."""
    import pyarrow as pa

    from publish.office import _CUT_MARK, read_xlsx, write_xlsx

    table = pa.table({"address": ["翠" * 40_000, "😀" * 20_000, "示范区1号"], "name": ["张三", "李四", "王五"]})
    notes = write_xlsx(table, tmp_path / "a.xlsx", "P" * 20, {"接收方": "网格员"})
    sheet = read_xlsx(tmp_path / "a.xlsx", "P" * 20)[DATA_SHEET]
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert [r[1] for r in rows] == ["张三", "李四", "王五"]
    assert rows[0][0].endswith(_CUT_MARK) and rows[0][0].startswith("翠" * 1000) and len(rows[0][0]) == 32_767
    assert rows[1][0].endswith(_CUT_MARK) and len(rows[1][0].encode("utf-16-le")) // 2 <= 32_767
    assert rows[2][0] == "示范区1号"
    assert notes == [f"{DATA_SHEET}: 2 cell(s) longer than an Excel cell holds (32,767 characters) cut short and "
                     f"marked {_CUT_MARK}; the Parquet product holds them whole"]
    assert 408 <= sheet.row_dimensions[2].height <= 409  # as tall as Excel allows, not the 20,000 points its lines would take


def test_what_a_worker_process_cut_short_is_logged_by_the_run_itself(tmp_path, caplog):
    """Seen (re-check): with 8 files or more the workbooks are written in worker processes, whose log lines reached
    neither the run's summary nor its JSON. The notes come back with each file's digest and are logged here."""
    import logging

    import pyarrow as pa

    from publish.office import _PARALLEL_FROM, OfficeFile, write_office_files

    table = pa.table({"address": ["翠" * 40_000], "name": ["张三"]})
    files = [OfficeFile("xlsx", table, tmp_path / f"grid_{i}.xlsx", "P" * 20, {"接收方": "网格员"})
             for i in range(_PARALLEL_FROM)]
    with caplog.at_level(logging.WARNING, logger="publish.office"):
        digests = write_office_files(files)
    assert len(set(digests)) == len(files)
    logged = [r.getMessage() for r in caplog.records if r.name == "publish.office"]
    assert sorted(m.split(":", 1)[0] for m in logged) == sorted(f"grid_{i}.xlsx" for i in range(len(files)))
    assert all("1 cell(s) longer than an Excel cell holds" in m for m in logged)


def test_the_office_writers_import_publish_office_without_the_whole_package():
    """The processes that write a night's office files fork from one that imports publish.office: it must not pull
    in the warehouse, linking and quality (1.6 s on the night's path); the package's names still resolve."""
    import subprocess
    import sys

    probe = ("import sys, publish.office; print(sorted(m for m in ('publish.warehouse', 'publish.reader', 'dedup', "
             "'quality', 'openpyxl') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout == "[]\n"
    import publish

    assert publish.audit.AuditLog is publish.AuditLog and "Warehouse" in dir(publish)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        publish.nope  # noqa: B018


def test_the_list_prints_one_page_wide_with_its_header_on_every_page_and_whom_it_is_for(home, capsys):
    """A grid worker prints the list: 23 residents came out on 5 A4 pages, the warnings apart from the names."""
    sheet = read_xlsx(DataHome.at(home).office_file("civil_clerks"), _password(home, capsys))[DATA_SHEET]
    setup = sheet.page_setup
    assert (setup.orientation, str(setup.paperSize)) == ("landscape", "9")  # A4 landscape
    # One page wide (fitToWidth left out is its default, 1), as many pages down as it takes.
    assert sheet.sheet_properties.pageSetUpPr.fitToPage and setup.fitToWidth in (None, 1) and setup.fitToHeight == 0
    assert sheet.print_title_rows == "$1:$1"  # the header row on every printed page
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == f"A1:G{sheet.max_row}"
    assert sheet.oddHeader.center.text == "民政 救助科（接收方编号 civil_clerks）"
    assert "不得转发" in sheet.oddFooter.left.text and "&P" in sheet.oddFooter.right.text
    assert sheet["A1"].font.b  # the header row stands out


def test_whole_dates_kept_as_text_are_date_cells_and_a_long_text_wraps(tmp_path):
    import datetime as dt

    import pyarrow as pa

    from publish import office

    address = "示范区南山街道兰亭社区5栋2单元401室（东门进，右手第二个单元）"
    table = pa.table({"birth_date": ["1950-04-25", "1964-05", None, "1999-02-30"], "address": [address, "x", "y", "z"],
                      "name": ["张三", "李四", "王五", "赵六"]})
    office.write_xlsx(table, tmp_path / "a.xlsx", "P" * 20, {"接收方": "网格员 A&B"})
    sheet = office.read_xlsx(tmp_path / "a.xlsx", "P" * 20)[DATA_SHEET]
    born = [row[0] for row in sheet.iter_rows(min_row=2)]
    assert born[0].value == dt.datetime(1950, 4, 25) and born[0].number_format == "yyyy-mm-dd"
    assert born[0].alignment.vertical == "top" == sheet["C2"].alignment.vertical  # level with the row's wrapped text
    assert [(c.value, c.data_type) for c in born[1:]] == [("1964-05", "s"), (None, "n"), ("1999-02-30", "s")]
    assert sheet.column_dimensions["B"].width <= 29 and sheet["B2"].alignment.wrap_text  # wraps, not 60 wide
    assert not sheet["C2"].alignment.wrap_text
    # LibreOffice and WPS do not size a row to its wrapped text: it is written as tall as its lines.
    assert sheet.row_dimensions[2].height == 3 * 16 and sheet.row_dimensions[3].height is None
    assert sheet.oddHeader.center.text == "网格员 A&&B"  # a lone & would start a header code


def test_columns_fit_every_row_not_the_first_ones_and_the_header_colour_stops_at_the_last_column(tmp_path):
    """Seen (re-check): widths came from the first 200 rows, so a long name further down ran into 性别; the header's
    colour filled the whole row, one cell past the last column when printed; 说明 printed over three pages."""
    import pyarrow as pa

    from publish import office

    names = ["张三"] * 300 + ["米热古丽·阿不都热依木"]
    table = pa.table({"name": names, "sex": ["女"] * len(names)})
    office.write_xlsx(table, tmp_path / "a.xlsx", "P" * 20, {"接收方": "网格员", "注意": "很长的说明" * 30})
    book = office.read_xlsx(tmp_path / "a.xlsx", "P" * 20)
    sheet = book[DATA_SHEET]
    assert sheet.column_dimensions["A"].width >= office.display_width("米热古丽·阿不都热依木") + 2
    assert sheet["B1"].fill.fgColor.rgb.endswith("DDEBF7") and sheet["C1"].fill.fgColor.rgb.endswith("000000")
    readme = book[README_SHEET]
    assert readme.column_dimensions["B"].width <= 61 and readme["B3"].alignment.wrap_text  # wraps, a page wide
    assert readme.sheet_properties.pageSetUpPr.fitToPage and readme.row_dimensions[3].height > 16


def test_text_measures_count_a_rare_character_as_wide_each_line_of_a_cell_and_keep_header_codes_whole():
    """Review: a character GBK lacks (CJK Extension B, an emoji) counted one unit; a cell's line breaks were not
    lines; cutting a page header after doubling its & could leave one lone & (a header code)."""
    from publish import office

    assert office.display_width("王𠀀") == office.display_width("王㐀") == 4 and office.display_width("😀") == 2
    assert office._lines("一\n二\n三\n" + "四" * 14, office._WRAP_WIDTH) == 5
    header = office._header_text("甲" * 99 + "&乙")
    assert header.endswith("&&") and header.count("&") % 2 == 0


def test_a_date_before_1900_is_written_as_text_not_as_a_broken_date_cell(tmp_path):
    """Review: Excel's dates begin in 1900; 1899-12-31 showed as 1900-01-00, 1800-01-01 as ######."""
    import datetime as dt

    import pyarrow as pa

    from publish import office

    table = pa.table({"last_seen": pa.array([dt.date(1899, 12, 31), dt.date(2026, 1, 2)], pa.date32()),
                      "status_at": pa.array([dt.datetime(1800, 1, 1, 8), dt.datetime(2026, 1, 2, 8)], pa.timestamp("s")),
                      "birth_date": ["1899-12-31", "1950-04-25"]})
    office.write_xlsx(table, tmp_path / "a.xlsx", "P" * 20, {"接收方": "网格员"})
    early, late = office.read_xlsx(tmp_path / "a.xlsx", "P" * 20)[DATA_SHEET].iter_rows(min_row=2)
    assert [(c.value, c.data_type) for c in early] == [("1899-12-31", "s"), ("1800-01-01T08:00:00", "s"),
                                                        ("1899-12-31", "s")]
    assert [c.value for c in late] == [dt.datetime(2026, 1, 2), dt.datetime(2026, 1, 2, 8), dt.datetime(1950, 4, 25)]


def test_a_time_zone_aware_time_is_written_in_beijing_time(tmp_path):
    """Seen: `product read --out x.xlsx` of a table with a time-zone-aware column stopped with XlsxWriter's
    "Excel doesn't support timezones in datetimes". A clerk reads the time as the district's clock shows it."""
    import datetime as dt

    import pyarrow as pa

    from publish import office

    utc = pa.array([dt.datetime(2026, 1, 2, 18, 30, tzinfo=dt.UTC), None], pa.timestamp("us", tz="UTC"))
    office.write_plain_xlsx(pa.table({"decided_at": utc}), tmp_path / "a.xlsx")
    import openpyxl

    cells = [row[0] for row in openpyxl.load_workbook(tmp_path / "a.xlsx")[DATA_SHEET].iter_rows(min_row=2)]
    assert [c.value for c in cells] == [dt.datetime(2026, 1, 3, 2, 30)]  # (the empty row's cell is not written)
    assert cells[0].number_format == "yyyy-mm-dd hh:mm:ss"
