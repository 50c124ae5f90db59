"""Per-recipient data products: exactly the rows and columns the sharing policy allows, encrypted.

A product is a parquet file built from ``unified_population`` by SQL assembled from the policy's
structured fields (never from SQL text in configuration), then encrypted for its recipient
(``publish.crypto``). What a person contributes depends on the recipient's legal basis:

- ``consent``: the person's effective decision (``consent_effective``) for the recipient's purpose,
  addressed to the recipient or to everyone (``*``), must be ``granted`` for category ``basic``; a
  child under 14 also needs a ``minor`` decision, and every decision counted for a child must have
  been made by the guardian. Sensitive columns (health, judicial) are filled only for people whose
  separate decision names that category, and sensitive key populations are hidden otherwise.
- ``statutory``: everyone in scope, sensitive columns included — except people who asked to be
  deleted, who stay only in statutory registers (``statutory_register: true``).

A person named by a consent decision that could not be read (``consent_problems``) is left out
wherever a withdrawal or a deletion would leave them out: the decision may have been either. A person
whose records carry only another resident's ID number (``id_number_disputed``) has no consent under
it, and is left out of consent-based products with reason ``id_disputed`` (``publish.consent``).

People in scope but left out are listed, with the reason, in ``consent_exclusions`` (restricted
zone) and counted in the audit log. Pseudonymised products replace ``person_id`` by an HMAC-SHA256
keyed per recipient, so two recipients cannot join their copies. Aggregate recipients get
small-cell-suppressed counts (``publish.statistics``). Each product records in its encrypted
key-value metadata the id of the key it is encrypted under and its place in the audit log
(``publish.audit.ProductAnchor``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.home import OFFICE_SUFFIXES, DataHome, HomeLike
from core.keys import key_id, keyed_digests, load_or_create_key
from core.vocabulary import DISTRICT_TIME_ZONE, FIELD_LABELS, FIELD_NOTES, MASKED_NOTE, MASKS, PURPOSE_LABELS
from publish.anonymity import anonymise
from publish.audit import LastDeliveries, ProductAnchor
from publish.consent import ids_ever_deleted, protective_rank_sql
from publish.crypto import DISCLOSURE_METADATA, product_key, write_encrypted
from publish.office import KeptDerivation, OfficeFile, office_password
from publish.policy import (
    CONSENT_CATEGORIES,
    EVERY_AREA,
    MINOR_AGE,
    SENSITIVE_COLUMNS,
    Recipient,
)
from publish.populations import present_sql
from publish.releases import HeldRelease, hold_release
from publish.statistics import statistics_table
from staging.dates import CHINA_TZ

__all__ = ["EXCLUSION_LABELS", "RENEWAL_DAYS", "RENEWAL_SHEET", "ProductFile", "area_rows", "build_product",
           "family_rows", "product_query_sql", "pseudonym_key"]

_HIDDEN = ("_person_id", "_id_number", "_reason", "_street", "_community", "_grid", "_consent_until")

#: A listed person whose consent ends within this many days is on the renewal list (待续同意) too.
RENEWAL_DAYS = 60

#: Why a person in scope was left out, as the 说明 of a delivered file says it.
EXCLUSION_LABELS = {
    "no_consent": "未取得本人同意", "expired": "同意已过期", "refused": "本人拒绝", "withdrawn": "本人已撤回同意",
    "deleted": "本人要求删除", "consent_unreadable": "同意记录无法识别（待更正）",
    "no_guardian_consent": "未取得监护人同意", "id_disputed": "身份证号存疑（待核实）", "not_anonymous": "不满足匿名要求",
}

#: The sheet (xlsx) or file (csv zip) of the renewal list.
RENEWAL_SHEET = "待续同意"


@dataclass(frozen=True)
class ProductFile:
    """One written product: where it is and what went into it (for the publication and audit logs).

    ``members`` holds the resident ID numbers of the people in the product and ``person_ids`` their
    person ids (people without an ID number too), as Arrow arrays from :func:`build_product` (any
    sequence of text will do); the audit log stores only keyed hashes of them.
    ``exclusions`` counts people in scope left out, by reason (``withdrawn``, ``deleted``,
    ``consent_unreadable``, ``expired``, ``refused``, ``no_guardian_consent``, ``id_disputed``,
    ``no_consent``, ``not_anonymous``).
    ``key_id`` names the key the file is encrypted under, ``anchor`` its place in the audit log.
    """

    recipient: str
    path: Path
    columns: tuple[str, ...]
    row_count: int
    content_hash: str
    purpose: str = ""
    legal_basis: str = ""
    legal_reference: str | None = None
    members: Sequence[str] | pa.ChunkedArray = field(default=(), repr=False)
    exclusions: dict[str, int] = field(default_factory=dict)
    disclosure: dict | None = None
    person_ids: Sequence[str] | pa.ChunkedArray = field(default=(), repr=False)
    key_id: str | None = None
    anchor: ProductAnchor | None = None
    office_hash: str | None = None
    policy_entry: str = ""
    area: str | None = None


def _consent_pivot_sql() -> str:
    # The latest decision per category for this purpose and recipient; of simultaneous ones the more
    # protective. A withdrawal or refusal for purpose '*' covers every purpose; a grant must name it.
    order = f"(decided_at, {protective_rank_sql('effective_status')})"
    picks = []
    for category in CONSENT_CATEGORIES:
        picks.append(f"arg_max(effective_status, {order}) FILTER (WHERE category = '{category}') AS _{category}")
        picks.append(f"arg_max(by_guardian, {order}) FILTER (WHERE category = '{category}') AS _{category}_guardian")
    picks.append(f"arg_max(expires_at, {order}) FILTER (WHERE category = 'basic') AS _basic_until")
    return (
        f"SELECT person_id, {', '.join(picks)} FROM consent_effective "
        "WHERE (purpose = $purpose OR (purpose = '*' AND effective_status IN ('withdrawn', 'refused'))) "
        "AND recipient IN ($recipient, '*') GROUP BY person_id"
    )


def product_query_sql(recipient: Recipient) -> tuple[str, dict[str, object]]:
    """The SELECT for ``recipient``'s product and its named parameters.

    Besides the policy's columns it returns ``_person_id``, ``_id_number``, ``_reason`` (null for
    people the recipient may have, else why they are left out), the person's area (``_street``,
    ``_community``, ``_grid``) and ``_consent_until``; :func:`build_product` drops them. A ``"*"`` scope
    level is not filtered: the rows of every area, which :func:`area_rows` splits.
    """
    consent = recipient.legal_basis == "consent"
    params: dict[str, object] = (
        {"purpose": recipient.purpose, "recipient": recipient.registry_recipient} if consent else {}
    )
    where = ["TRUE"]
    if recipient.scope or recipient.kind == "analyst":
        # An area's list is of the people living there: not those reported moved out or deceased. An analyst's
        # rows are of the residents too: a departed person shows no key population (each one's rule holds only
        # of the present), so an analyst row aged 60 without `elderly` said that its person had died or left.
        where.append(present_sql("u"))
    for i, (scope_field, value) in enumerate(recipient.scope.items()):
        if value == EVERY_AREA:
            continue
        where.append(f"u.{scope_field} = $scope{i}")
        params[f"scope{i}"] = value

    # A child under 14 by law (PIPL art. 31), whatever the key-population categories say.
    minor = f"coalesce(u.age < {MINOR_AGE}, false)"
    ok = {}
    for category in CONSENT_CATEGORIES:
        ok[category] = (
            f"coalesce(c._{category} = 'granted' AND (NOT {minor} OR c._{category}_guardian), false)"
            if consent else "TRUE"
        )
    if consent:
        reason = f"""CASE
            WHEN d.person_id IS NOT NULL THEN 'deleted'
            WHEN p.person_id IS NOT NULL THEN 'consent_unreadable'
            WHEN {ok['basic']} AND (NOT {minor} OR {ok['minor']}) THEN NULL
            WHEN {minor} AND c._basic = 'granted' THEN 'no_guardian_consent'
            WHEN {minor} AND c._basic = 'expired' AND NOT coalesce(c._basic_guardian, false)
                THEN 'no_guardian_consent'  -- the child's own consent never let anyone hold the data
            WHEN c._basic IN ('withdrawn', 'expired', 'refused') THEN c._basic
            WHEN coalesce(u.id_number_disputed, false) THEN 'id_disputed'
            ELSE 'no_consent' END"""
    elif recipient.statutory_register:
        reason = "NULL"
    else:
        reason = ("CASE WHEN d.person_id IS NOT NULL THEN 'deleted' "
                  "WHEN p.person_id IS NOT NULL THEN 'consent_unreadable' END")

    sensitive = recipient.populations.sensitive
    selected = []
    for column in recipient.columns:
        if column == "person_id" and recipient.pseudonymise:
            continue
        expr = MASKS[column].sql(f"u.{column}") if column in recipient.mask else f"u.{column}"
        if column in SENSITIVE_COLUMNS:
            expr = f"CASE WHEN {ok[SENSITIVE_COLUMNS[column]]} THEN {expr} END"
        if column == "reasons":
            # Why the person is listed: the reason of each category the recipient may see, in file order.
            allowed = " OR ".join(
                f"(x.category = '{population}' AND {ok[sensitive[population]]})" if population in sensitive
                else f"x.category = '{population}'"
                for population in recipient.reason_categories
            )
            expr = f"list_transform(list_filter(r.reasons, lambda x: {allowed}), lambda x: x.reason)"
        if column == "risk_warnings":
            # Open warnings of rules over key populations the recipient may see (minimum necessity); one that
            # reveals health or judicial data only where that category is granted.
            seen = ", ".join(f"'{p}'" for p in dict.fromkeys((*recipient.population, *recipient.shared_key_populations)))
            shown = " AND ".join([f"cardinality(x.populations) > 0 AND list_has_all([{seen}]::VARCHAR[], x.populations)",
                                  *(f"(NOT list_contains(x.reveals, '{category}') OR {ok[category]})"
                                    for category in ("health", "judicial"))])
            expr = f"list_transform(list_filter(w.warnings, lambda x: {shown}), lambda x: x.text)"
        if column == "consent_until":
            expr = f"CAST(timezone('{DISTRICT_TIME_ZONE}', c._basic_until) AS DATE)"
        if column == "key_populations":
            # Only the categories the policy names (minimum necessity); a sensitive one only where
            # its category is granted too.
            allowed = [
                f"(k = '{population}' AND {ok[sensitive[population]]})" if population in sensitive
                else f"k = '{population}'"
                for population in recipient.shared_key_populations
            ]
            expr = f"list_filter(u.key_populations, lambda k: {' OR '.join(allowed)})"
        selected.append(f"{expr} AS {column}")

    if recipient.population:
        flags = [
            f"(coalesce(u.{flag}, false) AND {ok[sensitive[flag]]})" if flag in sensitive
            else f"coalesce(u.{flag}, false)"
            for flag in recipient.population
        ]
        where.append("(" + " OR ".join(flags) + ")")
    consent_join = f"LEFT JOIN ({_consent_pivot_sql()}) c ON c.person_id = u.person_id" if consent else ""
    codes = ", ".join(f"'{code}'" for code in recipient.populations.codes)
    reasons_join = (
        "LEFT JOIN (SELECT person_id, list({'category': category, 'reason': reason} "
        f"ORDER BY array_position([{codes}], category)) AS reasons "
        "FROM key_residents GROUP BY person_id) r ON r.person_id = u.person_id"
        if "reasons" in recipient.columns else ""
    )
    warnings_join = (
        "LEFT JOIN (SELECT person_id, list({'text': rule_label || '（' || reason || '）' "
        "|| CASE status WHEN 'acknowledged' THEN '［已知悉］' ELSE '' END || '〔' || warning_id || '〕', "
        "'populations': populations, 'reveals': reveals} ORDER BY first_seen, rule) AS warnings FROM risk_warnings "
        "WHERE status IN ('open', 'acknowledged') GROUP BY person_id) w ON w.person_id = u.person_id"
        if "risk_warnings" in recipient.columns else ""
    )
    until = "c._basic_until" if consent else "NULL::TIMESTAMPTZ"
    order = "_person_id"
    if "address" in recipient.columns and not recipient.pseudonymise:
        # A walking round: the list in the order of the addresses it shows, numbers as numbers (5栋 before 10栋), the
        # people of a flat together. By the address as shown, so a masked one orders by what its mask leaves.
        order = f"{_natural_order_sql('address')} NULLS LAST, _person_id"
    sql = f"""SELECT * FROM (
SELECT u.person_id AS _person_id, u.id_number AS _id_number, {reason} AS _reason,
       u.street AS _street, u.community AS _community, u.grid AS _grid,
       CAST(timezone('{DISTRICT_TIME_ZONE}', {until}) AS DATE) AS _consent_until, {', '.join(selected)}
FROM unified_population u
LEFT JOIN deletion_requests d ON d.person_id = u.person_id
LEFT JOIN (SELECT DISTINCT person_id FROM consent_problems) p ON p.person_id = u.person_id
{consent_join}
{reasons_join}
{warnings_join}
WHERE {' AND '.join(where)}
) ORDER BY {order}"""
    return sql, params


def _natural_order_sql(column: str) -> str:
    """A text's sort key with each run of digits as a number: 兰亭社区5栋2单元401室 before 兰亭社区5栋2单元1201室."""
    return (f"array_to_string(list_transform(regexp_extract_all({column}, '[0-9]+|[^0-9]+'), lambda s: "
            "CASE WHEN regexp_full_match(s, '[0-9]+') THEN lpad(s, CAST(greatest(20, length(s)) AS INTEGER), '0') ELSE s END), '')")


