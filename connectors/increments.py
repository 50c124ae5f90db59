"""Database tables read by a watermark: only rows changed since the last read cross the network.

A ``sql`` source with a ``table`` and a ``watermark`` column (the column the department's system sets
on every insert and update, e.g. ``gxsj`` or ``updated_at``) is read whole once; its rows are kept under
the data home with the highest watermark seen. Each later read asks the database for

- the rows whose watermark is at or past the kept one (new and changed rows), and
- every primary key, in key order (a key scan: a row deleted from the table is gone from it, and a
  row inserted with an old watermark, as a backdated or late-committed row is, shows up in it);

and merges them into the kept rows: scanned keys only, in the order a whole read returns them, a
changed row in place of its kept one, a row the scan found but neither read holds fetched by key.
The result is the frame a whole read would give (same rows, order and content hash) except for a
row changed without its watermark moving, which no incremental read can see: the table is read
whole again every :data:`FULL_READ_DAYS` days, and ``silobreaker run --full`` reads it whole now. A
table without a row at or past the kept watermark (restored from a backup, loaded again with older
stamps, or its last-changed row deleted) is read whole at once, as is one with a row without its key or a key
it holds twice (a key sources.yaml declares but the database does not enforce).

Each read asks for rows from :data:`LOOKBACK` before the kept watermark (a row stamped before the last
read but committed after it), and only values that cannot hide later changes become the watermark
(:func:`_trusted`: not after tomorrow; in a text column, year-first date-times of one shape). Each read
fetches :data:`CHECKED_ROWS` kept rows again and compares them: one that differs (a table restored from
a backup, replaced, changed in bulk without stamps) reads the table whole. A restore of a few rows may
escape that sample: ``silobreaker run --full`` after a restore (docs/operations.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from connectors._frames import clean_name, text_frame
from connectors.config import SourceConfig
from core.folders import replacing_folder
from core.frames import FRAME_SUFFIX, read_frame, unreadable_level, write_frame
from core.home import DataHome, HomeLike

__all__ = ["FULL_READ_DAYS", "KeptRows", "read_changes"]

logger = logging.getLogger(__name__)

FULL_READ_DAYS = 7
"""Days after which a watermark source is read whole again, catching a row changed without its watermark."""

_KEPT = "kept.json"
_ROWS = f"rows{FRAME_SUFFIX}"  # (before 2026-12-06 parquet: not found, the table is read whole once)
_FETCH_BATCH = 1_000
_KEY_SEPARATOR = "\x1f"


@dataclass(frozen=True)
class KeptRows:
    """The rows of a watermark source as last read, the highest watermark among them, when it was last read whole."""

    frame: pd.DataFrame
    watermark: Any
    full_read_at: dt.datetime

    @staticmethod
    def load(home: HomeLike, source: SourceConfig, now: dt.datetime) -> KeptRows | None:
        """The kept rows of ``source`` if they were read under its present declaration and its last whole read
        is less than :data:`FULL_READ_DAYS` old; ``None`` means: read the table whole."""
        folder = DataHome.at(home).kept_extract_dir(source.name)
        try:
            kept = json.loads((folder / _KEPT).read_text(encoding="utf-8"))
            if kept["declaration"] != _declaration(source):
                return None
            full_read_at = dt.datetime.fromisoformat(kept["full_read_at"])
            if now - full_read_at >= dt.timedelta(days=FULL_READ_DAYS):
                logger.info("source %s: last read whole %s; reading it whole again", source.name, full_read_at)
                return None
            watermark = _watermark_from_json(kept["watermark"])
            if watermark is not None and not _trusted([watermark], watermark, now):
                raise ValueError(f"the kept watermark {watermark!r} is not one a read can start from")
            frame = read_frame(folder / _ROWS)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            logger.log(unreadable_level(e), "source %s: the rows kept in %s cannot be read (%s); reading the table "
                       "whole", source.name, folder, e)
            return None
        # Read back as pandas' Arrow strings; a connector's frame holds Python objects, None where missing.
        frame = frame.astype(object).where(frame.notna(), None)
        return KeptRows(frame, watermark, full_read_at)

    def keep(self, home: HomeLike, source: SourceConfig) -> None:
        """Keep these rows for the next read of ``source``, replacing those kept before as a whole."""
        with replacing_folder(DataHome.at(home).kept_extract_dir(source.name)) as fresh:
            write_frame(self.frame, fresh / _ROWS)
            kept = {"declaration": _declaration(source), "watermark": _watermark_to_json(self.watermark),
                    "full_read_at": self.full_read_at.isoformat()}
            (fresh / _KEPT).write_text(json.dumps(kept, ensure_ascii=False), encoding="utf-8")


def read_changes(
    source: SourceConfig, conn: sa.Connection, table: sa.Table, kept: KeptRows, read_result, now: dt.datetime
) -> tuple[pd.DataFrame, Any] | None:
    """The table as a whole read would give it, from ``kept`` and what changed since; and the new watermark.
    ``None`` when the table's columns are no longer those of the kept rows: it must be read whole.

    ``read_result(conn, statement)`` runs a statement and returns ``(names, columns)`` of Python values."""
    if [c.name for c in table.columns] != list(kept.frame.columns):
        logger.info("source %s: the table's columns changed since the last read; reading it whole", source.name)
        return None
    by_clean = {clean_name(c.name): c for c in table.columns}
    keys = [by_clean[clean_name(k)] for k in source.primary_key]
    mark = by_clean[clean_name(source.watermark)]
    if not _same_kind(kept.watermark, mark):
        logger.info("source %s: the type of %s changed since the last read (now %s); reading the table whole",
                    source.name, mark.name, mark.type)
        return None
    # From a while before the kept watermark: a row stamped before it but committed after the last read (a long
    # transaction) is fetched too; and a date-precision watermark is shared by rows changed later that day.
    since = _before(kept.watermark, LOOKBACK)
    names, columns = read_result(conn, sa.select(table).where(mark >= since).order_by(*keys))
    marks = columns[names.index(mark.name)] if columns else []
    if not any(m is not None and m >= kept.watermark for m in marks):
        # Not even the row that held the kept watermark: it was deleted, or the table went back in time (restored
        # from a backup, loaded again with older stamps), and kept rows could stand in for rows that differ now.
        logger.info("source %s: no row at or past the kept watermark %s; reading the table whole",
                    source.name, kept.watermark)
        return None
    watermark = _highest(kept.watermark, marks, now)
    changed = text_frame(names, columns)
    _, key_columns = read_result(conn, sa.select(*keys).order_by(*keys))
    if any(v is None for column in key_columns for v in column):
        # A row without its key cannot be fetched by it; a whole read has it (and staging quarantines it).
        logger.warning("source %s: rows without a primary key; reading the table whole", source.name)
        return None
    scanned_native = list(zip(*key_columns, strict=True)) if key_columns else []
    scanned = _key_text(text_frame([k.name for k in keys], key_columns), keys)

    kept_keys = _key_text(kept.frame, keys)
    kept_at = pd.Index(kept_keys)
    if not (pd.Index(scanned).is_unique and kept_at.is_unique):
        # The declared key is not one the database enforces: rows under one key cannot be merged by it; a whole
        # read has them all (and staging quarantines the repeats, duplicate_source_key).
        logger.warning("source %s: a primary key (%s) the table holds more than once; reading it whole",
                       source.name, ", ".join(k.name for k in keys))
        return None
    changed_keys = _key_text(changed, keys)
    in_kept = kept_at.get_indexer(scanned)  # each scanned key's kept row, or -1 (one hash lookup per key)
    differ = _kept_rows_that_differ(conn, table, keys, kept.frame, kept_at, in_kept, scanned, scanned_native,
                                    changed_keys, read_result)
    if differ:
        logger.warning("source %s: %d of the rows checked again differ from what was kept although their %s did not "
                       "move (a database restored from a backup, or changed in bulk without stamps); reading the "
                       "table whole", source.name, differ, mark.name)
        return None
    rows = pd.concat([kept.frame, changed], ignore_index=True)
    rows.index = pd.Index(pd.concat([kept_keys, changed_keys], ignore_index=True))
    rows = rows[~rows.index.duplicated(keep="last")]  # a changed row replaces its kept one
    # Positions by one hash lookup per key (a million-row table: well under a second; key by key, seconds).
    at = rows.index.get_indexer(scanned)
    missing = [scanned_native[i] for i in np.flatnonzero(at < 0)]
    if missing:
        found_names, found_columns = _fetch(conn, table, keys, missing, read_result)
        watermark = _highest(watermark, found_columns[found_names.index(mark.name)], now)
        found = text_frame(found_names, found_columns)
        rows = pd.concat([rows, found.set_index(_key_text(found, keys))])
        at = rows.index.get_indexer(scanned)
    # A key deleted between the scan and the fetch is in neither: it is not a row of the table any more.
    at = at[at >= 0]
    deleted = len(kept.frame) - int((in_kept >= 0).sum())  # (keys are unique on both sides)
    frame = rows.iloc[at].reset_index(drop=True)[names]
    logger.info("source %s: %d rows changed since watermark %s, %d found by the key scan, %d deleted; %d rows",
                source.name, len(changed), kept.watermark, len(missing), deleted, len(frame))
    return frame, watermark


def _same_kind(watermark: Any, column: sa.Column) -> bool:
    """Whether the kept ``watermark`` is a value of ``column``'s type as the database now declares it."""
    try:
        kind = column.type.python_type
    except NotImplementedError:  # a type SQLAlchemy has no Python type for: compared as it is
        return True
    return isinstance(watermark, kind) or (kind is float and isinstance(watermark, int | Decimal))


