"""A Dagster run against a CLI run of the same sync: wall time and peak memory, side by side.

The issue it answers: a data team launching the ``sync`` from Dagster (``dagster asset materialize``,
the UI, the schedule) should not pay much more than ``silobreaker run``. Both run the same
definitions (``pipelines.definitions``, in-process executor) on a copy of the same generated demo
district, one after the other, each in its own process, measured with GNU time:

- ``silobreaker run``: the CLI, which holds the data home's lock and starts Dagster in-process;
- ``dagster asset materialize --select '*' -m pipelines.definitions``: what "Materialize all" runs,
  with ``DAGSTER_HOME`` and ``SILOBREAKER_HOME`` set as ``make dev`` sets them.

    .venv/bin/python benchmarks/dagster_vs_cli.py --persons 3000 --repeat 3
    .venv/bin/python benchmarks/dagster_vs_cli.py --persons 20000 --out benchmarks/results/dagster_vs_cli.md
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak resident MB of ``command`` (GNU time), failing loudly if it fails."""
    done = subprocess.run(["/usr/bin/time", "-v", *command], cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
    hours, minutes, seconds = (float(g) if g else 0.0 for g in wall.groups())
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    return hours * 3600 + minutes * 60 + seconds, peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from demo.generate import generate_demo

    with tempfile.TemporaryDirectory(prefix="silobreaker-bench-") as tmp:
        template = Path(tmp) / "template"
        generate_demo(template, persons=args.persons, seed=args.seed)
        results: dict[str, list[tuple[float, float]]] = {"cli": [], "dagster": []}
        for attempt in range(args.repeat):
            for way in ("cli", "dagster"):  # alternated, so a slow minute of the machine hits both
                home = Path(tmp) / f"{way}{attempt}"
                shutil.copytree(template, home)
                env = {**os.environ, "SILOBREAKER_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
                (home / "dagster").mkdir(exist_ok=True)
                shutil.copyfile(REPO / "dagster.yaml", home / "dagster" / "dagster.yaml")
                command = ([str(BIN / "silobreaker"), "run", "--home", str(home)] if way == "cli" else
                           [str(BIN / "dagster"), "asset", "materialize", "--select", "*", "-m", "pipelines.definitions"])
                results[way].append(_timed(command, env))
                print(f"{way:8} run {attempt + 1}: {results[way][-1][0]:6.1f} s, {results[way][-1][1]:7.0f} MB", flush=True)

    cli_wall = statistics.median(w for w, _ in results["cli"])
    dagster_wall = statistics.median(w for w, _ in results["dagster"])
    cli_peak = max(p for _, p in results["cli"])
    dagster_peak = max(p for _, p in results["dagster"])
    lines = [
        f"## Dagster vs CLI, {args.persons:,} people (demo seed {args.seed}), median of {args.repeat}",
        "",
        f"`{' '.join(sys.argv)}` on {datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GB, Python {platform.python_version()}",
        "",
        "| way | wall (median) | peak memory | vs CLI |",
        "|---|---|---|---|",
        f"| `silobreaker run` | {cli_wall:.1f} s | {cli_peak:.0f} MB | 1.00× |",
        f"| `dagster asset materialize --select '*'` | {dagster_wall:.1f} s | {dagster_peak:.0f} MB | "
        f"{dagster_wall / cli_wall:.2f}× |",
        "",
    ]
    print("\n".join(lines))
    if args.out:
        with open(args.out, "a", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
