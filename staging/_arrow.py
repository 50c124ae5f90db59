"""Bridges between pandas Series and Arrow arrays, shared by the normalisers.

The normalisers do their string work with Arrow compute kernels (C++, vectorised) and run the few
unavoidable Python-level calls (OpenCC, pypinyin) once per distinct value. These helpers keep that
plumbing in one place so each normaliser reads as the rule it implements.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# A strided sample of this many values decides whether a column is worth de-duplicating.
_SAMPLE_SIZE = 10_000
_MOSTLY_DISTINCT = 0.9

# Separators (Z*), control characters (Cc: tabs, newlines) and invisible format characters (Cf:
# zero-width spaces, BOMs) never belong inside a name, an ID, a phone number or an address. RE2
# syntax, since this runs in Arrow (RE2's ``\s`` is ASCII-only, unlike Python's).
WHITESPACE = r"[\p{Z}\p{Cc}\p{Cf}]+"

STRING = pd.StringDtype("pyarrow")
"""The pandas dtype every normalised text column has ("string": Arrow-backed, missing is ``pd.NA``)."""


def as_arrow(values: pd.Series) -> pa.Array:
    """Return ``values`` as one Arrow string array (missing values as nulls), without copying if possible."""
    if not (isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow"):
        # Object columns from connectors hold str or None; ``astype`` also turns a stray int into
        # text rather than failing, which is what "every value is a string" promises downstream.
        values = values.astype(STRING)
    array = pa.array(values.array)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array


def to_series(array: pa.Array, index: pd.Index) -> pd.Series:
    """Wrap an Arrow string array as a pandas ``string`` Series on ``index``."""
    if not pa.types.is_large_string(array.type):
        array = array.cast(pa.large_string())
    return pd.Series(pd.arrays.ArrowStringArray(array), index=index, copy=False)


def clean_arrow(array: pa.Array) -> pa.Array:
    """NFKC, then no spaces at all; an empty result becomes null (``staging.clean_text`` on Arrow)."""
    normalized = pc.utf8_normalize(array, form="NFKC")
    # ASCII letters and digits alone (most IDs and phone numbers) have nothing to remove.
    needs_cleaning = pc.invert(pc.ascii_is_alnum(normalized))
    return empty_to_null(replace_where(normalized, needs_cleaning, WHITESPACE, ""))


def empty_to_null(array: pa.Array) -> pa.Array:
    """Turn empty strings into nulls: an empty cell means "not stated", never a value."""
    return pc.if_else(pc.equal(pc.utf8_length(array), 0), pa.scalar(None, array.type), array)


def distinct(array: pa.Array, *, skip_if_mostly_distinct: bool = False) -> tuple[pa.Array, pa.Array | None]:
    """Return the distinct values of ``array`` and each row's position among them.

    With ``skip_if_mostly_distinct``, a column whose values are nearly all different (ID numbers,
    phone numbers) is returned as is, with ``None`` for the positions: hashing it would cost more
    than a vectorised transform saves. A strided sample decides, so the check costs next to
    nothing. Never skip for Python-level work: the sample undercounts the repeats of a heavy
    tail (rare names), and a Python call per row costs far more than the hashing.
    """
    if skip_if_mostly_distinct and len(array) >= _SAMPLE_SIZE:
        sample = pc.take(array, pa.array(np.linspace(0, len(array) - 1, _SAMPLE_SIZE).astype(np.int64)))
        if pc.count_distinct(sample, mode="all").as_py() > _MOSTLY_DISTINCT * _SAMPLE_SIZE:
            return array, None
    encoded = pc.dictionary_encode(array)
    return encoded.dictionary, encoded.indices


def spread(values: pa.Array, positions: pa.Array | None) -> pa.Array:
    """Undo :func:`distinct`: one value per original row (rows that were null stay null)."""
    return values if positions is None else pc.take(values, positions)


def on_unique(array: pa.Array, transform: Callable[[pa.Array], pa.Array], *, arrow_only: bool = False) -> pa.Array:
    """Apply ``transform`` to the distinct values of ``array`` and map the result back.

    Names, addresses and dates repeat a lot; transforming each distinct value once is what keeps
    a million-row column fast. Pass ``arrow_only=True`` when ``transform`` is made of Arrow
    kernels alone, so a column of nearly all-distinct values skips the hashing (see
    :func:`distinct`).
    """
    values, positions = distinct(array, skip_if_mostly_distinct=arrow_only)
    return spread(transform(values), positions)


def replace_where(array: pa.Array, needed: pa.Array, pattern: str, replacement: str) -> pa.Array:
    """Regex-replace only in the values flagged ``needed``: a regex pass costs the same per value
    whether or not it changes anything, and most values (IDs, phones) are already clean."""
    needed = pc.fill_null(needed, False)
    if not pc.any(needed).as_py():
        return array
    replaced = pc.replace_substring_regex(pc.filter(array, needed), pattern=pattern, replacement=replacement)
    return pc.replace_with_mask(array, needed, replaced.cast(array.type))


def python_on_unique(array: pa.Array, function: Callable[[Sequence[str]], Sequence[str | None]]) -> pa.Array:
    """Like :func:`on_unique`, for a Python-level ``function`` taking and returning a list of strings."""

    def transform(dictionary: pa.Array) -> pa.Array:
        return pa.array(function(dictionary.to_pylist()), type=pa.large_string())

    return on_unique(array, transform)


def bool_series(values: pa.Array | np.ndarray, index: pd.Index) -> pd.Series:
    """Wrap booleans (Arrow nulls become ``pd.NA``) as a pandas nullable ``boolean`` Series."""
    if isinstance(values, np.ndarray):
        data, mask = values.astype(bool), np.zeros(len(values), dtype=bool)
    else:
        data = pc.fill_null(values, False).to_numpy(zero_copy_only=False)
        mask = pc.is_null(values).to_numpy(zero_copy_only=False)
    return pd.Series(pd.arrays.BooleanArray(data, mask), index=index, copy=False)
