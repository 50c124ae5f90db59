"""De-identification of analyst row products: generalise and suppress until every row hides in a crowd.

A pseudonymised row of sex, birth year, age and grid is not anonymous: in a district of 20,000
half the people are unique on (sex, birth year, grid), and a department holding names beside the
same fields re-identifies them by a join. Before an analyst product is written, its
quasi-identifiers (the policy's ``k_anonymity.quasi_identifiers``; by default every one of
``QUASI_IDENTIFIERS`` in its columns; with them the key populations others know of named people, and those
derived from age, which stand for the age) are generalised along fixed hierarchies —

- age and birth year: exact → 5-year band → 10 → 20 → withheld (``"65-69"``, ``"1955-1959"``);
- area: grid → community → street → withheld (the finer columns are emptied);
- sex: shown → withheld —

and one level per hierarchy is chosen for the whole product (full-domain generalisation, as ARX
and μ-ARGUS do): of the combinations that leave at most ``max_suppression`` of the rows in an
equivalence class (rows equal on every quasi-identifier) that is smaller than ``k`` or not
``l``-diverse, the one that withholds the fewest hierarchies whole, then loses least: the mean
generalisation height (a hierarchy's level as a share of its height) plus the share of rows
suppressed, then the discernibility metric (each row costs the size of its class). The rows still in a bad class then have
every quasi-identifier withheld; if those rows themselves form a bad class they are left out.

**The same levels from one release to the next.** Two releases generalised differently can be intersected: a
row unique on everything it shows (its categories included) in both is the same person, and a 5-year band of
one night beside the street of the next placed that person in a class smaller than k (seen in an audit of a
20,000-person district, where the budget of suppressed rows was met by one row on one night and missed by one the
next). So the levels of the
product's earlier releases (``previous``: what their audit entries and publication log recorded) are kept while
they are within the suppression budget; when they are not, the levels chosen are the best of those at least as
coarse in every hierarchy as every earlier release's, so that releases only ever coarsen and a row joined across
releases is never placed more finely than the finer release alone places it. Hierarchy by hierarchy: a column
dropped counts as withheld, a column shown anew is not held to anything, and a change in the categories treated
as quasi-identifiers changes nothing of this. A restore does not reset it (the audit log is only appended to).

**l-diversity.** A class of five in which all five are community-corrections cases reveals the
case as surely as a unique row. For every sensitive category the product shows (by default every
shown key population not derived from age), no class may consist only of people in that category. That
is l-diversity of the "yes" only: a class where nobody is in a category does say so of each of its members
(not a chronic patient), which is the kind of fact the category's absence from a row states anyway.

**Small area cells.** An analyst who also holds ``district_statistics`` could count the rows of a
community to recover a cell that table suppresses. So in the row product a category is withheld
from the people of a released area (the finest area columns left) where fewer than ``min_count``
people have it; counted by any area, a category is then 0 or at least ``min_count``.

Everything is DuckDB SQL over the product's rows: one ``GROUP BY`` per combination of levels (at
most 5 × 4 × 2 = 40), linear in people. The achieved k, the levels chosen and what was suppressed
are returned as :class:`Disclosure` and written to the publication log.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass

import duckdb
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from publish.populations import default_populations

__all__ = ["AGE_BANDS", "AREA_LEVELS", "QUASI_IDENTIFIERS", "Disclosure", "KAnonymity", "anonymise", "bad_class_sql", "measure_k"]

#: Columns that identify in combination; the ones an analyst product may hold.
QUASI_IDENTIFIERS = ("sex", "birth_year", "age", "street", "community", "grid")

#: Band width per generalisation level of age and birth year (0: exact); one level past the last withholds.
AGE_BANDS = (0, 5, 10, 20)

#: Area columns from the finest; level i empties the first i of them.
AREA_LEVELS = ("grid", "community", "street")

_NULL = "CAST(NULL AS VARCHAR)"  # a withheld column stays text, not DuckDB's NULL type

log = logging.getLogger(__name__)



class KAnonymity(BaseModel):
    """The de-identification an analyst row product must reach (policy key ``k_anonymity``)."""

    model_config = ConfigDict(extra="forbid")

    k: int = Field(default=5, ge=2, description="every combination of quasi-identifiers shown is shared by at least k rows")
    quasi_identifiers: list[str] | None = Field(
        default=None,
        description=f"columns treated as quasi-identifiers (default: those of {', '.join(QUASI_IDENTIFIERS)} in columns)",
    )
    sensitive: list[str] | None = Field(
        default=None,
        description="key populations no class may consist only of (default: every shown one not derived from age)",
    )
    known_populations: list[str] = Field(
        default_factory=list,
        description="key populations treated as quasi-identifiers, because someone else knows them of named "
        "people (default: those the policy's person-level recipients receive; see SharingPolicy)",
    )
    max_suppression: float = Field(
        default=0.02, ge=0, le=1, description="share of rows whose quasi-identifiers may be withheld at the chosen levels"
    )
    min_count: int = Field(
        default=10, ge=1, description="a category is withheld in a released area where fewer people have it"
    )


@dataclass(frozen=True)
class Disclosure:
    """What de-identification did to one product (the publication log's ``disclosure``)."""

    k_required: int
    k_achieved: int | None
    quasi_identifiers: tuple[str, ...]
    age_band: int | None  # 0 exact, 5/10/20 years, None withheld
    area: str | None  # the finest area column shown, None withheld
    sex_shown: bool
    rows: int
    rows_suppressed: int  # quasi-identifiers withheld
    rows_left_out: int
    flags_withheld: int
    l_diverse: tuple[str, ...]
    levels_from: str = "chosen"  # kept: the earlier releases'; coarsened: those were over budget; chosen: no earlier
    rows_blank: int = 0  # of the rows suppressed, those released (the others were left out after all)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Levels:
    age: int  # index into AGE_BANDS; len(AGE_BANDS) withholds
    area: int  # how many of AREA_LEVELS are emptied
    sex: int  # 1 withholds

    def withholds(self, qis: tuple[str, ...]) -> int:
        """How many hierarchies these levels withhold whole (age, area, sex)."""
        areas = [c for c in AREA_LEVELS if c in qis]
        return (
            int(bool({"age", "birth_year"} & set(qis)) and self.age >= len(AGE_BANDS))
            + int(bool(areas) and self.area >= 1 + AREA_LEVELS.index(areas[-1]))
            + int("sex" in qis and self.sex == 1)
        )

    def height(self, qis: tuple[str, ...]) -> float:
        """Information lost by generalisation: the mean, over the hierarchies present, of the level
        reached as a share of the hierarchy's height (0 exact … 1 withheld)."""
        areas = [c for c in AREA_LEVELS if c in qis]
        shares = []
        if {"age", "birth_year"} & set(qis):
            shares.append(self.age / len(AGE_BANDS))
        if areas:
            levels = [0] + [i for i in range(1, len(AREA_LEVELS) + 1) if AREA_LEVELS[i - 1] in qis]
            shares.append(levels.index(self.area) / (len(levels) - 1))
        if "sex" in qis:
            shares.append(float(self.sex))
        return sum(shares) / len(shares) if shares else 0.0

    def areas_shown(self, qis: tuple[str, ...]) -> list[str]:
        """The area columns these levels show, finest first."""
        return [c for c in AREA_LEVELS if c in qis and AREA_LEVELS.index(c) >= self.area]

    def coarseness(self, qis: tuple[str, ...]) -> tuple[int, int, int]:
        """How coarse these levels are in effect, per hierarchy: the age level, the rank in :data:`AREA_LEVELS` of
        the finest area column shown, whether sex is withheld; a hierarchy not shown is withheld (4, 3, 1). ``a`` is
        at least as coarse as ``b`` when each of ``a``'s is at least ``b``'s."""
        age = self.age if {"age", "birth_year"} & set(qis) else len(AGE_BANDS)
        shown = self.areas_shown(qis)
        area = AREA_LEVELS.index(shown[0]) if shown else len(AREA_LEVELS)
        return age, area, self.sex if "sex" in qis else 1

    @staticmethod
    def coarseness_of(disclosure: Mapping) -> tuple[int | None, int | None, int | None]:
        """:meth:`coarseness` of the levels an earlier release's disclosure (as logged) records; ``None`` for a
        hierarchy it did not show, which holds the next release to nothing (showing a column anew is the policy's
        choice)."""
        qis = set(disclosure.get("quasi_identifiers") or ())
        band, area = disclosure.get("age_band"), disclosure.get("area")
        return ((AGE_BANDS.index(band) if band is not None else len(AGE_BANDS)) if {"age", "birth_year"} & qis else None,
                (AREA_LEVELS.index(area) if area is not None else len(AREA_LEVELS)) if qis & set(AREA_LEVELS) else None,
                int(not disclosure.get("sex_shown")) if "sex" in qis else None)

    def exprs(self, qis: tuple[str, ...]) -> dict[str, str]:
        out = {}
        for column in qis:
            if column in ("age", "birth_year"):
                out[column] = _band_sql(column, self.age)
            elif column in AREA_LEVELS:
                out[column] = _NULL if AREA_LEVELS.index(column) < self.area else f"CAST({column} AS VARCHAR)"
            elif column == "sex":
                out[column] = _NULL if self.sex else "CAST(sex AS VARCHAR)"
            else:
                out[column] = f"CAST({column} AS VARCHAR)"
        return out


def _band_sql(column: str, level: int) -> str:
    if level >= len(AGE_BANDS):
        return _NULL
    width = AGE_BANDS[level]
    if width == 0:
        return f"CAST({column} AS VARCHAR)"
    low = f"({column} // {width} * {width})"
    return f"CAST({low} AS VARCHAR) || '-' || CAST({low} + {width - 1} AS VARCHAR)"


def bad_class_sql(k: int, sensitive: list[str], counted: bool = False) -> str:
    """Aggregate SQL true for a class that is too small or in which everyone has a sensitive category: over
    rows, or (``counted``) over groups of rows already counted (``n`` rows, ``_s<i>`` of them in the i-th
    sensitive category: :func:`_counts_sql`)."""
    if counted:
        return " OR ".join(["sum(n) < " + str(k), *(f"sum(_s{i}) = sum(n)" for i in range(len(sensitive)))])
    homogeneous = [f"count(*) FILTER (WHERE list_contains(key_populations, '{c}')) = count(*)" for c in sensitive]
    return " OR ".join([f"count(*) < {k}", *homogeneous])


def _counts_sql(qis: tuple[str, ...], known: dict[str, str], sensitive: list[str]) -> str:
    """The rows of ``_rows`` counted by their quasi-identifiers as they are and the known categories they show:
    every generalisation of the lattice is a grouping of these groups, and its classes' sizes and sensitive
    counts are sums of theirs (the 983k rows of a 1M district's analyst product: 34,267 groups)."""
    columns = [*qis, *(f"{expr} AS {name}" for name, expr in known.items())]
    counts = ", ".join(["count(*) AS n", *(f"count(*) FILTER (WHERE list_contains(key_populations, '{c}')) AS _s{i}"
                                           for i, c in enumerate(sensitive))])
    return f"SELECT {', '.join(columns) + ', ' if columns else ''}{counts} FROM _rows GROUP BY ALL"


def _lattice(qis: tuple[str, ...]) -> list[_Levels]:
    ages = range(len(AGE_BANDS) + 1) if {"age", "birth_year"} & set(qis) else [0]
    # Emptying an area column the product does not show changes nothing: skip those levels.
    areas = [0] + [i for i in range(1, len(AREA_LEVELS) + 1) if AREA_LEVELS[i - 1] in qis]
    sexes = [0, 1] if "sex" in qis else [0]
    return [_Levels(a, r, s) for a, r, s in itertools.product(ages, areas, sexes)]


def _classes_sql(exprs: dict[str, str], bad: str, source: str = "_rows") -> str:
    """Each row of ``source`` with its released quasi-identifiers and whether its class is bad."""
    released = ", ".join(f"{expr} AS {column}" for column, expr in exprs.items())
    keys = ", ".join(exprs)
    if not exprs:
        return f"SELECT _row, key_populations, (SELECT {bad} FROM {source}) AS _bad FROM {source}"
    return f"""WITH g AS (SELECT _row, {released}, key_populations FROM {source}),
        classes AS (SELECT {keys}, {bad} AS _bad FROM g GROUP BY ALL)
        SELECT g.*, c._bad FROM g JOIN classes c ON {' AND '.join(f'g.{q} IS NOT DISTINCT FROM c.{q}' for q in exprs)}"""


def _known_sql(known: list[str]) -> dict[str, str]:
    """A known category as a quasi-identifier column: whether the row shows it."""
    return {f"_kp{i}": f"CAST(list_contains(key_populations, '{c}') AS VARCHAR)" for i, c in enumerate(known)}


def anonymise(table: pa.Table, rule: KAnonymity, shown_populations: list[str],
              derived_from_age: Collection[str] | None = None,
              previous: Sequence[Mapping] = ()) -> tuple[pa.Table, Disclosure]:
    """Generalise, suppress and withhold ``table`` (an analyst product's rows) until ``rule`` holds.

    Args:
        table: the product's rows; quasi-identifier columns are returned as text (``"65-69"``).
        rule: the policy's ``k_anonymity``.
        shown_populations: the key populations the product may show.
        derived_from_age: key populations that follow from age: not l-diversity categories, and quasi-identifiers
            like the age they stand for (default: those of the default categories,
            :attr:`publish.populations.KeyPopulations.derived_from_age`).
        previous: what the product's earlier releases recorded of their generalisation (their ``disclosure``):
            no hierarchy is released more finely than in any of them, and their levels are kept while within
            budget (see "The same levels from one release to the next" above).
    """
    if derived_from_age is None:
        derived_from_age = default_populations().derived_from_age
    qis = tuple(rule.quasi_identifiers or [c for c in QUASI_IDENTIFIERS if c in table.column_names])
    missing = [c for c in qis if c not in table.column_names]
    if missing:
        raise ValueError(f"k_anonymity.quasi_identifiers {missing} are not columns of the product")
    has_flags = "key_populations" in table.column_names
    # A category derived from age is known to whoever knows a birth date, and tells more than the age shown where
    # the age is banded across its threshold or withheld: a quasi-identifier too (where the band shows it anyway,
    # it splits no class and costs nothing).
    known = [c for c in dict.fromkeys([*rule.known_populations, *derived_from_age]) if c in shown_populations] \
        if has_flags else []
    flags = [c for c in shown_populations if c not in derived_from_age] if has_flags else []
    sensitive = [c for c in (rule.sensitive if rule.sensitive is not None else flags)
                 if c in shown_populations and c not in known]
    bad = bad_class_sql(rule.k, sensitive)
    known_exprs = _known_sql(known)
    rows = table.num_rows
    with duckdb.connect() as con:
        source = table if has_flags else table.append_column(
            "key_populations", pa.array([[]] * rows, pa.list_(pa.string())))
        con.register("_source", source)
        # Only what the classes are made of: the other columns are taken from ``table`` by row at the end
        # (with a copy of every column, a 1M district's analyst product held 1.3 GiB here, now 0.5; sync.md).
        made_of = ", ".join(dict.fromkeys([*qis, "key_populations"]))
        con.execute(f"CREATE TABLE _rows AS SELECT row_number() OVER () - 1 AS _row, {made_of} FROM _source")
        con.execute(f"CREATE TABLE _counts AS {_counts_sql(qis, known_exprs, sensitive)}")
        bad_counted = bad_class_sql(rule.k, sensitive, counted=True)
        counts = ", ".join(["n", *(f"_s{i}" for i in range(len(sensitive)))])

        def cost(levels: _Levels) -> tuple[int, int]:
            # rows in bad classes; discernibility: a kept row costs its class size, a suppressed one every row
            exprs = levels.exprs(qis) | {name: name for name in known_exprs}
            released = ", ".join(f"{expr} AS {column}" for column, expr in exprs.items())
            suppressed, kept = con.execute(
                f"SELECT coalesce(sum(n) FILTER (WHERE _bad), 0), coalesce(sum(n * n) FILTER (WHERE NOT _bad), 0) "
                f"FROM (SELECT sum(n) AS n, {bad_counted} AS _bad FROM (SELECT {released + ', ' if exprs else ''}"
                f"{counts} FROM _counts) GROUP BY {', '.join(exprs) or 'TRUE'})"
            ).fetchall()[0]
            return int(suppressed), int(kept) + int(suppressed) * rows

        costs = {levels: cost(levels) for levels in _lattice(qis)}
        earlier = [_Levels.coarseness_of(d) for d in previous]
        # per hierarchy, the coarsest any earlier release was: no release may be finer, or two intersect
        floor = tuple(max((e[i] for e in earlier if e[i] is not None), default=None) for i in range(3))
        held = any(f is not None for f in floor)
        if held:
            costs = {lv: c for lv, c in costs.items()
                     if all(f is None or a >= f for a, f in zip(lv.coarseness(qis), floor, strict=True))}
        feasible = [lv for lv, (n_bad, _) in costs.items() if n_bad <= rule.max_suppression * rows]
        kept_levels = [lv for lv in feasible
                       if held and all(f is None or a == f for a, f in zip(lv.coarseness(qis), floor, strict=True))]

        def objective(lv: _Levels) -> tuple:
            # Keep every quasi-identifier at some level when that is possible: an analyst can work with
            # age bands and communities, not with a table that has lost age altogether.
            return lv.withholds(qis), lv.height(qis) + costs[lv][0] / max(rows, 1), costs[lv][1]

        chosen = (min(kept_levels or feasible, key=objective) if feasible else min(costs, key=lambda lv: costs[lv]))
        levels_from = "chosen" if not held else "kept" if kept_levels else "coarsened"
        if levels_from == "coarsened":
            log.warning("k-anonymity: the earlier releases' levels (age, area, sex: %s) would suppress more than "
                        "%.0f%% of the rows now; coarsened to %s", floor, rule.max_suppression * 100,
                        chosen.coarseness(qis))
        exprs = chosen.exprs(qis)
        con.execute(f"CREATE TABLE _general AS {_classes_sql(exprs | known_exprs, bad)}")
        con.execute("DROP TABLE _rows; DROP TABLE _counts")  # each step's table let go once the next is made
        suppressed_rows = con.execute("SELECT count(*) FROM _general WHERE _bad").fetchall()[0][0]
        con.execute("CREATE TABLE _suppressed AS SELECT _row FROM _general WHERE _bad")
        # A row still in a bad class has its quasi-identifiers withheld, the categories others know included.
        withheld_qis = ", ".join(f"CASE WHEN _bad THEN {_NULL} ELSE {q} END AS {q}" for q in exprs)
        unknown = " AND ".join(f"k <> '{c}'" for c in known) or "TRUE"
        con.execute(f"""CREATE TABLE _released AS SELECT _row, {withheld_qis + ', ' if exprs else ''}
            CASE WHEN _bad THEN list_filter(key_populations, lambda k: {unknown}) ELSE key_populations END
            AS key_populations FROM _general""")
        con.execute("DROP TABLE _general")
        area_shown = chosen.areas_shown(qis)
        withheld = 0
        if flags:
            cell = ", ".join(area_shown) or "TRUE"
            counts = ", ".join(
                f"count(*) FILTER (WHERE list_contains(key_populations, '{c}')) OVER (PARTITION BY {cell}) AS _n{i}"
                for i, c in enumerate(flags))
            keep = " AND ".join(f"(k <> '{c}' OR _n{i} >= {rule.min_count})" for i, c in enumerate(flags))
            con.execute(f"CREATE TABLE _counted AS SELECT *, {counts} FROM _released")
            withheld = con.execute(
                f"SELECT coalesce(sum(len(key_populations) - len(list_filter(key_populations, lambda k: {keep}))), 0) "
                "FROM _counted").fetchall()[0][0]
            con.execute(
                f"CREATE OR REPLACE TABLE _released AS SELECT * EXCLUDE (key_populations, "
                f"{', '.join(f'_n{i}' for i in range(len(flags)))}), "
                f"list_filter(key_populations, lambda k: {keep}) AS key_populations FROM _counted")
            con.execute("DROP TABLE _counted")
        # Whatever is still in a bad class as released (the withheld rows together, rows a withheld flag
        # moved) is left out: every row published shares its quasi-identifiers with k - 1 others.
        final = {q: q for q in exprs} | known_exprs
        con.execute(f"CREATE TABLE _guard AS {_classes_sql(final, bad, '_released')}")
        left_out = con.execute("SELECT count(*) FROM _guard WHERE _bad").fetchall()[0][0]
        con.execute("DELETE FROM _released WHERE _row IN (SELECT _row FROM _guard WHERE _bad)")
        blank = con.execute("SELECT count(*) FROM _released WHERE _row IN (SELECT _row FROM _suppressed)").fetchall()[0][0]
        released = [c for c in table.column_names if c in exprs or c == "key_populations"]
        kept = con.sql(f"SELECT _row{''.join(', ' + c for c in released)} FROM _released ORDER BY _row").to_arrow_table()
        result = table.take(kept.column("_row"))
        for column in released:
            result = result.set_column(result.column_names.index(column), column, kept.column(column))
        achieved = measure_k(con, "_released", [*exprs, *known_exprs.values()])
    disclosure = Disclosure(
        k_required=rule.k, k_achieved=achieved, quasi_identifiers=(*qis, *known),
        age_band=AGE_BANDS[chosen.age] if chosen.age < len(AGE_BANDS) else None,
        area=area_shown[0] if area_shown else None, sex_shown="sex" in qis and not chosen.sex,
        rows=rows, rows_suppressed=int(suppressed_rows), rows_left_out=int(left_out), flags_withheld=int(withheld),
        l_diverse=tuple(sensitive), levels_from=levels_from, rows_blank=int(blank),
    )
    return result, disclosure


def measure_k(con: duckdb.DuckDBPyConnection, relation: str, quasi_identifiers: list[str]) -> int | None:
    """The smallest number of rows of ``relation`` sharing one combination of ``quasi_identifiers``
    (withheld values are a value like any other); None for no rows."""
    group = ", ".join(quasi_identifiers) or "TRUE"
    return con.execute(f"SELECT min(n) FROM (SELECT count(*) AS n FROM {relation} GROUP BY {group})").fetchall()[0][0]
