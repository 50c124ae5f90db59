"""CSV sources as departments send them: UTF-8 (with or without BOM), GBK and GB18030."""

from __future__ import annotations

import codecs
import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest

from connectors import Lineage, detect_encoding, read_source
from core.errors import SourceError

pytestmark = pytest.mark.integration

# 䶮 (CJK extension A, as in 刘䶮) exists in GB18030 but not in GBK.
ROWS = "编号, 姓名 ,身份证号,电话\n0012,张三,11010119900307777X,\n0013,刘䶮,,13800138000\n"
GBK_ROWS = ROWS.replace("刘䶮", "李四")


def csv_source(make_source, **overrides):
    fields = {"kind": "csv", "path": "visits.csv", "columns": {"name": "姓名", "id_number": "身份证号"}}
    return make_source(**{**fields, **overrides})


@pytest.mark.parametrize(
    ("raw", "detected", "second_name"),
    [
        (ROWS.encode("utf-8"), "utf-8", "刘䶮"),
        (codecs.BOM_UTF8 + ROWS.encode("utf-8"), "utf-8-sig", "刘䶮"),
        (GBK_ROWS.encode("gbk"), "gb18030", "李四"),
        (ROWS.encode("gb18030"), "gb18030", "刘䶮"),
    ],
    ids=["utf-8", "utf-8-bom", "gbk", "gb18030"],
)
def test_auto_encoding_reads_chinese_text(
    make_source, assert_text_only, tmp_path: Path, raw: bytes, detected: str, second_name: str
) -> None:
    (tmp_path / "visits.csv").write_bytes(raw)

    extract = read_source(csv_source(make_source), tmp_path)

    frame = extract.frame
    assert_text_only(frame)
    assert list(frame.columns) == ["编号", "姓名", "身份证号", "电话"]
    assert frame["编号"].tolist() == ["0012", "0013"]  # leading zeros kept: nothing is parsed as a number
    assert frame["姓名"].tolist() == ["张三", second_name]
    assert frame["身份证号"].tolist() == ["11010119900307777X", None]
    assert frame["电话"].tolist() == [None, "13800138000"]
    assert extract.lineage.encoding == detected
    assert detect_encoding(raw) == detected


def test_lineage_describes_the_file(make_source, tmp_path: Path) -> None:
    raw = GBK_ROWS.encode("gbk")
    (tmp_path / "visits.csv").write_bytes(raw)
    before = dt.datetime.now(dt.UTC)

    lineage = read_source(csv_source(make_source), tmp_path).lineage

    assert lineage.source == "test_source" and lineage.kind == "csv"
    assert lineage.location == str(tmp_path / "visits.csv")
    assert lineage.row_count == 2
    assert lineage.content_hash == hashlib.sha256(raw).hexdigest()
    assert lineage.extracted_at.tzinfo is dt.UTC and lineage.extracted_at >= before
    metadata = json.loads(json.dumps(lineage.as_metadata()))
    assert metadata["encoding"] == "gb18030" and metadata["row_count"] == 2


def test_declared_delimiter_is_used(make_source, tmp_path: Path) -> None:
    (tmp_path / "visits.csv").write_text(ROWS.replace(",", "\t"), encoding="utf-8")

    frame = read_source(csv_source(make_source, delimiter="\t", encoding="utf-8"), tmp_path).frame

    assert frame["姓名"].tolist() == ["张三", "刘䶮"]


def test_declared_utf8_on_gbk_file_names_line_and_offset(make_source, tmp_path: Path) -> None:
    raw = b"id,name,id_no\n1,ok,1\n" + "2,张三,2\n".encode("gbk")
    (tmp_path / "visits.csv").write_bytes(raw)
    source = make_source(kind="csv", path="visits.csv", encoding="utf-8", primary_key=["id"], columns={"name": "name"})

    with pytest.raises(SourceError) as caught:
        read_source(source, tmp_path)

    message = str(caught.value)
    assert "line 3" in message
    assert f"byte offset {raw.index('张'.encode('gbk'))}" in message
    assert "encoding: gb18030" in message
    assert "visits.csv" in message and "'test_source'" in message


