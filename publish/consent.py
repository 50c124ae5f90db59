"""Effective consent: what each person has currently agreed to, per purpose, recipient and category.

The staged registry (``consent_decisions``) keeps every decision ever made; nothing is overwritten.
From it a run derives, at the run date:

- ``consent_effective``: person × purpose × recipient × data category → the latest decision, its
  expiry, whether a guardian made it, and ``effective_status`` (``granted``, ``expired``,
  ``refused`` or ``withdrawn``). A decision counts as a guardian's only if the guardian is someone
  else and of age (18) on the day of the decision, by the birth date of their ID number, and —
  where the departments place the child and a guardian the district knows in flats
  (``person_flats``) — shares a flat with the child. A decision
  without categories covers ``basic`` only; sensitive categories (``health``, ``judicial``,
  ``minor``) need a decision naming them (单独同意).
- ``unified_population.effective_consent``: a MAP ``purpose@recipient#category`` → effective status.
- ``deletion_requests``: people whose latest deletion decision is a request to be deleted (status
  ``deletion_requested``, PIPL art. 47). Only an explicit ``deletion_revoked`` (撤销删除) made later
  undoes it; a later grant for some purpose does not.

Of two decisions made at the same instant the more protective counts
(:data:`core.vocabulary.PROTECTIVE_ORDER`), and a withdrawal or refusal for purpose ``*`` covers every
purpose (a grant must name its purpose).
- ``consent_problems``: people named by a consent decision that could not be read (an unknown
  status such as 撤销 where the registry's map says 撤回, an unreadable date, an empty purpose).
  Such a decision may have been a withdrawal or a deletion request, so it fails closed: products
  leave these people out wherever a withdrawal or a deletion would (``publish.products``), until
  the row is corrected.

- ``consent_unmatched``: decisions that apply to no one the policy shares with — naming an ID
  number no person holds, a recipient no policy entry uses (nor ``*``), or a purpose no recipient
  serves (nor ``*``) — with the reason, counted in the run's log, so a registry that drifted from
  the policy (``卫健委`` for ``health``) is seen instead of silently ignored. A withdrawal, refusal or
  deletion request among them whose code no grant in the registry uses either (``网格`` where the registry
  writes ``grid``) may be meant for the policy's: it is a ``consent_problems`` row, failing closed.

Products read these two tables (``publish.products``); ``person_consent`` (``publish.golden``)
stays the per purpose × recipient summary.

Every one of them finds the person a decision is about in ``consent_subjects``: the person whose
records carry the ID number the decision names — but not through a record keyed with another
resident's number (``id_number_disputed``, an ID-sharing conflict, ``docs/identity.md``). A decision
names a number, and that number is its holder's: his grant must not carry his neighbour's record into
a product, his withdrawal or deletion request is not hers. The borrower's person has no consent under
the number, so consent-based products leave it out (reason ``id_disputed``) until a reviewer judges
the two records the same person or the department corrects the record: consent fails closed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import duckdb

from core.vocabulary import PROTECTIVE_ORDER
from publish.areas import add_address_places
from publish.sqltext import of_persons

__all__ = ["DELETION_STATUS", "RESTRICTIVE_SQL", "REVOCATION_STATUS", "add_consent_maps", "add_consent_problems",
           "add_consent_unmatched", "add_effective_consent", "add_person_flats", "consent_subjects_sql", "decisions_sql",
           "ids_ever_deleted", "protective_rank_sql", "restrictions_unknown_to"]

DELETION_STATUS = "deletion_requested"
REVOCATION_STATUS = "deletion_revoked"
#: The decisions that take someone out of products (an SQL list): never forgotten, and failing closed where they
#: cannot be placed.
RESTRICTIVE_SQL = f"('withdrawn', 'refused', '{DELETION_STATUS}')"


def restrictions_unknown_to(con: duckdb.DuckDBPyConnection, older: str) -> int:
    """How many withdrawals, refusals and deletion requests ``con``'s ``consent_decisions`` holds that the
    ``consent_decisions`` of the attached database ``older`` does not (the same person, purpose, recipient, status and
    time): what publishing ``older``'s products again would undo."""
    if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND table_name = 'consent_decisions'",
                       [older]).fetchall()[0][0]:
        return con.execute(f"SELECT count(*) FROM consent_decisions WHERE status IN {RESTRICTIVE_SQL}").fetchall()[0][0]
    return con.execute(f"""SELECT count(*) FROM (
        SELECT id_number, purpose, recipient, status, decided_at FROM consent_decisions WHERE status IN {RESTRICTIVE_SQL}
        EXCEPT SELECT id_number, purpose, recipient, status, decided_at FROM {older}.consent_decisions)""").fetchall()[0][0]


