"""A kept staging is exactly what staging the same extract again would give, or it is not used (issue 14)."""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd
import pytest

from connectors import Lineage, SourceConfig
from staging import id_check_digit, stage_consent_records, stage_person_records
from staging.reuse import StagingStore
from staging.stage import KnownRows

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
    (store.home.kept_staging_dir(PERSON.name) / "staged.arrow").write_bytes(b"not an Arrow file")

    with caplog.at_level(logging.WARNING):
        assert store.reuse(PERSON, lineage(STAGED_AT + dt.timedelta(hours=1))) is None
        assert store.known_rows(PERSON, pd.Timestamp(STAGED_AT + dt.timedelta(hours=1))) is None
    # Said once, though staging again reads it a second time for the rows it could take.
    assert [r.levelno for r in caplog.records if "cannot be read" in r.getMessage()] == [logging.WARNING]


def test_a_kept_staging_an_earlier_version_wrote_without_digests_is_staged_again_without_a_warning(tmp_path, caplog):
    # The first night after the upgrade that gave kept frames their digests: expected, not a warning on every source.
    store = StagingStore(tmp_path)
    store.keep(PERSON, lineage(STAGED_AT), stage(people(), STAGED_AT))
    for digest in store.home.kept_staging_dir(PERSON.name).glob("*.sha256"):
        digest.unlink()

    with caplog.at_level(logging.INFO, logger="staging.reuse"):
        assert store.reuse(PERSON, lineage(STAGED_AT + dt.timedelta(hours=1))) is None
    said = [r for r in caplog.records if "cannot be read" in r.getMessage()]
    assert [r.levelno for r in said] == [logging.INFO] and "no sha256 beside it" in said[0].getMessage()


