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

from core.errors import TerminalError
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
        entries = self.prepare(run_id, published_at, products)
        self.write(entries)
        return entries

    def prepare(self, run_id: str, published_at: datetime, products: Iterable) -> list[dict]:
        """The entries a publication will append, chained to the log as it stands, with their
        membership files written; :meth:`write` appends them. Split so a publication can journal its
        entries before it commits and append them after (``publish.generations``)."""
        self.members_dir.mkdir(parents=True, exist_ok=True)
        key = self._key()
        last = self._last_entry()
        seq = last["seq"] + 1 if last else 1
        prev = last["hash"] if last else GENESIS
        entries = []
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
            entries.append(entry)
            prev, seq = entry["hash"], seq + 1
        return entries

    def repeat(self, original_run_id: str, run_id: str, published_at: datetime) -> list[dict]:
        """Entries recording that the products of ``original_run_id`` are published again (a restore):
        the same recipients, columns, content and membership, under ``run_id`` and ``published_at``;
        their membership files are copied. :meth:`write` appends them."""
        originals = [e for e in self.entries() if e["run_id"] == original_run_id]
        last = self._last_entry()
        seq = last["seq"] + 1 if last else 1
        prev = last["hash"] if last else GENESIS
        entries = []
        for original in originals:
            members = self.home.audit_members_file(original["seq"])
            self.home.audit_members_file(seq).write_bytes(members.read_bytes() if members.exists() else b"")
            entry = {**{k: original.get(k) for k in _HASHED_FIELDS}, "seq": seq, "run_id": run_id,
                     "published_at": published_at.isoformat(), "prev_hash": prev}
            entry["hash"] = _entry_hash(entry)
            entries.append(entry)
            prev, seq = entry["hash"], seq + 1
        return entries

    def write(self, entries: list[dict]) -> int:
        """Append the prepared ``entries`` that the log does not hold yet; return how many were appended.

        Idempotent: entries already appended (same sequence number and hash) are skipped, so a
        publication interrupted after some of its entries can be completed from its journal.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with open(self.path, "a+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            present = {}
            for line in f:
                if line.strip():
                    entry = json.loads(line)
                    present[entry["seq"]] = entry["hash"]
            for entry in entries:
                if present.get(entry["seq"]) == entry["hash"]:
                    continue
                if entry["seq"] in present:
                    raise TerminalError(f"audit log {self.path}: sequence {entry['seq']} is taken by another entry; "
                                     "run `silobreaker audit verify`")
                f.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
                written += 1
            f.flush()
            os.fsync(f.fileno())
        return written

    def _last_entry(self) -> dict | None:
        if not self.path.exists():
            return None
        last = None
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    last = line
        return json.loads(last) if last else None

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
