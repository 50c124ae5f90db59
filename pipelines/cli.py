"""The ``silobreaker`` command line.

    silobreaker demo [--persons N] [--seed S]   generate the demo district and run the pipeline on it
    silobreaker run [--full]                    run the pipeline on the configured sources (--full: ignore kept work)
    silobreaker dedup INPUT OUTPUT              resolve identities in a file of person records
    silobreaker review list                     print the pairs awaiting clerical review
    silobreaker review decide A B same|different   record a reviewer's decision for the next run
    silobreaker report                          re-render the quality report of the latest published run
    silobreaker corrections export --source S   write what S's department should correct (alias: quarantine export)
    silobreaker lookup --as R --name N ...      is this resident already known in R's scope? (先查后录)
    silobreaker warnings list|close ID ...      risk early warnings (风险预警) and a worker's actions on them
    silobreaker grid-updates template PATH|list the grid-update form (网格信息变更表), and the updates published
    silobreaker restore [GENERATION] [--list]   publish an earlier generation again
    silobreaker audit verify [--against FILE]   check the signed publication log and its anchors (warehouse, products)
    silobreaker audit export [--out FILE]       write the log's head, public key and entries for a notary
    silobreaker audit person ID | --person-id P | --name N --birth-date D   who received a person's data
    silobreaker product read RECIPIENT          decrypt a recipient's product (see docs/privacy.md)
    silobreaker keys rotate RECIPIENT           a new product key for RECIPIENT; the old one is kept

``run``, ``demo`` and ``dedup`` say each stage as it finishes on stderr (:mod:`pipelines.console`); with
``--json`` a command prints one JSON document on stdout and nothing else there.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ConfigError, SilobreakerError, is_disk_full
from core.home import HOME_ENV, DataHome, private_files
from core.lock import DataHomeBusyError, hold_data_home
from core.memory import use_system_allocator
from pipelines.console import Progress, add_json_flag, print_json
from pipelines.corrections_cli import add_corrections_commands
from pipelines.grid_cli import add_grid_commands
from pipelines.privacy_cli import add_privacy_commands
from pipelines.settings import DEMO_POLICY, DEMO_SOURCES, Settings

__all__ = ["RunOutcome", "main", "run_pipeline"]

log = logging.getLogger("silobreaker")

EXIT_BUSY = 3
"""Exit code when another run holds the data home (0 published, 1 run failed or blocked, 2 bad
configuration or usage): a scheduler may simply try again later."""
REPO_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "dagster.yaml"


@dataclass
class RunOutcome:
    """What a pipeline run did, for the summary and for tests.

    ``reports`` holds the staging report of every source this run staged (``quality.StagingReport``),
    ``failures`` each failed step's message, ``notes`` what the run found and put in order before it
    started (an interrupted publication finished or undone, a damaged warehouse, a killed run), ``logged``
    each warning silobreaker's own code logged while it ran (logger name, message), for the summary.
    """

    run_id: str
    success: bool
    reports: dict = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    settings: Settings | None = None
    notes: list[str] = field(default_factory=list)
    logged: list[tuple[str, str]] = field(default_factory=list)


class _WarningsKept(logging.Handler):
    """Keeps each warning (and worse) silobreaker's own loggers emit, once: a warning logged in the middle of a
    night (a blocking rule's skipped blocks, a watermark table read whole) reaches the summary and its JSON, not
    only the console's stream of log lines."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.kept: dict[tuple[str, str], None] = {}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.name.split(".", 1)[0] in _OWN_LOGGERS:
                self.kept.setdefault((record.name, record.getMessage()), None)
        except Exception:  # a malformed log call is reported, as logging does, and never breaks the code that made it
            self.handleError(record)


#: The settings CLI runs open the instance with, beside the ``dagster.yaml`` that ``make dev`` uses.
CLI_DAGSTER_YAML = "dagster-cli.yaml"

#: A CLI run's stdout and stderr are the operator's console (or the scheduler's log), written as things
#: happen. Dagster's default compute-log capture would send them into a file for the whole run and back
#: through a ``tail -F`` polled once a second and stopped when the run ends: every line late, and the last
#: ones lost (a CI run read no report line). Runs launched from the UI keep the capture.
_CLI_COMPUTE_LOGS = {"module": "dagster._core.storage.noop_compute_log_manager", "class": "NoOpComputeLogManager"}


def _prepare_instance(home: DataHome) -> Path:
    """Make the data home's Dagster folder an instance directory with the repository's settings
    (``dagster.yaml``), and :data:`CLI_DAGSTER_YAML` for CLI runs: the same without compute-log capture."""
    import yaml

    home.dagster_dir.mkdir(parents=True, exist_ok=True)
    if REPO_DAGSTER_YAML.exists():
        shutil.copyfile(REPO_DAGSTER_YAML, home.dagster_config_file)
    else:
        home.dagster_config_file.write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    settings = yaml.safe_load(home.dagster_config_file.read_text(encoding="utf-8")) or {}
    settings["compute_logs"] = _CLI_COMPUTE_LOGS
    (home.dagster_dir / CLI_DAGSTER_YAML).write_text(
        "# dagster.yaml for CLI runs (written by silobreaker): their output goes straight to the console\n"
        + yaml.safe_dump(settings, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return home.dagster_dir


def run_pipeline(settings: Settings, *, log_level: str = "WARNING", on_event=None, full: bool = False,
                 refit: bool = False) -> RunOutcome:
    """Materialise the whole graph in-process on a persistent instance under the data home.

    The data home's run lock is taken first, before any configuration is used or anything read;
    then the home is put in order after whatever happened before (:func:`assets.run_lifecycle.begin_run`).

    Args:
        settings: data home and configuration files.
        log_level: level of Dagster's console log for this run (the event log keeps everything).
        on_event: called with each of the run's Dagster events (``dg.EventLogEntry``) as it is stored,
            e.g. :meth:`pipelines.console.Progress.dagster_listener`.
        full: forget what earlier runs kept to spare work (each source's staging, a watermark table's
            rows, the linking state), so every source is read whole, staged and linked again — with the linking
            model the last whole relink fitted, while it is fresh (:mod:`dedup.incremental`).
        refit: with ``full``, forget that model too: it is fitted again (a demo generated anew).

    Raises:
        DataHomeBusyError: another run holds the data home.
    """
    import uuid

    run_id = str(uuid.uuid4())
    with hold_data_home(settings.home, run_id):
        if full:
            _forget_kept(settings.home, refit)
        dagster_home = _prepare_instance(settings.home)
        import dagster as dg

        from assets.run_lifecycle import begin_run, end_run
        from pipelines.graph import build_definitions

        defs = build_definitions(settings)
        with dg.DagsterInstance.from_config(str(dagster_home), CLI_DAGSTER_YAML) as instance:
            warnings = _WarningsKept()  # from the run's first step: putting the home in order warns of exposed keys
            logging.getLogger().addHandler(warnings)
            try:
                notes = begin_run(instance, settings.home, run_id)
                try:
                    outcome = _execute(defs, instance, settings, run_id, log_level, on_event)
                except Exception as e:
                    if not is_disk_full(e):
                        raise
                    from publish.generations import DiskSpaceError
                    # Seen: Dagster's run storage under the home could not write ("disk I/O error") and the run ended
                    # in a traceback; a full disk during the build is named by the publish step itself.
                    free = shutil.disk_usage(settings.home.root).free
                    raise DiskSpaceError(
                        f"the disk under {settings.home.root} is full or failing ({free / 2**20:,.1f} MB free now): run "
                        f"{run_id} could not record its progress ({e}); the previous publication stays. Free space on "
                        "that disk and run again: the next run marks this one failed and goes on") from e
                finally:
                    end_run(settings.home, run_id)
            finally:
                logging.getLogger().removeHandler(warnings)
    outcome.notes, outcome.logged = notes, list(warnings.kept)
    return outcome


def _forget_kept(home: DataHome, refit: bool) -> None:
    """Remove what ``<home>/kept`` holds but the fitted linking model (all of it with ``refit``)."""
    from dedup.incremental import KeptLinking

    if refit or not home.kept_linking_dir.is_dir():
        shutil.rmtree(home.kept_dir, ignore_errors=True)
        return
    for path in home.kept_dir.iterdir():
        if path.is_dir():
            if path != home.kept_linking_dir:
                shutil.rmtree(path)
        else:
            path.unlink()
    KeptLinking.forget(home.kept_linking_dir)


def _execute(defs, instance, settings: Settings, run_id: str, log_level: str, on_event=None) -> RunOutcome:
    import duckdb

    from assets.blocked_report import run_failures, run_staging_reports, write_blocked_report

    if on_event is not None:
        instance.add_event_listener(run_id, on_event)
    result = _execute_without_capture(defs.resolve_job_def("sync"), instance, run_id,
                                      {"loggers": {"console": {"config": {"log_level": log_level}}}})
    failures = run_failures(instance, run_id)
    reports = run_staging_reports(instance, run_id)
    if not result.success:
        # A blocked run publishes nothing, so the quality_report asset never runs; the supervisors
        # still get a report saying why, beside the last publication's scorecard.
        try:
            write_blocked_report(instance, run_id, settings.home)
        except (OSError, duckdb.Error) as e:
            # Reported beside the run's own failures rather than hiding them behind this one.
            failures["quality_report"] = f"the report of this blocked run could not be written: {e}"
    return RunOutcome(run_id, result.success, reports, failures, settings)


def _execute_without_capture(job, instance, run_id: str, run_config: dict):
    """``job.execute_in_process(...)`` without keeping every step's output in memory until the run ends.

    ``execute_in_process`` captures each output value in a dict so a test can ask for it afterwards; the
    CLI never does, and for a million people the raw and staged frames it would hold are ~5 GB of a
    run's peak (benchmarks/results/sync.md). The same call with output capture off is Dagster's own
    ``core_execute_in_process`` (a private function: dagster is pinned to one minor version, and every
    pipeline test goes through here).
    """
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.execution.execute_in_process import core_execute_in_process

    ephemeral = job.as_ephemeral_job(resource_defs={}, input_values={})
    return core_execute_in_process(run_config=run_config, job=InMemoryJob(job_def=ephemeral), instance=instance,
                                   output_capturing_enabled=False, raise_on_error=False, run_id=run_id)


def _report_run(outcome: RunOutcome, args: argparse.Namespace, **extra) -> int:
    """Print the run's summary (as JSON with ``--json``) and return the exit code."""
    from pipelines.summary import build_summary

    summary = build_summary(outcome)
    if args.json:
        print_json({**extra, **summary.as_dict()})
    else:
        print("\n".join(summary.lines()))
    return 0 if outcome.success else 1


def _cmd_demo(args: argparse.Namespace) -> int:
    from demo.generate import generate_demo

    home = DataHome.resolve(args.home)
    progress = Progress()
    generated = generate_demo(home, persons=args.persons, seed=args.seed)
    progress.line("生成 generate demo", f"{args.persons:,} 人，" + "，".join(
        f"{source} {count:,} 行" for source, count in generated.counts.items()) + f" → {home.demo_dir}",
        took=progress.elapsed())
    if not args.json:
        print(f"demo district: {args.persons} people, seed {args.seed}, files under {home.demo_dir}")
    # Every source was written anew: nothing kept about the last ones holds (a watermark table's new rows carry
    # older 更新时间 than the watermark kept), so this run reads, stages and links everything (``full``), fitting the
    # linking model to the new district (``refit``).
    outcome = run_pipeline(Settings(home, DEMO_SOURCES, DEMO_POLICY), log_level=_dagster_level(args),
                           on_event=progress.dagster_listener(), full=True, refit=True)
    demo = {"persons": args.persons, "seed": args.seed, "directory": str(home.demo_dir), "rows": dict(generated.counts)}
    return _report_run(outcome, args, demo=demo)


def _cmd_run(args: argparse.Namespace) -> int:
    base = Settings.from_env(args.home)
    settings = Settings(
        home=base.home,
        sources_file=Path(args.sources).resolve() if args.sources else base.sources_file,
        policy_file=Path(args.policy).resolve() if args.policy else base.policy_file,
        rules_file=Path(args.rules).resolve() if args.rules else base.rules_file,
        linking_file=Path(args.linking).resolve() if args.linking else base.linking_file,
        populations_file=Path(args.populations).resolve() if args.populations else base.populations_file,
        risks_file=Path(args.risks).resolve() if args.risks else base.risks_file,
        areas_file=Path(args.areas).resolve() if args.areas else base.areas_file,
        accept_drop=tuple(args.accept_drop),
        accepted_by=args.by or _login(),
    )
    outcome = run_pipeline(settings, log_level=_dagster_level(args), on_event=Progress().dagster_listener(),
                           full=args.full)
    return _report_run(outcome, args)


def _login() -> str:
    import getpass

    return getpass.getuser()


def _dagster_level(args: argparse.Namespace) -> str:
    # Without -v the summary says everything, in silobreaker's words; Dagster's own console log would
    # repeat failures as library tracebacks.
    return "INFO" if args.verbose else "CRITICAL"


def _cmd_dedup(args: argparse.Namespace) -> int:
    from dedup import dedup_file

    stats = dedup_file(args.input, args.output, explain=args.explain or bool(args.why), previous=args.previous,
                       on_phase=Progress().phase)
    print(json.dumps(stats, ensure_ascii=False, indent=2, default=str))
    if args.why:
        import pandas as pd

        from dedup.files import format_waterfall

        pairs = pd.read_parquet(stats["explain"])
        for record_id in args.why:
            print(format_waterfall(pairs, record_id))
    return 0


def _published(home: DataHome, table: str):
    from publish import WarehouseReader

    tables = WarehouseReader(home).read_tables(table)
    if table not in tables:
        raise ConfigError(f"no {table} table in the warehouse under {home}: run the pipeline first (silobreaker run)")
    return tables[table]


def _cmd_review_list(args: argparse.Namespace) -> int:
    from dedup.review import DecisionLog, effective_decisions, format_review_queue

    home = DataHome.resolve(args.home)
    queue = _published(home, "review_queue")
    decided = effective_decisions(DecisionLog.in_home(home).load())
    waiting = queue.merge(decided[["record_id_a", "record_id_b"]], how="left", indicator=True)
    waiting = waiting[waiting["_merge"] == "left_only"].drop(columns="_merge")
    if args.json:
        print_json({"waiting": len(waiting), "decided_since_last_run": len(queue) - len(waiting),
                    "shown": min(len(waiting), args.limit), "pairs": _records(waiting.head(args.limit))})
        return 0
    print(f"{len(waiting)} pair(s) await review ({len(queue) - len(waiting)} decided since the last run, "
          f"applied at the next one); decide with: silobreaker review decide RECORD_A RECORD_B same|different")
    if len(waiting):
        print(format_review_queue(waiting, limit=args.limit))
    return 0


def _cmd_review_decide(args: argparse.Namespace) -> int:
    import getpass

    from dedup.review import DecisionLog

    home = DataHome.resolve(args.home)
    known = set(_published(home, "record_person")["record_id"])
    for record_id in (args.record_a, args.record_b):
        if record_id not in known:
            raise ConfigError(f"record {record_id!r} is not in the published warehouse; "
                              "copy the ids from `silobreaker review list` (e.g. census:PC0000000164)")
    log_file = DecisionLog.in_home(home)
    row = log_file.record(args.record_a, args.record_b, args.decision, by=args.by or getpass.getuser(), note=args.note)
    if args.json:
        print_json({**_records(row)[0], "log": str(log_file.path), "applied": "at the next run (silobreaker run)"})
        return 0
    print(f"recorded: {row['record_id_a'][0]} ~ {row['record_id_b'][0]} {args.decision} by {row['decided_by'][0]} "
          f"in {log_file.path}; the next run (silobreaker run) applies it")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from publish import WarehouseReader
    from quality import render_quality_report

    home = DataHome.resolve(args.home)
    reader = WarehouseReader(home)
    if not reader.exists:
        raise ConfigError(f"no published warehouse at {reader.path}: run the pipeline first (silobreaker run)")
    run = reader.last_run()
    if run is None:
        raise ConfigError(f"{reader.path} records no run yet: run the pipeline first (silobreaker run)")
    path = render_quality_report(reader.report_inputs(run.run_id), home, lang=args.lang)
    if args.json:
        print_json({"run_id": run.run_id, "report": str(path), "latest": str(home.latest_report)})
        return 0
    print(f"report of run {run.run_id}: {path}")
    return 0


def _cmd_restore(args: argparse.Namespace) -> int:
    import uuid

    from publish import Generations

    home = DataHome.resolve(args.home)
    with hold_data_home(home, f"restore-{uuid.uuid4()}"):
        generations = Generations(home)
        recovered = generations.recover()
        if not args.json:
            for note in recovered:
                print(f"RECOVERED {note}")
        current = generations.current()
        if args.list:
            published = generations.published()
            if args.json:
                print_json({"recovered": recovered, "generations": [
                    {"generation": g.name, "run_id": g.run_id, "published_at": g.published_at,
                     "current": bool(current and g.name == current.name)} for g in published]})
                return 0
            print(f"{'generation':<12}{'run':<40}published at (UTC)")
            for g in published:
                mark = "  <- current" if current and g.name == current.name else ""
                print(f"{g.name:<12}{g.run_id:<40}{g.published_at[:19]}{mark}")
            return 0
        target = generations.restore(args.generation)
    if args.json:
        print_json({"recovered": recovered, "restored": {"generation": target.name, "run_id": target.run_id,
                                                         "published_at": target.published_at}})
        return 0
    print(f"restored generation {target.name} (run {target.run_id}, first published {target.published_at[:19]} UTC): "
          f"its warehouse and products are published again, and the audit log records it")
    return 0


def _records(frame) -> list[dict]:
    """A frame's rows as JSON-ready dicts: missing values as null, timestamps and numbers as JSON has them."""
    return json.loads(frame.to_json(orient="records", date_format="iso", force_ascii=False))


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, e.g. --persons 20000 (got {value})")
    return value


def _at_least(minimum: int):
    def parse(text: str) -> int:
        value = _positive_int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, e.g. --persons 2000 (got {value})")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(prog="silobreaker", description="Break the data silos: connect, stage, link, publish.")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log silobreaker's own progress at INFO level (anywhere on the command line)")
    parser.add_argument("--version", action="version", version=f"silobreaker {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="generate the demo district and run the whole pipeline on it")
    demo.add_argument("--persons", type=_at_least(100), default=20_000,
                      help="people in the district, at least 100 (default 20000)")
    demo.add_argument("--seed", type=int, default=20261123, help="random seed (default 20261123)")
    demo.add_argument("--home", help=f"data home (default ${HOME_ENV} or ./var)")
    add_json_flag(demo)
    demo.set_defaults(func=_cmd_demo)

    run = sub.add_parser("run", help="run the pipeline on the configured sources")
    run.add_argument("--home", help=f"data home (default ${HOME_ENV} or ./var)")
    run.add_argument("--full", action="store_true",
                     help="read, stage and link every source whole, ignoring what earlier runs kept (an unchanged "
                          "file's staging, a watermark table's rows, the linking state; the linking model is kept "
                          "while fresh, so the persons are those an incremental night gives)")
    run.add_argument("--sources", help="sources.yaml (default $SILOBREAKER_SOURCES or the demo's)")
    run.add_argument("--policy", help="policy.yaml (default $SILOBREAKER_POLICY or the demo's)")
    run.add_argument("--rules", help="rules.yaml, the quality rules (default $SILOBREAKER_RULES or the demo's)")
    run.add_argument("--linking", help="linking.yaml, how records are linked (default $SILOBREAKER_LINKING or the demo's)")
    run.add_argument("--populations", help="populations.yaml, the key populations (default $SILOBREAKER_POPULATIONS "
                                           "or the demo's)")
    run.add_argument("--risks", help="risks.yaml, the risk early-warning rules (default $SILOBREAKER_RISKS or the demo's)")
    run.add_argument("--areas", help="the area register CSV (街道,社区,网格,楼栋,别名) that places addresses in grids "
                                     "(default $SILOBREAKER_AREAS or the demo's under the data home)")
    run.add_argument("--accept-drop", action="append", default=[], metavar="SOURCE",
                     help="confirm that SOURCE really shrank against the last publication (or 'persons': fewer "
                          "persons resolved), so its drop guard passes for this run; kept with the run's "
                          "validation results (repeatable)")
    run.add_argument("--by", help="who confirms --accept-drop (default: the login name)")
    add_json_flag(run)
    run.set_defaults(func=_cmd_run)

    dedup = sub.add_parser("dedup", help="resolve identities: INPUT (parquet/CSV) -> OUTPUT parquet of record_id, person_id")
    dedup.add_argument("input")
    dedup.add_argument("output")
    dedup.add_argument("--explain", action="store_true",
                       help="also write OUTPUT's .explain.parquet: each scored pair's waterfall (w_<field>, match_weight, match_probability)")
    dedup.add_argument("--why", action="append", metavar="RECORD_ID", default=[],
                       help="print the waterfall of every scored pair of this record (repeatable; implies --explain)")
    dedup.add_argument("--previous", metavar="MAPPING",
                       help="parquet of record_id, person_id from an earlier run: its persons keep their ids")
    dedup.set_defaults(func=_cmd_dedup)

    review = sub.add_parser("review", help="clerical review of uncertain pairs")
    review_sub = review.add_subparsers(dest="review_command", required=True)
    listing = review_sub.add_parser("list", help="print the pairs awaiting review, highest score first")
    listing.add_argument("--limit", type=_positive_int, default=50, help="pairs to print (default 50)")
    listing.add_argument("--home", help=f"data home (default ${HOME_ENV} or ./var)")
    add_json_flag(listing)
    listing.set_defaults(func=_cmd_review_list)
    decide = review_sub.add_parser("decide", help="record whether two records are the same person")
    decide.add_argument("record_a")
    decide.add_argument("record_b")
    decide.add_argument("decision", choices=["same", "different"])
    decide.add_argument("--by", help="who decided (default: the login name)")
    decide.add_argument("--note", help="why, for the next reviewer")
    decide.add_argument("--home", help=f"data home (default ${HOME_ENV} or ./var)")
    add_json_flag(decide)
    decide.set_defaults(func=_cmd_review_decide)

    report = sub.add_parser("report", help="re-render the quality report of the latest published run")
    report.add_argument("--home", help=f"data home (default ${HOME_ENV} or ./var)")
    report.add_argument("--lang", choices=("zh", "en"), default="zh",
                        help="language of the report: zh (default, for supervisors) or en (for the platform team)")
    add_json_flag(report)
    report.set_defaults(func=_cmd_report)

    restore = sub.add_parser("restore", help="publish an earlier generation again (default: the one before the current)")
    restore.add_argument("generation", nargs="?", help="generation name, e.g. g000012 (see --list)")
    restore.add_argument("--list", action="store_true", help="list the generations kept and exit")
    restore.add_argument("--home", help=f"data home (default ${HOME_ENV} or ./var)")
    add_json_flag(restore)
    restore.set_defaults(func=_cmd_restore)
    add_privacy_commands(sub)
    add_corrections_commands(sub)
    add_grid_commands(sub)
    return parser


#: silobreaker's own loggers: -v shows these at INFO, libraries (Great Expectations, Dagster) stay quiet.
_OWN_LOGGERS = ("core", "connectors", "staging", "dedup", "quality", "publish", "assets", "pipelines", "demo")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("silobreaker")
    except PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``silobreaker`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # -v works after the subcommand too (silobreaker run -v), where users type it.
    verbose = any(a in ("-v", "--verbose") for a in argv)
    args = build_parser().parse_args([a for a in argv if a not in ("-v", "--verbose")])
    args.verbose = verbose
    private_files()
    use_system_allocator()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in _OWN_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)
    try:
        return args.func(args)
    except DataHomeBusyError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BUSY
    except SilobreakerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `silobreaker review list | head`: the reader has gone; stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
