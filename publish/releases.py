"""Analyst row releases that change class by class in steps of at least k, so two nights cannot be differenced.

Each night's analyst rows are k-anonymous on their own (:mod:`publish.anonymity`), but two nights side by side are
not: the rows of one class (its quasi-identifiers as released and the categories others know) are compared from one
release to the next, and where a class gained exactly one row, whoever knows that a person arrived in it (moved into
the street, turned an age band) has found that person's row and its categories; likewise a lone departure. On the
100,000-person demo a day's changes left 92 of 1,147 classes with a lone arrival (``benchmarks/analyst_releases.py``).

So a release is held against the newest one delivered, class by class (the idea of m-invariance, Xiao and Tao 2007, for
republished data): a class is released as it is tonight only where it gained no rows or at least k, and lost none or
at least k, compared with the rows it last showed, neither batch all of one sensitive category, and keeps at least k
rows that are not all of one sensitive category. Any other class is shown as it was last released (*held*: its rows as
they were, people since gone included, each under tonight's pseudonym), and a person whose row is held does not show
in another class as well; a class whose last rows name someone the product must leave out tonight (a deletion request,
or any other reason the product gives), or someone gone whose ID number a deletion request ever named, is *withheld*
whole. A held or withheld class keeps its last released rows as what it is compared with, so it comes back once the
changes against them have gathered to k. Either way the difference of two releases, class by class, is none or at
least k rows.

What the last release showed, with who each row is, is kept in the restricted zone beside the data home's other state
(``DataHome.release_rows_file``), named by the sha256 of the product it was (the audit log's ``content_hash``). A
release is held against the newest one the recipient has received (``LastDeliveries.newest``): after a restore, which
puts an older one in front of it again, the newer one it still holds. Where its kept rows are missing or cannot be
read, its rows are read back from its product file in the generations, who each row is found by recomputing that
release's pseudonyms for tonight's people; a class that would be shown as it was and holds a row of someone not found
is withheld instead (fail closed; a warning says so). Where that file is gone too, or the rows were made at other
generalisation levels or columns, the release is not held (a warning says why; the disclosure's ``held_against`` is
null).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from core.home import DataHome, HomeLike
from publish.anonymity import Disclosure, bad_class_sql
from publish.crypto import DISCLOSURE_METADATA, product_key, product_key_id, product_keys, product_metadata, read_product
from publish.generations import Generations

__all__ = ["Continuity", "HeldRelease", "hold_classes", "hold_release", "load_release", "save_release"]

log = logging.getLogger(__name__)

#: The parquet metadata key of what a kept release was made at (levels, columns): held against only when equal.
_MADE_AT = b"silobreaker.release_made_at"


@dataclass(frozen=True)
class Continuity:
    """How a release was held against the newest one delivered (the publication log's ``disclosure``)."""

    held_against: str | None  # the sha256 of the product held against; None: none (the first, or see ``not_held``)
    classes_held: int = 0  # shown as last released
    rows_held: int = 0
    classes_withheld: int = 0  # not shown: their last rows name someone left out tonight, or there are none
    rows_withheld: int = 0  # tonight's rows of those classes
    rows_behind: int = 0  # tonight's rows not shown as they are (in a held or withheld class)
    rows_outdated: int = 0  # rows shown as they were, not as they are tonight (people since gone, moved, changed)
    not_held: str | None = None  # why an earlier release was not held against
    last_rows: str | None = None  # "kept": its rows as kept; "product": read back from its product file

    def as_dict(self) -> dict:
        return asdict(self)


def _struct(exprs: Sequence[str]) -> str:
    return "struct_pack(" + ", ".join(f"c{i} := {e}" for i, e in enumerate(exprs)) + ")" if exprs else "struct_pack(c := 1)"


def hold_classes(fresh: pa.Table, last: pa.Table | None, k: int, class_exprs: Sequence[str], sensitive: Sequence[str],
                 barred: Sequence[str], against: str | None,
                 deleted_ids: Sequence[str] = ()) -> tuple[pa.Table, pa.Table, Continuity]:
    """Tonight's rows held against the last release's, class by class (see the module's docstring).

    Args:
        fresh: tonight's anonymised rows, with ``_person_id``; a ``person_key`` column is dropped (the caller gives
            the held rows tonight's).
        last: the last release's rows as :func:`save_release` kept them (its columns those of ``fresh`` without
            ``person_key``), or None for a first release.
        k: the product's k.
        class_exprs: SQL over a row's columns whose values make its class (quasi-identifiers as released, the known
            categories).
        sensitive: the categories (of ``key_populations``) no class, and no batch of rows a class gains or loses,
            may consist only of (``publish.anonymity``'s l-diversity).
        barred: person ids the product leaves out tonight: a class whose last rows name one is withheld (as is one
            whose last rows have no ``_person_id``: a release read back from its product file).
        against: the sha256 of the last release's product (recorded in the returned :class:`Continuity`).
        deleted_ids: ID numbers a deletion request ever named: a class whose last rows name one (by ``_id_number``)
            that tonight's rows do not is withheld too (the person asked to be deleted and is no longer in the
            product's population to be barred by person id: their records since removed, or relinked).

    Returns:
        The rows to release (tonight's and the held, ``fresh``'s columns but ``person_key``), the rows to keep as
        this release's (those, and the withheld classes' last rows), and what was held.
    """
    if "person_key" in fresh.column_names:
        fresh = fresh.drop_columns(["person_key"])
    if last is None:
        return fresh, fresh, Continuity(held_against=None)
    last = last.select(fresh.column_names).cast(fresh.schema)
    content = [c for c in fresh.column_names if not c.startswith("_")]
    with duckdb.connect() as con:
        con.register("_barred", pa.table({"p": pa.array(list(barred), pa.string())}))
        con.register("_deleted", pa.table({"n": pa.array(list(deleted_ids), pa.string())}))
        numbered = "_id_number" in fresh.column_names
        for name, rows in (("_fs", fresh), ("_bs", last)):
            con.register("_in", rows)
            con.execute(f"CREATE TEMP TABLE {name} AS SELECT row_number() OVER () - 1 AS _i, _person_id, "
                        f"{'_id_number, ' if numbered else ''}"
                        f"{'key_populations, ' if 'key_populations' in content else ''}"
                        f"{_struct(class_exprs)} AS _cs, {_struct(content)} AS _xs FROM _in")
            con.unregister("_in")
        # Classes and what a row shows numbered once: every comparison below is of integers.
        for struct, number in (("_cs", "_class"), ("_xs", "_content")):
            con.execute(f"CREATE TEMP TABLE {number}_ids AS SELECT {struct}, row_number() OVER () AS {number} "
                        f"FROM (SELECT DISTINCT {struct} FROM (SELECT {struct} FROM _fs UNION ALL SELECT {struct} FROM _bs))")
        for name in ("_f", "_b"):
            con.execute(f"CREATE TEMP TABLE {name} AS SELECT s.* EXCLUDE (_cs, _xs), c._class, x._content FROM {name}s s "
                        "JOIN _class_ids c USING (_cs) JOIN _content_ids x USING (_xs)")
            con.execute(f"DROP TABLE {name}s")
        con.execute("DROP TABLE _class_ids; DROP TABLE _content_ids")
        # A class whose last rows name someone left out tonight, or someone gone who once asked to be deleted, cannot
        # be shown as it was; nor one whose last rows name someone another class's last rows name too (a withheld
        # class keeps the rows it last showed, and its people may show elsewhere since): that person would be in the
        # release twice.
        deleted = ("OR (_id_number IN (SELECT n FROM _deleted) "
                   "AND _id_number NOT IN (SELECT _id_number FROM _f WHERE _id_number IS NOT NULL))") if numbered else ""
        # Nor one whose last rows are not known to be whose (read from the product file, the kept rows being lost), nor
        # one whose last rows would not make a good class by tonight's rule (k raised since, say).
        bad = bad_class_sql(k, list(sensitive))
        con.execute(f"""CREATE TEMP TABLE _barred_classes AS SELECT DISTINCT _class FROM _b
                        WHERE _person_id IN (SELECT p FROM _barred) OR _person_id IS NULL
                           OR _person_id IN (SELECT _person_id FROM _b GROUP BY ALL HAVING count(*) > 1) {deleted}
                        UNION SELECT _class FROM _b GROUP BY _class HAVING {bad}""")
        # A batch of rows a class gains (or loses) all in one sensitive category tells it of whoever is known to have
        # arrived (or left), as a class all in one would.
        populations = "key_populations" if sensitive else "NULL"
        cell_flags = "".join(f", bool_or(list_contains(key_populations, '{c}')) AS _s{i}" for i, c in enumerate(sensitive))
        moved_flags = "".join(f", sum(greatest(nf - nb, 0)) FILTER (WHERE _s{i}) AS _g{i}, "
                              f"sum(greatest(nb - nf, 0)) FILTER (WHERE _s{i}) AS _l{i}" for i in range(len(sensitive)))
        homogeneous = "".join(f" OR (gained > 0 AND _g{i} = gained) OR (lost > 0 AND _l{i} = lost)"
                              for i in range(len(sensitive)))
        con.execute("CREATE TEMP TABLE _held AS SELECT _class FROM _b WHERE false")
        con.execute("CREATE TEMP TABLE _gone AS SELECT _person_id FROM _b WHERE false")
        while True:
            # Each class against its last rows: rows gained and lost (multisets of what a row shows), and whether
            # tonight's rows, less those of people whose last row is shown again, still make a good class.
            grown = con.execute(f"""INSERT INTO _held
                WITH live AS (SELECT * FROM _f WHERE _person_id NOT IN (SELECT _person_id FROM _gone)),
                     cells AS (SELECT _class, _content, count(*) FILTER (WHERE s) AS nf,
                                      count(*) FILTER (WHERE NOT s) AS nb{cell_flags}
                               FROM (SELECT _class, _content, {populations} AS key_populations, true AS s FROM live
                                     UNION ALL SELECT _class, _content, {populations}, false FROM _b) GROUP BY _class, _content),
                     moved AS (SELECT _class, sum(greatest(nf - nb, 0)) AS gained, sum(greatest(nb - nf, 0)) AS lost
                                      {moved_flags}
                               FROM cells GROUP BY ALL),
                     bad AS (SELECT _class FROM live GROUP BY _class HAVING {bad})
                SELECT _class FROM moved
                WHERE (gained BETWEEN 1 AND {k - 1} OR lost BETWEEN 1 AND {k - 1} OR _class IN (SELECT _class FROM bad)
                       {homogeneous})
                  AND _class NOT IN (SELECT _class FROM _held)""").fetchall()[0][0]
            if not grown:
                break
            # A held class's last rows are shown again: their people leave tonight's rows elsewhere.
            con.execute("""CREATE OR REPLACE TEMP TABLE _gone AS SELECT _person_id FROM _b
                           WHERE _class IN (SELECT _class FROM _held EXCEPT SELECT _class FROM _barred_classes)""")
        # Shown not at all: a held class whose last rows name someone left out tonight, or that has none (tonight's
        # rows of a class new since, too few once the people shown elsewhere left them).
        con.execute("""CREATE TEMP TABLE _withheld AS SELECT _class FROM _held
                       WHERE _class IN (SELECT _class FROM _barred_classes) OR _class NOT IN (SELECT _class FROM _b)""")
        fresh_rows = con.sql("""SELECT _i FROM _f WHERE _class NOT IN (SELECT _class FROM _held)
                                    AND _person_id NOT IN (SELECT _person_id FROM _gone) ORDER BY _i""").to_arrow_table()
        held_rows = con.sql("""SELECT _i FROM _b WHERE _class IN (SELECT _class FROM _held)
                                   AND _class NOT IN (SELECT _class FROM _withheld) ORDER BY _i""").to_arrow_table()
        kept_rows = con.sql("SELECT _i FROM _b WHERE _class IN (SELECT _class FROM _withheld) ORDER BY _i").to_arrow_table()
        classes_held, classes_withheld = con.execute(
            "SELECT count(*) FILTER (WHERE _class NOT IN (SELECT _class FROM _withheld)), "
            "count(*) FILTER (WHERE _class IN (SELECT _class FROM _withheld)) FROM _held").fetchall()[0]
        rows_withheld = con.execute("""SELECT count(*) FROM _f WHERE _class IN (SELECT _class FROM _withheld)
                                       AND _person_id NOT IN (SELECT _person_id FROM _gone)""").fetchall()[0][0]
        # What that costs an analyst: tonight's rows not shown as they are, and rows shown that are not tonight's.
        con.register("_fresh_shown", fresh_rows)
        con.register("_held_shown", held_rows)
        behind, outdated = con.execute("""
            WITH shown AS (SELECT _class, _content FROM _f WHERE _i IN (SELECT _i FROM _fresh_shown)
                           UNION ALL SELECT _class, _content FROM _b WHERE _i IN (SELECT _i FROM _held_shown)),
                 cells AS (SELECT _class, _content, count(*) FILTER (WHERE s) AS nr, count(*) FILTER (WHERE NOT s) AS nf
                           FROM (SELECT *, true AS s FROM shown UNION ALL SELECT _class, _content, false FROM _f)
                           GROUP BY ALL)
            SELECT coalesce(sum(greatest(nf - nr, 0)), 0), coalesce(sum(greatest(nr - nf, 0)), 0) FROM cells""").fetchall()[0]
    held = last.take(held_rows.column("_i"))
    released = pa.concat_tables([fresh.take(fresh_rows.column("_i")), held])
    kept = pa.concat_tables([released, last.take(kept_rows.column("_i"))])
    continuity = Continuity(held_against=against, classes_held=int(classes_held), rows_held=held.num_rows,
                            classes_withheld=int(classes_withheld), rows_withheld=int(rows_withheld),
                            rows_behind=int(behind), rows_outdated=int(outdated))
    return released, kept, continuity


def save_release(path: Path, rows: pa.Table, made_at: dict) -> None:
    """Keep a release's rows (``hold_classes``'s second result) at ``path``, with what they were made at."""
    path.parent.mkdir(parents=True, exist_ok=True)
    schema = rows.schema.with_metadata({**(rows.schema.metadata or {}), _MADE_AT: json.dumps(made_at, sort_keys=True)})
    partial = path.with_suffix(".partial")
    # Each page with its checksum: parquet has none by default, and a few bytes changed were read as other rows.
    pq.write_table(rows.cast(schema), partial, write_page_checksum=True)
    partial.chmod(0o600)
    partial.replace(path)


def load_release(path: Path, made_at: dict, columns: Sequence[str]) -> tuple[pa.Table | None, str | None]:
    """The kept rows of a release if they were made at ``made_at`` with ``columns``; else None and why not."""
    if not path.is_file():
        return None, f"its rows were not kept ({path})"
    try:
        rows = pq.read_table(path, page_checksum_verification=True)
        was = json.loads((rows.schema.metadata or {}).get(_MADE_AT, b"{}"))
    except (OSError, ValueError, pa.ArrowException) as e:
        return None, f"its kept rows cannot be read ({path}: {e})"
    if was != made_at:
        return None, f"it was made at other levels ({was}, tonight {made_at})"
    if sorted(rows.column_names) != sorted(c for c in columns if c != "person_key"):
        return None, f"it had other columns ({', '.join(rows.column_names)})"
    return rows, None


#: Kept releases of a recipient besides the one the last delivery showed: a restore of a recent generation finds its own.
_KEEP = 4


@dataclass(frozen=True)
class HeldRelease:
    """Tonight's analyst rows held against the last release delivered (:func:`hold_release`)."""

    rows: pa.Table  # to release, without ``person_key``
    kept: pa.Table  # to keep as this release's (:meth:`keep`)
    continuity: Continuity
    made_at: dict

    def keep(self, home: HomeLike, recipient: str, content_hash: str, delivered_hash: str | None) -> None:
        """Keep this release's rows under its product's sha256 ``content_hash``, and let go of older releases but the
        one last delivered (``delivered_hash``) and the newest few."""
        home = DataHome.at(home)
        folder = home.release_rows_dir(recipient)
        folder.mkdir(parents=True, exist_ok=True)
        for each in (folder.parent, folder):
            each.chmod(0o700)  # who each row is: the owner's only, whatever the umask
        save_release(home.release_rows_file(recipient, content_hash), self.kept, self.made_at)
        older = sorted(home.release_rows_dir(recipient).glob("*.parquet"), key=lambda p: p.stat().st_mtime, reverse=True)
        spared = {home.release_rows_file(recipient, h) for h in (content_hash, delivered_hash) if h}
        for path in older[_KEEP:]:
            if path not in spared:
                path.unlink(missing_ok=True)


def hold_release(table: pa.Table, control: Disclosure, barred: Sequence[str], home: HomeLike, recipient: str,
                 delivered_hash: str | None, deleted_ids: Sequence[str] = (),
                 whose: Callable[[Mapping[str, str]], Mapping[str, tuple]] | None = None) -> HeldRelease:
    """:func:`hold_classes` for ``recipient``'s anonymised rows ``table`` (``control``: what anonymisation did),
    against its release last delivered, the product whose sha256 is ``delivered_hash`` (None: none yet);
    ``barred`` and ``deleted_ids`` as :func:`hold_classes` takes them. ``whose``: given a product's metadata, whom
    each of its ``person_key``s stands for (person id, ID number), to read a release back from its product file
    where its kept rows are lost."""
    # What makes the classes; k may change (a class shown as it was must then hold tonight's k, hold_classes).
    made_at = {"quasi_identifiers": list(control.quasi_identifiers),
               "age_band": control.age_band, "area": control.area, "sex_shown": control.sex_shown}
    last, why, source = None, None, None
    if delivered_hash is not None:
        last, why = load_release(DataHome.at(home).release_rows_file(recipient, delivered_hash), made_at,
                                 table.column_names)
        source = "kept"
        if last is None:
            # What the analyst was given is still in its product file: who each row is comes back from its
            # pseudonyms, recomputed for tonight's people; a class that would be shown as it was and holds a row of
            # someone not found (gone since) is withheld instead (fail closed).
            last, unread = _delivered_rows(home, recipient, delivered_hash, made_at, table.schema, whose)
            source = "product"
            log.warning("%s: the rows of the release last delivered (%s…) were not kept as they were: %s; %s",
                        recipient, delivered_hash[:12], why,
                        "read back from its product file: a class that changed by fewer than "
                        f"{control.k_required} rows since and holds a row of someone no longer in the data is withheld, "
                        "not shown as it was" if last is not None else
                        f"nor can its product file be read back ({unread}): tonight's rows are not held against it, "
                        f"and a class that changed by fewer than {control.k_required} rows since can be told apart by "
                        "comparing the two")
            why = None if last is not None else f"{why}; {unread}"
    class_exprs = [q if q in table.column_names else f"list_contains(key_populations, '{q}')"
                   for q in control.quasi_identifiers]
    rows, kept, continuity = hold_classes(table, last, control.k_required, class_exprs, control.l_diverse,
                                          barred, delivered_hash if last is not None else None, deleted_ids)
    if why is not None:
        continuity = Continuity(held_against=None, not_held=why)
    elif last is not None:
        continuity = replace(continuity, last_rows=source)
    return HeldRelease(rows, kept, continuity, made_at)


def _delivered_rows(home: HomeLike, recipient: str, content_hash: str, made_at: dict, schema: pa.Schema,
                    whose: Callable[[Mapping[str, str]], Mapping[str, tuple]] | None) -> tuple[pa.Table | None, str | None]:
    """The rows of ``recipient``'s product whose sha256 is ``content_hash``, from whichever generation still holds it,
    in ``schema``, ``_person_id`` and ``_id_number`` found by ``whose`` (empty where not, as the other hidden
    columns); else None and why not."""
    home = DataHome.at(home)
    found = next((path for generation in reversed(Generations(home).published())
                  if (path := home.generation_product_files(generation.name).get(recipient)) is not None
                  and hashlib.sha256(path.read_bytes()).hexdigest() == content_hash), None)
    if found is None:
        return None, "no generation holds its product file any more"
    named = product_key_id(found)  # None: written before products named their key, under the current one
    key = product_keys(home, recipient).get(named) if named else product_key(home, recipient)
    if key is None:
        return None, f"no key of {recipient} opens {found}"
    try:
        rows = read_product(found, key, recipient)
        metadata = product_metadata(found, key, recipient)
    except (ValueError, OSError) as e:
        return None, f"{found} cannot be read ({e})"
    disclosure = json.loads(metadata.get(DISCLOSURE_METADATA, "{}"))
    if {name: disclosure.get(name) for name in made_at} != made_at:
        return None, "its product file was made at other levels"
    missing = [f.name for f in schema if not f.name.startswith("_") and f.name not in rows.column_names]
    if missing:
        return None, f"its product file lacks {', '.join(missing)}"
    found_as = whose(metadata) if whose is not None and "person_key" in rows.column_names else {}
    people = [found_as.get(k, (None, None)) for k in rows.column("person_key").to_pylist()] if found_as else []
    hidden = {"_person_id": [p[0] for p in people], "_id_number": [p[1] for p in people]} if people else {}
    columns = [rows.column(f.name).cast(f.type) if not f.name.startswith("_") else
               pa.array(hidden[f.name], f.type) if f.name in hidden else pa.nulls(rows.num_rows, f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema), None
