"""Compare candidate pairs field by field, vectorised over a whole batch of pairs.

A comparison declared in :mod:`dedup.settings` lists its levels in priority order, each naming a level
test registered here with :func:`level_test`. :func:`compare_pairs` runs them as a SQL ``CASE WHEN``
does: each test gets the mask of the pairs no earlier level took and returns a mask of the pairs it
accepts, which reach its level (code: the level's position in the declaration); the last level,
``else``, takes the rest. Tests share per-batch intermediates through :class:`PairBatch` — columns
gathered once, a similarity computed once and read again by a later level — and score only the pairs
still undecided, so adding a level adds its own cost and nothing else.

String similarity runs in rapidfuzz's C++ batch API (``process.cpdist``), never in DuckDB: DuckDB's
string functions count UTF-8 bytes, so ``levenshtein('张伟', '张玮')`` is 3 there and 1 here. ID numbers
are compared on a digit matrix, birth dates on integer year/month/day columns.

Example:
    >>> from dedup.prepare import prepare_records
    >>> arrays = RecordArrays.from_prepared(prepare_records(records))       # doctest: +SKIP
    >>> levels = compare_pairs(arrays, rid_l, rid_r, settings.comparisons)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA, Indel, JaroWinkler, Levenshtein

from core.errors import ConfigError
from core.threads import beside
from dedup.prepare import HAN_CHARACTER, TEXT, alias_rows, fuzzy_pinyin, sorted_words, text_at
from dedup.settings import ELSE, AddressComparison, Comparison, NameComparison
from dedup.shapes import shape_key

__all__ = [
    "STATED_FIELDS",
    "CodedStrings",
    "LevelTest",
    "PairBatch",
    "RecordArrays",
    "building_rooms",
    "by_similarity",
    "compare_pairs",
    "flat_pair_keys",
    "level_columns",
    "level_labels",
    "level_test",
]

_ID_LENGTH = 18

#: Fields a valid ID number overrules (its sex digit, its birth date), compared a second time on what
#: each record states of itself where two records share a valid ID number (``stated_<field>``).
STATED_FIELDS: tuple[str, ...] = ("sex", "birth_date")

_T = TypeVar("_T")


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

    @classmethod
    def with_other(cls, column: pd.Series, other: pd.Series) -> tuple[CodedStrings, np.ndarray]:
        """``column`` coded over the values of both columns, and the codes of ``other`` in that coding,
        so a value of one compares with a value of the other as integers (an address and a 户籍地址)."""
        codes, values = pd.factorize(pd.concat([column, other], ignore_index=True), use_na_sentinel=True)
        codes = codes.astype(np.int32)
        return cls(codes[: len(column)], np.asarray(values, dtype=object)), codes[len(column) :]

    def patched(self, rows: np.ndarray, part: CodedStrings) -> CodedStrings:
        """These codes with those of ``rows`` replaced by ``part`` (coded over its own values); a value
        not among these is appended. The codes of the other rows stay as they were."""
        known = pd.Index(self.values).get_indexer(part.values) if len(part.values) else np.empty(0, dtype=np.intp)
        unseen = np.flatnonzero(known < 0)
        known[unseen] = len(self.values) + np.arange(len(unseen))
        values = np.concatenate([self.values, part.values[unseen]]) if len(unseen) else self.values
        codes = self.codes.copy()
        codes[rows] = np.append(known, -1)[part.codes]  # part's code -1 (missing) takes the appended -1
        return CodedStrings(codes, values)

    def __len__(self) -> int:
        return len(self.codes)


@dataclass(frozen=True)
class RecordArrays:
    """Per-record columns as numpy arrays indexed by ``rid``, built once and gathered per batch of pairs.

    ``id_present`` covers every identifier, ``id_resident`` those in GB 11643 form (on ``id_digits``);
    ``latin_name`` marks names without Chinese characters, whose words ``sorted_words`` holds in
    alphabetical order and ``name_words`` one per column (``name_word_count``: how many);
    ``address_words`` is the same for addresses without Chinese characters. ``hukou_address`` and
    ``hukou_household`` are the codes of each record's 户籍地址 (text and flat) among the values of
    ``address`` and ``household``, so one record's registered flat compares with another's address as
    integers; ``-1`` where none is given. ``building_room`` codes a flat's place, building and room without
    its unit (``翠苑|3-501`` for ``翠苑|3-2-501`` and ``翠苑|3-501``; ``-1`` where the flat has fewer than two
    numbers) and ``unit_given`` says whether the flat names a unit. ``name_parts`` and
    ``dotted_name`` split a minority name at its middle dot; ``name_shape`` folds look-alike characters
    (:mod:`dedup.shapes`). ``birth_digits`` holds YYYYMMDD as digits and ``birth_days`` the date as a day
    number, to find dates one slip apart. ``moves`` holds the pairs of flats (``household`` codes, as
    :func:`flat_pair_keys`) that records under one valid ID number place one person at: a home and the
    one before it. ``stated`` is the same records with the sex and birth date each states of itself in
    place of those its valid ID number carries (:meth:`as_stated`).
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
    building_room: np.ndarray
    unit_given: np.ndarray
    hukou_address: np.ndarray
    hukou_household: np.ndarray
    community: CodedStrings
    source: np.ndarray
    id_text: CodedStrings
    id_resident: np.ndarray
    latin_name: np.ndarray
    sorted_words: CodedStrings
    name_parts: CodedStrings
    name_shape: CodedStrings
    fuzzy_pinyin: CodedStrings
    alias_name: np.ndarray
    alias_pinyin: np.ndarray
    name_words: np.ndarray
    name_word_count: np.ndarray
    dotted_name: np.ndarray
    address_words: CodedStrings
    moves: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False, compare=False)
    stated: RecordArrays | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_prepared(cls, prepared: pd.DataFrame) -> RecordArrays:
        """Build the arrays from :func:`dedup.prepare.prepare_records` output (``rid`` = row position)."""
        # The address and identity columns are coded in a thread beside the names, as dedup.prepare reads them.
        with beside(_address_and_identity_arrays, prepared) as places:
            latin = (~prepared["name"].str.contains(HAN_CHARACTER, regex=True)).fillna(False).to_numpy(dtype=bool)
            # Latin names compare in either word order ("smith john" / "john smith").
            words = sorted_words(prepared["name_pinyin"].where(latin))

            name_words = _word_matrix(prepared["name_pinyin"].where(latin), _NAME_WORDS)
            source = pd.factorize(prepared["source"], use_na_sentinel=True)[0].astype(np.int32)
            aliases = alias_rows(prepared)
            name, alias_name = CodedStrings.with_other(prepared["name"], aliases["name"])
            pinyin, alias_pinyin = CodedStrings.with_other(prepared["name_pinyin"], aliases["name_pinyin"])
            arrays = cls(
                name=name,
                pinyin=pinyin,
                alias_name=_per_record(alias_name, aliases, len(prepared)),
                alias_pinyin=_per_record(alias_pinyin, aliases, len(prepared)),
                phone=CodedStrings.of(prepared["phone"]),
                source=source,
                latin_name=latin,
                sorted_words=CodedStrings.of(words),
                name_words=name_words,
                name_word_count=(name_words != "").sum(axis=1).astype(np.int8),
                name_shape=CodedStrings.of(shape_key(prepared["name"])),
                fuzzy_pinyin=CodedStrings.of(fuzzy_pinyin(prepared["name_pinyin"].where(~latin))),
                name_parts=CodedStrings.of(prepared["name"].str.replace("·", " ", regex=False)),
                dotted_name=prepared["name"].str.contains("·", regex=False).fillna(False).to_numpy(dtype=bool),
                **places.result(),
            )
        return arrays._with_moves()._with_stated(prepared)

    def with_identities_of(self, prepared: pd.DataFrame, rows: np.ndarray) -> RecordArrays:
        """These records with the ID numbers, sex and birth dates (as decided and as stated) of ``rows``
        read again from ``prepared`` — the same records in the same order, of which only those rows'
        identity columns changed (a borrowed ID number taken off,
        :func:`dedup.id_sharing.without_borrowed_ids`). Only those rows are encoded again, and every
        other column is kept, so names and addresses are not encoded twice."""
        part = prepared.iloc[rows]
        decided = replace(self, **_patched(self, rows, _identity_columns(part)), stated=None)._with_moves()
        stated = _patched(self.as_stated(), rows, {
            "sex": CodedStrings.of(part["stated_sex"]),
            **_birth_columns(part["stated_birth_date"], part["stated_birth_precision"]),
        })
        return replace(decided, stated=replace(decided, **stated))

    def _with_moves(self) -> RecordArrays:
        """These records with :attr:`moves` found from their flats and valid ID numbers."""
        flat, person = self.household.codes, self.id_text.codes
        known = (flat >= 0) & self.id_valid
        homes = pd.DataFrame({"person": person[known], "flat": flat[known]}).drop_duplicates()
        both = homes.merge(homes, on="person", suffixes=("_a", "_b"))
        both = both[both["flat_a"] < both["flat_b"]]
        keys = flat_pair_keys(both["flat_a"].to_numpy(), both["flat_b"].to_numpy(), len(self.household.values))
        return replace(self, moves=np.unique(keys))

    def _with_stated(self, prepared: pd.DataFrame) -> RecordArrays:
        stated = replace(
            self,
            sex=CodedStrings.of(prepared["stated_sex"]),
            **_birth_columns(prepared["stated_birth_date"], prepared["stated_birth_precision"]),
        )
        return replace(self, stated=stated)

    def as_stated(self) -> RecordArrays:
        """These records with the sex and birth date each states of itself (the ID's where it states
        none), so the sex and birth-date level tests can run on what two records *say* where a shared
        valid ID number makes their usual values equal by construction. The other columns are shared.

        Raises:
            ValueError: the records were prepared without the stated columns.
        """
        if self.stated is None:
            raise ValueError(
                "these records carry no stated sex and birth date; build them with "
                "RecordArrays.from_prepared(prepare_records(records))"
            )
        return self.stated

    def __len__(self) -> int:
        return len(self.id_present)