def ids_ever_deleted(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every ID number a deletion request in ``consent_decisions`` names, revoked since or not, and whether or not
    anyone holds it now: what may never be shown again from an earlier release (``publish.releases``)."""
    return [row[0] for row in con.execute(
        "SELECT DISTINCT id_number FROM consent_decisions WHERE status = ? AND id_number IS NOT NULL",
        [DELETION_STATUS]).fetchall()]


def protective_rank_sql(status: str) -> str:
    """A DuckDB expression ranking ``status`` by :data:`PROTECTIVE_ORDER`: higher is more protective, so
    ``arg_max(x, (decided_at, rank))`` takes the most protective of simultaneous decisions."""
    whens = " ".join(f"WHEN '{s}' THEN {len(PROTECTIVE_ORDER) - i}" for i, s in enumerate(PROTECTIVE_ORDER))
    return f"CASE {status} {whens} ELSE 0 END"

# Columns the consent model added after the first registry format; older staged frames lack them.
_OPTIONAL_COLUMNS = {"categories": "VARCHAR", "expires_at": "TIMESTAMPTZ", "guardian_id_number": "VARCHAR"}


def decisions_sql(con: duckdb.DuckDBPyConnection, relation: str) -> str:
    """A SELECT of ``relation`` (the staged consent decisions) as ``consent_decisions`` holds them: the
    columns later registry formats added, NULL where an older staging lacks them, and ``decided_at`` with
    its time zone — so tonight's decisions compare row by row with the ones the last night published
    (:func:`publish.carry.carry_rows`); :func:`add_effective_consent` applies it to a table loaded as staged."""
    present = {c for (c, *_) in con.execute(f"DESCRIBE {relation}").fetchall()}
    decided = " REPLACE (CAST(decided_at AS TIMESTAMPTZ) AS decided_at)" if "decided_at" in present else ""
    added = "".join(f", CAST(NULL AS {t}) AS {c}" for c, t in _OPTIONAL_COLUMNS.items() if c not in present)
    return f"SELECT *{decided}{added} FROM {relation}"


def consent_subjects_sql() -> str:
    """``CREATE TABLE consent_subjects``: ID number → the person a consent decision naming it is about.

    From ``source_records``: every number a person's records carry, except on a record keyed with
    another resident's number (``id_number_disputed``).
    """
    return """
CREATE TABLE consent_subjects AS
SELECT DISTINCT id_number, person_id FROM source_records
WHERE id_number IS NOT NULL AND NOT coalesce(id_number_disputed, false)
ORDER BY id_number, person_id
"""


def add_person_flats(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``person_flats``: each flat a person's records place them in (``source_records.flat``,
    :func:`publish.areas.add_address_places`; the same flat however it is written) — the household
    data guardians are checked against."""
    columns = {row[0] for row in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = 'source_records' "
        "AND database_name = current_database()").fetchall()}
    if "flat" in columns:
        flats = "source_records"
    elif "address" in columns:
        add_address_places(con, "source_records", None)
        flats = "(SELECT person_id, p.flat FROM source_records r JOIN _address_places p ON p.address = r.address)"
    else:
        con.execute("CREATE TABLE person_flats (person_id VARCHAR, flat VARCHAR)")
        return
    con.execute(f"CREATE TABLE person_flats AS SELECT DISTINCT person_id, flat FROM {flats} "
                "WHERE flat IS NOT NULL ORDER BY person_id, flat")


