"""The published DuckDB warehouse, built aside and swapped in atomically.

A run builds a complete candidate file next to the published one — from nothing, or on a copy of the
last one with only the changed records' and persons' rows written (:mod:`publish.carry`) — validates it,
then renames it over the published file (``os.replace``: atomic on one filesystem). Readers therefore see the old
warehouse or the new one, never half of one, and a failed run leaves the last publication intact.
History tables (publication log, runs, extraction log, validation results, person id history,
issued person ids, review decisions) are carried over from the previous warehouse into every candidate.

Tables (described for analysts in :mod:`publish.catalog`, which ``docs/warehouse.md`` shows and every
published warehouse carries as ``COMMENT ON`` its tables and columns):
    unified_population, record_person, source_records, consent_subjects, person_consent, consent_decisions,
    field_conflicts, area_conflicts, key_residents, link_pairs, quarantine, extraction_log, validation_results,
    publication_log, runs, person_id_history, issued_person_ids, review_queue, review_decisions,
    consent_effective, deletion_requests, consent_exclusions (see ``docs/privacy.md``)

Products are encrypted per recipient, and each publication is appended to the signed, hash-chained
audit log (``publish.audit``), outside the files swapped here. The entries are prepared while the
candidate is built, so the warehouse's ``publication_log`` records each product's entry
(``audit_seq``, ``audit_hash``) and each product its place in the log: the log's head is anchored
in both (``publish.anchors``). Warehouses published before these columns existed carry their rows
over with the columns empty. Where each file lives is the data home's
(:class:`core.home.DataHome`); reading the published warehouse is :class:`publish.reader.WarehouseReader`'s.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from core.errors import is_disk_full
from core.home import DataHome, HomeLike
from core.memory import duckdb_memory_limit
from publish.areas import AreaRegister, add_address_places, add_person_areas, area_summary
from publish.audit import AuditLog, LastDeliveries, ProductAnchor
from publish.carry import (
    CarryPlan,
    carry_base,
    carry_consent,
    carry_rows,
    carry_source_records,
    carry_unified_population,
    drop_uncarried,
    fingerprint,
    note_publication,
    record_carry,
    start_from,
)
from publish.catalog import add_comments
from publish.consent import (
    RESTRICTIVE_SQL,
    add_consent_maps,
    add_consent_problems,
    add_consent_unmatched,
    add_effective_consent,
    consent_subjects_sql,
    decisions_sql,
)
from publish.generations import DiskSpaceError, Generations
from publish.golden import (
    GoldenRecords,
    add_hukou_places,
    field_conflicts_sql,
    person_consent_sql,
)
from publish.office import OfficeFile, write_office_files
from publish.policy import Recipient, SharingPolicy
from publish.populations import KeyPopulations, default_populations
from publish.products import ProductFile, area_rows, build_product, family_rows
from publish.residence import census_gaps_sql, grid_updates_sql
from publish.risks import RiskRules, add_risk_warnings, departments_of
from publish.scopes import expand_recipients, known_areas, unlisted_areas
from quality.metrics import HISTORY_SPAN_SQL, QUALITY_HISTORY_DDL, write_quality_metrics
from quality.staging_report import StagingReport
from staging.schema import CANONICAL_COLUMNS, DAY_DATE_COLUMNS

__all__ = ["Candidate", "PublicationInputs", "Warehouse"]

log = logging.getLogger(__name__)

#: The DuckDB storage format the warehouse is written in (readable by DuckDB 1.2 and later).
STORAGE_VERSION = "v1.2.0"

# Identity resolution's memory: what became of each person id, every id ever issued (never reused),
# and the clerical review decisions (also kept in <home>/review/, which the next run reads).
_IDENTITY_HISTORY_DDL = {
    "person_id_history": """CREATE TABLE person_id_history (
        run_id VARCHAR, kind VARCHAR, old_id VARCHAR, new_id VARCHAR, records BIGINT)""",
    "issued_person_ids": "CREATE TABLE issued_person_ids (person_id VARCHAR, first_run_id VARCHAR)",
    "review_decisions": """CREATE TABLE review_decisions (
        record_id_a VARCHAR, record_id_b VARCHAR, decision VARCHAR, decided_by VARCHAR,
        decided_at TIMESTAMPTZ, note VARCHAR)""",
}


_REVIEW_QUEUE_DDL = """CREATE TABLE review_queue (
    record_id_a VARCHAR, record_id_b VARCHAR, score DOUBLE, decision VARCHAR, reason VARCHAR, reason_label VARCHAR,
    rule VARCHAR, evidence VARCHAR,
    person_id_a VARCHAR, person_id_b VARCHAR, same_person_now BOOLEAN,
    source_a VARCHAR, name_a VARCHAR, sex_a VARCHAR, birth_date_a VARCHAR, id_number_a VARCHAR, phone_a VARCHAR,
    address_a VARCHAR, source_b VARCHAR, name_b VARCHAR, sex_b VARCHAR, birth_date_b VARCHAR,
    id_number_b VARCHAR, phone_b VARCHAR, address_b VARCHAR, first_seen_run VARCHAR)"""

_HISTORY_DDL = {
    "publication_log": """CREATE TABLE publication_log (
        run_id VARCHAR, published_at TIMESTAMPTZ, recipient VARCHAR, purpose VARCHAR,
        legal_basis VARCHAR, columns VARCHAR[], row_count BIGINT, content_hash VARCHAR, path VARCHAR,
        disclosure JSON, audit_seq BIGINT, audit_hash VARCHAR, key_id VARCHAR, policy_entry VARCHAR,
        area VARCHAR, withheld MAP(VARCHAR, BIGINT))""",
    "runs": """CREATE TABLE runs (
        run_id VARCHAR, published_at TIMESTAMPTZ, records BIGINT, quarantined BIGINT, persons BIGINT,
        sources VARCHAR[])""",
    "extraction_log": """CREATE TABLE extraction_log (
        run_id VARCHAR, source VARCHAR, kind VARCHAR, location VARCHAR, extracted_at TIMESTAMPTZ,
        row_count BIGINT, content_hash VARCHAR, encoding VARCHAR, department VARCHAR)""",
    "validation_results": """CREATE TABLE validation_results (
        run_id VARCHAR, suite VARCHAR, success BOOLEAN, row_count BIGINT, expectation VARCHAR,
        column_name VARCHAR, expectation_success BOOLEAN, unexpected_count BIGINT,
        unexpected_percent DOUBLE, why VARCHAR)""",
    **QUALITY_HISTORY_DDL,
    **_IDENTITY_HISTORY_DDL,
}


@dataclass(frozen=True)
class PublicationInputs:
    """Everything one run publishes.

    Args:
        run_id: the Dagster run id (or any unique id) of this publication.
        records: staged person records of every source (canonical schema).
        mapping: ``record_id -> person_id`` for every staged record, and ``id_number_disputed`` (the
            record was keyed with another resident's ID number, :mod:`dedup.id_sharing`; false when absent).
        link_pairs: scored pairs from identity resolution (may be empty).
        quarantine: quarantined rows of every source.
        consent: staged consent decisions (may be empty).
        staging_reports: one per staged source: its extraction (the extraction log), its expectation
            suite's results (validation results) and its declared fields, role and soft problems (the
            quality measures).
        trust: source -> rank (0 most trusted) for golden-record choices.
        as_of: the date ages are computed at.
        person_id_history: this run's person-id changes (``kind, old_id, new_id, records``), if any.
        review_queue: uncertain pairs awaiting review (``first_seen_run`` null: queued by this run).
        review_decisions: the review decisions this run applied (added to those already kept).
        populations: the key-population categories (``populations.yaml``).
        areas: the district's area register, which places addresses in streets, communities and grids;
            without one, areas come from what departments state only.
        risks: the risk early-warning rules (``risks.yaml``); without them ``risk_warnings`` is empty.
        warning_actions: what workers did with warnings (:class:`publish.risks.WarningActions`).
        base_source: the district's base population register (``base: true`` in ``sources.yaml``): its
            户籍地址 is taken first, and ``census_gaps`` lists who it misses and who only it knows.
    """

    run_id: str
    records: pd.DataFrame
    mapping: pd.DataFrame
    link_pairs: pd.DataFrame
    quarantine: pd.DataFrame
    consent: pd.DataFrame
    staging_reports: list[StagingReport] = field(default_factory=list)
    trust: dict[str, int] = field(default_factory=dict)
    as_of: date = field(default_factory=date.today)
    person_id_history: pd.DataFrame | None = None
    review_queue: pd.DataFrame | None = None
    review_decisions: pd.DataFrame | None = None
    populations: KeyPopulations = field(default_factory=default_populations)
    areas: AreaRegister | None = None
    risks: RiskRules | None = None
    warning_actions: pd.DataFrame | None = None
    base_source: str | None = None


@dataclass
class Candidate:
    """A fully built, not yet published generation: its warehouse, its shared products and the signed audit
    entries its publication will append."""

    path: Path
    products_dir: Path
    products: list[ProductFile]
    counts: dict[str, int]
    run_id: str = ""
    published_at: datetime | None = None
    generation: str = ""
    audit_entries: list[dict] = field(default_factory=list)

    def read(self, sql: str) -> pd.DataFrame:
        """Query the candidate (read-only) before it is published."""
        with duckdb.connect(str(self.path), read_only=True) as con:
            return con.execute(sql).df()


class Warehouse:
    """The data home's published warehouse and shared products: building and swapping them in.

    Example:
        >>> wh = Warehouse(home)
        >>> candidate = wh.build_candidate(inputs, policy)
        >>> wh.publish(candidate)          # or wh.discard(candidate) if validation failed
    """

    def __init__(self, home: HomeLike) -> None:
        self.home = DataHome.at(home)
        self.path = self.home.warehouse_file
        self.generations = Generations(self.home)
        self._previous: Path | None = None  # the last whole generation's warehouse, while building

    def build_candidate(self, inputs: PublicationInputs, policy: SharingPolicy) -> Candidate:
        """Build every table and product for ``inputs`` into a new generation beside the published one.

        Raises:
            DiskSpaceError: too little free space to build it (checked before, and if the disk fills
                during the build); the unfinished generation is removed.
        """
        AuditLog(self.home).refuse_if_cut(f"run {inputs.run_id} appends nothing to it and nothing was published; the "
                                          "last publication stays")
        generation = self.generations.begin(inputs.run_id)
        try:
            return self._build(inputs, policy, generation)
        except BaseException as e:
            self.generations.discard(generation)
            if isinstance(e, Exception) and is_disk_full(e):
                free = shutil.disk_usage(self.home.root).free
                raise DiskSpaceError(
                    f"the disk under {self.home.root} filled up while run {inputs.run_id} built its publication "
                    f"({free / 2**20:,.1f} MB free now); the unfinished build was removed and the previous "
                    "publication stays: free space on that disk and run again"
                ) from e
            raise

    def _build(self, inputs: PublicationInputs, policy: SharingPolicy, generation: str) -> Candidate:
        candidate_path = self.home.generation_warehouse_file(generation)
        products_dir = self.home.generation_shared_dir(generation)
        previous = self.generations.base()
        self._previous = self.home.generation_warehouse_file(previous.name) if previous else None
        published_at = datetime.now(UTC)
        # On a copy of the last generation when it can be (only the changed records' rows written), else whole.
        golden = GoldenRecords(inputs.trust, inputs.populations, _grid_sources(inputs), inputs.base_source,
                               register=inputs.areas is not None, consent=True)
        departments = {r.source: r.department for r in inputs.staging_reports}
        build_fingerprint = fingerprint(inputs.areas, golden.text(as_of=date(2000, 1, 1)), departments)
        plan = carry_base(self.home, self._previous, build_fingerprint)
        if plan.base is not None:
            log.info("the publication builds on generation %s (carried night %d)", previous.name, plan.nights_carried)
        else:
            log.info("the publication builds whole: %s", plan.why)
        start_from(plan, candidate_path)
        # Written in a storage format DuckDB 1.2 and later read, so analysts' DuckDB 1.x tools (DBeaver's
        # driver, R, JDBC builds) open the warehouse; DuckDB 2.0 writes its own format otherwise.
        with duckdb.connect(str(candidate_path), config={"storage_compatibility_version": STORAGE_VERSION,
                                                          "memory_limit": duckdb_memory_limit()}) as con:
            if plan.base is not None:
                drop_uncarried(con)
            loaded = self._load_inputs(con, inputs, carry=plan.base is not None)
            if loaded is None:
                plan = CarryPlan(None, 0, "the records have other columns or types than the last publication's")
                log.info("the publication builds whole after all: %s", plan.why)
                loaded = self._load_inputs(con, inputs)
            self._remember_decisions(con)

            def place(persons: str) -> None:
                """The areas, 户籍 places and consent maps of the persons a carried night writes again."""
                add_person_areas(con, inputs.trust, departments, persons=persons, conflicts=None)
                add_hukou_places(con, inputs.areas, persons=persons)
                add_consent_maps(con, persons)

            if plan.base is not None:
                # A person's area conflicts follow from their own records: those whose records changed, again.
                con.execute("DELETE FROM area_conflicts WHERE person_id IN (SELECT person_id FROM _touched)")
                add_person_areas(con, inputs.trust, departments, persons="_touched",
                                 conflicts="INSERT INTO area_conflicts BY NAME")
            else:
                add_person_areas(con, inputs.trust, departments)
                add_hukou_places(con, inputs.areas)
            con.execute(consent_subjects_sql())
            if plan.base is not None:
                # Computed whole as on any night, kept row by row: the persons whose rows changed are known.
                con.execute(person_consent_sql("CREATE OR REPLACE TEMP TABLE _person_consent AS"))
                add_effective_consent(con, inputs.as_of, "CREATE OR REPLACE TEMP TABLE _consent_effective AS")
                consent_compared = carry_consent(con)
            else:
                con.execute(person_consent_sql())
                add_effective_consent(con, inputs.as_of)
            add_consent_problems(con)
            unmatched = add_consent_unmatched(con, [r.registry_recipient for r in policy.recipients],
                                              [r.purpose for r in policy.recipients])
            if unmatched:
                # Decisions for purposes or recipients this district does not share with are normal
                # registry content; the values are listed so a renamed recipient (卫健委 for health) shows.
                values = con.execute(
                    "SELECT reason, CASE reason WHEN 'unknown_purpose' THEN purpose ELSE recipient END, count(*) "
                    "FROM consent_unmatched WHERE reason <> 'no_person' GROUP BY ALL ORDER BY 1, 3 DESC, 2").fetchall()
                log.info("consent decisions that apply to no one the policy shares with (table consent_unmatched): %s%s",
                         ", ".join(f"{n} {why}" for why, n in unmatched.items()),
                         "".join(f"; {why} {value!r}: {n}" for why, value, n in values[:12]))
                unplaced = con.execute(
                    "SELECT rule, CASE rule WHEN 'unknown_purpose' THEN u.purpose ELSE u.recipient END, "
                    "count(DISTINCT p.person_id) FROM consent_problems p JOIN consent_unmatched u "
                    "ON u.decision_id = p.decision_id AND u.reason = p.rule GROUP BY ALL ORDER BY 3 DESC, 2").fetchall()
                if unplaced:
                    log.warning("withdrawals, refusals or deletion requests name a code that neither the policy nor "
                                "any grant in the registry uses (%s): the people they name are left out of every "
                                "product but a statutory register until the registry writes a code the policy uses, "
                                "or * (table consent_problems)", "; ".join(f"{why.removeprefix('unknown_')} {value!r}: {n} "
                                                               f"person{'s' if n != 1 else ''}"
                                                               for why, value, n in unplaced[:12]))
            if plan.base is not None:
                if not consent_compared:
                    add_consent_maps(con)  # every person's, compared with their carried row
                persons_written = carry_unified_population(con, golden, inputs.as_of, place,
                                                           "_consent_changed" if consent_compared else None)
                con.execute("DROP TABLE _consent_changed")
            else:
                add_consent_maps(con)  # joined into the golden table as it is written
                persons_written = golden.write(con, inputs.as_of)
            record_carry(con, inputs.run_id, plan, build_fingerprint, *loaded, persons_written)
            con.execute(inputs.populations.key_residents_sql())
            con.execute(census_gaps_sql(inputs.base_source))
            con.execute(grid_updates_sql(_grid_sources(inputs)))
            self._add_risk_warnings(con, inputs)
            con.execute(field_conflicts_sql())
            self._carry_history(con)
            self._log_run(con, inputs, published_at)
            self._record_identities(con, inputs)
            write_quality_metrics(con, inputs.run_id, inputs.staging_reports)
            recipients = self._products_of(con, policy, inputs.areas)
            audit = AuditLog(self.home)
            head = audit.head()
            delivered = LastDeliveries(audit)  # whom a renewal list may name
            products = []
            office_files: list[OfficeFile] = []
            family: tuple[str, pa.Table] | None = None  # one query for every area product of a "*" entry
            for i, r in enumerate(recipients, start=1):
                rows = None
                if r.area is not None:
                    if family is None or family[0] != r.family:
                        entry = next(e for e in policy.recipients if e.name == r.family)
                        family = (r.family, family_rows(con, entry))
                    rows = area_rows(family[1], r.scope)
                products.append(build_product(con, r, self.home.generation_product_file(generation, r.name),
                                              self.home, anchor=ProductAnchor(head.seq + i, head), rows=rows,
                                              as_of=inputs.as_of, office_files=office_files, delivered=delivered))
            family = None
            hashes = dict(zip((f.path.stem for f in office_files), write_office_files(office_files), strict=True))
            products = [replace(p, office_hash=hashes[p.recipient]) if p.recipient in hashes else p for p in products]
            entries = audit.prepare(inputs.run_id, published_at, products, delivered)
            if products:  # (a policy may share nothing yet)
                con.executemany(
                    "INSERT INTO publication_log (run_id, published_at, recipient, purpose, legal_basis, columns, "
                    "row_count, content_hash, path, disclosure, audit_seq, audit_hash, key_id, policy_entry, area, withheld) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, MAP(?, ?))",
                    [
                        [inputs.run_id, published_at, p.recipient, r.purpose, r.legal_basis, list(p.columns),
                         p.row_count, p.content_hash, str(self.home.product_file(p.recipient)),
                         json.dumps(p.disclosure, ensure_ascii=False) if p.disclosure else None, e["seq"], e["hash"],
                         p.key_id, r.family, r.area, list(p.exclusions), list(p.exclusions.values())]
                        for p, r, e in zip(products, recipients, entries, strict=True)
                    ],
                )
            counts = {
                table: con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
                for table in ("unified_population", "record_person", "quarantine", "person_consent", "field_conflicts",
                              "consent_unmatched", "area_conflicts", "key_residents", "risk_warnings", "census_gaps",
                              "grid_updates")
            }
            counts |= area_summary(con).as_counts()
            # How the warehouse was built, for the run's progress line (publish.carry).
            counts |= {"carried": int(plan.base is not None), "persons_written": persons_written}
            # Analysts' tools show these beside every table and column (the same words as docs/warehouse.md).
            add_comments(con, inputs.populations)
            con.execute("CHECKPOINT")
        return Candidate(candidate_path, products_dir, products, counts, inputs.run_id, published_at, generation,
                         entries)

    def publish(self, candidate: Candidate) -> None:
        """Publish the candidate's generation whole: warehouse, every product and their audit entries
        move together (one journaled switch, see :mod:`publish.generations`)."""
        self.generations.commit(candidate.generation, candidate.run_id, candidate.published_at or datetime.now(UTC),
                                candidate.audit_entries)
        note_publication(self.home, candidate.generation)
        log.info("published %s and %d shared products", self.path, len(candidate.products))

    def discard(self, candidate: Candidate) -> None:
        """Throw a candidate away; the published generation and the audit log are untouched."""
        self.generations.discard(candidate.generation)
        shutil.rmtree(candidate.products_dir, ignore_errors=True)
        AuditLog(self.home).discard(candidate.audit_entries)

    # -- building blocks ------------------------------------------------------------------

    def _add_risk_warnings(self, con: duckdb.DuckDBPyConnection, inputs: PublicationInputs) -> None:
        """``risk_warnings``: the rules evaluated now, continuing the previous publication's episodes."""
        previous = None
        if self._previous is not None:
            with duckdb.connect(str(self._previous), read_only=True) as old:
                if old.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'risk_warnings'").fetchone()[0]:
                    previous = old.execute("SELECT * FROM risk_warnings").df()
        departments = departments_of(inputs.staging_reports)
        open_by_rule = add_risk_warnings(con, inputs.risks or RiskRules(version=1), departments, inputs.as_of,
                                         previous, inputs.warning_actions)
        if open_by_rule:
            log.info("risk warnings open: %s", ", ".join(f"{rule} {n}" for rule, n in open_by_rule.items()))

    @staticmethod
    def _products_of(con: duckdb.DuckDBPyConnection, policy: SharingPolicy, register: AreaRegister | None
                     ) -> list[Recipient]:
        """The policy's products: a ``"*"`` entry gives one per area (:mod:`publish.scopes`)."""
        if not any(r.every_area for r in policy.recipients):
            return list(policy.recipients)
        areas = known_areas(con, register)
        for level in sorted({r.every_area for r in policy.recipients if r.every_area}):
            unlisted = unlisted_areas(con, areas, level)
            if unlisted:
                log.warning("%d people are in a %s the area register lacks, so in no %s product: %s",
                            sum(n for _, n in unlisted), level, level,
                            ", ".join(f"{area} ({n})" for area, n in unlisted[:10]))
        return expand_recipients(policy.recipients, areas)

    @staticmethod
    def _load_inputs(con: duckdb.DuckDBPyConnection, inputs: PublicationInputs,
                     carry: bool = False) -> tuple[int, int] | None:
        """Load the run's inputs; ``source_records`` whole, or (``carry``) on the copy of the last one
        (:mod:`publish.carry`). Returns the rows of ``source_records`` carried over and written, or ``None``
        (nothing loaded) when the records cannot be carried over: load them whole then."""
        # Records staged before a canonical field existed (an earlier version's kept staging) do not state it.
        records = inputs.records
        missing = {c: pd.Series(pd.NA, index=records.index, dtype=t) for c, t in CANONICAL_COLUMNS.items()
                   if c not in records.columns}
        records = records.assign(**missing) if missing else records
        # Registered as Arrow: DuckDB scans Arrow columns in parallel without Python, where a pandas
        # frame's string columns are read through the interpreter (2.5M records: 14 s → 11.6 s with the write).
        con.register("_records", _as_arrow(records))
        con.register("_mapping", _as_arrow(inputs.mapping))
        # A mapping from before ID-sharing conflicts were found marks no record as a borrower.
        disputed = "coalesce(id_number_disputed, false)" if "id_number_disputed" in inputs.mapping.columns else "false"
        con.execute(
            f"CREATE TABLE record_person AS SELECT record_id, person_id, {disputed} AS id_number_disputed "
            "FROM _mapping ORDER BY record_id"
        )
        row = f"m.person_id, r.*{_typed_dates(records.columns)}, m.id_number_disputed"
        if carry:
            con.execute(f"CREATE OR REPLACE TEMP VIEW _incoming AS SELECT {row} FROM _records r JOIN record_person m "
                        "USING (record_id)")
            counted = carry_source_records(con, "_incoming")
            if counted is None:
                for name in ("_records", "_mapping"):
                    con.unregister(name)
                con.execute("DROP VIEW _incoming")
                con.execute("DROP TABLE record_person")
                return None
            carried, written = counted
            con.execute("CREATE OR REPLACE TEMP VIEW _written AS SELECT * FROM _records SEMI JOIN _fresh_records "
                        "USING (record_id)")
            relation, into = "_written", "INSERT INTO source_records BY NAME"
        else:
            carried, written, relation, into = 0, len(records), "_records", "CREATE TABLE source_records AS"
        # Only the addresses of the rows written are placed (a carried row keeps its places).
        add_address_places(con, relation, inputs.areas)
        con.execute(
            f"{into} SELECT {row}, p.* EXCLUDE (address) FROM {relation} r JOIN record_person m USING (record_id) "
            "LEFT JOIN _address_places p ON p.address = r.address ORDER BY m.person_id, r.record_id"
        )
        for name in ("_incoming", "_written"):
            con.execute(f"DROP VIEW IF EXISTS {name}")
        con.execute("DROP TABLE IF EXISTS _fresh_records")
        unmapped = con.execute(
            "SELECT count(*) FROM _records r ANTI JOIN record_person m USING (record_id)"
        ).fetchall()[0][0]
        if unmapped:
            raise ValueError(f"{unmapped} staged records have no person_id; identity resolution must map every record")
        for name, frame in (("link_pairs", inputs.link_pairs), ("consent_decisions", inputs.consent)):
            con.register("_frame", _as_arrow(frame))
            con.execute("CREATE OR REPLACE TEMP VIEW _tonight AS "
                        + (decisions_sql(con, "_frame") if name == "consent_decisions" else "SELECT * FROM _frame"))
            if not carry or carry_rows(con, name, "_tonight") is None:
                con.execute(f"CREATE TABLE {name} AS SELECT * FROM _tonight")
            con.execute("DROP VIEW _tonight")
            con.unregister("_frame")
        con.register("_quarantine", inputs.quarantine)
        con.execute(
            "CREATE TABLE quarantine AS SELECT ? AS run_id, * FROM _quarantine", [inputs.run_id]
        )
        for name, ddl in _HISTORY_DDL.items():
            con.execute(ddl)
        reports = inputs.staging_reports
        if reports:
            con.executemany(
                "INSERT INTO extraction_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    [inputs.run_id, r.source, r.lineage.kind, r.lineage.location, r.lineage.extracted_at,
                     r.lineage.row_count, r.lineage.content_hash, r.lineage.encoding, r.department]
                    for r in reports
                ],
            )
        rows = [
            [inputs.run_id, r.validation.suite, r.validation.success, r.validation.row_count, o.kind, o.column,
             o.success, o.unexpected_count, o.unexpected_percent, o.why]
            for r in reports
            for o in r.validation.outcomes
        ]
        if rows:
            con.executemany("INSERT INTO validation_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        for name in ("_records", "_mapping", "_quarantine"):
            con.unregister(name)
        return carried, written

    def _record_identities(self, con: duckdb.DuckDBPyConnection, inputs: PublicationInputs) -> None:
        # Runs after the carry-over, so each issued id and each decision is kept once across runs.
        for name, frame in (("_id_history", inputs.person_id_history), ("_queue", inputs.review_queue),
                            ("_decisions", inputs.review_decisions)):
            con.register(name, frame if frame is not None and len(frame.columns) else pd.DataFrame({"_": []}))
        if inputs.person_id_history is not None and len(inputs.person_id_history):
            con.execute("INSERT INTO person_id_history SELECT ?, kind, old_id, new_id, records FROM _id_history",
                        [inputs.run_id])
        issued_before = ["SELECT person_id FROM record_person"]
        if self._previous is not None:
            # A warehouse published before ids were tracked: its ids count as issued too.
            con.execute(f"ATTACH '{self._previous}' AS previous_ids (READ_ONLY)")
            issued_before.append("SELECT person_id FROM previous_ids.record_person")
        try:
            con.execute(
                f"INSERT INTO issued_person_ids SELECT DISTINCT person_id, ? FROM ({' UNION ALL '.join(issued_before)}) "
                "WHERE person_id IS NOT NULL AND person_id NOT IN (SELECT person_id FROM issued_person_ids)",
                [inputs.run_id],
            )
        finally:
            if self._previous is not None:
                con.execute("DETACH previous_ids")
        if inputs.review_decisions is not None and len(inputs.review_decisions):
            con.execute(
                "INSERT INTO review_decisions SELECT record_id_a, record_id_b, decision, decided_by, decided_at, note "
                "FROM _decisions d ANTI JOIN review_decisions k ON k.record_id_a = d.record_id_a "
                "AND k.record_id_b = d.record_id_b AND k.decision = d.decision "
                "AND k.decided_at IS NOT DISTINCT FROM d.decided_at"
            )
        con.execute(_REVIEW_QUEUE_DDL)
        if inputs.review_queue is not None and len(inputs.review_queue):
            con.execute(
                "INSERT INTO review_queue BY NAME SELECT * REPLACE (coalesce(first_seen_run, ?) AS first_seen_run) "
                "FROM _queue", [inputs.run_id]
            )
        for name in ("_id_history", "_queue", "_decisions"):
            con.unregister(name)

    def _remember_decisions(self, con: duckdb.DuckDBPyConnection) -> None:
        """Keep the withdrawals, refusals and deletion requests of earlier runs that the registry no
        longer holds: a row lost from an export (or deleted by mistake) must never revive anyone. A
        decision is undone only by a later one; a vanished grant is not remembered."""
        if self._previous is None:
            return
        con.execute(f"ATTACH '{self._previous}' AS previous (READ_ONLY)")
        try:
            if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'previous' "
                               "AND table_name = 'consent_decisions'").fetchone()[0]:
                return
            now = {row[0] for row in con.execute("DESCRIBE consent_decisions").fetchall()}
            before = {row[0] for row in con.execute("DESCRIBE previous.consent_decisions").fetchall()}
            if not {"record_id", "status"} <= now & before:
                return
            shared = ", ".join(c for c in now if c in before)
            remembered = con.execute(
                f"""INSERT INTO consent_decisions BY NAME
                    SELECT {shared} FROM previous.consent_decisions p
                    WHERE p.status IN {RESTRICTIVE_SQL}
                      AND p.record_id NOT IN (SELECT record_id FROM consent_decisions)"""
            ).fetchone()[0]
            if remembered:
                log.warning("%d withdrawals, refusals or deletion requests of earlier runs are no longer in the "
                            "consent registry; they are kept in force", remembered)
        finally:
            con.execute("DETACH previous")

    def _carry_history(self, con: duckdb.DuckDBPyConnection) -> None:
        if self._previous is None:
            return
        con.execute(f"ATTACH '{self._previous}' AS previous (READ_ONLY)")
        try:
            existing: dict[str, set[str]] = {}
            for table, column in con.execute(
                    "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = 'previous'").fetchall():
                existing.setdefault(table, set()).add(column)
            for table in _HISTORY_DDL:
                if table not in existing:
                    continue
                rows = f"SELECT * FROM previous.{table}"
                if table in HISTORY_SPAN_SQL and "run_id" in existing[table]:
                    rows = HISTORY_SPAN_SQL[table].format(table=f"previous.{table}")  # an earlier version's layout
                con.execute(f"INSERT INTO {table} BY NAME {rows}")
        finally:
            con.execute("DETACH previous")

    @staticmethod
    def _log_run(con: duckdb.DuckDBPyConnection, inputs: PublicationInputs, published_at: datetime) -> None:
        sources = sorted({r.source for r in inputs.staging_reports})
        con.execute(
            "INSERT INTO runs VALUES (?, ?, (SELECT count(*) FROM record_person), (SELECT count(*) FROM quarantine), "
            "(SELECT count(*) FROM unified_population), ?)",
            [inputs.run_id, published_at, sources],
        )


def _as_arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def _grid_sources(inputs: PublicationInputs) -> list[str]:
    """The ``role: grid_updates`` sources of this run."""
    return [r.source for r in inputs.staging_reports if r.role == "grid_updates"]


def _typed_dates(columns) -> str:
    """The staged text dates that always name a day, as DATEs for analysts (a ``REPLACE`` clause), and
    ``birth_day``: ``birth_date`` as a DATE where the day is known. ``birth_date`` itself stays text of
    mixed precision (the census knows only the month)."""
    # CAST, not TRY_CAST: staging writes these as YYYY-MM-DD or null, so anything else is a defect
    # to stop on, not a date to lose.
    day = [f"CAST(r.{c} AS DATE) AS {c}" for c in DAY_DATE_COLUMNS if c in columns]
    replace = f" REPLACE ({', '.join(day)})" if day else ""
    if {"birth_date", "birth_date_precision"} <= set(columns):
        replace += ", TRY_CAST(CASE WHEN r.birth_date_precision = 'day' THEN r.birth_date END AS DATE) AS birth_day"
    return replace
