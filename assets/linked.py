"""The linked asset: every staged record assigned to a person by the dedup engine."""

import dagster as dg
import pandas as pd

from assets.resources import WarehouseResource
from dedup import link_records

__all__ = ["build_link_asset"]


def build_link_asset(person_sources: list[str]) -> dg.AssetsDefinition:
    """``record_person_map``, ``link_pairs``, ``person_id_history``, ``review_queue`` and ``review_decisions``
    from the staged records of ``person_sources``, building on the previous publication."""

    @dg.multi_asset(
        name="link",
        group_name="linked",
        ins={f"staged_{s}": dg.AssetIn(f"staged_{s}") for s in person_sources},
        outs={
            "record_person_map": dg.AssetOut(description="record_id -> person_id for every staged record"),
            "link_pairs": dg.AssetOut(description="scored candidate pairs, with the evidence for each decision"),
            "person_id_history": dg.AssetOut(description="person ids merged, split or issued against the last publication"),
            "review_queue": dg.AssetOut(description="uncertain pairs left for a reviewer, not merged"),
            "review_decisions": dg.AssetOut(description="the review decisions applied (must-link / cannot-link)"),
        },
    )
    def link(context: dg.AssetExecutionContext, warehouse: WarehouseResource, **staged: pd.DataFrame):
        records = pd.concat(list(staged.values()), ignore_index=True)
        previous = warehouse.previous_linking()
        result = link_records(records, previous=previous)
        context.log.info("linked %d records into %d persons", len(records), result.mapping["person_id"].nunique())
        yield dg.Output(result.mapping, output_name="record_person_map",
                        metadata={"dagster/row_count": len(result.mapping), **_numbers(result.stats)})
        yield dg.Output(result.pairs, output_name="link_pairs", metadata={"dagster/row_count": len(result.pairs)})
        yield dg.Output(result.history, output_name="person_id_history",
                        metadata={kind: int((result.history["kind"] == kind).sum()) for kind in ("merge", "split", "new")})
        yield dg.Output(result.review_queue, output_name="review_queue",
                        metadata={"dagster/row_count": len(result.review_queue)})
        yield dg.Output(previous.decisions, output_name="review_decisions",
                        metadata={"dagster/row_count": len(previous.decisions)})

    return link


def _numbers(stats: dict) -> dict:
    return {k: v for k, v in stats.items() if isinstance(v, (int, float))}
