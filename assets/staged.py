"""Staged assets: each source mapped to the canonical schema, validated, bad rows quarantined.

One multi-asset per source yields the staged records, the quarantined rows and a staging report
(lineage, counts, Great Expectations results), plus two blocking checks on the staged records: the
source's expectation suite with its guards (its ``error`` rules from rules.yaml; rows read and
quarantined against the last publication, see :mod:`quality.guards`) and record conservation
(extracted = staged + quarantined). A person source also gets ``expectation_warnings``, a non-blocking check with
severity WARN for its ``warn`` rules.
"""

import dagster as dg
import pandas as pd

from assets.raw import read_raw
from assets.resources import WarehouseResource
from assets.run_lifecycle import RunLockResource
from connectors import Extract, SourceConfig, SourceReader
from dedup.settings import SparkSpec
from quality import (
    ExpectationOutcome,
    QualityRules,
    SuiteSpec,
    ValidationSummary,
    build_staging_report,
    expectation_key,
    staged_person_suite,
    validate_frame,
)
from quality.guards import source_guards
from quality.rules import consent_registry_suite
from staging import StageResult, stage_consent_records, stage_person_records
from staging.reuse import StagingStore
from staging.spark import SparkChunks
from staging.stage import ChunkRunner

__all__ = ["build_staged_assets", "with_earlier_reports"]


def with_earlier_reports(current: pd.DataFrame, kept: pd.DataFrame) -> pd.DataFrame:
    """A grid-update source's records: this form's rows and every earlier report not sent again."""
    earlier = kept[~kept["record_id"].isin(current["record_id"])]
    return pd.concat([current, earlier], ignore_index=True) if len(earlier) else current


def build_staged_assets(source: SourceConfig, rules: QualityRules, accepted_by: str | None = None,
                        spark: SparkSpec | None = None) -> dg.AssetsDefinition:
    """``staged_<s>``, ``quarantine_<s>`` and ``staging_report_<s>`` for one source, checked against ``rules``
    and its guards; ``accepted_by`` names who confirmed a real drop of this source in this run; with ``spark``
    (``engine: spark`` in linking.yaml) a long extract is staged on that Spark cluster (:mod:`staging.spark`)."""
    name = source.name
    staged_key = dg.AssetKey(f"staged_{name}")
    owners = [source.owner or f"team:{name}"]

    @dg.multi_asset(
        name=f"stage_{name}",
        group_name=name,
        ins={"raw": dg.AssetIn(f"raw_{name}")},
        outs={
            f"staged_{name}": dg.AssetOut(
                description=f"{source.department}: canonical records that passed the quarantine rules", owners=owners),
            f"quarantine_{name}": dg.AssetOut(
                description=f"{source.department}: rows held back, with rule and fix", owners=owners),
            f"staging_report_{name}": dg.AssetOut(
                description=f"{source.department}: lineage, counts and validation", owners=owners),
        },
        check_specs=[
            dg.AssetCheckSpec("expectations", asset=staged_key, blocking=True,
                              description="Great Expectations suite and guards (drop, quarantine share) for the staged source"),
            dg.AssetCheckSpec("record_conservation", asset=staged_key, blocking=True,
                              description="every extracted row is staged or quarantined"),
        ] + ([dg.AssetCheckSpec("expectation_warnings", asset=staged_key, blocking=False,
                                description="rules.yaml rules with severity warn: reported, not blocking")]
             if source.holds_persons else []),
    )
    def stage(context: dg.AssetExecutionContext, run_lock: RunLockResource, raw: Extract, warehouse: WarehouseResource,
              source_reader: SourceReader):
        store = StagingStore(warehouse.data_home())
        raw, result, reused = _staging(source, raw, store, source_reader, SparkChunks(spark) if spark else None)
        if reused:
            context.log.info("content unchanged (sha256 %s): the kept staging is reused", raw.lineage.content_hash[:12])
        reader = warehouse.reader()
        previous_rows = reader.previous_staged_rows(name) if rules.row_count_change else None
        suite = consent_registry_suite(name, rules) if source.role == "consent" else staged_person_suite(
            name, rules, fields=source.expected_fields, as_of=raw.lineage.extracted_at, previous_rows=previous_rows)
        guards = source_guards(
            rules, extracted=raw.lineage.row_count, quarantined=len(result.quarantine), accepted_by=accepted_by,
            previous_extracted=reader.previous_extracted_rows(name) if rules.row_drop else None,
        )
        validation = _validation(store, raw, result.staged, suite, reused).with_outcomes(guards)
        report = build_staging_report(source, raw, result, validation)
        staged = result.staged
        if source.role == "grid_updates":
            # A report is an event: this week's form does not undo last week's deaths. Earlier reports stay,
            # each replaced by its row in this form if sent again (same day, worker and number).
            staged = with_earlier_reports(result.staged, reader.kept_records(name))
        yield dg.Output(staged, output_name=f"staged_{name}",
                        metadata={"dagster/row_count": len(staged), "quarantined": report.quarantined,
                                  "staging_reused": reused,
                                  **({"this_form": report.staged} if source.role == "grid_updates" else {})})
        yield dg.Output(result.quarantine, output_name=f"quarantine_{name}",
                        metadata={"dagster/row_count": report.quarantined})
        # The whole report rides in the event log too, so a blocked run's report shows this attempt's counts.
        yield dg.Output(report, output_name=f"staging_report_{name}",
                        metadata={"report": dg.MetadataValue.json(report.as_dict())})
        yield dg.AssetCheckResult(
            asset_key=staged_key, check_name="expectations", passed=validation.success,
            metadata={
                "failed": [f"{o.kind}({o.column}): observed {o.observed()}, threshold {o.threshold()}"
                           for o in validation.failed_expectations()],
                "evaluated": len(validation.outcomes),
            },
        )
        yield dg.AssetCheckResult(
            asset_key=staged_key, check_name="record_conservation", passed=report.conserved,
            metadata={"extracted": report.extracted, "staged": report.staged, "quarantined": report.quarantined},
        )
        if source.holds_persons:
            yield dg.AssetCheckResult(
                asset_key=staged_key, check_name="expectation_warnings", passed=not validation.warnings(),
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"failed": [f"{o.kind}({o.column}): observed {o.observed()}, threshold {o.threshold()}"
                                     for o in validation.warnings()]},
            )

    return stage


