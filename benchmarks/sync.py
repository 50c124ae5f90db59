"""A district's nightly sync at scale: a full run, then a day with 1% of records changed, incrementally and in full.

What a data team pays each night. One generated demo district of ``--persons`` people is run through
``silobreaker run`` (the CLI of the README, sources.yaml, publication and all), each run in its own
process measured with GNU time (wall, peak resident memory):

1. **full**: the first sync of the district, nothing kept;
2. a day's changes, made the way departments send them: in each person source 1% of the rows
   changed (a new phone; in the census, whose rows carry none, a new address), 0.1% gone and 0.2%
   new rows (repeat visits, late registrations), each file written again whole and the civil
   affairs table changed in place (its 更新时间 ``gxsj`` stamped on the new and changed rows, the
   watermark the demo reads it by); the consent registry and the grid form unchanged;
3. **incremental**: the next sync, with what the first one kept (``<home>/kept``: stagings of unchanged
   sources, and the linking state — changed records are linked on the first night's model and pairs);
4. **full again**: the same day's sync on a copy of the home taken before step 3, with ``--full``
   (every source read, staged and linked; since 2026-12-06 with the first night's model, still fresh, as the
   incremental night; before, the model was fitted again).

Each run's stage times come from its progress lines (``[ t ] 抽取 extract census: … (d s)``); ``audit MB
written`` is what the run added under ``<home>/audit`` (the log and who was in each product), which is
never pruned. The text also gives what the incremental night spent reading each source, and the share of a
full night that reading the files sent again whole took: a floor under any incremental night whose
departments send whole files, however few of their rows changed.

    .venv/bin/python benchmarks/sync.py --persons 100000
    .venv/bin/python benchmarks/sync.py --persons 1000000 --out benchmarks/results/sync.md
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHANGED, GONE, NEW = 0.01, 0.001, 0.002
_STEP = re.compile(r"\] (\S+) (\w+)(?: ([\w_]+))?: .*\(([\d.]+) s\)$")


def timed_run(home: Path, *extra: str, code: Path | None = None) -> dict:
    """Run ``silobreaker run`` on ``home``: wall seconds, peak MB and seconds per stage kind. With ``code``
    (a checkout of another commit, ``benchmarks/nights_ab.py``) that checkout's code runs, on this venv."""
    env = {**os.environ, "SILOBREAKER_HOME": str(home)}
    audit_before = _size(home / "audit")
    if code is None:
        command = ["/usr/bin/time", "-v", str(BIN / "silobreaker"), "run", "--home", str(home), *extra]
    else:
        env["PYTHONPATH"] = str(code)
        command = ["/usr/bin/time", "-v", sys.executable, "-m", "pipelines.cli", "run", "--home", str(home), *extra]
    done = subprocess.run(command, cwd=code or REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"silobreaker run failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
    hours, minutes, seconds = (float(g) if g else 0.0 for g in wall.groups())
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1)) / 1024
    cpu = sum(float(re.search(rf"{kind} time \(seconds\): ([\d.]+)", done.stderr).group(1)) for kind in ("User", "System"))
    stages: dict[str, float] = defaultdict(float)
    extracts: dict[str, float] = {}  # seconds per source read
    for line in done.stderr.splitlines():
        found = _STEP.search(line)
        if found and found.group(2) in ("extract", "stage", "link", "publish", "report"):
            stages[found.group(2)] += float(found.group(4))
            if found.group(2) == "extract" and found.group(3):
                extracts[found.group(3)] = float(found.group(4))
    unchanged = sum("未变" in line for line in done.stderr.splitlines())
    reused = sum("沿用上次清洗结果" in line for line in done.stderr.splitlines())
    return {"wall": hours * 3600 + minutes * 60 + seconds, "cpu": cpu, "peak_mb": peak, "stages": dict(stages),
            "extracts": extracts,
            "unchanged_files": unchanged, "reused_stagings": reused,
            "audit_mb": (_size(home / "audit") - audit_before) / 1e6}


