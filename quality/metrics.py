"""Quality measures per run, computed in DuckDB inside the candidate warehouse.

Every run appends its measures to ``quality_metrics`` (carried over from run to run like the other
history tables), so a supervisor's trend is a query. Dimensions follow GB/T 36344-2018 (信息技术
数据质量评价指标) and the DAMA dimensions:

==============  ===========================================================================
dimension       measures (``measure`` column)
==============  ===========================================================================
completeness    ``field:<field>`` share of staged records with the field filled, for each field
                the source declares; ``score`` the purpose-weighted share (:data:`COMPLETENESS_WEIGHTS`)
validity        ``id_number_valid`` (GB 11643 check digit), ``birth_date`` (readable, in range),
                ``codes`` (coded values the source's maps recognise), ``rows_accepted``; ``score``
uniqueness      ``records_per_person``, ``duplicate_rate``; ``score`` = persons / records;
                ``one_row_per:<visit|case|event>`` when the source declares many rows per person
                by design (``one_row_per`` in sources.yaml): its score is then not graded
consistency     ``birth_date_vs_id``, ``sex_vs_id``, ``cross_department``; ``score``;
                ``likely_wrong:<field>``; ``conflicts_fixed`` (records that disagreed with another
                department in the previous published run, corrected since); district-wide (source
                ``*``) ``conflict_persons`` and ``conflict_persons:<field>``
timeliness      ``extract_age_days``, ``record_age_days`` (median), ``lag_days`` (behind the
                freshest department); ``score`` = records updated within :data:`FRESH_DAYS`
repeated_entry  ``shared_persons`` (held by another department too), ``copies_disagree``
quarantine      ``quarantined``, ``rule:<rule>``, ``fixed`` (quarantined in the previous
                published run, staged now), ``new``
soft_problem    ``<problem>`` staged rows with a soft problem (``invalid_id_number``, ``sex_conflict``,
                ``implausible_phone``, ``unmapped_value:<field>`` …: kept, flagged or left empty) /
                staged rows, as the source's staging report counted them
linking         (source ``*``) ``persons``, ``records``, ``auto_merged_pairs``, ``review_queue``
                (the ``review_queue`` table, else near misses), ``vetoed_pairs``
overall         ``score``: the mean of the source's dimension scores (uniqueness left out where it is
                low by design); ``grade`` is derived from it
==============  ===========================================================================

A ``score`` row carries ``numerator`` and ``denominator`` so that it can be recomputed from its
component rows; ``docs/quality.md`` gives the SQL for each one.

Example:
    >>> with duckdb.connect("candidate.duckdb") as con:
    ...     write_quality_metrics(con, "run-1", staging_reports)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb

from core.vocabulary import DISTRICT_TIME_ZONE
from quality.staging_report import StagingReport

__all__ = [
    "COMPLETENESS_WEIGHTS",
    "DIMENSIONS",
    "FRESH_DAYS",
    "HISTORY_SPAN_SQL",
    "QUALITY_HISTORY_DDL",
    "completeness_sql",
    "consistency_sql",
    "conflicts_fixed_sql",
    "cross_department_conflicts_sql",
    "cross_department_records_sql",
    "disagreements_sql",
    "grade",
    "linking_sql",
    "overall_sql",
    "quarantine_sql",
    "repeated_entry_sql",
    "timeliness_sql",
    "uniqueness_sql",
    "validity_sql",
    "write_quality_metrics",
]

log = logging.getLogger(__name__)

QUALITY_HISTORY_DDL: dict[str, str] = {
    "quality_metrics": """CREATE TABLE quality_metrics (
        run_id VARCHAR, source VARCHAR, dimension VARCHAR, measure VARCHAR, value DOUBLE,
        numerator BIGINT, denominator BIGINT)""",
    # Both histories keep one row per quarantined row or disagreement from the first published run that found it
    # to the last, consecutive runs in between (:func:`_extend_spans`): what a district quarantines and where its
    # departments disagree change little from night to night, so they grow with what changes, not by everything
    # again every night (384k disagreements and 15k quarantined rows a night at 1M people, each carried into every
    # later night's warehouse: benchmarks/results/history_growth.md). Rows alike in every column (several rows of a
    # source without their key) are one row counting them (``rows``).
    "quarantine_history": """CREATE TABLE quarantine_history (
        source VARCHAR, source_key VARCHAR, record_id VARCHAR, rule VARCHAR, rows BIGINT,
        first_run_id VARCHAR, last_run_id VARCHAR)""",
    "conflict_history": """CREATE TABLE conflict_history (
        source VARCHAR, record_id VARCHAR, field VARCHAR, value VARCHAR, likely_wrong BOOLEAN,
        first_run_id VARCHAR, last_run_id VARCHAR)""",
}
"""History tables the warehouse carries from run to run (see ``publish.warehouse``)."""

HISTORY_SPAN_SQL: dict[str, str] = {
    "quarantine_history": """SELECT source, source_key, record_id, rule, count(*) AS rows, run_id AS first_run_id,
        run_id AS last_run_id FROM {table} GROUP BY source, source_key, record_id, rule, run_id""",
    "conflict_history": """SELECT source, record_id, field, value, likely_wrong, run_id AS first_run_id,
        run_id AS last_run_id FROM {table}""",
}
"""Each history's rows from a warehouse that kept one row per quarantined row or disagreement and run (``run_id``:
``conflict_history`` before 2026-12-05, ``quarantine_history`` before 2026-12-06): each a span of that one run."""

DIMENSIONS: tuple[str, ...] = ("completeness", "validity", "uniqueness", "consistency", "timeliness")
"""The graded dimensions, in scorecard order."""

COMPLETENESS_WEIGHTS: dict[str, int] = {
    # Identity resolution and consent both hinge on these: a record without them cannot be linked.
    "name": 3, "id_number": 3, "birth_date": 3,
    # Needed to tell namesakes apart, to contact the person and to find them in their grid.
    "sex": 2, "phone": 2, "address": 2, "grid": 2,
    # Useful context; a department may legitimately leave them to the census.
    "street": 1, "community": 1, "record_date": 1, "lives_alone": 1, "low_income": 1,
}
"""Weight of each field in the completeness score, by what the field is for (see docs/quality.md).

