"""Generations: a publication is one directory, published by switching one link, journaled.

Each run builds its warehouse and every product into a new ``generations/<gen>/`` folder. The fixed
paths readers use (``warehouse/silobreaker.duckdb``, ``shared/<recipient>.parquet``) are links
through ``current``, which names the published generation; committing a publication is one atomic
rename of ``current``. Readers therefore see the old generation whole or the new one whole, at any
instant the writer dies.

The audit log is appended to, outside the generations, so it is part of the same commit through a
journal. Its entries are prepared and signed while the generation is built (the generation's
warehouse and products record them, see ``publish.anchors``); before the switch they are written to
``publication.journal.json`` (fsynced); after it, they are appended and the journal removed. The next
run (:meth:`Generations.recover`, under the run lock) finishes a journal whose switch happened —
so the log can never lack a publication that happened — and undoes one whose switch did not.

The last :data:`KEEP` published generations are kept; ``silobreaker restore`` switches back to one,
and a current warehouse that is no longer whole is reported and read from the newest one that is. A
published warehouse is never written again, so "whole" is "has the SHA-256 its generation recorded when
it was published" (a file damaged inside still opens: seen, its checksum errors then stopped every run);
generations published before that was recorded are checked by opening them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from core.errors import TerminalError
from core.home import DataHome, HomeLike
from publish.audit import AuditLog
from publish.consent import restrictions_unknown_to

__all__ = ["KEEP", "DiskSpaceError", "Generation", "Generations"]

log = logging.getLogger(__name__)

KEEP = 3
"""Published generations kept (the current one included)."""

#: The new generation needs about this many times the current warehouse (DuckDB's build needs room
#: beyond the finished file), plus the products.
SPACE_FACTOR = 2.2

_NAME = re.compile(r"^g(\d{6})$")


class DiskSpaceError(TerminalError):
    """Not enough free disk space under the data home to build the next generation."""


@dataclass(frozen=True)
class Generation:
    """One published generation: its name, number, the run that built it, and when it was published."""

    name: str
    number: int
    run_id: str
    published_at: str
    warehouse_sha256: str | None = None  # recorded when published (none before 2026-12-06)


class Generations:
    """The generations of one data home: begin, commit or discard one, recover, prune, restore."""

    def __init__(self, home: HomeLike) -> None:
        self.home = DataHome.at(home)

    # -- what exists ------------------------------------------------------------------------

    def current(self) -> Generation | None:
        """The published generation, or ``None`` before the first publication."""
        name = self._current_name()
        return self._read(name) if name else None

    def published(self) -> list[Generation]:
        """Every committed generation still kept, oldest first."""
        if not self.home.generations_dir.is_dir():
            return []
        found = [self._read(path.name) for path in self.home.generations_dir.iterdir() if _NAME.match(path.name)]
        return sorted((g for g in found if g is not None), key=lambda g: g.number)

    def last_good(self) -> Generation | None:
        """The newest published generation whose warehouse is whole (the current one, normally)."""
        for generation in reversed(self.published()):
            if self._whole(generation):
                return generation
        return None

    def base(self) -> Generation | None:
        """The generation a new run builds on: the current one if its warehouse is whole — after a
        restore that is the restored one, not the newer generation it replaced — else the newest
        that is."""
        current = self.current()
        if current is not None and self._whole(current):
            return current
        return self.last_good()

    def readable_warehouse(self) -> Path | None:
        """The warehouse to read as the last publication: the current one if it is whole, else the newest
        generation's that is (``None`` if none is)."""
        base = self.base()
        return self.home.generation_warehouse_file(base.name) if base else None

    def check_current(self) -> str | None:
        """``None`` if the current warehouse is whole, else what is wrong and which generation is used instead."""
        current = self.current()
        if current is None or self._whole(current):
            return None
        good = self.last_good()
        path = self.home.generation_warehouse_file(current.name)
        damaged = (f"the published warehouse of generation {current.name} ({path}) is "
                   + ("missing" if not path.exists() else "damaged: its content is not what was published (SHA-256)"
                      if current.warehouse_sha256 else "damaged: it does not open, or is cut short"))
        if good is None:
            return (f"{damaged}, and no earlier generation is whole. It holds what the platform remembers from run "
                    "to run (withdrawals, deletion requests, review decisions, person ids), so no run publishes "
                    "without it: put the file back from a backup (the generation's record "
                    f"{self.home.generation_record(current.name)} names its SHA-256) and run again")
        return (f"{damaged}; reading generation {good.name} (run {good.run_id}) as the last publication until the "
                "next run publishes a new one, or run `silobreaker restore` to switch back now")

    def require_readable(self) -> None:
        """Raise unless a published warehouse can be read as the last publication (or nothing is published yet).

        Raises:
            TerminalError: the current warehouse is damaged and no earlier generation is whole (the message says
                what it holds and how to put it back).
        """
        current = self.current()
        # (A legacy home's folder without a warehouse file, moved into a generation, records no digest and held
        # nothing to protect: readers find nothing published. A generation that recorded one had its file.)
        if current is not None and (current.warehouse_sha256 or self.home.generation_warehouse_file(current.name).exists()) \
                and self.last_good() is None and (problem := self.check_current()):
            raise TerminalError(problem)

    def _whole(self, generation: Generation) -> bool:
        path = self.home.generation_warehouse_file(generation.name)
        if generation.warehouse_sha256 is None:
            return _opens(path)
        return path.exists() and _file_sha256(path) == generation.warehouse_sha256

    # -- building and committing ------------------------------------------------------------

    def begin(self, run_id: str) -> str:
        """Create the folder of the next generation for ``run_id`` and return its name.

        Raises:
            DiskSpaceError: the data home's disk has too little room for it; nothing is written.
        """
        self._check_space()
        numbers = [int(m.group(1)) for p in self._dirs() if (m := _NAME.match(p.name))]
        name = f"g{(max(numbers) + 1 if numbers else 1):06d}"
        self.home.generation_warehouse_file(name).parent.mkdir(parents=True)
        self.home.generation_shared_dir(name).mkdir(parents=True)
        log.info("run %s builds generation %s", run_id, name)
        return name

    def discard(self, name: str) -> None:
        """Remove a generation that was built but is not to be published."""
        if name == self._current_name():
            raise TerminalError(f"generation {name} is the published one; it cannot be discarded")
        shutil.rmtree(self.home.generation_dir(name), ignore_errors=True)

    def commit(self, name: str, run_id: str, published_at: datetime, entries: list[dict]) -> list[dict]:
        """Publish generation ``name``: journal its prepared audit ``entries`` (``AuditLog.prepare``), switch
        ``current``, append the entries.

        Returns:
            The audit entries appended.

        Raises:
            TerminalError: the audit log moved since the entries were prepared; nothing is published.
        """
        audit = AuditLog(self.home)
        if entries and audit.head().hash != entries[0]["prev_hash"]:
            raise TerminalError(f"generation {name} (run {run_id}) was built after audit entry {entries[0]['seq'] - 1}, "
                                f"but the audit log's head is now entry {audit.head().seq}; nothing was published: "
                                "run again")
        if not audit.ends_whole():
            raise TerminalError(f"the audit log {audit.path} does not end with a whole line (its last line was changed "
                                f"by hand or damaged); nothing of run {run_id} was published: run `silobreaker audit "
                                "verify` and put back the log from your last `audit export`")
        record = {"name": name, "run_id": run_id, "published_at": published_at.isoformat(),
                  "warehouse_sha256": _file_sha256(self.home.generation_warehouse_file(name))}
        journal = {"generation": name, "previous": self._current_name(), "run_id": run_id, "record": record,
                   "entries": entries}
        _write_durably(self.home.publication_journal, json.dumps(journal, ensure_ascii=False))
        self._switch(name)
        # Only a generation that was published carries its record (what restore and recovery keep).
        _write_durably(self.home.generation_record(name), json.dumps(record, ensure_ascii=False))
        try:
            audit.write(entries)
        except OSError as e:
            raise TerminalError(
                f"generation {name} (run {run_id}) is published, but its {len(entries)} audit entries could not be "
                f"appended to {audit.path} ({e}); they wait in {self.home.publication_journal} and the next run "
                "appends them before it does anything else: fix the cause (disk space, permissions) and run again"
            ) from e
        self.home.publication_journal.unlink()
        _fsync_dir(self.home.root)
        log.info("published generation %s (run %s), %d audit entries", name, run_id, len(entries))
        self.prune()
        return entries

    # -- after a crash ----------------------------------------------------------------------

    def recover(self) -> list[str]:
        """Bring the home to a consistent state after an interrupted run; return what was done.

        Run at the start of every run, under the run lock: converts a home published before
        generations existed, finishes or undoes an interrupted publication from its journal,
        removes generations whose build never finished, and restores the fixed links.
        """
        done = self._migrate_legacy()
        journal_file = self.home.publication_journal
        if journal_file.exists():
            journal = json.loads(journal_file.read_text(encoding="utf-8"))
            name = journal["generation"]
            if self._current_name() == name:
                if "record" in journal and not self.home.generation_record(name).exists():
                    _write_durably(self.home.generation_record(name), json.dumps(journal["record"], ensure_ascii=False))
                appended = AuditLog(self.home).write(journal["entries"])
                done.append(f"finished the publication of generation {name} (run {journal['run_id']}) interrupted "
                            f"after its switch: {appended} audit entries appended")
            elif journal.get("record") is not None:
                # A publication (not a restore, whose generation was published before) that never switched.
                shutil.rmtree(self.home.generation_dir(name), ignore_errors=True)
                done.append(f"undid the publication of generation {name} (run {journal['run_id']}) interrupted "
                            "before its switch; the previous publication stays")
            journal_file.unlink()
        current = self._current_name()
        for path in self._dirs():
            if path.name != current and not self.home.generation_record(path.name).exists():
                shutil.rmtree(path, ignore_errors=True)
                done.append(f"removed generation {path.name}, whose build never finished")
        published = self.published()
        if current is None and published:
            self._switch(published[-1].name)
            done.append(f"the link to the published generation was missing: it names {published[-1].name} again")
        elif current:
            self._ensure_links()
        for message in done:
            log.warning("recovery: %s", message)
        return done

    def prune(self, keep: int = KEEP) -> None:
        """Remove published generations beyond the newest ``keep`` (never the current one)."""
        current = self._current_name()
        for generation in self.published()[:-keep] if keep else self.published():
            if generation.name != current:
                shutil.rmtree(self.home.generation_dir(generation.name), ignore_errors=True)

    def restore(self, name: str | None = None) -> Generation:
        """Publish an earlier generation again (default: the newest one before the current).

        The audit log records the products it puts back in front of recipients, as a publication
        of its own (run ``restore-<gen>``), with the same membership as when they were first published.

        Raises:
            TerminalError: no such generation, none before the current one, or its warehouse is not whole.
        """
        kept = self.published()
        current = self._current_name()
        if name is None:
            earlier = [g for g in kept if current is None or g.name < current]
            if not earlier:
                raise TerminalError(f"no generation before {current} is kept under {self.home.generations_dir}")
            target = earlier[-1]
        else:
            target = next((g for g in kept if g.name == name), None)
            if target is None:
                names = ", ".join(g.name for g in kept) or "none"
                raise TerminalError(f"no published generation {name!r}; kept: {names}")
        if not self._whole(target):
            # else runs would quietly build on the newest whole generation, undoing the restore in the data
            whole = ", ".join(g.name for g in kept if g.name != target.name and self._whole(g)) or "none"
            raise TerminalError(f"generation {target.name}'s warehouse is damaged or missing; nothing was restored. "
                                f"Whole generations: {whole} (`silobreaker restore <generation>`)")
        self._refuse_undoing_restrictions(target)
        audit = AuditLog(self.home)
        # Seen (re-check): a restore appended its entries onto a log cut short, as a run did before it refused.
        audit.refuse_if_cut(f"generation {target.name} was not restored")
        entries = audit.repeat(target.run_id, f"restore-{target.name}", datetime.now(UTC))
        journal = {"generation": target.name, "previous": current, "run_id": f"restore-{target.name}",
                   "entries": entries}
        _write_durably(self.home.publication_journal, json.dumps(journal, ensure_ascii=False))
        self._switch(target.name)
        audit.write(entries)
        self.home.publication_journal.unlink()
        log.warning("restored generation %s (run %s)", target.name, target.run_id)
        return target

    def _refuse_undoing_restrictions(self, target: Generation) -> None:
        """Refuse to put ``target``'s products back in front of recipients if a whole generation published after it
        knows withdrawals, refusals or deletion requests that ``target``'s warehouse does not: those people would be
        shared again. Every later one is asked, so a damaged current warehouse (what a restore is for) does not hide
        what the one before it applied."""
        for newer in (g for g in self.published() if g.number > target.number and self._whole(g)):
            with duckdb.connect(str(self.home.generation_warehouse_file(newer.name)), read_only=True) as con:
                con.execute(f"ATTACH '{self.home.generation_warehouse_file(target.name)}' AS older (READ_ONLY)")
                unknown = restrictions_unknown_to(con, "older")
            if unknown:
                raise TerminalError(
                    f"generation {target.name} was published before {unknown:,} consent withdrawal(s), refusal(s) or "
                    f"deletion request(s) that generation {newer.name} applies: restoring it would share those people "
                    "again; nothing was restored. Run `silobreaker run` instead (it publishes anew with every "
                    "decision), or restore a generation published after them")

    # -- building blocks --------------------------------------------------------------------

    def _dirs(self) -> list[Path]:
        if not self.home.generations_dir.is_dir():
            return []
        return [p for p in self.home.generations_dir.iterdir() if p.is_dir() and _NAME.match(p.name)]

    def _current_name(self) -> str | None:
        link = self.home.current_link
        if not link.is_symlink():
            return None
        return Path(os.readlink(link)).name

    def _read(self, name: str) -> Generation | None:
        match = _NAME.match(name)
        record = self.home.generation_record(name)
        if match is None or not record.exists():
            return None
        data = json.loads(record.read_text(encoding="utf-8"))
        return Generation(name, int(match.group(1)), data["run_id"], data["published_at"], data.get("warehouse_sha256"))

    def _switch(self, name: str) -> None:
        """Point ``current`` at generation ``name`` in one atomic rename, then make sure the fixed links exist."""
        link = self.home.current_link
        staging = link.with_name(f".{link.name}.new")
        staging.unlink(missing_ok=True)
        os.symlink(self.home.current_target(name), staging)
        os.replace(staging, link)
        _fsync_dir(self.home.root)
        self._ensure_links()

    def _ensure_links(self) -> None:
        for path, target in self.home.published_link_targets().items():
            if path.is_symlink() and os.readlink(path) == target:
                continue
            staging = path.with_name(f".{path.name}.new")
            staging.unlink(missing_ok=True)
            os.symlink(target, staging)
            os.replace(staging, path)
        _fsync_dir(self.home.root)

    def _check_space(self) -> None:
        current = self.current()
        if current is None:
            return
        warehouse = self.home.generation_warehouse_file(current.name)
        shared = self.home.generation_shared_dir(current.name)
        size = warehouse.stat().st_size if warehouse.exists() else 0
        products = sum(p.stat().st_size for p in shared.glob("*")) if shared.is_dir() else 0
        needed = int(SPACE_FACTOR * size) + products
        free = shutil.disk_usage(self.home.root).free
        if free < needed:
            raise DiskSpaceError(
                f"not enough disk space under {self.home.root} for the next publication: it needs about "
                f"{_megabytes(needed)} ({SPACE_FACTOR}× the {_megabytes(size)} warehouse, plus the products), "
                f"{_megabytes(free)} are free; free space on that disk (older generations are under "
                f"{self.home.generations_dir}) or move the data home, then run again"
            )

    def _migrate_legacy(self) -> list[str]:
        """Move a warehouse and products published before generations into a first generation."""
        home = self.home
        legacy = [p for p in (home.warehouse_dir, home.shared_dir, home.current_link) if p.exists() and not p.is_symlink()]
        if not legacy:
            return []
        name = "g000000"
        target = home.generation_dir(name)
        shutil.rmtree(target, ignore_errors=True)
        home.generations_dir.mkdir(parents=True, exist_ok=True)
        source = home.current_link if home.current_link in legacy else None
        if source is not None:
            # A copy of a data home that followed the links: current/ holds a whole generation.
            shutil.move(source, target)
            for path in (home.warehouse_dir, home.shared_dir):
                if path.exists() and not path.is_symlink():
                    shutil.rmtree(path)
        else:
            home.generation_warehouse_file(name).parent.parent.mkdir(parents=True, exist_ok=True)
            for path, destination in ((home.warehouse_dir, home.generation_warehouse_file(name).parent),
                                      (home.shared_dir, home.generation_shared_dir(name))):
                if path.exists() and not path.is_symlink():
                    shutil.move(path, destination)
                else:
                    destination.mkdir(parents=True, exist_ok=True)
        for stale in home.generation_warehouse_file(name).parent.glob(".candidate-*"):
            stale.unlink() if stale.is_file() else shutil.rmtree(stale)
        for stale in home.generation_shared_dir(name).glob(".candidate-*"):
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
        if not home.generation_record(name).exists():
            _write_durably(home.generation_record(name), json.dumps(
                {"name": name, "run_id": _last_run_id(home.generation_warehouse_file(name)),
                 "published_at": datetime.now(UTC).isoformat()}))
        self._switch(name)
        return [f"moved the publication found at {', '.join(p.name for p in legacy)} into generation {name}"]


