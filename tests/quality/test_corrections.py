"""The corrections file: a department's quarantined rows and disagreements, in its own form and in Chinese."""

from __future__ import annotations

import json
import re

import openpyxl
import pandas as pd
import pytest

from connectors import SourceConfig
from core.vocabulary import CONFLICT_CHECK_TEXTS, MASKS, QUARANTINE_RULE_TEXTS
from quality.corrections import DISAGREES, ISSUE_COLUMNS, LIKELY, QUARANTINED, TO_VERIFY, build_corrections, certainty
from quality.quarantine import write_department_file

HEALTH = SourceConfig(
    name="health", department="卫健", kind="csv", path="demo/health_visits.csv", encoding="gbk",
    primary_key=["visit_id"],
    columns={"name": "patient_name", "sex": "gender", "birth_date": "dob", "id_number": "id_card",
             "address": "home_address"},
)
JUSTICE = SourceConfig(
    name="justice", department="司法", kind="xlsx", path="demo/justice_cases.xlsx", sheet="在册人员",
    primary_key=["编号"], columns={"name": "姓名", "birth_date": "出生日期", "id_number": "身份证号"},
)
DEPARTMENTS = {"civil_affairs": "民政", "health": "卫健", "justice": "司法", "census": "人口普查", "grid_updates": "网格"}
RAW = pd.DataFrame({
    "visit_id": ["WJ1", "WJ2", "WJ3", "WJ4"],
    "patient_name": ["张三", "李四", "王五", "赵六"],
    "gender": ["1", "2", "1", "2"],
    "dob": ["1950/1/2", "1960/5/6", "1970/7/8", "1980/9/9"],
    "id_card": ["330106195001020012", "330106196005060021", "330106197007080034", "33010619800909004X"],
    "home_address": ["翠苑社区3-2-501", "翠苑社区1-1-101", "翠苑社区2-2-202", "翠苑社区4-4-404"],
    "diagnosis": ["高血压", "普通门诊", "普通门诊", "糖尿病"],
})

# Chinese cells may name the department's own column (in “”), Excel (the program the clerk uses) and
# the check character X of an ID number (printed on the card); nothing else in Latin letters.
LATIN = re.compile(r"[A-Za-z]")
ALLOWED = re.compile(r"“[^”]*”|Excel|(?<=\d)X|(?<=\*)X|最后一位可以是X")


def english_in(text: str) -> list[str]:
    return LATIN.findall(ALLOWED.sub("", text or ""))


def quarantine_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["row_number", "rule", "rules", "field", "column", "value", "message", "raw_record"])


def disagreement(record: str, field: str, value: str, others: list[tuple[str, str, bool]], *, likely_wrong: bool,
                 backing: int = 0, supporters: list[str] | None = None, own_id_differs: bool = False,
                 own_id_agrees: bool = False, own_id_supports: bool = False) -> dict:
    return {"person_id": f"P{record}", "field": field, "source": "health", "record_id": f"health:{record}",
            "source_key": record, "value": value, "likely_wrong": likely_wrong, "backing": backing,
            "supporters": supporters, "own_id_differs": own_id_differs, "own_id_agrees": own_id_agrees,
            "own_id_supports": own_id_supports, "others": [{"source": s, "value": v, "golden": g} for s, v, g in others]}


