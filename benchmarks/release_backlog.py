"""Why a night's analyst rows are held behind: each class's changes against the rows it last showed, by kind.

Runs one night (``silobreaker run``) on ``--home`` in this process, catching what ``publish.releases.hold_classes`` is
given for ``--recipient`` (tonight's anonymised rows and the last release's kept rows), and sorts the classes that
changed by what held them: arrivals alone fewer than k, departures alone fewer than k, both fewer than k, or one batch
of at least k held by the other's fewer than k (what showing arrivals and departures as separate batches would
release). ``--change SEED`` first applies a day's changes (``benchmarks/sync.py``'s ``change_a_day``).

    .venv/bin/python benchmarks/release_backlog.py --home <a home after some nights> --change 125
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--change", type=int, help="apply a day's changes with this seed first")
    args = parser.parse_args()

    import duckdb
    from sync import change_a_day

    import publish.releases as releases
    from pipelines.cli import main as silobreaker

    if args.change is not None:
        change_a_day(args.home / "demo", args.change)
    caught: list[tuple] = []
    hold = releases.hold_classes

    def catching(fresh, last, k, class_exprs, *rest, **named):
        if last is not None:
            caught.append((fresh, last, k, list(class_exprs)))
        return hold(fresh, last, k, class_exprs, *rest, **named)

    releases.hold_classes = catching
    if silobreaker(["run", "--home", str(args.home)]) != 0:
        raise SystemExit("the night failed")
    if not caught:
        raise SystemExit("no release was held against an earlier one tonight")
    fresh, last, k, class_exprs = caught[-1]
    fresh = fresh.drop_columns([c for c in ("person_key",) if c in fresh.column_names])
    last = last.select(fresh.column_names).cast(fresh.schema)
    content = [c for c in fresh.column_names if not c.startswith("_")]
    # A row's class and what it shows, made as hold_classes makes them.
    cls, shows = releases._struct(class_exprs), releases._struct(content)
    with duckdb.connect() as con:
        con.register("tonight", fresh)
        con.register("last_rows", last)
        rows = con.execute(f"""
            WITH cells AS (SELECT c, x, count(*) FILTER (WHERE s) AS nf, count(*) FILTER (WHERE NOT s) AS nb
                           FROM (SELECT {cls} AS c, {shows} AS x, true AS s FROM tonight
                                 UNION ALL SELECT {cls}, {shows}, false FROM last_rows) GROUP BY ALL),
                 moved AS (SELECT c, sum(greatest(nf - nb, 0)) AS g, sum(greatest(nb - nf, 0)) AS l FROM cells GROUP BY c)
            SELECT CASE WHEN (g = 0 OR g >= {k}) AND (l = 0 OR l >= {k}) THEN 'both none or at least k'
                        WHEN l = 0 THEN 'arrivals alone, fewer than k'
                        WHEN g = 0 THEN 'departures alone, fewer than k'
                        WHEN g >= {k} THEN 'arrivals at least k, departures fewer'
                        WHEN l >= {k} THEN 'departures at least k, arrivals fewer'
                        ELSE 'both fewer than k' END AS kind,
                   count(*), sum(g), sum(l)
            FROM moved WHERE g > 0 OR l > 0 GROUP BY 1 ORDER BY 2 DESC""").fetchall()
    print(f"k = {k}; classes that changed against the rows they last showed, tonight's rows against those rows:")
    print("| kind | classes | rows gained | rows lost |\n|---|---:|---:|---:|")
    for kind, classes, gained, lost in rows:
        print(f"| {kind} | {classes} | {int(gained)} | {int(lost)} |")


if __name__ == "__main__":  # the office files' worker processes import this module again
    main()