def test_declared_gbk_on_undecodable_bytes_suggests_utf8(make_source, tmp_path: Path) -> None:
    # 0xff never starts a GBK character.
    (tmp_path / "visits.csv").write_bytes("编号,姓名,身份证号\n".encode("gbk") + b"1,\xff\xfe,x\n")
    source = csv_source(make_source, encoding="gbk")

    with pytest.raises(SourceError, match="line 2.*encoding: utf-8"):
        read_source(source, tmp_path)


def test_row_with_too_many_fields_names_the_line(make_source, tmp_path: Path) -> None:
    text = "编号,姓名,身份证号\n1,张三,x\n2,李四,y\n3,王五,z,多余\n"
    (tmp_path / "visits.csv").write_text(text, encoding="utf-8")

    with pytest.raises(SourceError) as caught:
        read_source(csv_source(make_source), tmp_path)

    message = str(caught.value)
    assert "line 4 has 4 fields but the header has 3" in message
    assert "quote fields that contain ','" in message


def test_missing_mapped_column_names_it_and_the_columns_found(make_source, tmp_path: Path) -> None:
    (tmp_path / "visits.csv").write_text(ROWS, encoding="utf-8")
    source = csv_source(make_source, columns={"name": "姓名", "id_number": "sfzh"})

    with pytest.raises(SourceError) as caught:
        read_source(source, tmp_path)

    message = str(caught.value)
    assert "columns.id_number names column 'sfzh'" in message
    assert "Columns found: 编号, 姓名, 身份证号, 电话" in message
    assert "correct columns.id_number in sources.yaml, or ask the department for the column" in message
    assert "visits.csv" in message


def test_missing_primary_key_column_is_named(make_source, tmp_path: Path) -> None:
    (tmp_path / "visits.csv").write_text(ROWS, encoding="utf-8")

    with pytest.raises(SourceError, match="primary_key names column 'visit_id'.*correct primary_key"):
        read_source(csv_source(make_source, primary_key=["visit_id"]), tmp_path)


def test_missing_file_is_a_source_error(make_source, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="file not found") as caught:
        read_source(csv_source(make_source), tmp_path)

    assert str(tmp_path / "visits.csv") in str(caught.value)


def test_empty_file_is_a_source_error(make_source, tmp_path: Path) -> None:
    (tmp_path / "visits.csv").write_bytes(b"")

    with pytest.raises(SourceError, match="the file is empty"):
        read_source(csv_source(make_source), tmp_path)


def test_lineage_round_trips_through_json(make_source, tmp_path: Path) -> None:
    (tmp_path / "visits.csv").write_bytes(GBK_ROWS.encode("gbk"))
    lineage = read_source(csv_source(make_source), tmp_path).lineage

    restored = Lineage.from_metadata(json.loads(json.dumps(lineage.as_metadata())))

    assert restored == lineage
    assert isinstance(restored.extracted_at, dt.datetime)


def test_a_file_cut_off_mid_row_marks_its_last_row_truncated(make_source, tmp_path: Path) -> None:
    (tmp_path / "visits.csv").write_text("编号,姓名,身份证号,电话\n1,张三,11010119900307777X,138\n2,李四", encoding="utf-8")

    extract = read_source(csv_source(make_source), tmp_path)

    assert extract.frame["姓名"].tolist() == ["张三", "李四"] and extract.truncated_rows == (1,)