def add_effective_consent(con: duckdb.DuckDBPyConnection, as_of: date,
                          into: str = "CREATE TABLE consent_effective AS") -> None:
    """Create ``consent_effective`` and ``deletion_requests`` from ``consent_decisions``
    (:func:`add_consent_maps` puts them beside the golden values).

    Args:
        con: a connection holding ``consent_decisions`` and ``consent_subjects`` (:func:`consent_subjects_sql`).
        as_of: the run date; a grant whose ``expires_at`` is on or before it has expired.
        into: how ``consent_effective``'s rows are written (a carried night: into a temporary table that
            :func:`publish.carry.carry_consent` compares with the last night's).
    """
    present = dict(con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'consent_decisions' "
        "AND database_name = current_database()").fetchall())
    if any(c not in present for c in _OPTIONAL_COLUMNS) or \
            present.get("decided_at", "TIMESTAMP WITH TIME ZONE") != "TIMESTAMP WITH TIME ZONE":
        # decisions loaded as staged, not through decisions_sql (as the warehouse loads them)
        con.execute(f"CREATE OR REPLACE TABLE consent_decisions AS {decisions_sql(con, 'consent_decisions')}")
    if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'person_flats' "
                       "AND database_name = current_database()").fetchall()[0][0]:
        add_person_flats(con)
    cutoff = datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC)
    con.execute(
        f"""
{into}
WITH decided AS (
    SELECT s.person_id, c.purpose, coalesce(c.recipient, '*') AS recipient,
        unnest(CASE WHEN nullif(trim(c.categories), '') IS NULL THEN ['basic']
                    ELSE list_distinct(list_transform(string_split(c.categories, ','), lambda x: lower(trim(x)))) END) AS category,
        c.status, c.decided_at, c.expires_at, c.channel,
        -- A guardian is someone else, of age (18) on the day of the decision, by the birth date their
        -- ID number carries: a child cannot consent for a child. Where the departments place both the
        -- child and a guardian the district knows in flats, they share one: a stranger's ID is not a
        -- guardian's.
        coalesce(c.guardian_id_number IS NOT NULL AND c.guardian_id_number <> c.id_number
                 AND c.decided_at >= try_strptime(substr(c.guardian_id_number, 7, 8), '%Y%m%d') + INTERVAL 18 YEAR
                 AND NOT (
                     EXISTS (SELECT 1 FROM person_flats cf WHERE cf.person_id = s.person_id)
                     AND EXISTS (SELECT 1 FROM consent_subjects g JOIN person_flats gf USING (person_id)
                                 WHERE g.id_number = c.guardian_id_number)
                     AND NOT EXISTS (SELECT 1 FROM consent_subjects g JOIN person_flats gf USING (person_id)
                                     JOIN person_flats cf ON cf.flat = gf.flat
                                     WHERE g.id_number = c.guardian_id_number AND cf.person_id = s.person_id)),
                 false) AS by_guardian,
        c.record_id AS decision_id
    FROM consent_decisions c JOIN consent_subjects s USING (id_number)
    WHERE c.status NOT IN ('{DELETION_STATUS}', '{REVOCATION_STATUS}')
), ranked AS (
    SELECT *,
        row_number() OVER (PARTITION BY person_id, purpose, recipient, category
                           ORDER BY decided_at DESC NULLS LAST, {protective_rank_sql('status')} DESC, decision_id) AS rn,
        count(*) OVER (PARTITION BY person_id, purpose, recipient, category) AS decisions
    FROM decided
), latest AS (
    SELECT person_id, purpose, recipient, category, status, decided_at, expires_at, channel, by_guardian,
        decision_id, decisions
    FROM ranked WHERE rn = 1
)
SELECT *,
    CASE WHEN status = 'granted' AND expires_at IS NOT NULL AND expires_at <= $cutoff THEN 'expired'
         ELSE status END AS effective_status
FROM latest
ORDER BY person_id, purpose, recipient, category
""",
        {"cutoff": cutoff},
    )
    con.execute(
        f"""
CREATE TABLE deletion_requests AS
WITH decided AS (
    SELECT s.person_id, c.status, c.decided_at, c.channel, c.record_id
    FROM consent_decisions c JOIN consent_subjects s USING (id_number)
    WHERE c.status IN ('{DELETION_STATUS}', '{REVOCATION_STATUS}')
), latest AS (
    SELECT person_id,
        arg_max(status, (decided_at, {protective_rank_sql('status')})) AS status,
        max(decided_at) FILTER (WHERE status = '{DELETION_STATUS}') AS requested_at,
        arg_max(channel, decided_at) FILTER (WHERE status = '{DELETION_STATUS}') AS channel,
        arg_max(record_id, decided_at) FILTER (WHERE status = '{DELETION_STATUS}') AS decision_id
    FROM decided
    GROUP BY person_id
)
SELECT person_id, requested_at, channel, decision_id FROM latest
WHERE status = '{DELETION_STATUS}'
ORDER BY person_id
"""
    )