@dataclass
class PairBatch:
    """One batch of pairs under comparison, and the intermediates its level tests share.

    :func:`compare_pairs` gives each comparison a fresh batch, so whatever its tests cache is freed
    once its levels are known, and memory stays that of one comparison however many are declared.

    Attributes:
        arrays: the records' columns.
        rid_l, rid_r: record positions of the pairs (int64).

    Example:
        >>> batch = PairBatch(arrays, rid_l, rid_r)                                           # doctest: +SKIP
        >>> name_l, name_r = batch.pair("name")  # value codes of each side, gathered once     # doctest: +SKIP
    """

    arrays: RecordArrays
    rid_l: np.ndarray
    rid_r: np.ndarray
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.rid_l)

    def pair(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """Left and right values of a :class:`RecordArrays` column for every pair (the integer codes of
        a :class:`CodedStrings` column), gathered once per batch."""

        def gather() -> tuple[np.ndarray, np.ndarray]:
            values = getattr(self.arrays, column)
            values = values.codes if isinstance(values, CodedStrings) else values
            return values[self.rid_l], values[self.rid_r]

        return self.cached(f"pair:{column}", gather)

    def cached(self, key: str, compute: Callable[[], _T]) -> _T:
        """``compute()`` the first time ``key`` is asked for in this batch, the same value after.

        A value a test computes over the pairs undecided when it runs stays valid for every later
        level: the undecided pairs only ever shrink. A key names what the value is, not who asked
        (``"name.best_word"``), and a value that depends on a comparison's threshold is not cached.
        """
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def similar(
        self, column: str, mask: np.ndarray, scorer: Callable[..., float], threshold: float
    ) -> np.ndarray:
        """Mask of pairs (among ``mask``) whose values of the :class:`CodedStrings` ``column`` are at least
        ``threshold`` similar; see :func:`_similar`."""
        left, right = self.pair(column)
        return _similar(getattr(self.arrays, column), left, right, mask, scorer, threshold)


#: A level test: given the comparison (its thresholds), the batch and the read-only mask of the pairs
#: still undecided, a boolean mask over the batch. Only its values on undecided pairs count.
LevelTest = Callable[[Comparison, PairBatch, np.ndarray], np.ndarray]

_LEVEL_TESTS: dict[str, LevelTest] = {}


def level_test(name: str) -> Callable[[LevelTest], LevelTest]:
    """Register a vectorised level test under ``name``, for a :class:`dedup.settings.ComparisonLevel` to use.

    The test receives the comparison, the :class:`PairBatch` and the mask of the pairs no earlier level
    took, and returns a boolean mask over the whole batch; the pairs it accepts among the undecided ones
    reach its level. Anything expensive (rapidfuzz) should score only the undecided pairs.

    Raises:
        ValueError: another test is registered under ``name``.

    Example:
        >>> @level_test("community.same_flat")                                     # doctest: +SKIP
        ... def _same_flat(c, batch, undecided):
        ...     flat_l, flat_r = batch.pair("household")
        ...     return (flat_l >= 0) & (flat_l == flat_r)
    """

    def register(test: LevelTest) -> LevelTest:
        if _LEVEL_TESTS.setdefault(name, test) is not test:
            raise ValueError(f"level test {name!r} is already registered ({_LEVEL_TESTS[name].__qualname__}); choose another name")
        return test

    return register


def compare_pairs(
    arrays: RecordArrays,
    rid_l: np.ndarray,
    rid_r: np.ndarray,
    comparisons: Sequence[Comparison],
) -> pd.DataFrame:
    """Level code of every comparison for each pair ``(rid_l[i], rid_r[i])``.

    Returns:
        A frame with one int8 column per comparison, named for its field (``id_number``, ``name`` …),
        holding the code of the level reached (its position in the comparison's levels; see
        :func:`level_labels`), plus ``ids_both_valid`` and ``id_valid_any`` (either record has a valid
        ID number), which vetoes need. Where ``sex`` and ``birth_date`` are
        compared, ``stated_sex`` and ``stated_birth_date`` hold the codes of the same comparisons run
        on what each record states of itself (:meth:`RecordArrays.as_stated`), for the pairs that
        share a valid ID number — whose usual sex and birth date are the ID's, equal by construction —
        and the ``null`` level elsewhere: they tell a record keyed with another resident's ID number.

    Raises:
        ConfigError: a level names a test that is not registered.
    """
    rid_l = np.asarray(rid_l, dtype=np.int64)
    rid_r = np.asarray(rid_r, dtype=np.int64)
    columns: dict[str, np.ndarray] = {}  # in the order of level_columns
    for comparison in comparisons:
        columns[comparison.field] = _level_codes(comparison, _tests(comparison), PairBatch(arrays, rid_l, rid_r))
    columns["ids_both_valid"] = arrays.id_valid[rid_l] & arrays.id_valid[rid_r]
    columns["id_valid_any"] = arrays.id_valid[rid_l] | arrays.id_valid[rid_r]
    id_l, id_r = arrays.id_text.codes[rid_l], arrays.id_text.codes[rid_r]
    shared = np.flatnonzero(columns["ids_both_valid"] & (id_l == id_r))
    for comparison in comparisons:
        if comparison.field in STATED_FIELDS:
            codes = np.zeros(len(rid_l), dtype=np.int8)  # the null level: no evidence
            if len(shared):
                batch = PairBatch(arrays.as_stated(), rid_l[shared], rid_r[shared])
                codes[shared] = _level_codes(comparison, _tests(comparison), batch)
            columns[f"stated_{comparison.field}"] = codes
    return pd.DataFrame(columns)


def level_columns(comparisons: Sequence[Comparison]) -> list[str]:
    """The columns :func:`compare_pairs` gives for ``comparisons``, in its order."""
    return [*(c.field for c in comparisons), "ids_both_valid", "id_valid_any",
            *(f"stated_{c.field}" for c in comparisons if c.field in STATED_FIELDS)]


def by_similarity(comparison: Comparison) -> bool:
    """Whether ``comparison`` scores strings for similarity (names, addresses: rapidfuzz over distinct value
    pairs), which costs most of comparing a pair; the others look up codes and digits."""
    return isinstance(comparison, NameComparison | AddressComparison)


def level_labels(comparison: Comparison, codes: np.ndarray | pd.Series) -> pd.Series:
    """Level labels (``"exact"``, ``"typo"`` …) for level codes of ``comparison``."""
    return text_at(comparison.labels, np.asarray(codes))


def _tests(comparison: Comparison) -> list[LevelTest]:
    return [_registered(comparison, level.label, level.test) for level in comparison.levels]


def _registered(comparison: Comparison, label: str, name: str) -> LevelTest:
    test = _LEVEL_TESTS.get(name)
    if test is None:
        raise ConfigError(
            f"{type(comparison).__name__}: level {label!r} names the test {name!r}, which dedup.compare does not "
            f"know; register it with @level_test({name!r}) or choose one of {sorted(_LEVEL_TESTS)}"
        )
    return test


def _level_codes(comparison: Comparison, tests: list[LevelTest], batch: PairBatch) -> np.ndarray:
    """The first level each pair passes, in declaration order: its code is the level's position."""
    codes = np.zeros(len(batch), dtype=np.int8)
    undecided = np.ones(len(batch), dtype=bool)
    for code, test in enumerate(tests):
        if not undecided.any():
            break
        # Read-only, so that no test can decide for the levels after it by editing the mask.
        undecided.flags.writeable = False
        reached = undecided & test(comparison, batch, undecided)
        codes[reached] = code
        undecided = undecided ^ reached  # reached is a subset of undecided: this removes it
    return codes


# ------------------------------------------------------------------------------ tests any field can use


@level_test("missing")
def _missing(c: Comparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """The value (a :class:`CodedStrings` column named for the field) is missing on either side."""
    left, right = batch.pair(c.field)
    return (left < 0) | (right < 0)


@level_test("equal")
def _equal(c: Comparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """The same value on both sides (after ``missing``, which takes two missing values)."""
    left, right = batch.pair(c.field)
    return left == right


@level_test(ELSE)
def _else(c: Comparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """Every pair no earlier level took."""
    return undecided


# ---------------------------------------------------------------------------------------- ID numbers


@level_test("id_number.missing")
def _id_missing(c: Comparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """An identifier missing (or malformed, which staging leaves out) on either side."""
    present_l, present_r = batch.pair("id_present")
    return ~(present_l & present_r)


@level_test("id_number.exact")
def _id_exact(c: Comparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """Two resident IDs with equal digits; any other identifiers equal as strings."""
    n_diff, _ = _id_slips(batch, undecided)
    return _or_as_strings(batch, undecided, n_diff == 0, lambda: np.equal(*batch.pair("id_text")))


@level_test("id_number.typo")
def _id_typo(c: Comparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """One digit off or two neighbours swapped (resident IDs); one edit or adjacent transposition apart
    (optimal string alignment distance 1) for any other identifier."""
    n_diff, transposed = _id_slips(batch, undecided)
    return _or_as_strings(batch, undecided, (n_diff == 1) | transposed, lambda: _id_distance(batch, undecided) <= 1)


@level_test("id_number.close")
def _id_close(c: Comparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """Two digits or two edits apart, unless both resident IDs are valid."""
    n_diff, _ = _id_slips(batch, undecided)
    valid_l, valid_r = batch.pair("id_valid")
    # Two valid numbers two digits apart are two people (twins: sequence and check digits differ).
    resident = (n_diff == 2) & ~(valid_l & valid_r)
    return _or_as_strings(batch, undecided, resident, lambda: _id_distance(batch, undecided) == 2)


def _both_resident(batch: PairBatch) -> np.ndarray:
    """Pairs of two resident ID numbers, compared on the digit matrix; the others are compared as strings."""
    return batch.cached("id_number.both_resident", lambda: np.logical_and(*batch.pair("id_resident")))


def _or_as_strings(
    batch: PairBatch, undecided: np.ndarray, resident: np.ndarray, as_strings: Callable[[], np.ndarray]
) -> np.ndarray:
    """``resident`` where both IDs are resident, ``as_strings()`` on the undecided pairs that are not:
    computed only when there are such pairs (most registers hold resident IDs only)."""
    strings = undecided & ~_both_resident(batch)
    return np.where(strings, as_strings(), resident) if strings.any() else resident


def _id_slips(batch: PairBatch, undecided: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_digit_slips` of the undecided pairs of two resident IDs, the only ones that need it; the
    other pairs read -1 differing digits, which no resident level accepts."""

    def compute() -> tuple[np.ndarray, np.ndarray]:
        where = np.flatnonzero(undecided & _both_resident(batch))
        n_diff = np.full(len(batch), -1, dtype=np.int64)
        transposed = np.zeros(len(batch), dtype=bool)
        digits = batch.arrays.id_digits
        n_diff[where], transposed[where] = _digit_slips(digits[batch.rid_l[where]], digits[batch.rid_r[where]])
        return n_diff, transposed

    return batch.cached("id_number.slips", compute)


def _id_distance(batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """Edit distance (capped at 3) between the identifiers of the undecided pairs that are not two resident IDs."""

    def compute() -> np.ndarray:
        other = undecided & ~_both_resident(batch)
        distance = np.full(len(batch), 3, dtype=np.int64)
        if other.any():
            left, right = batch.pair("id_text")
            distance[other] = _distinct_pair_scores(batch.arrays.id_text, left, right, other, OSA.distance, 2)
        return distance

    return batch.cached("id_number.distance", compute)


# --------------------------------------------------------------------------------------------- names


@level_test("name.homophone")
def _name_homophone(c: Comparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """The same toneless pinyin; for Latin names the same words in another order (surname first or last)."""
    pinyin_l, pinyin_r = batch.pair("pinyin")
    words_l, words_r = batch.pair("sorted_words")
    same_words = _latin_names(batch) & (words_l >= 0) & (words_l == words_r)
    return ((pinyin_l >= 0) & (pinyin_l == pinyin_r)) | same_words


@level_test("name.shape")
def _name_shape(c: Comparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """Chinese names equal once look-alike characters are folded (:mod:`dedup.shapes`)."""
    shape_l, shape_r = batch.pair("name_shape")
    return ~_latin_names(batch) & (shape_l >= 0) & (shape_l == shape_r)


@level_test("name.near_homophone")
def _name_near_homophone(c: Comparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """Chinese names whose pinyin is the same once confusable sounds are folded (:func:`dedup.prepare.fuzzy_pinyin`;
    null for a Latin name)."""
    fuzzy_l, fuzzy_r = batch.pair("fuzzy_pinyin")
    return (fuzzy_l >= 0) & (fuzzy_l == fuzzy_r)


@level_test("name.alias")
def _name_alias(c: Comparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """One record's name is an alias of the other (曾用名, as written or the same pinyin), or the two
    share an alias."""
    known = np.zeros(len(batch), dtype=bool)
    if not batch.arrays.alias_name.shape[1]:  # no record gives an alias
        return known
    for aliases, names in (("alias_name", "name"), ("alias_pinyin", "pinyin")):
        alias_l, alias_r = batch.pair(aliases)
        name_l, name_r = batch.pair(names)
        known |= ((alias_l >= 0) & (alias_l == name_r[:, None])).any(axis=1)
        known |= ((alias_r >= 0) & (alias_r == name_l[:, None])).any(axis=1)
        known |= ((alias_l[:, :, None] >= 0) & (alias_l[:, :, None] == alias_r[:, None, :])).any(axis=(1, 2))
    return known


@level_test("name.typo")
def _name_typo(c: NameComparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """A Latin name a letter or two off, in either word order, with as many words: a typing slip (a word
    missing is a shared or partial name). Jaro–Winkler forgives a slip late in a word more than one at
    its start, as keying errors are."""
    count_l, count_r = batch.pair("name_word_count")
    typing = undecided & _latin_names(batch) & (count_l == count_r)
    typo = batch.similar("pinyin", typing, JaroWinkler.normalized_similarity, c.word_threshold)
    typo |= batch.similar("sorted_words", typing & ~typo, JaroWinkler.normalized_similarity, c.word_threshold)
    return typo


@level_test("name.similar")
def _name_similar(c: NameComparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """A Chinese name a character away (normalised Levenshtein), or close in pinyin (Indel)."""
    chinese = undecided & ~_latin_names(batch)
    similar = batch.similar("name", chinese, Levenshtein.normalized_similarity, c.similar_threshold)
    similar |= batch.similar("pinyin", chinese & ~similar, Indel.normalized_similarity, c.pinyin_threshold)
    return similar


@level_test("name.shared")
def _name_shared(c: Comparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """One name part of the other: a Latin word in common (the surname kept, the given name dropped or
    replaced); a minority name's part before or after the dot."""
    dotted_l, dotted_r = batch.pair("dotted_name")
    dotted = undecided & ~_latin_names(batch) & (dotted_l | dotted_r)
    in_common = batch.similar("name_parts", dotted, fuzz.token_set_ratio, 100.0)
    return (_best_word(batch, undecided) >= 1.0) | in_common


@level_test("name.partial")
def _name_partial(c: NameComparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """A Latin word in common up to a letter or two."""
    return _best_word(batch, undecided) >= c.word_threshold


def _latin_names(batch: PairBatch) -> np.ndarray:
    """Pairs of two names in Latin letters: words stand in for pinyin, and similarity is on the words, not
    the characters, of which a long name has many to spare."""
    return batch.cached("name.latin", lambda: np.logical_and(*batch.pair("latin_name")))


def _best_word(batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """Closest pair of words of two Latin names, among the undecided pairs (0 elsewhere)."""
    return batch.cached(
        "name.best_word",
        lambda: _best_word_similarity(batch.arrays.name_words, batch.rid_l, batch.rid_r, undecided & _latin_names(batch)),
    )


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


# --------------------------------------------------------------------------------------- birth dates


@level_test("birth_date.missing")
def _birth_missing(c: Comparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """No birth date (stated or from a valid ID number) on either side."""
    return _common_precision(batch) == 0


@level_test("birth_date.day")
def _birth_day(c: Comparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    return (_common_precision(batch) == 3) & _same_month(batch) & _same("birth_day", batch)


@level_test("birth_date.month")
def _birth_month(c: Comparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """Equal year and month where one side gives no day (the census)."""
    return (_common_precision(batch) == 2) & _same_month(batch)


@level_test("birth_date.year")
def _birth_year(c: Comparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    return (_common_precision(batch) == 1) & _same("birth_year", batch)


@level_test("birth_date.swapped")
def _birth_swapped(c: Comparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """Day and month transposed (03-04 / 04-03) in the same year."""
    month_l, month_r = batch.pair("birth_month")
    day_l, day_r = batch.pair("birth_day")
    crossed = (month_l == day_r) & (day_l == month_r) & (month_l != day_l)
    return (_common_precision(batch) == 3) & _same("birth_year", batch) & crossed


@level_test("birth_date.near")
def _birth_near(c: Comparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """Full dates one slip apart (see :func:`_near_dates`); at month precision (the census) the
    neighbouring month, or the same month of a neighbouring year, as a date a few days or a year off is."""
    common = _common_precision(batch)
    near = np.zeros(len(batch), dtype=bool)
    full = np.flatnonzero(undecided & (common == 3))
    near[full] = _near_dates(batch.arrays, batch.rid_l[full], batch.rid_r[full])
    year_l, year_r = batch.pair("birth_year")
    month_l, month_r = batch.pair("birth_month")
    months = np.abs((year_l.astype(np.int32) * 12 + month_l) - (year_r.astype(np.int32) * 12 + month_r))
    return near | ((common == 2) & ((months == 1) | (months == 12)))


def _common_precision(batch: PairBatch) -> np.ndarray:
    """The precision both dates state: 0 unknown, 1 year, 2 month, 3 day."""
    return batch.cached("birth_date.common", lambda: np.minimum(*batch.pair("birth_precision")))


def _same(column: str, batch: PairBatch) -> np.ndarray:
    left, right = batch.pair(column)
    return left == right


def _same_month(batch: PairBatch) -> np.ndarray:
    """The same year and month."""
    return _same("birth_year", batch) & _same("birth_month", batch)


def _digit_slips(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of two digit matrices: how many positions differ, and whether the difference is one swap
    of neighbouring digits (positions i, i+1 differ, each holding the other's digit) — the two keying
    slips an ID number's check character and a date's plausibility are judged by."""
    differs = left != right
    n_diff = np.count_nonzero(differs, axis=1)
    # A swap differs in exactly two places, so only those rows are looked at for one (most pairs of
    # candidates differ in many digits or none).
    two = np.flatnonzero(n_diff == 2)
    transposed = np.zeros(len(n_diff), dtype=bool)
    left, right, differs = left[two], right[two], differs[two]
    crossed = (left[:, :-1] == right[:, 1:]) & (left[:, 1:] == right[:, :-1]) & differs[:, :-1] & differs[:, 1:]
    transposed[two] = crossed.any(axis=1)
    return n_diff, transposed


def _near_dates(a: RecordArrays, rid_l: np.ndarray, rid_r: np.ndarray) -> np.ndarray:
    """Full dates one slip apart: one digit of YYYYMMDD differs, two neighbouring digits are swapped,
    one to three days lie between them, or the day and month agree and the years are neighbours."""
    n_diff, transposed = _digit_slips(a.birth_digits[rid_l], a.birth_digits[rid_r])
    days = np.abs(a.birth_days[rid_l].astype(np.int64) - a.birth_days[rid_r].astype(np.int64))
    same_day = (a.birth_month[rid_l] == a.birth_month[rid_r]) & (a.birth_day[rid_l] == a.birth_day[rid_r])
    years = np.abs(a.birth_year[rid_l].astype(np.int32) - a.birth_year[rid_r].astype(np.int32))
    return (n_diff == 1) | transposed | ((days >= 1) & (days <= 3)) | (same_day & (years == 1))


# ----------------------------------------------------------------------------------- places: community


@level_test("community.missing")
def _community_missing(c: Comparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """The community missing on either side, or the two addresses name the same flat, which implies the
    community: that agreement is the address comparison's evidence, counted once."""
    address_l, address_r = batch.pair("address")
    flat_l, flat_r = batch.pair("household")
    same_flat = ((address_l >= 0) & (address_l == address_r)) | ((flat_l >= 0) & (flat_l == flat_r))
    return _missing(c, batch, undecided) | same_flat


# ------------------------------------------------------------------------------------------ addresses


@level_test("address.household")
def _address_household(c: Comparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """The same flat written another way (:func:`dedup.prepare.household_key`); for a Latin address, the
    same words in another order, which are the same place."""
    flat_l, flat_r = batch.pair("household")
    words_l, words_r = batch.pair("address_words")
    return ((flat_l >= 0) & (flat_l == flat_r)) | (_latin_addresses(batch) & (words_l == words_r))


@level_test("address.building_room")
def _address_building_room(c: Comparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """The same building and room at one place where one record names the unit and the other leaves it
    out (翠苑3幢501 / 翠苑社区3幢2单元501室): likely the same flat, though each stairwell has its own 501."""
    room_l, room_r = batch.pair("building_room")
    unit_l, unit_r = batch.pair("unit_given")
    return (room_l >= 0) & (room_l == room_r) & (unit_l != unit_r)


@level_test("address.registered")
def _address_registered(c: Comparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """The flat one record gives as its 户籍地址 (registered address) is the other's address, or both are
    registered at one flat: a register that keys where a person is registered and a census that counts
    where they live, or one household's registered home (text or flat, as ``exact``/``household``)."""
    registered = np.zeros(len(batch), dtype=bool)
    for column, hukou in (("address", "hukou_address"), ("household", "hukou_household")):
        here_l, here_r = batch.pair(column)
        home_l, home_r = batch.pair(hukou)
        registered |= ((home_l >= 0) & ((home_l == here_r) | (home_l == home_r))) | ((home_r >= 0) & (home_r == here_l))
    return registered


@level_test("address.similar")
def _address_similar(c: AddressComparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """Indel similarity of the text, or of a Latin address's words, at least ``similar_threshold``."""
    similar = batch.similar("address", undecided, Indel.normalized_similarity, c.similar_threshold)
    latin = undecided & ~similar & _latin_addresses(batch)
    similar |= batch.similar("address_words", latin, Indel.normalized_similarity, c.similar_threshold)
    return similar


@level_test("address.partial")
def _address_partial(c: AddressComparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """Part of a Latin address agrees: many of its words (the street kept, the suburb mistyped)."""
    latin = undecided & _latin_addresses(batch)
    return batch.similar("address_words", latin, fuzz.token_set_ratio, 100.0 * c.partial_threshold)


@level_test("address.moved")
def _address_moved(c: Comparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """Two flats one person lived at, by the records under one valid ID number (:attr:`RecordArrays.moves`):
    the old address a register has not caught up with, and the new one."""
    flat_l, flat_r = batch.pair("household")
    at_two = undecided & (flat_l >= 0) & (flat_r >= 0) & (flat_l != flat_r)
    moved = np.zeros(len(batch), dtype=bool)
    where = np.flatnonzero(at_two)
    if len(where) and len(batch.arrays.moves):
        keys = flat_pair_keys(flat_l[where], flat_r[where], len(batch.arrays.household.values))
        moves = batch.arrays.moves
        found = np.minimum(np.searchsorted(moves, keys), len(moves) - 1)
        moved[where] = moves[found] == keys
    return moved


def _per_record(codes: np.ndarray, aliases: pd.DataFrame, n: int) -> np.ndarray:
    """The codes of each record's aliases as an ``(n, k)`` matrix, ``k`` the most aliases any record has
    (0 where none has one), ``-1`` where a record has fewer."""
    width = int(aliases["alias"].max()) + 1 if len(aliases) else 0
    out = np.full((n, width), -1, dtype=np.int32)
    out[aliases["rid"].to_numpy(), aliases["alias"].to_numpy()] = codes
    return out


def flat_pair_keys(flat_a: np.ndarray, flat_b: np.ndarray, n_flats: int) -> np.ndarray:
    """One int64 per unordered pair of flat codes (either order gives the same key)."""
    low = np.minimum(flat_a, flat_b).astype(np.int64)
    high = np.maximum(flat_a, flat_b).astype(np.int64)
    return low * np.int64(max(n_flats, 1)) + high


def _latin_addresses(batch: PairBatch) -> np.ndarray:
    """Pairs of two addresses in Latin letters (both have a word form), compared on their words."""
    words_l, words_r = batch.pair("address_words")
    return (words_l >= 0) & (words_r >= 0)


# ------------------------------------------------------------------------------------ string scoring


def _similar(
    column: CodedStrings,
    left: np.ndarray,
    right: np.ndarray,
    mask: np.ndarray,
    scorer: Callable[..., float],
    threshold: float,
) -> np.ndarray:
    """Mask of pairs (among ``mask``) whose values are at least ``threshold`` similar.

    Only the pairs in ``mask`` (the undecided ones) are scored, each distinct pair of values once, in
    rapidfuzz's batch API on all cores; ``score_cutoff`` lets it stop early on hopeless pairs.
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


def _identity_columns(prepared: pd.DataFrame) -> dict[str, Any]:
    """The columns of :class:`RecordArrays` a valid ID number decides: the number itself, and the sex
    and birth date it overrules the stated ones with."""
    ids = prepared["id_number"].str.upper()
    # Resident ID numbers go on a digit matrix; identifiers of another scheme (see
    # :func:`dedup.prepare.generic_identifier`) are compared as strings.
    id_resident = ids.str.fullmatch(r"[0-9]{17}[0-9X]").fillna(False).to_numpy(dtype=bool)
    # 'X' (check value 10) becomes byte 10 so equal IDs have equal rows; absent IDs stay all zero.
    id_text = ids.where(id_resident, "0" * _ID_LENGTH).str.replace("X", ":", regex=False)
    id_bytes = "".join(id_text.tolist()).encode("ascii")
    id_digits = (np.frombuffer(id_bytes, dtype=np.uint8).reshape(-1, _ID_LENGTH) - ord("0")).astype(np.uint8)
    id_digits[~id_resident] = 0
    return {
        "id_digits": id_digits,
        "id_present": ids.notna().to_numpy(dtype=bool),
        "id_valid": prepared["id_number_valid"].to_numpy(dtype=bool) & id_resident,
        "id_text": CodedStrings.of(ids),
        "id_resident": id_resident,
        "sex": CodedStrings.of(prepared["sex"]),
        **_birth_columns(prepared["birth_date"], prepared["birth_precision"]),
    }


def _address_and_identity_arrays(prepared: pd.DataFrame) -> dict[str, Any]:
    """:func:`_address_arrays` and :func:`_identity_columns`: the half of :class:`RecordArrays` made beside the names."""
    return {**_address_arrays(prepared), **_identity_columns(prepared)}


def _address_arrays(prepared: pd.DataFrame) -> dict[str, Any]:
    """The :class:`RecordArrays` columns of the records' addresses, flats and communities."""
    address, hukou_address = CodedStrings.with_other(prepared["address"], prepared["hukou_address"])
    household, hukou_household = CodedStrings.with_other(prepared["household"], prepared["hukou_household"])
    return {"address": address, "household": household, **building_rooms(household), "hukou_address": hukou_address,
            "hukou_household": hukou_household, "community": CodedStrings.of(prepared["community"]),
            "address_words": CodedStrings.of(prepared["address_words"])}


def building_rooms(household: CodedStrings) -> dict[str, np.ndarray]:
    """:attr:`RecordArrays.building_room` and :attr:`RecordArrays.unit_given` from the records' flats, read
    once per distinct flat (``place|building-unit-room``, :func:`dedup.prepare.household_key`)."""
    flats = pa.array(household.values, type=pa.large_string())
    parts = pc.extract_regex(flats, r"^(?P<place>[^|]+)\|(?P<building>[0-9]+)-(?P<unit>(?:[0-9]+-)*)(?P<room>[0-9]+)$")
    part = {name: pc.if_else(pc.is_valid(parts), parts.field(name), pa.scalar(None, pa.large_string()))
            for name in ("place", "building", "unit", "room")}
    text = [part["place"], "|", part["building"], "-", part["room"], ""]
    loose = pc.binary_join_element_wise(*(pa.scalar(t, pa.large_string()) if isinstance(t, str) else t for t in text))
    codes = pc.dictionary_encode(loose).indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)
    unit = pc.fill_null(pc.greater(pc.utf8_length(part["unit"]), 0), False).to_numpy(zero_copy_only=False)
    # A record without a flat (code -1) takes the value appended for "none".
    return {"building_room": np.append(codes, np.int32(-1))[household.codes],
            "unit_given": np.append(unit, False)[household.codes]}


def _patched(arrays: RecordArrays, rows: np.ndarray, part: dict[str, Any]) -> dict[str, Any]:
    """The columns of ``arrays`` named in ``part`` with the values of ``rows`` replaced by ``part``'s."""
    out: dict[str, Any] = {}
    for name, value in part.items():
        if isinstance(value, CodedStrings):
            out[name] = getattr(arrays, name).patched(rows, value)
        else:
            column = getattr(arrays, name).copy()
            column[rows] = value
            out[name] = column
    return out


def _birth_columns(dates: pd.Series, precision: pd.Series) -> dict[str, np.ndarray]:
    """The birth-date columns of :class:`RecordArrays` from ISO dates and their precision codes; each
    distinct date is read once (a district has a few tens of thousands of birth dates)."""
    precision = precision.to_numpy(dtype=np.int8)
    codes, distinct = pd.factorize(dates, use_na_sentinel=True)
    # Code -1 (no date) takes the row appended for it: zeros, and no day number.
    distinct = pd.Series([*distinct, pd.NA], dtype=TEXT)
    birth = _digit_matrix(distinct, 10)[codes]
    days = _days(distinct)[codes]
    return {
        "birth_year": _number(birth, 0, 4, precision >= 1),
        "birth_month": _number(birth, 5, 7, precision >= 2),
        "birth_day": _number(birth, 8, 10, precision >= 3),
        "birth_digits": birth[:, [0, 1, 2, 3, 5, 6, 8, 9]].astype(np.uint8),
        "birth_days": np.where(precision >= 3, days, _NO_DAY).astype(np.int32),
        "birth_precision": precision,
    }


def _digit_matrix(values: pd.Series, width: int) -> np.ndarray:
    """ASCII text as an (n, width) matrix of digit values; missing and short values pad with zeros."""
    text = values.fillna("").to_numpy(dtype=f"U{width}").astype(f"S{width}")
    matrix = np.frombuffer(text.tobytes(), dtype=np.uint8).reshape(len(values), width).astype(np.int16)
    return np.where(matrix >= ord("0"), matrix - ord("0"), 0).astype(np.int16)


#: Words of a Latin name compared one by one (a fourth and later word is dropped).
_NAME_WORDS = 3


def _word_matrix(words: pd.Series, k: int) -> np.ndarray:
    """Space-separated words as a (rows, k) object matrix, ``""`` where a value has fewer than k words."""
    matrix = np.full((len(words), k), "", dtype=object)
    # Only the values present are split: most names are Chinese, with no words here at all.
    present = words.notna().to_numpy(dtype=bool)
    if not present.any():
        return matrix
    split = words[present].str.split(" ", n=k, expand=True, regex=False)
    for column in range(min(k, split.shape[1])):
        matrix[present, column] = split[column].fillna("").to_numpy(dtype=object)
    return matrix


#: The day number of an unknown date: far from every real one, so it is never a few days from another.
_NO_DAY = np.int32(-(10**6))


def _days(dates: pd.Series) -> np.ndarray:
    """Days since 1970-01-01 of ISO dates (int32); :data:`_NO_DAY` where unknown or not a full date."""
    parsed = pd.to_datetime(dates, format="%Y-%m-%d", errors="coerce")
    days = (parsed - pd.Timestamp("1970-01-01")).dt.days
    return days.fillna(int(_NO_DAY)).to_numpy(dtype=np.int64).astype(np.int32)


def _number(digits: np.ndarray, start: int, stop: int, known: np.ndarray) -> np.ndarray:
    """The decimal number in columns ``start:stop`` of a digit matrix, 0 where ``known`` is false."""
    value = np.zeros(len(digits), dtype=np.int16)
    for column in range(start, stop):
        value = value * 10 + digits[:, column]
    return np.where(known, value, np.int16(0)).astype(np.int16)