@pytest.mark.parametrize(("encoding", "bom"), [("gbk", b""), ("utf-8", b""), ("utf-8", codecs.BOM_UTF8)])
def test_a_file_cut_off_inside_a_chinese_character_marks_its_last_row_truncated(make_source, tmp_path: Path,
                                                                                encoding, bom) -> None:
    """Reliability audit: a file cut in transfer inside its last character failed the source, blaming the encoding
    ("set encoding: utf-8" for a valid GBK file) or a mix of encodings, where a cut on an ASCII byte quarantines the
    last row. The cut is in the last field here, so the row holds every field: it is cut all the same."""
    whole = bom + "编号,姓名,身份证号,住址\n1,张三,11010119900307777X,兰亭社区\n2,李四,,翠苑社区".encode(encoding)
    (tmp_path / "visits.csv").write_bytes(whole[:-1])

    extract = read_source(csv_source(make_source, encoding=encoding), tmp_path)

    assert extract.frame["姓名"].tolist() == ["张三", "李四"] and extract.truncated_rows == (1,)


def test_the_byte_offset_of_a_bad_byte_counts_the_byte_order_mark(make_source, tmp_path: Path) -> None:
    """Reliability audit: in a UTF-8 file with a BOM the offset named was 3 bytes before the bad byte."""
    raw = codecs.BOM_UTF8 + "编号,姓名\n1,张三\n".encode() + "2,李四\n".encode("gbk") + "3,王五\n".encode()
    (tmp_path / "visits.csv").write_bytes(raw)

    with pytest.raises(SourceError) as caught:
        read_source(csv_source(make_source, encoding="utf-8-sig", columns={"name": "姓名"}), tmp_path)

    assert f"byte offset {raw.index('李'.encode('gbk'))}, bytes {'李'.encode('gbk').hex(' ')}" in str(caught.value)


@pytest.mark.parametrize("text", ["编号,姓名,身份证号,电话\n1,张三,,\n2,李四,,", "编号,姓名,身份证号,电话\n1,张三\n"])
def test_empty_last_fields_or_a_final_line_break_are_not_truncation(make_source, tmp_path: Path, text: str) -> None:
    (tmp_path / "visits.csv").write_text(text, encoding="utf-8")

    assert read_source(csv_source(make_source), tmp_path).truncated_rows == ()


@pytest.mark.parametrize("declared", ["auto", "gbk", "gb18030", "utf-8"])
def test_a_file_in_two_encodings_is_refused_naming_the_lines_and_the_fix(make_source, tmp_path: Path, declared) -> None:
    # A clerk pasted a row from a UTF-8 web form into the GBK export.
    (tmp_path / "visits.csv").write_bytes("编号,姓名\n1,张三\n2,李四\n".encode("gbk") + "3,王芳芳\n".encode("utf-8"))

    with pytest.raises(SourceError) as caught:
        read_source(csv_source(make_source, encoding=declared, columns={"name": "姓名"}), tmp_path)

    message = str(caught.value)
    assert "mixes encodings" in message and "line 4 is UTF-8" in message
    assert "save the whole file again in one encoding, as CSV UTF-8" in message


def test_a_wrong_delimiter_is_named_with_the_right_one(make_source, tmp_path: Path) -> None:
    (tmp_path / "visits.csv").write_text("编号;姓名;身份证号\n1;张三;\n", encoding="utf-8")

    with pytest.raises(SourceError, match=r"delimited by ';', not by ','\. Fix: set delimiter: ';'"):
        read_source(csv_source(make_source), tmp_path)


@pytest.mark.parametrize("where", [b"1\x00,", "张".encode("gbk")[:1] + b"\x00"])
def test_nul_bytes_are_refused_as_a_damaged_file(make_source, tmp_path: Path, where: bytes) -> None:
    (tmp_path / "visits.csv").write_bytes("编号,姓名\n".encode("gbk") + where + "张三\n".encode("gbk"))

    with pytest.raises(SourceError, match=r"1 NUL byte\(s\), the first at line 2: it was damaged in transfer"):
        read_source(csv_source(make_source, encoding="gbk"), tmp_path)
