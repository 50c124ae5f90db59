"""quarantine_history holds each quarantined row once, from the first published run that quarantined it to the last
(rows alike in every column — a source's rows without their key — counted in one): it grows with what changes, not
by the whole quarantine every night, and the next run still counts what was fixed."""

from __future__ import annotations

import duckdb
import pandas as pd

from core.home import DataHome
from publish import Warehouse
from tests.publish.conftest import make_inputs, policy, warehouse_rewritten

CIVIL = dict(name="civil", description="民政", kind="department", level="district", purpose="service_delivery",
             legal_basis="statutory", columns=["person_id", "name"])


def _night(home, district, run_id: str, *, li_quarantined: bool, keyless: int) -> None:
    """A night on which health's record of 李娜 (health:10) is quarantined or staged, and ``keyless`` rows of the
    census came without their key."""
    rows = [dict(source="census", source_key=None, record_id=None, rule="missing_source_key",
                 message="key is empty")] * keyless
    if li_quarantined:
        rows.append(dict(source="health", source_key="10", record_id="health:10", rule="missing_name",
                         message="name is empty"))
    quarantine = pd.DataFrame(rows, columns=["source", "source_key", "record_id", "rule", "message"])
    staged = {**district}
    if li_quarantined:
        staged["records"] = district["records"][district["records"]["record_id"] != "health:10"]
        staged["mapping"] = district["mapping"][district["mapping"]["record_id"] != "health:10"]
    wh = Warehouse(home)
    wh.publish(wh.build_candidate(make_inputs(staged, run_id=run_id, quarantine=quarantine), policy(CIVIL)))


def _history(home) -> list[tuple]:
    with duckdb.connect(str(DataHome.at(home).warehouse_file), read_only=True) as con:
        return con.execute("SELECT source, record_id, rule, rows, first_run_id, last_run_id FROM quarantine_history "
                           "ORDER BY ALL").fetchall()


def _fixed(home, run_id: str) -> tuple | None:
    with duckdb.connect(str(DataHome.at(home).warehouse_file), read_only=True) as con:
        return con.execute("SELECT numerator, denominator, value FROM quality_metrics WHERE run_id = ? "
                           "AND source = 'health' AND measure = 'fixed'", [run_id]).fetchone()


def test_a_quarantined_row_is_one_row_over_the_runs_that_quarantined_it(tmp_path, district):
    _night(tmp_path, district, "run1", li_quarantined=True, keyless=2)
    _night(tmp_path, district, "run2", li_quarantined=True, keyless=2)  # nothing changed
    _night(tmp_path, district, "run3", li_quarantined=True, keyless=2)
    assert _fixed(tmp_path, "run2") == (0, 1, 0.0)  # a share of none fixed, not unknown
    _night(tmp_path, district, "run4", li_quarantined=False, keyless=3)  # health fixed 李娜's name; a third keyless row

    assert _fixed(tmp_path, "run4") == (1, 1, 1.0)
    assert _history(tmp_path) == [
        ("census", None, "missing_source_key", 2, "run1", "run3"),
        ("census", None, "missing_source_key", 3, "run4", "run4"),  # one more row alike: a new span
        ("health", "health:10", "missing_name", 1, "run1", "run3"),
    ]
    _night(tmp_path, district, "run5", li_quarantined=True, keyless=3)  # quarantined again after a run without it
    assert _fixed(tmp_path, "run5") == (0, 0, None)  # nothing of health was quarantined in run4: 0 of 0, no share
    assert _history(tmp_path)[1:] == [
        ("census", None, "missing_source_key", 3, "run4", "run5"),
        ("health", "health:10", "missing_name", 1, "run1", "run3"),
        ("health", "health:10", "missing_name", 1, "run5", "run5"),
    ]


def test_a_history_of_one_row_per_run_is_carried_as_spans(tmp_path, district):
    _night(tmp_path, district, "run1", li_quarantined=True, keyless=2)
    with warehouse_rewritten(tmp_path) as con:  # as an earlier version kept it
        con.execute("CREATE TABLE old AS SELECT last_run_id AS run_id, source, source_key, record_id, rule "
                    "FROM quarantine_history, range(rows)")
        con.execute("DROP TABLE quarantine_history")
        con.execute("ALTER TABLE old RENAME TO quarantine_history")
        assert con.execute("SELECT count(*) FROM quarantine_history").fetchone()[0] == 3

    _night(tmp_path, district, "run2", li_quarantined=False, keyless=2)

    assert _fixed(tmp_path, "run2") == (1, 1, 1.0)
    assert _history(tmp_path) == [
        ("census", None, "missing_source_key", 2, "run1", "run2"),
        ("health", "health:10", "missing_name", 1, "run1", "run1"),
    ]