def add_consent_maps(con: duckdb.DuckDBPyConnection, persons: str | None = None) -> None:
    """Create ``_consent_maps`` (temporary): per person ``effective_consent`` and ``consent``, one MAP each,
    which :class:`publish.golden.GoldenRecords` puts beside the golden values so a reader sees
    what the person agreed to without a join.

    ``effective_consent`` is ``purpose@recipient#category`` → the effective status at the run date
    (``consent_effective``); ``consent`` is ``purpose@recipient`` → the latest decision (``person_consent``,
    the long form). Built before the golden table and joined as it is written: adding them afterwards
    wrote the million-row table a second time (two UPDATEs, then a rebuild, did). ``persons``: a relation
    with a ``person_id`` column, the only persons whose maps are built (a carried night's written ones).
    """
    con.execute(f"""
CREATE OR REPLACE TEMP TABLE _consent_maps AS
SELECT person_id, e.effective_consent, c.consent
FROM (
    SELECT person_id, map_from_entries(list({{'k': purpose || '@' || recipient || '#' || category,
                                             'v': effective_status}} ORDER BY purpose, recipient, category))
        AS effective_consent
    FROM {of_persons("consent_effective", persons)} GROUP BY person_id
) e
FULL JOIN (
    SELECT person_id, map_from_entries(list({{'k': purpose || '@' || recipient, 'v': status}}
                                            ORDER BY purpose, recipient)) AS consent
    FROM {of_persons("person_consent", persons)} GROUP BY person_id
) c USING (person_id)
""")


