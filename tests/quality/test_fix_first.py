"""The fix-first list: every department's problems in one list, most residents affected first."""

from __future__ import annotations

import re

import duckdb
import pandas as pd
import pytest

from connectors import load_sources
from quality.report import fix_first
from tests.quality.conftest import english_words, warehouse_path

_ROW = re.compile(r'<tr class="fix-first-row" data-kind="(\w+)" data-source="([\w*]+)" data-code="([^"]+)" '
                  r'data-affected="(\d*)" data-unit="(\w+)">')
_CONFLICT_FIELDS = ("name", "sex", "birth_date", "id_number", "address")


def test_problems_are_ranked_by_who_they_reach_and_told_in_chinese():
    problems = pd.DataFrame([
        {"kind": "conflict", "source": "census", "code": "name", "field": "name", "persons": 40, "rows": 60},
        {"kind": "quarantine", "source": "health", "code": "unparseable_birth_date", "field": "birth_date",
         "persons": None, "rows": 50, "value": "1988-13-45", "message": "出生日期 '1988-13-45' matches none"},
        {"kind": "soft", "source": "health", "code": "implausible_phone", "persons": None, "rows": 45},
        {"kind": "expectation", "source": "census", "code": "expect_column_max_to_be_between",
         "field": "record_date", "persons": None, "rows": None, "message": "the newest record_date is old"},
    ])
    ranked = fix_first(problems, "zh", {"census": "人口普查", "health": "卫健"})
    assert [(e["kind"], e["affected"], e["unit"]) for e in ranked] == [
        ("quarantine", 50, "rows"), ("soft", 45, "rows"), ("conflict", 40, "persons"), ("expectation", None, "rows")]
    quarantine, soft, conflict, expectation = ranked
    assert (quarantine["department"], quarantine["problem"], quarantine["example"]) == ("卫健", "出生日期无法识别", "1988-13-**")
    assert conflict["problem"] == "姓名与其他部门不一致，本部门的值可能有误"
    assert conflict["command"] == "silobreaker corrections export --source census"
    assert expectation["problem"] == "校验未通过：登记日期及时更新" and "停止更新" in expectation["fix"]
    assert soft["problem"] == "联系电话不像有效号码"
    assert [english_words(f"<p>{e['problem']} {e['fix']} {e['department']}</p>") for e in ranked] == [[]] * 4
    # The platform team's English names the codes and keeps the English message.
    english = fix_first(problems, "en")
    assert english[0]["problem"] == "unparseable_birth_date" and "matches none" in english[0]["fix"]


def shown(html: str) -> list[tuple[str, str, str, int | None, str]]:
    """The fix-first entries of a report, in the order shown (both the table and the folded rest)."""
    return [(k, s, c, int(a) if a else None, u) for k, s, c, a, u in _ROW.findall(html)]


