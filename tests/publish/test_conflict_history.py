"""conflict_history holds each disagreement once, from the first published run that found it to the last: it grows
with what changes, not by every disagreement every night, and the next run still counts what was fixed."""

from __future__ import annotations

import duckdb

from core.home import DataHome
from publish import Warehouse
from tests.publish.conftest import make_inputs, policy, warehouse_rewritten

CIVIL = dict(name="civil", description="民政", kind="department", level="district", purpose="service_delivery",
             legal_basis="statutory", columns=["person_id", "name"])


def _night(home, district, run_id: str, *, name: str, birth_date: str) -> None:
    """A night on which health's record of 张伟 says ``name`` and ``birth_date`` (civil affairs: 张伟, 1950-01-01)."""
    records = district["records"].copy()
    at = records["record_id"] == "health:9"
    records.loc[at, "name"], records.loc[at, "birth_date"] = name, birth_date
    wh = Warehouse(home)
    wh.publish(wh.build_candidate(make_inputs({**district, "records": records}, run_id=run_id), policy(CIVIL)))


def _history(home) -> list[tuple]:
    with duckdb.connect(str(DataHome.at(home).warehouse_file), read_only=True) as con:
        return con.execute("SELECT record_id, field, value, first_run_id, last_run_id FROM conflict_history "
                           "ORDER BY ALL").fetchall()


def _fixed(home, run_id: str) -> tuple:
    with duckdb.connect(str(DataHome.at(home).warehouse_file), read_only=True) as con:
        return con.execute("SELECT numerator, denominator FROM quality_metrics WHERE run_id = ? AND source = 'health' "
                           "AND measure = 'conflicts_fixed'", [run_id]).fetchone()


def test_a_disagreement_is_one_row_over_the_runs_that_found_it(tmp_path, district):
    _night(tmp_path, district, "run1", name="张玮", birth_date="1950-01-02")
    _night(tmp_path, district, "run2", name="张伟", birth_date="1950-01-02")  # health corrected the name
    _night(tmp_path, district, "run3", name="张伟", birth_date="1950-01-02")  # nothing changed
    assert _fixed(tmp_path, "run2") == (1, 2) and _fixed(tmp_path, "run3") == (0, 1)
    _night(tmp_path, district, "run4", name="张玮", birth_date="1950-01-01")  # the name wrong again, the date fixed

    assert _fixed(tmp_path, "run4") == (1, 1)
    assert _history(tmp_path) == [
        ("civil_affairs:1", "birth_date", "1950-01-01", "run1", "run3"),
        ("civil_affairs:1", "name", "张伟", "run1", "run1"),
        ("civil_affairs:1", "name", "张伟", "run4", "run4"),  # found again after two runs without it: a new row
        ("health:9", "birth_date", "1950-01-02", "run1", "run3"),
        ("health:9", "name", "张玮", "run1", "run1"),
        ("health:9", "name", "张玮", "run4", "run4"),
    ]


def test_a_history_of_one_row_per_run_is_carried_as_spans(tmp_path, district):
    _night(tmp_path, district, "run1", name="张玮", birth_date="1950-01-02")
    with warehouse_rewritten(tmp_path) as con:  # as an earlier version kept it
        con.execute("CREATE TABLE old AS SELECT last_run_id AS run_id, source, record_id, field, value, likely_wrong "
                    "FROM conflict_history")
        con.execute("DROP TABLE conflict_history")
        con.execute("ALTER TABLE old RENAME TO conflict_history")

    _night(tmp_path, district, "run2", name="张伟", birth_date="1950-01-02")

    assert _fixed(tmp_path, "run2") == (1, 2)
    assert _history(tmp_path) == [
        ("civil_affairs:1", "birth_date", "1950-01-01", "run1", "run2"),
        ("civil_affairs:1", "name", "张伟", "run1", "run1"),
        ("health:9", "birth_date", "1950-01-02", "run1", "run2"),
        ("health:9", "name", "张玮", "run1", "run1"),
    ]

