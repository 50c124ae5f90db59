"""Run identity resolution end to end: prepare, block, compare, score, cluster.

Memory stays bounded as the data grows: candidate pairs live with the backend ``settings.engine`` names
(:mod:`dedup.backend`: DuckDB, which spills to a temporary directory, or a Spark cluster) and are
streamed through comparison and scoring in batches; only links and near misses — a few per record —
come back to Python. Before clustering, the candidate pairs
that fall inside one linked component are scored again to find the vetoed ones among them: those
become cannot-link constraints, so transitivity never unites what a veto keeps apart.

Records that carry one valid ID number are one person even where no link joins them, so a record
keyed with another resident's number is dealt with first (:mod:`dedup.id_sharing`): the borrower of
each ID-sharing conflict is linked as a record without a number, the conflict is a cannot-link and a
pair for review, and the mapping marks the borrower ``id_number_disputed``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from core.threads import beside
from dedup.backend import PairBackend, empty_pairs, even_batch_size, in_threads, open_backend
from dedup.blocking import RECORDS_TABLE, load_blocking_rows, pairs_touching, pairs_within_sql
from dedup.cluster import cluster_links
from dedup.compare import RecordArrays, compare_pairs, level_labels
from dedup.id_sharing import ID_SHARING_VETO, find_id_sharing, without_borrowed_ids
from dedup.ids import PreviousLinking, assign_stable_ids
from dedup.incremental import (
    FittedModel,
    KeptLinking,
    carried_pairs,
    carried_within,
    fingerprints,
    kept_state,
    plan_increment,
    present_rows,
    relinked_records,
)
from dedup.model import FellegiSunterModel, train_model
from dedup.prepare import TEXT, ColumnReading, prepare_with_facts, text_at
from dedup.review import build_review_queue, decided_pairs
from dedup.score import score_pairs, veto_comparisons, violates
from dedup.settings import LinkSettings

__all__ = ["LinkResult", "PhaseHook", "link_records"]

log = logging.getLogger(__name__)

PhaseHook = Callable[[str, int], None]
"""Told as each phase of :func:`link_records` ends, with what it produced: ``prepare`` (records),
``blocking`` (candidate pairs), ``train`` (pairs the model was fitted on), ``compare_score`` (pairs
kept: links, near misses, vetoed) and ``cluster`` (persons)."""


@dataclass(frozen=True)
class LinkResult:
    """What :func:`link_records` found.

    Attributes:
        mapping: ``record_id, person_id, id_number_disputed``, one row per input record, in input order;
            ``id_number_disputed`` marks a record keyed with another resident's valid ID number (the
            borrower of an ID-sharing conflict no reviewer has judged ``same``, see
            :mod:`dedup.id_sharing`): the number is not its person's, and no decision made under that
            number (consent) is its person's.
        pairs: links, near misses, high-scoring vetoed pairs and every ID-sharing conflict in force
            (decision ``vetoed``, veto ``id_sharing_conflict``, rule ``id_number``): ``record_id_l, record_id_r, score,
            decision`` (``link``, ``cut``, ``vetoed``, ``near_miss``), ``veto`` (the veto, or null),
            ``rule`` (first blocking rule that produced the pair), one level label per comparison, and
            the waterfall: ``w_prior`` and one ``w_<field>`` per comparison (bits) adding up to
            ``match_weight`` (equal to ``score``), with its ``match_probability``, and ``context``: the
            :class:`dedup.model.PairContext` the weights come from (``one_flat``, ``born_together``)
            or null.
        stats: counts (records, candidate_pairs, links, persons, …) and ``seconds`` per phase.
        history: person-id changes against the previous run (``kind, old_id, new_id, records``;
            see :mod:`dedup.ids`); every id is ``new`` on a first run.
        review_queue: uncertain pairs awaiting a reviewer (see :func:`dedup.review.build_review_queue`).
        kept: what the next run needs to link only what changed (:class:`dedup.incremental.KeptLinking`;
            ``save`` it under the data home).
    """

    mapping: pd.DataFrame
    pairs: pd.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    review_queue: pd.DataFrame = field(default_factory=pd.DataFrame)
    kept: KeptLinking | None = None


def link_records(
    records: pd.DataFrame,
    settings: LinkSettings | None = None,
    previous: PreviousLinking | None = None,
    id_key: bytes | None = None,
    on_phase: PhaseHook | None = None,
    kept: KeptLinking | None = None,
    model: FellegiSunterModel | None = None,
    now: dt.datetime | None = None,
    fitted: FittedModel | None = None,
) -> LinkResult:
    """Resolve which records describe the same person.

    Args:
        records: canonical person records — at least ``record_id, source, name, sex, birth_date,
            id_number, phone, address`` (see :func:`dedup.prepare.prepare_records`), raw or staged.
        settings: blocking rules, comparisons, threshold; :class:`LinkSettings` defaults when omitted.
        previous: the previous run's mapping and issued ids (persons keep their ids), and the review
            decisions to apply (``same`` → must-link, ``different`` → cannot-link); none when omitted.
        on_phase: told as each phase ends (:data:`PhaseHook`), for a console that shows progress.
        kept: what the last run kept (:class:`dedup.incremental.KeptLinking`): only new and changed
            records are prepared, blocked and scored, with its model; everything is linked when omitted
            or when the records cannot be linked on it (see :mod:`dedup.incremental`).
        model: score with this model instead of fitting one (ignored with a usable ``kept``).
        now: when the run happens (a fitted model is kept as of then); the present time when omitted.
        fitted: without ``kept``, score with this kept model (``silobreaker run --full``) if the records read as
            they did when it was fitted, keeping when that was (:meth:`KeptLinking.load_model`); ignored with a
            ``kept`` (usable or not: a state that cannot be linked on is linked whole and fitted again).

    Returns:
        :class:`LinkResult` with the record → person mapping, the explainable pairs, run statistics and
        the state to keep for the next run (``kept``).

    Example:
        >>> result = link_records(staged)                     # doctest: +SKIP
        >>> result.mapping.groupby("person_id").size().max()  # doctest: +SKIP
    """
    settings = settings or LinkSettings()
    previous = previous or PreviousLinking()
    now = now or dt.datetime.now(dt.UTC)
    seconds: dict[str, float] = {}
    started = time.perf_counter()

    if kept is not None and settings.engine != "duckdb":
        log.info("linking: the %s engine links every record; the kept state is not used", settings.engine)
        kept = None
    increment = plan_increment(records, kept, settings) if kept is not None else None
    if kept is not None:
        fitted = None
    del kept  # the increment holds what it still needs of it
    if increment is not None:
        before, facts, fingerprint = increment.prepared, increment.facts, increment.fingerprint
    else:
        before, facts = prepare_with_facts(records)
        fingerprint = fingerprints(records)
    reading = ColumnReading.of(facts)
    prepared = before
    arrays = RecordArrays.from_prepared(prepared)
    # Review decisions bind: "same" pairs join as forced links, "different" ones as cannot-links.
    decided = decided_pairs(prepared["record_id"], previous.decisions)
    # A record keyed with another resident's number is linked as a record without one.
    sharing = find_id_sharing(prepared, arrays, settings, decided)
    conflict_l, conflict_r, borrowed = sharing.left, sharing.right, sharing.borrowed
    with_numbers = arrays
    if borrowed.any():
        prepared = without_borrowed_ids(records, prepared, borrowed, reading)
        arrays = arrays.with_identities_of(prepared, np.flatnonzero(borrowed))
    seconds["prepare"] = _lap(started)
    log.info("prepared %d records in %.1fs", len(prepared), seconds["prepare"])
    tell = on_phase or (lambda _phase, _count: None)
    tell("prepare", len(prepared))

    with open_backend(settings) as backend:
        phase = time.perf_counter()
        carried = None
        if increment is not None:
            con = backend.con  # an increment is planned on the DuckDB engine only (above)
            load_blocking_rows(con, prepared, settings)
            relinked = relinked_records(con, increment, prepared, borrowed, settings)
            present = present_rows(increment)
            carried, relinked = carried_pairs(increment, present, relinked)
            increment.release("keys", "pairs")
            report = pairs_touching(con, settings, np.flatnonzero(relinked))
        else:
            report = backend.candidate_pairs(prepared, settings)
        seconds["blocking"] = _lap(phase)
        tell("blocking", report.candidate_pairs)

        phase = time.perf_counter()
        if fitted is not None and fitted.reading != reading:
            log.info("linking: the ID number or community column now reads otherwise (%s, was %s); fitting the "
                     "model again", reading, fitted.reading)
            fitted = None
        if increment is not None:
            model, trained_at = increment.kept.model.keyed_to(arrays), increment.kept.trained_at
        elif fitted is not None:
            model, trained_at = fitted.model.keyed_to(arrays), fitted.trained_at
        elif model is not None:
            model, trained_at = model.keyed_to(arrays), now
        else:
            model, trained_at = train_model(backend, arrays, settings, report.candidate_pairs), now
        seconds["train"] = _lap(phase)
        tell("train", int(model.stats.get("training_pairs", 0)) if increment is None else 0)

        phase = time.perf_counter()
        scored = backend.scored_pairs(arrays, settings, model, report.candidate_pairs)
        if carried is not None:
            scored = pd.concat([carried, scored], ignore_index=True)
        n_scored = len(scored)  # the first rows of pairs: what the next run may carry over
        pairs = pd.concat([scored, _conflict_pairs(with_numbers, arrays, settings, model, conflict_l, conflict_r)],
                          ignore_index=True)
        del scored, carried
        seconds["compare_score"] = _lap(phase)
        tell("compare_score", len(pairs))

        phase = time.perf_counter()
        # The explanation of every pair is taken beside the clustering, which only decides which links it cuts.
        order = _pair_order(pairs)
        with beside(_explain, pairs.drop(columns="decision"), order, prepared["record_id"], settings) as explaining:
            is_link = pairs["decision"].eq("link").fillna(False).to_numpy(dtype=bool)
            link_l = pairs["rid_l"].to_numpy()[is_link]
            link_r = pairs["rid_r"].to_numpy()[is_link]
            link_l, link_r, link_score = decided.forced_links(link_l, link_r, pairs["score"].to_numpy()[is_link])
            labels = backend.components(len(prepared), link_l, link_r)
            if increment is not None:
                decided_rids = np.r_[decided.same_l, decided.same_r, decided.different_l, decided.different_r]
                searched, kept_l, kept_r = carried_within(increment, present, labels, relinked, decided_rids)
                fresh_l, fresh_r = _vetoed_within_groups(con, arrays, settings, labels, searched)
                within_l, within_r = np.r_[kept_l, fresh_l], np.r_[kept_r, fresh_r]
            else:
                within_l, within_r = _vetoed_within(backend, arrays, settings, labels)
            cannot_link = decided.cannot_link(np.r_[within_l, conflict_l], np.r_[within_r, conflict_r])
            valid_id = prepared["id_number"].where(prepared["id_number_valid"])
            clusters = cluster_links(len(prepared), link_l, link_r, link_score, valid_id, cannot_link,
                                     find_components=backend.components)
            ids = assign_stable_ids(prepared["record_id"], clusters.labels, previous.mapping, previous.issued, id_key)
            mapping = ids.mapping.assign(id_number_disputed=borrowed)
        explained = explaining.result()
    scored_cut = clusters.cut[: int(is_link.sum())]
    uncut = pairs["decision"]
    decision = uncut.to_numpy(dtype=object, na_value=None).copy()
    decision[np.flatnonzero(is_link)[scored_cut]] = "cut"
    pairs["decision"] = pd.Series(decision, dtype=TEXT)
    explained.insert(explained.columns.get_loc("veto"), "decision", pd.Series(pairs["decision"].array.take(order)))
    seconds["cluster"] = _lap(phase)
    tell("cluster", clusters.n_clusters)

    state = kept_state(model=model, records=records, prepared_before=before, facts=facts, fingerprint=fingerprint,
                       borrowed=borrowed, prepared=prepared,
                       pairs=pairs.iloc[:n_scored].assign(decision=uncut.iloc[:n_scored]),
                       within=(within_l, within_r), reading=reading, settings=settings, trained_at=trained_at)
    del before, uncut
    pairs = explained
    review_queue = build_review_queue(pairs, records, mapping, previous.decisions, previous.queue)
    seconds["total"] = _lap(started)
    stats: dict[str, Any] = {
        "records": len(prepared),
        "candidate_pairs": report.candidate_pairs,
        "incremental": int(increment is not None),
        "records_relinked": int(relinked.sum()) if increment is not None else len(prepared),
        "pairs_per_rule": report.pairs_per_rule,
        "skipped_blocks": report.skipped_blocks,
        "skipped_block_records": report.skipped_records,
        "links": int(is_link.sum() - scored_cut.sum()),
        "links_cut": int(scored_cut.sum()),
        "review_same": len(decided.same_l),
        "review_different": len(decided.different_l),
        "review_overruled": decided.overruled(clusters.labels),
        "review_queue": len(review_queue),
        "ids_continued": ids.continued,
        "ids_merged": int((ids.history["kind"] == "merge").sum()),
        "ids_split": int((ids.history["kind"] == "split").sum()),
        "vetoed_pairs": int((pairs["decision"] == "vetoed").sum()),
        "id_sharing_conflicts": len(conflict_l),
        "ids_disputed": int(borrowed.sum()),
        "near_misses": int((pairs["decision"] == "near_miss").sum()),
        "cannot_link_pairs": len(cannot_link[0]),
        "split_components": clusters.split_components,
        "persons": clusters.n_clusters,
        "model": model.stats,
        "seconds": seconds,
    }
    log.info(
        "linked %d records into %d persons (%d candidate pairs, %d links) in %.1fs",
        stats["records"], stats["persons"], stats["candidate_pairs"], stats["links"], seconds["total"],
    )
    return LinkResult(mapping=mapping, pairs=pairs, stats=stats, history=ids.history, review_queue=review_queue,
                      kept=state)


def _conflict_pairs(
    with_numbers: RecordArrays,
    arrays: RecordArrays,
    settings: LinkSettings,
    model: FellegiSunterModel,
    rid_l: np.ndarray,
    rid_r: np.ndarray,
) -> pd.DataFrame:
    """The ID-sharing conflicts as scored pairs (decision ``vetoed``), compared as the departments wrote
    them — with the borrowed number (``with_numbers``) — and weighed by the model, to explain and review.
    Their borrowers are linked without the number, so blocking no longer pairs them with its holder."""
    if not len(rid_l):
        return empty_pairs(settings)
    levels = compare_pairs(with_numbers, rid_l, rid_r, settings.comparisons)
    scored = score_pairs(levels, settings, model.contributions(levels, arrays, rid_l, rid_r), model.prior_weight)
    batch = levels.copy()
    batch.insert(0, "rid_l", rid_l.astype(np.int32))
    batch.insert(1, "rid_r", rid_r.astype(np.int32))
    batch["rule"] = np.int16(_id_number_rule(settings))
    batch["score"] = scored.score
    batch["decision"] = pd.Series("vetoed", index=batch.index, dtype=TEXT)
    batch["veto"] = pd.Series(ID_SHARING_VETO, index=batch.index, dtype=TEXT)
    batch["w_prior"] = np.float32(model.prior_weight)
    for name, contribution in scored.contributions.items():
        batch[f"w_{name}"] = contribution
    batch["context"] = pd.Series(model.context_of(levels), dtype=TEXT)
    return batch


def _id_number_rule(settings: LinkSettings) -> int:
    """Index of the blocking rule that pairs records on their ID number alone; the conflicts are
    reported under its name (``len(blocking_rules)``, read as ``id_number``, where none is declared)."""
    return next((i for i, rule in enumerate(settings.blocking_rules) if rule.keys == ("id_number",)),
                len(settings.blocking_rules))


def _vetoed_within(
    backend: PairBackend, arrays: RecordArrays, settings: LinkSettings, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs a veto forbids whose records the links nonetheless put in one component.

    Only pairs inside a component can make it inconsistent, and there are few of them (about as many
    as links), so they are fetched again from the backend and re-scored instead of keeping every vetoed
    pair of the whole run in memory.
    """
    rid_l, rid_r = backend.pairs_inside(labels)
    vetoed = _vetoed(arrays, settings, rid_l, rid_r)
    return rid_l[vetoed], rid_r[vetoed]


