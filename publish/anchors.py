"""The audit trail checked whole: the log, and the anchors of its head outside it.

The log proves on its own that its entries are unaltered and signed by the platform, and that no
publication in it is incomplete (:meth:`publish.audit.AuditLog.verify`). It cannot prove on its own
that nothing was cut off its end, that it was not emptied, or that nobody holding the signing key
rewrote it. For that, every publication anchors the log's head in two more places, written in
the same build as the entries:

- the warehouse: each ``publication_log`` row holds its product's entry (``audit_seq``,
  ``audit_hash``), and the table carries every earlier publication's rows over;
- each product: its key-value metadata holds its own entry's sequence number and the head of the
  log before its publication (:class:`publish.audit.ProductAnchor`), beside the key id; and its
  SHA-256 is in its entry.

:func:`verify_trail` checks that the current warehouse's anchors and every kept generation's products
agree with the log, and optionally that the log still holds a head exported earlier
(``silobreaker audit export``). The anchors are checked one by one, so every disagreement is named.

Example:
    >>> trail = verify_trail(home)
    >>> trail.ok, trail.problems                                    # doctest: +SKIP
    (True, ())
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from core.errors import ConfigError
from core.home import OFFICE_SUFFIXES, DataHome, HomeLike
from publish.audit import GENESIS, AuditLog, ProductAnchor, Verification
from publish.crypto import (
    KEY_ID_METADATA,
    product_key_id,
    product_keys,
    product_metadata,
)
from publish.generations import Generations
from publish.reader import AuditAnchor, WarehouseReader

__all__ = ["TrailVerification", "verify_trail"]


@dataclass(frozen=True)
class TrailVerification:
    """The audit trail checked whole.

    Attributes:
        log: the log checked alone (chain, signatures, whole publications, membership files).
        problems: each anchor (warehouse, product, export) that disagrees with the log, in words.
        checked: what was compared and agreed, for the operator.
        unchecked: what could not be compared (a product whose key the platform lacks), and why.
    """

    log: Verification
    problems: tuple[str, ...] = ()
    checked: tuple[str, ...] = ()
    unchecked: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the log verifies and every anchor agrees with it."""
        return self.log.ok and not self.problems


def verify_trail(home: HomeLike, against: Path | None = None) -> TrailVerification:
    """Check the audit log and every anchor of its head: the warehouse's, the products', an export's.

    Args:
        home: the data home.
        against: a file written by ``silobreaker audit export``: the log must still hold its head.

    Raises:
        ConfigError: ``against`` is not a readable export.
    """
    home = DataHome.at(home)
    log = AuditLog(home)
    by_seq = {entry.get("seq"): entry for entry in log.entries(strict=False)}
    problems: list[str] = []
    checked: list[str] = []
    unchecked: list[str] = []
    _add_pending(home, log, by_seq, unchecked)
    _check_warehouse(home, by_seq, problems, checked)
    _check_products(home, by_seq, problems, checked, unchecked)
    if against is not None:
        found = log.compare_export(_read_export(against))
        problems += [f"export {against}: {p}" for p in found]
        if not found:
            checked.append(f"export {against}: the log still holds its head")
    return TrailVerification(log.verify(), tuple(problems), tuple(checked), tuple(unchecked))