def _kept_rows_that_differ(conn, table: sa.Table, keys: list[sa.Column], kept: pd.DataFrame, kept_at: pd.Index,
                           in_kept: np.ndarray, scanned: pd.Series, scanned_native: list[tuple], changed_keys: pd.Series,
                           read_result) -> int:
    """How many of up to :data:`CHECKED_ROWS` kept rows, drawn at random among those the read did not fetch as
    changed, the database now holds otherwise: a row changed without its watermark moving. One in a whole table
    replaced or restored from a backup is all but certain to be among them."""
    pool = np.flatnonzero((in_kept >= 0) & (pd.Index(changed_keys).get_indexer(scanned) < 0))
    if not len(pool) or not CHECKED_ROWS:
        return 0
    picked = np.random.default_rng().choice(pool, size=min(CHECKED_ROWS, len(pool)), replace=False)
    names, columns = _fetch(conn, table, keys, [scanned_native[i] for i in picked], read_result)
    if names is None:
        return 0
    now = text_frame(names, columns)
    before = kept.iloc[kept_at.get_indexer(_key_text(now, keys))][names].reset_index(drop=True)
    return int((now.fillna("\0") != before.fillna("\0")).any(axis=1).sum())


#: Kept rows fetched again on each read and compared, to notice a table changed without its watermark moving.
CHECKED_ROWS = 1_000


