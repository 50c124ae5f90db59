"""Latency of ``silobreaker lookup`` (先查后录) at a million people.

A warehouse of N people is built from a published demo warehouse by copying it (``--copies``, 51 copies
of the 19,644-person demo ≈ 1M): each copy's person and record ids get a suffix and its given names
another rotation of common given-name characters, so namesakes do not multiply with the copies and a
query meets as many candidates as in a real district of that size. The copies keep the demo's 193
grids (≈5,200 people per grid) and every table a look-up reads (``unified_population``,
``source_records``, the consent tables, ``key_residents``, ``risk_warnings``).

Then ``--queries`` residents drawn at random are looked up the way a grid worker types them — name,
sex, birth year-month and address, and (a second round) name with a homophone slip and birth
year-month only — by the worker of the resident's grid and by a district-wide department, timing each
call of :func:`publish.lookup.lookup` (warm: the CLI's start-up is not counted) and counting how often
the resident comes back first (when the product may show them).

    python benchmarks/lookup.py --home /tmp/sbhome --copies 51 --queries 200

The demo home must hold a published run (``silobreaker demo``). Results are appended to
``benchmarks/results/lookup.md`` with the command, the data size and the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.vocabulary import MASKS  # noqa: E402
from dedup.settings import load_link_settings  # noqa: E402
from pipelines.settings import DEMO_LINKING, DEMO_POLICY, DEMO_POPULATIONS  # noqa: E402
from publish import load_area_register, load_policy, load_populations  # noqa: E402
from publish.lookup import LookupQuery, lookup, resolve_recipient  # noqa: E402
from publish.scopes import area_slug  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "lookup.md"
TABLES = ("unified_population", "source_records", "consent_effective", "deletion_requests", "consent_problems",
          "key_residents", "risk_warnings")
# Common given-name characters: copy k maps each onto the one k places on (a bijection per copy).
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国文玉梅红志林海波成雨涵诗天永东晨浩宇欣怡子轩佳琪"
HOMOPHONES = {"建": "健", "国": "果", "伟": "玮", "芳": "方", "明": "铭", "华": "桦", "军": "君", "平": "萍", "红": "宏",
              "林": "琳", "海": "海", "东": "冬", "文": "雯", "静": "婧", "丽": "莉", "涛": "韬", "杰": "洁", "英": "瑛"}


def build(source: Path, target: Path, copies: int) -> int:
    """Copy the demo warehouse's look-up tables ``copies`` times into ``target``; the people it holds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target.unlink()
    with duckdb.connect(str(target)) as con:
        con.execute(f"ATTACH '{source}' AS demo (READ_ONLY)")
        con.execute("CREATE TABLE _copies AS SELECT range AS k, printf('%02d', range) AS suffix FROM range($n)",
                    {"n": copies})
        rotated = ", ".join(f"({k}, '{GIVEN[k % len(GIVEN):] + GIVEN[:k % len(GIVEN)]}')" for k in range(copies))
        con.execute(f"CREATE TABLE _rot AS SELECT * FROM (VALUES {rotated}) t(k, dst)")
        rename = (f"CASE WHEN c.k = 0 THEN {{col}} "
                  f"ELSE substr({{col}}, 1, 1) || translate(substr({{col}}, 2), '{GIVEN}', r.dst) END")
        for table in TABLES:
            columns = [row[0] for row in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = 'demo' AND table_name = ? "
                "ORDER BY column_index", [table]).fetchall()]
            select = []
            for column in columns:
                if column in ("person_id", "record_id", "warning_id", "decision_id"):
                    select.append(f"t.{column} || c.suffix AS {column}")
                elif column == "name" and table in ("unified_population", "source_records"):
                    select.append(rename.format(col=f"t.{column}") + f" AS {column}")
                elif column == "record_ids":
                    select.append("list_transform(t.record_ids, lambda x: x || c.suffix) AS record_ids")
                else:
                    select.append(f"t.{column}")
            con.execute(f"CREATE TABLE {table} AS SELECT {', '.join(select)} FROM demo.{table} t "
                        "CROSS JOIN _copies c JOIN _rot r ON r.k = c.k")
        # name_pinyin follows the renamed name where the look-up blocks on it
        from staging.pinyin import name_pinyin

        names = con.execute("SELECT DISTINCT name FROM source_records WHERE name IS NOT NULL").df()
        names["pinyin"] = name_pinyin(names["name"].astype("string")).astype(object)
        con.register("_names", names)
        con.execute("UPDATE source_records s SET name_pinyin = n.pinyin FROM _names n WHERE n.name = s.name")
        con.execute("DROP TABLE _copies; DROP TABLE _rot")
        con.execute("DETACH demo")
        return con.execute("SELECT count(*) FROM unified_population").fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, help="a data home holding a published demo run")
    parser.add_argument("--copies", type=int, default=51)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--work", default="/tmp/silobreaker-lookup-bench", help="where the big warehouse is built")
    parser.add_argument("--reuse", action="store_true", help="look up in the warehouse --work holds from an earlier run")
    args = parser.parse_args()

    demo_home = Path(args.home)
    work = Path(args.work)
    big = work / "warehouse" / "silobreaker.duckdb"
    started = time.perf_counter()
    if args.reuse and big.exists():
        with duckdb.connect(str(big), read_only=True) as con:
            people = con.execute("SELECT count(*) FROM unified_population").fetchone()[0]
    else:
        shutil.rmtree(work, ignore_errors=True)
        (work / "warehouse").mkdir(parents=True)
        people = build(demo_home / "warehouse" / "silobreaker.duckdb", big, args.copies)
    built = time.perf_counter() - started
    # The look-up reads the warehouse at <home>/warehouse/silobreaker.duckdb
    populations = load_populations(DEMO_POPULATIONS)
    policy = load_policy(DEMO_POLICY, populations)
    register = load_area_register(demo_home / "demo" / "areas.csv")
    settings = load_link_settings(DEMO_LINKING)

    with duckdb.connect(str(work / "warehouse" / "silobreaker.duckdb"), read_only=True) as con:
        sample = con.execute(
            "SELECT person_id, name, sex, birth_date, address, community, grid FROM unified_population "
            "WHERE name IS NOT NULL AND birth_date IS NOT NULL AND grid IS NOT NULL AND address IS NOT NULL "
            f"USING SAMPLE reservoir({int(args.queries)} ROWS) REPEATABLE (7)").df()
        grid_products = {grid: resolve_recipient(f"grid_workers_{area_slug('grid', grid, community)}", policy, con,
                                                 register)
                         for grid, community in set(zip(sample["grid"], sample["community"], strict=True))}
        district = resolve_recipient("health_family_doctors", policy, con, register)

    rounds = {
        "grid worker, name+sex+birth month+address": [],
        "grid worker, name with a homophone+birth month": [],
        "district department, name+sex+birth month+address": [],
    }
    found = dict.fromkeys(rounds, 0)
    shown = dict.fromkeys(rounds, 0)
    for row in sample.itertuples(index=False):
        sex = {"M": "男", "F": "女"}.get(row.sex)
        slipped = row.name[0] + "".join(HOMOPHONES.get(ch, ch) for ch in row.name[1:])
        for label, recipient, query in (
            ("grid worker, name+sex+birth month+address", grid_products[row.grid],
             LookupQuery(name=row.name, sex=sex, birth=row.birth_date[:7], address=row.address)),
            ("grid worker, name with a homophone+birth month", grid_products[row.grid],
             LookupQuery(name=slipped, birth=row.birth_date[:7])),
            ("district department, name+sex+birth month+address", district,
             LookupQuery(name=row.name, sex=sex, birth=row.birth_date[:7], address=row.address)),
        ):
            t = time.perf_counter()
            result = lookup(work, recipient, query, policy, register, settings)
            rounds[label].append(time.perf_counter() - t)
            # Found: shown first (its masked name is the resident's), or counted as registered but withheld.
            top = result.matches[0].fields.get("name") if result.matches else None
            if top is not None and top == MASKS["name"].apply(row.name):
                shown[label] += 1
                found[label] += 1
            elif result.withheld:
                found[label] += 1

    lines = [f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n",
             f"`python benchmarks/lookup.py --home {args.home} --copies {args.copies} --queries {args.queries}"
             f"{' --reuse' if args.reuse else ''}` — {people:,} people ({args.copies} copies of the demo warehouse"
             f"{'' if args.reuse else f', built in {built:.0f} s'}), "
             f"{len(sample)} residents drawn at random; machine: {platform.machine()}, {os.cpu_count()} cores, "
             f"Python {platform.python_version()}, DuckDB {duckdb.__version__}.\n",
             "| who looks up, typing | median | p95 | max | resident found (shown first, or counted as withheld) | shown first |",
             "|---|---|---|---|---|---|"]
    for label, times in rounds.items():
        ordered = sorted(times)
        p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
        lines.append(f"| {label} | {statistics.median(times) * 1000:.0f} ms | {p95 * 1000:.0f} ms | "
                     f"{max(times) * 1000:.0f} ms | {found[label]}/{len(times)} | {shown[label]} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not RESULTS.exists():
        RESULTS.write_text("# `silobreaker lookup` latency at a million people\n\nWritten by `benchmarks/lookup.py`; "
                           "newest last.\n", encoding="utf-8")
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write(text)


if __name__ == "__main__":
    main()