Department attributes whose absence means "no" (``disability_grade``, ``chronic_disease``,
``pregnant``, ``corrections``, ``case_type``) are not measured: an empty cell there is an answer.
"""

FRESH_DAYS = 365
"""A record updated within this many days of its extract counts as timely."""

_CODED_FIELDS = ("sex", "lives_alone", "low_income", "disability_grade", "pregnant", "corrections")
_KEY_RULES = ("missing_source_key", "duplicate_source_key")
# How two values of a disputed field are compared, as field_conflicts finds them (publish.golden):
# ``k`` at the precision everyone has, ``day`` where both sides know more. Birth dates agree at
# year-month (the census knows only the month) and, where both give the day, day against day;
# addresses agree when they point to one flat however written (``source_records.flat``), as text
# where no flat can be read.
_CONFLICT_KEYS = {
    "name": ("{v}", None),
    "sex": ("{v}", None),
    "birth_date": ("substr({v}, 1, 7)", "CASE WHEN length({v}) = 10 THEN {v} END"),
    "id_number": ("{v}", None),
    "address": ("coalesce({flat}, {v})", None),
}
_RECORD_COLUMNS = {
    "record_id": "VARCHAR", "source": "VARCHAR", "source_key": "VARCHAR", "person_id": "VARCHAR", "flat": "VARCHAR",
    "id_number_disputed": "BOOLEAN", "name": "VARCHAR", "sex": "VARCHAR",
    "birth_date": "VARCHAR", "id_number": "VARCHAR", "id_number_valid": "BOOLEAN", "id_birth_date": "DATE",
    "id_sex": "VARCHAR", "birth_date_conflict": "BOOLEAN", "sex_conflict": "BOOLEAN", "phone": "VARCHAR",
    "address": "VARCHAR", "street": "VARCHAR", "community": "VARCHAR", "grid": "VARCHAR",
    "record_date": "DATE", "lives_alone": "BOOLEAN", "low_income": "BOOLEAN", "disability_grade": "TINYINT",
    "pregnant": "BOOLEAN", "corrections": "BOOLEAN", "extracted_at": "TIMESTAMPTZ",
}
# Columns of _q_records that are not a field a source fills.
_RECORD_KEYS = ("record_id", "source", "source_key", "person_id", "flat", "id_number_disputed", "extracted_at")
_QUARANTINE_COLUMNS = {"source": "VARCHAR", "source_key": "VARCHAR", "record_id": "VARCHAR", "rule": "VARCHAR",
                       "rules": "VARCHAR"}

_SELECT_COLUMNS = "source, dimension, measure, value, numerator, denominator"


def grade(score: float | None) -> str:
    """The letter shown on the scorecard: A >= 0.95, B >= 0.90, C >= 0.80, else D; ``-`` if unmeasured."""
    if score is None or score != score:
        return "-"
    return "A" if score >= 0.95 else "B" if score >= 0.90 else "C" if score >= 0.80 else "D"


def _ratio(numerator: str, denominator: str) -> str:
    return f"CAST({numerator} AS DOUBLE) / nullif({denominator}, 0)"


def completeness_sql(weights: Mapping[str, int] = COMPLETENESS_WEIGHTS) -> str:
    """Per field every row of the source is expected to state the filled share, and the weighted ``score`` over
    them: a grid-update form's ID number or phone, told when known, does not count against it."""
    per_field = "\nUNION ALL\n".join(
        f"""SELECT r.source, 'field:{f}' AS measure, {w} AS weight, count(r.{f}) AS numerator, count(*) AS denominator
FROM _q_records r JOIN _q_sources s USING (source) WHERE list_contains(s.expected, '{f}') GROUP BY r.source"""
        for f, w in weights.items()
    )
    return f"""
WITH per_field AS ({per_field})
SELECT source, 'completeness' AS dimension, measure, {_ratio('numerator', 'denominator')} AS value,
       numerator, denominator FROM per_field
UNION ALL
SELECT source, 'completeness', 'score', {_ratio('sum(weight * numerator)', 'sum(weight * denominator)')},
       sum(weight * numerator), sum(weight * denominator)
FROM per_field GROUP BY source"""