def _vetoed_within_groups(
    con: duckdb.DuckDBPyConnection, arrays: RecordArrays, settings: LinkSettings, labels: np.ndarray,
    searched: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_vetoed_within` for a run that scored only some of the candidate pairs, in the components
    ``searched`` (a mask over labels): the candidate pairs inside each are found again by blocking its
    records among themselves."""
    rid = np.flatnonzero((np.bincount(labels, minlength=0)[labels] > 1) & searched[labels]).astype(np.int32)
    con.register("dedup_components", pd.DataFrame({"rid": rid, "label": labels[rid]}))
    inside = con.execute(pairs_within_sql(settings, "dedup_components", RECORDS_TABLE)).fetchnumpy()
    con.unregister("dedup_components")
    rid_l, rid_r = np.asarray(inside["rid_l"]), np.asarray(inside["rid_r"])
    vetoed = _vetoed(arrays, settings, rid_l, rid_r)
    return rid_l[vetoed], rid_r[vetoed]


def _vetoed(arrays: RecordArrays, settings: LinkSettings, rid_l: np.ndarray, rid_r: np.ndarray) -> np.ndarray:
    """Mask of the pairs ``(rid_l, rid_r)`` a veto forbids, compared in a batch per thread
    (:func:`dedup.backend.in_threads`; at most ``settings.chunk_size`` pairs each)."""
    size = even_batch_size(len(rid_l), settings.chunk_size)
    comparisons = veto_comparisons(settings)

    def vetoed(start: int) -> np.ndarray:
        levels = compare_pairs(arrays, rid_l[start:start + size], rid_r[start:start + size], comparisons)
        mask = np.zeros(len(levels), dtype=bool)
        for veto in settings.vetoes:
            mask |= violates(veto, levels, settings)
        return mask

    return np.concatenate([np.zeros(0, dtype=bool), *in_threads(vetoed, range(0, len(rid_l), size))])


def _pair_order(pairs: pd.DataFrame) -> np.ndarray:
    """The order of ``pairs`` by record positions (input order), which is deterministic and cheaper than
    sorting the id strings."""
    rid_l, rid_r = pairs["rid_l"].to_numpy(dtype=np.int64), pairs["rid_r"].to_numpy(dtype=np.int64)
    # One key per pair (positions are below 2^31, pairs distinct): the same order as lexsort, in half the time.
    return np.argsort((rid_l << 32) | rid_r)


def _explain(pairs: pd.DataFrame, order: np.ndarray, record_id: pd.Series, settings: LinkSettings) -> pd.DataFrame:
    """Swap positions for record ids, rule indexes for names and level codes for labels, rows in ``order``
    (:func:`_pair_order`); the decision is the caller's to add (clustering may still cut a link).

    Each column is taken in that order as it is explained, never the whole frame at once: at a million
    records the pairs and their explanation are the run's largest objects.
    """
    rid_l, rid_r = pairs["rid_l"].to_numpy(dtype=np.int64), pairs["rid_r"].to_numpy(dtype=np.int64)
    rules = [*(rule.name for rule in settings.blocking_rules), "id_number"]

    def ordered(column: str) -> np.ndarray:
        return pairs[column].to_numpy()[order]

    def ordered_text(column: str) -> pd.Series:
        return pd.Series(pairs[column].astype(TEXT).array.take(order))

    out = pd.DataFrame(
        {
            "record_id_l": text_at(record_id, rid_l[order]),
            "record_id_r": text_at(record_id, rid_r[order]),
            "score": ordered("score").astype("float32"),
            "veto": ordered_text("veto"),
            "rule": text_at(rules, ordered("rule")),
        }
    )
    for comparison in settings.comparisons:
        out[comparison.field] = level_labels(comparison, ordered(comparison.field))
    # The waterfall: match_weight = w_prior + the sum of w_<field>, and its match probability.
    out["w_prior"] = ordered("w_prior").astype("float32")
    for comparison in settings.comparisons:
        out[f"w_{comparison.field}"] = ordered(f"w_{comparison.field}").astype("float32")
    out["match_weight"] = out["score"]
    # Which pair context (dedup.model.PairContext) the weights of the pair come from: flatmates are
    # weighed by how flatmates compare, so a reader of the waterfall knows why a shared phone weighs little.
    out["context"] = ordered_text("context")
    out["match_probability"] = 1.0 / (1.0 + np.exp2(-np.clip(out["score"].to_numpy(dtype=np.float64), -60.0, 60.0)))
    return out


def _lap(since: float) -> float:
    return round(time.perf_counter() - since, 3)
