"""The ``silobreaker`` command line.

    silobreaker demo [--persons N] [--seed S]   generate the demo district and run the pipeline on it
    silobreaker run                             run the pipeline on the configured sources
    silobreaker dedup INPUT OUTPUT              resolve identities in a file of person records
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import SilobreakerError
from core.paths import HOME_ENV, data_home
from pipelines.settings import DEMO_POLICY, DEMO_SOURCES, Settings

__all__ = ["RunOutcome", "main", "run_pipeline"]

log = logging.getLogger("silobreaker")
REPO_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "dagster.yaml"


@dataclass
class RunOutcome:
    """What a pipeline run did, for the summary and for tests."""

    run_id: str
    success: bool
    reports: dict[str, dict] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    settings: Settings | None = None


def _prepare_instance(home: Path) -> Path:
    """Make ``<home>/dagster`` a Dagster instance directory with the repository's settings."""
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    if REPO_DAGSTER_YAML.exists():
        shutil.copyfile(REPO_DAGSTER_YAML, dagster_home / "dagster.yaml")
    else:
        (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    return dagster_home


def run_pipeline(settings: Settings, *, log_level: str = "WARNING") -> RunOutcome:
    """Materialise the whole graph in-process on a persistent instance under the data home.

    Args:
        settings: data home and configuration files.
        log_level: level of Dagster's console log for this run (the event log keeps everything).
    """
    dagster_home = _prepare_instance(settings.home)
    import dagster as dg

    from pipelines.definitions import build_definitions

    defs = build_definitions(settings)
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        result = defs.resolve_job_def("sync").execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        )
    failures = {}
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        failures[event.step_key] = _root_message(error)
    reports = {}
    for path in sorted((settings.home / "staging").glob("staging_report_*.json")):
        report = json.loads(path.read_text(encoding="utf-8"))
        reports[report["source"]] = report
    return RunOutcome(result.run_id, result.success, reports, failures, settings)


def _root_message(error) -> str:
    # Dagster wraps user errors; the innermost cause carries our message with source and fix.
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def _print_summary(outcome: RunOutcome) -> None:
    settings = outcome.settings
    assert settings is not None
    print(f"\nsilobreaker run {outcome.run_id}: {'SUCCESS' if outcome.success else 'FAILED'}")
    print(f"{'source':<20}{'extracted':>10}{'staged':>10}{'quarantined':>13}")
    for name, r in outcome.reports.items():
        print(f"{name:<20}{r['extracted']:>10}{r['staged']:>10}{r['quarantined']:>13}")
    for step, message in outcome.failures.items():
        print(f"FAILED {step}: {message}")
    warehouse = settings.home / "warehouse" / "silobreaker.duckdb"
    if warehouse.exists():
        import duckdb

        with duckdb.connect(str(warehouse), read_only=True) as con:
            records, persons = con.execute(
                "SELECT (SELECT count(*) FROM record_person), (SELECT count(*) FROM unified_population)"
            ).fetchall()[0]
            tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
            products = con.execute(
                "SELECT recipient, row_count FROM publication_log WHERE run_id = ? ORDER BY recipient", [outcome.run_id]
            ).fetchall()
        note = "" if outcome.success else "  (previous publication, kept because this run failed)"
        print(f"people resolved: {persons} from {records} staged records{note}")
        print(f"tables published: {', '.join(tables)}")
        print(f"warehouse:     {warehouse}")
        print(f"shared tables: {settings.home / 'shared'}  " + ", ".join(f"{r} ({n} rows)" for r, n in products))
    report = settings.home / "reports" / "latest.html"
    if report.exists():
        print(f"report:        {report}")


def _cmd_demo(args: argparse.Namespace) -> int:
    from demo.generate import generate_demo

    home = data_home(args.home)
    started = time.perf_counter()
    summary = generate_demo(home, persons=args.persons, seed=args.seed)
    print(f"generated demo district ({args.persons} people, seed {args.seed}) in {time.perf_counter() - started:.1f} s under {home / 'demo'}")
    for source, count in summary.counts.items():
        print(f"  {source:<20}{count:>8} rows")
    outcome = run_pipeline(Settings(home, DEMO_SOURCES, DEMO_POLICY), log_level=_dagster_level(args))
    _print_summary(outcome)
    return 0 if outcome.success else 1


def _cmd_run(args: argparse.Namespace) -> int:
    base = Settings.from_env()
    settings = Settings(
        home=data_home(args.home) if args.home else base.home,
        sources_file=Path(args.sources).resolve() if args.sources else base.sources_file,
        policy_file=Path(args.policy).resolve() if args.policy else base.policy_file,
    )
    outcome = run_pipeline(settings, log_level=_dagster_level(args))
    _print_summary(outcome)
    return 0 if outcome.success else 1


def _dagster_level(args: argparse.Namespace) -> str:
    return "INFO" if args.verbose else "ERROR"


def _cmd_dedup(args: argparse.Namespace) -> int:
    from dedup import dedup_file

    stats = dedup_file(args.input, args.output)
    print(json.dumps(stats, ensure_ascii=False, indent=2, default=str))
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, e.g. --persons 20000 (got {value})")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(prog="silobreaker", description="Break the data silos: connect, stage, link, publish.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="generate the demo district and run the whole pipeline on it")
    demo.add_argument("--persons", type=_positive_int, default=20_000, help="people in the district (default 20000)")
    demo.add_argument("--seed", type=int, default=20261123, help="random seed (default 20261123)")
    demo.add_argument("--home", help=f"data home (default ${HOME_ENV} or ./var)")
    demo.set_defaults(func=_cmd_demo)

    run = sub.add_parser("run", help="run the pipeline on the configured sources")
    run.add_argument("--home", help=f"data home (default ${HOME_ENV} or ./var)")
    run.add_argument("--sources", help="sources.yaml (default $SILOBREAKER_SOURCES or the demo's)")
    run.add_argument("--policy", help="policy.yaml (default $SILOBREAKER_POLICY or the demo's)")
    run.set_defaults(func=_cmd_run)

    dedup = sub.add_parser("dedup", help="resolve identities: INPUT (parquet/CSV) -> OUTPUT parquet of record_id, person_id")
    dedup.add_argument("input")
    dedup.add_argument("output")
    dedup.set_defaults(func=_cmd_dedup)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``silobreaker`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except SilobreakerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
