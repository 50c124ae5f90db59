"""The linked asset: every staged record assigned to a person by the dedup engine."""

import dagster as dg
import pandas as pd

from dedup import link_records

__all__ = ["build_link_asset"]


def build_link_asset(person_sources: list[str]) -> dg.AssetsDefinition:
    """``record_person_map`` and ``link_pairs`` from the staged records of ``person_sources``."""

    @dg.multi_asset(
        name="link",
        group_name="linked",
        ins={f"staged_{s}": dg.AssetIn(f"staged_{s}") for s in person_sources},
        outs={
            "record_person_map": dg.AssetOut(description="record_id -> person_id for every staged record"),
            "link_pairs": dg.AssetOut(description="scored candidate pairs, with the evidence for each decision"),
        },
    )
    def link(context: dg.AssetExecutionContext, **staged: pd.DataFrame):
        records = pd.concat(list(staged.values()), ignore_index=True)
        result = link_records(records)
        context.log.info("linked %d records into %d persons", len(records), result.mapping["person_id"].nunique())
        yield dg.Output(result.mapping, output_name="record_person_map",
                        metadata={"dagster/row_count": len(result.mapping), **_numbers(result.stats)})
        yield dg.Output(result.pairs, output_name="link_pairs", metadata={"dagster/row_count": len(result.pairs)})

    return link


def _numbers(stats: dict) -> dict:
    return {k: v for k, v in stats.items() if isinstance(v, (int, float))}