def _staging(source: SourceConfig, raw: Extract, store: StagingStore, source_reader: SourceReader,
             runner: ChunkRunner | None) -> tuple[Extract, StageResult, bool]:
    """The staging of ``raw``: the one kept for its content (reused: True) or a new one, then kept."""
    kept = store.reuse(source, raw.lineage)
    if kept is not None:
        return raw, kept, True
    if raw.unchanged:  # the kept staging expired or went missing since the file was hashed
        raw = read_raw(source_reader, source)
    stage_fn = stage_consent_records if source.role == "consent" else stage_person_records
    # A grid-update form's 变更类型 is its drop-down: a row must name one of its changes.
    form = {"form_fields": ["change"]} if source.role == "grid_updates" else {}
    result = stage_fn(
        raw.frame, source=source.name, primary_key=source.primary_key, columns=source.columns,
        values=source.values, date_formats=source.date_formats, extracted_at=raw.lineage.extracted_at,
        truncated_rows=raw.truncated_rows, runner=runner,
        known=store.known_rows(source, pd.Timestamp(raw.lineage.extracted_at)), **form,
    )
    store.keep(source, raw.lineage, result)
    return raw, result, False


def _validation(store: StagingStore, raw: Extract, staged: pd.DataFrame, suite: SuiteSpec,
                reused: bool) -> ValidationSummary:
    """``suite`` on ``staged``; of a reused staging, only the expectations not already evaluated on it run."""
    known = {key: ExpectationOutcome(**o) for key, o in store.outcomes(raw.lineage).items()} if reused else {}
    validation = validate_frame(staged, suite, known)
    store.keep_outcomes(raw.lineage, {expectation_key(spec): outcome.__dict__
                                      for spec, outcome in zip(suite.expectations, validation.outcomes, strict=True)})
    return validation
