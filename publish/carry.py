"""A night's warehouse built on the last one: the rows of unchanged records and persons carried over.

On a night when 1% of the records changed, writing every record and every person of the district into a
new file again is most of the publication's SQL (at a million people ``source_records``, 2.5M rows, ~13 s
with the places of their addresses, and ``unified_population`` ~21 s). So the candidate warehouse may
start as a copy of the last generation's file (``base``, :mod:`publish.generations`): the tables it does
not carry are dropped and built as on any night, and

- ``source_records`` keeps the rows of records that did not change — the same record, with the same
  content and the same person — and writes only the rows of new and changed records, after deleting those
  of changed and gone ones (:func:`carry_source_records`). A record is compared by a hash of its row
  (DuckDB's 64-bit ``hash`` of every column but ``extracted_at``, on both sides: a changed record that kept
  its hash would have one chance in 2^64); ``extracted_at`` is set to this night's extraction for every
  row, as a whole build writes it;
- ``unified_population`` writes again the persons whose records changed, whose consent maps changed or
  whose age moved on, and everyone in the households any of them left or joined
  (:func:`carry_unified_population`); every other row depends on nothing that changed. Only the persons
  written are placed in their areas and 户籍 places (``person_areas``, ``_hukou_places``), which follow
  from each person's own records;
- ``area_conflicts`` writes again the rows of the persons whose records changed (a person's conflicts
  follow from their records, the register and the departments' names, all in the fingerprint);
- ``person_consent`` and ``consent_effective`` are computed whole, as on any night, and kept row by row
  (:func:`carry_consent`); the persons whose rows changed are the ones whose consent maps are built and
  whose ``unified_population`` rows are written again for it (every person's maps were built and
  compared before);
- ``link_pairs`` and ``consent_decisions``, which the publication takes as they come (linking's scored
  pairs, the registry's staged decisions), keep the rows tonight's inputs still hold and write only the
  others, found by a hash of the whole row (:func:`carry_rows`): at a million people writing the 2.8M
  pairs and 1.4M decisions again took ~7 s of an incremental night, comparing them takes ~1 s.

A night builds whole, as before, when any of these holds (:func:`carry_base`, which says which):

- there is no last generation, or it was not built by a version that records how (``carry_state``);
- ``silobreaker run --full`` (it removes ``<home>/kept``, where the marker of the last publication is);
- the fingerprint differs: the code that derives a row (this module, the warehouse, the area matching,
  the golden record, consent, the key populations, the flat an address points to, the canonical schema),
  DuckDB's version, the district's area register or the golden record's configuration (trust, key
  populations, base register, grid sources) changed — carried rows would not be what tonight writes;
- tonight's records have other columns or types than the carried rows (checked as they are loaded);
- :data:`WHOLE_EVERY` nights in a row were carried: the rows of deleted records stay as dead bytes in
  a file built on copies until its row groups are written again, so a whole build at least once a week
  keeps what is gone from lingering longer than the generations kept (:data:`publish.generations.KEEP`).

A carried build publishes the same rows as a whole one (tests/pipelines/test_incremental.py compares
them day after day), not in the same physical order: carried tables keep the last night's rows where they
are and append the new ones, which nothing reads by position.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from core.home import DataHome
from publish.golden import GoldenRecords, age_sql
from publish.populations import present_sql
from publish.sqltext import identifier

__all__ = ["CARRIED_TABLES", "COMPARED_TABLES", "WHOLE_EVERY", "CarryPlan", "carry_base", "carry_consent", "carry_rows",
           "carry_source_records", "carry_unified_population", "drop_uncarried", "fingerprint", "note_publication",
           "record_carry", "start_from"]

log = logging.getLogger(__name__)

#: Tables a carried build brings to tonight's input row by row (:func:`carry_rows`).
COMPARED_TABLES = ("link_pairs", "consent_decisions")

#: The tables a carried build keeps from the last generation; every other one is dropped and built again.
CARRIED_TABLES = ("source_records", "unified_population", "area_conflicts", "person_consent", "consent_effective",
                  *COMPARED_TABLES)

#: At most this many nights in a row are carried; the next one builds whole.
WHOLE_EVERY = 7

#: The code a carried row depends on beyond SQL text: a change to any of these files builds whole.
_CODE = ("publish/carry.py", "publish/warehouse.py", "publish/areas.py", "publish/golden.py", "publish/consent.py",
         "publish/populations.py", "publish/sqltext.py", "dedup/prepare.py", "staging/schema.py")
_ROOT = Path(__file__).resolve().parents[1]

_STATE_DDL = """CREATE TABLE carry_state (
    run_id VARCHAR, built VARCHAR, nights_carried INTEGER, fingerprint VARCHAR,
    rows_carried BIGINT, rows_written BIGINT, persons_written BIGINT, why_whole VARCHAR)"""
_MARKER = "publication.json"


@dataclass(frozen=True)
class CarryPlan:
    """How tonight's warehouse is built: on ``base`` (carried) or whole (``base`` is ``None``, ``why`` says why)."""

    base: Path | None
    nights_carried: int
    why: str | None = None


