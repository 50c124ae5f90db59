"""Staging the consent registry: status codes, decision times, quarantine rules."""

import datetime as dt

import pandas as pd
import pytest

from core.errors import ConfigError
from staging import (
    CONSENT_COLUMNS,
    CONSENT_QUARANTINE_RULES,
    QUARANTINE_COLUMNS,
    id_check_digit,
    stage_consent_records,
)

EXTRACTED_AT = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
COLUMNS = {"id_number": "sfzh", "name": "xm", "purpose": "purpose", "recipient": "recipient", "status": "status",
           "decided_at": "decided_at", "channel": "channel", "expires_at": "expires_at"}
VALUES = {"status": {"同意": "granted", "拒绝": "refused", "撤回": "withdrawn"}}
SUBJECT = "11010519800102123" + id_check_digit("11010519800102123")


def consent(**overrides):
    row = {"consent_id": "c1", "sfzh": SUBJECT, "xm": "張偉", "purpose": "cross_department_sharing",
           "recipient": "health", "status": "同意", "decided_at": "2024-05-17 10:23:45", "channel": "政务APP",
           "expires_at": None}
    return row | overrides


def stage(rows, **options):
    arguments = dict(source="consent_registry", primary_key=["consent_id"], columns=COLUMNS, values=VALUES,
                     extracted_at=EXTRACTED_AT) | options
    return stage_consent_records(pd.DataFrame(rows, dtype=object), **arguments)


def test_a_consent_record_is_staged_with_canonical_values():
    staged = stage([consent(sfzh="110105800102123")]).staged
    assert list(staged.columns) == list(CONSENT_COLUMNS)
    assert staged.dtypes.astype(str).to_dict() == CONSENT_COLUMNS
    new_fields = ["categories", "expires_at", "guardian_id_number"]  # not mapped here: missing
    assert staged.iloc[0][new_fields].isna().all()
    assert staged.iloc[0].drop(new_fields).to_dict() == {
        "record_id": "consent_registry:c1",
        "source": "consent_registry",
        "source_key": "c1",
        "id_number": SUBJECT,  # upgraded from the 15-digit form
        "name": "张伟",
        "purpose": "cross_department_sharing",
        "recipient": "health",
        "status": "granted",
        "decided_at": pd.Timestamp("2024-05-17 02:23:45", tz="UTC"),  # 10:23:45 in Beijing
        "channel": "政务APP",
        "extracted_at": pd.Timestamp(EXTRACTED_AT),
    }


def test_categories_expiry_and_guardian_are_staged():
    columns = COLUMNS | {"categories": "lb", "expires_at": "yxq", "guardian_id_number": "jhr"}
    guardian = "11010519550102101" + id_check_digit("11010519550102101")
    rows = [consent(consent_id="1", lb="Basic，health、 JUDICIAL", yxq="2027-01-01", jhr=guardian),
            consent(consent_id="2", lb=None, yxq=None, jhr="123"),
            consent(consent_id="3", yxq="someday")]
    result = stage(rows, columns=columns)
    staged = result.staged
    assert staged.loc[0, "categories"] == "basic,health,judicial" and pd.isna(staged.loc[1, "categories"])
    assert staged.loc[0, "expires_at"] == pd.Timestamp("2026-12-31 16:00", tz="UTC")  # midnight in Beijing
    assert staged.loc[0, "guardian_id_number"] == guardian and pd.isna(staged.loc[1, "guardian_id_number"])  # not an ID
    assert result.quarantine["rule"].tolist() == ["unparseable_expires_at"]


@pytest.mark.parametrize(("raw", "status"), [("同意", "granted"), ("拒绝", "refused"), ("撤回", "withdrawn")])
def test_status_codes_map_to_decisions(raw, status):
    assert stage([consent(status=raw)]).staged.loc[0, "status"] == status


def test_canonical_statuses_need_no_map():
    assert stage([consent(status=" Withdrawn ")], values={}).staged.loc[0, "status"] == "withdrawn"


def test_decision_times_in_other_formats():
    rows = [consent(consent_id="1", decided_at="2024/5/17 10:23"), consent(consent_id="2", decided_at="2024-05-17")]
    staged = stage(rows, date_formats=["%Y/%m/%d %H:%M"]).staged
    assert staged["decided_at"].astype(str).tolist() == ["2024-05-17 02:23:00+00:00", "2024-05-16 16:00:00+00:00"]


