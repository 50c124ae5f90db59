"""Guards: counts compared with the last published run, so a broken sync blocks instead of publishing.

A truncated file, an export cut off halfway, a column Excel turned into ``#VALUE!``: each still
"works" row by row, and would publish a district that lost a fifth of its people. The guards compare
what this run read with what the last publication held and fail like any other ``error`` quality
rule, so the blocking check stops publication, the last publication and every person id stay as
they are, and the blocked report says which count fell and by how much.

A real drop (a register cleaned of the dead) is confirmed by a person: ``silobreaker run
--accept-drop health`` (or a relaxed rule in ``rules.yaml``). The guard then passes, saying who
accepted it, and that outcome is kept with the run's validation results in the warehouse.

Example:
    >>> outcomes = source_guards(rules, extracted=10, quarantined=0, previous_extracted=1836)
    >>> outcomes[0].success, outcomes[0].observed()
    (False, '10 rows (−99.5% vs 1836 in the last publication)')
"""

from __future__ import annotations

import math

from quality.expectations import ExpectationOutcome
from quality.rules import DropRule, QualityRules

__all__ = ["GUARD_KINDS", "drop_outcome", "source_guards"]

GUARD_KINDS: tuple[str, ...] = ("row_drop", "quarantine_share", "persons_drop")
"""The outcome kinds guards report (beside Great Expectations' own kinds)."""


def source_guards(
    rules: QualityRules,
    *,
    extracted: int,
    quarantined: int,
    previous_extracted: int | None,
    accepted_by: str | None = None,
) -> tuple[ExpectationOutcome, ...]:
    """The guard outcomes of one source: its rows against the last publication, its quarantine share.

    Args:
        rules: the source's quality rules (``row_drop``, ``quarantine_share``).
        extracted: rows read from the source this run.
        quarantined: rows staging held back.
        previous_extracted: rows read in the last published run; ``None`` before the first.
        accepted_by: who confirmed a real drop of this source (``--accept-drop``); its drop then passes.
    """
    outcomes = []
    if rules.row_drop is not None and previous_extracted:
        outcomes.append(drop_outcome("row_drop", rules.row_drop, extracted, previous_extracted, accepted_by,
                                     "rows read fell sharply against the last publication: a truncated file "
                                     "or an interrupted export, unless the register really shrank"))
    if rules.quarantine_share is not None and extracted:
        share = quarantined / extracted
        rule = rules.quarantine_share
        outcomes.append(ExpectationOutcome(
            kind="quarantine_share", column=None, success=share <= rule.max_share,
            why="a large share of rows broke a quarantine rule: the export is broken as a whole "
                "(a date or ID column damaged), and publishing the rest would drop those people",
            unexpected_count=quarantined, unexpected_percent=100.0 * share, observed_value=extracted,
            severity=rule.severity, max_value=rule.max_share,
        ))
    return tuple(outcomes)


def drop_outcome(
    kind: str, rule: DropRule, now: int, before: int, accepted_by: str | None, why: str
) -> ExpectationOutcome:
    """A ``row_drop`` or ``persons_drop`` outcome: ``now`` may fall at most ``rule.max_share`` below ``before``."""
    least = math.ceil(before * (1 - rule.max_share))
    held = now >= least
    if not held and accepted_by:
        why = f"{why}; the drop was accepted by {accepted_by} (--accept-drop)"
    return ExpectationOutcome(
        kind=kind, column=None, success=held or bool(accepted_by), why=why,
        observed_value=now, severity=rule.severity, min_value=least, max_value=before,
    )
