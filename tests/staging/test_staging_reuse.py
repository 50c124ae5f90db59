"""A kept staging is exactly what staging the same extract again would give, or it is not used (issue 14)."""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
import pytest

from connectors import Lineage, SourceConfig
from staging import id_check_digit, stage_consent_records, stage_person_records
from staging.reuse import StagingStore

CST = dt.timezone(dt.timedelta(hours=8))
STAGED_AT = dt.datetime(2026, 11, 23, 10, 0, tzinfo=CST)
FUTURE_ID = "11010520261125002" + id_check_digit("11010520261125002")  # born 2026-11-25: two days after extraction
ID_1980 = "11010519800102123" + id_check_digit("11010519800102123")
PERSON = SourceConfig(name="civil_affairs", department="民政", kind="csv", path="people.csv", primary_key=["jmbh"],
                      columns={"name": "xm", "birth_date": "csrq", "id_number": "sfzh"},
                      date_formats=["%Y-%m-%d", "%Y-%m"])
CONSENT = SourceConfig(name="consent_registry", department="民政", kind="csv", path="consent.csv", role="consent",
                       primary_key=["cid"], columns={"id_number": "sfzh", "purpose": "yt", "status": "zt",
                                                     "decided_at": "sj"})


def people(*extra: dict) -> pd.DataFrame:
    rows = [{"jmbh": "1", "xm": "张伟", "csrq": "1980-01-02", "sfzh": ID_1980},
            {"jmbh": "2", "xm": "王芳", "csrq": None, "sfzh": "123"},  # quarantined, whatever the day
            {"jmbh": "2", "xm": "王芳", "csrq": None, "sfzh": None}, *extra]  # a repeated key
    return pd.DataFrame(rows, dtype=object)


def stage(frame: pd.DataFrame, at: dt.datetime, source: SourceConfig = PERSON):
    stage_fn = stage_consent_records if source.role == "consent" else stage_person_records
    return stage_fn(frame, source=source.name, primary_key=source.primary_key, columns=source.columns,
                    values=source.values, date_formats=source.date_formats, extracted_at=at)


def lineage(at: dt.datetime, content: str = "a" * 64, rows: int = 3) -> Lineage:
    return Lineage(source="civil_affairs", kind="csv", location="/d/people.csv", extracted_at=at, row_count=rows,
                   content_hash=content)


def assert_same_staging(kept, fresh) -> None:
    pd.testing.assert_frame_equal(kept.staged, fresh.staged)
    pd.testing.assert_frame_equal(kept.quarantine, fresh.quarantine)
    pd.testing.assert_frame_equal(kept.unmapped_values, fresh.unmapped_values, check_dtype=False)
    assert kept.soft_problems == fresh.soft_problems and kept.valid_until == fresh.valid_until


def without_time(result):
    return result.staged.drop(columns="extracted_at"), result.quarantine.drop(columns="extracted_at")


@pytest.mark.parametrize(("future_row", "first_change"), [
    ({"jmbh": "3", "xm": "李娜", "csrq": None, "sfzh": FUTURE_ID}, dt.datetime(2026, 11, 25, tzinfo=CST)),
    ({"jmbh": "3", "xm": "李娜", "csrq": "2026-12", "sfzh": None}, dt.datetime(2026, 12, 1, tzinfo=CST)),
    ({"jmbh": "3", "xm": "李娜", "csrq": "1990-03-04", "sfzh": None}, None),
], ids=["an ID born after the extraction day", "a birth month after it", "nothing after it"])
def test_valid_until_is_the_first_moment_staging_the_same_rows_gives_another_result(future_row, first_change):
    rows = people(future_row)
    first = stage(rows, STAGED_AT)
    assert first.valid_until == (None if first_change is None else pd.Timestamp(first_change))

    until = first_change or dt.datetime(2100, 1, 1, tzinfo=CST)
    just_before = stage(rows, until - dt.timedelta(seconds=1))
    for kept, fresh in zip(without_time(first), without_time(just_before), strict=True):
        pd.testing.assert_frame_equal(kept, fresh)
    assert first.soft_problems == just_before.soft_problems
    if first_change is not None:  # from that moment the row is judged otherwise
        on_the_day = stage(rows, until)
        assert not all(a.equals(b) for a, b in zip(without_time(first), without_time(on_the_day), strict=True)) \
            or first.soft_problems != on_the_day.soft_problems


def test_a_consent_decision_dated_ahead_holds_the_staging_until_it_is_no_longer_ahead():
    rows = pd.DataFrame([{"cid": "1", "sfzh": ID_1980, "yt": "sharing", "zt": "granted", "sj": "2026-11-30 10:00:00"},
                         {"cid": "2", "sfzh": ID_1980, "yt": "sharing", "zt": "granted", "sj": "2026-11-01 10:00:00"}],
                        dtype=object)
    first = stage(rows, STAGED_AT, CONSENT)
    # A decision more than a day after the read is quarantined; the day before it, it no longer is.
    assert first.quarantine["rule"].tolist() == ["future_decided_at"]
    assert first.valid_until == pd.Timestamp("2026-11-29 10:00", tz=CST)
    assert stage(rows, first.valid_until - pd.Timedelta(seconds=1), CONSENT).quarantine["rule"].tolist() == [
        "future_decided_at"]
    assert stage(rows, first.valid_until, CONSENT).quarantine.empty


