"""The linked asset: every staged record assigned to a person by the dedup engine."""

import dataclasses
import datetime as dt

import dagster as dg
import pandas as pd

from assets.resources import WarehouseResource
from assets.run_lifecycle import RunLockResource
from core.memory import release_garbage
from dedup import LinkSettings, link_records
from dedup.incremental import KeptLinking
from quality.guards import drop_outcome
from quality.rules import DropRule

__all__ = ["build_link_asset"]


def build_link_asset(
    person_sources: list[str],
    settings: LinkSettings | None = None,
    persons_drop: DropRule | None = None,
    accepted_by: str | None = None,
) -> dg.AssetsDefinition:
    """``record_person_map``, ``link_pairs``, ``person_id_history``, ``review_queue`` and ``review_decisions``
    from the staged records of ``person_sources``, linked as ``settings`` (linking.yaml) say and building
    on the previous publication; a blocking check holds publication when far fewer persons resolve
    than the last publication had."""
    settings = settings or LinkSettings()
    persons_key = dg.AssetKey("record_person_map")

    @dg.multi_asset(
        name="link",
        group_name="linked",
        ins={f"staged_{s}": dg.AssetIn(f"staged_{s}") for s in person_sources},
        outs={
            "record_person_map": dg.AssetOut(description="record_id -> person_id for every staged record, and whether it borrowed another resident's ID number"),
            "link_pairs": dg.AssetOut(description="scored candidate pairs, with the evidence for each decision"),
            "person_id_history": dg.AssetOut(description="person ids merged, split or issued against the last publication"),
            "review_queue": dg.AssetOut(description="uncertain pairs left for a reviewer, not merged"),
            "review_decisions": dg.AssetOut(description="the review decisions applied (must-link / cannot-link)"),
        },
        check_specs=[dg.AssetCheckSpec("persons_drop", asset=persons_key, blocking=True,
                                       description="persons resolved vs the last publication (rules.yaml district.persons_drop)")],
    )
    def link(context: dg.AssetExecutionContext, run_lock: RunLockResource, warehouse: WarehouseResource,
             **staged: pd.DataFrame):
        release_garbage()  # the steps before's garbage, before the step that needs the memory
        records = pd.concat(list(staged.values()), ignore_index=True)
        previous = warehouse.previous_linking()
        folder = warehouse.data_home().kept_linking_dir
        now = dt.datetime.now(dt.UTC)
        # The kept state is passed, not held here: linking lets go of each part once used (held here through the
        # linking it raised a 1M night's peak by ~1.8 GB: benchmarks/results/sync.md), so it is taken out of the list
        # as the call is made. When only the model was kept (run --full), or the rest cannot be read, every record is
        # linked with it while it is fresh: the persons an incremental night gives.
        kept = [KeptLinking.load(folder, settings, now)]
        fitted = KeptLinking.load_model(folder, settings, now) if kept[0] is None else None
        result = link_records(records, settings, previous=previous, id_key=warehouse.person_id_key(),
                              kept=kept.pop(), fitted=fitted, now=now)
        # Kept whatever the publication makes of it: the state describes these records, which is all the
        # next run reuses it for (by fingerprint), not what was published.
        result.kept.save(folder)
        result = dataclasses.replace(result, kept=None)  # not held while the outputs are written
        # One id per cluster, never shared (dedup.ids): counting the distinct ids of 2.5M records took a second.
        persons = int(result.stats["persons"])
        context.log.info("linked %d records into %d persons (%s, %d records relinked)", len(records), persons,
                         "only what changed" if result.stats["incremental"] else "every record",
                         result.stats["records_relinked"])
        yield dg.Output(result.mapping, output_name="record_person_map",
                        metadata={"dagster/row_count": len(result.mapping), **_numbers(result.stats)})
        yield dg.Output(result.pairs, output_name="link_pairs", metadata={"dagster/row_count": len(result.pairs)})
        yield dg.Output(result.history, output_name="person_id_history",
                        metadata={kind: int((result.history["kind"] == kind).sum()) for kind in ("merge", "split", "new")})
        yield dg.Output(result.review_queue, output_name="review_queue",
                        metadata={"dagster/row_count": len(result.review_queue)})
        yield dg.Output(previous.decisions, output_name="review_decisions",
                        metadata={"dagster/row_count": len(previous.decisions)})
        last = warehouse.reader().last_run()
        if persons_drop is None or last is None or not last.persons:
            yield dg.AssetCheckResult(asset_key=persons_key, check_name="persons_drop", passed=True,
                                      metadata={"persons": persons, "note": "no earlier publication or rule off"})
            return
        outcome = drop_outcome("persons_drop", persons_drop, persons, last.persons, accepted_by,
                               "far fewer persons resolved than the last publication held: a source shrank or "
                               "linking merged people who are not the same")
        yield dg.AssetCheckResult(asset_key=persons_key, check_name="persons_drop", passed=outcome.success,
                                  severity=dg.AssetCheckSeverity.ERROR if outcome.severity == "error" else dg.AssetCheckSeverity.WARN,
                                  metadata={"observed": outcome.observed(), "threshold": outcome.threshold(),
                                            "why": outcome.why})

    return link


def _numbers(stats: dict) -> dict:
    return {k: v for k, v in stats.items() if isinstance(v, (int, float))}