def fingerprint(register: object | None, golden: str, departments: Mapping[str, str] | None = None) -> str:
    """What a carried row depends on beside its records: the code, DuckDB, the area register, the
    configuration the golden rows follow (``golden``: their statement at a fixed date — trust, the key
    populations, the base register, the grid sources) and the departments' names (source → 民政, which
    ``area_conflicts`` gives as reasons). The records' columns are compared as they are loaded
    (:func:`carry_source_records`)."""
    digest = hashlib.sha256()
    for name in _CODE:
        digest.update(name.encode() + b"\0" + (_ROOT / name).read_bytes() + b"\0")
    digest.update(json.dumps([duckdb.__version__, repr(getattr(register, "lines", None)), golden,
                              sorted((departments or {}).items())], ensure_ascii=False).encode())
    return digest.hexdigest()


def carry_base(home: DataHome, previous: Path | None, fingerprint_now: str) -> CarryPlan:
    """Whether tonight builds on ``previous`` (the last generation's warehouse), and if not, why."""
    if previous is None:
        return CarryPlan(None, 0, "no earlier publication")
    if not (home.kept_dir / _MARKER).is_file():
        return CarryPlan(None, 0, "nothing kept (first run, or run --full)")
    with duckdb.connect(str(previous), read_only=True) as con:
        if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'carry_state'").fetchone()[0]:
            return CarryPlan(None, 0, "the last publication does not record how it was built")
        state = con.execute("SELECT nights_carried, fingerprint FROM carry_state").fetchone()
    if state is None or state[1] != fingerprint_now:
        return CarryPlan(None, 0, "the code, DuckDB, the area register or the golden record's configuration "
                                  "(trust, populations.yaml, the base register) changed")
    if state[0] + 1 >= WHOLE_EVERY:
        return CarryPlan(None, 0, f"{WHOLE_EVERY - 1} nights in a row were carried (a whole build at least every "
                                  f"{WHOLE_EVERY}th night)")
    return CarryPlan(previous, state[0] + 1)


def start_from(plan: CarryPlan, candidate: Path) -> None:
    """Copy the base warehouse to ``candidate`` (nothing for a whole build)."""
    if plan.base is not None:
        shutil.copyfile(plan.base, candidate)


def drop_uncarried(con: duckdb.DuckDBPyConnection) -> None:
    """Drop every table and view of a copied warehouse but :data:`CARRIED_TABLES`."""
    for (name,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal AND database_name = "
                               "current_database()").fetchall():
        con.execute(f'DROP VIEW "{name}"')
    for (name,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
                               "AND schema_name = 'main'").fetchall():
        if name not in CARRIED_TABLES:
            con.execute(f'DROP TABLE "{name}"')


