"""The carried ``source_records``' UPDATE of ``extracted_at``, as written before dd45625 and after, on copies of one warehouse.

``publish.carry.carry_source_records`` sets tonight's extraction time on every carried row. Before dd45625 the UPDATE
read the values from a subquery over the view of tonight's rows (Arrow records joined with ``record_person``); since,
from a temporary table made first. Each form runs on its own fresh copy of ``--warehouse`` (a published 1M-people
generation: ``source_records`` checkpointed on disk, as a carried night finds it), with tonight's rows registered as
Arrow as ``publish.warehouse`` registers them; the two alternate, ``--repeats`` times each.

    .venv/bin/python benchmarks/carry_update.py --warehouse <home>/warehouse/silobreaker.duckdb --repeats 2
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import duckdb

_TONIGHT = "extracted_at + INTERVAL 1 DAY"
_FORMS = {
    "subquery over the view (before dd45625)": [
        """UPDATE source_records s SET extracted_at = n.extracted_at
           FROM (SELECT DISTINCT source, extracted_at FROM _incoming) n
           WHERE n.source = s.source AND s.extracted_at IS DISTINCT FROM n.extracted_at"""],
    "temporary table first (dd45625)": [
        "CREATE OR REPLACE TEMP TABLE _extracted AS SELECT DISTINCT source, extracted_at FROM _incoming",
        """UPDATE source_records s SET extracted_at = n.extracted_at FROM _extracted n
           WHERE n.source = s.source AND s.extracted_at IS DISTINCT FROM n.extracted_at"""],
}


def timed(warehouse: Path, statements: list[str], scratch: Path) -> tuple[float, int]:
    """Seconds the ``statements`` take on a fresh copy of ``warehouse``, and the rows then at tonight's time."""
    copy = scratch / "copy.duckdb"
    shutil.copyfile(warehouse, copy)
    with duckdb.connect(str(copy)) as con:
        con.execute("SET memory_limit = '3GB'")  # as the pipeline sets it on 24 GB
        places = ("person_id", "id_number_disputed", "flat", "address_street", "address_community", "address_grid")
        records = con.sql(f"SELECT * EXCLUDE ({', '.join(places)}) REPLACE ({_TONIGHT} AS extracted_at) "
                          "FROM source_records").to_arrow_table()
        con.register("_records", records)
        con.execute("CREATE TEMP TABLE _mapping AS SELECT record_id, person_id, id_number_disputed FROM record_person")
        con.execute("CREATE TEMP VIEW _incoming AS SELECT m.person_id, r.*, m.id_number_disputed "
                    "FROM _records r JOIN _mapping m USING (record_id)")
        started = time.perf_counter()
        for statement in statements:
            con.execute(statement)
        seconds = time.perf_counter() - started
        (moved,) = con.execute("SELECT count(*) FROM source_records s JOIN (SELECT DISTINCT source, extracted_at "
                               "FROM _incoming) n USING (source, extracted_at)").fetchall()[0]
    copy.unlink()
    return seconds, moved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with duckdb.connect(str(args.warehouse), read_only=True) as con:
        (rows,) = con.execute("SELECT count(*) FROM source_records").fetchall()[0]
    print(f"{rows:,} rows of source_records; duckdb {duckdb.__version__}\n\n| run | form | s | rows at tonight's time |\n"
          "|---|---|---:|---:|")
    with tempfile.TemporaryDirectory(dir=args.warehouse.parent.parent) as scratch:
        for attempt in range(args.repeats):
            forms = list(_FORMS.items())
            for name, statements in forms if attempt % 2 == 0 else forms[::-1]:
                seconds, moved = timed(args.warehouse, statements, Path(scratch))
                print(f"| {attempt + 1} | {name} | {seconds:.2f} | {moved:,} |", flush=True)


if __name__ == "__main__":
    main()
