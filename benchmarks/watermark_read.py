"""A database table read by its watermark against the same table read whole (issue 14), on a copy of a demo home's
civil affairs table (``<home>/demo/civil_affairs.sqlite``, 613k rows at 1M people).

The table is first read whole by its watermark (what the first night keeps), then ``--rounds`` times: 1% of its
rows changed and stamped now, as the department's system stamps 更新时间 (``gxsj``), and the table read both ways —
whole (the source declared without a watermark) and by its watermark (fetch since the kept watermark, key scan,
1,000 kept rows checked again, merge) — alternating which goes first. Each read is ``connectors.sql.read_sql``,
content hash included; the two must give the same content hash.

    .venv/bin/python benchmarks/watermark_read.py --home /work/bench/h1m --rounds 3

A commit before this script: copy it into a worktree of that commit and run it there (``PYTHONPATH`` unset).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.config import load_sources  # noqa: E402
from connectors.sql import read_sql  # noqa: E402
from pipelines.settings import DEMO_SOURCES  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a demo home (its demo/civil_affairs.sqlite)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tmp", type=Path, default=None)
    args = parser.parse_args()

    # Declared here, not taken from demo/sources.yaml, so the script measures a commit whose demo reads it whole.
    declared = next(s for s in load_sources(DEMO_SOURCES).sources if s.name == "civil_affairs")
    source, whole = (declared.model_copy(update={"watermark": mark}) for mark in ("gxsj", None))
    lines = ["| round | read | seconds | rows |", "|---:|---|---:|---:|"]
    with tempfile.TemporaryDirectory(prefix="watermark-read-", dir=args.tmp) as scratch:
        home = Path(scratch)
        (home / "demo").mkdir()
        database = home / "demo" / "civil_affairs.sqlite"
        shutil.copyfile(args.home / "demo" / "civil_affairs.sqlite", database)
        os.environ["SILOBREAKER_HOME"] = str(home)
        read_sql(source, home)  # the first night: read whole, rows and watermark kept
        for number in range(1, args.rounds + 1):
            with sqlite3.connect(database) as db:
                db.execute("UPDATE mz_resident SET lxdh = printf('139%08d', abs(random()) % 100000000), "
                           "gxsj = datetime('now') WHERE abs(random()) % 100 = 0")
            hashes = {}
            order = (("whole", whole), ("by watermark", source))
            for name, declared in order if number % 2 else order[::-1]:
                started = time.perf_counter()
                extract = read_sql(declared, home)
                seconds = time.perf_counter() - started
                hashes[name] = extract.lineage.content_hash
                lines.append(f"| {number} | {name} | {seconds:.2f} | {len(extract.frame):,} |")
                print(lines[-1], flush=True)
            if len(set(hashes.values())) != 1:
                raise SystemExit(f"round {number}: the two reads differ: {hashes}")
    text = (f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n"
            f"Command: `.venv/bin/python benchmarks/watermark_read.py --home {args.home} --rounds {args.rounds}`  \n"
            f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
            f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 1024**3:.0f} GB, "
            f"Python {platform.python_version()}\n\n" + "\n".join(lines) + "\n")
    print(text)


if __name__ == "__main__":
    main()