def carry_source_records(con: duckdb.DuckDBPyConnection, incoming: str) -> tuple[int, int] | None:
    """Bring the carried ``source_records`` to what ``incoming`` would write whole; ``(carried, written)`` rows,
    or ``None`` when tonight's records have other columns or types than the carried rows (a source declared
    a new field, a new version's canonical column): the carried table is dropped, to be written whole.

    Args:
        con: the candidate, a copy of the last generation's warehouse.
        incoming: a relation of tonight's rows as ``source_records`` holds them, but without the places of
            their addresses (which only the written rows need): ``person_id``, the record's columns
            (typed), ``id_number_disputed``.

    Creates ``_fresh_records(record_id)`` (temporary): the records whose rows are to be written, which the
    caller writes with their places.
    """
    now = con.execute(f"DESCRIBE {incoming}").fetchall()
    before = {c: t for (c, t, *_) in con.execute("DESCRIBE source_records").fetchall()}
    if any(before.get(c) != t for (c, t, *_) in now):
        for name in CARRIED_TABLES:  # the night builds whole: nothing of the last one stays
            con.execute(f"DROP TABLE IF EXISTS {name}")
        return None
    compared = [c for (c, *_) in now if c != "extracted_at"]
    row = _row_hash(compared)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _rows_now AS SELECT record_id, {row} AS h FROM {incoming}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _rows_before AS SELECT record_id, {row} AS h FROM source_records")
    con.execute("CREATE OR REPLACE TEMP TABLE _fresh_records AS SELECT record_id FROM _rows_now n "
                "ANTI JOIN _rows_before b USING (record_id, h)")
    con.execute("CREATE OR REPLACE TEMP TABLE _stale_records AS SELECT record_id FROM _rows_before b "
                "ANTI JOIN _rows_now n USING (record_id, h)")
    # The persons whose records changed (by their ids before and after), and the households they were
    # counted in before their rows go: those households' sizes change for everyone in them.
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _touched AS
        SELECT person_id FROM source_records SEMI JOIN _stale_records USING (record_id)
        UNION SELECT person_id FROM {incoming} SEMI JOIN _fresh_records USING (record_id)""")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _households_before AS
        SELECT DISTINCT s.flat AS household
        FROM (SELECT * FROM unified_population SEMI JOIN _touched USING (person_id)) u
        JOIN source_records s ON s.address = u.address
        WHERE s.flat IS NOT NULL AND {present_sql("u")}""")
    stale = con.execute("DELETE FROM source_records WHERE record_id IN (SELECT record_id FROM _stale_records)"
                        ).fetchone()[0]
    # The night's extraction time, on every row (constant per source: one value each, where it differs). The
    # values are taken into a table first: on copies of a 1M-people warehouse the UPDATE with a subquery over the view
    # took 10.7-11.1 s, 0.8 s this way (benchmarks/carry_update.py); whole nights gained ~1.5 s, within their spread.
    con.execute(f"CREATE OR REPLACE TEMP TABLE _extracted AS SELECT DISTINCT source, extracted_at FROM {incoming}")
    con.execute("""UPDATE source_records s SET extracted_at = n.extracted_at FROM _extracted n
                   WHERE n.source = s.source AND s.extracted_at IS DISTINCT FROM n.extracted_at""")
    carried = con.execute("SELECT count(*) FROM source_records").fetchone()[0]
    written = con.execute("SELECT count(*) FROM _fresh_records").fetchone()[0]
    for name in ("_rows_now", "_rows_before", "_stale_records", "_extracted"):
        con.execute(f"DROP TABLE {name}")
    log.info("source_records: %d rows carried from the last publication, %d removed, %d written", carried, stale,
             written)
    return carried, written


