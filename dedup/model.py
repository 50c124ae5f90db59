"""Fit a Fellegi–Sunter model to the records being linked, without labels, and explain its scores.

:class:`dedup.settings.ModelSpec` declares how; this module carries it out, vectorised over level
codes (never a Python loop per pair):

- **u** (P(level | two different people)) from random record pairs compared by the same level tests as
  the candidates, exact agreement on text from the value frequencies (``Σ f²``) (``u_source="random"``,
  as Splink does), or from the non-match class of the EM (``u_source="candidates"``);
- **m** (P(level | same person)) by expectation–maximisation over a sample of the candidate pairs.
  Pairs with the same level on every comparison are one pattern, so each iteration runs over a few
  thousand patterns, not millions of pairs. EM starts from the declared level weights (m from the
  pairs they would link, u from the others, λ as their share), a ``null`` level (a value missing on
  either side) carries no evidence by construction, and a level too rare to estimate keeps its
  declared weight;
- the **prior** λ, so that every pair gets a match probability, not only a score: with u from random
  pairs, the chance that two random records match, ``λ_candidates · candidate pairs / (n(n−1)/2)``;
- a **term-frequency adjustment**: an exact match on a common name (王伟) is weaker evidence than on a
  rare one, so the exact level's u is scaled per value by how often the value occurs.

Level codes are positions in each comparison's declared levels. The ``null`` level is declared first
(code 0, missing data to the EM); the exact level is found by its label
(:attr:`dedup.settings.Comparison.exact_label`), wherever it is declared.

A pair's match weight is ``prior + Σ log2(m/u)`` in bits, and each term is reported on its own
(a waterfall): :meth:`FellegiSunterModel.contributions`.

Example:
    >>> model = train_model(con, arrays, settings, n_candidates)                  # doctest: +SKIP
    >>> model.summary(settings.comparisons)                                       # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from dedup.blocking import PAIRS_TABLE
from dedup.compare import CodedStrings, RecordArrays, compare_pairs
from dedup.settings import AddressComparison, Comparison, LinkSettings, NameComparison

__all__ = [
    "EmResult",
    "FellegiSunterModel",
    "TermFrequencies",
    "declared_model",
    "expectation_maximisation",
    "match_probability",
    "random_pair_u",
    "term_frequencies",
    "train_model",
]

log = logging.getLogger(__name__)

_FLOOR = 1e-6


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
    the order of the field's :class:`dedup.compare.CodedStrings` values; ``exact_code`` is the code of
    the level it adjusts (the comparison's ``exact_label``).
    """

    field: str
    frequency: np.ndarray
    scale: float
    exact_code: int

    def u(self, codes: np.ndarray) -> np.ndarray:
        """u of an exact match on the values with these codes."""
        return np.maximum(self.scale * self.frequency[np.asarray(codes, dtype=np.int64)], _FLOOR)


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
    """

    weights: dict[str, np.ndarray]
    prior_weight: float = 0.0
    m: dict[str, np.ndarray] = field(default_factory=dict)
    u: dict[str, np.ndarray] = field(default_factory=dict)
    term_frequencies: dict[str, TermFrequencies] = field(default_factory=dict)
    exact_m: dict[str, float] = field(default_factory=dict)
    max_level_weight: float = 20.0
    trained: bool = False
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
        for name, weights in self.weights.items():
            codes = levels[name].to_numpy(dtype=np.int64)
            contribution = weights[codes].astype(np.float32)
            tf = self.term_frequencies.get(name)
            if tf is not None:
                exact = np.flatnonzero(codes == tf.exact_code)
                value = getattr(arrays, name).codes[np.asarray(rid_l, dtype=np.int64)[exact]]
                tf_weight = np.log2(self.exact_m[name] / tf.u(value))
                contribution[exact] = np.clip(tf_weight, -self.max_level_weight, self.max_level_weight)
            out[name] = contribution
        return out

    def summary(self, comparisons: tuple[Comparison, ...]) -> pd.DataFrame:
        """One row per comparison level: ``field, level, m, u, weight`` (m and u are NaN if not trained)."""
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
    radix = np.cumprod([1, *n_levels[:-1]]).astype(np.int64)
    keys = codes @ radix
    distinct, first, inverse, count = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
    patterns = codes[first]
    count = count.astype(np.float64)
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
    fuzzy = [isinstance(c, NameComparison | AddressComparison) for c in comparisons]
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


def train_model(
    con: duckdb.DuckDBPyConnection, arrays: RecordArrays, settings: LinkSettings, n_candidates: int
) -> FellegiSunterModel:
    """Estimate m, u, λ and term frequencies from the records and their candidate pairs (no labels).

    Args:
        con: the connection holding the candidate pairs (``dedup_pairs``, see :mod:`dedup.blocking`).
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

    # A hash of the pair, not DuckDB's sampler: the same input gives the same sample however the
    # threads split the scan, so a re-run trains the same model.
    keep = min(1.0, spec.em_sample_pairs / max(n_candidates, 1))
    sample = con.execute(
        f"SELECT rid_l, rid_r FROM {PAIRS_TABLE} "
        f"WHERE hash(rid_l, rid_r, {int(spec.seed)}) % 1000000 < {int(keep * 1_000_000)}"
        if keep < 1.0
        else f"SELECT rid_l, rid_r FROM {PAIRS_TABLE}"
    ).fetchnumpy()
    rid_l, rid_r = np.asarray(sample["rid_l"]), np.asarray(sample["rid_r"])
    levels = compare_pairs(arrays, rid_l, rid_r, comparisons)
    codes = levels[fields].to_numpy(dtype=np.int64)
    n_levels = [len(c.labels) for c in comparisons]

    declared = [np.asarray(c.weights(), dtype=np.float64) for c in comparisons]
    seen = [np.bincount(codes[:, i], minlength=n) for i, n in enumerate(n_levels)]
    fixed = []
    for i, comparison in enumerate(comparisons):
        weights = np.full(n_levels[i], np.nan)
        for code, label in enumerate(comparison.labels):
            if f"{comparison.field}.{label}" in spec.fixed_levels or (code > 0 and seen[i][code] < spec.min_level_pairs):
                weights[code] = declared[i][code]
        fixed.append(weights)

    u_random = (
        random_pair_u(arrays, comparisons, spec.u_sample_pairs, spec.seed, settings.chunk_size)
        if spec.u_source == "random"
        else []
    )
    # Start from the declared weights: m from the pairs they would link, u from the rest (or from
    # random pairs when u is held fixed), λ as the share they would link.
    declared_score = sum(d[codes[:, i]] for i, d in enumerate(declared))
    linked = declared_score >= settings.match_threshold
    m_start = [_normalised(np.bincount(codes[linked, i], minlength=n) + 0.5) for i, n in enumerate(n_levels)]
    fix_u = spec.u_source == "random" and spec.em_fix_u
    u_start = (
        u_random
        if fix_u
        else [_normalised(np.bincount(codes[~linked, i], minlength=n) + 0.5) for i, n in enumerate(n_levels)]
    )
    lam_start = float(np.clip(linked.mean(), 0.05, 0.95))
    fit = expectation_maximisation(
        codes, n_levels, m_start, u_start, lam_start,
        fixed_weights=fixed, fix_u=fix_u, iterations=spec.em_iterations, tolerance=spec.em_tolerance,
    )

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
        w = np.log2(np.maximum(fit.m[i], _FLOOR) / np.maximum(u_final[i], _FLOOR))
        w = np.clip(w, -spec.max_level_weight, spec.max_level_weight)
        w = np.where(np.isnan(fixed[i]), w, fixed[i])
        w[0] = 0.0
        weights[comparison.field] = w

    tf_tables: dict[str, TermFrequencies] = {}
    exact_m: dict[str, float] = {}
    for name in (name for name in spec.term_frequency if name in fields):
        i = fields.index(name)
        exact_code = comparisons[i].code(comparisons[i].exact_label)
        if not np.isnan(fixed[i][exact_code]):
            continue
        frequency = np.maximum(term_frequencies(getattr(arrays, name)), 1.0 / max(n, 1))
        exact = codes[:, i] == exact_code
        value = getattr(arrays, name).codes[rid_l[exact]]
        if spec.u_source == "candidates" and exact.any():
            # Scale so the u of the exact level, averaged over the non-matching exact pairs, stays the level's u.
            non_match = 1.0 - fit.posterior[exact]
            mean_frequency = float(np.average(frequency[value], weights=non_match if non_match.sum() > 0 else None))
            scale = float(u_final[i][exact_code]) / mean_frequency
        else:
            # u of an exact match on value v between two random records is its frequency f_v (Splink's rule).
            scale = 1.0
        tf_tables[name] = TermFrequencies(field=name, frequency=frequency, scale=scale, exact_code=exact_code)
        exact_m[name] = float(max(fit.m[i][exact_code], _FLOOR))

    stats = {
        "model": f"em/{spec.u_source}",
        "training_pairs": len(rid_l),
        "em_iterations": fit.iterations,
        "lambda_candidates": round(fit.lam, 6),
        "prior_weight": round(prior, 3),
    }
    log.info(
        "model: EM over %d candidate pairs, %d iterations, λ=%.4f among candidates, prior %.2f bits (u from %s)",
        len(rid_l), fit.iterations, fit.lam, prior, spec.u_source,
    )
    return FellegiSunterModel(
        weights=weights,
        prior_weight=prior,
        m={c.field: fit.m[i] for i, c in enumerate(comparisons)},
        u={c.field: u_final[i] for i, c in enumerate(comparisons)},
        term_frequencies=tf_tables,
        exact_m=exact_m,
        max_level_weight=spec.max_level_weight,
        trained=True,
        stats=stats,
    )


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
