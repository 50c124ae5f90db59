"""Linking alone on an incremental night at 1M records: the same day under two commits, alternating (A B B A …).

A nightly sync's link stage (``benchmarks/sync.py``) includes reading the staged sources and writing the linking's
outputs; this measures ``dedup.link_records`` alone, on the state the first night kept, so a change to linking is
seen apart from the rest of the night. Setup (once, kept under ``--dir``): the staged demo records of
``splink_compare._prepare_speed_data`` (``--records`` of them) linked whole, their kept state and mapping saved;
then a day's changes as departments send them (1% of the records given a new phone, 0.1% gone, 0.2% new: copies of
existing records under new ids). Each measured night runs in a fresh process with one commit's code (a ``git
worktree``, on this venv): ``link_records`` with the kept state, timed whole and per phase, and the persons it gives
(a digest of the record → person mapping, which must be the same on both sides).

    .venv/bin/python benchmarks/incremental_link.py --dir /work/bench/inc --before 0736031 --after HEAD --runs 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
_FIRST_NIGHT = dt.datetime(2026, 12, 1, 2, tzinfo=dt.UTC)
_KEY = b"k" * 32  # the district's person-id key, fixed so both sides issue the same new ids


def setup(folder: Path, records: int) -> None:
    """The first night's kept state and mapping, and the next day's records, under ``folder``."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from splink_compare import _prepare_speed_data

    from dedup import LinkSettings, link_records

    folder.mkdir(parents=True, exist_ok=True)
    staged = pd.read_parquet(_prepare_speed_data(records, folder)).drop(columns=["true_person_id"])
    first = link_records(staged, LinkSettings(), now=_FIRST_NIGHT, id_key=_KEY)
    first.kept.save(folder / "kept")
    first.mapping[["record_id", "person_id"]].to_parquet(folder / "mapping.parquet")
    rng = np.random.default_rng(8)
    n = len(staged)
    day = staged.copy()
    changed = rng.choice(n, n // 100, replace=False)
    day.loc[changed, "phone"] = [f"139{x:08d}" for x in rng.integers(0, 10**8, len(changed))]
    new = day.iloc[rng.choice(n, n // 500, replace=False)].copy()
    new["record_id"] = new["record_id"] + ":new"
    day = pd.concat([day.drop(index=rng.choice(n, n // 1000, replace=False)), new], ignore_index=True)
    day.to_parquet(folder / "day.parquet")


def night(folder: Path) -> dict:
    """One incremental night on the kept state (run in a fresh process, with the code on ``sys.path``)."""
    from dedup import LinkSettings, link_records
    from dedup.ids import PreviousLinking
    from dedup.incremental import KeptLinking

    settings, now = LinkSettings(), _FIRST_NIGHT + dt.timedelta(days=1)
    day = pd.read_parquet(folder / "day.parquet")
    previous = PreviousLinking(mapping=pd.read_parquet(folder / "mapping.parquet"))
    started = time.perf_counter()
    result = link_records(day, settings, previous=previous, kept=KeptLinking.load(folder / "kept", settings, now),
                          now=now, id_key=_KEY)
    wall = time.perf_counter() - started
    mapping = result.mapping[["record_id", "person_id"]]
    return {"wall": wall, "seconds": result.stats["seconds"], "relinked": result.stats["records_relinked"],
            "persons": result.stats["persons"],
            "mapping": hashlib.sha256(pd.util.hash_pandas_object(mapping, index=False).values.tobytes()).hexdigest()[:12]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True, help="where the staged records and the kept state live")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", default="HEAD")
    parser.add_argument("--runs", type=int, default=2, help="nights per side, in the order A B B A …")
    parser.add_argument("--_night", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._night:
        print(json.dumps(night(args._night)))
        return
    if not (args.dir / "day.parquet").exists():
        setup(args.dir, args.records)
    with tempfile.TemporaryDirectory(prefix="silobreaker-inclink-") as scratch:
        code = {side: Path(scratch) / side for side in ("A", "B")}
        for side, commit in (("A", args.before), ("B", args.after)):
            subprocess.run(["git", "worktree", "add", "-q", "--detach", str(code[side]), commit], cwd=REPO, check=True)
        try:
            rows = []
            for i in range(2 * args.runs):
                side = "AB"[(i + i // 2) % 2]  # A B B A A B …
                done = subprocess.run([sys.executable, __file__, "--dir", str(args.dir), "--before", "-",
                                       "--_night", str(args.dir)], env={**os.environ, "PYTHONPATH": str(code[side])},
                                      capture_output=True, text=True, check=True)
                rows.append((i + 1, side, json.loads(done.stdout.strip().splitlines()[-1])))
                print(rows[-1], flush=True)
        finally:
            for side in code:
                subprocess.run(["git", "worktree", "remove", "--force", str(code[side])], cwd=REPO, check=False)
    commits = {"A": args.before, "B": args.after}
    lines = [f"Command: `.venv/bin/python benchmarks/incremental_link.py --dir {args.dir} --before {args.before} "
             f"--after {args.after} --runs {args.runs}`  ",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
             f"{args.records:,} staged records, a day of 1% changed, 0.1% gone, 0.2% new",
             "", "| run | code | wall s | prepare s | blocking s | compare+score s | cluster s | relinked | persons | mapping |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for number, side, r in rows:
        s = r["seconds"]
        lines.append(f"| {number} | {commits[side]} | {r['wall']:.1f} | {s['prepare']:.1f} | {s['blocking']:.1f} | "
                     f"{s['compare_score']:.1f} | {s['cluster']:.1f} | {r['relinked']:,} | {r['persons']:,} | {r['mapping']} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