def pseudonym_key(home: HomeLike, recipient: str) -> bytes:
    """The recipient's pseudonymisation key: ``$SILOBREAKER_PSEUDONYM_KEY_<RECIPIENT>`` (hex) or its
    key file under the data home (created on first use, see :mod:`core.keys`)."""
    path = DataHome.at(home).pseudonym_key_file(recipient)
    return load_or_create_key(path, f"SILOBREAKER_PSEUDONYM_KEY_{recipient.upper()}")


def _whose_pseudonyms(home: HomeLike, recipient: str, people: pa.Table, metadata: Mapping[str, str]) -> dict[str, tuple]:
    """Whom each ``person_key`` of an earlier release (its product's ``metadata``) stands for, among ``people`` (rows
    with ``_person_id`` and ``_id_number``): each one's pseudonym in that release, recomputed."""
    mode = json.loads(metadata.get(DISCLOSURE_METADATA, "{}")).get("pseudonyms", "stable")
    persons, ids = people.column("_person_id").to_pylist(), people.column("_id_number").to_pylist()
    keys = _pseudonyms(home, recipient, mode, ProductAnchor.from_metadata(metadata), persons)
    return dict(zip(keys, zip(persons, ids, strict=True), strict=True))


def _pseudonyms(home: HomeLike, recipient: str, mode: str, anchor: ProductAnchor | None, persons: list[str]) -> list[str]:
    """Each person's ``person_key`` in a release (``mode``: its policy's ``pseudonyms``; ``anchor``: its audit entry).
    One HMAC per person: linear, and keyed so the pseudonym cannot be recomputed (or matched with another
    recipient's) without this recipient's key."""
    key = pseudonym_key(home, recipient)
    if mode == "per_release":
        key = release_pseudonym_key(key, anchor)
    return [digest[:24] for digest in keyed_digests(key, (pid.encode() for pid in persons))]