def test_the_kept_staging_is_the_staging_of_a_later_read(tmp_path):
    rows = people({"jmbh": "3", "xm": "李娜", "csrq": None, "sfzh": FUTURE_ID})
    store = StagingStore(tmp_path)
    store.keep(PERSON, lineage(STAGED_AT), stage(rows, STAGED_AT))
    later = dt.datetime(2026, 11, 24, 23, 59, tzinfo=CST)

    assert store.known_extract(PERSON, pd.Timestamp(later)) == lineage(STAGED_AT)
    assert_same_staging(store.reuse(PERSON, lineage(later)), stage(rows, later))


@pytest.mark.parametrize(("why", "source", "read"), [
    ("other content", PERSON, lineage(dt.datetime(2026, 11, 24, tzinfo=CST), content="b" * 64)),
    ("another declaration", PERSON.model_copy(update={"date_formats": ["%Y%m%d"]}),
     lineage(dt.datetime(2026, 11, 24, tzinfo=CST))),
    ("read before it was staged", PERSON, lineage(STAGED_AT - dt.timedelta(days=1))),
    ("the ID's birth day has come", PERSON, lineage(dt.datetime(2026, 11, 25, tzinfo=CST))),
])
def test_a_kept_staging_is_not_used_for_another_read(tmp_path, why, source, read):
    store = StagingStore(tmp_path)
    store.keep(PERSON, lineage(STAGED_AT), stage(people({"jmbh": "3", "xm": "李娜", "sfzh": FUTURE_ID}), STAGED_AT))

    assert store.reuse(source, read) is None
    if why != "other content":
        assert store.known_extract(source, pd.Timestamp(read.extracted_at)) is None


def test_a_damaged_kept_staging_means_staging_again(tmp_path, caplog):
    store = StagingStore(tmp_path)
    store.keep(PERSON, lineage(STAGED_AT), stage(people(), STAGED_AT))
    (store.home.kept_staging_dir(PERSON.name) / "staged.parquet").write_bytes(b"not parquet")

    with caplog.at_level(logging.WARNING):
        assert store.reuse(PERSON, lineage(STAGED_AT + dt.timedelta(hours=1))) is None
    assert "cannot be read" in caplog.text


def test_keeping_replaces_the_staging_kept_before(tmp_path):
    store = StagingStore(tmp_path)
    store.keep(PERSON, lineage(STAGED_AT), stage(people(), STAGED_AT))
    more = people({"jmbh": "4", "xm": "赵敏", "csrq": "1970-05-06", "sfzh": None})
    store.keep(PERSON, lineage(STAGED_AT, content="c" * 64, rows=4), stage(more, STAGED_AT))

    assert store.reuse(PERSON, lineage(STAGED_AT)) is None
    assert len(store.reuse(PERSON, lineage(STAGED_AT, content="c" * 64, rows=4)).staged) == 2
    assert sorted(p.name for p in store.home.kept_staging_dir(PERSON.name).parent.iterdir()) == [PERSON.name]


def test_outcomes_kept_beside_a_staging_go_with_it(tmp_path):
    store = StagingStore(tmp_path)
    store.keep(PERSON, lineage(STAGED_AT), stage(people(), STAGED_AT))
    outcomes = {'["ExpectColumnValuesToNotBeNull"]': {"kind": "expect_column_values_to_not_be_null", "success": True}}
    store.keep_outcomes(lineage(STAGED_AT), outcomes)

    assert store.outcomes(lineage(STAGED_AT + dt.timedelta(hours=1))) == outcomes
    assert store.outcomes(lineage(STAGED_AT, content="b" * 64)) == {}  # another extract's staging
    store.keep(PERSON, lineage(STAGED_AT, content="b" * 64), stage(people(), STAGED_AT))
    assert store.outcomes(lineage(STAGED_AT, content="b" * 64)) == {}  # a new staging is validated anew


def test_a_staging_that_cannot_be_kept_is_logged_and_staged_again_next_time(tmp_path, caplog):
    store = StagingStore(tmp_path)
    store.home.kept_staging_dir(PERSON.name).parent.parent.mkdir(parents=True)
    store.home.kept_staging_dir(PERSON.name).parent.write_text("not a folder")  # e.g. a full or read-only disk

    with caplog.at_level(logging.WARNING):
        store.keep(PERSON, lineage(STAGED_AT), stage(people(), STAGED_AT))

    assert "cannot be kept" in caplog.text
    assert store.reuse(PERSON, lineage(STAGED_AT)) is None
