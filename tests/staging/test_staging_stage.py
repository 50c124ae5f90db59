"""Staging person records: mapping, value maps, derived columns, quarantine rules and conservation."""

import datetime as dt
import json

import pandas as pd
import pytest

import staging.stage
from core.errors import ConfigError, SourceError, TerminalError
from staging import (
    CANONICAL_COLUMNS,
    PERSON_QUARANTINE_RULES,
    QUARANTINE_COLUMNS,
    id_check_digit,
    stage_person_records,
)

EXTRACTED_AT = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
COLUMNS = {
    "name": "xm",
    "sex": "xb",
    "birth_date": "csrq",
    "id_number": "sfzh",
    "phone": "lxdh",
    "address": "jtzz",
    "street": "jdmc",
    "community": "sqmc",
    "grid": "wgmc",
    "record_date": "gxsj",
    "lives_alone": "djlr",
    "low_income": "dbh",
    "disability_grade": "cjdj",
}
VALUES = {
    "sex": {"男": "M", "女": "F"},
    "lives_alone": {"是": "true", "否": "false"},
    "disability_grade": {"一级": "1", "二级": "2", "三级": "3", "四级": "4"},
}
FORMATS = ["%Y-%m-%d", "%Y%m%d"]
ID_1980_M = "11010519800102123" + id_check_digit("11010519800102123")  # born 1980-01-02, male


def person(**overrides):
    row = {
        "jmbh": "1",
        "xm": "王芳",
        "xb": "男",
        "csrq": "1980-01-02",
        "sfzh": ID_1980_M,
        "lxdh": "13800138000",
        "jtzz": "北京市东城区1号楼",
        "jdmc": "东华门街道",
        "sqmc": "多福巷社区",
        "wgmc": "第一网格",
        "gxsj": "2024-05-17",
        "djlr": "否",
        "dbh": "否",
        "cjdj": None,
    }
    return row | overrides


def stage(rows, **options):
    arguments = dict(
        source="civil_affairs", primary_key=["jmbh"], columns=COLUMNS, values=VALUES,
        date_formats=FORMATS, extracted_at=EXTRACTED_AT,
    ) | options
    return stage_person_records(pd.DataFrame(rows, dtype=object), **arguments)


def test_a_clean_row_is_mapped_normalised_and_derived():
    row = person(
        xm="張 偉", csrq="19800102", sfzh="110105800102123", lxdh="+86 138 0013 8000", jtzz="北京市東城區３號樓",
        gxsj="2024-05-17 10:23:45", djlr="是", cjdj="二级",
    )
    staged = stage([row]).staged
    assert {k: None if v is pd.NA or v is None else v for k, v in staged.iloc[0].to_dict().items()} == {
        "record_id": "civil_affairs:1",
        "source": "civil_affairs",
        "source_key": "1",
        "name": "张伟",
        "name_pinyin": "zhang wei",
        "sex": "M",
        "birth_date": "1980-01-02",
        "birth_date_precision": "day",
        "id_number": ID_1980_M,  # the 15-digit form, upgraded
        "id_number_valid": True,
        "id_upgraded": True,
        "id_birth_date": "1980-01-02",
        "id_sex": "M",
        "birth_date_conflict": False,
        "sex_conflict": False,
        "phone": "13800138000",
        "address": "北京市东城区3号楼",
        "street": "东华门街道",
        "community": "多福巷社区",
        "grid": "第一网格",
        "record_date": "2024-05-17",
        "lives_alone": True,
        "low_income": False,
        "pregnant": None,
        "corrections": None,
        "disability_grade": 2,
        "chronic_disease": None,
        "case_type": None,
        "hukou_address": None,
        "residence_status": None,
        "change": None,
        "reported_by": None,
        "note": None,
        "alias": None,
        "extracted_at": pd.Timestamp("2026-11-23 02:00", tz="UTC"),
    }


def test_staged_frame_has_the_canonical_columns_and_dtypes():
    staged = stage([person()]).staged
    assert list(staged.columns) == list(CANONICAL_COLUMNS)
    assert staged.dtypes.astype(str).to_dict() == CANONICAL_COLUMNS


def test_fields_the_source_does_not_map_are_null():
    staged = stage([{"jmbh": "1", "xm": "王芳"}], columns={"name": "xm"}, values={}).staged
    assert staged.loc[0, "name"] == "王芳"
    unmapped = [c for c in CANONICAL_COLUMNS if c not in {"record_id", "source", "source_key", "name", "name_pinyin",
                                                          "birth_date_conflict", "sex_conflict", "id_upgraded",
                                                          "extracted_at"}]
    assert staged.loc[0, unmapped].isna().all()


