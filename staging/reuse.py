"""A source's staging kept between runs, so an unchanged extract is neither parsed nor staged again.

Each run keeps, per source, the :class:`~staging.stage.StageResult` it staged, with the lineage of the
extract it came from and a fingerprint of everything else staging reads: the source's declaration
(columns, value maps, date formats, key) and the code and word lists of staging itself. A later run
whose extract has the same content hash and fingerprint takes the kept staging instead of staging
again, its records stamped with the new extraction time, as long as it reads the source before the
staging's ``valid_until`` (the day a row dated after the extraction day stops being in the future).
That is the result staging would compute (``tests/staging/test_staging_reuse.py`` holds them equal),
at the cost of reading its Arrow files. A file source whose bytes hash the same is not even
parsed (:func:`connectors.read_source` with ``known``); a database is read and hashed as before.
An extract whose content changed (a department's file sent again with a day's changes) takes the kept
staging's rows where it repeats them (:class:`staging.stage.KnownRows`): only new and changed rows, and
rows with a soft problem, are staged again. The outcomes of the expectations last validated on a
staging are kept beside it, so an unchanged source's suite runs only the expectations that changed (a
freshness cutoff moves with the day, a row-count bound with the last publication).

The kept staging holds restricted data like a run's own folder and lives beside it under the data
home (:meth:`core.home.DataHome.kept_staging_dir`). A staging is replaced whole, never half-written
(:func:`core.folders.replacing_folder`): a damaged or missing one only means the next run stages again.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
from pathlib import Path

import pandas as pd

from connectors import Lineage, SourceConfig
from core.folders import replacing_folder
from core.frames import FRAME_SUFFIX, read_frame, read_table, unreadable_level, write_frame
from core.home import DataHome, HomeLike
from staging.stage import KnownRows, StageResult

__all__ = ["StagingStore"]

logger = logging.getLogger(__name__)

_KEPT = "kept.json"
_OUTCOMES = "outcomes.json"
_FRAMES = ("staged", "quarantine", "unmapped_values", "reusable")
# Besides the staging package, what staging's output depends on: the connectors that turn a file's bytes
# into text (a file with the same bytes is not parsed again), the canonical words and the libraries that
# read files, dates, text and pinyin; and DuckDB, whose hash tells a row staged before (KeyedRows.digests).
_CODE = (Path(__file__).parent, Path(__file__).parents[1] / "connectors", Path(__file__).parents[1] / "core" / "vocabulary.py")
_LIBRARIES = ("pandas", "pyarrow", "openpyxl", "pypinyin", "opencc", "duckdb", "silobreaker")


class StagingStore:
    """The stagings kept under one data home, one per source.

    Example:
        >>> store = StagingStore(home)                                    # doctest: +SKIP
        >>> store.keep(source, extract.lineage, result)                   # doctest: +SKIP
        >>> store.reuse(source, later_extract.lineage)                    # doctest: +SKIP
        StageResult(staged=..., valid_until=None)
    """

    def __init__(self, home: HomeLike) -> None:
        self.home = DataHome.at(home)
        self._unreadable: set[str] = set()  # sources whose kept staging this store found it cannot read

    def known_extract(self, source: SourceConfig, at: pd.Timestamp) -> Lineage | None:
        """The lineage of the extract whose staging is kept for ``source`` and still holds for an extraction
        at ``at`` (same declaration and code, before ``valid_until``); ``None`` if a new read must be staged."""
        kept = self._kept(source)
        if kept is None or not _holds(kept, at):
            return None
        return Lineage.from_metadata(kept["lineage"])

    def reuse(self, source: SourceConfig, lineage: Lineage) -> StageResult | None:
        """The kept staging of ``source`` if it is what staging the extract ``lineage`` describes would give.

        Its records and quarantined rows carry ``lineage.extracted_at``; ``None`` when the content,
        declaration or code differ, the staging has expired, or its files cannot be read."""
        kept = self._kept(source)
        at = pd.Timestamp(lineage.extracted_at)
        if kept is None or kept["lineage"]["content_hash"] != lineage.content_hash or not _holds(kept, at):
            return None
        folder = self.home.kept_staging_dir(source.name)
        try:
            frames = {name: read_frame(folder / f"{name}{FRAME_SUFFIX}") for name in _FRAMES}
            for name in ("staged", "quarantine"):
                _of_source(folder / f"{name}{FRAME_SUFFIX}", source.name, frames[name]["source"].unique())
        except (OSError, ValueError) as e:
            self._unreadable.add(source.name)
            logger.log(unreadable_level(e), "source %s: the kept staging in %s cannot be read (%s); staging again",
                       source.name, folder, e)
            return None
        stamp = at.tz_convert("UTC")
        for name in ("staged", "quarantine"):
            frame = frames[name]
            frames[name] = frame.assign(extracted_at=pd.Series(stamp, index=frame.index, dtype=frame["extracted_at"].dtype))
        valid_until = kept["valid_until"]
        return StageResult(
            staged=frames["staged"], quarantine=frames["quarantine"], soft_problems=dict(kept["soft_problems"]),
            unmapped_values=frames["unmapped_values"],
            valid_until=None if valid_until is None else pd.Timestamp(valid_until), reusable=frames["reusable"],
        )

    def known_rows(self, source: SourceConfig, at: pd.Timestamp) -> KnownRows | None:
        """The rows of the kept staging of ``source`` that an extraction at ``at`` of changed content may take
        as they are (:class:`staging.stage.KnownRows`); ``None`` when no kept staging holds for it (another
        declaration or code, expired, unreadable) and every row is staged."""
        kept = self._kept(source)
        if kept is None or not _holds(kept, pd.Timestamp(at)):
            return None
        folder = self.home.kept_staging_dir(source.name)
        try:
            staged, reusable = (read_table(folder / f"{name}{FRAME_SUFFIX}") for name in ("staged", "reusable"))
            _of_source(folder / f"staged{FRAME_SUFFIX}", source.name, staged.column("source").unique().to_pylist())
        except (OSError, ValueError) as e:
            # (said once: staging again after reuse found it unreadable reads it here too)
            logger.log(logging.DEBUG if source.name in self._unreadable else unreadable_level(e),
                       "source %s: the kept staging in %s cannot be read (%s); staging every row", source.name, folder, e)
            return None
        valid_until = kept["valid_until"]
        return KnownRows(staged, reusable, None if valid_until is None else pd.Timestamp(valid_until))

    def keep(self, source: SourceConfig, lineage: Lineage, result: StageResult) -> None:
        """Keep ``result``, the staging of the extract ``lineage`` describes, in place of the one kept before.

        Keeping only spares the next run work: if it cannot be written (a full disk, a folder that is not
        writable) that is logged, nothing half-written is left, and the next run stages again."""
        try:
            self._write(source, lineage, result)
        except OSError as e:
            logger.warning("source %s: its staging cannot be kept in %s (%s); the next run stages it again",
                           source.name, self.home.kept_staging_dir(source.name), e)

    def _write(self, source: SourceConfig, lineage: Lineage, result: StageResult) -> None:
        with replacing_folder(self.home.kept_staging_dir(source.name)) as fresh:
            frames = {"staged": result.staged, "quarantine": result.quarantine, "unmapped_values": result.unmapped_values,
                      "reusable": result.reusable}
            for name, frame in frames.items():
                write_frame(frame, fresh / f"{name}{FRAME_SUFFIX}")
            kept = {
                "fingerprint": _fingerprint(source),
                "lineage": lineage.as_metadata(),
                "soft_problems": dict(result.soft_problems),
                "valid_until": None if result.valid_until is None else result.valid_until.isoformat(),
            }
            (fresh / _KEPT).write_text(json.dumps(kept, ensure_ascii=False), encoding="utf-8")

    def outcomes(self, lineage: Lineage) -> dict[str, dict]:
        """The expectation outcomes (JSON-able) kept for the staging of the extract ``lineage`` describes, by
        :func:`quality.expectations.expectation_key` (empty if none are kept for it). A new staging is kept
        in a new folder, so outcomes beside the staging of the same content are outcomes on it."""
        path = self.home.kept_staging_dir(lineage.source) / _OUTCOMES
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            return dict(stored["outcomes"]) if stored.get("content_hash") == lineage.content_hash else {}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError, KeyError) as e:
            logger.warning("source %s: %s cannot be read (%s); validating in full", lineage.source, path, e)
            return {}

    def keep_outcomes(self, lineage: Lineage, outcomes: dict[str, dict]) -> None:
        """Keep expectation outcomes (JSON-able, by key) evaluated on the staging of the extract ``lineage``
        describes, for the next run that reuses it."""
        folder = self.home.kept_staging_dir(lineage.source)
        if not folder.is_dir():
            return
        tmp = folder / f".{_OUTCOMES}.tmp"
        try:
            tmp.write_text(json.dumps({"content_hash": lineage.content_hash, "outcomes": outcomes}, ensure_ascii=False,
                                      default=str), encoding="utf-8")
            tmp.replace(folder / _OUTCOMES)
        except OSError as e:  # the next run validates in full
            logger.warning("source %s: expectation outcomes cannot be kept in %s (%s)", lineage.source, folder, e)

    def _kept(self, source: SourceConfig) -> dict | None:
        path = self.home.kept_staging_dir(source.name) / _KEPT
        try:
            kept = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            logger.warning("source %s: %s cannot be read (%s); staging again", source.name, path, e)
            return None
        return kept if kept.get("fingerprint") == _fingerprint(source) else None


def _fingerprint(source: SourceConfig) -> str:
    """What staging ``source`` depends on besides its bytes: its declaration, the code and word lists of
    the connectors and staging."""
    declaration = source.model_dump_json(exclude={"owner", "trust", "base", "department"})
    return hashlib.sha256(f"{declaration}|{_code_digest()}".encode()).hexdigest()


@functools.cache
def _code_digest() -> str:
    digest = hashlib.sha256()
    for place in _CODE:
        for path in sorted(place.rglob("*.py")) if place.is_dir() else [place]:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    for library in _LIBRARIES:
        try:
            digest.update(f"{library}={importlib.metadata.version(library)}".encode())
        except importlib.metadata.PackageNotFoundError:
            digest.update(f"{library}=none".encode())
    return digest.hexdigest()


def _holds(kept: dict, at: pd.Timestamp) -> bool:
    """Whether a kept staging gives what staging again at ``at`` would: not before it was staged (an earlier
    day could judge a date differently), and before its ``valid_until``."""
    staged_at = pd.Timestamp(kept["lineage"]["extracted_at"])
    valid_until = kept["valid_until"]
    return staged_at <= at and (valid_until is None or at < pd.Timestamp(valid_until))


def _of_source(path: Path, source: str, values) -> None:
    """Refuse a kept frame holding another source's records: its digest holds for its bytes wherever it lies, so a file
    copied or moved from another source's folder, digest and all, would be read as this source's (seen in an audit:
    census's and health's kept stagings swapped failed every night's conservation check, with no hint why)."""
    others = sorted({str(v) for v in values if isinstance(v, str)} - {source})
    if others:
        raise ValueError(f"{path} holds records of {', '.join(repr(o) for o in others[:3])}, not of {source!r}: a file "
                         "copied or moved from another source's kept staging")