def _add_pending(home: DataHome, log: AuditLog, by_seq: dict, unchecked: list[str]) -> None:
    """The entries of a publication interrupted after its switch, waiting in its journal for the next run (or restore)
    to append them, taken as the log's for the anchors when they follow its last entry: its warehouse and products
    are then pending, not tampered with. (Seen: a run killed there was reported as 198 disagreements.)"""
    try:
        journal = json.loads(home.publication_journal.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return
    except (OSError, ValueError) as e:
        unchecked.append(f"{home.publication_journal} cannot be read ({e}); the next run says what it holds")
        return
    entries = [e for e in journal.get("entries") or [] if isinstance(e, dict)]
    if not entries:
        unchecked.append(f"{home.publication_journal} holds a publication with no entries to append")
        return
    head = log.head()
    if entries[0].get("prev_hash") != head.hash or entries[0].get("seq") != head.seq + 1:
        # Nothing to excuse: the anchors are checked against the log alone, and this says why they may disagree.
        unchecked.append(f"the {len(entries)} entries of run {journal.get('run_id')} waiting in {home.publication_journal} "
                         f"do not follow the log's last entry ({head.seq}): the log lost entries since they were written")
        return
    for entry in entries:
        by_seq.setdefault(entry.get("seq"), entry)
    unchecked.append(f"{len(entries)} entries of run {journal.get('run_id')} wait in {home.publication_journal} to be "
                     "appended by the next run (or restore); the warehouse and products were checked against them")


def _check_warehouse(home: DataHome, by_seq: dict, problems: list[str], checked: list[str]) -> None:
    reader = WarehouseReader(home)
    generations = Generations(home)
    damaged = generations.check_current()
    if damaged:
        # Seen: a warehouse cut short passed as agreeing, having been read from an earlier generation's file.
        problems.append(damaged)
        if generations.last_good() is None:
            return
    where = generations.readable_warehouse() if damaged else reader.path  # the file read, named as such below
    anchors = reader.audit_anchors()
    if not anchors:
        if reader.exists:
            checked.append(f"warehouse {where}: records no audit entries (published before they were anchored)")
        elif by_seq:
            # Entries without a warehouse to anchor them: a deleted warehouse must not pass as intact.
            problems.append(f"the log holds {len(by_seq)} entries but there is no published warehouse to anchor "
                            f"them under {home.root}")
        return
    missing = [a for a in anchors if a.seq not in by_seq]
    differ = [a for a in anchors if a.seq in by_seq and not _same(a, by_seq[a.seq])]
    if missing:
        last = max(by_seq, default=0)
        problems.append(
            f"the warehouse ({where}) records audit {_seqs(missing)} ({_runs(missing)}), which the log does not "
            f"hold (it {f'ends at entry {last}' if last else 'is empty'}): entries were removed or damaged")
    if differ:
        first = differ[0]
        problems.append(
            f"the warehouse ({where}) records other entries than the log for audit {_seqs(differ)}: "
            f"entry {first.seq} ({first.recipient}, run {first.run_id}) has hash {by_seq[first.seq].get('hash', '')[:12]}… "
            f"in the log and {first.hash[:12]}… in the warehouse, so the log was rewritten")
    if not missing and not differ:
        checked.append(f"warehouse {where}: its {len(anchors)} anchored entries agree with the log "
                       f"(head: entry {anchors[-1].seq})")


def _same(anchor: AuditAnchor, entry: dict) -> bool:
    return anchor.hash == entry.get("hash") and anchor.recipient == entry.get("recipient")


def _check_products(home: DataHome, by_seq: dict, problems: list[str], checked: list[str],
                    unchecked: list[str]) -> None:
    keys: dict[str, dict[str, bytes]] = {}
    for generation in Generations(home).published():
        # A generation's files are those of its own publication: the entries of the run that built it (a restore
        # puts a generation back as it is, under entries of its own that repeat these).
        own = {e.get("recipient"): e for e in by_seq.values() if e.get("run_id") == generation.run_id}
        files = home.generation_product_files(generation.name)
        found = []
        for recipient, path in files.items():
            if recipient not in keys:
                keys[recipient] = product_keys(home, recipient)
            found += _product_problems(recipient, path, f"product {recipient} of generation {generation.name}",
                                       keys[recipient], by_seq, own.get(recipient), generation.run_id, unchecked)
        # A product its publication recorded and the generation no longer holds was taken away (or never written).
        found += [f"product {recipient} of generation {generation.name} is missing: audit entry {entry.get('seq')} "
                  f"(run {generation.run_id}) records it" for recipient, entry in sorted(own.items()) if recipient not in files]
        office = _office_problems(home, generation.name, own, found, unchecked)
        problems += found
        if files and not found:
            checked.append(f"generation {generation.name}: its {len(files)} products"
                           + (f" and {office} office file(s)" if office else "") + " agree with the log")


def _product_problems(recipient: str, path: Path, label: str, keys: Mapping[str, bytes], by_seq: dict,
                      own: dict | None, run_id: str, unchecked: list[str]) -> list[str]:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if own is None or own.get("content_hash") != digest:
        other = next((e for e in by_seq.values() if e.get("content_hash") == digest and e.get("recipient") == recipient),
                     None)
        if other is None:
            return [(f"{label} ({path}, SHA-256 {digest[:12]}…) is in no audit entry: it was published without one, "
                     "or its entry was removed")]
        # Seen (privacy audit): last night's product, listing people who had since withdrawn consent, copied over
        # tonight's passed, its hash being in an entry, of another run.
        return [(f"{label} is the file of audit entry {other.get('seq')} (run {other.get('run_id')}), not of this "
                 f"generation's publication (run {run_id}): a product of another publication was put in its place")]
    file_key_id = product_key_id(path)
    if file_key_id is None:
        return []  # written before products named their key and recorded their place in the log
    key = keys.get(file_key_id)
    if key is None:
        unchecked.append(f"{label}: its anchor was not read, the platform holds no key with id {file_key_id}")
        return []
    try:
        metadata = product_metadata(path, key, recipient)
    except (OSError, ValueError) as e:
        unchecked.append(f"{label}: its anchor was not read ({e})")
        return []
    anchor = ProductAnchor.from_metadata(metadata)
    if anchor is None:
        return [(f"{label} ({path}) records no place in the audit log, though it names its key: it was not "
                 "written by a publication")]
    problems = []
    prev = by_seq.get(anchor.prev.seq)
    prev_hash = GENESIS if anchor.prev.seq == 0 else (prev or {}).get("hash")
    if prev_hash != anchor.prev.hash:
        now = "is missing" if prev_hash is None else f"has hash {prev_hash[:12]}…"
        problems.append(f"{label} was built on audit entry {anchor.prev.seq} with hash {anchor.prev.hash[:12]}…, "
                        f"and the log's entry {anchor.prev.seq} {now}: the log was rewritten up to there")
    entry = by_seq.get(anchor.seq)
    if entry is None or entry.get("content_hash") != digest or entry.get("recipient") != recipient \
            or entry.get("key_id") != metadata.get(KEY_ID_METADATA):
        now = "is missing" if entry is None else "records another file, recipient or key id"
        problems.append(f"{label} was published as audit entry {anchor.seq}, and the log's entry {anchor.seq} {now}")
    return problems


def _office_problems(home: DataHome, generation: str, own: Mapping[str, dict],
                     problems: list[str], unchecked: list[str]) -> int:
    """Check every other file of a generation's products folder: an office file (the xlsx or zip a clerk opens)
    against the SHA-256 its recipient's entry records, anything else as no file of the publication. Returns how
    many office files agree; what does not is added to ``problems``."""
    agree = 0
    folder = home.generation_shared_dir(generation)
    suffixes = set(OFFICE_SUFFIXES.values())
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.suffix == ".parquet":
            continue  # a product: checked above, recorded or not
        label = f"{path.name} of generation {generation}"
        entry = own.get(path.stem)
        if path.suffix not in suffixes or entry is None:
            problems.append(f"{label} is no file of its publication ({path}): no audit entry of its run delivers it; "
                            "remove it, it may hold personal data")
            continue
        if "office_sha256" not in entry:
            unchecked.append(f"{label}: its entry {entry.get('seq')} was written before office files were recorded")
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != entry["office_sha256"]:
            problems.append(f"{label} is not the file its audit entry records (entry {entry.get('seq')}, run "
                            f"{entry.get('run_id')}): SHA-256 {digest[:12]}…, the entry {entry['office_sha256'][:12]}…; "
                            "it was replaced after publication")
            continue
        agree += 1
    return agree


def _read_export(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read the audit export {path} ({e}); pass a file written by "
                          "`silobreaker audit export`") from e


def _seqs(anchors: list[AuditAnchor]) -> str:
    seqs = [a.seq for a in anchors]
    if len(seqs) == 1:
        return f"entry {seqs[0]}"
    return f"entries {', '.join(map(str, seqs))}" if len(seqs) <= 3 else f"entries {seqs[0]}–{seqs[-1]}"


def _runs(anchors: list[AuditAnchor]) -> str:
    runs = list(dict.fromkeys(a.run_id for a in anchors))
    return f"run{'s' if len(runs) > 1 else ''} {', '.join(runs)}"