def highest_watermark(names: list[str], columns: list[list], source: SourceConfig, table: sa.Table,
                      now: dt.datetime) -> Any:
    """The highest watermark among the rows of a whole read that can bound the next read (:func:`_trusted`;
    ``None`` for an empty table, or one without such a value: it is then read whole each time)."""
    mark = next(c for c in table.columns if clean_name(c.name) == clean_name(source.watermark))
    return _highest(None, columns[names.index(mark.name)], now)


def _fetch(conn, table: sa.Table, keys: list[sa.Column], missing: list[tuple], read_result):
    names, columns = None, None
    for start in range(0, len(missing), _FETCH_BATCH):
        batch = missing[start:start + _FETCH_BATCH]
        where = keys[0].in_([k[0] for k in batch]) if len(keys) == 1 else sa.tuple_(*keys).in_(batch)
        part_names, part_columns = read_result(conn, sa.select(table).where(where))
        if names is None:
            names, columns = part_names, part_columns
        else:
            for position, values in enumerate(part_columns):
                columns[position].extend(values)
    return names, columns


def _key_text(frame: pd.DataFrame, keys: list[sa.Column]) -> pd.Series:
    """Each row's primary key as one string (its columns' text joined by an invisible separator)."""
    parts = [frame[k.name].fillna("").astype(str) for k in keys]
    joined = parts[0]
    for part in parts[1:]:
        joined = joined + _KEY_SEPARATOR + part
    return joined.reset_index(drop=True)


def _highest(current: Any, values: list, now: dt.datetime) -> Any:
    trusted = _trusted(values, current, now)
    if not trusted:
        return current
    top = max(trusted)
    return top if current is None or top > current else current


