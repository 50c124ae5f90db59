"""Each department's system is written in the form it really takes."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3

import openpyxl
import pyarrow.parquet as pq
import pytest

from demo.generate import DemoSummary
from tests.demo.demo_helpers import read_source


def test_health_export_is_gbk_and_not_utf8(demo: DemoSummary) -> None:
    raw = demo.files["health"].read_bytes()
    text = raw.decode("gbk")
    assert text.startswith("visit_id,patient_name,gender,dob,id_card,mobile,home_address,visit_date,diagnosis\r\n")
    assert "高血压" in text and "孕产妇建档" in text
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")


def test_census_extract_is_utf8_with_a_bom(demo: DemoSummary) -> None:
    raw = demo.files["census"].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    header = raw[3:].decode("utf-8").splitlines()[0]
    assert header == "普查编号,姓名,性别,出生年月,公民身份号码,街道,社区,网格,住址,户籍地址,曾用名"


def test_census_states_birth_year_and_month_only(demo: DemoSummary) -> None:
    births = read_source(demo, "census")["出生年月"]
    share_year_month = births.str.fullmatch(r"(19|20)[0-9]{2}(0[1-9]|1[0-2])").mean()
    assert share_year_month > 0.99
    assert not births.str.fullmatch(r"[0-9]{8}").any()


def test_justice_workbook_has_its_sheet_text_ids_and_real_date_cells(demo: DemoSummary) -> None:
    workbook = openpyxl.load_workbook(demo.files["justice"])
    assert workbook.sheetnames == ["在册人员"]
    sheet = workbook["在册人员"]
    header = [cell.value for cell in sheet[1]]
    assert header == ["编号", "姓名", "性别", "出生日期", "身份证号", "联系电话", "居住地址", "曾用名", "矫正类别", "入矫日期"]
    ids = [row[4] for row in sheet.iter_rows(min_row=2) if row[4].value is not None]
    assert ids and all(cell.data_type == "s" and cell.number_format == "@" for cell in ids)
    births = [row[3].value for row in sheet.iter_rows(min_row=2)]
    dated = [v for v in births if isinstance(v, dt.datetime)]
    typed = [v for v in births if isinstance(v, str)]
    assert len(dated) > 0.7 * len(births), "most birth dates are Excel date cells"
    assert any(re.fullmatch(r"[0-9]{4}\.[0-9]{2}\.[0-9]{2}", v) for v in typed), "some are typed as 1980.01.02"
    assert sheet.max_row - 1 == demo.counts["justice"]
    assert {row[8].value for row in sheet.iter_rows(min_row=2)} <= {"管制", "缓刑", "假释", "暂予监外执行"}


def test_civil_affairs_database_holds_every_row_in_its_table(demo: DemoSummary) -> None:
    with sqlite3.connect(demo.files["civil_affairs"]) as connection:
        (rows,) = connection.execute("SELECT count(*) FROM mz_resident").fetchone()
        columns = [r[1] for r in connection.execute("PRAGMA table_info(mz_resident)")]
        grades = {r[0] for r in connection.execute("SELECT DISTINCT cjdj FROM mz_resident")}
    assert rows == demo.counts["civil_affairs"] > 0
    assert columns == [
        "jmbh", "xm", "xb", "csrq", "sfzh", "lxdh", "jtzz", "jdmc", "sqmc", "wgmc", "djlr", "dbh", "cjdj", "gxsj",
    ]  # fmt: skip
    assert grades == {"", "一级", "二级", "三级", "四级"}


def test_civil_affairs_writes_dates_two_ways(demo: DemoSummary) -> None:
    births = read_source(demo, "civil_affairs")["csrq"]
    assert births.str.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}").mean() > 0.8
    assert births.str.fullmatch(r"[0-9]{8}").sum() > 0


def test_health_writes_birth_dates_in_four_formats(demo: DemoSummary) -> None:
    dob = read_source(demo, "health")["dob"]
    patterns = (
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}",
        r"[0-9]{4}/[0-9]{1,2}/[0-9]{1,2}",
        r"[0-9]{8}",
        r"[0-9]{4}年[0-9]{1,2}月[0-9]{1,2}日",
    )
    for pattern in patterns:
        assert dob.str.fullmatch(pattern).sum() > 0, pattern


def test_consent_registry_keeps_the_history_of_decisions(demo: DemoSummary) -> None:
    assert pq.read_schema(demo.files["consent_registry"]).names == [
        "consent_id", "sfzh", "xm", "purpose", "recipient", "status", "decided_at", "channel", "lb", "yxq", "jhr",
    ]  # fmt: skip
    consent = read_source(demo, "consent_registry")
    assert len(consent) == demo.counts["consent_registry"]
    assert set(consent["status"]) == {"同意", "拒绝", "撤回", "删除"}
    deletions = consent[consent["status"] == "删除"]
    assert (deletions["purpose"] == "*").all() and (deletions["recipient"] == "*").all()
    assert set(consent["purpose"]) == {"service_delivery", "cross_department_sharing", "statistics", "research", "*"}
    assert consent["lb"].str.contains("minor").any() and consent["lb"].str.contains("health").any()
    minors = consent[consent["lb"].str.contains("minor", na=False)]
    assert 0 < (minors["jhr"].fillna("") != "").mean() < 1  # most, not all, children's decisions name a guardian
    assert consent["yxq"].fillna("").str.fullmatch(r"([0-9]{4}-[0-9]{2}-[0-9]{2})?").all()
    assert set(consent["recipient"]) <= {"civil_affairs", "health", "justice", "census", "grid", "*"}
    assert set(consent["channel"]) == {"线下窗口", "政务APP", "电话"}
    assert consent["decided_at"].str.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}").all()
    history = consent.sort_values("decided_at").groupby(["sfzh", "purpose", "recipient"])["status"].agg(list)
    assert (history.map(len) > 1).any()
    granted_then_withdrawn = history.map(lambda s: "同意" in s and "撤回" in s[s.index("同意") + 1 :])
    assert granted_then_withdrawn.any()
    assert not history.map(lambda s: s[0] == "撤回").any(), "nobody withdraws what they never granted"
    share = consent["sfzh"].nunique() / demo.persons
    assert 0.65 < share < 0.75


@pytest.mark.parametrize(
    ("source", "column", "pattern"),
    [
        ("civil_affairs", "jmbh", r"MZ[0-9]{7}"),
        ("health", "visit_id", r"WJ[0-9]{8}"),
        ("justice", "编号", r"SF[0-9]{5}"),
        ("census", "普查编号", r"PC[0-9]{9}"),
        ("consent_registry", "consent_id", r"CS[0-9]{8}"),
    ],
)
def test_keys_are_unique_prefixed_strings(demo: DemoSummary, source: str, column: str, pattern: str) -> None:
    keys = read_source(demo, source)[column]
    assert keys.str.fullmatch(pattern).all()
    assert keys.is_unique


def test_every_clerk_and_grid_worker_of_the_demo_gets_a_file_excel_or_wps_opens() -> None:
    """A department's clerk and a grid worker have Excel/WPS, not Python: parquet alone reaches nobody there."""
    from pipelines.settings import DEMO_POLICY
    from publish.policy import load_policy

    recipients = load_policy(DEMO_POLICY).recipients
    by_hand = [r for r in recipients if r.kind in ("department", "grid_worker")]
    assert {r.kind for r in by_hand} == {"department", "grid_worker"}
    assert [r.name for r in by_hand if r.format not in ("xlsx", "csv")] == []
