"""The one composition root: every asset, check, resource, job and schedule of silobreaker.

``dagster dev`` (from the repository root) loads ``defs`` from here; the CLI calls
:func:`build_definitions` with explicit settings.
"""

from __future__ import annotations

import dagster as dg

from assets.blocked_report import build_blocked_report_sensor
from assets.linked import build_link_asset
from assets.published import build_publish_assets, quality_report
from assets.raw import build_raw_asset
from assets.resources import WarehouseResource
from assets.run_lifecycle import RUN_LOCK, SYNC_JOB, RunLockResource
from assets.staged import build_staged_assets
from connectors import SourceReader, load_sources
from dedup import load_link_settings
from pipelines.settings import PERSONS, Settings
from pipelines.storage import FileIOManager
from publish import load_area_register, load_policy, load_populations
from quality import load_quality_rules

__all__ = ["build_definitions", "defs"]


def build_definitions(settings: Settings) -> dg.Definitions:
    """Build the graph for the sources declared in ``settings.sources_file``, gated by ``settings.rules_file``."""
    # Every configuration file is read and checked here, before anything is extracted: a bad policy
    # fails in seconds naming its line, not after minutes of work at the publish step.
    sources = load_sources(settings.sources_file)
    declared = sources.sources
    person_sources = [s.name for s in sources.person_sources]
    consent_source = sources.consent_source.name if sources.consent_source else None
    rules = load_quality_rules(settings.rules_file)
    rules.check_sources(person_sources, settings.rules_file, consent=consent_source)
    load_policy(settings.policy_file, load_populations(settings.populations_file))
    areas = settings.area_register_file
    if areas is not None:
        load_area_register(areas)
    linking = load_link_settings(settings.linking_file)
    accepted = settings.accepted_drops([s.name for s in declared])

    source_assets = [build_raw_asset(s) for s in declared]
    source_assets += [
        build_staged_assets(
            s, rules.for_consent(s.name) if s.role == "consent" else rules.for_source(s.name), accepted.get(s.name)
        )
        for s in declared
    ]
    assets = [
        *source_assets,
        build_link_asset(person_sources, linking, rules.district.persons_drop, accepted.get(PERSONS)),
        build_publish_assets(person_sources, consent_source, sources.trust_ranks),
        quality_report,
    ]
    sync = dg.define_asset_job(SYNC_JOB, selection=dg.AssetSelection.all(),
                               description="extract every source, stage, link and publish")
    return dg.Definitions(
        assets=assets,
        jobs=[sync],
        schedules=[
            dg.ScheduleDefinition(name="daily_sync", job=sync, cron_schedule="0 2 * * *",
                                  execution_timezone="Asia/Shanghai",
                                  default_status=dg.DefaultScheduleStatus.STOPPED,
                                  description="nightly full sync at 02:00 Beijing time"),
        ],
        sensors=[build_blocked_report_sensor(sync, settings.home)],
        # One process per run: the run lock is held for the whole run, and on 2 cores a process per
        # step (each importing Great Expectations and pandas) is several times slower.
        executor=dg.in_process_executor,
        resources={
            RUN_LOCK: RunLockResource(home=str(settings.home)),
            "source_reader": SourceReader(sources_file=str(settings.sources_file), home=str(settings.home)),
            "warehouse": WarehouseResource(home=str(settings.home), policy_file=str(settings.policy_file),
                                           populations_file=str(settings.populations_file),
                                           areas_file=str(areas or "")),
            "io_manager": FileIOManager(home=str(settings.home)),
        },
    )


defs = build_definitions(Settings.from_env())
