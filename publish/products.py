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
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from core.home import OFFICE_SUFFIXES, DataHome, HomeLike
from core.keys import key_id, load_or_create_key
from core.vocabulary import MASKS, PURPOSE_LABELS
from publish.anonymity import anonymise
from publish.audit import ProductAnchor
from publish.consent import protective_rank_sql
from publish.crypto import product_key, write_encrypted
from publish.office import office_password, write_csv_zip, write_xlsx
from publish.policy import (
    CONSENT_CATEGORIES,
    MINOR_AGE,
    SENSITIVE_COLUMNS,
    Recipient,
)
from publish.statistics import statistics_table
from staging.dates import CHINA_TZ

__all__ = ["ProductFile", "build_product", "product_query_sql", "pseudonym_key"]

_HIDDEN = ("_person_id", "_id_number", "_reason")


@dataclass(frozen=True)
class ProductFile:
    """One written product: where it is and what went into it (for the publication and audit logs).

    ``members`` holds the resident ID numbers of the people in the product and ``person_ids`` their
    person ids (people without an ID number too); the audit log stores only keyed hashes of them.
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
    members: tuple[str, ...] = field(default=(), repr=False)
    exclusions: dict[str, int] = field(default_factory=dict)
    disclosure: dict | None = None
    person_ids: tuple[str, ...] = field(default=(), repr=False)
    key_id: str | None = None
    anchor: ProductAnchor | None = None
    office_hash: str | None = None


def _consent_pivot_sql() -> str:
    # The latest decision per category for this purpose and recipient; of simultaneous ones the more
    # protective. A withdrawal or refusal for purpose '*' covers every purpose; a grant must name it.
    order = f"(decided_at, {protective_rank_sql('effective_status')})"
    picks = []
    for category in CONSENT_CATEGORIES:
        picks.append(f"arg_max(effective_status, {order}) FILTER (WHERE category = '{category}') AS _{category}")
        picks.append(f"arg_max(by_guardian, {order}) FILTER (WHERE category = '{category}') AS _{category}_guardian")
    return (
        f"SELECT person_id, {', '.join(picks)} FROM consent_effective "
        "WHERE (purpose = $purpose OR (purpose = '*' AND effective_status IN ('withdrawn', 'refused'))) "
        "AND recipient IN ($recipient, '*') GROUP BY person_id"
    )


def product_query_sql(recipient: Recipient) -> tuple[str, dict[str, object]]:
    """The SELECT for ``recipient``'s product and its named parameters.

    Besides the policy's columns it returns ``_person_id``, ``_id_number`` and ``_reason`` (null for
    people the recipient may have, else why they are left out); :func:`build_product` drops them.
    """
    consent = recipient.legal_basis == "consent"
    params: dict[str, object] = (
        {"purpose": recipient.purpose, "recipient": recipient.registry_recipient} if consent else {}
    )
    where = ["TRUE"]
    for i, (scope_field, value) in enumerate(recipient.scope.items()):
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
    sql = f"""