# (row, rule, field, column, value, message)
CASES = [
    (consent(consent_id="c1"), None),
    (consent(consent_id="c1"), ("duplicate_source_key", "source_key", "consent_id", "c1",
     "source key 'c1' (consent_id) repeats row 1; keys must be unique: remove or merge the duplicate in the source "
     "system, or extend primary_key in sources.yaml")),
    (consent(consent_id=" "), ("missing_source_key", "source_key", "consent_id", " ",
     "the primary key (consent_id) is empty; every row needs a key: fill consent_id in the source system, or declare "
     "another primary_key for source 'consent_registry' in sources.yaml")),
    (consent(consent_id="c4", sfzh=None), ("missing_id_number", "id_number", "sfzh", None,
     "公民身份号码 is empty; a consent record must name its subject: fill column sfzh in the consent registry")),
    (consent(consent_id="c5", sfzh="1101051980"), ("malformed_id_number", "id_number", "sfzh", "1101051980",
     "公民身份号码 '1101051980' has 10 characters; expected 18 (or the old 15); correct the ID in the source system")),
    (consent(consent_id="c6", status="也许"), ("unknown_status", "status", "status", "也许",
     "同意状态 '也许' is not one of granted, refused, withdrawn, deletion_requested, deletion_revoked; correct it in the consent registry, or map it under "
     "values.status in sources.yaml (e.g. 同意: granted, 拒绝: refused, 撤回: withdrawn)")),
    (consent(consent_id="c7", status=None), ("unknown_status", "status", "status", None,
     "同意状态 is empty; correct it in the consent registry, or map it under values.status in sources.yaml "
     "(e.g. 同意: granted, 拒绝: refused, 撤回: withdrawn)")),
    (consent(consent_id="c8", purpose=""), ("missing_purpose", "purpose", "purpose", "",
     "用途 is empty; consent is always given for a purpose: fill column purpose in the consent registry")),
    (consent(consent_id="c9", decided_at="去年"), ("unparseable_decided_at", "decided_at", "decided_at", "去年",
     "决定时间 '去年' is not a date or time; write it as ISO 8601 (2024-05-01 10:00:00) in the consent registry, "
     "or add its format to date_formats in sources.yaml")),
    # Seen: a withdrawal without a date blocked the whole district's run; now the row is quarantined.
    (consent(consent_id="c10", decided_at=None), ("missing_decided_at", "decided_at", "decided_at", None,
     "决定时间 is empty; when a decision was made decides which one counts: fill column decided_at in the "
     "consent registry")),
    # Seen: a grant dated 2062 outranked every later withdrawal.
    (consent(consent_id="c15", decided_at="2062-02-19"), ("future_decided_at", "decided_at", "decided_at",
     "2062-02-19", "决定时间 '2062-02-19' is after the registry was read: a decision dated in the future would "
     "outrank every real later one; correct the date in the consent registry")),
    # Seen: recipient Health and purpose Service_Delivery missed the policy's health and service_delivery.
    (consent(consent_id="c16", recipient="Health", purpose="Cross_Department_Sharing"), None),
    (consent(consent_id="c11", expires_at="明年"), ("unparseable_expires_at", "expires_at", "expires_at", "明年",
     "有效期至 '明年' is not a date or time, so when the consent ends is unknown; write it as ISO 8601 (2027-05-01) "
     "in the consent registry, or add its format to date_formats in sources.yaml")),  # when is unknown, but the decision stands
    (consent(consent_id="c12", sfzh="3.30106E+17"), ("excel_number_id", "id_number", "sfzh", "3.30106E+17",
     "公民身份号码 '3.30106E+17' was turned into a number by Excel, which keeps only 15 digits, so its last digits "
     "are lost; format the column sfzh as text in Excel (设置单元格格式 → 文本) and enter the IDs again, or export "
     "them from the department's system again")),
    # Seen: a grant with an empty recipient stopped the district's publication; now the row is quarantined
    # (and, whatever it was, keeps its subject out of consent-based products: consent_problems).
    (consent(consent_id="c13", recipient=" "), ("missing_recipient", "recipient", "recipient", " ",
     "接收方 is empty; a decision is made for a recipient: fill column recipient in the consent registry, "
     "or write * where it covers every recipient")),
    # Seen: a withdrawal dated 2026年6月1日 was quarantined and ignored; the common forms are read.
    (consent(consent_id="c14", status="撤回", decided_at="2026年6月1日"), None),
]


def test_each_consent_rule_quarantines_its_row():
    result = stage([row for row, _ in CASES])
    expected = [
        {"row_number": number, "rule": rule, "field": field, "column": column, "value": value, "message": message}
        for number, (_, failure) in enumerate(CASES, start=1) if failure is not None
        for rule, field, column, value, message in [failure]
    ]
    got = result.quarantine[["row_number", "rule", "field", "column", "value", "message"]]
    assert got.astype(object).where(got.notna(), None).to_dict("records") == expected
    cut = stage([consent(consent_id="c1"), consent(consent_id="c2")], truncated_rows=(1,)).quarantine
    assert set(result.quarantine["rule"]) | set(cut["rule"]) == set(CONSENT_QUARANTINE_RULES)
    assert result.staged["source_key"].tolist() == ["c1", "c16", "c14"]
    folded = result.staged.set_index("source_key").loc["c16"]
    assert (folded["recipient"], folded["purpose"]) == ("health", "cross_department_sharing")
    withdrawal = result.staged.set_index("source_key").loc["c14"]
    assert withdrawal["status"] == "withdrawn"
    assert withdrawal["decided_at"] == pd.Timestamp("2026-05-31 16:00", tz="UTC")  # midnight in Beijing
    assert len(result.staged) + len(result.quarantine) == len(CASES)
    assert result.quarantine.dtypes.astype(str).to_dict() == QUARANTINE_COLUMNS


def test_a_consent_source_must_map_subject_purpose_and_status():
    with pytest.raises(ConfigError, match="must map \\['purpose', 'status'\\]"):
        stage([consent()], columns={"id_number": "sfzh"}, values={})


def test_status_map_targets_must_be_decisions():
    with pytest.raises(ConfigError, match=r"values.status maps to \['yes'\]"):
        stage([consent()], values={"status": {"同意": "yes"}})


def test_a_registry_without_a_recipient_column_decides_for_everyone():
    columns = {k: v for k, v in COLUMNS.items() if k != "recipient"}
    staged = stage([consent(status="撤回")], columns=columns).staged
    assert staged["recipient"].tolist() == ["*"] and staged["status"].tolist() == ["withdrawn"]


@pytest.mark.parametrize("written", ["2026年6月1日 9:05", "2026/6/1 09:05:00", "2026年6月1日 9时5分", "2026.6.1"])
def test_decision_times_in_the_forms_registries_write(written):
    staged = stage([consent(decided_at=written)]).staged
    assert staged["decided_at"].iloc[0].tz_convert("Asia/Shanghai").date() == dt.date(2026, 6, 1)
