"""What happens around every run on a data home: one at a time, recovered, cleaned, marked finished.

A run first holds the data home's lock (:mod:`core.lock`), then :func:`begin_run` puts the home in
order after whatever happened before: an interrupted publication is finished or undone from its
journal (:meth:`publish.Generations.recover`), a damaged current warehouse is reported (the newest
generation that opens is read instead), the working folders of earlier runs are removed (a killed
run's with them; the newest finished one stays, so its quarantine can still be exported), and runs
that Dagster still lists as started — killed, since the lock is free — are marked failed. At the
end :func:`end_run` marks the run's folder finished.

The CLI holds the lock before it starts Dagster; runs launched from the Dagster UI or the schedule
hold it through :class:`RunLockResource`, which every raw asset requires, so the lock is taken
before anything is read.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import Field

from core.home import DataHome, HomeLike, private_files
from core.lock import hold_data_home
from publish import AuditLog, Generations

__all__ = ["RUN_LOCK", "SYNC_JOB", "RunLockResource", "begin_run", "discard_intermediates", "end_run"]

log = logging.getLogger(__name__)

SYNC_JOB = "sync"
"""The job whose runs hold the data home."""

RUN_LOCK = "run_lock"
"""Resource key of :class:`RunLockResource`. Every asset takes it as a parameter of that name (only
for its setup: holding the lock), so whatever selection a run materialises, it holds the home."""


def begin_run(instance: dg.DagsterInstance | None, home: HomeLike, run_id: str) -> list[str]:
    """Put the home in order for run ``run_id`` (which must hold the lock); return what was found and done."""
    home = DataHome.at(home)
    _make_private(home)
    notes: list[str] = []
    generations = Generations(home)
    notes += generations.recover()
    generations.require_readable()
    AuditLog(home).require_appendable()  # a log that cannot take the run's entries stops it here, not after linking
    damaged = generations.check_current()
    if damaged:
        notes.append(damaged)
    notes += _clean_run_dirs(home, run_id)
    _prune_reports(home)
    if instance is not None:
        notes += _fail_abandoned_runs(instance, run_id)
    home.run_dir(run_id).mkdir(parents=True, exist_ok=True)
    for note in notes:
        log.warning("run %s: %s", run_id, note)
    return notes


def discard_intermediates(home: HomeLike, run_id: str) -> None:
    """Remove run ``run_id``'s intermediate files (raw extracts, staged records with diagnoses, sentence
    types, ID numbers) once its publication holds them, and those of every earlier run: restricted
    data is not left lying around. A blocked run keeps them until a run publishes, so its quarantine
    can be exported and corrected meanwhile."""
    home = DataHome.at(home)
    runs = [p.name for p in home.runs_dir.iterdir() if p.is_dir()] if home.runs_dir.is_dir() else []
    for run in {run_id, *runs}:
        shutil.rmtree(home.asset_base(run, []), ignore_errors=True)


def end_run(home: HomeLike, run_id: str) -> None:
    """Mark run ``run_id``'s folder finished (the run ended, successfully or not)."""
    marker = DataHome.at(home).run_finished_marker(run_id)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


class RunLockResource(dg.ConfigurableResource):
    """Holds the data home's run lock for a whole run (in-process executor), recovering the home first."""

    home: str = Field(description="the data home (SILOBREAKER_HOME)")

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[RunLockResource]:
        private_files()
        home = DataHome.resolve(self.home)
        run_id = context.run.run_id if context.run else "unknown"
        with hold_data_home(home, run_id) as took:
            if took:
                begin_run(context.instance, home, run_id)
            try:
                yield self
            finally:
                if took:
                    end_run(home, run_id)


#: The failure a run records for an earlier run it finds left started: its process was killed, no check failed.
ABANDONED_RUN = ("the run's process ended without finishing (killed or crashed); "
                 "marked failed by the next run on this data home")

#: Quality reports kept (each run writes one, about 60 KB: plotly.js is shared); older ones are removed.
REPORTS_KEPT = 90


def _prune_reports(home: DataHome) -> None:
    if not home.reports_dir.is_dir():
        return
    reports = sorted((p for p in home.reports_dir.glob("quality-*.html") if p.is_file()),
                     key=lambda p: p.stat().st_mtime)
    for old in reports[:-REPORTS_KEPT]:
        old.unlink()