def release_pseudonym_key(key: bytes, anchor: ProductAnchor | None) -> bytes:
    """The key of one release's pseudonyms (``pseudonyms: per_release``), derived from the recipient's key.

    Every release gets its own, so two releases' rows do not join on ``person_key``: joined, the pair of a
    person's two classes singles out who moved between them (``benchmarks/analyst_releases.py``). It is derived
    from the release's audit entry (``anchor.seq``), so whoever holds the recipient's key can recompute a release's
    pseudonyms (to find whom one an analyst quotes stands for); nobody else can. A product built outside a
    publication (no entry) gets a random one: its pseudonyms join nothing.
    """
    release = str(anchor.seq) if anchor is not None else secrets.token_hex(16)
    return hmac.new(key, f"silobreaker person_key, release {release}".encode(), hashlib.sha256).digest()


def _earlier_generalisations(con: duckdb.DuckDBPyConnection, recipient: str,
                             delivered: LastDeliveries | None) -> list[dict]:
    """What ``recipient``'s earlier releases recorded of their generalisation: in the audit log (``delivered``), which
    is only appended to, and in the publication log ``con`` carries (releases from before the audit entries recorded
    it; after a restore, or with the current warehouse damaged, that log lacks the newest). None outside a
    publication."""
    found = list(delivered.generalisations.get(recipient, [])) if delivered is not None else []
    if con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'publication_log' "
                   "AND database_name = current_database()").fetchall()[0][0]:
        found += [json.loads(d) for (d,) in con.execute(
            "SELECT disclosure FROM publication_log WHERE recipient = ? AND disclosure IS NOT NULL", [recipient]).fetchall()]
    return found


