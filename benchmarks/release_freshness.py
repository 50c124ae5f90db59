"""How far behind the held analyst rows fall, night after night (``publish.releases``).

A generated demo district of ``--persons`` people is run through ``silobreaker run`` for ``--nights`` nights, with a
day's changes between two nights (``benchmarks/sync.py``'s ``change_a_day``: 1% of each person source's rows changed,
0.1% gone, 0.2% new). After each night the analyst product's disclosure says what holding each class against the last
release cost: classes and rows shown as they were, classes withheld, ``rows_behind`` (tonight's rows not shown as they
are) and ``rows_outdated`` (rows shown that are not tonight's). A class comes back once its changes against the rows it
last showed gather to k; whether the rows behind settle or keep growing is what this measures.

    .venv/bin/python benchmarks/release_freshness.py --persons 20000 --nights 16 --home /tmp/fresh20k
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sync import change_a_day, timed_run  # noqa: E402

_FIELDS = ("classes_held", "rows_held", "classes_withheld", "rows_withheld", "rows_behind", "rows_outdated", "not_held")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--nights", type=int, default=16)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--home", type=Path, required=True, help="a new folder (generated), or a home to go on with")
    parser.add_argument("--recipient", default="statistics_analysts")
    args = parser.parse_args()

    from demo.generate import generate_demo
    from publish import WarehouseReader

    if not args.home.exists():
        generate_demo(args.home, persons=args.persons, seed=args.seed)
    print(f"| night | wall s | rows released | {' | '.join(_FIELDS)} |\n|---:|---:|---:|" + "---:|" * len(_FIELDS))
    for night in range(1, args.nights + 1):
        if night > 1:
            change_a_day(args.home / "demo", 99 + night)  # seeds 101, 102, …
        run = timed_run(args.home)
        with WarehouseReader(args.home).connect() as con:
            count, disclosure = con.execute(
                "SELECT row_count, disclosure FROM publication_log WHERE recipient = ? ORDER BY published_at DESC LIMIT 1",
                [args.recipient]).fetchone()
        held = json.loads(disclosure) if disclosure else {}
        print(f"| {night} | {run['wall']:.0f} | {count:,} | " + " | ".join(str(held.get(f, "")) for f in _FIELDS) + " |",
              flush=True)


if __name__ == "__main__":
    main()
