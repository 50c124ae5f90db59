"""The grid-update form: what ``silobreaker grid-updates template`` writes, read back by a ``role: grid_updates``
source declared with nothing but where the form lives, and staged as person records."""

from __future__ import annotations

import datetime as dt
import json

import openpyxl
import pandas as pd
import pytest

from connectors.config import GRID_UPDATE_CHANGES, GRID_UPDATE_COLUMNS, load_sources
from connectors.extract import read_source
from connectors.grid_form import form_headers, write_grid_update_form
from core.errors import ConfigError
from pipelines.cli import main
from staging import stage_person_records

ROWS = [
    {"序号": "1", "变更类型": "死亡", "姓名": "李长根", "性别": "男", "出生日期": "1935-05", "现住址": "翠苑社区4-1-101",
     "情况说明": "家属告知已去世", "填报人": "周丽", "填报日期": "2026-10-01"},
    {"序号": "2", "变更类型": "独居", "姓名": "周大山", "性别": "男", "出生日期": "1940-01-01", "身份证号": "33010619400101001X",
     "联系电话": "13900000002", "现住址": "翠苑社区3-1-101", "填报人": "周丽", "填报日期": "2026-10-02"},
    {"序号": "3", "变更类型": "不再独居", "姓名": "吴桂英", "性别": "女", "出生日期": "1950-03", "现住址": "翠苑社区5-1-101",
     "情况说明": "女儿已搬来同住", "填报人": "周丽", "填报日期": "2026-10-03"},
    {"序号": "4", "变更类型": "迁入", "姓名": "赵六", "性别": "男", "出生日期": "199009", "现住址": "翠苑社区8-1-101",
     "户籍地址": "安徽省合肥市蜀山区人民路1号", "填报人": "陈静", "填报日期": "2026-10-04"},
]


def _declare(tmp_path, body: str):
    (tmp_path / "sources.yaml").write_text(f"version: 1\nsources:\n{body}", encoding="utf-8")
    return load_sources(tmp_path / "sources.yaml")


def test_the_template_has_the_fixed_columns_a_drop_down_of_changes_and_a_guide_for_every_column(tmp_path):
    assert main(["grid-updates", "template", str(tmp_path / "表.xlsx")]) == 0
    book = openpyxl.load_workbook(tmp_path / "表.xlsx")
    sheet = book.worksheets[0]
    assert [c.value for c in sheet[1]] == form_headers() == ["序号", *dict.fromkeys(GRID_UPDATE_COLUMNS.values())]
    assert sheet.max_row == 1 or all(c.value is None for row in sheet.iter_rows(min_row=2) for c in row)
    choices = {v.formula1 for v in sheet.data_validations.dataValidation}
    assert '"' + ",".join(GRID_UPDATE_CHANGES) + '"' in choices
    guide = {row[0].value for row in book["填表说明"].iter_rows(min_row=2)}
    assert guide == set(form_headers())


def test_a_grid_update_source_needs_only_where_the_form_lives(tmp_path):
    write_grid_update_form(tmp_path / "updates.xlsx", ROWS)
    source = _declare(tmp_path, "  - {name: grid_updates, role: grid_updates, kind: xlsx, path: updates.xlsx}\n"
                      ).source("grid_updates")
    assert source.department == "网格" and source.one_row_per == "event" and source.holds_persons
    extract = read_source(source, tmp_path)
    assert len(extract.frame) == len(ROWS), "the template's empty formatted rows are not read as updates"
    staged = stage_person_records(
        extract.frame, source=source.name, primary_key=source.primary_key, columns=source.columns,
        values=source.values, date_formats=source.date_formats, extracted_at=dt.datetime(2026, 11, 1)).staged
    staged = staged.set_index(staged["source_key"].str.split("|").str[-1])  # 填报日期|填报人|序号
    assert list(staged["residence_status"]) == ["deceased", "present", "present", "present"]
    assert staged["lives_alone"].tolist()[1:3] == [True, False] and staged["lives_alone"].isna().tolist()[::3] == [True, True]
    assert list(staged["change"]) == ["死亡", "独居", "不再独居", "迁入"]
    assert staged.loc["1", "birth_date_precision"] == "month" and staged.loc["4", "birth_date"] == "1990-09"
    assert staged.loc["2", "id_number"] == "33010619400101001X" and staged.loc["2", "phone"] == "13900000002"
    assert staged.loc["4", "hukou_address"] == "安徽省合肥市蜀山区人民路1号"
    assert (staged.loc["3", "note"], staged.loc["3", "reported_by"]) == ("女儿已搬来同住", "周丽")
    assert staged.loc["1", "record_date"] == "2026-10-01"