def _trusted(values: list, like: Any, now: dt.datetime) -> list:
    """The ``values`` that may bound the next read from below. One value too high would hide every later change
    (each read asks only for rows at or past it), so left out are: missing values; times after tomorrow (a
    mistyped year; a day covers any time zone); and in a text column, which the database compares as text,
    values not written year first or not in the shape of ``like`` (the kept watermark; without one, the
    commonest shape): ``'20261205'`` sorts after every ``'2026-12-05 10:00:00'``."""
    present = [v for v in values if v is not None]
    if not present:
        return []
    tomorrow = now + dt.timedelta(days=1)
    if isinstance(present[0], str):
        # (Arrow's string kernels: a 613k-row table's stamps in a fraction of a second, not seconds.)
        text = pa.array(present, type=pa.large_string())
        shapes = pc.replace_substring_regex(text, _DIGIT.pattern, "9")
        if isinstance(like, str):
            shape = _shape(like)
        else:
            counts = pc.value_counts(shapes)
            shape = counts.field("values")[pc.index(counts.field("counts"), pc.max(counts.field("counts"))).as_py()].as_py()
        usable = pc.and_(pc.and_(pc.equal(shapes, shape), pc.match_substring_regex(text, f"^(?:{_YEAR_FIRST.pattern})$")),
                         pc.less_equal(_stamp_numbers(text), int(tomorrow.strftime("%Y%m%d%H%M%S"))))
        return text.filter(usable).to_pylist()
    if isinstance(present[0], dt.datetime):
        return [v for v in present if v <= (tomorrow if v.tzinfo else tomorrow.replace(tzinfo=None))]
    if isinstance(present[0], dt.date):
        return [v for v in present if v <= tomorrow.date()]
    return present


def _before(watermark: Any, span: dt.timedelta) -> Any:
    """``watermark`` moved ``span`` earlier where it is a time (a date by a whole day; year-first text in its own
    shape); a number as it is."""
    if isinstance(watermark, dt.datetime):
        return watermark - span
    if isinstance(watermark, dt.date):
        return watermark - dt.timedelta(days=max(1, span.days))
    if isinstance(watermark, str) and _YEAR_FIRST.fullmatch(watermark):
        digits = f"{_stamp_numbers(pa.array([watermark]))[0].as_py():014d}"
        earlier = (dt.datetime.strptime(digits, "%Y%m%d%H%M%S") - span).strftime("%Y%m%d%H%M%S")
        filled = iter(earlier + "0" * len(watermark))
        return "".join(next(filled) if c.isdigit() else c for c in watermark)
    return watermark


#: Each read asks for rows from this long before the kept watermark, so that a row stamped before the last read
#: but committed after it (a long transaction, a slow batch import) is not missed.
LOOKBACK = dt.timedelta(hours=1)

# A date-time written year first: 2026-12-05, 2026-12-05 10:23:45, 2026/12/05T10:23, 20261205102345.123
_YEAR_FIRST = re.compile(r"\d{4}(?:\D?\d{2}){2}(?:\D?\d{2}){0,3}(?:\.\d+)?")
_DIGIT = re.compile(r"\d")


def _shape(value: str) -> str:
    return _DIGIT.sub("9", value)


def _stamp_numbers(text: pa.Array) -> pa.Array:
    """Year-first date-times as numbers YYYYMMDDHHMMSS (missing parts 0): in time order whatever their separators."""
    digits = pc.replace_substring_regex(pc.replace_substring_regex(text, r"\..*$", ""), r"\D", "")
    return pc.cast(pc.utf8_slice_codeunits(pc.utf8_rpad(digits, 14, "0"), 0, 14), pa.int64())


def _declaration(source: SourceConfig) -> str:
    """What the kept rows depend on: where the table is, its key and watermark columns."""
    # (2: kept watermarks are trusted values only, connectors.increments._trusted)
    text = json.dumps([2, source.url, source.table, source.primary_key, source.watermark], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _watermark_to_json(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return {"type": "datetime", "value": value.isoformat()}
    if isinstance(value, dt.date):
        return {"type": "date", "value": value.isoformat()}
    if isinstance(value, Decimal):
        return {"type": "decimal", "value": str(value)}
    if isinstance(value, bool | int | float | str):
        return {"type": type(value).__name__, "value": value}
    raise TypeError(f"a watermark of type {type(value).__name__} cannot be kept; declare a date, time or number column")


def _watermark_from_json(kept: dict[str, Any] | None) -> Any:
    if kept is None:
        return None
    kind, value = kept["type"], kept["value"]
    return {"datetime": dt.datetime.fromisoformat, "date": dt.date.fromisoformat, "decimal": Decimal}.get(
        kind, lambda v: v)(value)
