"""Compare candidate pairs field by field, vectorised over a whole batch of pairs.

Each declared comparison in :mod:`dedup.settings` has one executor here that returns, per pair, the
code of the level reached (its position in the comparison's ``labels``; 0 is ``null``). String
similarity runs in rapidfuzz's C++ batch API (``process.cpdist``), never in DuckDB: DuckDB's string
functions count UTF-8 bytes, so ``levenshtein('张伟', '张玮')`` is 3 there and 1 here. ID numbers are
compared on a digit matrix, birth dates on integer year/month/day columns.

Example:
    >>> from dedup.prepare import prepare_records
    >>> arrays = RecordArrays.from_prepared(prepare_records(records))       # doctest: +SKIP
    >>> levels = compare_pairs(arrays, rid_l, rid_r, settings.comparisons)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from rapidfuzz import process
from rapidfuzz.distance import Indel, Levenshtein

from dedup.prepare import TEXT
from dedup.settings import (
    AddressComparison,
    BirthDateComparison,
    Comparison,
    IdNumberComparison,
    NameComparison,
    PhoneComparison,
    SexComparison,
)

__all__ = ["CodedStrings", "RecordArrays", "compare_pairs", "level_labels"]

_ID_LENGTH = 18


@dataclass(frozen=True)
class CodedStrings:
    """A string column as integer codes into its distinct values (``-1`` for missing).

    Equality is then an integer comparison, and string similarity is computed once per distinct
    pair of values rather than once per pair of records: registers repeat names and addresses.
    """

    codes: np.ndarray
    values: np.ndarray

    @classmethod
    def of(cls, column: pd.Series) -> CodedStrings:
        codes, values = pd.factorize(column, use_na_sentinel=True)
        return cls(codes.astype(np.int32), np.asarray(values, dtype=object))

    def __len__(self) -> int:
        return len(self.codes)


@dataclass(frozen=True)
class RecordArrays:
    """Per-record columns as numpy arrays indexed by ``rid``, built once and gathered per batch of pairs."""

    name: CodedStrings
    pinyin: CodedStrings
    id_digits: np.ndarray
    id_present: np.ndarray
    id_valid: np.ndarray
    birth_year: np.ndarray
    birth_month: np.ndarray
    birth_day: np.ndarray
    birth_precision: np.ndarray
    sex: CodedStrings
    phone: CodedStrings
    address: CodedStrings
    household: CodedStrings
    source: np.ndarray

    @classmethod
    def from_prepared(cls, prepared: pd.DataFrame) -> RecordArrays:
        """Build the arrays from :func:`dedup.prepare.prepare_records` output (``rid`` = row position)."""
        ids = prepared["id_number"]
        id_present = (ids.str.len() == _ID_LENGTH).fillna(False).to_numpy(dtype=bool)
        # 'X' (check value 10) becomes byte 10 so equal IDs have equal rows; absent IDs stay all zero.
        id_text = ids.where(id_present, "0" * _ID_LENGTH).str.upper().str.replace("X", ":", regex=False)
        id_bytes = "".join(id_text.tolist()).encode("ascii")
        id_digits = (np.frombuffer(id_bytes, dtype=np.uint8).reshape(-1, _ID_LENGTH) - ord("0")).astype(np.uint8)
        id_digits[~id_present] = 0

        precision = prepared["birth_precision"].to_numpy(dtype=np.int8)
        birth = _digit_matrix(prepared["birth_date"], 10)
        return cls(
            name=CodedStrings.of(prepared["name"]),
            pinyin=CodedStrings.of(prepared["name_pinyin"]),
            id_digits=id_digits,
            id_present=id_present,
            id_valid=prepared["id_number_valid"].to_numpy(dtype=bool) & id_present,
            birth_year=_number(birth, 0, 4, precision >= 1),
            birth_month=_number(birth, 5, 7, precision >= 2),
            birth_day=_number(birth, 8, 10, precision >= 3),
            birth_precision=precision,
            sex=CodedStrings.of(prepared["sex"]),
            phone=CodedStrings.of(prepared["phone"]),
            address=CodedStrings.of(prepared["address"]),
            household=CodedStrings.of(prepared["household"]),
            source=pd.factorize(prepared["source"], use_na_sentinel=True)[0].astype(np.int32),
        )

    def __len__(self) -> int:
        return len(self.id_present)


def compare_pairs(
    arrays: RecordArrays,
    rid_l: np.ndarray,
    rid_r: np.ndarray,
    comparisons: Sequence[Comparison],
) -> pd.DataFrame:
    """Level code of every comparison for each pair ``(rid_l[i], rid_r[i])``.

    Returns:
        A frame with one int8 column per comparison, named for its field (``id_number``, ``name`` …),
        plus ``ids_both_valid`` and ``same_source`` (bool), which hard rules need.
    """
    rid_l = np.asarray(rid_l, dtype=np.int64)
    rid_r = np.asarray(rid_r, dtype=np.int64)
    columns: dict[str, np.ndarray] = {}
    for comparison in comparisons:
        executor = next((_EXECUTORS[kind] for kind in type(comparison).__mro__ if kind in _EXECUTORS), None)
        if executor is None:
            raise TypeError(
                f"no executor for {type(comparison).__name__}; dedup.compare knows "
                f"{sorted(kind.__name__ for kind in _EXECUTORS)}"
            )
        columns[comparison.field] = executor(comparison, arrays, rid_l, rid_r).astype(np.int8)
    columns["ids_both_valid"] = arrays.id_valid[rid_l] & arrays.id_valid[rid_r]
    source_l = arrays.source[rid_l]
    columns["same_source"] = (source_l >= 0) & (source_l == arrays.source[rid_r])
    return pd.DataFrame(columns)


def level_labels(comparison: Comparison, codes: np.ndarray | pd.Series) -> pd.Series:
    """Level labels (``"exact"``, ``"typo"`` …) for level codes of ``comparison``."""
    labels = np.asarray(comparison.labels, dtype=object)
    return pd.Series(labels[np.asarray(codes, dtype=np.int64)], dtype=TEXT)


def _id_number_levels(_: IdNumberComparison, a: RecordArrays, rid_l: np.ndarray, rid_r: np.ndarray) -> np.ndarray:
    left = a.id_digits[rid_l]
    right = a.id_digits[rid_r]
    differs = left != right
    n_diff = differs.sum(axis=1)
    # A swap of neighbours i, i+1 differs in exactly those two positions with crossed values.
    crossed = (left[:, :-1] == right[:, 1:]) & (left[:, 1:] == right[:, :-1]) & differs[:, :-1] & differs[:, 1:]
    transposed = (n_diff == 2) & crossed.any(axis=1)
    level = np.full(len(rid_l), 3, dtype=np.int8)
    level[(n_diff == 1) | transposed] = 2
    level[n_diff == 0] = 1
    level[~(a.id_present[rid_l] & a.id_present[rid_r])] = 0
    return level


def _name_levels(c: NameComparison, a: RecordArrays, rid_l: np.ndarray, rid_r: np.ndarray) -> np.ndarray:
    name_l, name_r = a.name.codes[rid_l], a.name.codes[rid_r]
    pinyin_l, pinyin_r = a.pinyin.codes[rid_l], a.pinyin.codes[rid_r]
    present = (name_l >= 0) & (name_r >= 0)
    exact = present & (name_l == name_r)
    homophone = present & ~exact & (pinyin_l >= 0) & (pinyin_l == pinyin_r)
    level = np.full(len(rid_l), 4, dtype=np.int8)
    rest = present & ~exact & ~homophone
    similar = _similar(a.name, name_l, name_r, rest, Levenshtein.normalized_similarity, c.similar_threshold)
    rest &= ~similar
    similar |= _similar(a.pinyin, pinyin_l, pinyin_r, rest, Indel.normalized_similarity, c.pinyin_threshold)
    level[similar] = 3
    level[homophone] = 2
    level[exact] = 1
    level[~present] = 0
    return level


def _birth_date_levels(_: BirthDateComparison, a: RecordArrays, rid_l: np.ndarray, rid_r: np.ndarray) -> np.ndarray:
    common = np.minimum(a.birth_precision[rid_l], a.birth_precision[rid_r])
    year_l, year_r = a.birth_year[rid_l], a.birth_year[rid_r]
    month_l, month_r = a.birth_month[rid_l], a.birth_month[rid_r]
    day_l, day_r = a.birth_day[rid_l], a.birth_day[rid_r]
    same_year = year_l == year_r
    same_month = same_year & (month_l == month_r)
    level = np.full(len(rid_l), 5, dtype=np.int8)
    swapped = (common == 3) & same_year & (month_l == day_r) & (day_l == month_r) & (month_l != day_l)
    level[swapped] = 4
    level[(common == 1) & same_year] = 3
    level[(common == 2) & same_month] = 2
    level[(common == 3) & same_month & (day_l == day_r)] = 1
    level[common == 0] = 0
    return level


def _equality_levels(field: str) -> Callable[[Comparison, RecordArrays, np.ndarray, np.ndarray], np.ndarray]:
    def levels(_: Comparison, a: RecordArrays, rid_l: np.ndarray, rid_r: np.ndarray) -> np.ndarray:
        column: CodedStrings = getattr(a, field)
        left, right = column.codes[rid_l], column.codes[rid_r]
        level = np.where(left == right, np.int8(1), np.int8(2))
        level[(left < 0) | (right < 0)] = 0
        return level

    return levels


def _address_levels(c: AddressComparison, a: RecordArrays, rid_l: np.ndarray, rid_r: np.ndarray) -> np.ndarray:
    left, right = a.address.codes[rid_l], a.address.codes[rid_r]
    present = (left >= 0) & (right >= 0)
    exact = present & (left == right)
    flat_l, flat_r = a.household.codes[rid_l], a.household.codes[rid_r]
    household = present & ~exact & (flat_l >= 0) & (flat_l == flat_r)
    rest = present & ~exact & ~household
    similar = _similar(a.address, left, right, rest, Indel.normalized_similarity, c.similar_threshold)
    level = np.full(len(rid_l), 4, dtype=np.int8)
    level[similar] = 3
    level[household] = 2
    level[exact] = 1
    level[~present] = 0
    return level


_EXECUTORS: dict[type[Comparison], Callable[[Comparison, RecordArrays, np.ndarray, np.ndarray], np.ndarray]] = {
    IdNumberComparison: _id_number_levels,
    NameComparison: _name_levels,
    BirthDateComparison: _birth_date_levels,
    SexComparison: _equality_levels("sex"),
    PhoneComparison: _equality_levels("phone"),
    AddressComparison: _address_levels,
}


def _similar(
    column: CodedStrings,
    left: np.ndarray,
    right: np.ndarray,
    mask: np.ndarray,
    scorer: Callable[..., float],
    threshold: float,
) -> np.ndarray:
    """Mask of pairs (among ``mask``) whose values are at least ``threshold`` similar.

    Only the pairs still undecided are scored, each distinct pair of values once, in rapidfuzz's
    batch API on all cores; ``score_cutoff`` lets it stop early on hopeless pairs.
    """
    result = np.zeros(len(left), dtype=bool)
    where = np.flatnonzero(mask)
    if len(where) == 0:
        return result
    n_values = np.int64(len(column.values))
    keys = left[where].astype(np.int64) * n_values + right[where].astype(np.int64)
    distinct, inverse = np.unique(keys, return_inverse=True)
    scores = process.cpdist(
        column.values[distinct // n_values],
        column.values[distinct % n_values],
        scorer=scorer,
        score_cutoff=threshold,
        workers=-1,
        dtype=np.float32,
    )
    result[where] = scores[inverse] >= threshold
    return result


def _digit_matrix(values: pd.Series, width: int) -> np.ndarray:
    """ASCII text as an (n, width) matrix of digit values; missing and short values pad with zeros."""
    text = values.fillna("").to_numpy(dtype=f"U{width}").astype(f"S{width}")
    matrix = np.frombuffer(text.tobytes(), dtype=np.uint8).reshape(len(values), width).astype(np.int16)
    return np.where(matrix >= ord("0"), matrix - ord("0"), 0).astype(np.int16)


def _number(digits: np.ndarray, start: int, stop: int, known: np.ndarray) -> np.ndarray:
    """The decimal number in columns ``start:stop`` of a digit matrix, 0 where ``known`` is false."""
    value = np.zeros(len(digits), dtype=np.int16)
    for column in range(start, stop):
        value = value * 10 + digits[:, column]
    return np.where(known, value, np.int16(0)).astype(np.int16)
