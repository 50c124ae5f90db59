"""What the warehouse's histories cost a night as a district ages: one row per quarantined row or disagreement and run
(the layout before 9a5e6f1 for ``conflict_history``, before 276c80a for ``quarantine_history``) against one row over
the runs that found it (``first_run_id``, ``last_run_id``).

Each night's publication carries the history tables of the last warehouse into its own
(``publish.warehouse.Warehouse._carry_history``: ``ATTACH`` the last one, ``INSERT … SELECT``). From a published
warehouse (``--warehouse``: a district after a night or more) this builds ``--table`` as it would stand after N
nights in each layout, from that warehouse's rows:

- **per run**: N copies of the night's rows, one per run;
- **spans**: the night's rows once, plus N × ``--new-per-night`` rows (rows a night finds that the night before did
  not have: a span's start). Without ``--new-per-night``, the warehouse's own last night says how many (its rows
  whose first run is its last run, when that run is not its first).

and times the carrying of it into a fresh warehouse (attach, insert, checkpoint), with the size it takes on disk.
Results go to ``benchmarks/results/history_growth.md`` with ``--out``.

    .venv/bin/python benchmarks/history_growth.py --warehouse /work/bench/h1m/warehouse/silobreaker.duckdb \\
        --table conflict_history --nights 1 30 100 365
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb


@dataclass(frozen=True)
class History:
    """A history table: the columns a row is known by (beside its runs), the per-run layout's ``CREATE TABLE``,
    and an expression making a row of the night into another (a night's new row; the sizes are what matter)."""

    columns: str
    per_run: str
    varied: str


HISTORIES = {
    "conflict_history": History(
        "source, record_id, field, value, likely_wrong",
        "CREATE TABLE conflict_history (run_id VARCHAR, source VARCHAR, record_id VARCHAR, field VARCHAR, "
        "value VARCHAR, likely_wrong BOOLEAN)",
        "source, record_id, field, value || printf('~%d', n), likely_wrong"),
    "quarantine_history": History(
        "source, source_key, record_id, rule",
        "CREATE TABLE quarantine_history (run_id VARCHAR, source VARCHAR, source_key VARCHAR, record_id VARCHAR, "
        "rule VARCHAR)",
        "source, source_key || printf('~%d', n), record_id || printf('~%d', n), rule"),
}


def _last_run(con: duckdb.DuckDBPyConnection, table: str) -> tuple[str, str, bool]:
    """The attached warehouse's (``src``) last run; the column of ``table`` naming the run a row is of (``run_id`` in
    the layout of one row per run, ``last_run_id`` in spans); whether its rows count rows alike (``rows``)."""
    columns = {c for (c,) in con.execute("SELECT column_name FROM duckdb_columns() WHERE database_name = 'src' "
                                         "AND table_name = ?", [table]).fetchall()}
    run = con.execute("SELECT run_id FROM src.runs ORDER BY published_at DESC LIMIT 1").fetchone()[0]
    return run, "run_id" if "run_id" in columns else "last_run_id", "rows" in columns


def _night(con: duckdb.DuckDBPyConnection, table: str) -> tuple[int, int | None]:
    """(rows of the warehouse's last run, rows its last night started) from ``src.<table>``."""
    last, column, _ = _last_run(con, table)
    first = con.execute("SELECT run_id FROM src.runs ORDER BY published_at LIMIT 1").fetchone()[0]
    rows = con.execute(f"SELECT count(*) FROM src.{table} WHERE {column} = ?", [last]).fetchone()[0]
    if column == "run_id":
        return rows, None
    started = con.execute(f"SELECT count(*) FROM src.{table} WHERE first_run_id = ?", [last]).fetchone()[0]
    return rows, (started if last != first else None)


def _build(path: Path, warehouse: Path, table: str, layout: str, nights: int, new_per_night: int) -> None:
    history = HISTORIES[table]
    with duckdb.connect(str(path)) as con:
        con.execute(f"ATTACH '{warehouse}' AS src (READ_ONLY)")
        run, column, counted = _last_run(con, table)
        # The night's rows one per row as the per-run layout keeps them (rows alike repeated).
        expand = ", range(rows)" if counted else ""
        con.execute(f"CREATE TEMP TABLE night AS SELECT {history.columns} FROM src.{table}{expand} WHERE {column} = ?",
                    [run])
        if layout == "per run":
            con.execute(history.per_run)
            con.execute(f"INSERT INTO {table} SELECT printf('run-%05d', n), night.* FROM night, range(?) t(n)",
                        [nights])
        else:
            rows = ", count(*) AS rows" if table == "quarantine_history" else ""
            group = " GROUP BY ALL" if rows else ""
            con.execute(f"CREATE TABLE {table} AS SELECT {history.columns}{rows}, 'run-00000' AS first_run_id, "
                        f"printf('run-%05d', {nights - 1}) AS last_run_id FROM night{group}")
            con.execute(f"INSERT INTO {table} SELECT {history.varied}{', 1' if rows else ''}, printf('run-%05d', n), "
                        f"printf('run-%05d', n) FROM (FROM night LIMIT ?), range(1, ?) t(n)", [new_per_night, nights])


def _carry(previous: Path, into: Path, table: str) -> float:
    """Seconds to carry ``previous``'s ``table`` into a new warehouse, as a night's publication does."""
    with duckdb.connect(str(into)) as con:
        started = time.perf_counter()
        con.execute(f"ATTACH '{previous}' AS previous (READ_ONLY)")
        con.execute(f"CREATE TABLE {table} AS FROM previous.{table} LIMIT 0")
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM previous.{table}")
        con.execute("DETACH previous")
        con.execute("CHECKPOINT")
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--table", choices=sorted(HISTORIES), default="conflict_history")
    parser.add_argument("--nights", type=int, nargs="+", default=[1, 30, 100, 365])
    parser.add_argument("--new-per-night", type=int, default=None)
    parser.add_argument("--tmp", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    with duckdb.connect() as con:
        con.execute(f"ATTACH '{args.warehouse}' AS src (READ_ONLY)")
        night, started = _night(con, args.table)
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
                _build(built, args.warehouse, args.table, layout, nights, new_per_night)
                seconds = _carry(built, into, args.table)
                with duckdb.connect(str(into), read_only=True) as con:
                    rows = con.execute(f"SELECT count(*) FROM {args.table}").fetchone()[0]
                lines.append(f"| {nights} | {layout} | {rows:,} | {os.path.getsize(built) / 1e6:,.0f} | {seconds:.2f} |")
                print(lines[-1], flush=True)
    text = (f"## {args.table}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n"
            f"Command: `.venv/bin/python benchmarks/history_growth.py --warehouse {args.warehouse} --table {args.table} "
            f"--nights "
            f"{' '.join(map(str, args.nights))}`  \n"
            f"Warehouse: {night:,} rows of {args.table} in its last run; {new_per_night:,} new a night "
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
