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
from rapidfuzz.distance import OSA, Indel, JaroWinkler, Levenshtein

from dedup.prepare import HAN_CHARACTER, TEXT, sorted_words
from dedup.shapes import shape_key
from dedup.settings import (
    AddressComparison,
    BirthDateComparison,
    CommunityComparison,
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
    """Per-record columns as numpy arrays indexed by ``rid``, built once and gathered per batch of pairs.

    ``id_present`` covers every identifier, ``id_resident`` those in GB 11643 form (on ``id_digits``);
    ``latin_name`` marks names without Chinese characters, whose words ``sorted_words`` holds in
    alphabetical order and ``name_words`` one per column (``name_word_count``: how many);
    ``address_words`` is the same for addresses without Chinese characters. ``name_parts`` and
    ``dotted_name`` split a minority name at its middle dot; ``name_shape`` folds look-alike characters
    (:mod:`dedup.shapes`). ``birth_digits`` holds YYYYMMDD as digits and ``birth_days`` the date as a day
    number, to find dates one slip apart.
    """

    name: CodedStrings
    pinyin: CodedStrings
    id_digits: np.ndarray
    id_present: np.ndarray
    id_valid: np.ndarray
    birth_year: np.ndarray
    birth_month: np.ndarray
    birth_day: np.ndarray
    birth_digits: np.ndarray
    birth_days: np.ndarray
    birth_precision: np.ndarray
    sex: CodedStrings
    phone: CodedStrings
    address: CodedStrings
    household: CodedStrings
    community: CodedStrings
    source: np.ndarray
    id_text: CodedStrings
    id_resident: np.ndarray
    latin_name: np.ndarray
    sorted_words: CodedStrings
    name_parts: CodedStrings
    name_shape: CodedStrings
    name_words: np.ndarray
    name_word_count: np.ndarray
    dotted_name: np.ndarray
    address_words: CodedStrings

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

        name_words = _word_matrix(prepared["name_pinyin"].where(latin), _NAME_WORDS)
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
            birth_digits=birth[:, [0, 1, 2, 3, 5, 6, 8, 9]].astype(np.uint8),
            birth_days=_days(prepared["birth_date"].where(precision >= 3)),
            birth_precision=precision,
            sex=CodedStrings.of(prepared["sex"]),
            phone=CodedStrings.of(prepared["phone"]),
            address=CodedStrings.of(prepared["address"]),
            household=CodedStrings.of(prepared["household"]),
            community=CodedStrings.of(prepared["community"]),
            source=source,
            id_text=CodedStrings.of(ids),
            id_resident=id_resident,
            latin_name=latin,
            sorted_words=CodedStrings.of(words),
            name_words=name_words,
            name_word_count=(name_words != "").sum(axis=1).astype(np.int8),
            name_shape=CodedStrings.of(shape_key(prepared["name"])),
            name_parts=CodedStrings.of(prepared["name"].str.replace("·", " ", regex=False)),
            dotted_name=prepared["name"].str.contains("·", regex=False).fillna(False).to_numpy(dtype=bool),
            address_words=CodedStrings.of(prepared["address_words"]),
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
        plus ``ids_both_valid``, ``id_valid_any`` (either record has a valid ID number) and
        ``same_source`` (bool), which vetoes need.
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
    columns["id_valid_any"] = arrays.id_valid[rid_l] | arrays.id_valid[rid_r]
    source_l = arrays.source[rid_l]
    columns["same_source"] = (source_l >= 0) & (source_l == arrays.source[rid_r])
    return pd.DataFrame(columns)


def level_labels(comparison: Comparison, codes: np.ndarray | pd.Series) -> pd.Series:
    """Level labels (``"exact"``, ``"typo"`` …) for level codes of ``comparison``."""
    labels = np.asarray(comparison.labels, dtype=object)
    return pd.Series(labels[np.asarray(codes, dtype=np.int64)], dtype=TEXT)


def _id_number_levels(_: IdNumberComparison, a: RecordArrays, rid_l: np.ndarray, rid_r: np.ndarray) -> np.ndarray:
    """Resident IDs on the digit matrix; any other identifier as a string: equal, one edit or adjacent
    transposition away (optimal string alignment distance 1), two edits away, else different."""
    level = _resident_id_levels(a, rid_l, rid_r)
    generic = a.id_present[rid_l] & a.id_present[rid_r] & ~(a.id_resident[rid_l] & a.id_resident[rid_r])
    if generic.any():
        left, right = a.id_text.codes[rid_l], a.id_text.codes[rid_r]
        exact = generic & (left == right)
        distance = np.full(len(rid_l), 3, dtype=np.int64)
        rest = generic & ~exact
        distance[rest] = _distinct_pair_scores(a.id_text, left, right, rest, OSA.distance, 2)
        level[generic] = 4
        level[rest & (distance == 2)] = 3
        level[rest & (distance <= 1)] = 2
        level[exact] = 1
    return level


def _resident_id_levels(a: RecordArrays, rid_l: np.ndarray, rid_r: np.ndarray) -> np.ndarray:
    n_diff, transposed = _digit_slips(a.id_digits[rid_l], a.id_digits[rid_r])
    level = np.full(len(rid_l), 4, dtype=np.int8)
    # Two valid numbers two digits apart are two people (twins: sequence and check digits differ).
    level[(n_diff == 2) & ~(a.id_valid[rid_l] & a.id_valid[rid_r])] = 3
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
    rest = present & ~exact & ~homophone
    shape_l, shape_r = a.name_shape.codes[rid_l], a.name_shape.codes[rid_r]
    shape = rest & ~latin & (shape_l >= 0) & (shape_l == shape_r)
    rest &= ~shape
    # A Latin name a letter or two off, in either word order, with as many words: a typing slip (a word
    # missing is a shared or partial name). Jaro–Winkler forgives a slip late in a word more than one at
    # its start, as keying errors are.
    typing = rest & latin & (a.name_word_count[rid_l] == a.name_word_count[rid_r])
    typo = _similar(a.pinyin, pinyin_l, pinyin_r, typing, JaroWinkler.normalized_similarity, c.word_threshold)
    typo |= _similar(a.sorted_words, words_l, words_r, typing & ~typo, JaroWinkler.normalized_similarity, c.word_threshold)
    rest &= ~typo
    chinese = rest & ~latin
    similar = _similar(a.name, name_l, name_r, chinese, Levenshtein.normalized_similarity, c.similar_threshold)
    similar |= _similar(a.pinyin, pinyin_l, pinyin_r, chinese & ~similar, Indel.normalized_similarity, c.pinyin_threshold)
    rest &= ~similar
    # One name part of the other: a Latin word in common (the surname kept, the given name dropped or
    # replaced), exactly or up to a letter or two; a minority name's part before or after the dot.
    best_word = _best_word_similarity(a.name_words, rid_l, rid_r, rest & latin)
    shared = best_word >= 1.0
    partial = ~shared & (best_word >= c.word_threshold)
    dotted = rest & ~latin & (a.dotted_name[rid_l] | a.dotted_name[rid_r])
    shared |= _similar(a.name_parts, a.name_parts.codes[rid_l], a.name_parts.codes[rid_r], dotted, fuzz.token_set_ratio, 100.0)
    level = np.full(len(rid_l), 8, dtype=np.int8)
    level[partial] = 7
    level[shared] = 6
    level[similar] = 5
    level[typo] = 4
    level[shape] = 3
    level[homophone] = 2
    level[exact] = 1
    level[~present] = 0
    return level


def _best_word_similarity(words: np.ndarray, rid_l: np.ndarray, rid_r: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per pair in ``mask``, the Jaro–Winkler similarity of the closest pair of words, one from each name
    (0 elsewhere). ``words`` is a (records, k) matrix of words, ``""`` where a name has fewer; every
    (i, j) word position is one batch call, so the cost is k² vectorised passes, not a loop per pair."""
    best = np.zeros(len(rid_l), dtype=np.float32)
    where = np.flatnonzero(mask)
    if not len(where):
        return best
    left, right = words[rid_l[where]], words[rid_r[where]]
    scores = np.zeros(len(where), dtype=np.float32)
    for i in range(words.shape[1]):
        for j in range(words.shape[1]):
            both = (left[:, i] != "") & (right[:, j] != "")
            if both.any():
                pair = process.cpdist(left[both, i], right[both, j], scorer=JaroWinkler.normalized_similarity,
                                      workers=-1, dtype=np.float32)
                scores[both] = np.maximum(scores[both], pair)
    best[where] = scores
    return best


def _birth_date_levels(_: BirthDateComparison, a: RecordArrays, rid_l: np.ndarray, rid_r: np.ndarray) -> np.ndarray:
    common = np.minimum(a.birth_precision[rid_l], a.birth_precision[rid_r])
    year_l, year_r = a.birth_year[rid_l], a.birth_year[rid_r]
    month_l, month_r = a.birth_month[rid_l], a.birth_month[rid_r]
    day_l, day_r = a.birth_day[rid_l], a.birth_day[rid_r]
    same_year = year_l == year_r
    same_month = same_year & (month_l == month_r)
    level = np.full(len(rid_l), 6, dtype=np.int8)
    near = (common == 3) & _near_dates(a, rid_l, rid_r, day_l == day_r, month_l == month_r, year_l, year_r)
    # At month precision (the census) a date a few days off can fall in the neighbouring month, a year
    # off in the same month of the neighbouring year.
    months = np.abs((year_l.astype(np.int32) * 12 + month_l) - (year_r.astype(np.int32) * 12 + month_r))
    near |= (common == 2) & ((months == 1) | (months == 12))
    swapped = (common == 3) & same_year & (month_l == day_r) & (day_l == month_r) & (month_l != day_l)
    level[near] = 5
    level[swapped] = 4
    level[(common == 1) & same_year] = 3
    level[(common == 2) & same_month] = 2
    level[(common == 3) & same_month & (day_l == day_r)] = 1
    level[common == 0] = 0
    return level


def _digit_slips(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of two digit matrices: how many positions differ, and whether the difference is one swap
    of neighbouring digits (positions i, i+1 differ, each holding the other's digit) — the two keying
    slips an ID number's check character and a date's plausibility are judged by."""
    differs = left != right
    n_diff = differs.sum(axis=1)
    crossed = (left[:, :-1] == right[:, 1:]) & (left[:, 1:] == right[:, :-1]) & differs[:, :-1] & differs[:, 1:]
    return n_diff, (n_diff == 2) & crossed.any(axis=1)


def _near_dates(
    a: RecordArrays,
    rid_l: np.ndarray,
    rid_r: np.ndarray,
    same_day: np.ndarray,
    same_month: np.ndarray,
    year_l: np.ndarray,
    year_r: np.ndarray,
) -> np.ndarray:
    """Full dates one slip apart: one digit of YYYYMMDD differs, two neighbouring digits are swapped,
    one to three days lie between them, or the day and month agree and the years are neighbours."""
    n_diff, transposed = _digit_slips(a.birth_digits[rid_l], a.birth_digits[rid_r])
    days = np.abs(a.birth_days[rid_l].astype(np.int64) - a.birth_days[rid_r].astype(np.int64))
    return (
        (n_diff == 1)
        | transposed
        | ((days >= 1) & (days <= 3))
        | (same_day & same_month & (np.abs(year_l.astype(np.int32) - year_r.astype(np.int32)) == 1))
    )


def _equality_levels(field: str) -> Callable[[Comparison, RecordArrays, np.ndarray, np.ndarray], np.ndarray]:
    def levels(_: Comparison, a: RecordArrays, rid_l: np.ndarray, rid_r: np.ndarray) -> np.ndarray:
        column: CodedStrings = getattr(a, field)
        left, right = column.codes[rid_l], column.codes[rid_r]
        level = np.where(left == right, np.int8(1), np.int8(2))
        level[(left < 0) | (right < 0)] = 0
        return level

    return levels


def _community_levels(_: CommunityComparison, a: RecordArrays, rid_l: np.ndarray, rid_r: np.ndarray) -> np.ndarray:
    """Equal or different community; ``null`` also where the two addresses name the same flat, which
    implies the community: that agreement is the address comparison's evidence, counted once."""
    level = _equality_levels("community")(_, a, rid_l, rid_r)
    address_l, address_r = a.address.codes[rid_l], a.address.codes[rid_r]
    flat_l, flat_r = a.household.codes[rid_l], a.household.codes[rid_r]
    same_flat = ((address_l >= 0) & (address_l == address_r)) | ((flat_l >= 0) & (flat_l == flat_r))
    level[same_flat] = 0
    return level


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
    # Part of a Latin address agrees: many of its words (the street kept, the suburb mistyped).
    rest = present & ~exact & ~household & ~similar & latin
    partial = _similar(a.address_words, words_l, words_r, rest, fuzz.token_set_ratio, 100.0 * c.partial_threshold)
    level = np.full(len(rid_l), 5, dtype=np.int8)
    level[partial] = 4
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
    CommunityComparison: _community_levels,
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


#: Words of a Latin name compared one by one (a fourth and later word is dropped).
_NAME_WORDS = 3


def _word_matrix(words: pd.Series, k: int) -> np.ndarray:
    """Space-separated words as a (rows, k) object matrix, ``""`` where a value has fewer than k words."""
    split = words.fillna("").str.split(" ", n=k, expand=True, regex=False)
    matrix = np.full((len(words), k), "", dtype=object)
    for column in range(min(k, split.shape[1])):
        matrix[:, column] = split[column].fillna("").to_numpy(dtype=object)
    return matrix


def _days(dates: pd.Series) -> np.ndarray:
    """Days since 1970-01-01 of ISO dates (int32); a large negative sentinel where unknown, so an unknown
    date is never a few days from another."""
    parsed = pd.to_datetime(dates, format="%Y-%m-%d", errors="coerce")
    days = (parsed - pd.Timestamp("1970-01-01")).dt.days
    return days.fillna(-(10**6)).to_numpy(dtype=np.int64).astype(np.int32)


def _number(digits: np.ndarray, start: int, stop: int, known: np.ndarray) -> np.ndarray:
    """The decimal number in columns ``start:stop`` of a digit matrix, 0 where ``known`` is false."""
    value = np.zeros(len(digits), dtype=np.int16)
    for column in range(start, stop):
        value = value * 10 + digits[:, column]
    return np.where(known, value, np.int16(0)).astype(np.int16)