def carry_rows(con: duckdb.DuckDBPyConnection, table: str, incoming: str,
               changed: tuple[str, str] | None = None) -> tuple[int, int] | None:
    """Bring the carried ``table`` to the rows of ``incoming``: delete the rows it no longer holds and insert
    the ones it did not; ``(kept, written)`` rows. ``None`` when it cannot be done row by row — no such
    table, other columns, types or column order, or a row repeated on either side (comparing by row would
    not count repeats) — and the table is dropped, to be written whole.

    ``changed`` (a column, a temporary table holding that column): the column's values of the rows deleted
    and inserted are added to that table, e.g. the persons whose consent rows changed.

    A row is compared by DuckDB's 64-bit ``hash`` of all its columns (a changed row that kept its hash
    would have one chance in 2^64). With no row repeated on either side, what stays is exactly
    ``incoming``'s rows; their order in the table is not (nothing reads them by position).
    """
    if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND schema_name = 'main' "
                       "AND database_name = current_database()", [table]).fetchone()[0]:
        return None
    now = [(c, t) for (c, t, *_) in con.execute(f"DESCRIBE {incoming}").fetchall()]
    before = [(c, t) for (c, t, *_) in con.execute(f"DESCRIBE {table}").fetchall()]
    row = _row_hash(c for c, _ in now)
    kept = written = None
    if now == before:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _rows_now AS SELECT {row} AS h FROM {incoming}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE _rows_before AS SELECT rowid AS r, {row} AS h FROM {table}")
        repeated = con.execute("SELECT (SELECT count(*) - count(DISTINCT h) FROM _rows_now) "
                               "+ (SELECT count(*) - count(DISTINCT h) FROM _rows_before)").fetchone()[0]
        if not repeated:
            stale = "SELECT r FROM _rows_before ANTI JOIN _rows_now USING (h)"
            con.execute("CREATE OR REPLACE TEMP TABLE _rows_new AS SELECT h FROM _rows_now ANTI JOIN _rows_before USING (h)")
            if changed is not None:
                column, into = identifier(changed[0]), changed[1]
                con.execute(f"INSERT INTO {into} SELECT {column} FROM {table} WHERE rowid IN ({stale}) "
                            f"UNION SELECT {column} FROM {incoming} WHERE {row} IN (SELECT h FROM _rows_new)")
            con.execute(f"DELETE FROM {table} WHERE rowid IN ({stale})")
            # Finding the new rows in ``incoming`` hashes every row of it again: not on a night without any (a
            # consent registry sent unchanged).
            written = con.execute(f"INSERT INTO {table} SELECT * FROM {incoming} WHERE {row} IN (SELECT h FROM _rows_new)"
                                  ).fetchone()[0] if con.execute("SELECT count(*) FROM _rows_new").fetchall()[0][0] else 0
            kept = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] - written
            con.execute("DROP TABLE _rows_new")
        con.execute("DROP TABLE _rows_now")
        con.execute("DROP TABLE _rows_before")
    if kept is None:
        con.execute(f"DROP TABLE {table}")
        log.info("%s: written whole (its columns changed or a row repeats)", table)
        return None
    log.info("%s: %d rows kept from the last publication, %d written", table, kept, written)
    return kept, written


def carry_consent(con: duckdb.DuckDBPyConnection) -> bool:
    """Bring the carried ``person_consent`` and ``consent_effective`` to tonight's, which the caller computed
    whole into ``_person_consent`` and ``_consent_effective`` (temporary; dropped here), row by row
    (:func:`carry_rows`), and create ``_consent_changed(person_id)``: the persons whose rows in either differ
    from the last night's — the only ones whose consent maps can have changed.

    Returns whether both were compared row by row; where one could not be (its columns changed), it is
    written whole and the caller compares every person's maps instead.
    """
    con.execute("CREATE OR REPLACE TEMP TABLE _consent_changed (person_id VARCHAR)")
    compared = True
    for table in ("person_consent", "consent_effective"):
        if carry_rows(con, table, f"_{table}", changed=("person_id", "_consent_changed")) is None:
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM _{table}")
            compared = False
        con.execute(f"DROP TABLE _{table}")
    return compared


