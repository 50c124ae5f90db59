"""Records keyed with another resident's ID number: found before linking, then linked without it.

A valid ID number is one person, so clustering holds every record that carries one together, linked or
not. A department that keys a record with a spouse's, a neighbour's or a parent's number (for a child)
breaks that: the record carries the number, but its own name, sex and birth date are another
person's. The ``id_sharing_conflict`` veto (:mod:`dedup.score`) recognises such a pair; this module
finds every one of them among the records sharing a valid number, decides which side *borrowed* the
number, and prepares the borrowers again as records without one, so that:

- clustering does not tie a borrower to the number's holder, and its sex and birth date are what it
  states, not what the borrowed number says — it links with its own person's other records (one of
  which may carry her real number) instead of contradicting them;
- the pair is still reported (decision ``vetoed``) and queued for a reviewer, whose ``same`` makes
  the borrower an ordinary holder again (:func:`find_id_sharing` leaves judged records be).

Which side borrowed: the one whose stated sex and birth date are not those its number carries. The
check character vouches for the number's sex digit and date, so the side that agrees with them holds
it. The veto makes the two stated birth dates differ by more than a slip, so at most one side agrees;
where neither does, both are borrowers and neither holds the number until a reviewer decides (fail
closed).

Example:
    >>> sharing = find_id_sharing(prepared, arrays, settings, decided)                    # doctest: +SKIP
    >>> prepared = without_borrowed_ids(records, prepared, sharing.borrowed)              # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dedup.compare import RecordArrays, compare_pairs
from dedup.prepare import ColumnReading, prepare_records
from dedup.review import DecidedPairs
from dedup.score import veto_comparisons, violates
from dedup.settings import LinkSettings
from staging._arrow import as_arrow

__all__ = ["ID_SHARING_VETO", "IdSharing", "find_id_sharing", "without_borrowed_ids"]

log = logging.getLogger(__name__)

#: The veto that recognises a record keyed with another resident's number.
ID_SHARING_VETO = "id_sharing_conflict"


@dataclass(frozen=True)
class IdSharing:
    """The ID-sharing conflicts in force and who borrowed the number.

    Attributes:
        left, right: record positions of each conflict in force (a cannot-link, and a pair for review).
        borrowed: per record, whether it borrowed the number it carries (see the module docstring).
    """

    left: np.ndarray
    right: np.ndarray
    borrowed: np.ndarray


def find_id_sharing(
    prepared: pd.DataFrame, arrays: RecordArrays, settings: LinkSettings, decided: DecidedPairs
) -> IdSharing:
    """Every pair under one valid number that the ``id_sharing_conflict`` veto forbids, and its borrower.

    A reviewer's ``same`` on a conflict vouches that both records hold the number: neither borrowed it,
    so no other conflict of theirs stands either (he had two records, she was judged to be him). A
    conflict stands while one of its records borrowed the number. Nothing is found when the settings
    do not apply the veto.
    """
    none = np.zeros(0, dtype=np.int64)
    if ID_SHARING_VETO not in settings.vetoes:
        return IdSharing(none, none, np.zeros(len(prepared), dtype=bool))
    left, right = _shared_id_pairs(prepared, settings.max_block_size)
    # Only the comparisons the veto reads are run on every pair sharing a number.
    comparisons = veto_comparisons(settings, (ID_SHARING_VETO,))
    conflict = violates(ID_SHARING_VETO, compare_pairs(arrays, left, right, comparisons), settings)
    left, right = left[conflict], right[conflict]
    judged = decided.judged_same(left, right)
    vouched = np.zeros(len(prepared), dtype=bool)
    vouched[np.r_[left[judged], right[judged]]] = True
    borrowed = _borrowers(prepared, left[~judged], right[~judged]) & ~vouched
    standing = ~judged & (borrowed[left] | borrowed[right])
    return IdSharing(left[standing], right[standing], borrowed)


def _shared_id_pairs(prepared: pd.DataFrame, max_holders: int) -> tuple[np.ndarray, np.ndarray]:
    """Record positions ``(rid_l < rid_r)`` of every two records that carry the same valid ID number, ordered by
    ``rid_l`` then ``rid_r``: each number's records in record order, each paired with every later one, by sorting
    integer codes of the numbers (a pandas self-merge on the number's text took seconds at a million people).

    A number carried by more than ``max_holders`` records (a placeholder, a clinic's default patient)
    is left out and logged, as blocking leaves out an oversized block.
    """
    valid = prepared["id_number_valid"].to_numpy(dtype=bool)
    rid = prepared["rid"].to_numpy(dtype=np.int64)[valid]
    numbers = pc.filter(as_arrow(prepared["id_number"]), pa.array(valid))
    codes = pc.dictionary_encode(numbers).indices.to_numpy(zero_copy_only=False).astype(np.int64)
    holders = np.bincount(codes)[codes] if len(codes) else codes
    if (holders > max_holders).any():
        log.warning("id sharing: %d valid ID number(s) carried by more than %d records each were not checked",
                    len(np.unique(codes[holders > max_holders])), max_holders)
    shared = (holders > 1) & (holders <= max_holders)
    # One int64 key per record (number, position), as dedup.engine orders pairs: lexsort's order in less time.
    order = np.argsort((codes[shared] << 32) | rid[shared])
    rid, codes = rid[shared][order], codes[shared][order]
    if not len(codes):
        return rid, rid.copy()
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    ends = np.repeat(np.r_[starts[1:], len(codes)], np.diff(np.r_[starts, len(codes)]))
    later = ends - np.arange(len(codes)) - 1  # the records after each one under its number
    left = np.repeat(np.arange(len(codes)), later)
    right = left + 1 + np.arange(len(left)) - np.repeat(np.cumsum(later) - later, later)
    rid_l, rid_r = rid[left], rid[right]
    order = np.argsort((rid_l << 32) | rid_r)
    return rid_l[order], rid_r[order]


def _borrowers(prepared: pd.DataFrame, conflict_l: np.ndarray, conflict_r: np.ndarray) -> np.ndarray:
    """Mask of the records that borrowed the number of a conflict: the side whose stated sex or birth
    date is not the one its number carries, where the other side agrees with it; both sides where
    neither does."""
    agrees = np.zeros(len(prepared), dtype=bool)
    involved = np.unique(np.r_[conflict_l, conflict_r])
    agrees[involved] = _agrees_with_number(prepared.iloc[involved])
    borrowed = np.zeros(len(prepared), dtype=bool)
    neither = ~agrees[conflict_l] & ~agrees[conflict_r]
    for side, other in ((conflict_l, conflict_r), (conflict_r, conflict_l)):
        borrowed[side[agrees[other] | neither]] = True
    return borrowed


def without_borrowed_ids(
    records: pd.DataFrame, prepared: pd.DataFrame, borrowed: np.ndarray, reading: ColumnReading | None = None
) -> pd.DataFrame:
    """``prepared`` with the borrowers prepared again as records without an ID number: their sex and
    birth date become the ones they state, and no blocking rule, comparison or clustering sees the
    borrowed number. Only the borrowers are prepared again, with the columns read as for all the
    records (``reading``, :class:`dedup.prepare.ColumnReading`); every other row is returned unchanged."""
    rows = np.flatnonzero(borrowed)
    if not len(rows):
        return prepared
    again = records.iloc[rows].copy()
    again["id_number"] = None
    redone = prepare_records(again, reading)
    redone["rid"] = prepared["rid"].to_numpy()[rows]
    out = prepared.copy(deep=False)
    for column in out.columns:
        # Column by column, so each keeps its dtype (a row-wise assignment would make them objects); a
        # column the borrowers' rows keep as they were (their names, addresses) stays shared with
        # ``prepared``, not copied: a run holds both.
        values = redone[column].astype(out[column].dtype)
        if not values.reset_index(drop=True).equals(out[column].iloc[rows].reset_index(drop=True)):
            out[column] = _replaced(out[column], rows, values)
    return out


def _replaced(column: pd.Series, rows: np.ndarray, values: pd.Series) -> pd.Series:
    out = column.copy()
    out.iloc[rows] = values.astype(column.dtype).to_numpy()
    return out


def _agrees_with_number(records: pd.DataFrame) -> np.ndarray:
    """Per prepared record with a valid number: its stated sex is the number's sex digit and its stated
    birth date (at the precision it states) is the number's date. What a record leaves unstated is the
    number's, so it says nothing against it."""
    same_sex = records["stated_sex"].eq(records["sex"]).fillna(True).to_numpy(dtype=bool)
    same_date = np.ones(len(records), dtype=bool)
    precision = records["stated_birth_precision"].to_numpy()
    for code, length in _ISO_LENGTH.items():
        at = precision == code
        same = records["birth_date"].str[:length] == records["stated_birth_date"]
        same_date[at] = same.fillna(False).to_numpy(dtype=bool)[at]
    return same_sex & same_date


#: Characters of an ISO date at each precision code of :func:`dedup.prepare.prepare_records`.
_ISO_LENGTH: dict[int, int] = {1: 4, 2: 7, 3: 10}
