"""k-anonymity of the analyst products at 20,000 and 1,000,000 people, and what it cost.

The district is the demo generator's true population (``demo.population.build_population``: ages,
sexes, households in 30 communities and their grids, key-population flags at the rates the
generator documents), turned into ``unified_population`` directly — the products are built from
that table, so linking is not needed to measure them. For each analyst product of the demo policy
it builds the product with ``publish.build_product`` (consent, pseudonyms, de-identification and
encryption as in a run), decrypts it and measures, independently of the code that built it:

- how unique people were on (sex, birth_year, grid) before;
- k: the smallest number of rows sharing one combination of the product's quasi-identifiers;
- whether any class consists only of people in one sensitive category;
- the share of rows whose quasi-identifiers were withheld, left out, the flags withheld, and the
  levels chosen;
- for ``district_statistics``, the share of cells suppressed and perturbed;
- time and peak memory of the build.

    .venv/bin/python benchmarks/anonymity.py                 # 20,000 and 1,000,000
    .venv/bin/python benchmarks/anonymity.py --persons 20000 --out benchmarks/results/anonymity.md
"""

from __future__ import annotations

import argparse
import platform
import resource
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from demo.population import CHRONIC_DISEASES, REFERENCE_DATE, build_population
from pipelines.settings import DEMO_POLICY
from publish import (
    KEY_POPULATIONS,
    build_product,
    load_policy,
    product_key,
    read_product,
)
from publish.anonymity import QUASI_IDENTIFIERS
from publish.populations import default_populations


def unified_population(n: int, seed: int = 20261123) -> duckdb.DuckDBPyConnection:
    pop = build_population(np.random.default_rng(seed), n)
    addresses = pop.current
    age = pop.age.astype(np.int64)
    flags = {
        "elderly": age >= 60, "elderly_living_alone": (age >= 60) & pop.lives_alone, "young_child": age < 6,
        "minor_under_14": age < 14, "disabled": pop.disability > 0, "chronic_patient": pop.chronic >= 0,
        "pregnant_woman": pop.pregnant, "community_corrections": pop.corrections,
        "low_income_household": pop.low_income,
    }
    # The household categories (demo/populations.yaml), from who lives in each household.
    household = pd.factorize(pop.household)[0]
    elderly_n, children_n, working_n, size = (np.bincount(household, weights=w.astype(np.int64))[household]
                                              for w in (age >= 60, age < 14, (age >= 18) & (age < 60),
                                                        np.ones(len(age), dtype=bool)))
    flags |= {
        "elderly_with_child": ((age >= 60) | (age < 14)) & (elderly_n > 0) & (children_n > 0) & (working_n == 0),
        "left_behind_child": (age < 16) & (working_n == 0),
        "empty_nest_elderly": (age >= 60) & (working_n == 0) & (children_n == 0) & (size >= 2),
    }
    order = list(flags)
    stacked = np.stack([flags[f] for f in order], axis=1)
    names = np.array(order, dtype=object)
    key_populations = [list(names[row]) for row in stacked]
    con = duckdb.connect()
    con.register("_p", pa.table({
        "person_id": pop.person_id.astype(object), "id_number": pop.id18.astype(object),
        "sex": np.where(pop.male, "M", "F"), "age": age,
        "birth_year": pop.birth.astype("datetime64[Y]").astype(np.int64) + 1970,
        "street": addresses.street_names().astype(object), "community": addresses.community_names().astype(object),
        "grid": addresses.grid_names().astype(object), "lives_alone": pop.lives_alone,
        "low_income": pop.low_income, "disability_grade": np.where(pop.disability > 0, pop.disability, 0),
        "chronic_disease": np.where(pop.chronic >= 0, np.array([d for d, _ in CHRONIC_DISEASES], dtype=object)[pop.chronic], None),
        **{f: pa.array(v) for f, v in flags.items()},
        "key_populations": pa.array(key_populations, pa.list_(pa.string())),
    }))
    assert set(flags) == set(KEY_POPULATIONS)
    con.execute("CREATE TABLE unified_population AS SELECT *, NULL::VARCHAR AS residence_status FROM _p")
    con.execute("CREATE TABLE deletion_requests (person_id VARCHAR)")
    con.execute("CREATE TABLE consent_problems (person_id VARCHAR)")
    return con