def validity_sql() -> str:
    """ID check digits, readable birth dates, recognised codes and accepted rows; ``score`` pools them."""
    coded_count = " + ".join(
        f"(count(r.{f}) FILTER (WHERE list_contains(s.fields, '{f}')))" for f in _CODED_FIELDS
    )
    return f"""
WITH q AS (
    SELECT source,
        count(*) FILTER (WHERE list_contains(string_split(coalesce(rules, rule), ','), 'malformed_id_number')) AS bad_ids,
        count(*) FILTER (WHERE list_has_any(string_split(coalesce(rules, rule), ','),
                                            ['unparseable_birth_date', 'birth_date_out_of_range'])) AS bad_dates
    FROM _q_quarantine GROUP BY source
), staged AS (
    SELECT r.source,
        count(*) FILTER (WHERE r.id_number_valid) AS valid_ids, count(r.id_number) AS ids,
        count(r.birth_date) AS dates, {coded_count} AS codes, count(*) AS records
    FROM _q_records r JOIN _q_sources s USING (source) GROUP BY r.source
), parts AS (
    SELECT s.source, 'id_number_valid' AS measure, s.valid_ids AS numerator, s.ids + coalesce(q.bad_ids, 0) AS denominator
    FROM staged s LEFT JOIN q USING (source)
    UNION ALL
    SELECT s.source, 'birth_date', s.dates, s.dates + coalesce(q.bad_dates, 0) FROM staged s LEFT JOIN q USING (source)
    UNION ALL
    SELECT s.source, 'codes', s.codes, s.codes + i.invalid_codes FROM staged s JOIN _q_sources i USING (source)
    UNION ALL
    SELECT s.source, 'rows_accepted', s.records, e.row_count FROM staged s JOIN _q_extracts e USING (source)
)
SELECT source, 'validity' AS dimension, measure, {_ratio('numerator', 'denominator')} AS value, numerator, denominator
FROM parts WHERE denominator > 0
UNION ALL
SELECT source, 'validity', 'score', {_ratio('sum(numerator)', 'sum(denominator)')}, sum(numerator), sum(denominator)
FROM parts WHERE denominator > 0 GROUP BY source"""


def uniqueness_sql() -> str:
    """Records per person within each source: a person entered twice in one register is a duplicate.

    A source that declares many rows per person by design (``one_row_per: visit``) is still measured,
    and gets a ``one_row_per:<grain>`` row saying so: the report notes it and the overall score leaves
    its uniqueness out (:func:`overall_sql`)."""
    return f"""
WITH c AS (SELECT source, count(*) AS records, count(DISTINCT person_id) AS persons FROM _q_records GROUP BY source)
SELECT source, 'uniqueness' AS dimension, 'records_per_person' AS measure, {_ratio('records', 'persons')} AS value,
       records AS numerator, persons AS denominator FROM c
UNION ALL
SELECT source, 'uniqueness', 'duplicate_rate', {_ratio('records - persons', 'records')}, records - persons, records FROM c
UNION ALL
SELECT source, 'uniqueness', 'score', {_ratio('persons', 'records')}, persons, records FROM c
UNION ALL
SELECT c.source, 'uniqueness', 'one_row_per:' || s.one_row_per, 1.0, NULL, NULL
FROM c JOIN _q_sources s USING (source) WHERE s.one_row_per <> 'person'"""


def cross_department_conflicts_sql() -> str:
    """``CREATE TEMP TABLE _q_cross``: every record on a conflict between two departments.

    A person's field is in conflict across departments when two records from different sources
    hold different values (compared as ``field_conflicts`` compares them: birth dates day against
    day and at year-month, addresses by the flat). A record whose value differs from the golden
    value is ``likely_wrong``: the golden value prefers a valid ID, a day-precise date and a sex
    that agrees with the ID, then the more trusted source.
    """
    return f"CREATE TEMP TABLE _q_cross AS\n{cross_department_records_sql('_q_records')}"


