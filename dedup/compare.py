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
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA, Indel, Levenshtein

from dedup.prepare import HAN_CHARACTER, TEXT, sorted_words
from dedup.settings import (
    AddressComparison,
    BirthDateComparison,
    Comparison,
    IdNumberComparison,
    NameComparison,
    PhoneComparison,
    SexComparison,
)

__all__ = ["REENTRY_SHARE", "CodedStrings", "RecordArrays", "compare_pairs", "level_labels"]

_ID_LENGTH = 18

#: A source re-enters people (a register of visits or cases) when at least this share of the ID numbers
#: it holds occur more than once in it; a source below it lists each person once (a census).
REENTRY_SHARE = 0.1


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
    """Per-record columns as numpy arrays indexed by ``rid``, built once and gathered per batch of pairs.

    ``id_present`` covers every identifier, ``id_resident`` those in GB 11643 form (on ``id_digits``);
    ``latin_name`` marks names without Chinese characters, whose words ``sorted_words`` holds in
    alphabetical order; ``address_words`` is the same for addresses without Chinese characters.
    ``source_reenters`` says, per source code, whether the source enters one person again and again
    (a visit register: at least :data:`REENTRY_SHARE` of its ID numbers occur more than once in it)
    rather than listing each person once (an enumeration such as a census).
    """

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
    id_text: CodedStrings
    id_resident: np.ndarray
    latin_name: np.ndarray
    sorted_words: CodedStrings
    address_words: CodedStrings
    source_reenters: np.ndarray

    @classmethod
    def from_prepared(cls, prepared: pd.DataFrame) -> RecordArrays:
        """Build the arrays from :func:`dedup.prepare.prepare_records` output (``rid`` = row position)."""
        ids = prepared["id_number"].str.upper()
        # Resident ID numbers go on a digit matrix; identifiers of another scheme (see
        # :func:`dedup.prepare.generic_identifier`) are compared as strings.
        id_resident = ids.str.fullmatch(r"[0-9]{17}[0-9X]").fillna(False).to_numpy(dtype=bool)
        # 'X' (check value 10) becomes byte 10 so equal IDs have equal rows; absent IDs stay all zero.
        id_text = ids.where(id_resident, "0" * _ID_LENGTH).str.replace("X", ":", regex=False)
        id_bytes = "".join(id_text.tolist()).encode("ascii")
        id_digits = (np.frombuffer(id_bytes, dtype=np.uint8).reshape(-1, _ID_LENGTH) - ord("0")).astype(np.uint8)
        id_digits[~id_resident] = 0
        latin = (~prepared["name"].str.contains(HAN_CHARACTER, regex=True)).fillna(False).to_numpy(dtype=bool)
        # Latin names compare in either word order ("smith john" / "john smith").
        words = sorted_words(prepared["name_pinyin"].where(latin))

        source = pd.factorize(prepared["source"], use_na_sentinel=True)[0].astype(np.int32)
        precision = prepared["birth_precision"].to_numpy(dtype=np.int8)
        birth = _digit_matrix(prepared["birth_date"], 10)
        return cls(
            name=CodedStrings.of(prepared["name"]),
            pinyin=CodedStrings.of(prepared["name_pinyin"]),
            id_digits=id_digits,
            id_present=ids.notna().to_numpy(dtype=bool),
            id_valid=prepared["id_number_valid"].to_numpy(dtype=bool) & id_resident,
            birth_year=_number(birth, 0, 4, precision >= 1),
            birth_month=_number(birth, 5, 7, precision >= 2),
            birth_day=_number(birth, 8, 10, precision >= 3),
            birth_precision=precision,
            sex=CodedStrings.of(prepared["sex"]),
            phone=CodedStrings.of(prepared["phone"]),
            address=CodedStrings.of(prepared["address"]),
            household=CodedStrings.of(prepared["household"]),
            source=source,
            id_text=CodedStrings.of(ids),
            id_resident=id_resident,
            latin_name=latin,
            sorted_words=CodedStrings.of(words),
            address_words=CodedStrings.of(prepared["address_words"]),
            source_reenters=_source_reenters(source, prepared["id_number"]),
        )

    def __len__(self) -> int:
        return len(self.id_present)


def _source_reenters(source: np.ndarray, id_number: pd.Series) -> np.ndarray:
    """Per source code, whether the source holds one person's ID number more than once often enough
    (:data:`REENTRY_SHARE`) to be a register that enters people again. A source without ID numbers
    counts as listing each person once (the stricter reading)."""
    n_sources = int(source.max()) + 1 if len(source) else 0
    result = np.zeros(max(n_sources, 1), dtype=bool)
    frame = pd.DataFrame({"source": source, "id": id_number.to_numpy(dtype=object, na_value=None)})
    frame = frame[(frame["source"] >= 0) & frame["id"].notna()]
    if len(frame):
        repeated = frame.duplicated(["source", "id"], keep=False)
        share = repeated.groupby(frame["source"]).mean()
        result[share.index.to_numpy()] = share.to_numpy() >= REENTRY_SHARE
    return result