def _size(folder: Path) -> int:
    """Bytes of the files under ``folder`` (0 if there is none): what a night adds to the audit trail."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) if folder.exists() else 0


def change_a_day(demo: Path, seed: int) -> dict[str, int]:
    """Change 1% of each person source's rows, remove 0.1%, add 0.2%; rows changed per source."""
    rng = np.random.default_rng(seed)
    counts = {}
    health = demo / "health_visits.csv"
    frame = pd.read_csv(health, dtype=str, keep_default_na=False, encoding="gb18030")
    _change(frame, "visit_id", "mobile", rng).to_csv(health, index=False, encoding="gb18030")
    counts["health"] = len(frame)
    census = demo / "census_extract.csv"
    frame = pd.read_csv(census, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    _change(frame, "普查编号", "住址", rng).to_csv(census, index=False, encoding="utf-8-sig")
    counts["census"] = len(frame)
    justice = demo / "justice_cases.xlsx"
    frame = pd.read_excel(justice, sheet_name="在册人员", dtype=str, keep_default_na=False)
    _write_sheet(_change(frame, "编号", "联系电话", rng), justice, "在册人员")
    counts["justice"] = len(frame)
    with sqlite3.connect(demo / "civil_affairs.sqlite") as con:
        table = pd.read_sql("SELECT * FROM mz_resident", con)
        changed = _stamped(table, _change(table.copy(), "jmbh", "lxdh", rng), "jmbh", "gxsj")
        con.execute("DELETE FROM mz_resident")
        changed.to_sql("mz_resident", con, if_exists="append", index=False)
    counts["civil_affairs"] = len(table)
    return counts


def _change(frame: pd.DataFrame, key: str, field: str, rng: np.random.Generator) -> pd.DataFrame:
    n = len(frame)
    changed = rng.choice(n, size=max(1, int(n * CHANGED)), replace=False)
    frame.loc[changed, field] = frame[field].to_numpy()[rng.permutation(changed)]  # another row's value
    frame = frame.drop(index=rng.choice(n, size=max(1, int(n * GONE)), replace=False))
    new = frame.sample(n=max(1, int(n * NEW)), random_state=int(rng.integers(1 << 31)))
    # A new row's key: another row's with N, and N again where a day before made that one already.
    taken, keys = set(frame[key]), []
    for old in new[key]:
        fresh = old + "N"
        while fresh in taken:
            fresh += "N"
        taken.add(fresh)
        keys.append(fresh)
    return pd.concat([frame, new.assign(**{key: keys})], ignore_index=True)


def _stamped(before: pd.DataFrame, after: pd.DataFrame, key: str, stamp: str) -> pd.DataFrame:
    """``after`` with ``stamp`` (更新时间) set to now on its new and changed rows, as the department's system sets it
    on every insert and update: the demo reads that table by this watermark."""
    old = before.set_index(key).reindex(after[key])
    new = after.set_index(key)[old.columns]
    same = (old.fillna("\0").to_numpy() == new.fillna("\0").to_numpy()).all(axis=1)
    return after.assign(**{stamp: after[stamp].where(same, f"{datetime.now():%Y-%m-%d %H:%M:%S}")})


def _write_sheet(frame: pd.DataFrame, path: Path, sheet: str) -> None:
    workbook = openpyxl.Workbook(write_only=True)
    worksheet = workbook.create_sheet(sheet)
    worksheet.append(list(frame.columns))
    for row in frame.itertuples(index=False):
        worksheet.append([v if v != "" else None for v in row])
    workbook.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from demo.generate import generate_demo

    with tempfile.TemporaryDirectory(prefix="silobreaker-sync-", dir=os.environ.get("BENCH_TMP")) as tmp:
        home = Path(tmp) / "home"
        generate_demo(home, persons=args.persons, seed=args.seed)
        runs = {"full": timed_run(home)}
        print("full", runs["full"], flush=True)
        rows = change_a_day(home / "demo", args.seed)
        before = Path(tmp) / "before"
        shutil.copytree(home, before, symlinks=True, ignore=shutil.ignore_patterns("dagster"))
        runs["incremental"] = timed_run(home)
        print("incremental", runs["incremental"], flush=True)
        reach = day_reach(home)
        shutil.rmtree(home)
        runs["full_again"] = timed_run(before, "--full")
        print("full again", runs["full_again"], flush=True)

    table = _table(runs)
    # The day's files sent again whole, read whole again: what an incremental night pays however little changed.
    resent = [name for name in FILE_SOURCES if name in runs["incremental"]["extracts"]]
    read_again = sum(runs["incremental"]["extracts"][name] for name in resent)
    ratio = runs["incremental"]["wall"] / runs["full_again"]["wall"]
    text = (
        f"## {args.persons:,} people ({sum(rows.values()):,} person-source rows), "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n"
        f"Command: `.venv/bin/python benchmarks/sync.py --persons {args.persons}`  \n"
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 1024**3:.0f} GB, Python {platform.python_version()}  \n"
        f"Day's change: {CHANGED:.0%} of each person source's rows changed, {GONE:.1%} gone, {NEW:.1%} new\n\n"
        f"{table}\n\nincremental / full on the same day: **{ratio:.2f}** of the wall time\n\n"
        f"Read on the incremental night, per source (s): {_per_source(runs['incremental']['extracts'])}; the files sent "
        f"again whole ({', '.join(resent)}) took {read_again:.1f} s, **{read_again / runs['full_again']['wall']:.1%}** of "
        f"the full night, before any of their rows is staged, linked or published\n\n"
        f"What the day's changes reached (the incremental night's unified_population against the first night's): "
        f"{reach['persons']:,} of {reach['of_persons']:,} persons' rows changed; a changed person in "
        + ", ".join(f"{reach[a]} of {reach['of_' + a]} {plural}" for a, plural in _AREAS.items())
        + " (every grid worker's product with a changed person is issued anew)\n"
    )
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a", encoding="utf-8") as out:
            out.write(text + "\n")


