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

import duckdb
import pandas as pd

from core.home import DataHome, HomeLike
from publish.areas import AreaSummary, area_summary
from publish.generations import Generations
from quality.metrics import cross_department_records_sql
from quality.report import EXAMPLES_PER_KIND, TOP_FIXES, ReportInputs

__all__ = ["AuditAnchor", "PublishedRun", "RunSummary", "WarehouseReader"]

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
    """

    records: int
    persons: int
    tables: tuple[str, ...]
    products: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class AuditAnchor:
    """One product's audit entry as the warehouse's ``publication_log`` recorded it when it was built."""

    run_id: str
    recipient: str
    seq: int
    hash: str
    key_id: str | None


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
        """A read-only connection to the published warehouse; if its file is damaged (it does not open,
        or is cut short), to the newest earlier generation that is whole (logged), so a run can still
        build on the last good publication."""
        readable = Generations(self.home).readable_warehouse()
        if readable is None or readable.resolve() == self.path.resolve():
            return duckdb.connect(str(self.path), read_only=True)
        log.warning("the published warehouse %s is damaged; reading %s instead", self.path, readable)
        return duckdb.connect(str(readable), read_only=True)

    def tables(self) -> tuple[str, ...]:
        """Names of the published tables (none before the first publication)."""
        if not self.exists:
            return ()
        with self.connect() as con:
            return tuple(row[0] for row in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall())

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

    def quarantined_rows(self, source: str) -> pd.DataFrame:
        """``row_number, rule, message, raw_record`` of the rows the last publication holds back for ``source``."""
        columns = ["row_number", "rule", "message", "raw_record"]
        if not self.exists:
            return pd.DataFrame(columns=columns)
        with self.connect() as con:
            return con.execute(
                f"SELECT {', '.join(columns)} FROM quarantine WHERE source = ? ORDER BY row_number", [source]
            ).df()

    def summary(self, run_id: str) -> RunSummary | None:
        """Counts, tables and ``run_id``'s products; ``None`` before the first publication."""
        if not self.exists:
            return None
        with self.connect() as con:
            records, persons = con.execute(
                "SELECT (SELECT count(*) FROM record_person), (SELECT count(*) FROM unified_population)"
            ).fetchall()[0]
            products = con.execute(
                "SELECT recipient, row_count FROM publication_log WHERE run_id = ? ORDER BY recipient", [run_id]
            ).fetchall()
            tables = tuple(sorted(_table_names(con)))
        return RunSummary(int(records), int(persons), tables, tuple((r, int(n)) for r, n in products))

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
            top_fixes = con.execute(
                """SELECT source, rule, count(*) AS rows, any_value("column") AS column_name,
                          any_value(message) AS example
                   FROM quarantine GROUP BY source, rule
                   QUALIFY row_number() OVER (PARTITION BY source ORDER BY count(*) DESC, rule) <= $top
                   ORDER BY source, rows DESC""",
                {"top": TOP_FIXES},
            ).df()
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
        return ReportInputs(run_id, metrics, runs, validation, top_fixes, examples, self.departments())


def _table_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    if table not in _table_names(con):
        return set()
    return {row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()}
