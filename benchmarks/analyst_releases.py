"""Two nights of an analyst's pseudonymised rows: who joining them on the pseudonym, or differencing them, singles out.

Each night's rows of a k-anonymised analyst product (``statistics_analysts`` in the demo policy) are k-anonymous on
their own. For every two consecutive generations of ``--home`` this decrypts the product of each (with the
recipient's key, as the analyst would) and measures two attacks, on the quasi-identifiers the product shows
(``publish.anonymity.QUASI_IDENTIFIERS``) and the categories the releases treated as quasi-identifiers, as their
disclosures record them (those other departments know, and those derived from age such as ``elderly``):

1. **joined on the pseudonym** (``person_key``): a person's class is then the pair of their two classes. How many
   people both nights hold, how many changed quasi-identifiers; the smallest pair class; how many people a pair
   class smaller than k holds, how many are alone in theirs, how many of those changed street, and how many of
   those show a category no other department knows (e.g. ``chronic_patient``). With ``pseudonyms: per_release``
   (the default since 2026-12-06) no pseudonym is in both nights and this finds nothing.
2. **differenced by class**, which needs no pseudonym: the rows of each class (quasi-identifiers and known
   categories) of one night against the next. Where a class gained exactly one row and lost none (a *lone
   arrival*: someone moved in, was born, turned an age band), whoever knows that a person arrived there learns that
   row, its categories included; likewise a *lone departure*. Counted, with how many of those rows show a category
   no other department knows. Since 2026-12-06 each release is held against the last one (``publish.releases``):
   each night's line then says what that held back (its disclosure's ``classes_held`` … ``rows_outdated``).

    .venv/bin/python benchmarks/analyst_releases.py --home <a home with two or more nights>
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.home import DataHome  # noqa: E402
from publish import WarehouseReader, load_policy, product_key, read_product  # noqa: E402
from publish.anonymity import QUASI_IDENTIFIERS  # noqa: E402
from publish.audit import ProductAnchor  # noqa: E402
from publish.crypto import product_metadata  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--recipient", default="statistics_analysts")
    parser.add_argument("--policy", type=Path, default=Path(__file__).resolve().parents[1] / "demo" / "policy.yaml")
    args = parser.parse_args()
    home = DataHome.at(args.home)
    recipient = next(r for r in load_policy(args.policy).recipients if r.name == args.recipient)
    rule = recipient.k_anonymity
    k = rule.k
    with WarehouseReader(args.home).connect() as warehouse:
        logged = dict(warehouse.execute("SELECT audit_seq, disclosure FROM publication_log WHERE recipient = ?",
                                        [args.recipient]).fetchall())
    # The categories the releases treated as quasi-identifiers (the known ones and those derived from age, `elderly`),
    # as their disclosures record them; the policy's known_populations where none does.
    recorded = {q for d in logged.values() if d for q in json.loads(d).get("quasi_identifiers", [])} - set(QUASI_IDENTIFIERS)
    known = ", ".join(f"'{c}'" for c in sorted(recorded) or
                      [c for c in rule.known_populations if c in recipient.shared_key_populations])
    nights = sorted(p.name for p in home.generations_dir.iterdir() if home.generation_product_file(p.name, args.recipient).exists())
    con = duckdb.connect()
    key = product_key(args.home, args.recipient)
    for night in nights:
        con.register(f"t_{night}", read_product(home.generation_product_file(night, args.recipient), key))
    rows = [d[0] for d in con.execute(f"SELECT * FROM t_{nights[0]} LIMIT 0").description]
    qi = [c for c in QUASI_IDENTIFIERS if c in rows]
    categories = f"list_sort(list_filter(key_populations, lambda c: c IN ({known})))" if known else "NULL"
    print(f"{args.recipient}: k = {k}; quasi-identifiers {qi} and the categories {known or 'none'}")
    for night in nights:
        (smallest,) = con.execute(f"SELECT min(n) FROM (SELECT count(*) AS n FROM t_{night} "
                                  f"GROUP BY {', '.join(qi)}, {categories})").fetchone()
        anchor = ProductAnchor.from_metadata(product_metadata(home.generation_product_file(night, args.recipient), key))
        disclosure = json.loads(logged.get(anchor.seq) or "{}") if anchor else {}
        levels = ", ".join(f"{name} {disclosure.get(name, '?')}" for name in ("age_band", "area", "sex_shown", "levels_from"))
        rows_shown = con.execute(f"SELECT count(*) FROM t_{night}").fetchall()[0][0]
        held = ", ".join(f"{name} {disclosure[name]:,}" for name in ("classes_held", "rows_held", "classes_withheld",
                                                                      "rows_withheld", "rows_behind", "rows_outdated")
                         if name in disclosure)
        print(f"  {night}: {rows_shown:,} rows, smallest class {smallest}; levels: {levels}"
              + (f"; held against the last release: {held}" if disclosure.get("held_against") else ""))
    for a, b in zip(nights, nights[1:], strict=False):
        side = ", ".join([*(f"{s}.{c} AS {s}_{c}" for s in "xy" for c in qi),
                          f"{categories.replace('key_populations', 'x.key_populations')} AS x_known",
                          f"{categories.replace('key_populations', 'y.key_populations')} AS y_known"])
        con.execute(f"CREATE OR REPLACE TEMP TABLE pair AS SELECT person_key, y.key_populations AS shown, {side} "
                    f"FROM t_{a} x JOIN t_{b} y USING (person_key)")
        columns = [f"{s}_{c}" for s in "xy" for c in qi] + ["x_known", "y_known"]
        changed = " OR ".join(f"x_{c} IS DISTINCT FROM y_{c}" for c in qi)
        moved = "x_street IS DISTINCT FROM y_street" if "street" in qi else "false"
        both, differs = con.execute(f"SELECT count(*), count(*) FILTER (WHERE {changed}) FROM pair").fetchone()
        small, alone, alone_moved, alone_sensitive, smallest = con.execute(f"""
            WITH sized AS (SELECT *, count(*) OVER (PARTITION BY {', '.join(columns)}) AS n FROM pair)
            SELECT count(*) FILTER (WHERE n < {k}), count(*) FILTER (WHERE n = 1),
                   count(*) FILTER (WHERE n = 1 AND {moved}),
                   count(*) FILTER (WHERE n = 1 AND len(list_filter(shown, lambda c: c NOT IN ({known or "''"}))) > 0),
                   min(n)
            FROM sized""").fetchone()
        print(f"  {a} + {b} joined on person_key: {both:,} people in both, {differs:,} with other quasi-identifiers; "
              f"smallest pair class {smallest or '-'}; {small:,} people in pair classes under {k}, {alone:,} alone in "
              f"theirs ({alone_moved:,} moved street), {alone_sensitive:,} of them showing a category no other "
              "department knows")
        group = ", ".join([*qi, "known"])
        unknown = f"""len(list_filter(shown, lambda c: c NOT IN ({known or "''"}))) > 0"""
        lone = con.execute(f"""
            WITH rows_ AS (
                SELECT '{a}' AS night, {', '.join(qi)}, {categories} AS known, list_sort(key_populations) AS shown
                FROM t_{a}
                UNION ALL
                SELECT '{b}', {', '.join(qi)}, {categories}, list_sort(key_populations) FROM t_{b}),
            cells AS (SELECT {group}, shown, count(*) FILTER (WHERE night = '{a}') AS na,
                             count(*) FILTER (WHERE night = '{b}') AS nb FROM rows_ GROUP BY ALL),
            classes AS (SELECT {group}, sum(greatest(nb - na, 0)) AS gained, sum(greatest(na - nb, 0)) AS lost,
                               bool_or(nb > na AND {unknown}) AS gained_unknown,
                               bool_or(na > nb AND {unknown}) AS lost_unknown
                        FROM cells GROUP BY ALL)
            SELECT count(*) FILTER (WHERE gained = 1 AND lost = 0),
                   count(*) FILTER (WHERE gained = 1 AND lost = 0 AND gained_unknown),
                   count(*) FILTER (WHERE lost = 1 AND gained = 0),
                   count(*) FILTER (WHERE lost = 1 AND gained = 0 AND lost_unknown),
                   count(*) FILTER (WHERE gained + lost > 0), count(*)
            FROM classes""").fetchone()
        print(f"  {a} + {b} differenced by class: {lone[4]:,} of {lone[5]:,} classes changed; {lone[0]:,} lone arrivals "
              f"({lone[1]:,} showing a category no other department knows), {lone[2]:,} lone departures ({lone[3]:,})")


if __name__ == "__main__":
    main()
