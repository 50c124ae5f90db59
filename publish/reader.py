"""The published warehouse's read side: every question asked of it, answered by a typed method.

Assets (the previous linking, last run's row counts), the CLI (summary, review, report, quarantine
export) and the quality report all read the published warehouse through :class:`WarehouseReader`,
so the SQL over published tables lives here and in the rest of ``publish`` only. Every connection
is read-only; a data home without a warehouse yet reads as empty (``None`` or no rows), never as
an error.

Example:
    >>> reader = WarehouseReader(DataHome.resolve())
    >>> run = reader.last_run()
    >>> run.run_id if run else "nothing published yet"                 # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

from core.home import DataHome, HomeLike
from publish.areas import AreaSummary, area_summary
from publish.generations import Generations
from quality.corrections import DISAGREEMENT_COLUMNS
from quality.metrics import cross_department_records_sql, disagreements_sql
from quality.quarantine import QUARANTINE_READ_COLUMNS
from quality.report import EXAMPLES_PER_KIND, ReportInputs
from staging.schema import CANONICAL_COLUMNS, DAY_DATE_COLUMNS, empty_canonical_frame

__all__ = ["AuditAnchor", "Fixes", "PublishedRun", "RunSummary", "WarehouseReader"]

log = logging.getLogger(__name__)

_METRIC_COLUMNS = ["run_id", "source", "dimension", "measure", "value", "numerator", "denominator"]


@dataclass(frozen=True)
class PublishedRun:
    """A run that published, as the ``runs`` table records it."""

    run_id: str
    published_at: datetime
    persons: int = 0


@dataclass(frozen=True)
class RunSummary:
    """What the published warehouse holds, for the CLI's end-of-run summary.

    Attributes:
        records: staged records mapped to a person.
        persons: rows of ``unified_population``.
        tables: every table, by name.
        products: ``(recipient, rows)`` of each product published by the run asked about.
        entries: ``(policy entry, rows)`` of the same: a ``"*"`` entry's area products (one per grid)
            summed under the entry's name.
    """

    records: int
    persons: int
    tables: tuple[str, ...]
    products: tuple[tuple[str, int], ...]
    entries: tuple[tuple[str, int, int], ...] = ()


@dataclass(frozen=True)
class Fixes:
    """What a source's department corrected since the previous published run (``None``: not measured,
    e.g. on the first run).

    Attributes:
        rows: quarantined rows of the previous run staged now (measure ``fixed``), of ``rows_before``.
        conflicts: records that disagreed with another department in the previous run, corrected
            since (measure ``conflicts_fixed``), of ``conflicts_before``.
    """

    rows: int | None = None
    rows_before: int | None = None
    conflicts: int | None = None
    conflicts_before: int | None = None


@dataclass(frozen=True)
class AuditAnchor:
    """One product's audit entry as the warehouse's ``publication_log`` recorded it when it was built."""

    run_id: str
    recipient: str
    seq: int
    hash: str
    key_id: str | None


#: (published path, path read instead) already warned of by this process.
_WARNED: set[tuple[Path, Path]] = set()


class WarehouseReader:
    """Read-only questions to a data home's published warehouse."""

    def __init__(self, home: HomeLike) -> None:
        self.home = DataHome.at(home)
        self.path = self.home.warehouse_file

    @property
    def exists(self) -> bool:
        """Whether anything has been published yet."""
        return self.path.exists()

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection to the published warehouse; if its file is damaged (not the SHA-256 recorded
        when it was published; before that was recorded: it does not open, or is cut short), to the newest
        earlier generation that is whole (logged), so a run can still build on the last good publication.

        Raises:
            TerminalError: it is damaged and no earlier generation is whole (:meth:`Generations.require_readable`).
        """
        generations = Generations(self.home)
        readable = generations.readable_warehouse()
        if readable is None:
            generations.require_readable()  # a damaged warehouse with nothing whole to read instead is refused
        if readable is None or readable.resolve() == self.path.resolve():
            return duckdb.connect(str(self.path), read_only=True)
        if (self.path, readable) not in _WARNED:  # once per process: a run connects a dozen times
            _WARNED.add((self.path, readable))
            log.warning("the published warehouse %s is damaged; reading %s instead", self.path, readable)
        return duckdb.connect(str(readable), read_only=True)

    def tables(self) -> tuple[str, ...]:
        """Names of the published tables (none before the first publication)."""
        if not self.exists:
            return ()
        with self.connect() as con:
            return tuple(row[0] for row in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall())

    def columns(self, table: str) -> list[tuple[str, str, str]]:
        """``(name, type, comment)`` of each column of a published table, in order (empty if absent)."""
        if not self.exists:
            return []
        with self.connect() as con:
            return [(name, str(kind), comment or "") for name, kind, comment in con.execute(
                "SELECT column_name, data_type, comment FROM duckdb_columns() WHERE table_name = ? "
                "ORDER BY column_index", [table]).fetchall()]

    def read_tables(self, *tables: str) -> dict[str, pd.DataFrame]:
        """Whole tables, by name; those the warehouse lacks (or no warehouse yet) are left out.

        Example:
            >>> WarehouseReader(home).read_tables("record_person", "issued_person_ids")  # doctest: +SKIP
        """
        if not self.exists:
            return {}
        with self.connect() as con:
            present = _table_names(con)
            return {table: con.execute(f"SELECT * FROM {table}").df() for table in tables if table in present}

    def last_run(self) -> PublishedRun | None:
        """The newest published run, or ``None`` before the first publication."""
        if not self.exists:
            return None
        with self.connect() as con:
            if "runs" not in _table_names(con):
                return None
            rows = con.execute(
                "SELECT run_id, published_at, persons FROM runs ORDER BY published_at DESC LIMIT 1"
            ).fetchall()
        return PublishedRun(rows[0][0], rows[0][1], int(rows[0][2] or 0)) if rows else None

    def previous_extracted_rows(self, source: str) -> int | None:
        """Rows read from ``source`` by the last published run (``None`` before the first publication,
        or if that run did not read it)."""
        return self._last_run_rows("extraction_log", "source", source)

    def previous_staged_rows(self, source: str) -> int | None:
        """Rows of ``source`` staged by the last published run (``None`` before the first publication)."""
        return self._last_run_rows("validation_results", "suite", f"staged_{source}")

    def _last_run_rows(self, table: str, key_column: str, key: str) -> int | None:
        """``row_count`` the last published run recorded in ``table`` for ``key`` (``None`` if none)."""
        if not self.exists:
            return None
        with self.connect() as con:
            if not {table, "runs"} <= _table_names(con):
                return None
            row = con.execute(
                f"""SELECT max(t.row_count) FROM {table} t WHERE t.{key_column} = ?
                    AND t.run_id = (SELECT run_id FROM runs ORDER BY published_at DESC LIMIT 1)""",
                [key],
            ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def kept_records(self, source: str) -> pd.DataFrame:
        """The records of ``source`` the last publication holds (``source_records``), as staged records
        (:data:`staging.schema.CANONICAL_COLUMNS`, text dates): what a grid-update source keeps between forms."""
        frame = empty_canonical_frame()
        if not self.exists:
            return frame
        with self.connect() as con:
            if "source_records" not in _table_names(con):
                return frame
            present = _columns(con, "source_records")
            picks = [f"CAST({c} AS VARCHAR) AS {c}" if c in DAY_DATE_COLUMNS else c  # DATE there, text here
                     for c in CANONICAL_COLUMNS if c in present]
            rows = con.execute(f"SELECT {', '.join(picks)} FROM source_records WHERE source = ? ORDER BY record_id",
                               [source]).df()
        return pd.concat([frame, rows], ignore_index=True).astype(CANONICAL_COLUMNS) if len(rows) else frame

    def quarantined_rows(self, source: str) -> pd.DataFrame:
        """The rows the last publication holds back for ``source``
        (:data:`quality.quarantine.QUARANTINE_READ_COLUMNS`), in file order."""
        columns = list(QUARANTINE_READ_COLUMNS)
        if not self.exists:
            return pd.DataFrame(columns=columns)
        with self.connect() as con:
            present = _columns(con, "quarantine")
            selected = ", ".join(f'"{c}"' if c in present else f'NULL AS "{c}"' for c in columns)
            return con.execute(
                f"SELECT {selected} FROM quarantine WHERE source = ? ORDER BY row_number", [source]
            ).df()

    def disagreements(self, source: str) -> pd.DataFrame:
        """``source``'s records that disagree with another department's record of the same person
        (:func:`quality.metrics.disagreements_sql`; empty before the first publication)."""
        if not self.exists:
            return pd.DataFrame(columns=list(DISAGREEMENT_COLUMNS))
        with self.connect() as con:
            if not {"field_conflicts", "unified_population", "source_records"} <= _table_names(con):
                return pd.DataFrame(columns=list(DISAGREEMENT_COLUMNS))
            return con.execute(disagreements_sql(source)).df()

    def extraction(self, source: str) -> tuple[str, str] | None:
        """``(run_id, content_hash)`` of the last published run's read of ``source``, or ``None``."""
        if not self.exists:
            return None
        with self.connect() as con:
            row = con.execute(
                """SELECT run_id, content_hash FROM extraction_log WHERE source = ?
                   AND run_id = (SELECT run_id FROM runs ORDER BY published_at DESC LIMIT 1)""", [source]
            ).fetchone()
        return (row[0], row[1]) if row else None

    def fixes(self, run_id: str) -> dict[str, Fixes]:
        """Per source, what its department corrected since the run published before ``run_id``."""
        if not self.exists:
            return {}
        with self.connect() as con:
            if "quality_metrics" not in _table_names(con):
                return {}
            rows = con.execute(
                """SELECT source, measure, numerator, denominator FROM quality_metrics
                   WHERE run_id = ? AND measure IN ('fixed', 'conflicts_fixed')""", [run_id]
            ).fetchall()
        found: dict[str, dict[str, int]] = {}
        for source, measure, numerator, denominator in rows:
            prefix = "rows" if measure == "fixed" else "conflicts"
            found.setdefault(source, {}).update({prefix: int(numerator), f"{prefix}_before": int(denominator)})
        return {source: Fixes(**counts) for source, counts in found.items()}

    def summary(self, run_id: str) -> RunSummary | None:
        """Counts, tables and ``run_id``'s products; ``None`` before the first publication."""
        if not self.exists:
            return None
        with self.connect() as con:
            records, persons = con.execute(
                "SELECT (SELECT count(*) FROM record_person), (SELECT count(*) FROM unified_population)"
            ).fetchall()[0]
            area = "area IS NOT NULL" if "area" in _columns(con, "publication_log") else "false"
            entry = "coalesce(policy_entry, recipient)" if area != "false" else "recipient"
            rows = con.execute(
                f"SELECT recipient, row_count, {entry}, {area} FROM publication_log WHERE run_id = ? ORDER BY recipient",
                [run_id]).fetchall()
            tables = tuple(sorted(_table_names(con)))
        entries: dict[str, tuple[int, int]] = {}
        for _, n, name, is_area in rows:
            count, total = entries.get(name, (0, 0))
            entries[name] = (count + bool(is_area), total + int(n))
        return RunSummary(int(records), int(persons), tables, tuple((r, int(n)) for r, n, _, _ in rows),
                          tuple((name, count, total) for name, (count, total) in sorted(entries.items())))

    def area_summary(self) -> AreaSummary | None:
        """How the published people are placed in areas; ``None`` before the first publication or for a
        warehouse published before areas were placed from addresses."""
        if not self.exists:
            return None
        with self.connect() as con:
            if "area_conflicts" not in _table_names(con):
                return None
            return area_summary(con)

    def audit_anchors(self) -> list[AuditAnchor]:
        """Every product's audit entry the warehouse recorded, oldest first; none from a warehouse published
        before ``publication_log`` had ``audit_seq`` (its older rows have it empty)."""
        if not self.exists:
            return []
        with self.connect() as con:
            if not {"audit_seq", "audit_hash", "key_id"} <= _columns(con, "publication_log"):
                return []
            rows = con.execute(
                "SELECT run_id, recipient, audit_seq, audit_hash, key_id FROM publication_log "
                "WHERE audit_seq IS NOT NULL ORDER BY audit_seq"
            ).fetchall()
        return [AuditAnchor(run_id, recipient, int(seq), digest, key) for run_id, recipient, seq, digest, key in rows]

    def person_ids_named(self, name: str, birth_date: str) -> list[str]:
        """Person ids of the people with this name and birth date (``YYYY-MM-DD``), by their golden values or
        any department's record; a birth date a register knows only to the month matches on its month."""
        if not self.exists:
            return []
        sql = """SELECT DISTINCT person_id FROM (
                     SELECT person_id, name, birth_date FROM unified_population
                     UNION ALL SELECT person_id, name, birth_date FROM source_records)
                 WHERE name = $name AND (birth_date = $birth OR (length(birth_date) = 7 AND birth_date = $month))
                 ORDER BY person_id"""
        with self.connect() as con:
            rows = con.execute(sql, {"name": name.strip(), "birth": birth_date, "month": birth_date[:7]}).fetchall()
        return [row[0] for row in rows]

    def earlier_person_ids(self, person_id: str) -> set[str]:
        """``person_id`` and every id the same person's records had before (merged into it, split from it),
        following ``person_id_history`` back through every run."""
        if not self.exists:
            return {person_id}
        with self.connect() as con:
            if "person_id_history" not in _table_names(con):
                return {person_id}
            rows = con.execute(
                """WITH RECURSIVE ids(person_id) AS (
                       SELECT $id UNION
                       SELECT h.old_id FROM person_id_history h JOIN ids ON h.new_id = ids.person_id
                       WHERE h.old_id IS NOT NULL)
                   SELECT person_id FROM ids""", {"id": person_id}).fetchall()
        return {row[0] for row in rows}

    def departments(self) -> dict[str, str]:
        """Source -> department label, as the newest extraction of each source recorded it."""
        if not self.exists:
            return {}
        with self.connect() as con:
            if "department" not in _columns(con, "extraction_log"):
                return {}
            rows = con.execute(
                "SELECT source, arg_max(department, extracted_at) FROM extraction_log "
                "WHERE department IS NOT NULL GROUP BY source"
            ).fetchall()
        return {source: department for source, department in rows}

    def report_inputs(self, run_id: str) -> ReportInputs:
        """Everything the quality report of the published run ``run_id`` shows.

        Raises:
            FileNotFoundError: nothing has been published yet.
        """
        if not self.exists:
            raise FileNotFoundError(f"no published warehouse at {self.path}")
        with self.connect() as con:
            names = _table_names(con)
            metrics = (con.execute("SELECT * FROM quality_metrics").df() if "quality_metrics" in names
                       else pd.DataFrame(columns=_METRIC_COLUMNS))
            runs = con.execute("SELECT run_id, published_at FROM runs ORDER BY published_at").df()
            validation = con.execute(
                """SELECT suite, expectation, column_name, expectation_success, unexpected_count,
                          round(unexpected_percent, 2) AS unexpected_percent, why
                   FROM validation_results WHERE run_id = $run ORDER BY suite, expectation_success, expectation""",
                {"run": run_id},
            ).df()
            problems = con.execute(_problems_sql(names), {"run": run_id}).df()
            examples = con.execute(
                f"""WITH c AS ({cross_department_records_sql()}),
                    picked AS (
                        SELECT field, person_id FROM (SELECT DISTINCT field, person_id FROM c)
                        QUALIFY row_number() OVER (PARTITION BY field ORDER BY hash(person_id)) <= $per_kind
                    )
                    SELECT c.field, c.person_id, c.source, c.value, c.likely_wrong
                    FROM c SEMI JOIN picked USING (field, person_id)
                    ORDER BY c.field, c.person_id, c.source, c.value""",
                {"per_kind": EXAMPLES_PER_KIND},
            ).df()
        return ReportInputs(run_id, metrics, runs, validation, problems, examples, self.departments(),
                            self.grids(run_id))

    def grids(self, run_id: str) -> pd.DataFrame:
        """Per grid: its worker's list in ``run_id`` (rows, people withheld), its risk warnings by status, people
        reported moved out or deceased and the census gaps (``grid, listed, withheld, open, acknowledged, closed,
        rules, departed, not_in_census, census_only``), most open warnings first."""
        with self.connect() as con:
            names = _table_names(con)
            # (a warehouse from before residence statuses has no such column)
            statuses = "unified_population" in names and "residence_status" in _columns(con, "unified_population")
            return con.execute(_grids_sql(names, "area" in _columns(con, "publication_log"), statuses),
                               {"run": run_id}).df()