def test_composite_primary_key_is_joined_with_a_bar():
    rows = [person(jmbh="7") | {"hh": "A03"}]
    staged = stage(rows, primary_key=["hh", "jmbh"]).staged
    assert staged.loc[0, ["source_key", "record_id"]].tolist() == ["A03|7", "civil_affairs:A03|7"]


def test_value_maps_apply_after_cleaning_and_unmapped_values_become_null_and_counted():
    rows = [
        person(jmbh="1", xb=" 女 "), person(jmbh="2", xb="未知"), person(jmbh="3", xb="未知"), person(jmbh="4", xb=None)
    ]
    result = stage(rows)
    assert result.staged["sex"].tolist() == ["F", pd.NA, pd.NA, pd.NA]
    assert result.soft_problems["unmapped_value:sex"] == 2
    assert result.unmapped_values.to_dict("records") == [{"field": "sex", "column": "xb", "value": "未知", "rows": 2}]


def test_without_a_value_map_obvious_spellings_are_understood():
    rows = [person(jmbh="1", xb="F", djlr="1", cjdj="3"), person(jmbh="2", xb="male", djlr="Y", cjdj="四级"),
            person(jmbh="3", xb="?", djlr="maybe", cjdj="9")]
    result = stage(rows, values={})
    assert result.staged["sex"].tolist() == ["F", "M", pd.NA]
    assert result.staged["lives_alone"].tolist() == [True, True, pd.NA]
    assert result.staged["disability_grade"].tolist() == [3, 4, pd.NA]
    assert result.soft_problems["unrecognised_value:sex"] == 1
    assert result.soft_problems["unrecognised_value:disability_grade"] == 1


def test_an_empty_string_target_means_not_stated():
    # The health register's diagnosis column: 普通门诊 (an ordinary visit) is no chronic disease.
    rows = [person(jmbh="1") | {"zd": "高血压"}, person(jmbh="2") | {"zd": "普通门诊"}]
    result = stage(rows, columns=COLUMNS | {"chronic_disease": "zd"},
                   values=VALUES | {"chronic_disease": {"高血压": "高血压", "普通门诊": ""}})
    assert result.staged["chronic_disease"].tolist() == ["高血压", pd.NA]
    assert "unmapped_value:chronic_disease" not in result.soft_problems


@pytest.mark.parametrize(
    ("stated", "conflict"),
    [("1980-01-02", False), ("19800103", True), ("1980-01", False), ("1980-02", True), ("1980", False), ("1981", True)],
)
def test_birth_date_conflict_is_judged_at_the_stated_precision(stated, conflict):
    formats = ["%Y-%m-%d", "%Y%m%d", "%Y-%m", "%Y"]
    staged = stage([person(csrq=stated)], date_formats=formats).staged
    assert staged.loc[0, "birth_date_conflict"] == conflict


def test_soft_problems_stay_staged_and_are_counted():
    wrong_check = ID_1980_M[:17] + ("0" if ID_1980_M[17] != "0" else "1")
    rows = [person(jmbh="1", sfzh=wrong_check, xb="女", lxdh="12345"), person(jmbh="2")]
    result = stage(rows)
    assert len(result.staged) == 2 and result.quarantine.empty
    first = result.staged.iloc[0]
    assert first["id_number"] == wrong_check and not first["id_number_valid"]
    assert first["sex_conflict"] and pd.isna(first["phone"])
    assert result.soft_problems == {"implausible_phone": 1, "invalid_id_number": 1, "sex_conflict": 1}


