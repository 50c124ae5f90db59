"""The one composition root: every asset, check, resource, job and schedule of silobreaker.

The CLI calls :func:`build_definitions` with explicit settings; ``dg dev`` / ``dagster dev`` load the ``defs``
:mod:`pipelines.definitions` builds with it from the environment.
"""

from __future__ import annotations

import os

import dagster as dg

from assets.blocked_report import build_blocked_report_sensor
from assets.linked import build_link_asset
from assets.new_files import build_new_files_sensor
from assets.published import build_publish_assets, quality_report
from assets.raw import build_raw_asset
from assets.resources import WarehouseResource
from assets.run_lifecycle import RUN_LOCK, SYNC_JOB, RunLockResource
from assets.staged import build_staged_assets
from connectors import SourceReader, load_sources
from core.home import HOME_ENV
from core.vocabulary import DISTRICT_TIME_ZONE
from dedup import load_link_settings
from pipelines.settings import DEMO_SOURCES, PERSONS, SETTINGS_ENV, Settings
from pipelines.storage import FileIOManager
from publish import load_area_register, load_policy, load_populations
from publish.risks import load_risks
from quality import load_quality_rules

__all__ = ["build_definitions"]


def build_definitions(settings: Settings, *, from_env: bool = False) -> dg.Definitions:
    """Build the graph for the sources declared in ``settings.sources_file``, gated by ``settings.rules_file``.

    With ``from_env`` (the definitions ``dagster dev`` loads), a resource setting that came from an
    environment variable stays one (``EnvVar``): Dagster resolves it when a run starts and shows its name,
    not its value. The nightly schedule and the sensor on new department files run by default for a
    configured district; on the built-in demo they are off until switched on.
    """
    # Every configuration file is read and checked here, before anything is extracted: a bad policy
    # fails in seconds naming its line, not after minutes of work at the publish step.
    sources = load_sources(settings.sources_file)
    declared = sources.sources
    person_sources = [s.name for s in sources.person_sources]
    consent_source = sources.consent_source.name if sources.consent_source else None
    rules = load_quality_rules(settings.rules_file)
    rules.check_sources(person_sources, settings.rules_file, consent=consent_source)
    populations = load_populations(settings.populations_file)
    load_policy(settings.policy_file, populations)
    load_risks(settings.risks_file, populations,
               {d: [s.name for s in declared if s.department == d] for d in {s.department for s in declared}})
    areas = settings.area_register_file
    if areas is not None:
        load_area_register(areas)
    linking = load_link_settings(settings.linking_file)
    accepted = settings.accepted_drops([s.name for s in declared])

    source_assets = [build_raw_asset(s) for s in declared]
    source_assets += [
        build_staged_assets(
            s, {"consent": rules.for_consent, "grid_updates": rules.for_grid_updates}.get(s.role, rules.for_source)(s.name),
            accepted.get(s.name), linking.spark if linking.engine == "spark" else None,
        )
        for s in declared
    ]
    assets = [
        *source_assets,
        build_link_asset(person_sources, linking, rules.district.persons_drop, accepted.get(PERSONS)),
        build_publish_assets(person_sources, consent_source, sources.trust_ranks,
                             sources.base_source.name if sources.base_source else None, populations),
        quality_report,
    ]
    sync = dg.define_asset_job(SYNC_JOB, selection=dg.AssetSelection.all(),
                               description="extract every source, stage, link and publish")
    configured = settings.sources_file != DEMO_SOURCES.resolve()
    return dg.Definitions(
        assets=assets,
        jobs=[sync],
        schedules=[
            dg.ScheduleDefinition(name="daily_sync", job=sync, cron_schedule="0 2 * * *",
                                  execution_timezone=DISTRICT_TIME_ZONE,
                                  default_status=dg.DefaultScheduleStatus.RUNNING if configured
                                  else dg.DefaultScheduleStatus.STOPPED,
                                  description="nightly full sync at 02:00 Beijing time"),
        ],
        sensors=[build_blocked_report_sensor(settings.home),
                 build_new_files_sensor(declared, settings.home, sync, running=configured)],
        # One process per run: the run lock is held for the whole run, and on 2 cores a process per
        # step (each importing Great Expectations and pandas) is several times slower.
        executor=dg.in_process_executor,
        resources=_resources(settings, from_env),
    )


def _resources(settings: Settings, from_env: bool) -> dict[str, object]:
    def value(env: str, literal: object) -> str | dg.EnvVar:
        return dg.EnvVar(env) if from_env and os.environ.get(env) else str(literal)

    home = value(HOME_ENV, settings.home)
    return {
        RUN_LOCK: RunLockResource(home=home),
        "source_reader": SourceReader(sources_file=value(SETTINGS_ENV["sources_file"], settings.sources_file), home=home),
        "warehouse": WarehouseResource(
            home=home, policy_file=value(SETTINGS_ENV["policy_file"], settings.policy_file),
            populations_file=value(SETTINGS_ENV["populations_file"], settings.populations_file),
            risks_file=value(SETTINGS_ENV["risks_file"], settings.risks_file),
            areas_file=value(SETTINGS_ENV["areas_file"], settings.area_register_file or "")),
        "io_manager": FileIOManager(home=home),
    }