@pytest.fixture
def corrections():
    raw_row = {"visit_id": "WJ9", "patient_name": "钱七", "gender": "1", "dob": "1984/13/45",
               "id_card": "330106198401010015", "home_address": "翠苑社区5-5-505", "diagnosis": "普通门诊"}
    quarantine = quarantine_frame([{
        "row_number": 9, "rule": "unparseable_birth_date", "rules": "unparseable_birth_date", "field": "birth_date",
        "column": "dob", "value": "1984/13/45", "message": "dob '1984/13/45' is not a date",
        "raw_record": json.dumps(raw_row, ensure_ascii=False)}])
    disagreements = pd.DataFrame([
        # 待核实 with the golden value here: the clerk checks, and may leave it.
        disagreement("WJ3", "name", "王五", [("census", "王伍", False)], likely_wrong=False),
        # 较确定: two departments hold the golden date against it.
        disagreement("WJ2", "birth_date", "1960-05-06", [("civil_affairs", "1960-05-16", True),
                                                          ("census", "1960-05", True)], likely_wrong=True, backing=2),
        # 待核实 but likely wrong: one department against it.
        disagreement("WJ4", "id_number", "33010619800909004X", [("civil_affairs", "330106198009090057", True)],
                     likely_wrong=True, backing=1),
        # Not the golden value, but the census and its own ID number agree with it: after the golden holder's checks.
        disagreement("WJ5", "birth_date", "1980-09-09", [("civil_affairs", "1980-09-19", True)], likely_wrong=True,
                     backing=1, supporters=["census"], own_id_supports=True),
        # 较确定 on its own ID's word.
        disagreement("WJ1", "sex", "M", [("civil_affairs", "F", True)], likely_wrong=True, backing=1, own_id_agrees=True,
                     own_id_differs=True),
    ])
    return build_corrections(HEALTH, quarantine, disagreements, raw=RAW, departments=DEPARTMENTS)


@pytest.mark.parametrize(
    ("likely_wrong", "backing", "own_id_agrees", "supported", "expected"),
    [
        (True, 2, False, False, LIKELY),      # the golden value and two other departments against it
        (True, 3, False, False, LIKELY),
        (True, 2, False, True, TO_VERIFY),    # ... but a third department, or its own ID, agrees with it
        (True, 1, True, False, LIKELY),       # its own ID number says what the golden value says
        (True, 1, True, True, LIKELY),        # ... whichever department agrees with it
        (True, 1, False, False, TO_VERIFY),   # one department against it
        (True, 0, False, False, TO_VERIFY),
        (False, 3, False, False, TO_VERIFY),  # it holds the golden value: never 较确定
        (False, 0, True, False, TO_VERIFY),
    ],
)
def test_how_sure_follows_the_golden_value_the_backing_and_the_own_id(likely_wrong, backing, own_id_agrees, supported,
                                                                     expected):
    got = certainty(pd.Series([likely_wrong]), pd.Series([backing]), pd.Series([own_id_agrees]), pd.Series([supported]))
    assert got.tolist() == [expected]


def test_rows_keep_the_departments_columns_then_the_chinese_ones(corrections):
    assert list(corrections.rows.columns) == [*RAW.columns, *ISSUE_COLUMNS]
    assert (corrections.quarantined, corrections.likely_wrong, corrections.to_verify) == (1, 2, 3)


def test_quarantined_rows_first_then_likely_wrong_then_to_verify(corrections):
    rows = corrections.rows
    assert rows["问题类型"].tolist() == [QUARANTINED, *[DISAGREES] * 5]
    assert rows["把握"].tolist() == ["确定", LIKELY, LIKELY, TO_VERIFY, TO_VERIFY, TO_VERIFY]
    # Within a rank by field (ID number, name, sex, birth date, address); values something speaks for last.
    assert rows["visit_id"].tolist() == ["WJ9", "WJ1", "WJ2", "WJ4", "WJ3", "WJ5"]
    assert rows["问题说明"].iloc[-2].endswith("如本部门无误，无需修改")
    assert rows["问题说明"].iloc[-1] == ("本部门记录的出生日期与民政不一致，但人口普查的记录、本记录自己的公民身份号码中的"
                                      "出生日期与本部门一致；请核实，如本部门无误，无需修改")


def test_a_quarantined_row_is_the_departments_row_with_the_rules_chinese_text(corrections):
    row = corrections.rows.iloc[0]
    assert (row["visit_id"], row["dob"], row["diagnosis"]) == ("WJ9", "1984/13/45", "普通门诊")
    text = QUARANTINE_RULE_TEXTS["unparseable_birth_date"]
    assert (row["问题字段"], row["本部门的值"], row["问题说明"], row["如何改正"]) == (
        "出生日期（“dob”列）", "1984/13/45", text.problem, text.fix)