# (row, what makes it fail: rule, field, column, value, message)
QUARANTINE_CASES = [
    (person(jmbh="1"), None),
    (person(jmbh="1", xm="李四"), ("duplicate_source_key", "source_key", "jmbh", "1",
     "source key '1' (jmbh) repeats row 1; keys must be unique: remove or merge the duplicate in the source system, "
     "or extend primary_key in sources.yaml")),
    (person(jmbh=None), ("missing_source_key", "source_key", "jmbh", None,
     "the primary key (jmbh) is empty; every row needs a key: fill jmbh in the source system, or declare another "
     "primary_key for source 'civil_affairs' in sources.yaml")),
    (person(jmbh="4", xm="\u3000"), ("missing_name", "name", "xm", "\u3000",
     "姓名 is empty; every person record needs a name: fill column xm in the source system")),
    (person(jmbh="5", sfzh="1101051980"), ("malformed_id_number", "id_number", "sfzh", "1101051980",
     "公民身份号码 '1101051980' has 10 characters; expected 18 (or the old 15); correct the ID in the source system")),
    (person(jmbh="6", sfzh="11010519800102123Y"), ("malformed_id_number", "id_number", "sfzh", "11010519800102123Y",
     "公民身份号码 '11010519800102123Y' has characters other than digits and a final X; "
     "correct the ID in the source system")),
    (person(jmbh="7", csrq="不详"), ("unparseable_birth_date", "birth_date", "csrq", "不详",
     "出生日期 '不详' matches none of the date formats [%Y-%m-%d, %Y%m%d]; correct the date in the source system, "
     "or add its format to date_formats in sources.yaml")),
    (person(jmbh="8", csrq="1899-12-31", sfzh=None), ("birth_date_out_of_range", "birth_date", "csrq", "1899-12-31",
     "出生日期 '1899-12-31' is before 1900-01-01; correct the date in the source system")),
    (person(jmbh="9", csrq="2026-11-24", sfzh=None), ("birth_date_out_of_range", "birth_date", "csrq", "2026-11-24",
     "出生日期 '2026-11-24' is after the day the source was extracted; "
     "correct the date in the source system")),
    (person(jmbh="10"), None),
    (person(jmbh="11", xm="张" * 65), ("implausible_name", "name", "xm", "张" * 65,
     "姓名 '" + "张" * 20 + "…' has 65 characters (a name has at most 64); correct the name in the source system")),
    (person(jmbh="12", xm="😀 ★"), ("implausible_name", "name", "xm", "😀 ★",
     "姓名 '😀 ★' is not a name (no letter, or emoji and symbols); correct the name in the source system")),
    (person(jmbh="13", sfzh="3.30108197012071E+17"), ("excel_number_id", "id_number", "sfzh", "3.30108197012071E+17",
     "公民身份号码 '3.30108197012071E+17' was turned into a number by Excel, which keeps only 15 digits, so its "
     "last digits are lost; format the column sfzh as text in Excel (设置单元格格式 → 文本) and enter the IDs "
     "again, or export them from the department's system again")),
    # Reliability audit: a day the calendar lacks was blamed on the date formats, with advice to change sources.yaml
    (person(jmbh="14", csrq="2023-02-30", sfzh=None), ("unparseable_birth_date", "birth_date", "csrq", "2023-02-30",
     "出生日期 '2023-02-30' names a day the calendar does not have; correct the date in the source system")),
]


# An ID Excel turned into a number is malformed too; the Excel rule comes first because it says why.
ALSO_BROKEN = {"excel_number_id": "excel_number_id,malformed_id_number"}


@pytest.mark.parametrize("typed", ["2023-02-30", "20230230", "2023-13-01", "20231301", "1990-04-31", "2023-00-10"])
def test_a_date_in_a_declared_form_naming_no_day_is_said_to_name_none(typed):
    """Re-check: 2023-13-01 was still blamed on the date formats, with the advice to change sources.yaml."""
    [message] = stage([person(jmbh="1", csrq=typed, sfzh=None)]).quarantine["message"].tolist()
    assert message == f"出生日期 '{typed}' names a day the calendar does not have; correct the date in the source system"


def test_each_hard_rule_quarantines_its_row_with_row_number_value_and_message():
    result = stage([row for row, _ in QUARANTINE_CASES])
    expected = [
        {"row_number": number, "rule": rule, "rules": ALSO_BROKEN.get(rule, rule), "field": field, "column": column,
         "value": value, "message": message}
        for number, (_, failure) in enumerate(QUARANTINE_CASES, start=1) if failure is not None
        for rule, field, column, value, message in [failure]
    ]
    got = result.quarantine[["row_number", "rule", "rules", "field", "column", "value", "message"]]
    assert got.astype(object).where(got.notna(), None).to_dict("records") == expected
    assert result.staged["source_key"].tolist() == ["1", "10"]  # (14 is quarantined)


def test_every_person_rule_is_exercised():
    rows = [row for row, _ in QUARANTINE_CASES] + [person(jmbh="99")]
    result = stage(rows, truncated_rows=(len(rows) - 1,))
    # a form filled in by hand: a value off its list, a date after the extraction day
    form = stage([person(jmbh="1", djlr="不知道"), person(jmbh="2", gxsj="2027-01-01 09:00:00"), person(jmbh="3")],
                 form_fields=["lives_alone"])
    assert form.quarantine["rule"].tolist() == ["unlisted_value", "future_record_date"]
    assert "djlr '不知道' is not one of 是、否" in form.quarantine["message"].iloc[0]
    assert set(result.quarantine["rule"]) | set(form.quarantine["rule"]) == set(PERSON_QUARANTINE_RULES)


