"""The audit log: an append-only, hash-chained record of every publication, kept outside the warehouse.

``<home>/audit/publication_log.jsonl`` (see :class:`core.home.DataHome`) has one JSON object per
published product. Each entry's ``hash`` is the SHA-256 of the entry's other fields, ``prev_hash``
(the previous entry's hash; 64 zeros for the first) included, so editing, removing or reordering
any entry breaks the chain from there on. The warehouse is replaced atomically at every run; this file is only ever appended to,
so the chain survives.

Who was in each product is kept as keyed hashes, never raw ID numbers:
``<home>/audit/members/<seq>.txt`` lists HMAC-SHA256(audit key, resident ID number) of everyone in
the product, and the entry carries that file's SHA-256. The audit key comes from
``$SILOBREAKER_AUDIT_KEY`` (hex) or ``<home>/keys/audit.key`` (created on first use, mode 600).
That answers a citizen's question — which recipients received my data, when, for what purpose, on
what basis (X-Road's Data Tracker) — without the log itself being a list of ID numbers.

Example:
    >>> log = AuditLog(home)
    >>> log.verify().ok
    True
    >>> [e["recipient"] for e in log.person("330106195001010012")]
    ['civil_affairs_assistance']
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from core.home import DataHome, HomeLike
from core.keys import load_or_create_key

__all__ = ["GENESIS", "AuditLog", "Verification"]

GENESIS = "0" * 64
_HASHED_FIELDS = (
    "seq", "run_id", "published_at", "recipient", "purpose", "legal_basis", "legal_reference", "columns",
    "row_count", "content_hash", "exclusions", "members_count", "members_sha256", "prev_hash",
)


@dataclass(frozen=True)
class Verification:
    """The result of checking the chain: ``ok``, how many entries, and the first broken one."""

    ok: bool
    entries: int
    broken_seq: int | None = None
    broken_line: int | None = None
    reason: str = ""


def _entry_hash(entry: dict) -> str:
    body = {k: entry.get(k) for k in _HASHED_FIELDS}
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class AuditLog:
    """The hash-chained publication log of one data home."""

    def __init__(self, home: HomeLike) -> None:
        self.home = DataHome.at(home)
        self.path = self.home.audit_log_file
        self.members_dir = self.home.audit_members_dir

    # -- keys -----------------------------------------------------------------------------

    def _key(self) -> bytes:
        return load_or_create_key(self.home.audit_key_file, "SILOBREAKER_AUDIT_KEY")

    def member_hash(self, id_number: str) -> str:
        """The keyed hash under which a resident ID number is recorded in membership files."""
        return hmac.new(self._key(), id_number.strip().upper().encode(), hashlib.sha256).hexdigest()

    # -- writing --------------------------------------------------------------------------

    def append(self, run_id: str, published_at: datetime, products: Iterable) -> list[dict]:
        """Append one entry per published product (``publish.products.ProductFile``) and return them."""
        self.members_dir.mkdir(parents=True, exist_ok=True)
        key = self._key()
        written = []
        with open(self.path, "a+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            last = None
            for line in f:
                if line.strip():
                    last = json.loads(line)
            seq = last["seq"] + 1 if last else 1
            prev = last["hash"] if last else GENESIS
            for product in products:
                members = sorted({hmac.new(key, m.upper().encode(), hashlib.sha256).hexdigest() for m in product.members})
                members_text = "".join(f"{m}\n" for m in members)
                self.home.audit_members_file(seq).write_text(members_text, encoding="ascii")
                entry = {
                    "seq": seq, "run_id": run_id, "published_at": published_at.isoformat(),
                    "recipient": product.recipient, "purpose": product.purpose, "legal_basis": product.legal_basis,
                    "legal_reference": product.legal_reference, "columns": list(product.columns),
                    "row_count": product.row_count, "content_hash": product.content_hash,
                    "exclusions": dict(sorted(product.exclusions.items())), "members_count": len(members),
                    "members_sha256": hashlib.sha256(members_text.encode("ascii")).hexdigest(), "prev_hash": prev,
                }
                entry["hash"] = _entry_hash(entry)
                f.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
                written.append(entry)
                prev, seq = entry["hash"], seq + 1
            f.flush()
            os.fsync(f.fileno())
        return written

    # -- reading --------------------------------------------------------------------------

    def entries(self) -> list[dict]:
        """Every entry, in order (no verification)."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def verify(self) -> Verification:
        """Walk the chain; report the first entry whose hash, link, sequence or membership file is wrong."""
        if not self.path.exists():
            return Verification(True, 0)
        prev, expected_seq, count = GENESIS, 1, 0
        for line_number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                return Verification(False, count, None, line_number, "not valid JSON")
            seq = entry.get("seq")
            if seq != expected_seq:
                return Verification(False, count, seq, line_number, f"sequence {seq} where {expected_seq} was expected")
            if entry.get("prev_hash") != prev:
                return Verification(False, count, seq, line_number, "prev_hash does not match the previous entry's hash")
            if entry.get("hash") != _entry_hash(entry):
                return Verification(False, count, seq, line_number, "hash does not match the entry's contents")
            members = self.home.audit_members_file(seq)
            if not members.exists() or hashlib.sha256(members.read_bytes()).hexdigest() != entry["members_sha256"]:
                return Verification(False, count, seq, line_number, f"membership file {members} is missing or altered")
            prev, expected_seq, count = entry["hash"], expected_seq + 1, count + 1
        return Verification(True, count)

    def person(self, id_number: str) -> list[dict]:
        """Entries of the products that held the person with this resident ID number, oldest first."""
        wanted = self.member_hash(id_number)
        found = []
        for entry in self.entries():
            members = self.home.audit_members_file(entry["seq"])
            if members.exists() and wanted in members.read_text(encoding="ascii").split():
                found.append(entry)
        return found
