"""Published assets: the unified population warehouse, the shared products and the quality report."""

import dagster as dg
import pandas as pd

from assets.resources import WarehouseResource
from publish import PublicationInputs
from quality import render_quality_report, unified_population_suite, validate_frame
from staging import CONSENT_COLUMNS

__all__ = ["build_publish_assets", "quality_report"]

UNIFIED = dg.AssetKey("unified_population")
SHARED = dg.AssetKey("shared_products")


def build_publish_assets(person_sources: list[str], consent_source: str | None, trust: dict[str, int]) -> dg.AssetsDefinition:
    """``unified_population`` and ``shared_products``, published together or not at all."""
    all_sources = person_sources + ([consent_source] if consent_source else [])
    ins = {f"staged_{s}": dg.AssetIn(f"staged_{s}") for s in all_sources}
    ins |= {f"quarantine_{s}": dg.AssetIn(f"quarantine_{s}") for s in all_sources}
    ins |= {f"staging_report_{s}": dg.AssetIn(f"staging_report_{s}") for s in all_sources}
    ins |= {"record_person_map": dg.AssetIn("record_person_map"), "link_pairs": dg.AssetIn("link_pairs")}
    ins |= {name: dg.AssetIn(name) for name in ("person_id_history", "review_queue", "review_decisions")}
    upstream = [asset_in.key for asset_in in ins.values()]

    @dg.multi_asset(
        name="publish",
        group_name="published",
        ins=ins,
        specs=[
            dg.AssetSpec(UNIFIED, deps=upstream,
                         description="one golden, consent-tagged row per person, in the DuckDB warehouse"),
            dg.AssetSpec(SHARED, deps=upstream, description="one parquet product per recipient in policy.yaml"),
        ],
        check_specs=[dg.AssetCheckSpec("expectations", asset=UNIFIED, blocking=True,
                                       description="Great Expectations suite the new table must pass before it replaces the old")],
    )
    def publish(context: dg.AssetExecutionContext, warehouse: WarehouseResource, **frames):
        reports = [frames[f"staging_report_{s}"] for s in all_sources]
        inputs = PublicationInputs(
            run_id=context.run.run_id,
            records=pd.concat([frames[f"staged_{s}"] for s in person_sources], ignore_index=True),
            mapping=frames["record_person_map"],
            link_pairs=frames["link_pairs"],
            person_id_history=frames["person_id_history"],
            review_queue=frames["review_queue"],
            review_decisions=frames["review_decisions"],
            quarantine=pd.concat([frames[f"quarantine_{s}"] for s in all_sources], ignore_index=True),
            consent=frames[f"staged_{consent_source}"] if consent_source else pd.DataFrame(columns=CONSENT_COLUMNS),
            lineage=[r["lineage"] for r in reports],
            validations=[r["validation"] for r in reports],
            trust=trust,
            staging_reports=reports,
        )
        wh = warehouse.warehouse()
        candidate = wh.build_candidate(inputs, warehouse.policy())
        validation = validate_frame(
            candidate.read("SELECT person_id, name, id_number, record_count FROM unified_population"),
            unified_population_suite(),
        )
        check = dg.AssetCheckResult(
            asset_key=UNIFIED, check_name="expectations", passed=validation.success,
            metadata={"failed": [f"{o.kind}({o.column})" for o in validation.failed_expectations()]},
        )
        if not validation.success:
            wh.discard(candidate)
            yield check
            failed = "; ".join(f"{o.kind}({o.column}): {o.unexpected_count} unexpected, {o.why}"
                               for o in validation.failed_expectations())
            raise dg.Failure(
                description=f"unified_population failed its expectations ({failed}); the previous warehouse stays published",
            )
        wh.publish(candidate)
        yield dg.MaterializeResult(asset_key=UNIFIED, metadata={
            "path": str(wh.path), "dagster/row_count": candidate.counts["unified_population"], **candidate.counts})
        yield dg.MaterializeResult(asset_key=SHARED, metadata={
            p.recipient: f"{p.row_count} rows, sha256 {p.content_hash[:12]}"
            + "".join(f", {n} {why}" for why, n in sorted(p.exclusions.items()) if why != "no_consent")
            for p in candidate.products})
        yield check

    return publish


@dg.asset(group_name="published", deps=[UNIFIED, SHARED], kinds={"html"},
          description="self-contained HTML quality report for this run (counts, quarantine, validation, linking)")
def quality_report(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Render the report from the published warehouse into the data home's reports folder."""
    path = render_quality_report(warehouse.warehouse(), warehouse.reports_dir, context.run.run_id)
    return dg.MaterializeResult(metadata={"path": str(path), "latest": str(path.with_name("latest.html"))})