def compare_pairs(
    arrays: RecordArrays,
    rid_l: np.ndarray,
    rid_r: np.ndarray,
    comparisons: Sequence[Comparison],
) -> pd.DataFrame:
    """Level code of every comparison for each pair ``(rid_l[i], rid_r[i])``.

    Returns:
        A frame with one int8 column per comparison, named for its field (``id_number``, ``name`` …),
        plus ``ids_both_valid``, ``same_source`` and ``source_reenters`` (both records from one source that
        re-enters people, see :attr:`RecordArrays.source_reenters`) (bool), which hard rules need.
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
    columns["source_reenters"] = columns["same_source"] & arrays.source_reenters[np.maximum(source_l, 0)]
    return pd.DataFrame(columns)


def level_labels(comparison: Comparison, codes: np.ndarray | pd.Series) -> pd.Series:
    """Level labels (``"exact"``, ``"typo"`` …) for level codes of ``comparison``."""
    labels = np.asarray(comparison.labels, dtype=object)
    return pd.Series(labels[np.asarray(codes, dtype=np.int64)], dtype=TEXT)


def _id_number_levels(_: IdNumberComparison, a: RecordArrays, rid_l: np.ndarray, rid_r: np.ndarray) -> np.ndarray:
    """Resident IDs on the digit matrix; any other identifier as a string: equal, or one edit or
    adjacent transposition away (optimal string alignment distance 1), else different."""
    level = _resident_id_levels(a, rid_l, rid_r)
    generic = a.id_present[rid_l] & a.id_present[rid_r] & ~(a.id_resident[rid_l] & a.id_resident[rid_r])
    if generic.any():
        left, right = a.id_text.codes[rid_l], a.id_text.codes[rid_r]
        exact = generic & (left == right)
        typo = np.zeros(len(rid_l), dtype=bool)
        rest = generic & ~exact
        typo[rest] = _distinct_pair_scores(a.id_text, left, right, rest, OSA.distance, 1) <= 1
        level[generic] = 3
        level[typo] = 2
        level[exact] = 1
    return level


def _resident_id_levels(a: RecordArrays, rid_l: np.ndarray, rid_r: np.ndarray) -> np.ndarray:
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
    level[~(a.id_resident[rid_l] & a.id_resident[rid_r])] = 0
    return level


def _name_levels(c: NameComparison, a: RecordArrays, rid_l: np.ndarray, rid_r: np.ndarray) -> np.ndarray:
    name_l, name_r = a.name.codes[rid_l], a.name.codes[rid_r]
    pinyin_l, pinyin_r = a.pinyin.codes[rid_l], a.pinyin.codes[rid_r]
    present = (name_l >= 0) & (name_r >= 0)
    exact = present & (name_l == name_r)
    homophone = present & ~exact & (pinyin_l >= 0) & (pinyin_l == pinyin_r)
    # Latin names: the same words in another order (surname first or last) fold like a homophone, and
    # similarity is on the words, not the characters, of which a long name has many to spare.
    latin = present & a.latin_name[rid_l] & a.latin_name[rid_r]
    words_l, words_r = a.sorted_words.codes[rid_l], a.sorted_words.codes[rid_r]
    homophone |= latin & ~exact & (words_l >= 0) & (words_l == words_r)
    level = np.full(len(rid_l), 4, dtype=np.int8)
    rest = present & ~exact & ~homophone
    similar = _similar(a.name, name_l, name_r, rest & ~latin, Levenshtein.normalized_similarity, c.similar_threshold)
    rest &= ~similar
    similar |= _similar(a.pinyin, pinyin_l, pinyin_r, rest, Indel.normalized_similarity, c.pinyin_threshold)
    rest &= ~similar & latin
    similar |= _similar(a.sorted_words, words_l, words_r, rest, Indel.normalized_similarity, c.pinyin_threshold)
    # A word in common (the surname kept, the given name replaced or dropped) is partial agreement.
    rest &= ~similar
    similar |= _similar(a.sorted_words, words_l, words_r, rest, fuzz.partial_token_set_ratio, 100.0)
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
    # Latin addresses: the same words in another order are the same place; similarity is on the words.
    words_l, words_r = a.address_words.codes[rid_l], a.address_words.codes[rid_r]
    latin = present & (words_l >= 0) & (words_r >= 0)
    household |= latin & ~exact & (words_l == words_r)
    rest = present & ~exact & ~household
    similar = _similar(a.address, left, right, rest, Indel.normalized_similarity, c.similar_threshold)
    rest &= ~similar & latin
    similar |= _similar(a.address_words, words_l, words_r, rest, Indel.normalized_similarity, c.similar_threshold)
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
    if mask.any():
        result[mask] = _distinct_pair_scores(column, left, right, mask, scorer, threshold) >= threshold
    return result


def _distinct_pair_scores(
    column: CodedStrings,
    left: np.ndarray,
    right: np.ndarray,
    mask: np.ndarray,
    scorer: Callable[..., float],
    cutoff: float,
) -> np.ndarray:
    """``scorer`` of the values of each pair in ``mask`` (in mask order), computed once per distinct pair."""
    where = np.flatnonzero(mask)
    n_values = np.int64(len(column.values))
    keys = left[where].astype(np.int64) * n_values + right[where].astype(np.int64)
    distinct, inverse = np.unique(keys, return_inverse=True)
    scores = process.cpdist(
        column.values[distinct // n_values],
        column.values[distinct % n_values],
        scorer=scorer,
        score_cutoff=cutoff,
        workers=-1,
        dtype=np.float32,
    )
    return scores[inverse]


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
