"""The grid's derived facts on the demo district, against the generator's truth.

One command generates the demo in a temporary data home, runs the whole pipeline on it, and compares what
the warehouse says with ``truth/persons.parquet`` and ``truth/ground_truth.parquet``:

    .venv/bin/python benchmarks/grid_truth.py --persons 20000 --seed 20261123

- grid updates linked to their true person; reported departures with the right status;
- ``residence_type`` (人户一致 / 人户分离 / 流动人口) where known;
- 一老一小, 留守儿童, 空巢老人 from shared flats: right, wrong (listed, not so in truth) and missed (a person the
  warehouse holds who is so in truth but not listed), with the truth's categories computed over the true
  households by the same rules as ``demo/populations.yaml``;
- ``census_gaps``: listed as not in the census / census only, and how many of each are so in truth;
- key residents with an address but no grid.

A warehouse person is matched to the true person most of its records belong to. The result, with the
command, data size and machine, is appended to ``benchmarks/results/grid_truth.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import sys
import tempfile
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from demo.generate import generate_demo  # noqa: E402
from pipelines.cli import run_pipeline  # noqa: E402
from pipelines.settings import DEMO_POLICY, DEMO_SOURCES, Settings  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "grid_truth.md"

# The truth's household categories, by the rules of demo/populations.yaml over the true households.
_TRUE_CATEGORIES = {
    "elderly_with_child": "(a >= 60 OR a < 14) AND elderly > 0 AND children > 0 AND working = 0",
    "left_behind_child": "a < 16 AND working = 0",
    "empty_nest_elderly": "a >= 60 AND working = 0 AND children = 0 AND size >= 2",
}


def measure(home: Path, as_of: dt.date) -> list[tuple[str, str]]:
    """``(what, figure)`` rows for the published warehouse under ``home``."""
    truth_dir = home / "demo" / "truth"
    with duckdb.connect(str(home / "warehouse" / "silobreaker.duckdb"), read_only=True) as con:
        con.execute(f"CREATE TEMP TABLE truth AS SELECT * FROM '{truth_dir / 'persons.parquet'}'")
        con.execute(f"CREATE TEMP TABLE gt AS SELECT * FROM '{truth_dir / 'ground_truth.parquet'}'")
        con.execute("CREATE TEMP TABLE pmap AS SELECT person_id, mode(true_person_id) AS t "
                    "FROM record_person JOIN gt USING (record_id) GROUP BY person_id")
        con.execute(f"""CREATE TEMP TABLE true_households AS
            SELECT person_id, a, count(*) FILTER (WHERE a BETWEEN 18 AND 59) OVER h AS working,
                count(*) FILTER (WHERE a >= 60) OVER h AS elderly, count(*) FILTER (WHERE a < 14) OVER h AS children,
                count(*) OVER h AS size
            FROM (SELECT person_id, household, date_diff('year', CAST(birth_date AS DATE), DATE '{as_of}')
                    - CASE WHEN strftime(CAST(birth_date AS DATE), '%m-%d') > '{as_of:%m-%d}' THEN 1 ELSE 0 END AS a
                  FROM truth WHERE residence_status = 'present')
            WINDOW h AS (PARTITION BY household)""")

        def one(sql: str) -> tuple:
            return con.execute(sql).fetchone()

        rows = []
        linked, updates = one("SELECT count(*) FILTER (WHERE p.t = gt.true_person_id), count(*) FROM grid_updates g "
                              "JOIN gt USING (record_id) JOIN pmap p USING (person_id)")
        rows.append(("grid updates linked to their true person", f"{linked:,} of {updates:,}"))
        right, wrong, truly = one("""SELECT count(*) FILTER (WHERE u.residence_status = t.residence_status),
                count(*) FILTER (WHERE u.residence_status IN ('moved_out', 'deceased')
                                 AND u.residence_status IS DISTINCT FROM t.residence_status),
                (SELECT count(*) FROM truth WHERE residence_status <> 'present')
            FROM unified_population u JOIN pmap p USING (person_id) JOIN truth t ON t.person_id = p.t
            WHERE t.residence_status <> 'present' OR u.residence_status IN ('moved_out', 'deceased')""")
        rows.append(("departures (moved out, deceased) with the right status", f"{right:,} of {truly:,}; "
                     f"{wrong:,} people given a departure they did not make"))
        agree, known, unknown = one("""SELECT count(*) FILTER (WHERE u.residence_type = t.residence_type),
                count(u.residence_type), count(*) FILTER (WHERE u.residence_type IS NULL)
            FROM unified_population u JOIN pmap p USING (person_id) JOIN truth t ON t.person_id = p.t""")
        rows.append(("residence_type agreeing with the truth", f"{agree:,} of {known:,} known ({unknown:,} unknown)"))
        for code, rule in _TRUE_CATEGORIES.items():
            tp, fp, fn = one(f"""SELECT count(*) FILTER (WHERE u.{code} AND coalesce(t.listed, false)),
                    count(*) FILTER (WHERE u.{code} AND NOT coalesce(t.listed, false)),
                    count(*) FILTER (WHERE NOT u.{code} AND coalesce(t.listed, false))
                FROM unified_population u JOIN pmap p USING (person_id)
                LEFT JOIN (SELECT person_id, {rule} AS listed FROM true_households) t ON t.person_id = p.t""")
            rows.append((f"{code}: right / wrong / missed", f"{tp:,} / {fp:,} / {fn:,}"))
        con.execute("""CREATE TEMP TABLE true_census AS SELECT true_person_id AS t,
            bool_or(source = 'census') AS counted, bool_and(source = 'census') AS only FROM gt GROUP BY ALL""")
        for gap, truly_so in (("not_in_census", "NOT c.counted"), ("census_only", "c.only")):
            listed, so = one(f"""SELECT count(*), count(*) FILTER (WHERE {truly_so}) FROM census_gaps g
                JOIN pmap p USING (person_id) JOIN true_census c ON c.t = p.t WHERE g.gap = '{gap}'""")
            rows.append((f"census_gaps {gap}: listed / so in truth", f"{listed:,} / {so:,}"))
        (gridless,) = one("SELECT count(*) FROM key_residents k JOIN unified_population u USING (person_id) "
                          "WHERE k.grid IS NULL AND u.address IS NOT NULL")
        rows.append(("key residents with an address but no grid", f"{gridless:,}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=20261123)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="grid-truth-") as tmp:
        home = Path(tmp)
        generate_demo(home, persons=args.persons, seed=args.seed)
        outcome = run_pipeline(Settings(home, DEMO_SOURCES, DEMO_POLICY))
        if not outcome.success:
            raise SystemExit(f"the pipeline failed: {outcome.failures}")
        rows = measure(home, dt.date.today())
    command = shlex.join(["python", "benchmarks/grid_truth.py", *sys.argv[1:]])
    lines = [f"\n## {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC — {args.persons:,} persons, seed {args.seed}\n",
             f"- command: `{command}`",
             f"- machine: {os.cpu_count()} cores, {platform.system()} {platform.machine()}, "
             f"Python {platform.python_version()}\n",
             "| measure | figure |", "|---|---|", *(f"| {what} | {figure} |" for what, figure in rows)]
    text = "\n".join(lines) + "\n"
    if not RESULTS.exists():
        RESULTS.write_text("# The grid's derived facts against the demo's truth (`benchmarks/grid_truth.py`)\n",
                           encoding="utf-8")
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write(text)
    print(text)


if __name__ == "__main__":
    main()