def _grids_sql(names: set[str], area_products: bool, statuses: bool) -> str:
    """Per grid: its worker's list (rows and people withheld, summed over the area products of the run), its
    risk warnings by status, people reported moved out or deceased, and the census gaps; grids with any."""
    lists = ("SELECT area AS grid, sum(row_count) AS listed, "
             "sum(coalesce(list_sum(map_values(withheld)), 0)) AS withheld FROM publication_log "
             "WHERE run_id = $run AND area IS NOT NULL GROUP BY area") if area_products else \
        "SELECT NULL::VARCHAR AS grid, 0 AS listed, 0 AS withheld WHERE false"
    warnings = ("SELECT grid, count(*) FILTER (WHERE status = 'open') AS open, "
                "count(*) FILTER (WHERE status = 'acknowledged') AS acknowledged, "
                "count(*) FILTER (WHERE status = 'closed') AS closed, "
                "list_distinct(list(rule_label) FILTER (WHERE status IN ('open', 'acknowledged'))) AS rules "
                "FROM risk_warnings WHERE grid IS NOT NULL GROUP BY grid") if "risk_warnings" in names else \
        "SELECT NULL::VARCHAR AS grid, 0 AS open, 0 AS acknowledged, 0 AS closed, []::VARCHAR[] AS rules WHERE false"
    departed = ("SELECT grid, count(*) AS departed FROM unified_population "
                "WHERE residence_status IN ('moved_out', 'deceased') AND grid IS NOT NULL GROUP BY grid") \
        if statuses else "SELECT NULL::VARCHAR AS grid, 0 AS departed WHERE false"
    gaps = ("SELECT grid, count(*) FILTER (WHERE gap = 'not_in_census') AS not_in_census, "
            "count(*) FILTER (WHERE gap = 'census_only') AS census_only FROM census_gaps "
            "WHERE grid IS NOT NULL GROUP BY grid") if "census_gaps" in names else \
        "SELECT NULL::VARCHAR AS grid, 0 AS not_in_census, 0 AS census_only WHERE false"
    return f"""SELECT grid, coalesce(l.listed, 0) AS listed, coalesce(l.withheld, 0) AS withheld,
                      coalesce(w.open, 0) AS open, coalesce(w.acknowledged, 0) AS acknowledged,
                      coalesce(w.closed, 0) AS closed, coalesce(w.rules, []) AS rules,
                      coalesce(d.departed, 0) AS departed, coalesce(c.not_in_census, 0) AS not_in_census,
                      coalesce(c.census_only, 0) AS census_only
               FROM ({lists}) l FULL JOIN ({warnings}) w USING (grid) FULL JOIN ({departed}) d USING (grid)
                    FULL JOIN ({gaps}) c USING (grid)
               ORDER BY open DESC, acknowledged DESC, withheld DESC, grid"""