def _log_exclusions(con: duckdb.DuckDBPyConnection, recipient: str, person_ids: list[str], reasons: list[str]) -> None:
    con.execute(
        "CREATE TABLE IF NOT EXISTS consent_exclusions (recipient VARCHAR, person_id VARCHAR, reason VARCHAR)"
    )
    if person_ids:
        con.execute(
            "INSERT INTO consent_exclusions SELECT $r, unnest($p), unnest($why)",
            {"r": recipient, "p": person_ids, "why": reasons},
        )


def family_rows(con: duckdb.DuckDBPyConnection, entry: Recipient) -> pa.Table:
    """The rows of every area product of a ``"*"`` policy entry, from one query (:func:`area_rows` splits them)."""
    sql, params = product_query_sql(entry)
    return con.sql(sql, params=params).to_arrow_table()


def area_rows(rows: pa.Table, scope: dict[str, str]) -> pa.Table:
    """The rows of :func:`family_rows` in one area product's ``scope``."""
    keep = None
    for level, value in scope.items():
        match = pc.fill_null(pc.equal(rows.column(f"_{level}"), value), False)
        keep = match if keep is None else pc.and_(keep, match)
    return rows if keep is None else rows.filter(keep)


def build_product(con: duckdb.DuckDBPyConnection, recipient: Recipient, path: Path, home: HomeLike,
                  anchor: ProductAnchor | None = None, rows: pa.Table | None = None,
                  as_of: date | None = None, office_files: list[OfficeFile] | None = None,
                  delivered: LastDeliveries | None = None) -> ProductFile:
    """Write ``recipient``'s encrypted product to ``path`` from the tables in ``con``.

    ``con`` must hold ``unified_population``, ``consent_effective``, ``deletion_requests`` and
    ``key_residents``; ``home`` holds the recipient's keys; ``anchor`` (the audit entry the product will
    get) is written into the product's metadata. ``rows``: the product's query result already run
    (an area product's share of :func:`family_rows`). ``as_of``: the run date, from which the renewal
    list counts (default today, China time). ``office_files``: where a product delivered as xlsx or csv
    leaves its office file to write (:func:`publish.office.write_office_files`, many in parallel) instead
    of writing it; the caller then sets ``office_hash``. ``delivered``: whom each recipient's latest product held
    (the renewal list names a person whose consent lapsed only if this recipient's did); none named without it;
    and which release an analyst row product is held against (:mod:`publish.releases`), none without it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    members: Sequence[str] | pa.ChunkedArray = ()
    person_ids: Sequence[str] | pa.ChunkedArray = ()
    exclusions: dict[str, int] = {}
    disclosure: dict | None = None
    renewals: pa.Table | None = None
    lapsed: pa.Table | None = None  # named on the renewal list, not in the product's rows
    held: HeldRelease | None = None  # an analyst row product's rows held against its last release
    delivered_hash = None
    if recipient.aggregate is not None:
        table = statistics_table(con, recipient.aggregate, pseudonym_key(home, recipient.name))
    else:
        if rows is None:
            sql, params = product_query_sql(recipient)
            rows = con.sql(sql, params=params).to_arrow_table()
        full = rows
        reasons = full.column("_reason")
        excluded = full.filter(pc.is_valid(reasons))
        _log_exclusions(con, recipient.name, excluded.column("_person_id").to_pylist(), excluded.column("_reason").to_pylist())
        exclusions = dict(Counter(excluded.column("_reason").to_pylist()))
        table = full.filter(pc.is_null(reasons))
        if recipient.legal_basis == "consent" and recipient.format != "parquet":
            renewals, lapsed = _renewals(table, excluded, recipient, as_of or datetime.now(CHINA_TZ).date(), delivered)
        if recipient.k_anonymity is not None:
            # The hidden columns ride along, so membership below counts only the rows kept.
            table, control = anonymise(table, recipient.k_anonymity, recipient.shared_key_populations,
                                       recipient.populations.derived_from_age,
                                       _earlier_generalisations(con, recipient.name, delivered))
            if control.rows_left_out:
                exclusions["not_anonymous"] = control.rows_left_out
            # Class by class against the newest release delivered, so that the two cannot be differenced.
            delivered_hash = delivered.newest.get(recipient.name) if delivered else None
            held = hold_release(table, control, excluded.column("_person_id").to_pylist(), home, recipient.name,
                                delivered_hash, ids_ever_deleted(con) if delivered_hash else (),
                                lambda metadata: _whose_pseudonyms(home, recipient.name, full, metadata))
            table = held.rows
            disclosure = control.as_dict() | held.continuity.as_dict()
        if recipient.pseudonymise:
            disclosure = (disclosure or {}) | {"pseudonyms": recipient.pseudonyms}
            keys = _pseudonyms(home, recipient.name, recipient.pseudonyms, anchor, table.column("_person_id").to_pylist())
            table = table.add_column(3, "person_key", pa.array(keys, pa.string()))
            # In pseudonym order, never person_id order: two recipients' copies (or a department's
            # person_ids) must not line up row by row.
            table = table.sort_by("person_key")
        ids, person_ids = table.column("_id_number"), table.column("_person_id")
        if lapsed is not None and lapsed.num_rows:
            # The renewal list delivers their names and addresses: the audit records this product as holding them.
            ids = pa.chunked_array([*ids.chunks, *lapsed.column("_id_number").chunks], ids.type)
            person_ids = pa.chunked_array([*person_ids.chunks, *lapsed.column("_person_id").chunks], person_ids.type)
        members = ids.filter(pc.fill_null(pc.not_equal(ids, ""), False))
        table = table.drop_columns([c for c in _HIDDEN if c in table.column_names])
    encryption_key = product_key(home, recipient.name)
    encryption_key_id = key_id(encryption_key)
    # What de-identification did travels in the file (its encrypted footer), for a recipient who reads it away from
    # the platform's warehouse: why a column is empty (silobreaker product read says so).
    metadata = {**(anchor.metadata() if anchor else {}),
                **({DISCLOSURE_METADATA: json.dumps(disclosure, ensure_ascii=False)} if disclosure else {})}
    write_encrypted(table, path, recipient.name, encryption_key, metadata or None)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if held is not None:
        held.keep(home, recipient.name, digest, delivered_hash)
    office = None
    if recipient.format != "parquet":
        # beside the product in its generation: DataHome.office_file once published
        office = OfficeFile(recipient.format, table, path.with_suffix(OFFICE_SUFFIXES[recipient.format]),
                            office_password(encryption_key),
                            _about(recipient, table, encryption_key_id, exclusions, renewals, anchor),
                            recipient.populations.labels,
                            extra={RENEWAL_SHEET: renewals} if renewals is not None else None,
                            kept=KeptDerivation(DataHome.at(home).kept_office_derivation_file(recipient.name),
                                                encryption_key, recipient.name))
    office_hash = None
    if office is not None and office_files is None:
        office_hash = office.write()
    elif office is not None:
        office_files.append(office)  # written by the caller, with write_office_files
    return ProductFile(
        recipient.name, path, tuple(table.column_names), table.num_rows, digest,
        purpose=recipient.purpose, legal_basis=recipient.legal_basis, legal_reference=recipient.legal_reference,
        members=members, exclusions=exclusions, disclosure=disclosure, person_ids=person_ids,
        key_id=encryption_key_id, anchor=anchor, office_hash=office_hash, policy_entry=recipient.family,
        area=recipient.area,
    )


def _renewals(listed: pa.Table, excluded: pa.Table, recipient: Recipient, as_of: date,
              delivered: LastDeliveries | None) -> tuple[pa.Table, pa.Table]:
    """The renewal list (待续同意) a consent-based recipient takes on the next visit, and the rows of the people it
    names who are not in the product.

    Names only where the basis allows: people still listed whose consent ends within :data:`RENEWAL_DAYS` (the
    recipient holds their data now), and people whose consent *to this recipient* ended within the last
    :data:`RENEWAL_DAYS` days and whom its latest product held under their person id and ID number (``delivered``,
    :class:`publish.audit.LastDeliveries`: it held their data until then), each with the name and address as the
    policy shows them. Nobody who refused, withdrew, asked to be deleted or never consented is named, nor anyone
    whose consent ended before this recipient had their data: they are counted in the 说明 only.
    """
    shown = [c for c in ("name", "address") if c in recipient.columns]
    soon = pc.less_equal(listed.column("_consent_until"), pa.scalar(as_of + timedelta(days=RENEWAL_DAYS)))
    ending = listed.filter(pc.fill_null(soon, False))
    recent = pc.and_(pc.equal(excluded.column("_reason"), "expired"),
                     pc.greater_equal(excluded.column("_consent_until"), pa.scalar(as_of - timedelta(days=RENEWAL_DAYS))))
    expired = excluded.filter(pc.fill_null(recent, False))
    held = (delivered.held(recipient.name, expired.column("_person_id").to_pylist(), expired.column("_id_number").to_pylist())
            if delivered is not None else np.zeros(expired.num_rows, dtype=bool))
    lapsed = expired.filter(pa.array(held, pa.bool_()))
    parts = []
    for part, status in ((lapsed, "同意已过期，未列入名单"), (ending, "同意即将到期")):
        parts.append(pa.table({
            **{c: part.column(c) for c in shown},
            "consent_until": part.column("_consent_until"),
            "renewal": pa.array([status] * part.num_rows, pa.string()),
        }))
    return pa.concat_tables(parts).sort_by([("consent_until", "ascending")]), lapsed


def _about(recipient: Recipient, table: pa.Table, key: str, exclusions: Mapping[str, int] | None = None,
           renewals: pa.Table | None = None, anchor: ProductAnchor | None = None) -> dict[str, str | int]:
    """The 说明 sheet of a delivered workbook: for whom, why, on what basis, when, and the audit entry that records
    the delivery (a clerk quotes it to the data team); who in scope is not listed and why (counts only), and the
    renewal list."""
    basis = {"consent": "本人同意", "statutory": "法定职责"}[recipient.legal_basis]
    if recipient.legal_reference:
        basis += f"（{recipient.legal_reference}）"
    now = datetime.now(CHINA_TZ)
    return {
        "接收方": f"{recipient.description}（接收方编号 {recipient.name}）",
        "用途": PURPOSE_LABELS.get(recipient.purpose, recipient.purpose),
        "法律依据": basis,
        "记录数": table.num_rows,
        "生成时间": now.strftime("%Y-%m-%d %H:%M（北京时间）"),
        "密钥编号": key,
        **({"审计记录号": f"{anchor.seq}（就本文件联系数据团队时请提供）"} if anchor else {}),
        **({"未列入人数": "；".join(f"{EXCLUSION_LABELS.get(why, why)}{n}人" for why, n in sorted(
            exclusions.items(), key=lambda kv: -kv[1]))} if exclusions else {}),
        **({"待续同意": f"{renewals.num_rows}人，见“{RENEWAL_SHEET}”表：同意已过期或{RENEWAL_DAYS}天内到期，"
                        "请在下次走访时请本人续签"} if renewals is not None and renewals.num_rows else {}),
        "注意": "本表含个人信息，仅限上述用途使用，不得转发、复制给他人；用毕请删除。",
        **{f"列：{FIELD_LABELS.get(column, column)}": MASKED_NOTE if column in recipient.mask else FIELD_NOTES[column]
           for column in table.column_names if column in FIELD_NOTES or column in recipient.mask},
    }

