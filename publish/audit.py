"""The audit log: an append-only, hash-chained, signed record of every publication, kept outside the warehouse.

``<home>/audit/publication_log.jsonl`` (see :class:`core.home.DataHome`) has one JSON object per
published product. Each entry's ``hash`` is the SHA-256 of every other field of the entry but its
``signature`` (canonical JSON: sorted keys, no spaces, UTF-8), ``prev_hash`` (the previous entry's
hash; 64 zeros for the first) included, so editing, removing or reordering any entry breaks the
chain from there on. The warehouse is replaced atomically at every run; this file is only ever
appended to, so the chain survives.

Each entry is signed: ``signature`` is the Ed25519 signature of the 64 ASCII characters of its
``hash``, ``signed_by`` the SHA-256 of the raw 32-byte public key (the key's fingerprint). The
private key is the platform's (``$SILOBREAKER_AUDIT_SIGNING_KEY`` or ``<home>/keys/audit_signing.key``,
a 32-byte seed created on first use, checked like every key by :mod:`core.keys`); the public key
is written beside the log (``<home>/audit/audit_signing.pub``, PEM), so anyone holding it can check
the log without any other secret. Someone who recomputes the hashes after an edit cannot recompute
the signatures. Entries written before entries were signed may only precede the first signed one.

The log also says where it should end: every entry carries ``head_seq``, the sequence number of the
last entry of its publication, so a log cut inside a publication names the entries it lacks. A log
cut at a publication's end, emptied, or rewritten with the signing key is detected outside it: the
head is anchored in the warehouse and in each product (:mod:`publish.anchors`). A product cannot
record the hash of its own entry (that entry records the product's hash); it records
(:class:`ProductAnchor`) the sequence number its entry will have and the head the log had before its
publication.

Who was in each product is kept as keyed hashes, never raw identifiers:
``<home>/audit/members/<seq>.txt`` lists HMAC-SHA256(audit key, resident ID number) and
HMAC-SHA256(audit key, ``person_id:`` + person id) of everyone in the product — whole, or as the change
from the same recipient's last membership (:mod:`publish.membership`) — and the entry carries the SHA-256
of the whole membership. The audit key comes from ``$SILOBREAKER_AUDIT_KEY`` (hex) or
``<home>/keys/audit.key`` (created on first use, mode 600). That answers a citizen's question —
which recipients received my data, when, for what purpose, on what basis (X-Road's Data Tracker) —
for people with or without an ID number, without the log itself being a list of identifiers.

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
import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from core.errors import ConfigError, TerminalError
from core.home import DataHome, HomeLike
from core.keys import keyed_digests, load_key, load_or_create_key
from publish.membership import (
    WHOLE_EVERY,
    Membership,
    MembershipError,
    Memberships,
    held_in,
    lines_of,
    write_membership,
)

__all__ = [
    "EXPORT_FORMAT",
    "GENESIS",
    "SIGNING_KEY_ENV",
    "AuditLog",
    "Head",
    "LastDeliveries",
    "ProductAnchor",
    "Verification",
    "fingerprint",
]

log = logging.getLogger(__name__)

GENESIS = "0" * 64
SIGNING_KEY_ENV = "SILOBREAKER_AUDIT_SIGNING_KEY"
"""Environment variable that may hold the audit signing key (64 hex characters: the Ed25519 seed)."""
EXPORT_FORMAT = "silobreaker-audit-export/1"

_UNHASHED = ("hash", "signature")
# What an entry says about its product; a restore repeats these for the products it publishes again.
_PRODUCT_FIELDS = (
    "recipient", "purpose", "legal_basis", "legal_reference", "columns", "row_count", "content_hash",
    "exclusions", "members_count", "members_sha256", "key_id",
)
_OPTIONAL_PRODUCT_FIELDS = ("office_sha256", "generalisation")
#: What an analyst row product's entry records of its generalisation (``publish.anonymity.Disclosure``): the levels
#: the next release may not undercut (kept in the log, which is only appended to, not in a warehouse a restore or a
#: damaged file takes back to an earlier release).
_GENERALISATION_FIELDS = ("quasi_identifiers", "age_band", "area", "sex_shown")
_PERSON_ID_DOMAIN = b"person_id:"
#: The fix for a log changed by hand or damaged.
_PUT_BACK = ("run `silobreaker audit verify` (and `--against` your last `audit export`) and put back the log from "
             "that export")


@dataclass(frozen=True)
class Head:
    """The log's last entry: its sequence number and hash (``0`` and :data:`GENESIS` for an empty log)."""

    seq: int
    hash: str