def counted_from_the_tables(con: duckdb.DuckDBPyConnection, run_id: str, registers: set[str]) -> dict:
    """Every problem and its reach, counted with pandas straight from the published tables."""
    out: dict[tuple[str, str, str], tuple[int | None, str]] = {}
    quarantine = con.execute("SELECT source, rule FROM quarantine").df()
    for (source, rule), n in quarantine.groupby(["source", "rule"]).size().items():
        out[("quarantine", source, rule)] = (int(n), "rows")

    # A field is in conflict when two departments hold different values: birth dates at year-month, and
    # day against day where both know the day; addresses by the flat they point to (as text where none
    # can be read). A department holding a value other than the golden record's is likely wrong.
    def keys(field, value, flat):
        if pd.isna(value):
            return None, None
        text = str(value)
        if field == "birth_date":
            return text[:7], text if len(text) == 10 else None
        if field == "address":
            return (text if pd.isna(flat) else flat), None
        return text, None

    def differ(a, b):
        return a[0] != b[0] or (a[1] is not None and b[1] is not None and a[1] != b[1])

    held = con.execute("SELECT f.person_id, f.field, f.source, f.value, r.flat FROM field_conflicts f "
                       "JOIN source_records r USING (record_id)").df()
    held = held[held["field"].isin(_CONFLICT_FIELDS)]
    golden = con.execute(f"SELECT person_id, {', '.join(_CONFLICT_FIELDS)} FROM unified_population").df()
    golden = golden.set_index("person_id")
    flats = con.execute("SELECT address, flat FROM source_records WHERE address IS NOT NULL").df()
    flat_of = flats.dropna().drop_duplicates("address").set_index("address")["flat"]
    held["k"] = [keys(f, v, flat) for f, v, flat in zip(held["field"], held["value"], held["flat"], strict=True)]
    held["golden"] = [keys(f, golden.at[p, f], flat_of.get(golden.at[p, f]) if f == "address" else None)
                      for p, f in zip(held["person_id"], held["field"], strict=True)]
    held = held[held["k"].map(lambda k: k[0] is not None)]
    disputed = set()
    for (person, field), group in held.groupby(["person_id", "field"]):
        values = list(zip(group["source"], group["k"], strict=True))
        if any(sa != sb and differ(ka, kb) for sa, ka in values for sb, kb in values):
            disputed.add((person, field))
    on_conflict = held[[(p, f) in disputed for p, f in zip(held["person_id"], held["field"], strict=True)]]
    wrong = on_conflict[[differ(k, g) for k, g in zip(on_conflict["k"], on_conflict["golden"], strict=True)]]
    for (source, field), group in wrong.groupby(["source", "field"]):
        out[("conflict", source, field)] = (group["person_id"].nunique(), "persons")

    records = con.execute("SELECT source, person_id, id_number_valid, birth_date_conflict, sex_conflict "
                          "FROM source_records").df()
    flags = {"invalid_id_number": records["id_number_valid"].eq(False),
             "birth_date_conflict": records["birth_date_conflict"].eq(True),
             "sex_conflict": records["sex_conflict"].eq(True)}
    soft = con.execute("SELECT source, measure, numerator FROM quality_metrics WHERE run_id = ? "
                       "AND dimension = 'soft_problem'", [run_id]).df()
    for source, problem, rows in soft.itertuples(index=False):
        if problem in flags:
            flagged = records[flags[problem] & records["source"].eq(source)]
            assert len(flagged) == rows  # the flags published agree with what staging counted
            out[("soft", source, problem)] = (flagged["person_id"].nunique(), "persons")
        else:
            out[("soft", source, problem)] = (int(rows), "rows")

    entries = records.groupby(["source", "person_id"]).size()
    for source, group in entries[entries > 1].groupby(level=0):
        if source in registers:
            out[("duplicate", source, "duplicate_entry")] = (len(group), "persons")

    failed = con.execute("SELECT suite, expectation, unexpected_count FROM validation_results "
                         "WHERE run_id = ? AND NOT expectation_success", [run_id]).df()
    for suite, expectation, count in failed.itertuples(index=False):
        source = suite.removeprefix("staged_") if suite.startswith("staged_") else "*"
        out[("expectation", source, expectation)] = (None if pd.isna(count) else int(count), "rows")
    return out


@pytest.mark.integration
def test_the_fix_first_list_is_ordered_by_residents_and_starts_with_the_largest_problem(published_demo):
    settings, outcome = published_demo
    html = settings.home.report_file(outcome.run_id).read_text(encoding="utf-8")
    entries = shown(html)
    reach = [a or 0 for _, _, _, a, _ in entries]
    assert len(entries) > 10 and reach == sorted(reach, reverse=True)
    assert html.index('id="fix-first"') < html.index('id="trend-scores"')  # near the top, above the charts

    registers = {s.name for s in load_sources(settings.sources_file).person_sources if s.one_row_per == "person"}
    with duckdb.connect(str(warehouse_path(settings)), read_only=True) as con:
        expected = counted_from_the_tables(con, outcome.run_id, registers)
    # Every problem is listed once, with the reach the tables give it, and nothing else.
    assert sorted((k, s, c) for k, s, c, _, _ in entries) == sorted(expected)
    assert all(expected[(k, s, c)] == (a, u) for k, s, c, a, u in entries)
    kind, source, code, top, unit = entries[0]
    assert top == max(a or 0 for a, _ in expected.values()) > 0 and unit == "persons"
    # A visit log's repeat visits are not a problem to fix; a register's repeated entries are.
    assert ("duplicate", "health", "duplicate_entry") not in expected and "health" not in registers
    assert {s for k, s, _ in expected if k == "duplicate"} <= registers
    top_row = html.split('class="fix-first-row"', 2)[1]
    assert f"<code>silobreaker corrections export --source {source}</code>" in top_row