def test_a_kept_staging_changed_in_a_few_bytes_is_never_reused(tmp_path):
    # Arrow files have no checksum: some such changes read back as other values, without an error.
    store = StagingStore(tmp_path)
    rows = people(*({"jmbh": str(i), "xm": f"李娜{i}", "csrq": "1990-03-04", "sfzh": None} for i in range(3, 400)))
    store.keep(PERSON, lineage(STAGED_AT, rows=len(rows)), stage(rows, STAGED_AT))
    path = store.home.kept_staging_dir(PERSON.name) / "staged.arrow"
    data = path.read_bytes()
    later = lineage(STAGED_AT + dt.timedelta(hours=1), rows=len(rows))
    for at in range(64, len(data) - 64, max(1, len(data) // 40)):
        path.write_bytes(data[:at] + bytes(b ^ 0x5A for b in data[at:at + 3]) + data[at + 3:])
        assert store.reuse(PERSON, later) is None, f"bytes {at}..{at + 2} changed"
        assert store.known_rows(PERSON, later.extracted_at) is None
    path.write_bytes(data)
    assert store.reuse(PERSON, later) is not None


def test_a_kept_staging_moved_from_another_source_is_not_reused(tmp_path, caplog):
    # Seen (an audit): census's and health's kept stagings swapped, digests and all, were read as each other's.
    store = StagingStore(tmp_path)
    store.keep(PERSON, lineage(STAGED_AT), stage(people(), STAGED_AT))
    consent = pd.DataFrame([{"cid": "1", "sfzh": ID_1980, "yt": "sharing", "zt": "granted", "sj": "2026-11-01 10:00:00"}],
                           dtype=object)
    store.keep(CONSENT, lineage(STAGED_AT, content="d" * 64, rows=1), stage(consent, STAGED_AT, CONSENT))
    mine, theirs = (store.home.kept_staging_dir(s.name) for s in (PERSON, CONSENT))
    for name in ("staged.arrow", "staged.arrow.sha256"):
        (theirs / name).replace(mine / name)

    later = STAGED_AT + dt.timedelta(hours=1)
    with caplog.at_level(logging.WARNING, logger="staging.reuse"):
        assert store.reuse(PERSON, lineage(later)) is None
        assert StagingStore(tmp_path).known_rows(PERSON, pd.Timestamp(later)) is None
    assert caplog.text.count("holds records of 'consent_registry', not of 'civil_affairs'") == 2


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


# -- rows of a changed extract taken from the kept staging ---------------------------------------------

SEXED = PERSON.model_copy(update={"columns": {**PERSON.columns, "sex": "xb", "address": "dz"},
                                  "values": {"sex": {"1": "M", "2": "F"}}})


def day_one() -> pd.DataFrame:
    rows = [{"jmbh": str(i), "xm": f"张{i}", "csrq": "1980-01-02", "sfzh": None, "xb": "1", "dz": f"翠苑社区{i}幢"}
            for i in range(1, 11)]
    rows[1]["sfzh"] = ID_1980[:-1] + ("0" if ID_1980[-1] != "0" else "1")  # a wrong check digit: a soft problem
    rows[2]["xb"] = "男"  # not in the values map: an unmapped value
    rows[3]["xm"] = None  # quarantined
    rows += [{**rows[4], "xm": "张五重"}]  # a repeated key: quarantined
    return pd.DataFrame(rows, dtype=object)


def day_two() -> pd.DataFrame:
    """Day one's file sent again with a day's changes, in another order."""
    one = {row["jmbh"]: row for row in day_one().to_dict("records")[:10]}
    repeat_of_5 = day_one().to_dict("records")[10]
    rows = [
        {"jmbh": "12", "xm": "李十二", "csrq": "1990-03-04", "sfzh": None, "xb": "2", "dz": "桂花社区1幢"},  # new
        repeat_of_5,  # now the first row of key 5: staged, and day one's row 5 below is the repeat
        one["8"],  # cut off by the reader (truncated_rows)
        one["7"], one["9"],  # as they were: taken
        one["5"],  # repeats key 5: quarantined
        one["4"], one["3"], one["2"],  # quarantined, unmapped value, wrong check digit: staged again
        {**one["1"], "dz": "翠苑社区99幢"},  # moved: staged again
        one["10"],  # as it was: taken
        {**one["7"], "xm": "张七甲"},  # repeats key 7: quarantined
    ]  # key 6 is gone
    return pd.DataFrame(rows, dtype=object)


def staged_from(frame: pd.DataFrame, at: dt.datetime, known=None, truncated_rows=()):
    return stage_person_records(frame, source=SEXED.name, primary_key=SEXED.primary_key, columns=SEXED.columns,
                                values=SEXED.values, date_formats=SEXED.date_formats, extracted_at=at,
                                truncated_rows=truncated_rows, known=known)


def assert_same_rows_staging(taken, whole) -> None:
    assert_same_staging(taken, whole)
    pd.testing.assert_frame_equal(taken.reusable, whole.reusable)


def test_a_changed_extract_takes_the_rows_it_repeats_and_stages_the_same_as_staging_it_whole(tmp_path, caplog):
    store = StagingStore(tmp_path)
    store.keep(SEXED, lineage(STAGED_AT), staged_from(day_one(), STAGED_AT))
    later = dt.datetime(2026, 11, 24, 9, 0, tzinfo=CST)
    known = store.known_rows(SEXED, pd.Timestamp(later))
    # Kept for taking: the staged rows without a soft problem (not the wrong check digit or the unmapped sex).
    assert sorted(known.reusable.column("record_id").to_pylist()) == sorted(f"civil_affairs:{i}" for i in (1, 5, 6, 7, 8, 9, 10))

    with caplog.at_level(logging.INFO, logger="staging.stage"):
        taken = staged_from(day_two(), later, known, truncated_rows=[2])
    whole = staged_from(day_two(), later, truncated_rows=[2])

    assert_same_rows_staging(taken, whole)
    assert "3 of 12 rows as staged before, 9 staged" in caplog.text  # keys 7, 9 and 10
    assert (taken.staged["extracted_at"] == pd.Timestamp(later)).all()


def test_rows_taken_over_a_larger_extract_give_the_whole_staging(tmp_path):
    rng = np.random.default_rng(5)
    n = 400
    first = pd.DataFrame({
        "jmbh": [str(i) for i in range(n)], "xm": [f"王{i}" for i in range(n)],
        "csrq": rng.choice(["1950-03-04", "1988-12", "bad", None], n).tolist(), "sfzh": [None] * n,
        "xb": rng.choice(["1", "2", "X", None], n).tolist(), "dz": [f"桂花社区{i % 37}幢" for i in range(n)],
    }, dtype=object)
    store = StagingStore(tmp_path)
    store.keep(SEXED, lineage(STAGED_AT), staged_from(first, STAGED_AT))
    second = first.copy()
    changed = rng.choice(n, 20, replace=False)
    second.loc[changed, "dz"] = "荷花社区1幢"
    second = second.drop(index=rng.choice(n, 8, replace=False))
    second = pd.concat([second, first.sample(6, random_state=3).assign(xm="重复")]).sample(frac=1, random_state=4)
    later = dt.datetime(2026, 11, 30, tzinfo=CST)

    known = store.known_rows(SEXED, pd.Timestamp(later))
    assert_same_rows_staging(staged_from(second, later, known, truncated_rows=[0, 17]),
                             staged_from(second, later, truncated_rows=[0, 17]))


def test_a_consent_registry_takes_the_decisions_it_repeats():
    rows = pd.DataFrame([{"cid": str(i), "sfzh": ID_1980, "yt": "sharing", "zt": "granted",
                          "sj": f"2026-11-{i + 1:02d} 10:00:00"} for i in range(6)], dtype=object)
    first = stage(rows, STAGED_AT, CONSENT)
    changed = rows.copy()
    changed.loc[2, "zt"] = "withdrawn"
    changed.loc[4, "sj"] = "2026-12-30 10:00:00"  # ahead of the read: quarantined
    known = KnownRows.of(first)

    taken = stage_consent_records(changed, source=CONSENT.name, primary_key=CONSENT.primary_key,
                                  columns=CONSENT.columns, extracted_at=STAGED_AT, known=known)
    assert_same_rows_staging(taken, stage(changed, STAGED_AT, CONSENT))


@pytest.mark.parametrize(("why", "source", "at"), [
    ("another declaration", SEXED.model_copy(update={"values": {"sex": {"1": "M", "2": "F", "男": "M"}}}),
     dt.datetime(2026, 11, 24, tzinfo=CST)),
    ("read before it was staged", SEXED, STAGED_AT - dt.timedelta(days=1)),
])
def test_rows_are_not_taken_from_a_staging_that_does_not_hold(tmp_path, why, source, at):
    store = StagingStore(tmp_path)
    store.keep(SEXED, lineage(STAGED_AT), staged_from(day_one(), STAGED_AT))
    assert store.known_rows(source, pd.Timestamp(at)) is None


def test_an_extract_of_only_rows_staged_before_stages_nothing_again(caplog):
    first = staged_from(day_one(), STAGED_AT)
    reordered = day_one().iloc[[6, 5, 4, 0]]  # the rows staged without a soft problem, another order
    later = dt.datetime(2026, 11, 24, tzinfo=CST)

    with caplog.at_level(logging.INFO, logger="staging.stage"):
        taken = staged_from(reordered, later, KnownRows.of(first))
    assert_same_rows_staging(taken, staged_from(reordered, later))
    assert "4 of 4 rows as staged before, 0 staged" in caplog.text


def test_a_kept_staging_that_lacks_a_row_it_lists_means_staging_every_row(caplog):
    first = staged_from(day_one(), STAGED_AT)
    damaged = KnownRows.of(first)
    damaged = KnownRows(damaged.staged.slice(1), damaged.reusable, damaged.valid_until)  # key 1's staged row lost
    later = dt.datetime(2026, 11, 24, tzinfo=CST)

    with caplog.at_level(logging.WARNING, logger="staging.stage"):
        taken = staged_from(day_one(), later, damaged)
    assert_same_rows_staging(taken, staged_from(day_one(), later))
    assert "lacks 1 rows it lists as reusable; staging every row" in caplog.text