@dataclass(frozen=True)
class ProductAnchor:
    """Where a product stands in the log, recorded in its parquet key-value metadata when it is built.

    Attributes:
        seq: the sequence number of the product's own entry.
        prev: the log's head before the product's publication (every entry up to it is fixed by then).
    """

    seq: int
    prev: Head

    SEQ = "silobreaker.audit_seq"
    PREV_SEQ = "silobreaker.audit_prev_seq"
    PREV_HASH = "silobreaker.audit_prev_hash"

    def metadata(self) -> dict[str, str]:
        """The key-value metadata written into the product."""
        return {self.SEQ: str(self.seq), self.PREV_SEQ: str(self.prev.seq), self.PREV_HASH: self.prev.hash}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> ProductAnchor | None:
        """The anchor a product's metadata records; ``None`` for a product built before anchors."""
        if cls.SEQ not in metadata:
            return None
        return cls(int(metadata[cls.SEQ]), Head(int(metadata[cls.PREV_SEQ]), metadata[cls.PREV_HASH]))


@dataclass(frozen=True)
class Verification:
    """The result of checking the log alone: ``ok``, how many entries (``signed`` of them signed, by the key
    with ``fingerprint``), and the first broken one with the reason."""

    ok: bool
    entries: int
    broken_seq: int | None = None
    broken_line: int | None = None
    reason: str = ""
    signed: int = 0
    fingerprint: str | None = None


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """SHA-256 (hex) of the raw 32-byte public key: what ``signed_by`` records."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def _entry_hash(entry: Mapping) -> str:
    body = {k: v for k, v in entry.items() if k not in _UNHASHED}
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


class AuditLog:
    """The signed, hash-chained publication log of one data home."""

    def __init__(self, home: HomeLike) -> None:
        self.home = DataHome.at(home)
        self.path = self.home.audit_log_file
        self.members_dir = self.home.audit_members_dir

    # -- keys -----------------------------------------------------------------------------

    def _key(self) -> bytes:
        return load_or_create_key(self.home.audit_key_file, "SILOBREAKER_AUDIT_KEY")

    def member_hash(self, id_number: str) -> str:
        """The keyed hash under which a resident ID number is recorded in membership files."""
        return _id_number_hash(self._key(), id_number)

    def person_id_hash(self, person_id: str) -> str:
        """The keyed hash under which a person id is recorded in membership files."""
        return _person_id_hash(self._key(), person_id)

    def _signing_key(self) -> Ed25519PrivateKey:
        """The platform's signing key; its public key is written beside the log the first time.

        Raises:
            TerminalError: the public key beside the log is another key's (the signing key was replaced,
                or the public key file was).
        """
        private = Ed25519PrivateKey.from_private_bytes(
            load_or_create_key(self.home.audit_signing_key_file, SIGNING_KEY_ENV))
        pem = _pem(private.public_key())
        published = self.home.audit_public_key_file
        if not published.exists():
            published.parent.mkdir(parents=True, exist_ok=True)
            staging = published.with_name(f".{published.name}.new")
            staging.write_bytes(pem)
            os.replace(staging, published)
        elif published.read_bytes() != pem:
            raise TerminalError(
                f"the audit signing key ({self.home.audit_signing_key_file} or ${SIGNING_KEY_ENV}) is not the key "
                f"whose public half is {published}: entries signed now would not verify with the key the log was "
                "signed with. Restore the signing key from the backup of the platform's keys; nothing was published")
        return private

    def verifying_key(self) -> tuple[Ed25519PublicKey | None, str]:
        """The key signatures are checked with, and where it comes from: the platform's signing key when
        this machine holds it (the public key file beside the log could have been replaced with it), else
        the public key file; ``(None, "")`` when there is neither."""
        seed = load_key(self.home.audit_signing_key_file, SIGNING_KEY_ENV)
        if seed is not None:
            return Ed25519PrivateKey.from_private_bytes(seed).public_key(), "the platform's signing key"
        published = self.home.audit_public_key_file
        if published.exists():
            try:
                key = serialization.load_pem_public_key(published.read_bytes())
            except ValueError as e:
                raise ConfigError(f"{published} is not a PEM public key; copy it again from an export") from e
            if not isinstance(key, Ed25519PublicKey):
                raise ConfigError(f"{published} is not an Ed25519 public key; copy it again from an export")
            return key, str(published)
        return None, ""

    # -- writing --------------------------------------------------------------------------

    def head(self) -> Head:
        """The log's last entry (``Head(0, GENESIS)`` for an empty log)."""
        last = self._last_entry()
        return Head(last["seq"], last["hash"]) if last else Head(0, GENESIS)

    def refuse_if_cut(self, refused: str) -> None:
        """Fail closed when this log no longer holds the published warehouse's last entry: appended to, the new
        entries would take the missing numbers again (or begin a new chain), and the cut would pass unseen.
        ``refused`` says what is therefore not done. Entries waiting in the publication journal (appended by a
        run's recovery) excuse the log being behind.

        Raises:
            TerminalError: the log ends before that entry, or holds another in its place at its end.
        """
        from publish.reader import WarehouseReader  # (the reader reads generations, which append to this log)

        anchors = WarehouseReader(self.home).audit_anchors()
        if not anchors or self.home.publication_journal.exists():
            return
        last, head = anchors[-1], self.head()
        if head.seq > last.seq or (head.seq == last.seq and head.hash == last.hash):
            return
        what = (f"the audit log ends at entry {head.seq}, and the published warehouse records entry {last.seq} "
                f"({last.recipient}, run {last.run_id})" if head.seq < last.seq else
                f"the audit log's entry {head.seq} is not the one the published warehouse records "
                f"({last.recipient}, run {last.run_id})")
        raise TerminalError(f"{what}: the log at {self.path} was cut or rewritten, so {refused}. Put the log back from "
                            "a backup and try again; `silobreaker audit verify` names what disagrees")

    def prepare(self, run_id: str, published_at: datetime, products: Iterable,
                delivered: LastDeliveries | None = None) -> list[dict]:
        """The signed entries a publication will append, chained to the log as it stands, with their
        membership files written; :meth:`write` appends them. Split so a publication can anchor its
        entries in its warehouse and journal them before it commits, and append them after
        (``publish.warehouse``, ``publish.generations``).

        ``delivered``: each recipient's latest entry, as read for the publication's renewal lists; the log is read
        again without it (the products' anchors prove it has not moved since).

        Raises:
            TerminalError: a product was built for another place in the log than the one it gets (the
                log moved while the publication was built); or the signing key is not the log's.
        """
        products = list(products)
        self.members_dir.mkdir(parents=True, exist_ok=True)
        key, signer = self._key(), self._signing_key()
        head = self.head()
        entries = []
        # each recipient's latest entry, a membership's base
        last = delivered.latest if delivered is not None else {e["recipient"]: e for e in self.entries()}
        memberships = Memberships(self.home)
        for product, (members, persons) in zip(products, _memberships(key, products), strict=True):
            seq = head.seq + 1 + len(entries)
            if product.anchor is not None and product.anchor != ProductAnchor(seq, head):
                raise TerminalError(
                    f"the product of {product.recipient} was built as audit entry {product.anchor.seq} after entry "
                    f"{product.anchor.prev.seq}, but the log's head is now entry {head.seq}: the log changed while "
                    f"run {run_id} was built; run again")
            write_membership(self.home.audit_members_file(seq), members,
                             self._base(memberships, last.get(product.recipient)))
            entry = {
                "seq": seq, "run_id": run_id, "published_at": published_at.isoformat(),
                "recipient": product.recipient, "purpose": product.purpose, "legal_basis": product.legal_basis,
                "legal_reference": product.legal_reference, "columns": list(product.columns),
                "row_count": product.row_count, "content_hash": product.content_hash,
                "exclusions": dict(sorted(product.exclusions.items())),
                "members_count": persons,
                "members_sha256": hashlib.sha256(members.tobytes()).hexdigest(),
                "key_id": product.key_id, "head_seq": head.seq + len(products),
                "prev_hash": entries[-1]["hash"] if entries else head.hash,
            }
            if getattr(product, "office_hash", None):
                entry["office_sha256"] = product.office_hash  # the xlsx delivered beside it
            disclosure = getattr(product, "disclosure", None) or {}
            if "quasi_identifiers" in disclosure:
                entry["generalisation"] = {k: disclosure[k] for k in _GENERALISATION_FIELDS}
            entries.append(_signed(entry, signer))
        return entries

    def _base(self, memberships: Memberships, earlier: dict | None) -> tuple[int, Membership] | None:
        """The membership a new one of the same recipient is written as a change of (:mod:`publish.membership`):
        the recipient's latest entry's, if it reads back as that entry recorded it and fewer than
        :data:`WHOLE_EVERY` changes lie behind it; ``None``: write it whole."""
        if earlier is None or memberships.depth(earlier["seq"]) + 1 >= WHOLE_EVERY:
            return None
        members = _as_recorded(memberships, earlier, f"the next membership of {earlier['recipient']} is written whole")
        return None if members is None else (earlier["seq"], members)

    def repeat(self, original_run_id: str, run_id: str, published_at: datetime) -> list[dict]:
        """Signed entries recording that the products of ``original_run_id`` are published again (a
        restore): the same recipients, columns, content, key id and membership, under ``run_id`` and
        ``published_at``; their membership files name the originals'. :meth:`write` appends them."""
        originals = [e for e in self.entries() if e["run_id"] == original_run_id]
        signer = self._signing_key()
        head = self.head()
        entries = []
        for original in originals:
            seq = head.seq + 1 + len(entries)
            # The same membership: written as the original's, unchanged.
            self.home.audit_members_file(seq).write_text(f"@{original['seq']}\n", encoding="ascii")
            entry = {**{k: original.get(k) for k in _PRODUCT_FIELDS},
                     **{k: original[k] for k in _OPTIONAL_PRODUCT_FIELDS if k in original}, "seq": seq, "run_id": run_id,
                     "published_at": published_at.isoformat(), "head_seq": head.seq + len(originals),
                     "prev_hash": entries[-1]["hash"] if entries else head.hash}
            entries.append(_signed(entry, signer))
        return entries

    def write(self, entries: list[dict]) -> int:
        """Append the prepared ``entries`` that the log does not hold yet; return how many were appended.

        Idempotent: entries already appended (same sequence number and hash) are skipped, so a
        publication interrupted after some of its entries can be completed from its journal.

        Raises:
            TerminalError: an entry's place in the log is taken by another entry, or it does not follow
                the log's last entry.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with open(self.path, "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            text = f.read()
            whole = text[: text.rfind(b"\n") + 1]
            present, last = {}, GENESIS
            for line in whole.splitlines():
                if line.strip():
                    entry = json.loads(line)
                    present[entry["seq"]], last = entry["hash"], entry["hash"]
            lines = [(entry, (json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n").encode())
                     for entry in entries if present.get(entry["seq"]) != entry["hash"]]
            if len(whole) < len(text):
                self._cut_torn_line(f, whole, text[len(whole):], lines[0][1] if lines else b"")
            for entry, line in lines:
                if entry["seq"] in present or entry["prev_hash"] != last:
                    raise TerminalError(f"audit log {self.path}: entry {entry['seq']} does not follow the log's last "
                                        "entry (its place is taken, or entries are missing before it); run "
                                        "`silobreaker audit verify`")
                f.write(line)
                last = entry["hash"]
                written += 1
            f.flush()
            os.fsync(f.fileno())
        return written

    def require_appendable(self) -> None:
        """Raise unless entries can be appended: the last line is an entry and the log ends with a whole line. A run
        checks it before it reads anything (after the journal of an interrupted one is finished).

        Raises:
            TerminalError: naming the line and how to put the log back.
        """
        self.head()  # names a last line that is not an entry
        if not self.ends_whole():
            raise TerminalError(f"audit log {self.path}: its last line lacks its newline (changed by hand or damaged); "
                                f"{_PUT_BACK}")

    def ends_whole(self) -> bool:
        """Whether the log ends with a whole line (or is empty): entries can be appended after it. Checked before a
        publication switches, so a log whose end cannot be appended to does not leave one published unrecorded."""
        if not self.path.exists() or not self.path.stat().st_size:
            return True
        with open(self.path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"

    def _cut_torn_line(self, f: BinaryIO, whole: bytes, torn: bytes, first: bytes) -> None:
        """Take off the end of the log that a write cut short (a run killed while appending: the kernel stops the
        write at a page boundary), which is the start of ``first``, the line about to be appended in its place.
        Anything else at the end of the log is not a cut-off write of this publication, and is refused."""
        line = whole.count(b"\n") + 1
        if not first.startswith(torn):
            raise TerminalError(
                f"audit log {self.path}: its last line ({line}) is incomplete and is not the start of the entry this "
                f"publication appends, so it was not cut off by an interrupted run; the log was changed or damaged: "
                f"{_PUT_BACK}")
        f.truncate(len(whole))
        log.warning("audit log %s: line %d was cut off by an interrupted run (%d of its bytes written); written again "
                    "whole", self.path, line, len(torn))

    def discard(self, entries: list[dict]) -> None:
        """Remove the membership files of prepared ``entries`` that will not be appended (a publication
        that is not published); those the log holds are kept."""
        head = self.head().seq
        for entry in entries:
            if entry["seq"] > head:
                self.home.audit_members_file(entry["seq"]).unlink(missing_ok=True)

    def _last_entry(self) -> dict | None:
        if not self.path.exists():
            return None
        last, number = None, 0
        with open(self.path, encoding="utf-8") as f:
            for i, line in enumerate(f, start=1):
                if line.strip():
                    last, number = line, i
        return self._parsed(last, number) if last else None

    def _parsed(self, line: str, number: int) -> dict:
        try:
            return json.loads(line)
        except json.JSONDecodeError as e:
            raise TerminalError(
                f"audit log {self.path}: line {number} is not an entry ({e.msg}): the log was changed or damaged; "
                f"{_PUT_BACK}") from e

    # -- reading --------------------------------------------------------------------------

    def entries(self, strict: bool = True) -> list[dict]:
        """Every entry, in order (no verification); with ``strict=False`` lines that are not JSON objects are
        left out instead of failing (:meth:`verify` names them)."""
        if not self.path.exists():
            return []
        found = []
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                if strict:
                    self._parsed(line, number)  # raises, naming the line
                continue
            if isinstance(entry, dict) or strict:
                found.append(entry)
        return found

    def verify(self) -> Verification:
        """Check the log alone: sequence, chain, hashes, signatures, that every publication is whole, and
        the membership files; report the first entry where something is wrong."""
        public_key, source = self.verifying_key()
        expected = fingerprint(public_key) if public_key else None
        published = self.home.audit_public_key_file
        if public_key is not None and published.exists() and str(published) != source \
                and published.read_bytes() != _pem(public_key):
            return Verification(False, 0, None, None, f"the public key beside the log ({published}) is not the "
                                "platform's signing key: it was replaced", fingerprint=expected)
        prev, count, signed, open_publication = GENESIS, 0, 0, None
        lines = self.path.read_text(encoding="utf-8").splitlines() if self.path.exists() else []
        memberships = Memberships(self.home, Memberships.built_on(self.home, range(1, len(lines) + 1)))
        for line_number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                entry = None
            if not isinstance(entry, dict):
                return Verification(False, count, None, line_number, "not a JSON object", signed, expected)
            seq = entry.get("seq")
            problem = (_link_problem(entry, count + 1, prev)
                       or _signature_problem(entry, public_key, expected, signed)
                       or _publication_problem(entry, open_publication)
                       or _members_problem(entry, memberships))
            if problem:
                return Verification(False, count, seq, line_number, problem, signed, expected)
            signed += "signed_by" in entry
            head_seq = entry.get("head_seq")
            open_publication = entry if head_seq is not None and head_seq > seq else None
            prev, count = entry["hash"], count + 1
        if open_publication is not None:
            seq, end = open_publication["seq"], open_publication["head_seq"]
            return Verification(False, count, seq + 1, None,
                                f"the log ends at entry {seq}, but the publication of run {open_publication['run_id']} "
                                f"ends at entry {end}: {_missing(seq + 1, end)} missing (the log was cut)",
                                signed, expected)
        if count and not signed and public_key is not None:
            # The key exists because an entry was signed with it; a log with none signed was stripped.
            return Verification(False, count, None, None,
                                f"no entry is signed although the platform signs its entries ({source}): the "
                                "signatures were removed and the log rewritten", signed, expected)
        return Verification(True, count, signed=signed, fingerprint=expected)

    def person(self, id_number: str) -> list[dict]:
        """Entries of the products that held the person with this resident ID number, oldest first."""
        return self._holding({self.member_hash(id_number)})

    def person_by_ids(self, person_ids: Iterable[str]) -> list[dict]:
        """Entries of the products that held any of these person ids, oldest first (the ids a person has had:
        ``publish.reader.WarehouseReader.earlier_person_ids``). Products published before person ids were
        recorded in membership files are found by ID number only."""
        key = self._key()  # once, not per id
        return self._holding({_person_id_hash(key, p) for p in person_ids})

    def _holding(self, wanted: set[str]) -> list[dict]:
        entries = self.entries()
        holding, unread = Memberships(self.home).holding([e["seq"] for e in entries], wanted)
        if unread:
            shown = ", ".join(str(seq) for seq in sorted(unread)[:20]) + (" …" if len(unread) > 20 else "")
            log.warning("the membership of %d audit entries cannot be read (entries %s): whether those products held "
                        "this person is not known; `silobreaker audit verify` names the damaged file", len(unread), shown)
        return [e for e in entries if e["seq"] in holding]

    # -- export: the head handed to someone outside -----------------------------------------

    def export(self) -> dict:
        """The log as an outside notary can keep and timestamp it: its head, the public key and every entry
        (membership files only by their digest, ``members_sha256``). Only a log that verifies is exported.

        Raises:
            TerminalError: the log does not verify, or holds no signed entry.
        """
        check = self.verify()
        if not check.ok:
            raise TerminalError(f"the audit log does not verify (entry {check.broken_seq}: {check.reason}); "
                                "an export would vouch for a broken log: run `silobreaker audit verify`")
        public_key, _ = self.verifying_key()
        if public_key is None or not check.signed:
            raise TerminalError("the audit log holds no signed entry yet: export it after the next publication")
        head = self.head()
        return {
            "format": EXPORT_FORMAT, "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "head": {"seq": head.seq, "hash": head.hash}, "fingerprint": fingerprint(public_key),
            "public_key": _pem(public_key).decode("ascii"), "entries": self.entries(),
        }

    def compare_export(self, export: Mapping) -> list[str]:
        """What in the log disagrees with an earlier :meth:`export`: a head it no longer holds, an entry it
        rewrote, another signing key. Empty if the log still holds everything exported."""
        if export.get("format") != EXPORT_FORMAT:
            raise ConfigError(f"not an audit export (format {export.get('format')!r}, expected {EXPORT_FORMAT!r}); "
                              "write one with `silobreaker audit export`")
        by_seq = {e.get("seq"): e for e in self.entries(strict=False)}
        when = export.get("exported_at", "?")
        problems = []
        public_key, _ = self.verifying_key()
        if public_key is not None and fingerprint(public_key) != export.get("fingerprint"):
            problems.append(f"the log is checked with signing key {fingerprint(public_key)[:16]}…, the export of {when} "
                            f"with {str(export.get('fingerprint'))[:16]}…: the signing key was replaced")
        rewritten = next((e for e in export.get("entries", []) if e.get("seq") in by_seq
                          and by_seq[e["seq"]].get("hash") != e.get("hash")), None)
        if rewritten is not None:
            problems.append(f"entry {rewritten['seq']} differs from the export of {when} (its hash was "
                            f"{rewritten['hash'][:12]}…, it is {by_seq[rewritten['seq']]['hash'][:12]}…): the log was "
                            "rewritten after the export")
        head = export.get("head", {})
        held = by_seq.get(head.get("seq"))
        if head.get("seq") and held is None:
            last = max(by_seq, default=0)
            problems.append(f"the export of {when} ends at entry {head.get('seq')}; the log "
                            f"{f'ends at entry {last}' if last else 'is empty'}: entries were removed")
        elif held is not None and held.get("hash") != head.get("hash"):
            problems.append(f"the head exported on {when} (entry {head['seq']}, hash {head['hash'][:12]}…) is not in the "
                            f"log, whose entry {head['seq']} has hash {held['hash'][:12]}…: the log was rewritten")
        return problems


class LastDeliveries:
    """Whom each recipient's latest product held, as its audit entry's membership recorded them: a renewal list
    (:func:`publish.products.build_product`) names a person whose consent lapsed only if the recipient held their
    data until then. Read once per publication: the log's entries and the audit key."""

    def __init__(self, audit: AuditLog) -> None:
        self._key = audit._key()
        entries = audit.entries()
        self.latest: dict[str, dict] = {e["recipient"]: e for e in entries}  # each recipient's latest entry
        #: each recipient's newest product (``content_hash``) that no earlier entry had: after a restore, which puts an
        #: older one in front of it again, still the newest it has received (``publish.releases`` holds against it)
        self.newest: dict[str, str] = {}
        seen: set[tuple[str, str]] = set()
        for entry in entries:
            if (entry["recipient"], entry["content_hash"]) not in seen:
                seen.add((entry["recipient"], entry["content_hash"]))
                self.newest[entry["recipient"]] = entry["content_hash"]
        #: each recipient's generalisations, every release's (``publish.anonymity.anonymise``'s ``previous``)
        self.generalisations: dict[str, list[dict]] = {}
        for entry in entries:
            if "generalisation" in entry:
                self.generalisations.setdefault(entry["recipient"], []).append(entry["generalisation"])
        self._memberships = Memberships(audit.home)

    def held(self, recipient: str, person_ids: Sequence[str], id_numbers: Sequence[str | None]) -> np.ndarray:
        """Mask of the persons (``person_ids`` and their ``id_numbers``) that ``recipient``'s latest product held:
        under both their person id and their ID number, so a person id that passed to someone else since (a split)
        does not vouch for them, and a person without an ID number is not vouched for. None when the recipient has
        had no product, or when its membership cannot be read or does not read as its entry recorded it (logged:
        the renewal list then names nobody whose consent lapsed)."""
        entry = self.latest.get(recipient)
        members = None if entry is None or not len(person_ids) else _as_recorded(
            self._memberships, entry, f"the renewal list of {recipient} names nobody whose consent lapsed")
        if members is None:
            return np.zeros(len(person_ids), dtype=bool)
        numbered = np.array([bool(n and n.strip()) for n in id_numbers], dtype=bool)
        held = held_in(members, keyed_digests(self._key, map(_person_id_message, person_ids))) & numbered
        held[numbered] &= held_in(members, keyed_digests(
            self._key, (_id_number_message(n) for n, given in zip(id_numbers, numbered, strict=True) if given)))
        return held


