"""Who was in each published product, as the audit key's hashes: one file per audit entry
(``<home>/audit/members/<seq>.txt``, :mod:`publish.audit`), written whole or as the change from an
earlier entry's.

A night's products hold most of the district several times over (at a million people 142 MB of hashes a
night written whole: ~50 GB a year), and a product's members barely change from one night to the next. So
a membership is written as the change from the last membership of the same recipient::

    @<seq of the entry it changes>
    +<hash of a member who joined>
    -<hash of a member who left>

and whole — one hash per line, sorted, as every membership was written before 2026-12 — when the recipient
has no earlier membership that reads back as its entry recorded it, when the changes behind that one are
already :data:`WHOLE_EVERY` long, or when the change is not smaller than half the membership. Whichever
way it is stored, an entry's ``members_sha256`` is the SHA-256 of the whole membership's text (its hashes
sorted, one per line), so a reader rebuilds the membership from the last whole file and checks it against
the entry; a damaged file fails its own entry and the entries built on it, up to the next whole one.

A membership is held as a sorted numpy array of its lines (``S65``: 64 hex digits and the newline), whose
bytes are the whole file's text: a million-person membership is read, changed, compared and hashed
without a Python object per member.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from core.home import DataHome

__all__ = ["WHOLE_EVERY", "Membership", "MembershipError", "Memberships", "lines_of", "membership_of", "write_membership"]

WHOLE_EVERY = 30
"""A recipient's membership is written whole at least once in this many of its entries."""

_DIGITS = 64
_LINE = np.dtype(f"S{_DIGITS + 1}")  # one whole-file line: the hash and "\n"
_CHANGE = np.dtype(f"S{_DIGITS + 2}")  # one change line: "+" or "-", the hash and "\n"
_BASE = b"@"

Membership = np.ndarray
"""A membership: its lines (``S65``, each hash followed by ``\\n``), sorted and unique."""


class MembershipError(ValueError):
    """A membership file that is missing or cannot be read as one."""


def membership_of(hashes: Iterable[str]) -> Membership:
    """The membership of these hashes (64 lowercase hex digits each)."""
    return lines_of(sorted(set(hashes)))


def lines_of(hashes: Sequence[str]) -> np.ndarray:
    """The lines of these hashes in their order: a membership only if they are sorted and unique."""
    text = ("\n".join(hashes) + "\n").encode("ascii") if hashes else b""
    return np.frombuffer(text, dtype=_LINE)


def held_in(members: Membership, hashes: Sequence[str]) -> np.ndarray:
    """Mask of ``hashes`` that the membership ``members`` holds."""
    return _among(lines_of(hashes), members)


def write_membership(path: Path, members: Membership, base: tuple[int, Membership] | None) -> bool:
    """Write ``members`` to ``path``: as the change from ``base`` (its entry's seq and membership) when that
    is less than half of it, else whole. Whether it was written as a change."""
    if base is not None:
        seq, before = base
        joined, left = members[~_among(members, before)], before[~_among(before, members)]
        if 2 * (len(joined) + len(left)) < len(members):
            lines = [f"@{seq}\n".encode("ascii"), _changes(b"+", joined), _changes(b"-", left)]
            path.write_bytes(b"".join(lines))
            return True
    path.write_bytes(members.tobytes())
    return False


def _changes(sign: bytes, lines: Membership) -> bytes:
    out = np.empty(len(lines), dtype=_CHANGE)
    out[:] = np.char.add(sign, lines)
    return out.tobytes()


def _among(values: Membership, sorted_lines: Membership) -> np.ndarray:
    """Mask of ``values`` found in ``sorted_lines``."""
    if not len(sorted_lines):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_lines, values), len(sorted_lines) - 1)
    return sorted_lines[at] == values


