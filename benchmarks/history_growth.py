"""What the warehouse's conflict history costs a night as a district ages: one row per disagreement and run (the
layout before 9a5e6f1) against one row per disagreement over the runs that found it (``first_run_id``, ``last_run_id``).

Each night's publication carries the history tables of the last warehouse into its own
(``publish.warehouse.Warehouse._carry_history``: ``ATTACH`` the last one, ``INSERT … SELECT``). From a published
warehouse (``--warehouse``: a district after a night or more) this builds ``conflict_history`` as it would stand
after N nights in each layout, from that warehouse's disagreements:

- **per run**: N copies of the night's disagreements, one per run;
- **spans**: the night's disagreements once, plus N × ``--new-per-night`` rows (disagreements a night finds that the
  night before did not have: a span's start). Without ``--new-per-night``, the warehouse's own last night says how
  many (its rows whose first run is its last run, when that run is not its first).

and times the carrying of it into a fresh warehouse (attach, insert, checkpoint), with the size it takes on disk.
Results go to ``benchmarks/results/history_growth.md`` with ``--out``.

    .venv/bin/python benchmarks/history_growth.py --warehouse /work/bench/h1m/warehouse/silobreaker.duckdb \\
        --nights 1 30 100 365
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

_COLUMNS = "source, record_id, field, value, likely_wrong"
_PER_RUN = ("CREATE TABLE conflict_history (run_id VARCHAR, source VARCHAR, record_id VARCHAR, field VARCHAR, "
            "value VARCHAR, likely_wrong BOOLEAN)")


def _last_run(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    """The attached warehouse's (``src``) last run, and the column of ``conflict_history`` naming the run a row is of:
    ``run_id`` in the layout of one row per run, ``last_run_id`` in spans."""
    columns = {c for (c,) in con.execute("SELECT column_name FROM duckdb_columns() WHERE database_name = 'src' "
                                         "AND table_name = 'conflict_history'").fetchall()}
    run = con.execute("SELECT run_id FROM src.runs ORDER BY published_at DESC LIMIT 1").fetchone()[0]
    return run, "run_id" if "run_id" in columns else "last_run_id"


def _night(con: duckdb.DuckDBPyConnection) -> tuple[int, int | None]:
    """(disagreements of the warehouse's last run, rows its last night started) from ``src.conflict_history``."""
    last, column = _last_run(con)
    first = con.execute("SELECT run_id FROM src.runs ORDER BY published_at LIMIT 1").fetchone()[0]
    rows = con.execute(f"SELECT count(*) FROM src.conflict_history WHERE {column} = ?", [last]).fetchone()[0]
    if column == "run_id":
        return rows, None
    started = con.execute("SELECT count(*) FROM src.conflict_history WHERE first_run_id = ?", [last]).fetchone()[0]
    return rows, (started if last != first else None)


def _build(path: Path, warehouse: Path, layout: str, nights: int, new_per_night: int) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute(f"ATTACH '{warehouse}' AS src (READ_ONLY)")
        run, column = _last_run(con)
        con.execute(f"CREATE TEMP TABLE night AS SELECT {_COLUMNS} FROM src.conflict_history WHERE {column} = ?",
                    [run])
        if layout == "per run":
            con.execute(_PER_RUN)
            con.execute("INSERT INTO conflict_history SELECT printf('run-%05d', n), night.* FROM night, range(?) t(n)",
                        [nights])
        else:
            con.execute(f"CREATE TABLE conflict_history AS SELECT {_COLUMNS}, 'run-00000' AS first_run_id, "
                        f"printf('run-%05d', {nights - 1}) AS last_run_id FROM night")
            # A night's new disagreements: another value of a disputed field (the sizes are what matter here).
            con.execute("INSERT INTO conflict_history SELECT source, record_id, field, value || printf('~%d', n), "
                        "likely_wrong, printf('run-%05d', n), printf('run-%05d', n) "
                        "FROM (FROM night LIMIT ?), range(1, ?) t(n)", [new_per_night, nights])


def _carry(previous: Path, into: Path) -> float:
    """Seconds to carry ``previous``'s conflict_history into a new warehouse, as a night's publication does."""
    with duckdb.connect(str(into)) as con:
        started = time.perf_counter()
        con.execute(f"ATTACH '{previous}' AS previous (READ_ONLY)")
        con.execute("CREATE TABLE conflict_history AS FROM previous.conflict_history LIMIT 0")
        con.execute("INSERT INTO conflict_history BY NAME SELECT * FROM previous.conflict_history")
        con.execute("DETACH previous")
        con.execute("CHECKPOINT")
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--nights", type=int, nargs="+", default=[1, 30, 100, 365])
    parser.add_argument("--new-per-night", type=int, default=None)
    parser.add_argument("--tmp", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    with duckdb.connect() as con:
        con.execute(f"ATTACH '{args.warehouse}' AS src (READ_ONLY)")
        night, started = _night(con)
    new_per_night = args.new_per_night if args.new_per_night is not None else started
    if new_per_night is None:
        raise SystemExit("the warehouse has one night of span history or none: give --new-per-night")
    lines = ["| nights | layout | rows | MB on disk | carry s |", "|---:|---|---:|---:|---:|"]
    with tempfile.TemporaryDirectory(prefix="history-growth-", dir=args.tmp) as scratch:
        for nights in args.nights:
            for layout in ("per run", "spans"):
                built, into = Path(scratch) / "built.duckdb", Path(scratch) / "into.duckdb"
                for path in (built, into):
                    path.unlink(missing_ok=True)
                _build(built, args.warehouse, layout, nights, new_per_night)
                seconds = _carry(built, into)
                with duckdb.connect(str(into), read_only=True) as con:
                    rows = con.execute("SELECT count(*) FROM conflict_history").fetchone()[0]
                lines.append(f"| {nights} | {layout} | {rows:,} | {os.path.getsize(built) / 1e6:,.0f} | {seconds:.2f} |")
                print(lines[-1], flush=True)
    text = (f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n"
            f"Command: `.venv/bin/python benchmarks/history_growth.py --warehouse {args.warehouse} --nights "
            f"{' '.join(map(str, args.nights))}`  \n"
            f"Warehouse: {night:,} disagreements in its last run; {new_per_night:,} new a night "
            f"({'given' if args.new_per_night is not None else 'its last night'})  \n"
            f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
            f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 1024**3:.0f} GB, "
            f"Python {platform.python_version()}, DuckDB {duckdb.__version__}\n\n" + "\n".join(lines) + "\n")
    print(text)
    if args.out:
        with args.out.open("a", encoding="utf-8") as out:
            out.write(text + "\n")


if __name__ == "__main__":
    main()