class InPlace:
    """Stages chunks one after another in this process: how a cluster stages them (staging.spark), without one."""

    rows_per_chunk = 4

    def __init__(self):
        self.chunks = []

    def map(self, stage, chunks):
        self.chunks += [chunk.row_number.tolist() for chunk in chunks]
        return [stage(chunk) for chunk in chunks]


def test_staged_in_chunks_it_is_the_staging_of_the_whole():
    # Every rule, a key repeated three chunks after its first row, a cut-off row, soft problems, unmapped
    # values met in several chunks, and a birth month after the extraction day (the staging's valid_until).
    rows = [row for row, _ in QUARANTINE_CASES] + [
        person(jmbh="20", xb="M", sfzh=ID_1980_M[:-1] + "0", lxdh="12"), person(jmbh="21", djlr="也许"),
        person(jmbh="22", xb="W", sfzh=None, csrq="2026-12-05"), person(jmbh="5", xm="赵六"), person(jmbh="23", xb="M"),
    ]
    runner = InPlace()
    whole, chunked = stage(rows, truncated_rows=(9,)), stage(rows, truncated_rows=(9,), runner=runner)
    assert runner.chunks[:2] == [[1, 2, 3, 4], [5, 6, 7, 8]] and len(runner.chunks) == 5
    pd.testing.assert_frame_equal(chunked.staged, whole.staged)
    pd.testing.assert_frame_equal(chunked.quarantine, whole.quarantine)
    pd.testing.assert_frame_equal(chunked.unmapped_values, whole.unmapped_values)
    assert chunked.soft_problems == whole.soft_problems and chunked.valid_until == whole.valid_until
    assert whole.staged["source_key"].tolist() == ["1", "20", "21", "23"]
    assert whole.unmapped_values[["field", "value", "rows"]].values.tolist() == [["lives_alone", "也许", 1], ["sex", "M", 2]]
    repeated = whole.quarantine.set_index("row_number").loc[len(QUARANTINE_CASES) + 4]
    assert repeated["rule"] == "duplicate_source_key" and "repeats row 5" in repeated["message"]
    assert whole.quarantine.set_index("row_number").loc[10, "rule"] == "truncated_row"
    assert whole.valid_until is not None and {"invalid_id_number", "implausible_phone"} <= set(whole.soft_problems)


def test_a_row_the_reader_saw_cut_off_is_quarantined_whatever_it_holds():
    result = stage([person(jmbh="1"), person(jmbh="2", lxdh=None, jtzz=None)], truncated_rows=(1,))
    [row] = result.quarantine.itertuples()
    assert (row.row_number, row.rule, row.field) == (2, "truncated_row", "source_key")
    assert "cut off" in row.message and result.staged["source_key"].tolist() == ["1"]


def test_quarantine_rows_carry_keys_raw_record_and_extraction_time():
    rows = [person(jmbh="1"), person(jmbh="2", xm=None, csrq="1980/1/2 ", sfzh="123", jtzz='A\\/B "3"')]
    quarantine = stage(rows).quarantine
    assert list(quarantine.columns) == list(QUARANTINE_COLUMNS)
    assert quarantine.dtypes.astype(str).to_dict() == QUARANTINE_COLUMNS
    row = quarantine.iloc[0]
    assert (row["source"], row["source_key"], row["record_id"], row["row_number"]) == (
        "civil_affairs", "2", "civil_affairs:2", 2)
    assert row["extracted_at"] == pd.Timestamp(EXTRACTED_AT)
    # Chinese stays readable and "/" is not escaped: the data team reads this JSON.
    assert '"jdmc":"东华门街道"' in row["raw_record"] and '"csrq":"1980/1/2 "' in row["raw_record"]
    assert json.loads(row["raw_record"]) == rows[1]


def test_all_failing_rules_are_listed_and_the_first_one_is_reported():
    rows = [person(jmbh="1", xm=None, sfzh="123", csrq="garbage")]
    row = stage(rows).quarantine.iloc[0]
    assert row["rule"] == "missing_name"
    assert row["rules"] == "missing_name,malformed_id_number,unparseable_birth_date"
    assert row["field"] == "name"