#: Digests of warehouse files already read by this process, by what identifies their content unchanged.
_DIGESTS: dict[tuple[str, int, int, int], str] = {}


def _file_sha256(path: Path) -> str:
    """The file's SHA-256, read once per process while unchanged: a published warehouse is never written again, and a
    run asks of it more than once."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        with path.open("rb") as f:
            _DIGESTS[key] = hashlib.file_digest(f, "sha256").hexdigest()
    return _DIGESTS[key]


def _opens(path: Path) -> bool:
    """Whether the warehouse opens and is whole: its catalogue reads, and the file holds as many blocks as
    its header counts in use (a file cut short can still open, its catalogue being in the first blocks). Free
    blocks are not counted: DuckDB cuts those at the end of a file off, as in a warehouse built on a copy of
    the last one (:mod:`publish.carry`), whose dropped tables left some."""
    if not path.exists():
        return False
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            block_size, total_blocks, free_blocks = con.execute(
                "SELECT block_size, total_blocks, free_blocks FROM pragma_database_size()").fetchone()
            con.execute("SELECT count(*) FROM duckdb_tables()").fetchall()
    except duckdb.Error:
        return False
    return path.stat().st_size >= block_size * (total_blocks - free_blocks)


def _last_run_id(warehouse: Path) -> str:
    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            rows = con.execute("SELECT run_id FROM runs ORDER BY published_at DESC LIMIT 1").fetchall()
        return rows[0][0] if rows else "legacy"
    except duckdb.Error:
        return "legacy"


def _write_durably(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that after a crash the file is either absent or whole."""
    staging = path.with_name(f".{path.name}.tmp")
    with open(staging, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(staging, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _megabytes(size: int) -> str:
    return f"{size / 2**20:,.1f} MB"