def _make_private(home: DataHome) -> None:
    """Take group and other permissions off everything under the home (written before umask 077, or by
    another process such as the Dagster webserver)."""
    loosened, exposed_keys = 0, []
    for path in (home.root, *home.root.rglob("*")):
        if path.is_symlink():
            continue
        try:
            mode = path.stat().st_mode
            if mode & 0o077:
                path.chmod(mode & ~0o077)
                loosened += 1
                if path.is_file() and home.keys_dir in path.parents:
                    exposed_keys.append(path.name)
        except FileNotFoundError:
            # Gone since the listing: a Dagster daemon or webserver on this home makes and removes SQLite
            # journals under dagster/ all the time. Seen: a night ended in this traceback.
            continue
    if loosened:
        log.info("made %d file(s) and folder(s) under %s private to their owner", loosened, home.root)
    if exposed_keys:
        # Made private now, but whoever could read them may have a copy: the keys themselves must change.
        product = sorted(name for name in exposed_keys if name.endswith(_PRODUCT_KEY))
        retired = sorted(name for name in exposed_keys if _PRODUCT_KEY + "." in name)  # <r>.product.key.<key id>
        if retired:
            # Re-check: a retired key was sent to `keys rotate`, which replaces only the current one.
            log.warning("retired product key file(s) %s were readable by other users of this host; they are private "
                        "again, but whoever read them may hold a copy, and the products of the kept generations "
                        "encrypted under them stay readable with it: rotating does not change that; tell the data "
                        "protection officer which recipients' earlier products were exposed", ", ".join(retired))
        if product:
            log.warning("key file(s) %s were readable by other users of this host; they are private again, but "
                        "whoever read them may hold a copy: replace them (%s)", ", ".join(product),
                        "; ".join(f"silobreaker keys rotate {name.removesuffix(_PRODUCT_KEY)}" for name in product))
        others = sorted(set(exposed_keys) - set(product) - set(retired))
        if others:
            # Seen (privacy audit): these were advised `keys rotate <recipient>`, which refuses any but a product key.
            log.warning("key file(s) %s were readable by other users of this host; they are private again, but "
                        "whoever read them may hold a copy, and no command replaces such a key yet: %s",
                        ", ".join(others), "; ".join(_EXPOSED.get(name, _EXPOSED_PSEUDONYM) for name in others))


_PRODUCT_KEY = ".product.key"
#: What a copy of each key other than a product key allows, and what to do now (no command replaces these).
_EXPOSED = {
    "audit.key": "audit.key lets its holder test whether a person they know of was in a product; tell the data "
                 "protection officer",
    "audit_signing.key": "audit_signing.key lets its holder sign a rewritten audit log; keep its head outside now "
                         "(silobreaker audit export), so a later rewrite shows against it",
    "person_id.key": "person_id.key lets its holder compute the ids new persons will get; tell the data protection "
                     "officer",
}
_EXPOSED_PSEUDONYM = ("a pseudonym key (<recipient>.key) lets its holder tell which person a pseudonym of that "
                      "recipient's rows stands for; tell the data protection officer")


def _clean_run_dirs(home: DataHome, run_id: str) -> list[str]:
    if not home.runs_dir.is_dir():
        return []
    others = [p for p in home.runs_dir.iterdir() if p.is_dir() and p.name != run_id]
    finished = sorted((p for p in others if home.run_finished_marker(p.name).exists()),
                      key=lambda p: p.stat().st_mtime)
    keep = finished[-1:]
    notes = []
    for path in others:
        if path in keep:
            continue
        if not home.run_finished_marker(path.name).exists():
            notes.append(f"removed the working files of run {path.name}, which was killed before it ended")
        shutil.rmtree(path, ignore_errors=True)
    return notes


def _fail_abandoned_runs(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    # The lock is ours, and every asset takes it, so no other run on this home can be alive: the sync job's,
    # or a selection materialised from the UI (__ASSET_JOB).
    running = instance.get_runs(dg.RunsFilter(statuses=[
        dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.CANCELING]))
    notes = []
    for run in running:
        if run.run_id == run_id:
            continue
        instance.report_run_failed(run, message=ABANDONED_RUN)
        notes.append(f"marked run {run.run_id}, which was killed before it finished, as failed in Dagster")
    return notes
