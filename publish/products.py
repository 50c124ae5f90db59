"""Per-recipient data products: exactly the rows and columns the sharing policy allows.

A product is a parquet file built from ``unified_population`` by SQL assembled from the policy's
structured fields (never from SQL text in configuration). Consent-based recipients get only people
whose latest decision for the purpose, addressed to them or to everyone (``*``), is ``granted``;
statutory recipients get everyone in scope. Pseudonymised products replace ``person_id`` by an
HMAC-SHA256 keyed per recipient, so two recipients cannot join their copies.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import duckdb

from core.errors import ConfigError
from publish.policy import Recipient

__all__ = ["ProductFile", "build_product", "product_query_sql", "pseudonym_key"]

_MASKS = {
    "id_number": "CASE WHEN id_number IS NULL THEN NULL ELSE substr(id_number, 1, 6) || '********' || substr(id_number, 15, 4) END",
    "phone": "CASE WHEN phone IS NULL THEN NULL ELSE substr(phone, 1, 3) || repeat('*', greatest(length(phone) - 7, 0)) || substr(phone, -4) END",
    "name": "CASE WHEN name IS NULL THEN NULL ELSE substr(name, 1, 1) || repeat('*', length(name) - 1) END",
}


@dataclass(frozen=True)
class ProductFile:
    """One written product: where it is and what went into it (for the publication log)."""

    recipient: str
    path: Path
    columns: tuple[str, ...]
    row_count: int
    content_hash: str


def product_query_sql(recipient: Recipient) -> tuple[str, list[object]]:
    """The SELECT for ``recipient``'s product and its parameters."""
    selected = []
    for column in recipient.columns:
        if column == "person_id" and recipient.pseudonymise:
            continue
        expr = _MASKS[column] if column in recipient.mask else column
        selected.append(f"{expr} AS {column}")
    if recipient.pseudonymise:
        selected.insert(0, "person_id AS _person_id")
    where, params = ["TRUE"], []
    for field, value in recipient.scope.items():
        where.append(f"{field} = ?")
        params.append(value)
    if recipient.population:
        where.append("(" + " OR ".join(f"coalesce({flag}, false)" for flag in recipient.population) + ")")
    if recipient.legal_basis == "consent":
        where.append(
            "(SELECT arg_max(c.status, c.decided_at) FROM person_consent c "
            "WHERE c.person_id = u.person_id AND c.purpose = ? AND c.recipient IN (?, '*')) = 'granted'"
        )
        params += [recipient.purpose, recipient.registry_recipient]
    sql = f"SELECT {', '.join(selected)} FROM unified_population u WHERE {' AND '.join(where)} ORDER BY u.person_id"
    return sql, params


def pseudonym_key(home: Path, recipient: str) -> bytes:
    """The recipient's pseudonymisation key.

    Taken from ``$SILOBREAKER_PSEUDONYM_KEY_<RECIPIENT>`` (hex) when set, else from
    ``<home>/keys/<recipient>.key``, created with 32 random bytes (mode 600) on first use.
    """
    env_name = f"SILOBREAKER_PSEUDONYM_KEY_{recipient.upper()}"
    if os.environ.get(env_name):
        try:
            return bytes.fromhex(os.environ[env_name])
        except ValueError as e:
            raise ConfigError(f"${env_name} must be a hex string (e.g. from `openssl rand -hex 32`)") from e
    path = home / "keys" / f"{recipient}.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    return path.read_bytes()


def build_product(con: duckdb.DuckDBPyConnection, recipient: Recipient, out_dir: Path, home: Path) -> ProductFile:
    """Write ``recipient``'s product as ``out_dir/<name>.parquet`` from the tables in ``con``."""
    sql, params = product_query_sql(recipient)
    frame = con.execute(sql, params).df()
    if recipient.pseudonymise:
        key = pseudonym_key(home, recipient.name)
        # One HMAC per person in the product: linear, and keyed so the pseudonym cannot be
        # recomputed without the recipient's key.
        frame.insert(
            0,
            "person_key",
            [hmac.new(key, pid.encode(), hashlib.sha256).hexdigest()[:24] for pid in frame.pop("_person_id")],
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{recipient.name}.parquet"
    con.register("_product", frame)
    try:
        con.execute(f"COPY _product TO '{path}' (FORMAT parquet)")
    finally:
        con.unregister("_product")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return ProductFile(recipient.name, path, tuple(frame.columns), len(frame), digest)
