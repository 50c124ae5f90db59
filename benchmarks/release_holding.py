"""What holding an analyst row release against the last one costs: ``publish.releases.hold_classes`` on real rows.

Two nights' kept rows of one recipient (``<home>/releases/<recipient>/*.parquet``, the two newest: the later one
stands for tonight's anonymised rows, the earlier for the release it is held against) are held against each other
``--runs`` times in this process (k 5, l-diversity over ``chronic_patient``, the demo policy's); the seconds of each,
and what was held. The later rows are a release as shown, itself held already, so fewer classes change than against
a night's fresh rows: the time is that of the passes over every row, with fewer rounds of the holding loop.

    .venv/bin/python benchmarks/release_holding.py --home <a home after two nights> [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.home import DataHome  # noqa: E402
from publish.releases import hold_classes  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--recipient", default="statistics_analysts")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    kept = sorted(DataHome.at(args.home).release_rows_dir(args.recipient).glob("*.parquet"), key=lambda p: p.stat().st_mtime)
    if len(kept) < 2:
        raise SystemExit(f"{args.home} keeps fewer than two releases of {args.recipient}")
    last, tonight = pq.read_table(kept[-2]), pq.read_table(kept[-1])
    made_at = json.loads(tonight.schema.metadata[b"silobreaker.release_made_at"])
    classes = [q if q in tonight.column_names else f"list_contains(key_populations, '{q}')"
               for q in made_at["quasi_identifiers"]]
    print(f"{args.recipient}: {tonight.num_rows:,} rows held against {last.num_rows:,}; classes of {classes}")
    for run in range(args.runs):
        started = time.perf_counter()
        _, _, continuity = hold_classes(tonight, last, 5, classes, ["chronic_patient"], [], "last")
        print(f"  run {run + 1}: {time.perf_counter() - started:.2f} s; {continuity}")


if __name__ == "__main__":
    main()