def test_a_disputed_record_is_its_whole_row_with_its_own_value_and_the_others_masked(corrections):
    rows = corrections.rows.set_index("visit_id")
    birth = rows.loc["WJ2"]
    assert (birth["dob"], birth["diagnosis"], birth["本部门的值"]) == ("1960/5/6", "普通门诊", "1960-05-06")
    assert birth["其他部门的值"] == "1960-05-**（民政）；1960-05（人口普查）"
    assert birth["问题字段"] == "出生日期（“dob”列）" and birth["如何改正"] == CONFLICT_CHECK_TEXTS["birth_date"]
    assert "2个其他部门的记录彼此一致" in birth["问题说明"]
    # Its own ID number in full, the other department's masked as products mask it.
    ids = rows.loc["WJ4"]
    assert (ids["本部门的值"], ids["其他部门的值"]) == ("33010619800909004X", "330106********0057（民政）")
    # Sex reads 男/女, never M/F; its own ID number is named as the reason.
    sex = rows.loc["WJ1"]
    assert (sex["本部门的值"], sex["其他部门的值"]) == ("男", "女（民政）")
    assert "公民身份号码所示的性别也与其他部门的值一致" in sex["问题说明"]


def test_no_english_in_any_chinese_cell(corrections):
    chinese = corrections.rows[list(ISSUE_COLUMNS)].fillna("")
    found = {column: [e for cell in chinese[column] for e in english_in(cell)] for column in ISSUE_COLUMNS
             if column != "本部门的值"}   # the department's own value, as its system holds it
    assert found == dict.fromkeys(found, [])
    assert english_in("姓名（“patient_name”列）") == [] and english_in("状态 granted") == list("granted")


def test_a_record_the_extract_no_longer_holds_keeps_its_key_and_the_disputed_value():
    disagreements = pd.DataFrame([disagreement("WJ7", "birth_date", "1950-01-02", [("civil_affairs", "1951-01-02", True)],
                                               likely_wrong=True)])
    corrections = build_corrections(HEALTH, quarantine_frame([]), disagreements, raw=RAW, departments=DEPARTMENTS)
    [row] = corrections.rows.to_dict("records")
    assert (row["visit_id"], row["dob"], row["patient_name"]) == ("WJ7", "1950-01-02", None)
    assert corrections.rows_not_found == 1


def test_a_two_column_key_is_split_back_into_its_columns():
    source = HEALTH.model_copy(update={"primary_key": ["hospital", "visit_id"]})
    disagreements = pd.DataFrame([disagreement("H1|WJ7", "name", "张三", [("civil_affairs", "张叁", True)],
                                               likely_wrong=True)])
    [row] = build_corrections(source, quarantine_frame([]), disagreements).rows.to_dict("records")
    assert (row["hospital"], row["visit_id"], row["patient_name"]) == ("H1", "WJ7", "张三")


def test_a_gbk_source_gets_a_gbk_file(tmp_path, corrections):
    path = write_department_file(HEALTH, corrections.rows, tmp_path / "health.csv")
    data = path.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    back = pd.read_csv(path, encoding="gbk", dtype=str, keep_default_na=False)
    assert list(back.columns) == [*RAW.columns, *ISSUE_COLUMNS]
    assert back["其他部门的值"].tolist() == corrections.rows["其他部门的值"].fillna("").tolist()


def test_an_excel_source_gets_a_workbook_whose_id_numbers_are_text(tmp_path):
    raw = pd.DataFrame({"编号": ["SF1"], "姓名": ["李明"], "出生日期": ["1979-07-22"], "身份证号": ["330106197907224259"]})
    disagreements = pd.DataFrame([{**disagreement("SF1", "name", "李明", [("civil_affairs", "李鸣", True)],
                                                  likely_wrong=True), "source": "justice"}])
    corrections = build_corrections(JUSTICE, quarantine_frame([]), disagreements, raw=raw, departments=DEPARTMENTS)
    path = write_department_file(JUSTICE, corrections.rows, tmp_path / "justice.xlsx")
    sheet = openpyxl.load_workbook(path)["在册人员"]
    header = [cell.value for cell in sheet[1]]
    assert header == [*raw.columns, *ISSUE_COLUMNS]
    id_cell = sheet.cell(row=2, column=header.index("身份证号") + 1)
    assert (id_cell.value, id_cell.data_type, id_cell.number_format) == ("330106197907224259", "s", "@")
    assert sheet.cell(row=2, column=header.index("其他部门的值") + 1).value == "李*（民政）"