def _keyed_conflicts_sql(records: str) -> str:
    """Every value in ``field_conflicts`` with its comparison keys (``k``, ``day``), the golden value's
    (``golden_k``, ``golden_day``) and, for birth date and sex, the keys of what the record's own valid
    ID number says (``id_k``, ``id_day``); the records' own columns are read from ``records``."""
    own_id = "r.id_number_valid AND NOT coalesce(r.id_number_disputed, false)"
    id_keys = {"birth_date": ("substr(CAST(r.id_birth_date AS VARCHAR), 1, 7)", "CAST(r.id_birth_date AS VARCHAR)"),
               "sex": ("r.id_sex", None)}
    selects = []
    for field, (k, day) in _CONFLICT_KEYS.items():
        golden = f"CAST(u.{field} AS VARCHAR)"
        id_k, id_day = id_keys.get(field, (None, None))
        columns = {
            "k": k.format(v="f.value", flat="r.flat"),
            "day": day.format(v="f.value") if day else None,
            "golden_k": k.format(v=golden, flat="g.flat"),
            "golden_day": day.format(v=golden) if day else None,
            "id_k": f"CASE WHEN {own_id} THEN {id_k} END" if id_k else None,
            "id_day": f"CASE WHEN {own_id} THEN {id_day} END" if id_day else None,
        }
        keys = ", ".join(f"{expr or 'NULL::VARCHAR'} AS {name}" for name, expr in columns.items())
        flats = " LEFT JOIN _golden_flats g ON g.address = u.address" if field == "address" else ""
        selects.append(
            f"SELECT f.person_id, f.field, f.source, f.record_id, r.source_key, f.value, {keys}\n"
            f"FROM field_conflicts f JOIN unified_population u ON u.person_id = f.person_id "
            f"JOIN {records} r ON r.record_id = f.record_id{flats}\nWHERE f.field = '{field}'"
        )
    union = "\nUNION ALL\n".join(selects)
    return f"""_golden_flats AS (
    SELECT address, any_value(flat) AS flat FROM {records} WHERE address IS NOT NULL GROUP BY address
), keyed AS (
{union})"""


def _differ(a: str, b: str) -> str:
    """SQL: the values keyed ``{a}k, {a}day`` and ``{b}k, {b}day`` disagree (see :data:`_CONFLICT_KEYS`)."""
    return f"({a}k IS DISTINCT FROM {b}k OR coalesce({a}day <> {b}day, false))"


def cross_department_records_sql(records: str = "source_records") -> str:
    """The ``SELECT`` behind :func:`cross_department_conflicts_sql` (read-only use, e.g. the report);
    the records' own columns (flat, key, what their ID number says) are read from ``records``."""
    return f"""
WITH {_keyed_conflicts_sql(records)},
pf AS (
    SELECT DISTINCT a.person_id, a.field FROM keyed a JOIN keyed b
      ON a.person_id = b.person_id AND a.field = b.field AND a.source < b.source AND {_differ('a.', 'b.')}
)
SELECT k.person_id, k.field, k.source, k.record_id, k.value, {_differ('k.', 'k.golden_')} AS likely_wrong
FROM keyed k JOIN pf USING (person_id, field)"""


def disagreements_sql(source: str | None = None, records: str = "source_records") -> str:
    """``SELECT``: each record (of ``source``, or of every source) that disagrees with another
    department's record of the same person on a disputed field, one row per record and field.

    What a department is asked to check (``silobreaker corrections export``) and what the next run
    counts as fixed (``conflicts_fixed``), from one definition. Columns: ``person_id, field, source,
    record_id, source_key, value``; ``likely_wrong`` (its value differs from the golden value);
    ``backing`` (how many other departments hold the golden value against it); ``supporters`` (the
    other departments whose records agree with it at its precision, none of theirs disagreeing);
    for birth date and sex, what the record's own valid ID number says: ``own_id_differs``
    (otherwise than the record), ``own_id_agrees`` (... and what the golden value says),
    ``own_id_supports`` (what the record says); ``others`` (list of ``{source, value, golden}``:
    each other department's value that differs from it, and whether it is the golden one).
    """
    only = f"WHERE m.source = '{source.replace(chr(39), chr(39) * 2)}'" if source is not None else ""
    return f"""
WITH {_keyed_conflicts_sql(records)},
pairs AS (
    SELECT m.person_id, m.field, m.source, m.record_id, m.source_key, m.value,
           {_differ('m.', 'm.golden_')} AS likely_wrong,
           m.id_k IS NOT NULL AS own_id_known, m.id_k IS NOT NULL AND {_differ('m.', 'm.id_')} AS own_id_differs,
           m.id_k IS NOT NULL AND NOT {_differ('m.id_', 'm.golden_')} AS id_says_golden,
           o.source AS other_source, o.value AS other_value, NOT {_differ('o.', 'o.golden_')} AS other_golden,
           {_differ('m.', 'o.')} AS other_differs,
           -- agreeing supports a value only at its precision: a census year-month does not back a day
           NOT {_differ('m.', 'o.')} AND (m.day IS NULL OR o.day IS NOT NULL) AS other_supports
    FROM keyed m JOIN keyed o ON o.person_id = m.person_id AND o.field = m.field AND o.source <> m.source
    {only}
)
SELECT person_id, field, source, record_id, any_value(source_key) AS source_key, any_value(value) AS value,
       bool_or(likely_wrong) AS likely_wrong,
       count(DISTINCT other_source) FILTER (WHERE other_differs AND other_golden) AS backing,
       list_filter(list(DISTINCT other_source ORDER BY other_source) FILTER (WHERE other_supports),
                   lambda s: NOT list_contains(list(other_source) FILTER (WHERE other_differs), s)) AS supporters,
       bool_or(own_id_differs) AS own_id_differs, bool_or(own_id_differs AND id_says_golden) AS own_id_agrees,
       bool_or(own_id_known AND NOT own_id_differs) AS own_id_supports,
       list(DISTINCT {{'source': other_source, 'value': other_value, 'golden': other_golden}})
           FILTER (WHERE other_differs) AS others
FROM pairs GROUP BY person_id, field, source, record_id
HAVING bool_or(other_differs)
ORDER BY source, record_id, field"""