_PERSON_FLAGS: dict[str, str] = {
    "invalid_id_number": "id_number_valid = false",
    "birth_date_conflict": "birth_date_conflict",
    "sex_conflict": "sex_conflict",
}
"""Soft problems a published record carries as a flag (``source_records``), so the people they touch
can be counted; the others are known only as the rows staging counted (``quality_metrics``)."""


def _problems_sql(tables: set[str]) -> str:
    """Every problem of the published run ``$run``, one row per kind, source and code: ``kind`` (quarantine,
    conflict, soft, duplicate, expectation), ``source`` (``*`` for the district), ``code`` (rule, field,
    soft problem or expectation), ``field``, ``persons`` (people affected, where records are linked to
    people), ``rows``, the ``value`` and ``message`` of a quarantine rule's first row, and an expectation's
    ``why`` as its ``message``."""
    parts = [
        """SELECT 'quarantine' AS kind, source, rule AS code, any_value(field) AS field, NULL::BIGINT AS persons,
                  count(*) AS rows, arg_min(value, row_number) AS value, arg_min(message, row_number) AS message
           FROM quarantine GROUP BY source, rule""",
        f"""SELECT 'conflict', source, field, field, count(DISTINCT person_id) FILTER (WHERE likely_wrong),
                   count(DISTINCT record_id) FILTER (WHERE likely_wrong), NULL, NULL
            FROM ({cross_department_records_sql()}) GROUP BY source, field
            HAVING count(*) FILTER (WHERE likely_wrong) > 0""",
        """SELECT 'expectation', CASE WHEN suite LIKE 'staged_%' THEN substr(suite, 8) ELSE '*' END, expectation,
                  column_name, NULL, unexpected_count, NULL, why
           FROM validation_results WHERE run_id = $run AND NOT expectation_success""",
    ]
    if "quality_metrics" in tables:
        flagged = " UNION ALL ".join(
            f"SELECT source, '{code}' AS code, count(DISTINCT person_id) AS persons FROM source_records "
            f"WHERE {condition} GROUP BY source" for code, condition in _PERSON_FLAGS.items())
        parts += [
            f"""SELECT 'soft', m.source, m.measure, NULL, f.persons, m.numerator, NULL, NULL
                FROM quality_metrics m LEFT JOIN ({flagged}) f ON f.source = m.source AND f.code = m.measure
                WHERE m.run_id = $run AND m.dimension = 'soft_problem'""",
            # A person entered twice in one register; a log with many rows per person by design is left out.
            """SELECT 'duplicate', source, 'duplicate_entry', NULL, count(*), sum(n - 1), NULL, NULL
               FROM (SELECT source, person_id, count(*) AS n FROM source_records GROUP BY source, person_id HAVING n > 1)
               WHERE source NOT IN (SELECT source FROM quality_metrics
                                    WHERE run_id = $run AND dimension = 'uniqueness' AND measure LIKE 'one_row_per:%')
               GROUP BY source""",
        ]
    return "\nUNION ALL\n".join(parts)


def _table_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    if table not in _table_names(con):
        return set()
    return {row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()}