class Memberships:
    """The memberships of one data home's entries, read back from their files.

    Each membership is rebuilt from the last whole file before it; what was rebuilt is kept while later
    entries still build on it (``bases``: how many entries build on each seq, see :meth:`built_on`) and let
    go after, so reading a year of nightly memberships holds about one night's at a time.
    """

    def __init__(self, home: DataHome, bases: Mapping[int, int] | None = None) -> None:
        self._home = home
        self._kept: dict[int, Membership] = {}
        self._wanted = Counter(bases or {})

    @classmethod
    def built_on(cls, home: DataHome, seqs: Iterable[int]) -> dict[int, int]:
        """For the entries ``seqs``, how many of them are written as a change of each earlier seq."""
        counts: Counter[int] = Counter()
        for seq in seqs:
            base = _base_of(home.audit_members_file(seq))
            if base is not None:
                counts[base] += 1
        return dict(counts)

    def of(self, seq: int) -> Membership:
        """The membership of entry ``seq``.

        Raises:
            MembershipError: its file, or a file it was written as a change of, is missing or malformed.
        """
        changes: list[tuple[Membership, Membership]] = []  # (joined, left) of each change, newest first
        at = seq
        while at not in self._kept:
            path = self.file(at)
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                raise MembershipError(f"membership file {path} is missing") from None
            if not data.startswith(_BASE):
                if len(data) % _LINE.itemsize:
                    raise MembershipError(f"membership file {path} is not one hash per line")
                members = np.frombuffer(data, dtype=_LINE)
                break
            base, joined, left = _parse_change(path, data, at)
            changes.append((joined, left))
            at = base
        else:
            members = self._release(at)
        # The changes are composed (they are small) and applied to the whole membership once:
        # applying (J1, L1) then (J2, L2) is applying ((J1 - L2) | J2, L1 | L2).
        joined = left = np.empty(0, dtype=_LINE)
        for joined_here, left_here in reversed(changes):
            joined = np.union1d(joined[~_among(joined, left_here)], joined_here)
            left = np.union1d(left, left_here)
        members = _applied(members, joined, left)
        if self._wanted[seq] > 0:  # (a kept one read by the last entry building on it was let go above)
            self._kept[seq] = members
        return members

    def _release(self, seq: int) -> Membership:
        """A kept membership, let go of when the last entry building on it has read it."""
        members = self._kept[seq]
        self._wanted[seq] -= 1
        if self._wanted[seq] <= 0:
            del self._kept[seq]
        return members

    def holding(self, seqs: Iterable[int], hashes: Iterable[str]) -> tuple[set[int], set[int]]:
        """Of the entries ``seqs`` (oldest first), those whose membership holds any of ``hashes``, and those
        of which it cannot be told: their file is missing or malformed (:meth:`of` names it), or is a change
        of one that is (unless the change itself shows one of them joining). Read without rebuilding any
        membership — a change from what its base held and the lines it changes."""
        seqs = list(seqs)
        wanted = membership_of(hashes)
        held: dict[int, Membership] = {}  # of the hashes, those each entry holds
        partly: set[int] = set()  # entries built on a lost membership: held lists only what is known
        for seq in seqs:
            path = self.file(seq)
            try:
                data = path.read_bytes()
                if data.startswith(_BASE):
                    base, joined, left = _parse_change(path, data, seq)
                    before = held.get(base, wanted[:0])
                    held[seq] = np.union1d(before[~_among(before, left)], joined[_among(joined, wanted)])
                    if base not in held or base in partly:
                        partly.add(seq)
                elif len(data) % _LINE.itemsize == 0:
                    held[seq] = wanted[_among(wanted, np.frombuffer(data, dtype=_LINE))]
            except (FileNotFoundError, MembershipError):
                continue
        holding = {seq for seq, found in held.items() if len(found)}
        return holding, {seq for seq in seqs if seq not in holding and (seq not in held or seq in partly)}

    def file(self, seq: int) -> Path:
        """The membership file of entry ``seq``."""
        return self._home.audit_members_file(seq)

    def sha256(self, seq: int) -> str:
        """SHA-256 of the whole text of entry ``seq``'s membership (what its entry records)."""
        return hashlib.sha256(self.of(seq).tobytes()).hexdigest()

    def depth(self, seq: int) -> int:
        """How many changes lie between entry ``seq``'s membership and the whole file it builds on."""
        depth = 0
        while (base := _base_of(self.file(seq))) is not None:
            if not 0 < base < seq:
                return WHOLE_EVERY  # not a chain (:meth:`of` names the file): the next one is written whole
            depth, seq = depth + 1, base
        return depth


def _base_of(path: Path) -> int | None:
    """The seq a membership file is written as a change of; ``None`` for a whole (or missing) one."""
    try:
        with open(path, "rb") as f:
            head = f.readline(32)
    except FileNotFoundError:
        return None
    if not head.startswith(_BASE):
        return None
    try:
        return int(head[1:])
    except ValueError:
        return None


def _parse_change(path: Path, data: bytes, seq: int) -> tuple[int, Membership, Membership]:
    """The seq a change file builds on, and the lines joined and left (each sorted)."""
    head, _, rest = data.partition(b"\n")
    try:
        base = int(head[1:])
    except ValueError:
        raise MembershipError(f"membership file {path} does not name the entry it changes") from None
    if not 0 < base < seq:
        raise MembershipError(f"membership file {path} changes entry {base}, which is not an earlier entry")
    if len(rest) % _CHANGE.itemsize:
        raise MembershipError(f"membership file {path} is not one change per line")
    table = np.frombuffer(rest, dtype=np.uint8).reshape(-1, _CHANGE.itemsize)
    sign, lines = table[:, 0], np.ascontiguousarray(table[:, 1:]).view(_LINE).ravel()
    if not np.isin(sign, (ord("+"), ord("-"))).all():
        raise MembershipError(f"membership file {path} holds a line that is neither + nor -")
    return base, np.unique(lines[sign == ord("+")]), np.unique(lines[sign == ord("-")])


def _applied(members: Membership, joined: Membership, left: Membership) -> Membership:
    """``(members - left) | joined``, sorted, in one pass over ``members`` (``joined``, ``left`` sorted)."""
    if not len(joined) and not len(left):
        return members
    kept = members[~_among(members, left)]
    joined = joined[~_among(joined, kept)]
    return np.insert(kept, np.searchsorted(kept, joined), joined)
