"""Helpers the readers share: values to text, text frames, frame hashing, declared-column checks.

Private to the ``connectors`` package. The contract they implement (architecture, "Source
declarations"): every value a connector returns is a Python ``str`` or ``None``; staging owns all
typing.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from connectors.config import SourceConfig
from core.errors import SourceError

__all__ = ["cell_text", "clean_name", "frame_sha256", "require_columns", "text_frame"]

# Delimiters CSV exports use, most common first.
_DELIMITERS = (",", ";", "\t", "|")


def cell_text(value: Any) -> str | None:
    """One value as the text staging receives.

    Integral numbers lose any ``.0``; dates become ``YYYY-MM-DD`` and datetimes
    ``YYYY-MM-DD HH:MM:SS`` unless their time is midnight; empty text and nulls become ``None``.
    """
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, np.generic):
        return cell_text(value.item())
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, Decimal):
        if value.is_nan():
            return None
        if value == value.to_integral_value():
            return str(int(value))
        # normalize() drops trailing zeros so NUMERIC 12.50 reads like the float 12.5; 'f' avoids 1E-7.
        return format(value.normalize(), "f")
    if isinstance(value, dt.datetime):
        if value.tzinfo is None and value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode("utf-8") or None
        except UnicodeDecodeError:
            return raw.hex()
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _text_array(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    array = np.fromiter(values, dtype=object, count=len(values))
    kind = pd.api.types.infer_dtype(array, skipna=True)
    if kind == "empty":
        array[:] = None
    elif kind == "string":
        # The common case (CSV, text columns): vectorised, no per-value Python call.
        array[pd.isna(array) | (array == "")] = None
    elif kind == "integer":
        # Whole-number columns (keys, ages, codes) are common in SQL sources; str() is all they need.
        missing = pd.isna(array)
        text = np.empty(len(array), dtype=object)
        text[~missing] = list(map(str, array[~missing]))
        array = text
    else:
        array = np.fromiter((cell_text(v) for v in array), dtype=object, count=len(array))
    return array


def clean_name(name: Any) -> str:
    """A column name without surrounding whitespace or a stray byte-order mark."""
    return str(name).strip().strip("\ufeff").strip()


def text_frame(names: Sequence[Any], columns: Iterable[Sequence[Any] | np.ndarray]) -> pd.DataFrame:
    """A frame of ``object`` columns holding only ``str`` or ``None``.

    Args:
        names: column names, cleaned with :func:`clean_name`.
        columns: one sequence of raw values per name, all of the same length.
    """
    cleaned = [clean_name(n) for n in names]
    arrays = [_text_array(c) for c in columns]
    # Build from positions, not a dict, so duplicate names in a source cannot silently collapse.
    frame = pd.DataFrame({i: pd.Series(a, dtype=object) for i, a in enumerate(arrays)}) if arrays else pd.DataFrame()
    frame.columns = pd.Index(cleaned, dtype=object)
    return frame


def frame_sha256(frame: pd.DataFrame) -> str:
    """sha256 hex of a deterministic serialisation of a text frame (names, then values by column).

    Nulls are written as NUL, values separated by the ASCII unit separator and columns by the
    group separator, so the digest changes when any name, value, null or row order changes.
    """
    digest = hashlib.sha256()
    digest.update(f"{len(frame)} rows\x1d".encode())
    for position, name in enumerate(frame.columns):
        values = frame.iloc[:, position].to_numpy(dtype=object)
        filled = np.where(pd.isna(values), "\x00", values).tolist()
        digest.update(str(name).encode("utf-8", "surrogatepass") + b"\x1e")
        digest.update("\x1f".join(filled).encode("utf-8", "surrogatepass") + b"\x1d")
    return digest.hexdigest()


def require_columns(cfg: SourceConfig, location: str, available: Iterable[str], what: str) -> None:
    """Fail unless every column the declaration names exists in the source.

    Args:
        cfg: the source declaration (``columns`` values, ``primary_key`` and ``watermark``).
        location: the file, or the URL (password hidden) and table, for the message.
        available: the column names the source actually has.
        what: how to call the place being read, e.g. ``"file"`` or ``"table mz_resident"``.

    Raises:
        SourceError: naming each missing column, the columns that exist and the fix.
    """
    present = [clean_name(c) for c in available]
    present_set = set(present)
    wanted = [(f"columns.{field}", column) for field, column in cfg.columns.items()]
    wanted += [("primary_key", column) for column in cfg.primary_key]
    wanted += [("watermark", cfg.watermark)] if cfg.watermark else []
    missing = [(key, column) for key, column in wanted if clean_name(column) not in present_set]
    if not missing:
        return
    separator = _other_delimiter(cfg, present)
    if separator is not None:
        raise SourceError(
            cfg.name,
            location,
            f"the header reads as one column {present[0]!r}: the file is delimited by {separator!r}, "
            f"not by {cfg.delimiter!r}",
            f"set delimiter: {separator!r} for this source in sources.yaml",
        )
    parts = []
    for key, column in missing:
        close = difflib.get_close_matches(column, present, n=1)
        parts.append(f"{key} names column {column!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    keys = ", ".join(dict.fromkeys(key for key, _ in missing))
    raise SourceError(
        cfg.name,
        location,
        f"the {what} has no such column: {'; '.join(parts)}. Columns found: {', '.join(present) or '(none)'}",
        f"correct {keys} in sources.yaml, or ask the department for the column",
    )


def _other_delimiter(cfg: SourceConfig, header: list[str]) -> str | None:
    """The delimiter a CSV really uses when its whole header reads as one column holding another one."""
    if cfg.kind != "csv" or len(header) != 1:
        return None
    return next((d for d in _DELIMITERS if d != cfg.delimiter and d in header[0]), None)
