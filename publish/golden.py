"""SQL that turns linked source records into one golden record per person.

Each golden field comes from the best record that has it: a valid resident ID before an invalid
one, a day-precise birth date before a census year-month, the most recent address (people move: the
department that saw them last knows where they live, and the area is chosen by recency too), then the
more trusted source (order declared in ``sources.yaml``), then the most recent record. The source and date of every chosen
value are kept beside it, and fields the departments disagree on are listed in ``conflict_fields``.

A grid worker's update (a ``role: grid_updates`` source) is what someone saw at the door: for the phone and
for whether the person lives alone the newest update is taken before any department's register; for the
rest it ranks by its trust like any source, but the address it gives for a flat a department has written for the
person (兰亭社区5-2-401 on a phone change) is shown in the department's fuller words. ``residence_status`` (在住 / 迁出 / 死亡) is the newest
statement of any source. ``hukou_address`` (户籍地址) comes from the base register first (``base: true``, the
census), and ``residence_type`` compares it with where the person lives: the same flat (人户一致), another
flat in the district (人户分离, the 户籍地 names a community of the area register) or registered outside the
district (流动人口); unknown without a 户籍地址, and without an area register unless the flats agree.

People whose golden addresses point to one flat are taken as one household (``household_size`` and its
members of working age, elderly and children, counted without people reported moved out or deceased): what
一老一小 and 留守 categories need, as far as the departments' addresses can tell it.

Street, community and grid are chosen together, by recency, among the areas departments state and the
areas their addresses name in the district's area register (``person_areas``, :mod:`publish.areas`).
Key-population flags and ``key_populations`` follow the categories of ``populations.yaml``
(:mod:`publish.populations`).

A record keyed with another resident's ID number (``id_number_disputed``, an ID-sharing conflict) does
not give its person that number: the number is its holder's, and a recipient looking a person up by it
must find the holder alone. A person whose only number is such a borrowed one has ``id_number`` null
and ``id_number_disputed`` true, until a reviewer judges the records one person or the department
corrects the record.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import duckdb
import pandas as pd

from dedup.prepare import household_key
from publish.areas import AreaRegister, add_address_places, add_person_areas, address_areas, trust_rank_sql
from publish.populations import KeyPopulations, default_populations, present_sql
from publish.sqltext import literal, literals, of_persons
from staging.schema import empty_canonical_frame

__all__ = [
    "GOLDEN_FIELDS",
    "PICK_RECORDS",
    "GoldenRecords",
    "add_hukou_places",
    "age_sql",
    "field_conflicts_sql",
    "golden_columns",
    "person_consent_sql",
]

def _newest_first(expr: str) -> str:
    """A sort-key part (ascending text) putting the latest day of ``expr`` first and null last."""
    return f"lpad(coalesce(CAST(DATE '2999-12-31' - CAST({expr} AS DATE) AS VARCHAR), '999999'), 6, '0')"


def _true_first(expr: str) -> str:
    """A sort-key part (ascending text) putting ``expr`` true first, then false, then null."""
    return f"CASE WHEN {expr} THEN '0' WHEN NOT ({expr}) THEN '1' ELSE '2' END"


#: Fields chosen per person, with the sort-key parts that make one value better than another, before
#: the common tail (trust, recency, record id). A part is fixed-width text, smallest best: the parts
#: are joined into one text key and the best record is ``arg_min`` of it — a streaming aggregate,
#: where ``first(… ORDER BY …)`` holds and sorts every record of every person once per column.
GOLDEN_FIELDS: dict[str, tuple[str, ...]] = {
    "name": (),
    "sex": (_true_first("id_sex IS NOT NULL AND sex = id_sex"),),
    "birth_date": ("CASE birth_date_precision WHEN 'day' THEN '0' WHEN 'month' THEN '1' ELSE '2' END",),
    "id_number": (_true_first("id_number_valid"),),
    "phone": (),
    # People move: the newest record knows where they live now, as the area (chosen by recency) does,
    # so a grid's list never shows a resident at an address outside the grid.
    "address": (_newest_first("record_date"),),
    "hukou_address": (),
    "residence_status": (_newest_first("record_date"),),
}
"""Fields chosen per person one by one. The area (street, community, grid) is chosen as a whole
(``person_areas``, :func:`publish.areas.add_person_areas`)."""

#: Records a golden field may not come from, beyond those without the field.
_GOLDEN_EXCLUDES: dict[str, str] = {"id_number": "coalesce(id_number_disputed, false)"}

#: When a person's records disagree on a field, as an aggregate over the person's records. A flat
#: written two ways (示范区西溪街道翠苑社区3幢2单元501室 / 西溪街道翠苑社区3-2-501) is one flat: addresses
#: are compared by the flat they point to (``flat``, :func:`dedup.prepare.household_key`), as text
#: only where no flat can be read. Birth dates are compared at the precision both sides have: day
#: against day, and everyone at year-month (the census knows only the month).
_CONFLICTS: dict[str, str] = {
    "name": "min(name) <> max(name)",
    "sex": "min(sex) <> max(sex)",
    "birth_date": ("min(birth_date) FILTER (WHERE birth_date_precision = 'day') "
                   "<> max(birth_date) FILTER (WHERE birth_date_precision = 'day') "
                   "OR min(substr(birth_date, 1, 7)) <> max(substr(birth_date, 1, 7))"),
    "id_number": "min(CASE WHEN id_number_valid THEN id_number END) <> max(CASE WHEN id_number_valid THEN id_number END)",
    "address": "min(coalesce(flat, address)) <> max(coalesce(flat, address))",
    "residence_status": "min(residence_status) <> max(residence_status)",
}
"""Two different values (missing ones aside) are a smallest and a largest that differ: min and max
stream, where ``count(DISTINCT …)`` keeps every value of every person."""


def add_hukou_places(con: duckdb.DuckDBPyConnection, register: AreaRegister | None, persons: str | None = None) -> None:
    """Create ``_hukou_places(hukou_address, hukou_flat, hukou_community)`` (temporary): for each distinct
    户籍地址 of ``source_records`` (of the persons in the relation ``persons`` only, where given: the ones a
    carried night writes), the flat it points to and the community of ``register`` it names (null where
    none, and always without a register)."""
    addresses = con.execute(f"SELECT DISTINCT hukou_address FROM {of_persons('source_records', persons)} "
                            "WHERE hukou_address IS NOT NULL").df()
    addresses["hukou_flat"] = household_key(addresses["hukou_address"]) if len(addresses) else pd.Series(dtype="string")
    addresses["hukou_community"] = (address_areas(addresses["hukou_address"], register)["community"]
                                    if register is not None and len(addresses) else pd.Series(dtype="string"))
    con.register("_hukou_frame", addresses.astype("string"))
    con.execute("CREATE OR REPLACE TEMP TABLE _hukou_places AS SELECT * FROM _hukou_frame")
    con.unregister("_hukou_frame")


#: Records one aggregate chooses the golden values over. The choice keeps, per person, every field's best
#: value and key and the lists of records and sources: over 2.5M records (1M people) in one aggregate it
#: outgrows DuckDB's memory limit (3 GB on a 24 GB machine) and spills, 10-13 s; in three ranges of
#: person ids, 6-7 s (benchmarks/results/sync.md, 2026-12-05 09:39).
PICK_RECORDS = 1_000_000


@dataclass(frozen=True)
class GoldenRecords:
    """How a district's golden rows are chosen, and the statements writing them into ``unified_population``
    from ``source_records`` (records with their person_id and address places), ``person_areas`` and
    ``_hukou_places``: the golden columns, one column per key population and ``key_populations`` (and, with
    ``consent``, each person's ``effective_consent`` and ``consent`` from ``_consent_maps``).

    Attributes:
        trust: source name -> rank (0 is most trusted) used to choose between departments.
        populations: the key-population categories (default: :func:`publish.populations.default_populations`).
        grid_sources: the ``role: grid_updates`` sources.
        base: the base population register (``base: true``), whose 户籍地址 is taken first.
        register: whether an area register placed the 户籍地址 (``_hukou_places``): without one a 户籍地
            outside the district cannot be told from one inside it.
        consent: join ``_consent_maps`` (:func:`publish.consent.add_consent_maps`).

    Example:
        >>> GoldenRecords({"census": 0}, base="census").write(con, date.today())  # doctest: +SKIP
    """

    trust: Mapping[str, int]
    populations: KeyPopulations | None = None
    grid_sources: Sequence[str] = ()
    base: str | None = None
    register: bool = False
    consent: bool = False

    def write(self, con: duckdb.DuckDBPyConnection, as_of: date, persons: str | None = None,
              into: str = "CREATE TABLE unified_population AS") -> int:
        """Write the rows of every person, or of the persons in the relation ``persons`` (a ``person_id``
        column; a household's size counts the persons given, so give each household whole:
        :mod:`publish.carry`), into ``into`` (``INSERT INTO unified_population BY NAME`` for some persons);
        ages are computed at ``as_of``. Returns the number of rows written."""
        self._add_picked(con, of_persons("source_records", persons))
        try:
            return con.execute(self._rows_sql(as_of, into)).fetchone()[0]
        finally:
            con.execute("DROP TABLE _picked")

    def text(self, as_of: date) -> str:
        """The statements :meth:`write` runs for every person: what a carried row depends on (:mod:`publish.carry`)."""
        return self._picked_sql("source_records") + self._rows_sql(as_of, "CREATE TABLE unified_population AS")

    def _add_picked(self, con: duckdb.DuckDBPyConnection, source: str) -> None:
        """Create ``_picked`` (temporary): each person's chosen values over the records of ``source``."""
        con.execute(f"CREATE OR REPLACE TEMP TABLE _picked AS {self._picked_sql(source)} LIMIT 0")
        for part in _person_ranges(con, source):
            con.execute(f"INSERT INTO _picked {self._picked_sql(part)}")

    def _picked_sql(self, source: str) -> str:
        return _picked_sql(self.trust, self.grid_sources, self.base, source)

    def _rows_sql(self, as_of: date, into: str) -> str:
        populations = self.populations or default_populations()
        consent_columns = ", m.effective_consent, m.consent" if self.consent else ""
        consent_join = "LEFT JOIN _consent_maps m USING (person_id)" if self.consent else ""
        return f"""
{into}
WITH base AS ({_golden_sql(as_of, self.register)}),
flagged AS (
    SELECT *,
    {populations.flags_sql()}
    FROM base
)
SELECT f.*, {populations.list_sql()} AS key_populations{consent_columns}
FROM flagged f {consent_join}
ORDER BY person_id
"""


def _person_ranges(con: duckdb.DuckDBPyConnection, source: str) -> list[str]:
    """``source`` cut into ranges of person ids of about :data:`PICK_RECORDS` records each (whole persons
    in each: ``source_records`` is ordered by person, so a range reads its own row groups)."""
    records = con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
    parts = -(-records // PICK_RECORDS)
    if parts <= 1:
        return [source]
    cuts = con.execute(f"SELECT quantile_disc(person_id, {[i / parts for i in range(1, parts)]}) FROM {source}").fetchone()[0]
    above = [None, *(f"person_id >= {literal(cut)}" for cut in cuts)]
    below = [*(f"person_id < {literal(cut)}" for cut in cuts), None]
    return [f"(SELECT * FROM {source} WHERE {' AND '.join(c for c in bounds if c)})" for bounds in zip(above, below, strict=True)]


@functools.cache
def golden_columns() -> tuple[tuple[str, str], ...]:
    """``(column, DuckDB type)`` of the golden columns, as :class:`GoldenRecords` builds them
    before the key-population columns: what a category's rule may read (:mod:`publish.populations`)."""
    with duckdb.connect() as con:
        con.register("_records", empty_canonical_frame())
        add_address_places(con, "_records", None)
        con.execute("CREATE TABLE source_records AS SELECT CAST(NULL AS VARCHAR) AS person_id, r.*, "
                    "CAST(NULL AS BOOLEAN) AS id_number_disputed, p.* EXCLUDE (address) "
                    "FROM _records r LEFT JOIN _address_places p ON p.address = r.address")
        add_person_areas(con, {})
        add_hukou_places(con, None)
        con.execute(f"CREATE TEMP TABLE _picked AS {_picked_sql({}, (), None, 'source_records')}")
        con.execute(f"CREATE TABLE _golden AS {_golden_sql(date(2000, 1, 1), register=False)}")
        return tuple((row[0], row[1]) for row in con.execute("DESCRIBE _golden").fetchall())


def age_sql(birth_date: str, as_of: date) -> str:
    """A person's age in whole years at ``as_of`` from the text ``birth_date`` (a day, or the census's year-month:
    taken as the 1st), null without one."""
    return (f"CASE WHEN {birth_date} IS NOT NULL THEN CAST(floor(date_diff('month', CAST(rpad(substr({birth_date}, 1, 7), "
            f"7, '-01') || '-' || coalesce(nullif(substr({birth_date}, 9, 2), ''), '01') AS DATE), "
            f"DATE '{as_of.isoformat()}') / 12) AS INTEGER) END")


def _picked_sql(trust: Mapping[str, int], grid_sources: Sequence[str], base: str | None, source: str) -> str:
    """The SELECT of each person's chosen values over the records of ``source`` (a relation of
    ``source_records`` rows): per golden field a ``_pick_<field>`` struct of the value and what goes with it,
    and the aggregates over every record (lists, flags, conflicts). Read as ``_picked`` by :func:`_golden_sql`."""
    # Trust rank (0 most trusted, zero-padded so rank 10 sorts after 9), newest record, smallest record id:
    # computed once per record (``_tail``), ahead of every field's own parts.
    tail = " || ".join((f"lpad(CAST({trust_rank_sql(trust)} AS VARCHAR), 3, '0')", _newest_first("record_date"),
                        "record_id"))
    grid = f"source IN ({literals(grid_sources)})" if grid_sources else "FALSE"
    # What a grid worker saw at the door: the newest update first, before any department's register.
    extras = {**GOLDEN_FIELDS, "phone": (_newest_first(f"CASE WHEN {grid} THEN record_date END"),)}
    if base:
        extras["hukou_address"] = (_true_first(f"source = {literal(base)}"),)
    picks = []
    for field, parts in extras.items():
        key = " || ".join((*parts, "_tail"))
        usable = f"{field} IS NOT NULL" + (f" AND NOT {_GOLDEN_EXCLUDES[field]}" if field in _GOLDEN_EXCLUDES else "")
        # The value with its source and date (and what goes with it) from one record, in one aggregate.
        value = {"v": field, "s": "source", "d": "record_date"}
        if field == "birth_date":  # the precision of the value chosen, as its record states it
            value["p"] = "birth_date_precision"
        if field == "address":  # the flat it points to, which the 户籍地址 is compared with; whether a grid worker wrote it
            value["f"] = "flat"
            value["g"] = grid
        struct = ", ".join(f"'{k}': {v}" for k, v in value.items())
        picks.append(f"arg_min({{{struct}}}, {key}) FILTER (WHERE {usable}) AS _pick_{field}")
    picked_columns = ",\n        ".join(picks)
    conflicts = ", ".join(f"CASE WHEN {test} THEN '{field}' END" for field, test in _CONFLICTS.items())
    return f"""
    SELECT
        person_id,
        {picked_columns},
        coalesce(first(lives_alone ORDER BY record_date DESC NULLS LAST, record_id DESC)
                     FILTER (WHERE {grid} AND lives_alone IS NOT NULL), bool_or(lives_alone)) AS lives_alone,
        bool_or(low_income) AS low_income,
        min(disability_grade) AS disability_grade,
        -- (lists built whole and sorted after: an ordered or DISTINCT aggregate keeps and sorts every record)
        array_to_string(list_sort(list_distinct(list(chronic_disease) FILTER (WHERE chronic_disease IS NOT NULL))), ',')
            AS chronic_disease,
        bool_or(pregnant) AS pregnant,
        bool_or(corrections) AS corrections,
        first(case_type ORDER BY record_date DESC NULLS LAST) FILTER (WHERE case_type IS NOT NULL) AS case_type,
        coalesce(bool_or(id_number_disputed), false) AS id_number_disputed,
        list_sort(list_distinct(list(source))) AS sources,
        list_sort(list(record_id)) AS record_ids,
        count(*) AS record_count,
        list_filter([{conflicts}], lambda x: x IS NOT NULL) AS conflict_fields,
        max(record_date) AS last_seen,
        -- the departments' wordings of each flat, fullest first (then the most trusted): what a grid worker's
        -- shorthand of one stands for
        list({{'f': flat, 'n': -length(address), 'k': _tail, 'a': address}})
            FILTER (WHERE NOT ({grid}) AND flat IS NOT NULL AND address IS NOT NULL) AS _worded
    FROM (SELECT *, {tail} AS _tail FROM {source})
    GROUP BY person_id
"""


#: The address shown: the newest one, but where a grid worker's update gives a flat a department has written for
#: this person (兰亭社区5-2-401 on a phone change, for 示范区南山街道兰亭社区5栋2单元401室), the fullest wording of it
#: (then the most trusted) where that is fuller than the worker's: the update says the person lives there, the
#: register how the address is written. A department's own short form never replaces a worker's full one.
_WORDED_ADDRESS = ("CASE WHEN _pick_address.g THEN coalesce(list_filter(list_sort(_worded), lambda w: w.f = _pick_address.f "
                   "AND length(w.a) > length(_pick_address.v))[1].a, _pick_address.v) ELSE _pick_address.v END")


def _golden_sql(as_of: date, register: bool) -> str:
    """The SELECT of every golden column per person (no key-population columns) from ``_picked``
    (:func:`_picked_sql`)."""
    chosen = []
    for field in GOLDEN_FIELDS:
        chosen += [f"{_WORDED_ADDRESS if field == 'address' else f'_pick_{field}.v'} AS {field}",
                   f"_pick_{field}.s AS {field}_source", f"_pick_{field}.d AS {field}_date"]
        if field == "birth_date":
            chosen.append(f"_pick_{field}.p AS birth_date_precision")
        if field == "address":
            chosen.append(f"_pick_{field}.f AS _address_flat")
    chosen_columns = ", ".join(chosen)
    pick_names = ", ".join(f"_pick_{field}" for field in GOLDEN_FIELDS)
    return f"""
WITH golden AS (
    SELECT person_id, {chosen_columns}, * EXCLUDE (person_id, {pick_names})
    FROM _picked
), aged AS (
    SELECT *,
        CAST(substr(birth_date, 1, 4) AS INTEGER) AS birth_year,
        -- birth_date is text of mixed precision (the census knows the month); analysts get a DATE where
        -- the day is known, and the precision beside it.
        TRY_CAST(CASE WHEN birth_date_precision = 'day' THEN birth_date END AS DATE) AS birth_day,
        {age_sql("birth_date", as_of)} AS age
    FROM golden
), placed AS (
    SELECT *, CASE WHEN {present_sql()} THEN _address_flat END AS _household FROM aged
), households AS (
    -- who else lives at the flat (people reported moved out or deceased aside): the household as far as
    -- the departments' addresses tell it (an aggregate joined back: a window sorts every column by flat)
    SELECT _household, count(*) AS household_size,
        count(*) FILTER (WHERE age BETWEEN 18 AND 59) AS household_working_age,
        count(*) FILTER (WHERE age >= 60) AS household_elderly,
        count(*) FILTER (WHERE age < 14) AS household_children
    FROM placed WHERE _household IS NOT NULL GROUP BY _household
)
SELECT aged.* EXCLUDE (_address_flat, _household, _worded),
    hh.household_size, hh.household_working_age, hh.household_elderly, hh.household_children,
    CASE WHEN aged.hukou_address IS NULL OR aged.address IS NULL THEN NULL
         WHEN aged.hukou_address = aged.address OR h.hukou_flat = aged._address_flat THEN 'registered'
         WHEN h.hukou_community IS NOT NULL THEN 'separated'
         WHEN {'TRUE' if register else 'FALSE'} THEN 'floating' END AS residence_type,
    a.street, a.street_source, a.street_date, a.community, a.community_source, a.community_date,
    a.grid, a.grid_source, a.grid_date, coalesce(a.area_from_address, false) AS area_from_address
FROM placed aged
LEFT JOIN households hh USING (_household)
LEFT JOIN person_areas a USING (person_id)
LEFT JOIN _hukou_places h ON h.hukou_address = aged.hukou_address
"""


def field_conflicts_sql() -> str:
    """``CREATE TABLE field_conflicts``: every value each department holds for a disputed field."""
    unions = "\nUNION ALL\n".join(
        f"""SELECT r.person_id, '{field}' AS field, r.source, r.record_id, CAST(r.{field} AS VARCHAR) AS value
FROM source_records r JOIN unified_population u USING (person_id)
WHERE list_contains(u.conflict_fields, '{field}') AND r.{field} IS NOT NULL"""
        for field in _CONFLICTS
    )
    return f"CREATE TABLE field_conflicts AS\n{unions}\nORDER BY person_id, field, source, record_id"


def person_consent_sql(into: str = "CREATE TABLE person_consent AS") -> str:
    """``CREATE TABLE person_consent``: each person's latest decision per purpose and recipient.

    Decisions name their subject by resident ID number; a decision applies to the person whose
    records carry that number (``consent_subjects``, :func:`publish.consent.consent_subjects_sql`: not
    through a record keyed with another resident's number). The full history stays in ``consent_decisions``.
    Of decisions made at the same instant the more protective is the latest, as in ``consent_effective``.
    ``into``: how the rows are written (a carried night: into a temporary table, :func:`publish.carry.carry_consent`).
    """
    from publish.consent import (
        protective_rank_sql,  # (publish.consent imports this module)
    )

    rank = protective_rank_sql("status")
    return f"""
{into}
WITH decided AS (
    SELECT s.person_id, c.purpose, c.recipient, c.status, c.decided_at, c.channel, c.record_id AS decision_id
    FROM consent_decisions c JOIN consent_subjects s USING (id_number)
)
SELECT person_id, purpose, recipient,
    arg_max(status, (decided_at, {rank})) AS status,
    max(decided_at) AS decided_at,
    arg_max(channel, (decided_at, {rank})) AS channel,
    arg_max(decision_id, (decided_at, {rank})) AS decision_id,
    count(*) AS decisions
FROM decided
GROUP BY person_id, purpose, recipient
ORDER BY person_id, purpose, recipient
"""
