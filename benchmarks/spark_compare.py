"""Staging and linking on both engines — one machine (pandas staging, DuckDB linking) and Spark ``local[2]``
— on the same demo district.

Run in the product venv with the Spark extra (the test venv has it; a Java 17 runtime is needed):

    .venv/bin/python benchmarks/spark_compare.py --persons 100000 1000000

For each size the demo district is generated once. Each engine then stages its person sources in a
fresh subprocess (on one machine; or chunk by chunk as Spark tasks, :mod:`staging.spark`), reporting
the wall seconds of staging (reading the files excluded, the Spark session's start included), the peak
memory of the process tree, and whether the staged records are the same (a hash of every row).
Then each engine links the (one-machine) staged records in its own fresh subprocess (engines
alternating), with the demo's ``linking.yaml`` and only ``engine`` changed. Reported per linking run:

- **wall** seconds of the whole linking step (:func:`dedup.link_records`: prepare, block, train,
  score, cluster), measured inside the child (the Spark session's start included);
- **peak memory of the process tree**: the largest sum of resident memory over the child and every
  process it started (the Spark JVM, its Python workers), sampled every 0.2 s from ``/proc`` — the same
  measure for both engines;
- **accuracy** against the generator's ground truth (pairwise precision / recall / F1), and whether the
  two engines found the same persons (pairwise F1 of one engine's persons against the other's);
- for Spark, from its event log: tasks run and **shuffle bytes written** and read (what a cluster
  moves over the network), and the largest peak execution memory of a task; and the size of the
  broadcast every executor receives (the records' arrays, pickled) — the figures the projection in
  docs/deploy.md scales.

Results are appended to ``benchmarks/results/spark_compare.md`` with the command, data size, machine,
versions and date.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import pickle
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from demo_accuracy import append_result, machine, pairwise_scores, stage_demo  # noqa: E402
from splink_compare import demo_records  # noqa: E402

from dedup import link_records  # noqa: E402
from dedup.compare import RecordArrays  # noqa: E402
from dedup.prepare import prepare_records  # noqa: E402
from dedup.settings import SparkSpec, load_link_settings  # noqa: E402
from staging.spark import SparkChunks  # noqa: E402

log = logging.getLogger("benchmarks.spark_compare")

RESULTS = ROOT / "benchmarks" / "results" / "spark_compare.md"
RESULTS_HEADER = ("# Linking on DuckDB and on Spark\n\nAppended by `benchmarks/spark_compare.py`, newest last; "
                  "see its docstring for what is run and how it is measured. Entries from 2026-12-04 on also "
                  "stage on both engines.\n")
LINKING = ROOT / "demo" / "linking.yaml"
ENGINES = ("duckdb", "spark")


def run(sizes: list[int], repeats: int, spark: SparkSpec) -> str:
    lines = [
        "| persons | records | engine | run | wall s | peak memory GB (tree) | precision | recall | F1 | persons found | "
        "same persons as DuckDB (pairwise F1) | Spark tasks | shuffle written GB | shuffle read GB | "
        "largest task peak execution memory MB | broadcast to each executor GB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    staging = [
        "| persons | staged records | quarantined | engine | staging wall s | peak memory GB (tree) | same staged records |",
        "|---|---|---|---|---|---|---|",
    ]
    ratios = []
    with tempfile.TemporaryDirectory(prefix="silobreaker-spark-bench-") as scratch:
        for persons in sizes:
            home = Path(scratch) / f"home_{persons}"
            data = _staged(persons, home, Path(scratch))
            staged = {engine: _child("_stage", engine, home, Path(scratch) / f"stage_{engine}_{persons}", spark)
                      for engine in ENGINES}
            for engine, r in staged.items():
                label = "one machine" if engine == "duckdb" else engine
                staging.append(f"| {persons:,} | {r['staged']:,} | {r['quarantined']:,} | {label} | {r['seconds']:.1f} | "
                               f"{r['peak_tree_gb']:.2f} | {r['digest'] == staged['duckdb']['digest']} |")
            ratios.append(
                f"- {persons:,} persons, staging: wall Spark / one machine = "
                f"**{staged['spark']['seconds'] / staged['duckdb']['seconds']:.2f}** "
                f"({staged['spark']['seconds']:.1f} s vs {staged['duckdb']['seconds']:.1f} s); peak memory "
                f"**{staged['spark']['peak_tree_gb'] / staged['duckdb']['peak_tree_gb']:.2f}** "
                f"({staged['spark']['peak_tree_gb']:.2f} GB vs {staged['duckdb']['peak_tree_gb']:.2f} GB)")
            got: dict[str, list[dict[str, Any]]] = {engine: [] for engine in ENGINES}
            mappings: dict[str, Path] = {}
            for attempt in range(repeats):
                for engine in ENGINES if attempt % 2 == 0 else ENGINES[::-1]:
                    out = Path(scratch) / f"{engine}_{persons}_{attempt}"
                    result = _child("_link", engine, data, out, spark)
                    got[engine].append(result)
                    mappings.setdefault(engine, out.with_suffix(".parquet"))
                    log.info("%s persons, %s run %d: %s", persons, engine, attempt + 1, result)
            agreement = pairwise_scores(
                pd.read_parquet(mappings["spark"]),
                pd.read_parquet(mappings["duckdb"]).rename(columns={"person_id": "true_person_id"}))["f1"]
            for engine in ENGINES:
                for attempt, r in enumerate(got[engine]):
                    shuffle = r.get("spark", {})
                    lines.append(
                        f"| {persons:,} | {r['records']:,} | {engine} | {attempt + 1} | {r['seconds']:.1f} | "
                        f"{r['peak_tree_gb']:.2f} | {r['precision']:.5f} | {r['recall']:.5f} | {r['f1']:.5f} | "
                        f"{r['persons']:,} | {agreement if engine == 'spark' else 1.0:.6f} | "
                        f"{shuffle.get('tasks', '')} | {_gb(shuffle.get('shuffle_written'))} | "
                        f"{_gb(shuffle.get('shuffle_read'))} | "
                        f"{_mb(shuffle.get('largest_task_peak_memory'))} | {_gb(shuffle.get('broadcast'))} |"
                    )
            best = {engine: min(r["seconds"] for r in runs) for engine, runs in got.items()}
            peak = {engine: max(r["peak_tree_gb"] for r in runs) for engine, runs in got.items()}
            ratios.append(
                f"- {persons:,} persons: wall Spark / DuckDB = **{best['spark'] / best['duckdb']:.2f}** "
                f"({best['spark']:.1f} s vs {best['duckdb']:.1f} s, best of {repeats}); peak memory Spark / DuckDB = "
                f"**{peak['spark'] / peak['duckdb']:.2f}** ({peak['spark']:.2f} GB vs {peak['duckdb']:.2f} GB); "
                f"persons found by Spark against DuckDB's: pairwise F1 {agreement:.6f}"
            )
    return "\n".join(staging) + "\n\n" + "\n".join(lines) + "\n\n" + "\n".join(ratios) + "\n"


def _staged(persons: int, home: Path, directory: Path) -> Path:
    """The demo district of ``persons`` generated into ``home`` and staged, with each record's true person,
    as a parquet file."""
    staged, truth, _ = demo_records(persons, home)
    staged = staged.merge(truth[["record_id", "true_person_id"]], on="record_id", how="left")
    path = directory / f"staged_{persons}.parquet"
    staged.to_parquet(path)
    log.info("staged %d records of %d persons (%.1f per person)", len(staged), persons, len(staged) / persons)
    return path


def _child(step: str, engine: str, data: Path, out: Path, spark: SparkSpec) -> dict[str, Any]:
    """Run one engine's ``step`` (``_stage`` or ``_link``) in a fresh process, sampling the memory of its
    process tree; its result."""
    child = subprocess.Popen([sys.executable, __file__, step, engine, str(data), str(out), spark.model_dump_json()])
    peak = _TreePeak(child.pid)
    peak.start()
    if child.wait() != 0:
        raise RuntimeError(f"{engine} run failed with status {child.returncode}")
    peak.stop()
    result = json.loads(out.with_suffix(".json").read_text())
    result["peak_tree_gb"] = peak.gb
    return result


class _TreePeak(threading.Thread):
    """The largest sum of resident memory of a process and its descendants, sampled from /proc."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self._done = pid, 0, threading.Event()

    @property
    def gb(self) -> float:
        return self.peak / 2**30

    def run(self) -> None:
        while not self._done.wait(0.2):
            self.peak = max(self.peak, _tree_rss(self.pid))

    def stop(self) -> None:
        self._done.set()
        self.join()