def carry_unified_population(con: duckdb.DuckDBPyConnection, golden: GoldenRecords, as_of: date,
                             place: Callable[[str], None], consent_changed: str | None = None) -> int:
    """Bring the carried ``unified_population`` to what a whole build writes tonight; the persons written.

    A person's row is written again when their records changed (``_touched``, :func:`carry_source_records`),
    their consent rows changed (``consent_changed``), or their age at ``as_of``
    differs from the carried one (a birthday, the key populations that follow from age); and so is everyone
    counted in a household any of them was or is counted in, whose sizes change with them. Every other row
    is the same as a whole build writes: it depends on nothing else (its records, its areas and 户籍 place
    from them, the register and the configuration being in the fingerprint).

    Args:
        con: the candidate, with ``source_records`` carried, ``_touched`` and ``_households_before``.
        golden: how the district's golden rows are chosen and written (:class:`publish.golden.GoldenRecords`).
        as_of: tonight's date, that ages are computed at.
        place: creates the areas, 户籍 places and consent maps the golden rows of the persons in a relation
            read (``person_areas``, ``_hukou_places``, ``_consent_maps``), before each write: they follow
            from each person's own records and decisions, so only the persons written are placed.
        consent_changed: a relation of the persons whose consent rows changed (:func:`carry_consent`);
            without it every person's ``_consent_maps`` (built for everyone) is compared with their row.
    """
    consent = f"SELECT person_id FROM {consent_changed}" if consent_changed else """SELECT u.person_id
        FROM unified_population u LEFT JOIN _consent_maps m USING (person_id)
        WHERE m.effective_consent IS DISTINCT FROM u.effective_consent OR m.consent IS DISTINCT FROM u.consent"""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _changed AS
        SELECT person_id FROM _touched
        UNION {consent}
        UNION SELECT person_id FROM unified_population WHERE age IS DISTINCT FROM {age_sql("birth_date", as_of)}""")
    # Their households tonight, from their rows as written tonight (a household counted whole below).
    place("_changed")
    golden.write(con, as_of, "_changed", "CREATE OR REPLACE TEMP TABLE _changed_rows AS")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _households AS
        SELECT household FROM _households_before
        UNION SELECT DISTINCT s.flat FROM _changed_rows r JOIN source_records s ON s.address = r.address
            WHERE s.flat IS NOT NULL AND {present_sql("r")}""")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _rewritten AS
        SELECT person_id FROM _changed
        UNION SELECT u.person_id FROM unified_population u
            JOIN (SELECT DISTINCT address FROM source_records SEMI JOIN _households h ON h.household = flat) a
            ON a.address = u.address
            WHERE {present_sql("u")}""")
    con.execute("DELETE FROM unified_population WHERE person_id IN (SELECT person_id FROM _rewritten)")
    place("_rewritten")
    written = golden.write(con, as_of, "_rewritten", "INSERT INTO unified_population BY NAME")
    for name in ("_changed", "_changed_rows", "_households", "_rewritten", "_touched", "_households_before"):
        con.execute(f"DROP TABLE {name}")
    log.info("unified_population: %d persons written again, the others carried from the last publication", written)
    return written


def record_carry(con: duckdb.DuckDBPyConnection, run_id: str, plan: CarryPlan, fingerprint_now: str,
                 carried: int, written: int, persons_written: int) -> None:
    """Write ``carry_state``: how this generation was built, which the next night compares with."""
    con.execute(_STATE_DDL)
    con.execute("INSERT INTO carry_state VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [run_id, "carried" if plan.base is not None else "whole", plan.nights_carried, fingerprint_now,
                 carried, written, persons_written, plan.why])


def _row_hash(columns: Iterable[str]) -> str:
    """A DuckDB expression: the 64-bit hash of a row's ``columns``, compared night to night."""
    return f"hash({{{', '.join(f'{identifier(c)}: {identifier(c)}' for c in columns)}}})"


def note_publication(home: DataHome, generation: str) -> None:
    """Mark in ``<home>/kept`` that a generation was published: the next night may build on it
    (``--full`` removes the marker with everything kept)."""
    marker = home.kept_dir / _MARKER
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"generation": generation}), encoding="utf-8")