def test_a_change_not_on_the_list_and_a_report_from_the_future_are_quarantined_with_the_fix(tmp_path):
    rows = [*ROWS, dict(ROWS[0], 序号="5", 变更类型="搬家"), dict(ROWS[0], 序号="6", 填报日期="2027-06-01"),
            dict(ROWS[0], 序号="7", 变更类型="")]
    write_grid_update_form(tmp_path / "updates.xlsx", rows)
    source = _declare(tmp_path, "  - {name: grid_updates, role: grid_updates, kind: xlsx, path: updates.xlsx, "
                                "date_formats: ['%Y.%m']}\n").source("grid_updates")
    assert "%Y.%m" in source.date_formats and "%Y-%m" in source.date_formats, "a clerk's own forms add to the form's"
    result = stage_person_records(
        read_source(source, tmp_path).frame, source=source.name, primary_key=source.primary_key,
        columns=source.columns, values=source.values, date_formats=source.date_formats,
        extracted_at=dt.datetime(2026, 11, 1), form_fields=["change"])
    assert len(result.staged) == 4
    held = result.quarantine.set_index(result.quarantine["source_key"].str.split("|").str[-1])
    assert held.loc["5", "rule"] == "unlisted_value" and "变更类型 '搬家' is not one of 迁出" in held.loc["5", "message"]
    assert held.loc["6", "rule"] == "future_record_date" and "after the day the source was extracted" in held.loc["6", "message"]
    assert held.loc["7", "rule"] == "unlisted_value" and "变更类型 is empty: choose one of" in held.loc["7", "message"]
    assert held.loc["5", "field"] == "change"  # the corrections sheet names 变更类型


def test_a_new_form_keeps_the_earlier_reports_it_does_not_send_again():
    from assets.staged import with_earlier_reports

    def form(*keys):
        return pd.DataFrame({"record_id": [f"grid_updates:{k}" for k in keys], "note": list(keys)})

    merged = with_earlier_reports(form("2026-11-20|周丽|1"), form("2026-10-01|周丽|1", "2026-11-20|周丽|1"))
    assert sorted(merged["record_id"]) == ["grid_updates:2026-10-01|周丽|1", "grid_updates:2026-11-20|周丽|1"]
    assert len(merged) == 2  # the row sent again is this form's, once


def test_base_marks_one_person_source(tmp_path):
    two = ("  - {name: a, department: 人口普查, kind: csv, path: a.csv, primary_key: [k], columns: {name: n}, base: true}\n"
           "  - {name: b, department: 民政, kind: csv, path: b.csv, primary_key: [k], columns: {name: n}, base: true}\n")
    with pytest.raises(ConfigError, match="second base register"):
        _declare(tmp_path, two)
    consent = ("  - {name: c, department: 政务服务, role: consent, kind: csv, path: c.csv, primary_key: [k], "
               "columns: {id_number: i}, base: true}\n")
    with pytest.raises(ConfigError, match="base marks the district's population register"):
        _declare(tmp_path, consent)
    assert _declare(tmp_path, two.splitlines(keepends=True)[0]).base_source.name == "a"


def test_the_published_updates_are_listed_newest_first(published_demo, capsys):
    settings, _ = published_demo
    assert main(["grid-updates", "list", "--json", "--home", str(settings.home.root)]) == 0
    days = [row["record_date"] for row in json.loads(capsys.readouterr().out)]
    dated = [d for d in days if d is not None]
    assert len(set(dated)) > 2 and dated == sorted(dated, reverse=True)  # as its help says: newest first
    assert days == dated + [None] * (len(days) - len(dated))  # an update without a date last



def test_an_update_without_a_grid_or_resident_is_listed_in_words_not_nan():
    # Seen (re-check): a resident with no grid was listed as "nan": a pandas NaN is truthy, so `grid or '（未定网格）'`
    # kept it.
    from pipelines.grid_cli import _plain, _update_lines

    updates = pd.DataFrame({"record_date": ["2026-11-20"], "grid": [float("nan")], "change": ["迁入"],
                            "resident": [pd.NA], "reported_by": ["周丽"], "note": [None], "taken": [True],
                            "record_id": ["grid_updates:1"]})
    assert _update_lines(_plain(updates))[1] == "2026-11-20  （未定网格）  迁入    周丽    已采用  grid_updates:1"