def consistency_sql() -> str:
    """Stated vs ID-derived birth date and sex; records agreeing across departments; conflict counts."""
    return f"""
WITH multi AS (
    SELECT person_id FROM _q_records GROUP BY person_id HAVING count(DISTINCT source) >= 2
), parts AS (
    SELECT source, 'birth_date_vs_id' AS measure,
           count(*) FILTER (WHERE NOT coalesce(birth_date_conflict, false)) AS numerator, count(*) AS denominator
    FROM _q_records WHERE id_number_valid AND birth_date IS NOT NULL GROUP BY source
    UNION ALL
    SELECT source, 'sex_vs_id', count(*) FILTER (WHERE NOT coalesce(sex_conflict, false)), count(*)
    FROM _q_records WHERE id_number_valid AND sex IS NOT NULL GROUP BY source
    UNION ALL
    SELECT r.source, 'cross_department',
           count(*) - count(*) FILTER (WHERE r.record_id IN (SELECT record_id FROM _q_cross WHERE likely_wrong)),
           count(*)
    FROM _q_records r SEMI JOIN multi USING (person_id) GROUP BY r.source
)
SELECT source, 'consistency' AS dimension, measure, {_ratio('numerator', 'denominator')} AS value, numerator, denominator
FROM parts WHERE denominator > 0
UNION ALL
SELECT source, 'consistency', 'score', {_ratio('sum(numerator)', 'sum(denominator)')}, sum(numerator), sum(denominator)
FROM parts WHERE denominator > 0 GROUP BY source
UNION ALL
SELECT source, 'consistency', 'likely_wrong:' || field, {_ratio('count(DISTINCT record_id) FILTER (WHERE likely_wrong)', 'count(DISTINCT record_id)')},
       count(DISTINCT record_id) FILTER (WHERE likely_wrong), count(DISTINCT record_id)
FROM _q_cross GROUP BY source, field
UNION ALL
SELECT '*', 'consistency', 'conflict_persons:' || field, count(DISTINCT person_id),
       count(DISTINCT person_id), (SELECT count(*) FROM multi)
FROM _q_cross GROUP BY field
UNION ALL
SELECT '*', 'consistency', 'conflict_persons', count(DISTINCT person_id), count(DISTINCT person_id), (SELECT count(*) FROM multi)
FROM _q_cross"""


def timeliness_sql(fresh_days: int = FRESH_DAYS) -> str:
    """Age of the extract, age of the records, lag behind the freshest department, share updated recently."""
    return f"""
WITH dated AS (
    SELECT source, TRY_CAST(record_date AS DATE) AS d, CAST(extracted_at AT TIME ZONE '{DISTRICT_TIME_ZONE}' AS DATE) AS x
    FROM _q_records
), per AS (
    SELECT source, max(d) AS newest, median(x - d) AS median_age,
           count(*) FILTER (WHERE d IS NOT NULL AND x - d <= {int(fresh_days)}) AS fresh, count(d) AS dated
    FROM dated GROUP BY source
), newest AS (SELECT max(newest) AS d FROM per)
SELECT e.source, 'timeliness' AS dimension, 'extract_age_days' AS measure,
       date_diff('second', e.extracted_at, now()) / 86400.0 AS value, NULL::BIGINT AS numerator, NULL::BIGINT AS denominator
FROM _q_extracts e JOIN _q_sources USING (source)
UNION ALL
SELECT source, 'timeliness', 'record_age_days', CAST(median_age AS DOUBLE), NULL, NULL FROM per WHERE dated > 0
UNION ALL
SELECT source, 'timeliness', 'lag_days', CAST((SELECT d FROM newest) - newest AS DOUBLE), NULL, NULL FROM per WHERE dated > 0
UNION ALL
SELECT source, 'timeliness', 'score', {_ratio('fresh', 'dated')}, fresh, dated FROM per WHERE dated > 0"""


