"""Clerical review: uncertain pairs wait for a person's decision, and decisions bind every later run.

The engine links what the evidence settles; pairs in the uncertain band (decision ``near_miss``) are
not merged but queued for the data team with both records side by side. So are the pairs the
``id_sharing_conflict`` veto keeps apart (:data:`REVIEWED_VETOES`): two records under one valid ID
number that contradict each other on name and birth date, one of them keyed with another
resident's number — labelled 公民身份号码冲突 for the reviewer. A reviewer's decision on a pair
— ``same`` or ``different`` — is kept in a :class:`DecisionLog` under the data home and applied on every
later run: ``same`` as a must-link (a forced link, kept before any scored one; it also overrides a hard
rule's veto on that very pair), ``different`` as a cannot-link constraint for clustering. Two records
holding the same valid ID number stay one person — except the side of an ID-sharing conflict that does
not hold the number, until a reviewer judges the pair ``same`` — and two different valid IDs stay two,
whatever a decision says: those are identity facts, not judgements. A decided pair leaves the queue.

Example:
    >>> log = DecisionLog.in_home(home)                                        # doctest: +SKIP
    >>> log.record("census:12", "health:7", "different", by="li.na", note="twins")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from core.appendlog import AppendLog
from core.errors import TerminalError
from core.home import DataHome, HomeLike
from dedup.incremental import positions
from dedup.prepare import TEXT

__all__ = [
    "DECISION_COLUMNS",
    "QUEUE_COLUMNS",
    "QUEUE_SEEN_COLUMNS",
    "REVIEWED_VETOES",
    "REVIEW_REASONS",
    "REVIEW_VERDICTS",
    "UNCERTAIN_DECISIONS",
    "DecidedPairs",
    "DecisionLog",
    "build_review_queue",
    "decided_pairs",
    "effective_decisions",
    "empty_decisions",
    "format_review_queue",
    "normalize_decisions",
]

log = logging.getLogger(__name__)

#: Pair decisions the engine leaves to a reviewer instead of linking.
UNCERTAIN_DECISIONS: tuple[str, ...] = ("near_miss",)
#: Vetoes whose pairs also go to a reviewer: the veto keeps the records apart, but which record is
#: whose, and what the department must correct, takes a person.
REVIEWED_VETOES: tuple[str, ...] = ("id_sharing_conflict",)
#: Why a pair is queued (``reason``: a decision of :data:`UNCERTAIN_DECISIONS` or a veto of
#: :data:`REVIEWED_VETOES`) and how the queue says it to a reviewer (``reason_label``).
REVIEW_REASONS: dict[str, str] = {
    "near_miss": "疑似同一人（待核实）",
    "id_sharing_conflict": "公民身份号码冲突（姓名、出生日期均与同号记录不符）",
}
#: What a reviewer may decide about a pair.
REVIEW_VERDICTS: tuple[str, ...] = ("same", "different")
#: One recorded decision; ``record_id_a < record_id_b``; ``decided_at`` is UTC.
DECISION_COLUMNS: tuple[str, ...] = ("record_id_a", "record_id_b", "decision", "decided_by", "decided_at", "note")
#: Fields of each record shown to the reviewer (the warehouse is the restricted zone).
KEY_FIELDS: tuple[str, ...] = ("source", "name", "sex", "birth_date", "id_number", "phone", "address")
#: What a later run needs of the previous queue.
QUEUE_SEEN_COLUMNS: tuple[str, ...] = ("record_id_a", "record_id_b", "first_seen_run")
#: Columns of the review queue (``first_seen_run`` is null for a pair queued for the first time).
QUEUE_COLUMNS: tuple[str, ...] = (
    "record_id_a", "record_id_b", "score", "decision", "reason", "reason_label", "rule", "evidence",
    "person_id_a", "person_id_b",
    "same_person_now", *(f"{f}_a" for f in KEY_FIELDS), *(f"{f}_b" for f in KEY_FIELDS), "first_seen_run",
)

_PAIR_COLUMNS = {"record_id_l", "record_id_r", "score", "decision", "veto", "rule", "context"}


def empty_decisions() -> pd.DataFrame:
    """A decisions frame with no rows and the :data:`DECISION_COLUMNS`."""
    frame = pd.DataFrame({c: pd.Series([], dtype=TEXT) for c in DECISION_COLUMNS})
    frame["decided_at"] = pd.Series([], dtype="datetime64[us, UTC]")
    return frame


def normalize_decisions(decisions: pd.DataFrame | None) -> pd.DataFrame:
    """Decisions with the :data:`DECISION_COLUMNS`, each pair ordered ``record_id_a < record_id_b``.

    Raises:
        ValueError: a required column is missing or a decision is not ``same`` / ``different``.
    """
    if decisions is None or (len(decisions) == 0 and not set(DECISION_COLUMNS) <= set(decisions.columns)):
        return empty_decisions()
    missing = [c for c in ("record_id_a", "record_id_b", "decision") if c not in decisions.columns]
    if missing:
        raise ValueError(f"review decisions lack column(s) {missing}; expected {list(DECISION_COLUMNS)}")
    bad = decisions.loc[~decisions["decision"].isin(REVIEW_VERDICTS), "decision"]
    if len(bad):
        raise ValueError(f"review decision {bad.iloc[0]!r} is not one of {list(REVIEW_VERDICTS)}")
    a = decisions["record_id_a"].astype(TEXT).reset_index(drop=True)
    b = decisions["record_id_b"].astype(TEXT).reset_index(drop=True)
    swap = (a > b).fillna(False).to_numpy(dtype=bool)
    out = pd.DataFrame(
        {
            "record_id_a": a.where(~swap, b),
            "record_id_b": b.where(~swap, a),
            "decision": decisions["decision"].astype(TEXT).reset_index(drop=True),
            "decided_by": _column(decisions, "decided_by").astype(TEXT),
            "decided_at": pd.to_datetime(_column(decisions, "decided_at"), utc=True).astype("datetime64[us, UTC]"),
            "note": _column(decisions, "note").astype(TEXT),
        }
    )
    return out


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame.columns:
        return frame[name].reset_index(drop=True)
    return pd.Series([None] * len(frame), dtype=object)


def effective_decisions(decisions: pd.DataFrame) -> pd.DataFrame:
    """The decision in force per pair: the latest one (by ``decided_at``, then by order of recording)."""
    decisions = normalize_decisions(decisions)
    ordered = decisions.reset_index(drop=True).reset_index(names="_order").sort_values(
        ["decided_at", "_order"], na_position="first"
    )
    latest = ordered.drop_duplicates(["record_id_a", "record_id_b"], keep="last")
    return latest.drop(columns="_order").sort_values(["record_id_a", "record_id_b"], ignore_index=True)


@dataclass(frozen=True)
class DecidedPairs:
    """Record positions of the pairs decided ``same`` (must-link) and ``different`` (cannot-link)."""

    same_l: np.ndarray
    same_r: np.ndarray
    different_l: np.ndarray
    different_r: np.ndarray

    def forced_links(
        self, link_l: np.ndarray, link_r: np.ndarray, link_score: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The scored links plus one link per ``same`` pair, scored +inf so clustering keeps it first."""
        return (
            np.r_[np.asarray(link_l, dtype=np.int64), self.same_l],
            np.r_[np.asarray(link_r, dtype=np.int64), self.same_r],
            np.r_[np.asarray(link_score, dtype=np.float64), np.full(len(self.same_l), np.inf)],
        )

    def overruled(self, labels: np.ndarray) -> int:
        """How many decisions the clustering could not honour (a shared or a conflicting valid ID), logged."""
        labels = np.asarray(labels)
        apart = labels[self.same_l] != labels[self.same_r]
        together = labels[self.different_l] == labels[self.different_r]
        count = int(apart.sum() + together.sum())
        if count:
            log.warning(
                "review: %d decision(s) not applied: records holding one valid ID are one person and two "
                "valid IDs two persons, whatever a reviewer decides", count,
            )
        return count

    def cannot_link(self, vetoed_l: np.ndarray, vetoed_r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The vetoed pairs, less those a reviewer judged ``same``, plus every ``different`` pair."""
        vetoed_l, vetoed_r = np.asarray(vetoed_l, dtype=np.int64), np.asarray(vetoed_r, dtype=np.int64)
        overruled = self.judged_same(vetoed_l, vetoed_r)
        return np.r_[vetoed_l[~overruled], self.different_l], np.r_[vetoed_r[~overruled], self.different_r]

    def judged_same(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Mask of the pairs ``(left[i], right[i])`` (either order) a reviewer decided are one person."""
        left, right = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
        return np.isin(_pair_key(left, right), _pair_key(self.same_l, self.same_r))


def _pair_key(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    low, high = np.minimum(left, right).astype(np.int64), np.maximum(left, right).astype(np.int64)
    return (low << 32) | high


def decided_pairs(record_id: pd.Series, decisions: pd.DataFrame) -> DecidedPairs:
    """Positions (in ``record_id``) of the decided pairs whose two records are both present."""
    latest = effective_decisions(decisions)
    # Each side looked up by Arrow's hash of the few decided ids: an index of every record id took 0.8 s at 1M people.
    at = positions(pd.concat([latest["record_id_a"], latest["record_id_b"]]).astype(str).to_numpy(dtype=object),
                   record_id.astype(TEXT))
    left, right = at[: len(latest)], at[len(latest):]
    present = (left >= 0) & (right >= 0)
    if (~present).any():
        log.info("review: %d decided pair(s) name a record not in this run; they wait", int((~present).sum()))
    same = present & (latest["decision"] == "same").to_numpy()
    different = present & (latest["decision"] == "different").to_numpy()
    return DecidedPairs(
        left[same], right[same], left[different], right[different],
    )


def build_review_queue(
    pairs: pd.DataFrame,
    records: pd.DataFrame,
    mapping: pd.DataFrame,
    decisions: pd.DataFrame,
    previous_queue: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The uncertain pairs nobody has decided yet, with both records' key fields and the evidence.

    Uncertain are the near misses and the pairs a veto of :data:`REVIEWED_VETOES` keeps apart (two
    records sharing one valid ID number that contradict each other on name and birth date);
    ``reason`` says which, ``reason_label`` says it in Chinese for the reviewer (:data:`REVIEW_REASONS`).

    Args:
        pairs: explained pairs from the engine (``record_id_l, record_id_r, score, decision, veto, rule``
            and one level label per comparison).
        records: the records linked (at least ``record_id`` and :data:`KEY_FIELDS`).
        mapping: ``record_id, person_id`` of this run.
        decisions: review decisions so far; a decided pair is left out.
        previous_queue: the previous queue's ``record_id_a, record_id_b, first_seen_run``.

    Returns:
        One row per pair, :data:`QUEUE_COLUMNS`, highest score first. ``evidence`` reads
        ``"field=level; …"``; ``same_person_now`` says whether other links put both records in one person.
    """
    comparisons = [c for c in pairs.columns if c not in _PAIR_COLUMNS and not c.startswith(("w_", "match_"))]
    evidence = " || '; ' || ".join(_evidence_sql(c, f"w_{c}" in pairs.columns) for c in comparisons) or "''"
    seen = previous_queue if previous_queue is not None and len(previous_queue) else pd.DataFrame(
        {c: pd.Series([], dtype=object) for c in QUEUE_SEEN_COLUMNS}
    )
    fields_a = ", ".join(_key_field_sql(records, "ka", f, "a") for f in KEY_FIELDS)
    fields_b = ", ".join(_key_field_sql(records, "kb", f, "b") for f in KEY_FIELDS)
    uncertain = ", ".join(f"'{d}'" for d in UNCERTAIN_DECISIONS)
    reviewed = ", ".join(f"'{v}'" for v in REVIEWED_VETOES)
    reason = "CASE " + " ".join(f"WHEN u.reason = '{code}' THEN '{label}'" for code, label in REVIEW_REASONS.items()) + " END"
    with duckdb.connect() as con:
        con.register("review_pairs", pairs)
        # Only the few queued records are looked up; the frame itself is scanned in place, not copied.
        con.register("review_records", records)
        con.register("review_mapping", mapping.loc[:, ["record_id", "person_id"]])
        con.register("review_decided", effective_decisions(decisions).loc[:, ["record_id_a", "record_id_b"]])
        con.register("review_seen", seen.loc[:, list(QUEUE_SEEN_COLUMNS)])
        queue = con.execute(
            f"""
            WITH uncertain AS (
                SELECT least(CAST(p.record_id_l AS VARCHAR), CAST(p.record_id_r AS VARCHAR)) AS record_id_a,
                       greatest(CAST(p.record_id_l AS VARCHAR), CAST(p.record_id_r AS VARCHAR)) AS record_id_b,
                       CAST(p.score AS DOUBLE) AS score, CAST(p.decision AS VARCHAR) AS decision,
                       CASE WHEN p.veto IN ({reviewed}) THEN CAST(p.veto AS VARCHAR)
                            ELSE CAST(p.decision AS VARCHAR) END AS reason,
                       CAST(p.rule AS VARCHAR) AS rule, {evidence} AS evidence
                FROM review_pairs p
                WHERE p.decision IN ({uncertain}) OR (p.decision = 'vetoed' AND p.veto IN ({reviewed}))
            )
            SELECT u.record_id_a, u.record_id_b, u.score, u.decision, u.reason, {reason} AS reason_label,
                   u.rule, u.evidence,
                   CAST(ma.person_id AS VARCHAR) AS person_id_a, CAST(mb.person_id AS VARCHAR) AS person_id_b,
                   ma.person_id = mb.person_id AS same_person_now, {fields_a}, {fields_b},
                   CAST(s.first_seen_run AS VARCHAR) AS first_seen_run
            FROM uncertain u
            ANTI JOIN review_decided d
                ON d.record_id_a = u.record_id_a AND d.record_id_b = u.record_id_b
            LEFT JOIN review_mapping ma ON ma.record_id = u.record_id_a
            LEFT JOIN review_mapping mb ON mb.record_id = u.record_id_b
            LEFT JOIN review_records ka ON CAST(ka.record_id AS VARCHAR) = u.record_id_a
            LEFT JOIN review_records kb ON CAST(kb.record_id AS VARCHAR) = u.record_id_b
            LEFT JOIN review_seen s
                ON CAST(s.record_id_a AS VARCHAR) = u.record_id_a AND CAST(s.record_id_b AS VARCHAR) = u.record_id_b
            ORDER BY u.score DESC, u.record_id_a, u.record_id_b
            """
        ).df()
    for column in queue.columns:
        if queue[column].dtype == object:
            queue[column] = queue[column].astype(TEXT)
    return queue.loc[:, list(QUEUE_COLUMNS)]


def _key_field_sql(records: pd.DataFrame, alias: str, name: str, side: str) -> str:
    value = f"CAST({alias}.\"{name}\" AS VARCHAR)" if name in records.columns else "CAST(NULL AS VARCHAR)"
    return f"{value} AS {name}_{side}"


def _evidence_sql(comparison: str, weighted: bool) -> str:
    """``name=pinyin`` for one comparison, with its weight when the model gives one: ``name=pinyin (+4.1)``."""
    text = f"'{comparison}=' || coalesce(CAST(p.\"{comparison}\" AS VARCHAR), '?')"
    if weighted:
        text += f" || coalesce(' (' || printf('%+.1f', p.\"w_{comparison}\") || ')', '')"
    return text


class DecisionLog:
    """Review decisions kept in the data home's decision file (``<home>/review/decisions.parquet``),
    outside the published warehouse.

    The warehouse is replaced whole on every run, so decisions live in their own file, which the next
    run loads (and copies into the warehouse's ``review_decisions`` table). Each decision is appended;
    the latest one per pair is in force.

    Example:
        >>> log = DecisionLog.in_home(Path("var"))                             # doctest: +SKIP
        >>> log.record("census:12", "health:7", "same", by="wang.fang")        # doctest: +SKIP
        >>> len(log.load())                                                    # doctest: +SKIP
        1
    """

    def __init__(self, path: Path) -> None:
        self._log = AppendLog(path, empty_decisions, "the review decisions",
                              "restore the file from the warehouse's review_decisions table or remove it",
                              normalize_decisions)
        self.path = self._log.path

    @classmethod
    def in_home(cls, home: HomeLike) -> DecisionLog:
        """The decision log of a data home."""
        return cls(DataHome.at(home).review_decisions_file)

    def load(self) -> pd.DataFrame:
        """Every recorded decision (an empty frame when none were recorded)."""
        return self._log.load()

    def record(
        self,
        record_id_a: str,
        record_id_b: str,
        decision: str,
        *,
        by: str,
        note: str | None = None,
        at: datetime | None = None,
    ) -> pd.DataFrame:
        """Append one decision and return it as a one-row frame.

        Raises:
            TerminalError: the decision is not ``same``/``different`` or both records are the same.
        """
        if decision not in REVIEW_VERDICTS:
            raise TerminalError(f"decision {decision!r} is not one of {list(REVIEW_VERDICTS)}, e.g. 'different'")
        if record_id_a == record_id_b:
            raise TerminalError(f"a decision needs two different records (got {record_id_a!r} twice)")
        return self._log.append(pd.DataFrame({
            "record_id_a": [record_id_a], "record_id_b": [record_id_b], "decision": [decision],
            "decided_by": [by], "decided_at": [at or datetime.now(UTC)], "note": [note],
        }))


def format_review_queue(queue: pd.DataFrame, limit: int | None = None) -> str:
    """The queue as text for a reviewer: each pair's records side by side, its score and evidence.

    Example:
        >>> print(format_review_queue(warehouse.read_tables("review_queue")["review_queue"], limit=20))  # doctest: +SKIP
    """
    shown = queue if limit is None else queue.head(limit)
    lines: list[str] = []
    for number, pair in enumerate(shown.to_dict("records"), start=1):
        together = "one person now" if pair.get("same_person_now") is True else "two persons now"
        lines.append(
            f"[{number}] {pair['record_id_a']}  ~  {pair['record_id_b']}   score {pair['score']:.2f}   "
            f"{together}   first queued in run {pair.get('first_seen_run') or '?'}"
        )
        if not _missing(pair.get("reason")):
            lines.append(f"    why: {pair.get('reason_label') or ''} ({pair['reason']})")
        for side in ("a", "b"):
            values = [pair.get(f"{f}_{side}") for f in KEY_FIELDS]
            lines.append(f"    {side}: " + "  ".join("-" if _missing(v) else str(v) for v in values))
        lines.append(f"    evidence: {pair['evidence']}")
    return "\n".join(lines)


def _missing(value: object) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))