def _as_recorded(memberships: Memberships, entry: dict, otherwise: str) -> Membership | None:
    """The membership of ``entry`` if it can be read and reads back as the entry recorded it (``members_sha256``);
    else ``None``, logged with what happens ``otherwise``."""
    try:
        members = memberships.of(entry["seq"])
    except MembershipError as e:
        log.warning("%s; %s", e, otherwise)
        return None
    if hashlib.sha256(members.tobytes()).hexdigest() != entry.get("members_sha256"):
        log.warning("the membership of entry %d does not read back as recorded (`silobreaker audit verify` names it); %s",
                    entry["seq"], otherwise)
        return None
    return members


def _id_number_message(id_number: str) -> bytes:
    return id_number.strip().upper().encode()


def _person_id_message(person_id: str) -> bytes:
    # Prefixed, so a person id can never be recorded under the same hash as an ID number.
    return _PERSON_ID_DOMAIN + person_id.strip().encode()


def _id_number_hash(key: bytes, id_number: str) -> str:
    return keyed_digests(key, [_id_number_message(id_number)])[0]


def _person_id_hash(key: bytes, person_id: str) -> str:
    return keyed_digests(key, [_person_id_message(person_id)])[0]


def _memberships(key: bytes, products: list) -> Iterator[tuple[Membership, int]]:
    """Each product's membership (the hashes of its members' ID numbers and person ids, see
    :func:`_id_number_hash`, :func:`_person_id_hash`) and how many distinct person ids it holds.

    A night's products hold most of the district several times over (the analyst's, each department's,
    each area's): every distinct value is hashed once for all of them, and a product's membership is
    gathered from those hashes by position, without a Python object per member."""
    kinds = []  # per kind: each product's value positions, and the hashes' lines by position
    for values_of, message in ((lambda p: p.members, _id_number_message),
                               (lambda p: p.person_ids, _person_id_message)):
        parts = [_texts(values_of(p)) for p in products]
        encoded = pc.dictionary_encode(pa.concat_arrays(parts) if parts else pa.array([], pa.string()))
        digests = keyed_digests(key, map(message, encoded.dictionary.to_pylist()))
        lines = lines_of(digests)  # in the order of the values, which positions refer to
        positions = encoded.indices.to_numpy(zero_copy_only=False)
        bounds = np.cumsum([0, *(len(part) for part in parts)])
        kinds.append(([positions[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)], lines))
    # One sorted list of every distinct hash line, and each kind's lines as places in it (two values can
    # share a hash: an ID number written with and without spaces). Sorted by Arrow: numpy sorts bytes slowly.
    lines = np.concatenate([lines for _, lines in kinds])
    width = lines.dtype.itemsize
    order = pc.sort_indices(pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(lines), [None, pa.py_buffer(np.ascontiguousarray(lines))])).to_numpy()
    ordered = lines[order]
    starts = np.ones(len(ordered), dtype=bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    place = np.empty(len(lines), dtype=np.int64)
    place[order] = np.cumsum(starts) - 1
    distinct = ordered[starts]
    ids_place, persons_place = np.split(place, [len(kinds[0][1])])
    for ids, persons in zip(kinds[0][0], kinds[1][0], strict=True):
        members = _distinct(np.concatenate([ids_place[ids], persons_place[persons]]), len(distinct))
        yield distinct[members], len(_distinct(persons, len(persons_place)))


def _distinct(places: np.ndarray, size: int) -> np.ndarray:
    """The distinct ``places`` (each below ``size``), sorted: by a mask when they are many, else by sorting."""
    if len(places) * 16 < size:
        return np.unique(places)
    seen = np.zeros(size, dtype=bool)
    seen[places] = True
    return np.flatnonzero(seen)


def _texts(values: Iterable[str] | pa.Array | pa.ChunkedArray) -> pa.Array:
    """``values`` as one Arrow string array without nulls."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    elif not isinstance(values, pa.Array):
        values = pa.array(list(values), pa.string())
    return pc.drop_null(values.cast(pa.string()))


def _signed(entry: dict, signer: Ed25519PrivateKey) -> dict:
    entry = {**entry, "signed_by": fingerprint(signer.public_key())}
    entry["hash"] = _entry_hash(entry)
    entry["signature"] = signer.sign(entry["hash"].encode("ascii")).hex()
    return entry


def _link_problem(entry: dict, expected_seq: int, prev: str) -> str | None:
    if entry.get("seq") != expected_seq:
        return f"sequence {entry.get('seq')} where {expected_seq} was expected"
    if entry.get("prev_hash") != prev:
        return "prev_hash does not match the previous entry's hash"
    if entry.get("hash") != _entry_hash(entry):
        return "hash does not match the entry's contents"
    return None


def _signature_problem(entry: dict, public_key: Ed25519PublicKey | None, expected: str | None,
                       signed_before: int) -> str | None:
    if "signed_by" not in entry:
        return (f"not signed, though entries before it are ({signed_before} signed): signatures were removed"
                if signed_before else None)
    if public_key is None:
        return "signed, but there is no public key to check it with (audit_signing.pub beside the log is missing)"
    if entry["signed_by"] != expected:
        return f"signed by key {str(entry['signed_by'])[:16]}…, not by the platform's key {str(expected)[:16]}…"
    try:
        public_key.verify(bytes.fromhex(entry.get("signature") or ""), entry["hash"].encode("ascii"))
    except (InvalidSignature, ValueError):
        return "signature does not verify: the entry was changed by someone without the signing key"
    return None


def _members_problem(entry: dict, memberships: Memberships) -> str | None:
    try:
        if memberships.sha256(entry["seq"]) == entry.get("members_sha256"):
            return None
    except MembershipError as e:
        return f"{e} (the membership of entry {entry['seq']} cannot be read back)"
    return f"membership file {memberships.file(entry['seq'])} (or one it was written as a change of) is altered"


def _publication_problem(entry: dict, open_publication: dict | None) -> str | None:
    if open_publication is None:
        return None
    if entry.get("head_seq") != open_publication["head_seq"] or entry.get("run_id") != open_publication["run_id"]:
        return (f"the publication of run {open_publication['run_id']} ends at entry {open_publication['head_seq']}, but "
                f"entry {entry.get('seq')} is another's: {_missing(entry.get('seq'), open_publication['head_seq'])} "
                "missing")
    return None


def _missing(first: int, last: int) -> str:
    return f"entry {first} is" if first == last else f"entries {first}–{last} are"