def repeated_entry_sql() -> str:
    """重复录入: people a department holds that another also holds, and how often their copies disagree."""
    return f"""
WITH held AS (SELECT DISTINCT source, person_id FROM _q_records),
multi AS (SELECT person_id FROM held GROUP BY person_id HAVING count(*) >= 2),
disagree AS (SELECT DISTINCT person_id FROM _q_cross),
per AS (
    SELECT h.source, count(*) AS persons, count(m.person_id) AS shared, count(d.person_id) AS disagreeing
    FROM held h LEFT JOIN multi m USING (person_id) LEFT JOIN disagree d USING (person_id) GROUP BY h.source
)
SELECT source, 'repeated_entry' AS dimension, 'shared_persons' AS measure, {_ratio('shared', 'persons')} AS value,
       shared AS numerator, persons AS denominator FROM per
UNION ALL
SELECT source, 'repeated_entry', 'copies_disagree', {_ratio('disagreeing', 'shared')}, disagreeing, shared FROM per
UNION ALL
SELECT '*', 'repeated_entry', 'shared_persons', {_ratio('count(m.person_id)', 'count(*)')}, count(m.person_id), count(*)
FROM (SELECT DISTINCT person_id FROM held) p LEFT JOIN multi m USING (person_id)
UNION ALL
SELECT '*', 'repeated_entry', 'copies_disagree', {_ratio('count(d.person_id)', 'count(*)')}, count(d.person_id), count(*)
FROM multi m LEFT JOIN disagree d USING (person_id)"""


def previous_run_sql(run_id: str) -> str:
    """``SELECT run_id``: the published run before ``run_id`` (the last one in ``runs`` that is not it)."""
    run = run_id.replace("'", "''")
    return f"SELECT run_id FROM runs WHERE run_id <> '{run}' ORDER BY published_at DESC LIMIT 1"


def quarantine_sql(run_id: str) -> str:
    """Quarantined rows per source and rule, and what the previous published run's quarantine became."""
    key_rules = ", ".join(f"'{r}'" for r in _KEY_RULES)
    fixed = "coalesce(sum(p.rows) FILTER (WHERE p.record_id IN (SELECT record_id FROM _q_records)), 0)"
    return f"""
WITH previous_run AS ({previous_run_sql(run_id)}
), previous AS (
    SELECT h.source, h.record_id, h.rows FROM quarantine_history h
    WHERE h.last_run_id = (SELECT run_id FROM previous_run) AND h.rule NOT IN ({key_rules}) AND h.record_id IS NOT NULL
), now_q AS (SELECT DISTINCT source, record_id FROM _q_quarantine WHERE rule NOT IN ({key_rules}))
SELECT e.source, 'quarantine' AS dimension, 'quarantined' AS measure,
       {_ratio('coalesce(q.n, 0)', 'e.row_count')} AS value, coalesce(q.n, 0) AS numerator, e.row_count AS denominator
FROM _q_extracts e LEFT JOIN (SELECT source, count(*) AS n FROM _q_quarantine GROUP BY source) q USING (source)
UNION ALL
SELECT q.source, 'quarantine', 'rule:' || q.rule, {_ratio('count(*)', 'any_value(e.row_count)')}, count(*), any_value(e.row_count)
FROM _q_quarantine q JOIN _q_extracts e USING (source) GROUP BY q.source, q.rule
UNION ALL
-- every person source the previous run read and this one declares, 0 of 0 where it quarantined nothing (not "not
-- measured"); a consent registry's decisions are not person records, so whether one was fixed is not seen here
SELECT e.source, 'quarantine', 'fixed', {_ratio(fixed, 'coalesce(sum(p.rows), 0)')}, {fixed}, coalesce(sum(p.rows), 0)
FROM (SELECT DISTINCT source FROM extraction_log WHERE run_id = (SELECT run_id FROM previous_run)
      AND source IN (SELECT source FROM _q_sources)) e
LEFT JOIN previous p USING (source) GROUP BY e.source
UNION ALL
-- every source read, 0 where nothing is new (a missing row read as "not measured" beside a 0 for fixed)
SELECT e.source, 'quarantine', 'new', count(n.record_id), count(n.record_id), NULL
FROM _q_extracts e LEFT JOIN now_q n ON n.source = e.source
  AND NOT EXISTS (SELECT 1 FROM previous p WHERE p.record_id = n.record_id)
WHERE (SELECT count(*) FROM previous_run) > 0 GROUP BY e.source"""


def conflicts_fixed_sql(run_id: str) -> str:
    """Of each source's records that disagreed with another department in the previous published run
    (``conflict_history``, :func:`disagreements_sql`), those its department has since corrected.

    A record's disagreement on a field is fixed when the record is staged now with a different,
    non-empty value there, and that value is not likely wrong (it agrees with the golden value, or
    no department disagrees any more). A conflict that went away because *another* department
    changed its value is that department's fix, not this one's: the value here did not change.
    """
    now_values = "\nUNION ALL\n".join(
        f"SELECT record_id, '{field}' AS field, CAST({field} AS VARCHAR) AS value FROM _q_records WHERE {field} IS NOT NULL"
        for field in _CONFLICT_KEYS
    )
    return f"""
WITH previous_run AS ({previous_run_sql(run_id)}
), previous AS (
    SELECT h.source, h.record_id, h.field, h.value FROM conflict_history h
    WHERE h.last_run_id = (SELECT run_id FROM previous_run)
), now_values AS ({now_values}
), wrong_now AS (SELECT DISTINCT record_id, field FROM _q_cross WHERE likely_wrong
), judged AS (
    SELECT p.source, n.value IS NOT NULL AND n.value <> p.value AND w.record_id IS NULL AS fixed
    FROM previous p LEFT JOIN now_values n USING (record_id, field) LEFT JOIN wrong_now w USING (record_id, field)
)
SELECT source, 'consistency' AS dimension, 'conflicts_fixed' AS measure,
       {_ratio('count(*) FILTER (WHERE fixed)', 'count(*)')} AS value, count(*) FILTER (WHERE fixed) AS numerator,
       count(*) AS denominator
FROM judged GROUP BY source"""