def test_a_grid_form_comes_back_under_the_forms_own_sheet_name(tmp_path):
    from connectors.grid_form import GRID_FORM_SHEET

    source = SourceConfig(name="grid_updates", department="网格", role="grid_updates", kind="xlsx", path="grid.xlsx")
    rows = pd.DataFrame({"序号": ["9001"], "姓名": [None], "问题": ["姓名为空"]})
    path = write_department_file(source, rows, tmp_path / "grid_updates.xlsx")
    assert openpyxl.load_workbook(path).sheetnames == [GRID_FORM_SHEET]  # not Excel's default "Sheet1"


def test_a_consent_registry_gets_its_quarantine_only():
    source = SourceConfig(name="consent_registry", department="政务服务", role="consent", kind="parquet",
                          path="demo/consent_registry.parquet", primary_key=["consent_id"],
                          columns={"id_number": "sfzh", "status": "status"})
    raw_row = {"consent_id": "C1", "sfzh": "330106195001020012", "status": "也许"}
    quarantine = quarantine_frame([{"row_number": 1, "rule": "unknown_status", "rules": "unknown_status",
                                    "field": "status", "column": "status", "value": "也许", "message": "?",
                                    "raw_record": json.dumps(raw_row, ensure_ascii=False)}])
    rows = build_corrections(source, quarantine, None).rows
    assert rows[["consent_id", "问题字段", "问题说明"]].values.tolist() == [
        ["C1", "同意状态（“status”列）", QUARANTINE_RULE_TEXTS["unknown_status"].problem]]


# -- on the published demo district ------------------------------------------------------------