SELECT u.person_id AS _person_id, u.id_number AS _id_number, {reason} AS _reason, {', '.join(selected)}
FROM unified_population u
LEFT JOIN deletion_requests d ON d.person_id = u.person_id
LEFT JOIN (SELECT DISTINCT person_id FROM consent_problems) p ON p.person_id = u.person_id
{consent_join}
WHERE {' AND '.join(where)}
ORDER BY u.person_id"""
    return sql, params


def pseudonym_key(home: HomeLike, recipient: str) -> bytes:
    """The recipient's pseudonymisation key: ``$SILOBREAKER_PSEUDONYM_KEY_<RECIPIENT>`` (hex) or its
    key file under the data home (created on first use, see :mod:`core.keys`)."""
    path = DataHome.at(home).pseudonym_key_file(recipient)
    return load_or_create_key(path, f"SILOBREAKER_PSEUDONYM_KEY_{recipient.upper()}")


def _log_exclusions(con: duckdb.DuckDBPyConnection, recipient: str, person_ids: list[str], reasons: list[str]) -> None:
    con.execute(
        "CREATE TABLE IF NOT EXISTS consent_exclusions (recipient VARCHAR, person_id VARCHAR, reason VARCHAR)"
    )
    if person_ids:
        con.execute(
            "INSERT INTO consent_exclusions SELECT $r, unnest($p), unnest($why)",
            {"r": recipient, "p": person_ids, "why": reasons},
        )


def build_product(con: duckdb.DuckDBPyConnection, recipient: Recipient, path: Path, home: HomeLike,
                  anchor: ProductAnchor | None = None) -> ProductFile:
    """Write ``recipient``'s encrypted product to ``path`` from the tables in ``con``.

    ``con`` must hold ``unified_population``, ``consent_effective`` and ``deletion_requests``;
    ``home`` holds the recipient's keys; ``anchor`` (the audit entry the product will get) is written
    into the product's metadata.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    members: list[str] = []
    person_ids: list[str] = []
    exclusions: dict[str, int] = {}
    disclosure: dict | None = None
    if recipient.aggregate is not None:
        table = statistics_table(con, recipient.aggregate, pseudonym_key(home, recipient.name))
    else:
        sql, params = product_query_sql(recipient)
        full = con.sql(sql, params=params).to_arrow_table()
        reasons = full.column("_reason")
        excluded = full.filter(pc.is_valid(reasons))
        _log_exclusions(con, recipient.name, excluded.column("_person_id").to_pylist(), excluded.column("_reason").to_pylist())
        exclusions = dict(Counter(excluded.column("_reason").to_pylist()))
        table = full.filter(pc.is_null(reasons))
        if recipient.pseudonymise:
            key = pseudonym_key(home, recipient.name)
            # One HMAC per person in the product: linear, and keyed so the pseudonym cannot be
            # recomputed (or matched with another recipient's) without this recipient's key.
            keys = [hmac.new(key, pid.encode(), hashlib.sha256).hexdigest()[:24]
                    for pid in table.column("_person_id").to_pylist()]
            table = table.add_column(3, "person_key", pa.array(keys, pa.string()))
            # In pseudonym order, never person_id order: two recipients' copies (or a department's
            # person_ids) must not line up row by row.
            table = table.sort_by("person_key")
        if recipient.k_anonymity is not None:
            # The hidden columns ride along, so membership below counts only the rows kept.
            table, control = anonymise(table, recipient.k_anonymity, recipient.shared_key_populations,
                                       recipient.populations.derived_from_age)
            disclosure = control.as_dict()
            if control.rows_left_out:
                exclusions["not_anonymous"] = control.rows_left_out
        members = [m for m in table.column("_id_number").to_pylist() if m]
        person_ids = table.column("_person_id").to_pylist()
        table = table.drop_columns(list(_HIDDEN))
    encryption_key = product_key(home, recipient.name)
    encryption_key_id = key_id(encryption_key)
    write_encrypted(table, path, recipient.name, encryption_key, anchor.metadata() if anchor else None)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    office_hash = None
    if recipient.format != "parquet":
        # beside the product in its generation: DataHome.office_file once published
        office = path.with_suffix(OFFICE_SUFFIXES[recipient.format])
        write = write_xlsx if recipient.format == "xlsx" else write_csv_zip
        write(table, office, office_password(encryption_key), _about(recipient, table, encryption_key_id),
              recipient.populations.labels)
        office_hash = hashlib.sha256(office.read_bytes()).hexdigest()
    return ProductFile(
        recipient.name, path, tuple(table.column_names), table.num_rows, digest,
        purpose=recipient.purpose, legal_basis=recipient.legal_basis, legal_reference=recipient.legal_reference,
        members=tuple(members), exclusions=exclusions, disclosure=disclosure, person_ids=tuple(person_ids),
        key_id=encryption_key_id, anchor=anchor, office_hash=office_hash,
    )


def _about(recipient: Recipient, table: pa.Table, key: str) -> dict[str, str]:
    """The 说明 sheet of a delivered workbook: for whom, why, on what basis, when."""
    basis = {"consent": "本人同意", "statutory": "法定职责"}[recipient.legal_basis]
    if recipient.legal_reference:
        basis += f"（{recipient.legal_reference}）"
    now = datetime.now(CHINA_TZ)
    return {
        "接收方": f"{recipient.name}：{recipient.description}",
        "用途": PURPOSE_LABELS.get(recipient.purpose, recipient.purpose),
        "法律依据": basis,
        "记录数": str(table.num_rows),
        "生成时间": now.strftime("%Y-%m-%d %H:%M（北京时间）"),
        "密钥编号": key,
        "注意": "本表含个人信息，仅限上述用途使用，不得转发、复制给他人；用毕请删除。",
    }