def linking_sql() -> str:
    """People resolved, pairs merged automatically and pairs left for review (source ``*``)."""
    return """
SELECT '*' AS source, 'linking' AS dimension, 'persons' AS measure, count(*) AS value,
       count(*) AS numerator, NULL::BIGINT AS denominator FROM unified_population
UNION ALL SELECT '*', 'linking', 'records', count(*), count(*), NULL FROM record_person
UNION ALL SELECT '*', 'linking', 'auto_merged_pairs', count(*), count(*), NULL FROM _q_pairs WHERE decision = 'link'
UNION ALL SELECT '*', 'linking', 'review_queue', count(*), count(*), NULL FROM _q_review
UNION ALL SELECT '*', 'linking', 'vetoed_pairs', count(*), count(*), NULL FROM _q_pairs WHERE decision = 'vetoed'"""


def overall_sql(run_id: str) -> str:
    """The mean of each source's dimension scores (the scorecard's last column).

    Uniqueness is left out for a source with many rows per person by design (a ``one_row_per:``
    row): a visit log's persons / records measures how often people visit, not duplicate entry."""
    run = run_id.replace("'", "''")
    dims = ", ".join(f"'{d}'" for d in DIMENSIONS)
    return f"""
WITH by_design AS (
    SELECT DISTINCT source FROM quality_metrics
    WHERE run_id = '{run}' AND dimension = 'uniqueness' AND measure LIKE 'one_row_per:%'
)
SELECT source, 'overall' AS dimension, 'score' AS measure, avg(value) AS value,
       NULL::BIGINT AS numerator, NULL::BIGINT AS denominator
FROM quality_metrics WHERE run_id = '{run}' AND measure = 'score' AND dimension IN ({dims}) AND value IS NOT NULL
  AND NOT (dimension = 'uniqueness' AND source IN (SELECT source FROM by_design))
GROUP BY source"""


def _extend_spans(con: duckdb.DuckDBPyConnection, table: str, now: str, run_id: str) -> None:
    """Record this run's rows of a history (``table``, :data:`QUALITY_HISTORY_DDL`) from ``now`` (a query of its
    columns but the two runs): a row the previous published run had too, alike in every column, extends its span to
    this run; any other starts a span."""
    columns = [c for (c, *_) in con.execute(f"DESCRIBE {table}").fetchall() if c not in ("first_run_id", "last_run_id")]
    same = " AND ".join(f"h.{c} IS NOT DISTINCT FROM n.{c}" for c in columns)
    con.execute(f"CREATE TEMP TABLE _q_now AS SELECT DISTINCT {', '.join(columns)} FROM ({now})")
    try:
        previous = con.execute(previous_run_sql(run_id)).fetchone()
        if previous is not None:
            con.execute(f"UPDATE {table} h SET last_run_id = ? FROM _q_now n WHERE h.last_run_id = ? AND {same}",
                        [run_id, previous[0]])
        con.execute(f"INSERT INTO {table} SELECT n.*, ?, ? FROM _q_now n "
                    f"WHERE NOT EXISTS (SELECT 1 FROM {table} h WHERE h.last_run_id = ? AND {same})",
                    [run_id, run_id, run_id])
    finally:
        con.execute("DROP TABLE _q_now")


