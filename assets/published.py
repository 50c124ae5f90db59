"""Published assets: the unified population warehouse, the shared products and the quality report."""

from datetime import timedelta

import dagster as dg
import pandas as pd

from assets.resources import WarehouseResource
from assets.run_lifecycle import RunLockResource, discard_intermediates
from core.memory import release_garbage
from core.vocabulary import DISTRICT_TIME_ZONE
from publish import PublicationInputs, publish_if_valid
from publish.catalog import unified_columns
from publish.populations import KeyPopulations
from publish.risks import departments_of
from quality import render_quality_report
from staging import CONSENT_COLUMNS

__all__ = ["build_publish_assets", "quality_report"]

UNIFIED = dg.AssetKey("unified_population")
PUBLISHED_DAILY = dg.FreshnessPolicy.cron(deadline_cron="0 7 * * *", lower_bound_delta=timedelta(hours=24),
                                          timezone=DISTRICT_TIME_ZONE)
"""Departments open their shares in the morning: the table is stale if not published in the 24 hours
before 07:00 Beijing time (the nightly sync runs at 02:00)."""
SHARED = dg.AssetKey("shared_products")
TABLE_NAME = f"silobreaker.main.{UNIFIED.path[-1]}"
"""The published table as the warehouse names it (database ``silobreaker``, schema ``main``)."""


def build_publish_assets(person_sources: list[str], consent_source: str | None, trust: dict[str, int],
                         base_source: str | None = None, populations: KeyPopulations | None = None) -> dg.AssetsDefinition:
    """``unified_population`` and ``shared_products``, published together or not at all; ``populations`` (the
    deployment's key populations) give the table's declared columns, as the published warehouse holds them."""
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
            dg.AssetSpec(UNIFIED, deps=upstream, freshness_policy=PUBLISHED_DAILY,
                         description="one golden, consent-tagged row per person, in the DuckDB warehouse",
                         # Declared from the data dictionary, so the UI shows them before a run; each materialization
                         # gives them again as the warehouse it published holds them.
                         metadata={"dagster/table_name": TABLE_NAME, "dagster/column_schema": dg.TableSchema(columns=[
                             dg.TableColumn(c.name, c.type, description=c.comment) for c in unified_columns(populations)])}),
            dg.AssetSpec(SHARED, deps=upstream, description="one parquet product per recipient in policy.yaml"),
        ],
        check_specs=[dg.AssetCheckSpec("expectations", asset=UNIFIED, blocking=True,
                                       description="Great Expectations suite the new table must pass before it replaces the old")],
    )
    def publish(context: dg.AssetExecutionContext, run_lock: RunLockResource, warehouse: WarehouseResource, **frames):
        release_garbage()  # the steps before's garbage, before the step that needs the memory
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
            staging_reports=[frames[f"staging_report_{s}"] for s in all_sources],
            trust=trust,
            populations=warehouse.populations(),
            areas=warehouse.areas(),
            risks=warehouse.risks(departments_of(frames[f"staging_report_{s}"] for s in person_sources)),
            warning_actions=warehouse.warning_actions(),
            base_source=base_source,
        )
        result = publish_if_valid(warehouse.data_home(), inputs, warehouse.policy())
        check = dg.AssetCheckResult(
            asset_key=UNIFIED, check_name="expectations", passed=result.validation.success,
            metadata={"failed": [f"{o.kind}({o.column})" for o in result.validation.failed_expectations()]},
        )
        if not result.published:
            yield check
            raise dg.Failure(description=result.reason)
        discard_intermediates(warehouse.data_home(), context.run.run_id)
        schema = dg.TableSchema(columns=[dg.TableColumn(name, kind, description=comment or None)
                                         for name, kind, comment in warehouse.reader().columns(UNIFIED.path[-1])])
        yield dg.MaterializeResult(asset_key=UNIFIED, metadata={
            "path": str(result.warehouse), "dagster/row_count": result.counts["unified_population"],
            "dagster/table_name": TABLE_NAME, "dagster/column_schema": schema,
            **result.counts})
        areas: dict[str, list] = {}
        for p in result.products:
            if p.area is not None:
                areas.setdefault(p.policy_entry, []).append(p)
        yield dg.MaterializeResult(asset_key=SHARED, metadata={
            "product_count": len(result.products),
            **{p.recipient: f"{p.row_count} rows, sha256 {p.content_hash[:12]}"
               + "".join(f", {n} {why}" for why, n in sorted(p.exclusions.items()) if why != "no_consent")
               for p in result.products if p.area is None},
            **{entry: f"{len(products)} area products, {sum(p.row_count for p in products)} rows, "
                      f"{sum(sum(p.exclusions.values()) for p in products)} people withheld"
               for entry, products in areas.items()}})
        yield check

    return publish


@dg.asset(group_name="published", deps=[UNIFIED, SHARED], kinds={"html"},
          description="self-contained HTML quality report for this run (counts, quarantine, validation, linking)")
def quality_report(
    context: dg.AssetExecutionContext, run_lock: RunLockResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Render the report of this run from the published warehouse into the data home's reports folder."""
    home = warehouse.data_home()
    path = render_quality_report(warehouse.reader().report_inputs(context.run.run_id), home)
    return dg.MaterializeResult(metadata={"path": str(path), "latest": str(home.latest_report)})
