"""Turn comparison levels into an explainable decision per pair.

The score is the match weight: the model's prior plus each comparison's contribution in bits (the
weights :mod:`dedup.model` estimated, term-frequency adjusted; or the declared level weights), so every
decision can be read back as a waterfall: "prior −16.8, ID typo +15.1, name homophone +10.4, birth day
+14.6 …". Vetoes forbid a link whatever the score, because some evidence is conclusive in this domain:

- two different ID numbers that both pass the MOD 11-2 check are two people (MOD 11-2 catches every
  single substitution and adjacent transposition, so a keying error leaves at least one ID invalid);
- sexes that differ, when one of them is the sex digit of a valid ID number and the ID numbers are not
  equal (equal IDs make one record's 男/女 a slip: the valid ID's sex digit is used as the sex in the
  first place). Two stated sexes alone do not veto: either may be a slip, and the model weighs it;
- birth dates that differ at the precision both records give by more than a slip, when one of them is
  the date a valid ID number carries and the ID numbers do not agree (exactly or up to a typo) to
  overrule them — this keeps 同名同姓 namesakes apart. Two stated dates alone do not veto: a stated
  date can be wholly wrong, and the model weighs the disagreement instead;
- two records that carry the same valid ID number but disagree on what that number is supposed to
  vouch for: names beyond a slip (not a homophone, a look-alike, a typo or one character), and the
  birth date each record *states* (the ID's where it states none) by more than a slip. A valid ID's
  birth date makes the two records' usual dates equal by construction, so the stated ones are
  compared (``stated_birth_date``): a misremembered name or date is a slip the shared ID overrules,
  but another name *and* another birth date is a different person whose record was keyed with another
  resident's ID number (a spouse's, a neighbour's, a parent's used for a child). The sex each states is
  not needed: a son keyed with his father's number states the father's sex, and two values agree by
  chance half the time. :mod:`dedup.id_sharing` finds these pairs before
  linking, whatever their score, and they go to clerical review.

A veto reads the levels by their labels ("the name reached neither ``exact`` nor ``homophone``"), never by
their codes, so declaring another level in :mod:`dedup.settings` leaves every veto as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dedup.prepare import TEXT
from dedup.settings import Comparison, LinkSettings

__all__ = ["DECISIONS", "NAME_SLIPS", "VETO_FIELDS", "ScoredPairs", "lowest_kept", "score_pairs", "veto_comparisons", "violates"]

#: ``link`` — accepted; ``vetoed`` — a veto forbids it; ``near_miss`` — within the review margin
#: below the threshold; ``cut`` (set by clustering) — accepted but cut to keep two valid IDs apart.
DECISIONS: tuple[str, ...] = ("link", "near_miss", "vetoed", "cut")

#: Name levels that are one name written another way, not another name: what a shared valid ID
#: number overrules (``id_sharing_conflict``). A level not listed counts as another name.
NAME_SLIPS: tuple[str, ...] = ("null", "exact", "homophone", "shape", "near_homophone", "typo", "alias", "similar")

#: The comparisons each veto reads (:func:`violates`): a caller that needs only the vetoes of some pairs
#: compares these fields and no others.
VETO_FIELDS: dict[str, tuple[str, ...]] = {
    "distinct_valid_ids": ("id_number",),
    "different_sex": ("sex", "id_number"),
    "contradicting_birth_dates": ("birth_date", "id_number"),
    "id_sharing_conflict": ("id_number", "name", "birth_date"),
}


@dataclass(frozen=True)
class ScoredPairs:
    """Scores, vetoes and decisions for one batch of pairs, aligned with the levels frame."""

    score: np.ndarray
    veto: pd.Series
    decision: pd.Series
    contributions: dict[str, np.ndarray] = field(default_factory=dict)
    prior_weight: float = 0.0

    @property
    def match_probability(self) -> np.ndarray:
        """Match probability ``2**score / (1 + 2**score)`` of each pair."""
        return 1.0 / (1.0 + np.exp2(-np.clip(self.score.astype(np.float64), -60.0, 60.0)))

    @property
    def linked(self) -> np.ndarray:
        """Mask of pairs accepted as links."""
        return self.decision.eq("link").fillna(False).to_numpy(dtype=bool)

    @property
    def kept(self) -> np.ndarray:
        """Mask of pairs worth reporting: links, near misses and vetoed pairs that scored high."""
        return self.decision.notna().to_numpy()


def score_pairs(
    levels: pd.DataFrame,
    settings: LinkSettings,
    contributions: dict[str, np.ndarray] | None = None,
    prior_weight: float = 0.0,
) -> ScoredPairs:
    """Score pairs from their comparison levels and apply the vetoes.

    Args:
        levels: output of :func:`dedup.compare.compare_pairs`.
        settings: comparison weights, threshold, review margin and vetoes.
        contributions: per comparison field, each pair's weight in bits, as a trained model gives them
            (:meth:`dedup.model.FellegiSunterModel.contributions`); the declared level weights when omitted.
        prior_weight: the model's prior in bits, added to every pair's score.

    Returns:
        Per pair: ``score`` (float32 bits: the match weight, prior plus contributions), the
        ``contributions``, ``veto`` (the first veto that forbids the link, or null) and
        ``decision``: ``link``, ``vetoed`` (score reached the near-miss band but a veto forbids it),
        ``near_miss``, or null for pairs not worth keeping.
    """
    n = len(levels)
    if contributions is None:
        contributions = {
            comparison.field: np.asarray(comparison.weights(), dtype=np.float32)[
                levels[comparison.field].to_numpy(dtype=np.int64)
            ]
            for comparison in settings.comparisons
        }
    score = np.full(n, prior_weight, dtype=np.float32)
    for comparison in settings.comparisons:
        score += contributions[comparison.field]

    veto = np.full(n, None, dtype=object)
    for name in reversed(settings.vetoes):
        veto[violates(name, levels, settings)] = name

    vetoed = veto != None  # noqa: E711 — element-wise on an object array
    decision = np.full(n, None, dtype=object)
    in_band = score >= lowest_kept(settings)
    decision[in_band & ~vetoed] = "near_miss"
    decision[in_band & vetoed] = "vetoed"
    decision[(score >= settings.match_threshold) & ~vetoed] = "link"
    return ScoredPairs(
        score=score,
        veto=pd.Series(veto, dtype=TEXT),
        decision=pd.Series(decision, dtype=TEXT),
        contributions=contributions,
        prior_weight=float(prior_weight),
    )


def veto_comparisons(settings: LinkSettings, vetoes: tuple[str, ...] | None = None) -> list[Comparison]:
    """The comparisons of ``settings`` that ``vetoes`` (the settings' own when omitted) read, in the settings' order:
    enough for :func:`violates` to give the same masks as on every comparison."""
    read = {field for veto in (settings.vetoes if vetoes is None else vetoes) for field in VETO_FIELDS[veto]}
    return [comparison for comparison in settings.comparisons if comparison.field in read]


def lowest_kept(settings: LinkSettings) -> float:
    """The least match weight a pair is kept with (:attr:`ScoredPairs.kept`): the bottom of the review band."""
    return settings.match_threshold - settings.review_margin


def violates(veto: str, levels: pd.DataFrame, settings: LinkSettings) -> np.ndarray:
    """Mask of the pairs ``veto`` forbids (see the module docstring for why each is conclusive).

    ``levels`` needs the columns of the comparisons the veto reads, and no others: a caller that only
    asks one veto may compare only those fields (:func:`dedup.compare.compare_pairs`).

    Raises:
        ValueError: ``veto`` is not one of :data:`dedup.settings.VETOES`.
    """
    if veto == "distinct_valid_ids":
        return levels["ids_both_valid"].to_numpy() & ~_reached(levels, settings, "id_number", ("exact",))
    if veto == "different_sex":
        # As with birth dates: a stated 男/女 can be a slip, the sex digit of a valid ID cannot.
        differs = _reached(levels, settings, "sex", ("different",)) & levels["id_valid_any"].to_numpy()
        return differs & ~_reached(levels, settings, "id_number", ("exact",))
    if veto == "contradicting_birth_dates":
        # A stated date can be wholly wrong (another person's, a swapped field); the date a valid ID
        # number carries cannot be mistyped without breaking its check character. A contradiction is
        # conclusive only when one side is such a date.
        contradicts = _reached(levels, settings, "birth_date", ("different",)) & levels["id_valid_any"].to_numpy()
        return contradicts & ~_reached(levels, settings, "id_number", ("exact", "typo"))
    if veto == "id_sharing_conflict":
        # The shared valid ID makes both records' sex and birth date the ID's; what each record states
        # is compared instead. A name or a date may be a slip the ID overrules (a homophone, a mistyped
        # day), but not both at once; the sex, one of two values, tells too little either way.
        another_name = ~_reached(levels, settings, "name", NAME_SLIPS)
        another_birth = _reached(levels, settings, "birth_date", ("different",), column="stated_birth_date")
        return _shares_valid_id(levels, settings) & another_name & another_birth
    raise ValueError(f"unknown veto {veto!r}")


def _shares_valid_id(levels: pd.DataFrame, settings: LinkSettings) -> np.ndarray:
    """Pairs whose records carry one and the same valid ID number."""
    return levels["ids_both_valid"].to_numpy() & _reached(levels, settings, "id_number", ("exact",))


def _reached(
    levels: pd.DataFrame, settings: LinkSettings, field: str, labels: tuple[str, ...], column: str | None = None
) -> np.ndarray:
    """Pairs whose ``field`` comparison reached one of the levels called ``labels``; none when the
    settings do not compare ``field``. ``column`` reads the codes of that comparison from another column
    (``stated_sex``: the sex comparison run on what the records state).

    Raises:
        ConfigError: the comparison declares no level of one of these labels.
    """
    comparison = settings.comparison(field)
    if comparison is None:
        return np.zeros(len(levels), dtype=bool)
    return np.isin(levels[column or field].to_numpy(), [comparison.code(label) for label in labels])