def measure(n: int) -> list[str]:
    con = unified_population(n)
    before = con.execute(
        "SELECT avg((n = 1)::INT) FILTER (WHERE TRUE), count(*) FROM (SELECT count(*) OVER (PARTITION BY sex, birth_year, grid) AS n "
        "FROM unified_population)").fetchall()[0]
    lines = [f"### {n:,} people", "",
             f"Before: {before[0]:.1%} of people unique on (sex, birth_year, grid).", ""]
    policy = load_policy(DEMO_POLICY)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        for recipient in policy.recipients:
            if recipient.kind != "analyst":
                continue
            start, rss0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            product = build_product(con, recipient, home / f"{recipient.name}.parquet", home)
            seconds = time.perf_counter() - start
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            table = read_product(product.path, product_key(home, recipient.name))
            with duckdb.connect() as check:
                check.register("product", table)
                if recipient.aggregate is not None:
                    cells, hidden = check.execute(
                        "SELECT count(*), count(*) FILTER (WHERE suppressed) FROM product").fetchall()[0]
                    lines += [(f"**{recipient.name}** (aggregate by {recipient.aggregate.by}, threshold "
                               f"{recipient.aggregate.threshold}, noise ±{recipient.aggregate.noise}): {cells} cells, "
                               f"{hidden} suppressed ({hidden / cells:.1%}); build {seconds:.1f} s."), ""]
                    continue
                qis = [c for c in QUASI_IDENTIFIERS if c in table.column_names]
                # Categories other recipients know of named people identify too (k_anonymity.known_populations), and
                # so do those derived from age, known to whoever knows a birth date.
                identifying = [*recipient.k_anonymity.known_populations,
                               *(c for c in default_populations().derived_from_age if c in recipient.key_populations)]
                known = [f"list_contains(key_populations, '{c}')" for c in dict.fromkeys(identifying)]
                keys = ", ".join([*qis, *known])
                k, classes = check.execute(
                    f"SELECT min(n), count(*) FROM (SELECT count(*) AS n FROM product GROUP BY {keys})"
                ).fetchall()[0]
                homogeneous = {
                    c: check.execute(
                        f"SELECT count(*) FROM (SELECT bool_and(list_contains(key_populations, '{c}')) AS all_have "
                        f"FROM product GROUP BY {keys}) WHERE all_have").fetchall()[0][0]
                    for c in product.disclosure["l_diverse"]
                }
            d = product.disclosure
            band = "exact" if d["age_band"] == 0 else f"{d['age_band']}-year bands" if d["age_band"] else "withheld"
            lines += [
                (f"**{recipient.name}** — quasi-identifiers {', '.join(qis)}, and the categories other "
                 f"recipients know of named people or that follow from age: {', '.join(dict.fromkeys(identifying))}:"),
                "",
                "| measure | value |",
                "|---|---|",
                f"| rows in scope | {d['rows']:,} |",
                f"| rows published | {table.num_rows:,} |",
                f"| **k measured on the decrypted product** | **{k}** ({classes:,} classes) |",
                f"| classes where everyone has a sensitive category | {sum(homogeneous.values())} ({', '.join(homogeneous)}) |",
                (f"| generalisation | age/birth year: {band}; "
                 f"area: {d['area'] or 'withheld'}; sex: {'shown' if d['sex_shown'] else 'withheld'} |"),
                f"| rows with quasi-identifiers withheld | {d['rows_suppressed']:,} ({d['rows_suppressed'] / max(d['rows'], 1):.2%}) |",
                f"| rows left out | {d['rows_left_out']:,} ({d['rows_left_out'] / max(d['rows'], 1):.2%}) |",
                f"| category flags withheld (area cells under {recipient.k_anonymity.min_count}) | {d['flags_withheld']:,} |",
                f"| build (query, pseudonyms, de-identification, encryption) | {seconds:.1f} s, peak RSS {rss / 1024:,.0f} MB (was {rss0 / 1024:,.0f} MB) |",
                "",
            ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, nargs="+", default=[20_000, 1_000_000])
    parser.add_argument("--out", type=Path, default=None, help="write the results as markdown here")
    args = parser.parse_args()
    lines = [
        "# k-anonymity of the analyst products",
        "",
        (f"`.venv/bin/python benchmarks/anonymity.py --persons {' '.join(map(str, args.persons))}` on "
         f"{date.today().isoformat()}, {platform.machine()}, {platform.python_version()}, "
         f"{_cpus()} CPUs; demo policy (`demo/policy.yaml`), population from `demo.population` "
         f"(reference date {REFERENCE_DATE})."),
        "",
    ]
    for n in args.persons:
        lines += measure(n)
        print("\n".join(lines), flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    main()