_AREAS = {"street": "streets", "community": "communities", "grid": "grids"}
#: The person sources :func:`change_a_day` writes again as whole files (civil affairs is a table read by its watermark).
FILE_SOURCES = ("census", "health", "justice")


def _per_source(extracts: dict[str, float]) -> str:
    return ", ".join(f"{name} {seconds:.1f}" for name, seconds in extracts.items())


def day_reach(home: Path) -> dict[str, int]:
    """How far a day's changes reach in what is published: the persons whose ``unified_population`` row differs
    between ``home``'s last two generations, and the areas (each the scope of grid workers' products) holding one."""
    import duckdb

    from core.home import DataHome
    from publish.generations import Generations

    data_home = DataHome.at(home)
    before, after = (data_home.generation_warehouse_file(g.name) for g in Generations(home).published()[-2:])
    with duckdb.connect() as con:
        con.execute("SET enable_progress_bar = false")
        con.execute(f"ATTACH '{before}' AS a (READ_ONLY)")
        con.execute(f"ATTACH '{after}' AS b (READ_ONLY)")
        con.execute("""CREATE TEMP TABLE changed AS
            SELECT person_id FROM (FROM b.unified_population EXCEPT FROM a.unified_population)
            UNION SELECT person_id FROM (FROM a.unified_population EXCEPT FROM b.unified_population)""")
        reach = {"persons": con.execute("SELECT count(*) FROM changed").fetchone()[0],
                 "of_persons": con.execute("SELECT count(*) FROM b.unified_population").fetchone()[0]}
        for area in _AREAS:
            reach[area], reach[f"of_{area}"] = con.execute(
                f"SELECT count(DISTINCT {area}) FILTER (WHERE person_id IN (SELECT person_id FROM changed)), "
                f"count(DISTINCT {area}) FROM b.unified_population").fetchone()
    return reach


def _table(runs: dict[str, dict]) -> str:
    kinds = ("extract", "stage", "link", "publish", "report")
    lines = ["| run | wall s | peak MB | " + " | ".join(f"{k} s" for k in kinds)
             + " | files not parsed | stagings reused | audit MB written |",
             "|---|---:|---:|" + "---:|" * len(kinds) + "---:|---:|---:|"]
    for name, run in runs.items():
        stages = " | ".join(f"{run['stages'].get(k, 0.0):.1f}" for k in kinds)
        lines.append(f"| {name} | {run['wall']:.1f} | {run['peak_mb']:,.0f} | {stages} | {run['unchanged_files']} | "
                     f"{run['reused_stagings']} | {run['audit_mb']:,.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