def _tree_rss(root: int) -> int:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, grown = {root}, True
    while grown:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        grown, tree = bool(more), tree | more
    total = 0
    for pid in tree:
        try:
            total += int((Path("/proc") / str(pid) / "statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    return total


def stage_child(engine: str, home: Path, out: Path, spark_json: str) -> None:
    """One timed staging of the demo's person sources in this fresh process: figures to ``out``.json."""
    runner = SparkChunks(SparkSpec.model_validate_json(spark_json)) if engine == "spark" else None
    staged, quarantined, seconds = stage_demo(home, runner)
    # Every column but the time each file was read, which differs from one read to the next.
    digest = int(pd.util.hash_pandas_object(staged.drop(columns="extracted_at"), index=True).sum())
    out.with_suffix(".json").write_text(json.dumps({"engine": engine, "seconds": seconds["stage"], "staged": len(staged),
                                                    "quarantined": sum(quarantined.values()), "digest": digest}))


def link_child(engine: str, data: Path, out: Path, spark_json: str) -> None:
    """One timed linking step in this fresh process: the mapping to ``out``.parquet, figures to ``out``.json."""
    staged = pd.read_parquet(data)
    with tempfile.TemporaryDirectory(prefix="silobreaker-spark-events-") as events:
        _link_measured(engine, staged, out, SparkSpec.model_validate_json(spark_json), Path(events))


def _link_measured(engine: str, staged: pd.DataFrame, out: Path, spec: SparkSpec, events: Path) -> None:
    truth = staged[["record_id", "true_person_id"]]
    records = staged.drop(columns=["true_person_id"])
    spec = spec.model_copy(update={"conf": {**spec.conf, "spark.eventLog.enabled": "true", "spark.eventLog.compress": "false",
                                            "spark.eventLog.dir": str(events)}})
    settings = load_link_settings(LINKING).model_copy(update={"engine": engine, "spark": spec})
    started = time.perf_counter()
    result = link_records(records, settings)
    seconds = time.perf_counter() - started
    if engine == "spark":
        from pyspark.sql import SparkSession

        SparkSession.builder.getOrCreate().stop()  # flushes the event log
    scores = pairwise_scores(result.mapping, truth)
    result.mapping[["record_id", "person_id"]].to_parquet(out.with_suffix(".parquet"))
    figures = {"engine": engine, "records": len(records), "seconds": seconds,
               "persons": int(result.mapping["person_id"].nunique()),
               "precision": scores["precision"], "recall": scores["recall"], "f1": scores["f1"],
               "phase_seconds": result.stats["seconds"], "candidate_pairs": result.stats["candidate_pairs"]}
    if engine == "spark":
        figures["spark"] = _event_totals(events)
        # What every executor receives as a broadcast (the records' arrays; the model and settings are small).
        figures["spark"]["broadcast"] = len(pickle.dumps(RecordArrays.from_prepared(prepare_records(records))))
    out.with_suffix(".json").write_text(json.dumps(figures))


def _event_totals(folder: Path) -> dict[str, int]:
    """Tasks, shuffle bytes written and read, and the largest peak execution memory of a task, from the
    Spark event log in ``folder``."""
    totals = {"tasks": 0, "shuffle_written": 0, "shuffle_read": 0, "largest_task_peak_memory": 0}
    # One file, or a folder of rolled event files beside an empty status marker.
    for log_file in (path for path in folder.rglob("*") if path.is_file() and path.name.startswith(("events_", "local-"))):
        for line in log_file.read_text().splitlines():
            event = json.loads(line)
            if event.get("Event") != "SparkListenerTaskEnd" or "Task Metrics" not in event:
                continue
            metrics = event["Task Metrics"]
            read = metrics.get("Shuffle Read Metrics", {})
            totals["tasks"] += 1
            totals["shuffle_written"] += metrics.get("Shuffle Write Metrics", {}).get("Shuffle Bytes Written", 0)
            totals["shuffle_read"] += read.get("Remote Bytes Read", 0) + read.get("Local Bytes Read", 0)
            totals["largest_task_peak_memory"] = max(totals["largest_task_peak_memory"], metrics.get("Peak Execution Memory", 0))
    return totals


def _gb(value: int | None) -> str:
    return "" if value is None else f"{value / 2**30:.3f}"


def _mb(value: int | None) -> str:
    return "" if value is None else f"{value / 2**20:.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--stage-rows", type=int, default=SparkSpec().stage_rows, help="rows a Spark task stages")
    if argv is None and len(sys.argv) > 1 and sys.argv[1] in ("_stage", "_link"):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
        step = stage_child if sys.argv[1] == "_stage" else link_child
        step(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), sys.argv[5])
        return 0
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    spark = SparkSpec(master=args.master, driver_memory=args.driver_memory, partitions=args.partitions,
                      stage_rows=args.stage_rows)
    command = "python benchmarks/spark_compare.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    started = time.perf_counter()
    table = run(args.persons, args.repeats, spark)
    versions = ", ".join(f"{p} {version(p)}" for p in ("pyspark", "duckdb", "pandas", "rapidfuzz", "numpy"))
    entry = (f"\n## {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}\n\n- command: `{command}`\n- machine: {machine()}\n"
             f"- Spark: master {spark.master}, driver memory {spark.driver_memory}, {spark.partitions} shuffle partitions, "
             f"{spark.stage_rows:,} rows a staging task; "
             f"Java {_java()}\n- versions: {versions}\n- total {time.perf_counter() - started:.0f} s\n\n{table}")
    append_result(RESULTS, entry, RESULTS_HEADER)
    log.info("appended to %s:%s", RESULTS, entry)
    return 0


def _java() -> str:
    done = subprocess.run(["java", "-version"], capture_output=True, text=True)
    return (done.stderr.splitlines() or ["?"])[0]


if __name__ == "__main__":
    sys.exit(main())