def write_quality_metrics(con: duckdb.DuckDBPyConnection, run_id: str, staging_reports: Sequence[StagingReport]) -> int:
    """Compute this run's measures and append them (and this run's quarantine) to the history tables.

    Runs inside the candidate warehouse after every published table and the carried-over history
    exist. ``staging_reports`` (one per source, as the staged assets write them) say which fields a
    source declares, its role and its unrecognised codes; without them every person source found in
    ``source_records`` is measured on the fields it fills.

    Returns:
        The number of measures written for ``run_id``.
    """
    _prepare(con, run_id, staging_reports)
    try:
        con.execute(cross_department_conflicts_sql())
        parts = (completeness_sql(), validity_sql(), uniqueness_sql(), consistency_sql(), timeliness_sql(),
                 repeated_entry_sql(), quarantine_sql(run_id), conflicts_fixed_sql(run_id), linking_sql())
        for sql in parts:
            con.execute(f"INSERT INTO quality_metrics SELECT ?, {_SELECT_COLUMNS} FROM ({sql})", [run_id])
        con.execute(f"INSERT INTO quality_metrics SELECT ?, {_SELECT_COLUMNS} FROM ({overall_sql(run_id)})", [run_id])
        soft = _soft_problem_rows(run_id, staging_reports)
        if soft:
            con.executemany("INSERT INTO quality_metrics VALUES (?, ?, ?, ?, ?, ?, ?)", soft)
        _extend_spans(con, "quarantine_history", "SELECT source, source_key, record_id, rule, count(*) AS rows "
                      "FROM _q_quarantine GROUP BY source, source_key, record_id, rule", run_id)
        _extend_spans(con, "conflict_history", "SELECT source, record_id, field, value, likely_wrong "
                      f"FROM ({disagreements_sql(records='_q_records')})", run_id)
        written = con.execute("SELECT count(*) FROM quality_metrics WHERE run_id = ?", [run_id]).fetchall()[0][0]
    finally:
        for name in ("_q_cross", "_q_sources"):
            con.execute(f"DROP TABLE IF EXISTS {name}")
        for name in ("_q_review", "_q_records", "_q_quarantine", "_q_extracts", "_q_pairs"):
            con.execute(f"DROP VIEW IF EXISTS {name}")
    log.info("run %s: %d quality measures", run_id, written)
    return written


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return {row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()}


def _projection(present: set[str], wanted: Mapping[str, str]) -> str:
    return ", ".join(name if name in present else f"NULL::{kind} AS {name}" for name, kind in wanted.items())


def _prepare(con: duckdb.DuckDBPyConnection, run_id: str, staging_reports: Sequence[StagingReport]) -> None:
    # Views with every column the measures read, so a warehouse built from partial frames still measures.
    con.execute(f"CREATE TEMP VIEW _q_records AS SELECT {_projection(_columns(con, 'source_records'), _RECORD_COLUMNS)} "
                "FROM source_records")
    con.execute(f"CREATE TEMP VIEW _q_quarantine AS SELECT {_projection(_columns(con, 'quarantine'), _QUARANTINE_COLUMNS)} "
                "FROM quarantine")
    con.execute("CREATE TEMP VIEW _q_extracts AS SELECT source, row_count, extracted_at FROM extraction_log "
                f"WHERE run_id = '{run_id.replace(chr(39), chr(39) * 2)}'")
    pair_columns = _columns(con, "link_pairs")
    decision = "decision" if "decision" in pair_columns else "NULL::VARCHAR AS decision"
    con.execute(f"CREATE TEMP VIEW _q_pairs AS SELECT {decision} FROM link_pairs")
    # The review queue (pairs awaiting a reviewer) when the warehouse keeps one; else the near misses.
    has_queue = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'review_queue' "
                            "AND database_name = current_database()").fetchall()[0][0]
    con.execute("CREATE TEMP VIEW _q_review AS "
                + ("SELECT 1 AS pair FROM review_queue" if has_queue else "SELECT 1 AS pair FROM _q_pairs WHERE decision = 'near_miss'"))
    rows = _source_rows(con, staging_reports)
    con.execute("CREATE TEMP TABLE _q_sources (source VARCHAR, fields VARCHAR[], expected VARCHAR[], invalid_codes BIGINT, "
                "one_row_per VARCHAR)")
    if rows:
        con.executemany("INSERT INTO _q_sources VALUES (?, ?, ?, ?, ?)", rows)


def _source_rows(con: duckdb.DuckDBPyConnection, staging_reports: Sequence[StagingReport]) -> list[list[Any]]:
    person_reports = [r for r in staging_reports if r.role != "consent" and r.fields]
    if person_reports:
        return [[r.source, sorted(set(r.fields)), sorted(set(r.expected or r.fields)), _invalid_codes(r.soft_problems),
                 r.one_row_per] for r in person_reports]
    # No declarations: a source declares what it fills somewhere.
    sources = [row[0] for row in con.execute("SELECT DISTINCT source FROM _q_records ORDER BY 1").fetchall()]
    fields = [f for f in _RECORD_COLUMNS if f not in _RECORD_KEYS]
    rows = []
    for source in sources:
        filled = con.execute(
            "SELECT " + ", ".join(f"count({f}) > 0" for f in fields) + " FROM _q_records WHERE source = ?", [source]
        ).fetchall()[0]
        stated = [f for f, has in zip(fields, filled, strict=True) if has]
        rows.append([source, stated, stated, 0, "person"])
    return rows


def _soft_problem_rows(run_id: str, staging_reports: Sequence[StagingReport]) -> list[list[Any]]:
    # Counted by staging in Python; kept here so the report can list them after the staging reports are gone.
    return [[run_id, r.source, "soft_problem", problem, n / r.staged if r.staged else None, n, r.staged]
            for r in staging_reports for problem, n in sorted(r.soft_problems.items()) if n]


def _invalid_codes(soft_problems: Mapping[str, int]) -> int:
    return int(sum(n for problem, n in soft_problems.items()
                   if problem.split(":", 1)[0] in ("unmapped_value", "unrecognised_value")
                   and problem.split(":", 1)[-1] in _CODED_FIELDS))
