"""Fit a Fellegi–Sunter model to the records being linked, without labels, and explain its scores.

:class:`dedup.settings.ModelSpec` declares how; this module carries it out, vectorised over level
codes (never a Python loop per pair):

- **u** (P(level | two different people)) from random record pairs compared by the same level tests as
  the candidates, exact agreement on text from the value frequencies (``Σ f²``) (``u_source="random"``,
  as Splink does), or from the non-match class of the EM (``u_source="candidates"``);
- **m** (P(level | same person)) by expectation–maximisation over a sample of the candidate pairs.
  Pairs with the same level on every comparison are one pattern, counted where the pairs are (the
  backend, :class:`TrainingPatterns`), so each iteration runs over a few thousand patterns, not
  millions of pairs. EM starts from the declared level weights (m from the pairs they would link, u
  from the others, λ as their share), a ``null`` level (a value missing on either side) carries no
  evidence by construction, and a level too rare to estimate keeps its declared weight;
- the **prior** λ, so that every pair gets a match probability, not only a score: with u from random
  pairs, the chance that two random records match, ``λ_candidates · candidate pairs / (n(n−1)/2)``;
- a **term-frequency adjustment**: an exact match on a common name (王伟) is weaker evidence than on a
  rare one, so the exact level's u is scaled per value by how often the value occurs;
- a **household context** (:class:`PairContext`): for two records at one flat, u of the name, birth
  date, sex and phone measured on flatmates two valid ID numbers tell apart, and for two at one flat
  born the same day or month, u of the name measured on twins — where random pairs would make a shared
  phone or birthday near-conclusive.

Level codes are positions in each comparison's declared levels. The ``null`` level is declared first
(code 0, missing data to the EM); the exact level is found by its label
(:attr:`dedup.settings.Comparison.exact_label`), wherever it is declared.

A pair's match weight is ``prior + Σ log2(m/u)`` in bits, and each term is reported on its own
(a waterfall): :meth:`FellegiSunterModel.contributions`.

Example:
    >>> model = train_model(backend, arrays, settings, n_candidates)              # doctest: +SKIP
    >>> model.summary(settings.comparisons)                                       # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
import pandas as pd

from core.threads import beside
from dedup.compare import STATED_FIELDS, CodedStrings, RecordArrays, by_similarity, compare_pairs
from dedup.settings import Comparison, LinkSettings, ModelSpec

__all__ = [
    "FLAT_FIELDS",
    "EmResult",
    "FellegiSunterModel",
    "PATTERN_COUNT_COLUMNS",
    "PairContext",
    "PatternCounter",
    "TermFrequencies",
    "TrainingPatterns",
    "count_patterns",
    "declared_model",
    "expectation_maximisation",
    "flatmate_pairs",
    "flatmate_u",
    "match_probability",
    "random_pair_u",
    "same_id_pairs",
    "shared_id_levels",
    "shared_id_m",
    "term_frequencies",
    "train_model",
]

log = logging.getLogger(__name__)

_FLOOR = 1e-6

#: Comparisons whose u is measured again on flatmates (:func:`flatmate_u`). Not the ID number (the
#: flatmates are chosen by theirs), not the address (it is what they share), not the community (not
#: compared at one flat), not the source (records without an ID number, half the census, are missing
#: from the flatmates, so their sources would be under-counted).
FLAT_FIELDS: tuple[str, ...] = ("name", "birth_date", "sex", "phone")

#: Pairs a group's u counts as seen at its wider group's u (:func:`flatmate_u`).
_PRIOR_PAIRS = 20.0

#: Address levels that put two records in one household: one flat (or, with one record's unit left out,
#: most likely one), a flat and the one a member of the household moved from, or a flat and the one a member
#: is registered at (different people there are family as much as at one flat).
_SAME_FLAT_LABELS: tuple[str, ...] = ("exact", "household", "building_room", "moved", "registered")


def match_probability(match_weight: np.ndarray | float) -> np.ndarray:
    """Match probability ``2**w / (1 + 2**w)`` of match weights ``w`` in bits.

    Example:
        >>> float(match_probability(0.0))
        0.5
    """
    w = np.clip(np.asarray(match_weight, dtype=np.float64), -60.0, 60.0)
    return 1.0 / (1.0 + np.exp2(-w))


@dataclass(frozen=True)
class TermFrequencies:
    """Per-value u of one field's exact level: ``scale * frequency[value code]``.

    ``frequency`` is the share of records (with a value) holding each distinct value of the field, in
    the order of the field's :class:`dedup.compare.CodedStrings` values (``values``, the values it was
    counted on); ``exact_code`` is the code of the level it adjusts (the comparison's ``exact_label``);
    ``unseen`` the frequency a value missing from ``values`` takes when the table is keyed to other
    records (:meth:`keyed_to`): that of a value held by one record.
    """

    field: str
    frequency: np.ndarray
    scale: float
    exact_code: int
    values: np.ndarray | None = None
    unseen: float = _FLOOR

    def u(self, codes: np.ndarray) -> np.ndarray:
        """u of an exact match on the values with these codes."""
        return np.maximum(self.scale * self.frequency[np.asarray(codes, dtype=np.int64)], _FLOOR)

    def keyed_to(self, column: CodedStrings) -> TermFrequencies:
        """This table with its frequencies in the order of ``column``'s values, found by value: a model
        kept from an earlier run (:mod:`dedup.incremental`) scores records whose codes are not the ones
        it was counted on."""
        if self.values is None:
            raise ValueError(f"the term frequencies of {self.field} were made without their values; they "
                             "cannot be keyed to other records")
        if column.values is self.values:
            return self
        found = pd.Index(self.values).get_indexer(pd.Index(column.values))
        frequency = np.where(found >= 0, self.frequency[np.maximum(found, 0)], self.unseen)
        return replace(self, frequency=frequency, values=column.values)


@dataclass(frozen=True)
class PairContext:
    """Pairs alike in a way two strangers rarely are, and the weights some fields take for them.

    Fellegi–Sunter weighs each comparison by how often two *random* records agree on it (u), as if the
    comparisons were independent among different people. They are not among flatmates: a family shares
    a phone, siblings a generation character (子涵 / 子轩), twins a birthday and often all three. For the
    pairs a context takes, the fields it lists are weighed with u measured on people known to be two
    that share the context (:func:`flatmate_u`) — the model's m, that u.

    Attributes:
        name: ``one_flat`` or ``born_together`` (at one flat and born the same day or month).
        conditions: ``(field, level codes)``: a pair is in the context when every field reached one
            of its codes.
        weights: per field, bits per level code for pairs in the context.
        u: per field, the u those weights come from.
        pairs: how many pairs of people known to be two (flatmates with two valid ID numbers) u was
            measured on.
    """

    name: str
    conditions: tuple[tuple[str, tuple[int, ...]], ...]
    weights: dict[str, np.ndarray]
    u: dict[str, np.ndarray]
    pairs: int

    def applies(self, levels: pd.DataFrame) -> np.ndarray:
        """Mask of the pairs (rows of level codes) in this context."""
        mask = np.ones(len(levels), dtype=bool)
        for field_name, codes in self.conditions:
            mask &= np.isin(levels[field_name].to_numpy(), codes)
        return mask


@dataclass(frozen=True)
class FellegiSunterModel:
    """Level weights (bits) per comparison, a prior, and term-frequency tables; how a pair is scored.

    Attributes:
        weights: per field, the weight of each level code (``null`` is 0).
        prior_weight: ``log2(λ / (1 - λ))``: the match weight of a pair before any comparison.
        m, u: per field, the estimated probabilities per level (empty when not trained).
        term_frequencies: per field with a term-frequency adjustment of its ``exact`` level.
        trained: whether the weights were estimated from the data (else they are the declared ones).
        stats: how the training went (pairs, iterations, λ …), for the run statistics.
        contexts: pairs alike in a way two strangers rarely are (at one flat; at one flat and born
            together), each with weights of its own for some fields (:class:`PairContext`), applied in
            order; empty when the data hold too few flatmates to learn from.
    """

    weights: dict[str, np.ndarray]
    prior_weight: float = 0.0
    m: dict[str, np.ndarray] = field(default_factory=dict)
    u: dict[str, np.ndarray] = field(default_factory=dict)
    term_frequencies: dict[str, TermFrequencies] = field(default_factory=dict)
    exact_m: dict[str, float] = field(default_factory=dict)
    max_level_weight: float = 20.0
    trained: bool = False
    contexts: tuple[PairContext, ...] = ()
    stats: dict[str, float | int | str] = field(default_factory=dict)

    def contributions(
        self, levels: pd.DataFrame, arrays: RecordArrays, rid_l: np.ndarray, rid_r: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Each comparison's contribution (bits, float32) to the match weight of every pair.

        Args:
            levels: level codes from :func:`dedup.compare.compare_pairs` for the pairs ``(rid_l, rid_r)``.
            arrays: the records' arrays (term frequencies look up the value of each pair).
            rid_l, rid_r: record positions of the pairs.
        """
        out: dict[str, np.ndarray] = {}
        within = [(context, context.applies(levels)) for context in self.contexts]
        for name, weights in self.weights.items():
            codes = levels[name].to_numpy(dtype=np.int64)
            contribution = weights[codes].astype(np.float32)
            for context, mask in within:
                if name in context.weights and mask.any():
                    contribution[mask] = context.weights[name][codes[mask]]
            if name in self.term_frequencies:
                exact, own = self._own_weights(name, codes, arrays, rid_l)
                contribution[exact] = own
            out[name] = contribution
        return out

    def most(self, name: str) -> float:
        """The most bits comparison ``name`` adds to any pair: its highest level weight in any context, or the
        highest a value's own weight (term frequencies, within ``max_level_weight``) can be."""
        most = float(self._top_weights(name).max())
        return max(most, self.max_level_weight) if name in self.term_frequencies else most

    def most_contributions(
        self, levels: pd.DataFrame, arrays: RecordArrays, rid_l: np.ndarray, rid_r: np.ndarray
    ) -> np.ndarray:
        """Per pair, the most the comparisons compared in ``levels`` add to its match weight (float32 bits),
        whatever the comparisons not yet made turn out to be: each level's weight in whichever context weighs it
        most (whether a pair is in a context may hang on the others), at a term-frequency level the value's own
        weight, as :meth:`contributions` gives it. At least the sum :meth:`contributions` gives for them."""
        total = np.zeros(len(levels), dtype=np.float32)
        for name in self.weights:
            if name not in levels:
                continue
            codes = levels[name].to_numpy(dtype=np.int64)
            contribution = self._top_weights(name)[codes].astype(np.float32)
            if name in self.term_frequencies:
                exact, own = self._own_weights(name, codes, arrays, rid_l)
                contribution[exact] = own
            total += contribution
        return total

    def _top_weights(self, name: str) -> np.ndarray:
        """Per level of comparison ``name``, its highest weight: the usual one or one a context gives it."""
        in_context = [context.weights[name] for context in self.contexts if name in context.weights]
        return np.maximum.reduce([self.weights[name], *in_context])

    def _own_weights(
        self, name: str, codes: np.ndarray, arrays: RecordArrays, rid_l: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The pairs whose comparison ``name`` reached the level its term frequencies weigh (exact), and the
        weight of each one's value there."""
        tf = self.term_frequencies[name]
        exact = np.flatnonzero(codes == tf.exact_code)
        value = getattr(arrays, name).codes[np.asarray(rid_l, dtype=np.int64)[exact]]
        weight = np.log2(self.exact_m[name] / tf.u(value))
        return exact, np.clip(weight, -self.max_level_weight, self.max_level_weight)

    def keyed_to(self, arrays: RecordArrays) -> FellegiSunterModel:
        """This model with its term frequencies keyed to ``arrays`` (:meth:`TermFrequencies.keyed_to`): the
        same weights for the same values, whatever records it was trained on."""
        tables = {name: tf.keyed_to(getattr(arrays, name)) for name, tf in self.term_frequencies.items()}
        return replace(self, term_frequencies=tables)

    def context_of(self, levels: pd.DataFrame) -> np.ndarray:
        """Per pair, the name of the last (most specific) :class:`PairContext` it is in, or ``None``."""
        out = np.full(len(levels), None, dtype=object)
        for context in self.contexts:
            out[context.applies(levels)] = context.name
        return out

    def summary(self, comparisons: tuple[Comparison, ...]) -> pd.DataFrame:
        """One row per comparison level: ``field, level, m, u, weight`` (m and u are NaN if not trained),
        and ``weight_<context>`` per :class:`PairContext` (NaN where the context keeps the usual weight)."""
        rows = []
        for comparison in comparisons:
            m = self.m.get(comparison.field)
            u = self.u.get(comparison.field)
            for code, label in enumerate(comparison.labels):
                rows.append(
                    {
                        "field": comparison.field,
                        "level": label,
                        "m": float(m[code]) if m is not None else math.nan,
                        "u": float(u[code]) if u is not None else math.nan,
                        "weight": float(self.weights[comparison.field][code]),
                        **{
                            f"weight_{context.name}": (
                                float(context.weights[comparison.field][code])
                                if comparison.field in context.weights else math.nan
                            )
                            for context in self.contexts
                        },
                    }
                )
        return pd.DataFrame(rows)


def declared_model(settings: LinkSettings) -> FellegiSunterModel:
    """The declared (hand-set) level weights as a model: no prior, no term frequencies."""
    weights = {c.field: np.asarray(c.weights(), dtype=np.float64) for c in settings.comparisons}
    return FellegiSunterModel(weights=weights, stats={"model": "declared"})


@dataclass(frozen=True)
class EmResult:
    """What :func:`expectation_maximisation` estimated: m and u per comparison (index 0, ``null``, is
    unused), the share of matches λ, the posterior match probability per input row, and iterations run."""

    m: list[np.ndarray]
    u: list[np.ndarray]
    lam: float
    posterior: np.ndarray
    iterations: int


def expectation_maximisation(
    codes: np.ndarray,
    n_levels: list[int],
    m: list[np.ndarray],
    u: list[np.ndarray],
    lam: float,
    *,
    counts: np.ndarray | None = None,
    fixed_weights: list[np.ndarray] | None = None,
    fix_u: bool = False,
    iterations: int = 25,
    tolerance: float = 1e-4,
) -> EmResult:
    """Fit a two-class latent model (match / non-match) to comparison level codes.

    Comparisons are conditionally independent given the class (Fellegi–Sunter). Level 0 (``null``)
    is missing data: it adds nothing to either class. Identical rows are collapsed into patterns first,
    so an iteration costs a few ``bincount`` calls over the distinct patterns.

    Args:
        codes: ``(pairs, comparisons)`` integer level codes.
        n_levels: number of levels (``null`` included) of each comparison.
        m, u: starting probabilities per comparison, each of length ``n_levels[c]``.
        lam: starting share of matches.
        counts: how many pairs each row of ``codes`` stands for (one each when omitted): the EM of
            :func:`train_model` runs on a sample already counted by pattern (:class:`TrainingPatterns`).
        fixed_weights: per comparison, a weight in bits per level, or NaN where EM estimates it; a
            fixed level keeps its weight in the E-step (its m and u are still reported).
        fix_u: keep ``u`` as given (e.g. from random pairs) and estimate only m and λ, as Splink does:
            the non-match class is then held to what different people look like, so EM cannot settle
            on "match = identical records" and call every pair with a typo a non-match.
        iterations: at most this many EM iterations.
        tolerance: stop when no m or u moves by more than this.

    Example:
        >>> codes = np.array([[1, 1], [2, 2], [1, 1], [2, 2]])
        >>> start = [np.array([0, .6, .4]), np.array([0, .6, .4])]
        >>> fit = expectation_maximisation(codes, [3, 3], start, [np.array([0, .4, .6])] * 2, 0.5)
        >>> round(fit.lam, 2), fit.m[0].round(2).tolist()
        (0.5, [0.0, 1.0, 0.0])
    """
    codes = np.asarray(codes, dtype=np.int64)
    k = codes.shape[1]
    keys = codes @ _radix(n_levels)
    distinct, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    patterns = codes[first]
    count = np.bincount(inverse, weights=None if counts is None else np.asarray(counts, dtype=np.float64),
                        minlength=len(distinct)).astype(np.float64)
    m = [np.asarray(p, dtype=np.float64).copy() for p in m]
    u = [np.asarray(p, dtype=np.float64).copy() for p in u]
    fixed = fixed_weights or [np.full(n, np.nan) for n in n_levels]
    done = 0
    for done in range(1, iterations + 1):
        posterior = _posterior(patterns, m, u, fixed, lam)
        match_mass = count * posterior
        lam = float(np.clip(match_mass.sum() / count.sum(), _FLOOR, 1.0 - _FLOOR))
        moved = 0.0
        for c in range(k):
            new_m = _normalised(np.bincount(patterns[:, c], weights=match_mass, minlength=n_levels[c]))
            new_u = (
                u[c] if fix_u else _normalised(np.bincount(patterns[:, c], weights=count - match_mass, minlength=n_levels[c]))
            )
            moved = max(moved, float(np.abs(new_m - m[c]).max()), float(np.abs(new_u - u[c]).max()))
            m[c], u[c] = new_m, new_u
        if moved < tolerance:
            break
    posterior = _posterior(patterns, m, u, fixed, lam)
    return EmResult(m=m, u=u, lam=lam, posterior=posterior[inverse], iterations=done)


def _posterior(patterns: np.ndarray, m: list, u: list, fixed: list, lam: float) -> np.ndarray:
    """Match probability of each distinct level pattern under m, u, the fixed weights and prior lam."""
    logit = np.full(len(patterns), math.log(lam / (1.0 - lam)))
    for c in range(patterns.shape[1]):
        weight = np.log(np.maximum(m[c], _FLOOR)) - np.log(np.maximum(u[c], _FLOOR))
        weight = np.where(np.isnan(fixed[c]), weight, fixed[c] * math.log(2.0))
        weight[0] = 0.0  # a missing value is no evidence either way
        logit += weight[patterns[:, c]]
    return 1.0 / (1.0 + np.exp(-np.clip(logit, -700, 700)))


def random_pair_u(
    arrays: RecordArrays, comparisons: tuple[Comparison, ...], n_pairs: int, seed: int, chunk_size: int = 1_000_000
) -> list[np.ndarray]:
    """u per comparison level from random record pairs (two distinct records each) and value frequencies.

    Matching pairs among random ones are so rare (about one in n) that their level frequencies are the
    non-match ones. Exact agreement on a text field (the exact level of name, sex, phone, address) is
    rare and its u is known exactly from the value frequencies: ``Σ f²``, the chance that two random records
    with a value share it. The other levels are counted on ``n_pairs`` random pairs — a quarter of
    them for the string-similarity comparisons (name, address), whose rapidfuzz scoring dominates the
    cost and whose levels are common enough to need fewer pairs. A level never seen gets half a pair,
    so its weight stays finite.
    """
    n = len(arrays)
    rng = np.random.default_rng(seed)
    fuzzy = [by_similarity(c) for c in comparisons]
    counts = [np.zeros(len(c.labels), dtype=np.float64) for c in comparisons]
    sizes = {True: max(n_pairs // 4, 1), False: n_pairs}
    for is_fuzzy in (False, True):
        group = tuple(c for c, f in zip(comparisons, fuzzy, strict=True) if f == is_fuzzy)
        if not group:
            continue
        total = sizes[is_fuzzy]
        for start in range(0, total, chunk_size):
            size = min(chunk_size, total - start)
            rid_l = rng.integers(0, n, size)
            rid_r = rng.integers(0, n - 1, size)
            rid_r += rid_r >= rid_l
            levels = compare_pairs(arrays, rid_l, rid_r, group)
            for comparison in group:
                c = comparisons.index(comparison)
                counts[c] += np.bincount(levels[comparison.field].to_numpy(dtype=np.int64), minlength=len(comparison.labels))
    out = []
    for comparison, count in zip(comparisons, counts, strict=True):
        count[1:] += 0.5
        u = _normalised(count)
        column = getattr(arrays, comparison.field, None)
        if isinstance(column, CodedStrings) and comparison.exact_label is not None:
            u = _with_exact_u(u, comparison.code(comparison.exact_label), term_frequencies(column))
        out.append(u)
    return out


def _with_exact_u(u: np.ndarray, exact_code: int, frequency: np.ndarray) -> np.ndarray:
    """``u`` with the exact level's u set to ``Σ f²`` and the other non-null levels scaled to the rest."""
    exact = float(np.clip(np.square(frequency).sum(), _FLOOR, 1.0 - _FLOOR))
    others = np.ones(len(u), dtype=bool)
    others[[0, exact_code]] = False
    out = np.zeros_like(u)
    out[exact_code] = exact
    out[others] = u[others] / max(u[others].sum(), _FLOOR) * (1.0 - exact)
    return out


def term_frequencies(column: CodedStrings) -> np.ndarray:
    """Share of the records with a value that hold each distinct value (in ``column.values`` order)."""
    present = column.codes[column.codes >= 0]
    counts = np.bincount(present, minlength=len(column.values)).astype(np.float64)
    return counts / max(len(present), 1)


def flatmate_pairs(arrays: RecordArrays, max_flat_size: int, max_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of records at one flat (:func:`dedup.prepare.household_key`) that carry two different valid
    ID numbers: two people by construction (a keying slip leaves an ID number invalid), and the people a
    record is most easily confused with — spouses, siblings, twins.

    Only records whose stated birth date agrees with their own ID number's take part: a record keyed
    with a household member's number (``borrowed_id``) states its own, and would make one person look
    like two flatmates sharing a name. Flats with more than ``max_flat_size`` such records (a dormitory,
    a placeholder address) are left out; at most ``max_pairs`` pairs are kept, drawn at random with
    ``seed``. Pairs are generated per size of flat, vectorised, never per flat.
    """
    flat = arrays.household.codes
    keep = np.flatnonzero((flat >= 0) & arrays.id_valid & _vouches_for_its_id(arrays))
    order = keep[np.argsort(flat[keep], kind="stable")]
    codes = flat[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if len(codes) else np.empty(0, dtype=np.int64)
    sizes = np.diff(np.r_[starts, len(codes)])
    left: list[np.ndarray] = [np.empty(0, dtype=np.int64)]
    right: list[np.ndarray] = [np.empty(0, dtype=np.int64)]
    for size in np.unique(sizes[(sizes >= 2) & (sizes <= max_flat_size)]).tolist():
        first = starts[sizes == size]
        i, j = np.triu_indices(size, k=1)
        left.append(order[(first[:, None] + i[None, :]).ravel()])
        right.append(order[(first[:, None] + j[None, :]).ravel()])
    rid_l, rid_r = np.concatenate(left), np.concatenate(right)
    two_people = arrays.id_text.codes[rid_l] != arrays.id_text.codes[rid_r]
    rid_l, rid_r = rid_l[two_people], rid_r[two_people]
    if len(rid_l) > max_pairs:
        chosen = np.sort(np.random.default_rng(seed).choice(len(rid_l), size=max_pairs, replace=False))
        rid_l, rid_r = rid_l[chosen], rid_r[chosen]
    return rid_l, rid_r


def same_id_pairs(arrays: RecordArrays, max_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of records that carry one and the same valid ID number: one person by construction (a
    keying slip leaves the check character failing), whatever else the two records say.

    Each record with a valid number is paired with the next of its number in a random order (``seed``),
    so a number on k records gives k − 1 pairs and the sample is linear in the records; at most
    ``max_pairs`` are kept. Vectorised: one sort, never a loop per number.
    """
    keep = np.flatnonzero(arrays.id_valid & (arrays.id_text.codes >= 0))
    rng = np.random.default_rng(seed)
    keep = keep[rng.permutation(len(keep))]
    order = keep[np.argsort(arrays.id_text.codes[keep], kind="stable")]
    same = arrays.id_text.codes[order[1:]] == arrays.id_text.codes[order[:-1]]
    rid_l, rid_r = order[:-1][same], order[1:][same]
    if len(rid_l) > max_pairs:
        chosen = np.sort(rng.choice(len(rid_l), size=max_pairs, replace=False))
        rid_l, rid_r = rid_l[chosen], rid_r[chosen]
    return rid_l.astype(np.int64), rid_r.astype(np.int64)


#: Levels a shared ID number cannot show as they arise without one, per field: ``moved`` is defined by
#: the flats the records of one valid number give, so among those very pairs it would take every move.
_DEFINED_BY_SHARED_IDS: dict[str, tuple[str, ...]] = {"address": ("moved",)}

#: Comparisons whose m stays the EM's: the ID number (it chose the pairs), and the birth date, whose
#: levels depend on the precision each source gives as much as on the person — records with a valid
#: number state a day far more often than the census rows without one, which give a month.
_EM_ONLY: tuple[str, ...] = ("id_number", "birth_date")


def shared_id_levels(
    arrays: RecordArrays, comparisons: tuple[Comparison, ...], spec: ModelSpec
) -> tuple[dict[str, np.ndarray], int]:
    """What :func:`shared_id_m` measures m on: the level codes of every comparison but the ID number and the birth
    date (:data:`_EM_ONLY`) on pairs one valid ID number makes certain (:func:`same_id_pairs`), sex and birth date as
    each record states them and the address without the ``moved`` level; and how many such pairs there are. No
    codes when the model does not measure m there, or with fewer than ``min_shared_id_pairs`` pairs. Needs no
    model: it is compared while the EM's sample is."""
    if not spec.m_from_shared_ids:
        return {}, 0
    rid_l, rid_r = same_id_pairs(arrays, spec.em_sample_pairs, spec.seed)
    if len(rid_l) < spec.min_shared_id_pairs:
        return {}, len(rid_l)
    unmoved = replace(arrays, moves=np.zeros(0, dtype=np.int64))
    codes: dict[str, np.ndarray] = {}
    for comparison in comparisons:
        if comparison.field in _EM_ONLY:
            continue
        # Pairs sharing a valid number are compared on what they state, too (dedup.compare.STATED_FIELDS).
        column = f"stated_{comparison.field}" if comparison.field in STATED_FIELDS else comparison.field
        codes[comparison.field] = compare_pairs(unmoved, rid_l, rid_r, (comparison,))[column].to_numpy(dtype=np.int64)
    return codes, len(rid_l)


def shared_id_m(
    comparisons: tuple[Comparison, ...],
    m_em: list[np.ndarray],
    measured: tuple[dict[str, np.ndarray], int],
) -> tuple[list[np.ndarray], int]:
    """m of every comparison but the ID number and the birth date, measured on pairs one valid ID number makes certain
    (``measured``: :func:`shared_id_levels`), drawn towards the EM's m as if ``_PRIOR_PAIRS`` pairs had been seen there.

    EM finds its matches among the pairs the comparisons already make look alike, so what it never
    finds it never learns: a mover without an ID number has two addresses, a changed phone, a census
    month for a birth day, and the EM, having matched only those that look alike, reads each of these
    as near-conclusive against (a phone change at −20 bits). Records that share a valid ID number are
    matched by the number alone, so how often *they* disagree on the other fields is how often one
    person's records disagree. Their sex and birth date are compared as each record states them (a
    valid ID's are equal by construction), and the address without the ``moved`` level, which those
    pairs define; that level keeps the EM's m and the others share the rest. The ID number's and the
    birth date's m stay the EM's (:data:`_EM_ONLY`). Returns the EM's m unchanged where nothing was measured.

    Returns:
        m per comparison, and how many pairs sharing an ID number it was measured on.
    """
    codes_of, n_pairs = measured
    if not codes_of:
        return m_em, n_pairs
    out: list[np.ndarray] = []
    for i, comparison in enumerate(comparisons):
        if comparison.field in _EM_ONLY:
            out.append(m_em[i])
            continue
        codes = codes_of[comparison.field]
        share = _normalised(np.bincount(codes, minlength=len(comparison.labels)).astype(np.float64))
        seen = float((codes > 0).sum())
        m = _normalised((share * seen + m_em[i] * _PRIOR_PAIRS) / (seen + _PRIOR_PAIRS))
        defined = [comparison.code(label) for label in _DEFINED_BY_SHARED_IDS.get(comparison.field, ())
                   if label in comparison.labels]
        if defined:
            kept = float(m_em[i][defined].sum())
            m = m * (1.0 - kept) / max(1.0 - float(m[defined].sum()), _FLOOR)
            m[defined] = m_em[i][defined]
        out.append(m)
    return out, n_pairs


def _vouches_for_its_id(arrays: RecordArrays) -> np.ndarray:
    """Records whose stated birth date (at the precision stated) is the one their ID number carries, or
    that state none."""
    stated = arrays.as_stated()
    precision = stated.birth_precision
    agrees = (precision < 1) | (stated.birth_year == arrays.birth_year)
    agrees &= (precision < 2) | (stated.birth_month == arrays.birth_month)
    agrees &= (precision < 3) | (stated.birth_day == arrays.birth_day)
    return agrees


def flatmate_u(
    arrays: RecordArrays,
    comparisons: tuple[Comparison, ...],
    rid_l: np.ndarray,
    rid_r: np.ndarray,
    prior: dict[str, np.ndarray],
    strength: float = _PRIOR_PAIRS,
) -> dict[str, np.ndarray]:
    """u per level of each comparison in :data:`FLAT_FIELDS` for two different people of one flat,
    measured on the flatmates ``rid_l, rid_r`` (:func:`flatmate_pairs`).

    Random pairs say how often two strangers agree; two records at one flat are not strangers. Family
    members share a phone, siblings a generation character (子涵 / 子轩), twins a birthday, so agreement
    on these says much less about a pair at one flat than about two random records. Fellegi–Sunter
    assumes the comparisons independent given the class; between different people they are not (a shared
    flat makes a shared birthday likelier), and this conditions them on the flat instead of assuming.

    Birth dates: a valid ID number gives a day, so the flatmates are compared at each common precision
    (day, month, year) and each level's u is their mixture in the proportions the records' own
    precisions give two random records (the census gives a month).

    Each field's u is drawn towards its ``prior`` (the u of a wider group: strangers for flatmates,
    flatmates for twins) as if ``strength`` pairs had been seen there: a level the flatmates never reach
    is rare among them, not impossible, and a small group (twins) is not read as the whole truth.
    """
    out: dict[str, np.ndarray] = {}
    for comparison in comparisons:
        if comparison.field not in FLAT_FIELDS:
            continue
        if comparison.field == "birth_date":
            share = _flatmate_birth_u(arrays, comparison, rid_l, rid_r)
        else:
            codes = compare_pairs(arrays, rid_l, rid_r, (comparison,))[comparison.field].to_numpy(dtype=np.int64)
            count = np.bincount(codes, minlength=len(comparison.labels)).astype(np.float64)
            share = _normalised(count)
        seen = float(len(rid_l))
        out[comparison.field] = _normalised((share * seen + prior[comparison.field] * strength) / (seen + strength))
    return out


def _flatmate_birth_u(arrays: RecordArrays, comparison: Comparison, rid_l: np.ndarray, rid_r: np.ndarray) -> np.ndarray:
    """:func:`flatmate_u` of the birth date: per common precision p, the share of flatmates reaching each
    level when both dates are cut to p, weighted by how often two random records have p in common."""
    held = np.bincount(arrays.birth_precision.astype(np.int64), minlength=4)[:4].astype(np.float64)
    at_least = np.cumsum(held[::-1])[::-1] / max(held.sum(), 1.0)  # P(precision >= p), p = 0..3
    common = at_least**2 - np.r_[at_least[1:], 0.0] ** 2  # P(min of two = p)
    mixture = common[1:] / max(common[1:].sum(), _FLOOR)  # over p = 1, 2, 3
    u = np.zeros(len(comparison.labels), dtype=np.float64)
    for p, share in zip((1, 2, 3), mixture.tolist(), strict=True):
        cut = replace(arrays, birth_precision=np.minimum(arrays.birth_precision, p).astype(np.int8))
        codes = compare_pairs(cut, rid_l, rid_r, (comparison,))[comparison.field].to_numpy(dtype=np.int64)
        count = np.bincount(codes, minlength=len(comparison.labels)).astype(np.float64)
        u += share * count / max(len(codes), 1)
    return _normalised(u)


#: Columns of :func:`count_patterns`: a pattern's key (its level codes in one integer), ``field`` empty for
#: the pattern's own count or a term-frequency field with ``value`` the code of the value both records of
#: an exact pair share, and how many sampled pairs there are.
PATTERN_COUNT_COLUMNS: dict[str, str] = {"key": "int64", "field": "object", "value": "int32", "pairs": "int64"}


@dataclass(frozen=True)
class TrainingPatterns:
    """The EM's sample of candidate pairs, counted rather than kept: what :func:`train_model` fits on.

    Counting is the pair-sized part, done where the pairs are (each batch or partition counts its own,
    :func:`count_patterns`, and the counts add up); what reaches the model is as many rows as there are
    distinct patterns, a few thousand however many pairs the sample holds.

    Attributes:
        patterns: ``(k, comparisons)`` level codes of each distinct pattern, in key order.
        pairs: how many sampled pairs show each pattern.
        exact_values: per term-frequency field, ``pattern`` (a row of ``patterns``), ``value`` (the code
            of the value the two records share, :class:`dedup.compare.CodedStrings`) and ``pairs``, for
            the pairs at the field's exact level.
    """

    patterns: np.ndarray
    pairs: np.ndarray
    exact_values: dict[str, pd.DataFrame]

    @classmethod
    def from_counts(cls, counts: list[pd.DataFrame], settings: LinkSettings) -> TrainingPatterns:
        """Add up partial counts (:func:`count_patterns` of batches, partitions, or already summed)."""
        n_levels = [len(c.labels) for c in settings.comparisons]
        total = (pd.concat([_no_counts(), *counts], ignore_index=True)
                 .groupby(["key", "field", "value"], sort=True, as_index=False)["pairs"].sum())
        own = total[total["field"] == ""]
        keys = own["key"].to_numpy(dtype=np.int64)
        patterns = np.stack([(keys // radix) % n for radix, n in zip(_radix(n_levels), n_levels, strict=True)], axis=1)
        exact_values = {}
        for name in _term_frequency_fields(settings):
            rows = total[total["field"] == name]
            exact_values[name] = pd.DataFrame({
                "pattern": np.searchsorted(keys, rows["key"].to_numpy(dtype=np.int64)),
                "value": rows["value"].to_numpy(dtype=np.int64),
                "pairs": rows["pairs"].to_numpy(dtype=np.int64),
            })
        return cls(patterns=patterns, pairs=own["pairs"].to_numpy(dtype=np.int64), exact_values=exact_values)


def count_patterns(arrays: RecordArrays, settings: LinkSettings, rid_l: np.ndarray, rid_r: np.ndarray) -> pd.DataFrame:
    """Compare the pairs ``(rid_l, rid_r)`` and count them by pattern, and their exact pairs of each
    term-frequency field by pattern and value, in :data:`PATTERN_COUNT_COLUMNS`: one batch's share of
    :class:`TrainingPatterns`."""
    if not len(rid_l):
        return _no_counts()
    comparisons = settings.comparisons
    levels = compare_pairs(arrays, rid_l, rid_r, comparisons)
    keys = levels[[c.field for c in comparisons]].to_numpy(dtype=np.int64) @ _radix([len(c.labels) for c in comparisons])
    own = pd.Series(keys).value_counts()
    counts = [pd.DataFrame({"key": own.index.to_numpy(dtype=np.int64), "field": "", "value": np.int32(-1),
                            "pairs": own.to_numpy(dtype=np.int64)})]
    for name in _term_frequency_fields(settings):
        comparison = settings.comparison(name)
        exact = levels[name].to_numpy() == comparison.code(comparison.exact_label)
        value = getattr(arrays, name).codes[np.asarray(rid_l)[exact]]
        shared = pd.DataFrame({"key": keys[exact], "value": value.astype(np.int32)}).value_counts()
        counts.append(pd.DataFrame({"key": shared.index.get_level_values("key").to_numpy(dtype=np.int64), "field": name,
                                    "value": shared.index.get_level_values("value").to_numpy(dtype=np.int32),
                                    "pairs": shared.to_numpy(dtype=np.int64)}))
    return pd.concat(counts, ignore_index=True).astype(PATTERN_COUNT_COLUMNS)


def _no_counts() -> pd.DataFrame:
    """No pattern counts, in :data:`PATTERN_COUNT_COLUMNS`."""
    return pd.DataFrame({name: pd.Series([], dtype=dtype) for name, dtype in PATTERN_COUNT_COLUMNS.items()})


def _radix(n_levels: list[int]) -> np.ndarray:
    """Place values that make a pattern of level codes one integer (:func:`expectation_maximisation`'s key)."""
    return np.cumprod([1, *n_levels[:-1]]).astype(np.int64)


def _term_frequency_fields(settings: LinkSettings) -> list[str]:
    compared = {c.field for c in settings.comparisons}
    return [name for name in settings.model.term_frequency if name in compared]


class PatternCounter(Protocol):
    """Counts the EM's sample where the candidate pairs are (:meth:`dedup.backend.PairBackend.training_patterns`)."""

    def training_patterns(self, arrays: RecordArrays, settings: LinkSettings, keep: float, seed: int) -> TrainingPatterns: ...


def train_model(
    pairs: PatternCounter, arrays: RecordArrays, settings: LinkSettings, n_candidates: int
) -> FellegiSunterModel:
    """Estimate m, u, λ and term frequencies from the records and their candidate pairs (no labels).

    Args:
        pairs: where the candidate pairs are (a :class:`dedup.backend.PairBackend`), to count the EM's sample.
        arrays: the prepared records' arrays.
        settings: comparisons (declared weights are the starting point and the fallback) and the
            :class:`dedup.settings.ModelSpec`.
        n_candidates: how many candidate pairs there are.

    Returns:
        The trained model, or :func:`declared_model` when ``settings.model.estimate`` is off or there
        are fewer than ``min_training_pairs`` candidate pairs to learn from.
    """
    spec = settings.model
    if not spec.estimate:
        return declared_model(settings)
    if n_candidates < spec.min_training_pairs or len(arrays) < 3:
        log.info(
            "model: %d candidate pairs, fewer than %d to learn from; using the declared weights",
            n_candidates, spec.min_training_pairs,
        )
        return declared_model(settings)
    comparisons = settings.comparisons
    fields = [c.field for c in comparisons]

    keep = min(1.0, spec.em_sample_pairs / max(n_candidates, 1))

    def beside_the_sample() -> tuple[list[np.ndarray], tuple[dict[str, np.ndarray], int]]:
        random_u = []
        if spec.u_source == "random":
            random_u = random_pair_u(arrays, comparisons, spec.u_sample_pairs, spec.seed, settings.chunk_size)
        return random_u, shared_id_levels(arrays, comparisons, spec)

    # Random pairs and pairs sharing a valid number are compared beside the sample of candidate pairs: none needs
    # the others, and all are mostly numpy, rapidfuzz and DuckDB.
    with beside(beside_the_sample) as measured:
        sample = pairs.training_patterns(arrays, settings, keep, spec.seed)
    u_random, shared_ids = measured.result()
    codes, count = sample.patterns, sample.pairs
    n_levels = [len(c.labels) for c in comparisons]

    declared = [np.asarray(c.weights(), dtype=np.float64) for c in comparisons]
    seen = [np.bincount(codes[:, i], weights=count, minlength=n) for i, n in enumerate(n_levels)]
    fixed = []
    for i, comparison in enumerate(comparisons):
        weights = np.full(n_levels[i], np.nan)
        for code, label in enumerate(comparison.labels):
            if f"{comparison.field}.{label}" in spec.fixed_levels or (code > 0 and seen[i][code] < spec.min_level_pairs):
                weights[code] = declared[i][code]
        fixed.append(weights)

    # Start from the declared weights: m from the pairs they would link, u from the rest (or from
    # random pairs when u is held fixed), λ as the share they would link.
    declared_score = sum(d[codes[:, i]] for i, d in enumerate(declared))
    linked = declared_score >= settings.match_threshold
    m_start = [_normalised(np.bincount(codes[linked, i], weights=count[linked], minlength=n) + 0.5)
               for i, n in enumerate(n_levels)]
    fix_u = spec.u_source == "random" and spec.em_fix_u
    u_start = (
        u_random
        if fix_u
        else [_normalised(np.bincount(codes[~linked, i], weights=count[~linked], minlength=n) + 0.5)
              for i, n in enumerate(n_levels)]
    )
    n_sampled = int(count.sum())
    lam_start = float(np.clip(count[linked].sum() / max(n_sampled, 1), 0.05, 0.95))
    fit = expectation_maximisation(
        codes, n_levels, m_start, u_start, lam_start, counts=count,
        fixed_weights=fixed, fix_u=fix_u, iterations=spec.em_iterations, tolerance=spec.em_tolerance,
    )

    m_final, shared_id_pairs = shared_id_m(comparisons, fit.m, shared_ids)
    n = len(arrays)
    if spec.u_source == "random":
        u_final = u_random
        all_pairs = n * (n - 1) / 2
        lam_all = float(np.clip(fit.lam * n_candidates / all_pairs, 1e-12, 1 - 1e-12))
        prior = math.log2(lam_all / (1.0 - lam_all))
    else:
        u_final = fit.u
        prior = math.log2(fit.lam / (1.0 - fit.lam))

    weights: dict[str, np.ndarray] = {}
    for i, comparison in enumerate(comparisons):
        w = np.log2(np.maximum(m_final[i], _FLOOR) / np.maximum(u_final[i], _FLOOR))
        w = np.clip(w, -spec.max_level_weight, spec.max_level_weight)
        w = np.where(np.isnan(fixed[i]), w, fixed[i])
        w[0] = 0.0
        weights[comparison.field] = w

    contexts = _pair_contexts(arrays, settings, m_final, u_final, fixed)

    tf_tables: dict[str, TermFrequencies] = {}
    exact_m: dict[str, float] = {}
    for name in _term_frequency_fields(settings):
        i = fields.index(name)
        exact_code = comparisons[i].code(comparisons[i].exact_label)
        if not np.isnan(fixed[i][exact_code]):
            continue
        frequency = np.maximum(term_frequencies(getattr(arrays, name)), 1.0 / max(n, 1))
        exact = sample.exact_values[name]
        if spec.u_source == "candidates" and len(exact):
            # Scale so the u of the exact level, averaged over the non-matching exact pairs, stays the level's u.
            pairs_of = exact["pairs"].to_numpy(dtype=np.float64)
            non_match = (1.0 - fit.posterior[exact["pattern"].to_numpy()]) * pairs_of
            mean_frequency = float(np.average(frequency[exact["value"].to_numpy()],
                                              weights=non_match if non_match.sum() > 0 else pairs_of))
            scale = float(u_final[i][exact_code]) / mean_frequency
        else:
            # u of an exact match on value v between two random records is its frequency f_v (Splink's rule).
            scale = 1.0
        tf_tables[name] = TermFrequencies(field=name, frequency=frequency, scale=scale, exact_code=exact_code,
                                          values=getattr(arrays, name).values, unseen=1.0 / max(n, 1))
        exact_m[name] = float(max(m_final[i][exact_code], _FLOOR))

    stats = {
        "model": f"em/{spec.u_source}",
        "training_pairs": n_sampled,
        "em_iterations": fit.iterations,
        "lambda_candidates": round(fit.lam, 6),
        "prior_weight": round(prior, 3),
        "shared_id_pairs": shared_id_pairs,
        **{f"context_{context.name}_pairs": context.pairs for context in contexts},
    }
    log.info(
        "model: EM over %d candidate pairs (%d patterns), %d iterations, λ=%.4f among candidates, prior %.2f bits (u from %s)",
        n_sampled, len(codes), fit.iterations, fit.lam, prior, spec.u_source,
    )
    return FellegiSunterModel(
        weights=weights,
        prior_weight=prior,
        m={c.field: m_final[i] for i, c in enumerate(comparisons)},
        u={c.field: u_final[i] for i, c in enumerate(comparisons)},
        term_frequencies=tf_tables,
        exact_m=exact_m,
        max_level_weight=spec.max_level_weight,
        trained=True,
        stats=stats,
        contexts=contexts,
    )


def _pair_contexts(
    arrays: RecordArrays,
    settings: LinkSettings,
    m: list[np.ndarray],
    u_random: list[np.ndarray],
    fixed: list[np.ndarray],
) -> tuple[PairContext, ...]:
    """The :class:`PairContext` the data can measure: ``one_flat`` (:data:`FLAT_FIELDS` weighed by
    flatmates) and ``born_together`` (the name weighed by flatmates born the same day: twins). None when
    the model does not ask for them, the address is not compared at flat level, or there are too few
    flatmates told apart by their ID numbers (``min_flatmate_pairs``, ``min_born_together_pairs``)."""
    spec = settings.model
    address, birth = settings.comparison("address"), settings.comparison("birth_date")
    if not spec.household_context or address is None or not set(_SAME_FLAT_LABELS) <= set(address.labels):
        return ()
    rid_l, rid_r = flatmate_pairs(arrays, spec.max_flat_size, spec.flatmate_pairs, spec.seed)
    if len(rid_l) < spec.min_flatmate_pairs:
        log.info("model: %d flatmates with two valid ID numbers, fewer than %d; no household context",
                 len(rid_l), spec.min_flatmate_pairs)
        return ()
    comparisons = settings.comparisons
    one_flat = ("address", tuple(address.code(label) for label in _SAME_FLAT_LABELS))
    u = flatmate_u(arrays, comparisons, rid_l, rid_r, prior=dict(zip((c.field for c in comparisons), u_random, strict=True)))
    contexts = [PairContext("one_flat", (one_flat,), _context_weights(comparisons, u, m, fixed, spec), u, len(rid_l))]
    if birth is not None and {"day", "month"} <= set(birth.labels) and settings.comparison("name") is not None:
        born = compare_pairs(arrays, rid_l, rid_r, (birth,))["birth_date"].to_numpy() == birth.code("day")
        if born.sum() >= spec.min_born_together_pairs:
            twins = flatmate_u(arrays, (settings.comparison("name"),), rid_l[born], rid_r[born], prior=u)
            together = (one_flat, ("birth_date", (birth.code("day"), birth.code("month"))))
            weights = _context_weights(comparisons, twins, m, fixed, spec)
            contexts.append(PairContext("born_together", together, weights, twins, int(born.sum())))
    log.info("model: household context from %d flatmates with two valid ID numbers (%s)", len(rid_l),
             ", ".join(f"{c.name}: {', '.join(c.weights)}" for c in contexts))
    return tuple(contexts)


def _context_weights(
    comparisons: tuple[Comparison, ...], u: dict[str, np.ndarray], m: list[np.ndarray], fixed: list[np.ndarray],
    spec: ModelSpec,
) -> dict[str, np.ndarray]:
    """``log2(m / u)`` per level of each field ``u`` covers, bounded, fixed and rare levels kept as declared."""
    weights: dict[str, np.ndarray] = {}
    for i, comparison in enumerate(comparisons):
        if comparison.field in u:
            w = np.log2(np.maximum(m[i], _FLOOR) / np.maximum(u[comparison.field], _FLOOR))
            w = np.clip(w, -spec.max_level_weight, spec.max_level_weight)
            w = np.where(np.isnan(fixed[i]), w, fixed[i])
            w[0] = 0.0
            weights[comparison.field] = w
    return weights


def _normalised(counts: np.ndarray) -> np.ndarray:
    """Probabilities over the non-null levels (index 0 is set to 0), floored so no level is impossible."""
    p = np.asarray(counts, dtype=np.float64).copy()
    p[0] = 0.0
    total = p[1:].sum()
    if total <= 0:
        p[1:] = 1.0 / (len(p) - 1)
        return p
    p[1:] = np.maximum(p[1:] / total, _FLOOR)
    p[1:] /= p[1:].sum()
    return p