def add_consent_problems(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``consent_problems``: person × consent decision that could not be read, with why.

    Also a decision that cannot be placed: a withdrawal, refusal or deletion request naming a number
    that every record carrying it holds only as borrowed (an ID-sharing conflict in which no record
    agrees with the number, ``id_number_disputed``). It must not reach no one, so it counts as
    unreadable for everyone carrying the number (rule ``id_holder_unknown``) until a reviewer decides.

    Args:
        con: a connection holding ``quarantine`` (whose consent rows carry ``subject_id_number``),
            ``consent_decisions``, ``source_records`` and ``consent_subjects``.
    """
    def columns(table: str) -> set[str]:
        return {row[0] for row in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = ? AND database_name = current_database()",
            [table]).fetchall()}

    con.execute("CREATE TABLE consent_problems (person_id VARCHAR, decision_id VARCHAR, rule VARCHAR, message VARCHAR)")
    if "subject_id_number" in columns("quarantine"):  # (a quarantine from before subjects were kept has none)
        con.execute("""INSERT INTO consent_problems
            SELECT s.person_id, q.record_id, q.rule, q.message
            FROM quarantine q JOIN consent_subjects s ON s.id_number = q.subject_id_number""")
    if "id_number_disputed" in columns("source_records"):
        con.execute(f"""INSERT INTO consent_problems
            SELECT DISTINCT r.person_id, c.record_id, 'id_holder_unknown',
                'the decision names ' || c.id_number || ', which every record carrying it holds as another '
                || 'resident''s number (an ID-sharing conflict awaiting review): it is applied to all of them'
            FROM consent_decisions c JOIN source_records r ON r.id_number = c.id_number
            WHERE coalesce(r.id_number_disputed, false)
              AND c.status IN {RESTRICTIVE_SQL}
              AND c.id_number NOT IN (SELECT id_number FROM consent_subjects)""")
    con.execute("CREATE OR REPLACE TABLE consent_problems AS SELECT * FROM consent_problems ORDER BY person_id, decision_id")


def add_consent_unmatched(con: duckdb.DuckDBPyConnection, recipients: list[str], purposes: list[str]) -> dict[str, int]:
    """Create ``consent_unmatched`` and return how many decisions there are per reason; add to ``consent_problems``
    the withdrawals, refusals and deletion requests among them that cannot be placed (a code nothing uses).

    Args:
        con: a connection holding ``consent_decisions``, ``consent_subjects`` and ``consent_problems``
            (:func:`add_consent_problems`).
        recipients: the registry names of the policy's recipients (``Recipient.registry_recipient``).
        purposes: the purposes the policy's recipients serve.
    """
    con.execute(
        """
CREATE TABLE consent_unmatched AS
WITH subjects AS (SELECT DISTINCT id_number FROM consent_subjects),
reasons AS (
    SELECT c.record_id AS decision_id, c.id_number, c.purpose, c.recipient, c.status, c.decided_at,
        CASE WHEN c.id_number IS NULL OR c.id_number NOT IN (SELECT id_number FROM subjects) THEN 'no_person'
             WHEN c.recipient <> '*' AND NOT list_contains($recipients, c.recipient) THEN 'unknown_recipient'
             WHEN c.purpose <> '*' AND NOT list_contains($purposes, c.purpose) THEN 'unknown_purpose'
        END AS reason
    FROM consent_decisions c
)
SELECT * FROM reasons WHERE reason IS NOT NULL ORDER BY reason, decision_id
""",
        {"recipients": sorted(set(recipients)), "purposes": sorted(set(purposes))},
    )
    # A withdrawal, refusal or deletion request for a code that neither the policy nor any grant in the registry uses
    # (网格 where the registry writes grid) may be meant for one of the policy's recipients or purposes: read as
    # another system's, it was ignored and the person's grant stood (reliability audit). It cannot be placed, so it
    # fails closed like an unreadable one. A code the registry grants to is another system's matter, as before.
    con.execute(f"""INSERT INTO consent_problems
        SELECT DISTINCT s.person_id, u.decision_id, u.reason,
            'a ' || u.status || ' decision names ' || CASE u.reason WHEN 'unknown_recipient' THEN 'recipient '
            || u.recipient ELSE 'purpose ' || u.purpose END || ', which neither the policy nor any grant in the '
            || 'registry uses: it may be meant for one of the policy''s, so it applies to every product until the '
            || 'registry writes a code the policy uses (or *)'
        FROM consent_unmatched u JOIN consent_subjects s ON s.id_number = u.id_number
        WHERE u.status IN {RESTRICTIVE_SQL}
          AND u.reason IN ('unknown_recipient', 'unknown_purpose')
          AND NOT EXISTS (SELECT 1 FROM consent_decisions g WHERE g.status = 'granted' AND CASE u.reason
                          WHEN 'unknown_recipient' THEN g.recipient = u.recipient ELSE g.purpose = u.purpose END)""")
    con.execute("CREATE OR REPLACE TABLE consent_problems AS SELECT * FROM consent_problems ORDER BY person_id, decision_id")
    return dict(con.execute("SELECT reason, count(*) FROM consent_unmatched GROUP BY reason ORDER BY reason").fetchall())