def export(home, source: str, out, capsys) -> pd.DataFrame:
    from pipelines.cli import main

    assert main(["corrections", "export", "--source", source, "--home", str(home), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    return pd.read_csv(out, encoding="gbk", dtype=str, keep_default_na=False)


@pytest.mark.integration
def test_the_demos_health_file_holds_its_quarantine_and_its_disagreements(published_demo, tmp_path, capsys):
    from publish import WarehouseReader

    settings, _ = published_demo
    reader = WarehouseReader(settings.home)
    exported = export(settings.home, "health", tmp_path / "health.csv", capsys)
    original = pd.read_csv(settings.home.demo_dir / "health_visits.csv", encoding="gbk", dtype=str, keep_default_na=False)
    assert list(exported.columns) == [*original.columns, *ISSUE_COLUMNS]

    quarantined = exported[exported["问题类型"] == QUARANTINED]
    assert sorted(quarantined["visit_id"]) == sorted(
        json.loads(r)["visit_id"] for r in reader.quarantined_rows("health")["raw_record"])
    disputed = exported[exported["问题类型"] == DISAGREES]
    expected = reader.disagreements("health")
    assert len(disputed) == len(expected) > 0
    assert exported["问题类型"].tolist() == sorted(exported["问题类型"], key=[QUARANTINED, DISAGREES].index)
    # Each disputed record: its own row from the extract, its value, and the others' masked.
    for _, want in expected.iterrows():
        [got] = disputed[(disputed["visit_id"] == want["source_key"])
                         & disputed["问题字段"].str.startswith(f"{CHINESE[want['field']]}（")].to_dict("records")
        assert got["本部门的值"] == ({"M": "男", "F": "女"}.get(want["value"], want["value"]))
        row = original[original["visit_id"] == want["source_key"]].iloc[0]
        assert [got[c] for c in original.columns] == row.tolist()
        for other in want["others"]:
            value, mask = other["value"], MASKS.get(want["field"])
            shown = mask.apply(value) if mask else {"M": "男", "F": "女"}[value]
            assert f"{shown}（" in got["其他部门的值"] and DEPARTMENTS[other["source"]] in got["其他部门的值"]
            assert shown == value or value not in got["其他部门的值"]
    assert set(disputed["把握"]) == {LIKELY, TO_VERIFY}
    chinese = exported[[c for c in ISSUE_COLUMNS if c != "本部门的值"]]
    assert [e for cell in chinese.to_numpy().ravel() for e in english_in(cell)] == []


CHINESE = {"name": "姓名", "sex": "性别", "birth_date": "出生日期", "id_number": "公民身份号码", "address": "住址"}


@pytest.mark.integration
def test_corrected_values_are_counted_fixed_by_the_next_run_and_leave_the_file(demo_copy, tmp_path, capsys):
    from pipelines.cli import main
    from publish import WarehouseReader

    home = demo_copy.home
    before = export(home, "health", tmp_path / "before.csv", capsys)
    # The clerk works through the 较确定 rows first, checks each against the ID card and corrects it in
    # the department's system; the golden value plays the card here.
    reader = WarehouseReader(home)
    columns = {"birth_date": "dob", "name": "patient_name"}
    sure = before[(before["问题类型"] == DISAGREES) & (before["把握"] == LIKELY)]
    fields = sure["问题字段"].str.split("（").str[0].map({CHINESE[f]: f for f in columns})
    sure = sure.assign(field=fields).dropna(subset=["field"])
    assert len(sure) >= 3
    tables = reader.read_tables("unified_population", "record_person")
    person = tables["record_person"].set_index("record_id")["person_id"]
    golden = tables["unified_population"].set_index("person_id")
    source_file = home.demo_dir / "health_visits.csv"
    extract = pd.read_csv(source_file, encoding="gbk", dtype=str, keep_default_na=False).set_index("visit_id")
    for visit, field in zip(sure["visit_id"], sure["field"], strict=True):
        extract.loc[visit, columns[field]] = golden.loc[person[f"health:{visit}"], field]
    extract.reset_index().to_csv(source_file, encoding="gbk", index=False)
    wrong = sure

    assert main(["run", "--home", str(home)]) == 0
    summary = capsys.readouterr().out
    run_id = reader.last_run().run_id
    fixes = reader.fixes(run_id)
    assert fixes["health"].conflicts == len(wrong) and fixes["health"].conflicts_before == len(before[
        before["问题类型"] == DISAGREES])
    # Departments that changed nothing fixed nothing, though some of their conflicts went away with these.
    assert {s: f.conflicts for s, f in fixes.items() if s not in ("health", "consent_registry")} == {
        "civil_affairs": 0, "justice": 0, "census": 0, "grid_updates": 0}
    [line] = [line for line in summary.splitlines() if line.startswith("health ")]
    assert line.split()[-2:] == [str(fixes["health"].rows), str(len(wrong))]

    after = export(home, "health", tmp_path / "after.csv", capsys)
    still = after[after["问题类型"] == DISAGREES]
    listed = set(zip(still["visit_id"], still["问题字段"], strict=True))
    assert listed & set(zip(wrong["visit_id"], wrong["问题字段"], strict=True)) == set()
    assert len(still) == len(before[before["问题类型"] == DISAGREES]) - len(wrong)


def test_every_text_the_file_may_hold_can_be_written_in_gbk():
    # A GBK department gets a GBK file: a character outside GBK in one of our texts would fail its export.
    texts = [*CONFLICT_CHECK_TEXTS.values(), *(t.problem + t.fix for t in QUARANTINE_RULE_TEXTS.values()),
             *ISSUE_COLUMNS, QUARANTINED, DISAGREES, LIKELY, TO_VERIFY, "确定", "…", "（“”）；、"]
    for text in texts:
        text.encode("gbk")
    assert set(CONFLICT_CHECK_TEXTS) == {"name", "sex", "birth_date", "id_number", "address"}
