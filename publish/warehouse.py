"""The published DuckDB warehouse, built aside and swapped in atomically.

A run builds a complete candidate file next to the published one, validates it, then renames it
over the published file (``os.replace``: atomic on one filesystem). Readers therefore see the old
warehouse or the new one, never half of one, and a failed run leaves the last publication intact.
History tables (publication log, runs, extraction log, validation results) are carried over from
the previous warehouse into every candidate.

Tables (documented for analysts in ``docs/warehouse.md``):
    unified_population, record_person, source_records, person_consent, consent_decisions,
    field_conflicts, link_pairs, quarantine, extraction_log, validation_results,
    publication_log, runs
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pandas as pd

from publish.golden import field_conflicts_sql, person_consent_sql, unified_population_sql
from publish.policy import SharingPolicy
from publish.products import ProductFile, build_product

__all__ = ["Candidate", "PublicationInputs", "Warehouse"]

log = logging.getLogger(__name__)

_HISTORY_DDL = {
    "publication_log": """CREATE TABLE publication_log (
        run_id VARCHAR, published_at TIMESTAMPTZ, recipient VARCHAR, purpose VARCHAR,
        legal_basis VARCHAR, columns VARCHAR[], row_count BIGINT, content_hash VARCHAR, path VARCHAR)""",
    "runs": """CREATE TABLE runs (
        run_id VARCHAR, published_at TIMESTAMPTZ, records BIGINT, quarantined BIGINT, persons BIGINT,
        sources VARCHAR[])""",
    "extraction_log": """CREATE TABLE extraction_log (
        run_id VARCHAR, source VARCHAR, kind VARCHAR, location VARCHAR, extracted_at TIMESTAMPTZ,
        row_count BIGINT, content_hash VARCHAR, encoding VARCHAR)""",
    "validation_results": """CREATE TABLE validation_results (
        run_id VARCHAR, suite VARCHAR, success BOOLEAN, row_count BIGINT, expectation VARCHAR,
        column_name VARCHAR, expectation_success BOOLEAN, unexpected_count BIGINT,
        unexpected_percent DOUBLE, why VARCHAR)""",
}


@dataclass(frozen=True)
class PublicationInputs:
    """Everything one run publishes.

    Args:
        run_id: the Dagster run id (or any unique id) of this publication.
        records: staged person records of every source (canonical schema).
        mapping: ``record_id -> person_id`` for every staged record.
        link_pairs: scored pairs from identity resolution (may be empty).
        quarantine: quarantined rows of every source.
        consent: staged consent decisions (may be empty).
        lineage: one dict per source extraction (``Lineage.as_metadata()``).
        validations: one ``ValidationSummary.as_dict()`` per staged source.
        trust: source -> rank (0 most trusted) for golden-record choices.
        as_of: the date ages are computed at.
    """

    run_id: str
    records: pd.DataFrame
    mapping: pd.DataFrame
    link_pairs: pd.DataFrame
    quarantine: pd.DataFrame
    consent: pd.DataFrame
    lineage: list[dict]
    validations: list[dict]
    trust: dict[str, int] = field(default_factory=dict)
    as_of: date = field(default_factory=date.today)


@dataclass
class Candidate:
    """A fully built, not yet published warehouse and its shared products."""

    path: Path
    products_dir: Path
    products: list[ProductFile]
    counts: dict[str, int]

    def read(self, sql: str) -> pd.DataFrame:
        """Query the candidate (read-only) before it is published."""
        with duckdb.connect(str(self.path), read_only=True) as con:
            return con.execute(sql).df()


class Warehouse:
    """The data home's published warehouse and shared products.

    Example:
        >>> wh = Warehouse(home)
        >>> candidate = wh.build_candidate(inputs, policy)
        >>> wh.publish(candidate)          # or wh.discard(candidate) if validation failed
    """

    FILE_NAME = "silobreaker.duckdb"

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.path = self.home / "warehouse" / self.FILE_NAME
        self.shared_dir = self.home / "shared"

    def build_candidate(self, inputs: PublicationInputs, policy: SharingPolicy) -> Candidate:
        """Build every table and product for ``inputs`` beside the published warehouse."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        candidate_path = self.path.with_name(f".candidate-{inputs.run_id}.duckdb")
        products_dir = self.home / "shared" / f".candidate-{inputs.run_id}"
        for stale in (candidate_path, Path(f"{candidate_path}.wal")):
            stale.unlink(missing_ok=True)
        shutil.rmtree(products_dir, ignore_errors=True)
        published_at = datetime.now(UTC)
        with duckdb.connect(str(candidate_path)) as con:
            self._load_inputs(con, inputs)
            con.execute(unified_population_sql(inputs.trust, inputs.as_of))
            con.execute(field_conflicts_sql())
            con.execute(person_consent_sql())
            self._add_consent_map(con)
            self._carry_history(con)
            self._log_run(con, inputs, published_at)
            products = [build_product(con, r, products_dir, self.home) for r in policy.recipients]
            con.executemany(
                "INSERT INTO publication_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    [inputs.run_id, published_at, p.recipient, r.purpose, r.legal_basis, list(p.columns),
                     p.row_count, p.content_hash, str(self.shared_dir / p.path.name)]
                    for p, r in zip(products, policy.recipients, strict=True)
                ],
            )
            counts = {
                table: con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
                for table in ("unified_population", "record_person", "quarantine", "person_consent", "field_conflicts")
            }
            con.execute("CHECKPOINT")
        return Candidate(candidate_path, products_dir, products, counts)

    def publish(self, candidate: Candidate) -> None:
        """Swap the candidate in: the warehouse by one atomic rename, then each product file."""
        os.replace(candidate.path, self.path)
        self.shared_dir.mkdir(parents=True, exist_ok=True)
        for product in candidate.products:
            os.replace(product.path, self.shared_dir / product.path.name)
        shutil.rmtree(candidate.products_dir, ignore_errors=True)
        log.info("published %s and %d shared products", self.path, len(candidate.products))

    def discard(self, candidate: Candidate) -> None:
        """Throw a candidate away; the published warehouse is untouched."""
        candidate.path.unlink(missing_ok=True)
        Path(f"{candidate.path}.wal").unlink(missing_ok=True)
        shutil.rmtree(candidate.products_dir, ignore_errors=True)

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection to the published warehouse."""
        return duckdb.connect(str(self.path), read_only=True)

    # -- building blocks ------------------------------------------------------------------

    @staticmethod
    def _load_inputs(con: duckdb.DuckDBPyConnection, inputs: PublicationInputs) -> None:
        con.register("_records", inputs.records)
        con.register("_mapping", inputs.mapping)
        con.execute("CREATE TABLE record_person AS SELECT record_id, person_id FROM _mapping ORDER BY record_id")
        con.execute(
            "CREATE TABLE source_records AS SELECT m.person_id, r.* FROM _records r "
            "JOIN record_person m USING (record_id) ORDER BY m.person_id, r.record_id"
        )
        unmapped = con.execute(
            "SELECT count(*) FROM _records r ANTI JOIN record_person m USING (record_id)"
        ).fetchall()[0][0]
        if unmapped:
            raise ValueError(f"{unmapped} staged records have no person_id; identity resolution must map every record")
        for name, frame in (("link_pairs", inputs.link_pairs), ("consent_decisions", inputs.consent)):
            con.register("_frame", frame)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM _frame")
            con.unregister("_frame")
        con.register("_quarantine", inputs.quarantine)
        con.execute(
            "CREATE TABLE quarantine AS SELECT ? AS run_id, * FROM _quarantine", [inputs.run_id]
        )
        for name, ddl in _HISTORY_DDL.items():
            con.execute(ddl)
        con.executemany(
            "INSERT INTO extraction_log VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                [inputs.run_id, x["source"], x["kind"], x["location"], x["extracted_at"], x["row_count"],
                 x["content_hash"], x.get("encoding")]
                for x in inputs.lineage
            ],
        )
        rows = []
        for v in inputs.validations:
            for o in v["outcomes"]:
                rows.append([inputs.run_id, v["suite"], v["success"], v["row_count"], o["kind"], o["column"],
                             o["success"], o["unexpected_count"], o["unexpected_percent"], o["why"]])
        if rows:
            con.executemany("INSERT INTO validation_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        for name in ("_records", "_mapping", "_quarantine"):
            con.unregister(name)

    @staticmethod
    def _add_consent_map(con: duckdb.DuckDBPyConnection) -> None:
        # One MAP per person, 'purpose@recipient' -> latest status, so a reader sees consent beside
        # the golden values without a join; the long form stays in person_consent.
        con.execute("ALTER TABLE unified_population ADD COLUMN consent MAP(VARCHAR, VARCHAR)")
        con.execute(
            """
            UPDATE unified_population u SET consent = c.consent FROM (
                SELECT person_id, map_from_entries(list({'k': purpose || '@' || recipient, 'v': status}
                    ORDER BY purpose, recipient)) AS consent
                FROM person_consent GROUP BY person_id
            ) c WHERE u.person_id = c.person_id
            """
        )

    def _carry_history(self, con: duckdb.DuckDBPyConnection) -> None:
        if not self.path.exists():
            return
        con.execute(f"ATTACH '{self.path}' AS previous (READ_ONLY)")
        try:
            existing = {
                row[0]
                for row in con.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE database_name = 'previous'"
                ).fetchall()
            }
            for table in _HISTORY_DDL:
                if table in existing:
                    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM previous.{table}")
        finally:
            con.execute("DETACH previous")

    @staticmethod
    def _log_run(con: duckdb.DuckDBPyConnection, inputs: PublicationInputs, published_at: datetime) -> None:
        sources = sorted({x["source"] for x in inputs.lineage})
        con.execute(
            "INSERT INTO runs VALUES (?, ?, (SELECT count(*) FROM record_person), (SELECT count(*) FROM quarantine), "
            "(SELECT count(*) FROM unified_population), ?)",
            [inputs.run_id, published_at, sources],
        )