def test_birth_date_range_is_judged_at_the_stated_precision():
    formats = ["%Y-%m-%d", "%Y-%m", "%Y"]
    rows = [person(jmbh="1", csrq="1900", sfzh=None), person(jmbh="2", csrq="2026-11", sfzh=None),
            person(jmbh="3", csrq="2026-12", sfzh=None), person(jmbh="4", csrq="1899", sfzh=None)]
    result = stage(rows, date_formats=formats)
    assert result.staged["source_key"].tolist() == ["1", "2"]
    assert result.quarantine["row_number"].tolist() == [3, 4]


def test_the_extraction_day_is_the_day_in_china():
    # 2026-11-23 20:00 UTC is already 24 November in Beijing: a birth that day is not in the future.
    late = dt.datetime(2026, 11, 23, 20, 0, tzinfo=dt.UTC)
    result = stage([person(csrq="2026-11-24", sfzh=None)], extracted_at=late)
    assert len(result.staged) == 1


def test_conservation_every_row_is_staged_or_quarantined_once():
    rows = [row for row, _ in QUARANTINE_CASES] * 3
    result = stage(rows)
    assert len(result.staged) + len(result.quarantine) == len(rows)
    assert result.quarantine["row_number"].is_unique and result.staged["record_id"].is_unique
    # The first copy of each good key is staged; in the two later copies every keyed row (all but the
    # one without a key) repeats a key.
    keyed = sum(1 for row, _ in QUARANTINE_CASES if row["jmbh"])
    assert result.staged["source_key"].tolist() == ["1", "10"]
    assert (result.quarantine["rule"] == "duplicate_source_key").sum() == 1 + 2 * keyed


def test_conservation_breach_raises_a_terminal_error(monkeypatch):
    real = staging.stage.quarantine

    def losing_a_row(extract, rules):
        quarantined, frame = real(extract, rules)
        return quarantined, frame.iloc[1:]

    monkeypatch.setattr(staging.stage, "quarantine", losing_a_row)
    with pytest.raises(TerminalError, match="3 extracted, 1 staged, 1 quarantined"):
        stage([person(jmbh="1"), person(jmbh=None), person(jmbh="3", xm=None)])


def test_an_empty_extract_stages_to_empty_frames_with_the_right_dtypes():
    result = stage(pd.DataFrame(columns=["jmbh", *COLUMNS.values()]))
    assert result.staged.empty and result.quarantine.empty
    assert result.staged.dtypes.astype(str).to_dict() == CANONICAL_COLUMNS
    assert result.quarantine.dtypes.astype(str).to_dict() == QUARANTINE_COLUMNS


def test_a_naive_extraction_time_is_utc():
    staged = stage([person()], extracted_at=dt.datetime(2026, 11, 23, 2, 0)).staged
    assert staged.loc[0, "extracted_at"] == pd.Timestamp("2026-11-23 02:00", tz="UTC")


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"columns": {"name": "xm", "nickname": "bm"}}, ConfigError, "unknown canonical field.*nickname"),
        ({"columns": {"sex": "xb"}, "values": {}}, ConfigError, "must map \\['name'\\]"),
        ({"values": {"phone": {"x": "y"}}, "columns": {"name": "xm"}}, ConfigError, "values given for \\['phone'\\]"),
        ({"values": {"sex": {"男": "male person"}}}, ConfigError, "values.sex maps to \\['male person'\\]"),
        ({"values": {"lives_alone": {"是": "yes please"}}}, ConfigError, "values.lives_alone"),
        ({"columns": COLUMNS | {"name": "name_col"}}, SourceError, "\\['name_col'\\] are not in the extract"),
        ({"primary_key": ["id"]}, SourceError, "\\['id'\\] are not in the extract"),
        ({"date_formats": ["%m/%d"]}, ConfigError, "has no year"),
    ],
)
def test_inconsistent_declarations_fail_early_with_a_fix(options, error, match):
    with pytest.raises(error, match=match):
        stage([person()], **options)


def test_yaml_booleans_are_accepted_as_value_map_targets():
    result = stage([person(djlr="是")], values=VALUES | {"lives_alone": {"是": True, "否": False}})
    assert bool(result.staged.loc[0, "lives_alone"]) is True


def test_former_names_are_normalised_as_names_one_by_one():
    rows = [person(jmbh="1", cym="王小芳，張 三；王小芳"), person(jmbh="2", cym="、"), person(jmbh="3", cym=None)]
    staged = stage(rows, columns={**COLUMNS, "alias": "cym"}).staged
    assert staged["alias"].tolist()[:1] == ["王小芳、张三"]
    assert staged["alias"].isna().tolist()[1:] == [True, True]
