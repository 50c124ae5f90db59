"""Where people live against the base register, and what grid workers reported: ``census_gaps`` and ``grid_updates``.

The reports call the census (人口普查, or a district's 实有人口库) the base data. Against it two lists matter
to a grid: people departments know who are absent from it (to be counted on the next visit), and people
only it knows, confirmed by no department nor any grid worker (to be verified: moved away, deceased, or
never served). Both are per grid and leave out people reported moved out or deceased.

``grid_updates`` keeps every update grid workers sent (``role: grid_updates``) with the person it was
linked to, what it stated and whether the golden record now states it: an update the golden record does not
follow (a newer department record says otherwise) is shown, not silently dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

from publish.populations import present_sql
from publish.sqltext import literal, literals

__all__ = ["CENSUS_GAP_LABELS", "census_gaps_sql", "grid_updates_sql"]

CENSUS_GAP_LABELS = {"not_in_census": "部门掌握、普查未登记", "census_only": "仅普查登记、无部门或网格核实"}
"""The two lists of ``census_gaps``, as a grid worker reads them."""

_GAP_COLUMNS = """person_id VARCHAR, gap VARCHAR, gap_label VARCHAR, street VARCHAR, community VARCHAR,
    grid VARCHAR, name VARCHAR, sex VARCHAR, birth_date VARCHAR, address VARCHAR, sources VARCHAR[], last_seen DATE"""


def census_gaps_sql(base: str | None) -> str:
    """``CREATE TABLE census_gaps`` from ``unified_population``: per person living in the district (not
    reported moved out or deceased), ``not_in_census`` if no record of theirs is from ``base``, ``census_only``
    if every record is; empty without a base register (``base: true`` in ``sources.yaml``)."""
    if base is None:
        return f"CREATE TABLE census_gaps ({_GAP_COLUMNS})"
    labels = " ".join(f"WHEN '{gap}' THEN '{label}'" for gap, label in CENSUS_GAP_LABELS.items())
    return f"""
CREATE TABLE census_gaps AS
WITH gaps AS (
    SELECT *, CASE WHEN NOT list_contains(sources, {literal(base)}) THEN 'not_in_census'
                   WHEN len(sources) = 1 THEN 'census_only' END AS gap
    FROM unified_population WHERE {present_sql()}
)
SELECT person_id, gap, CASE gap {labels} END AS gap_label, street, community, grid, name, sex, birth_date, address,
    sources, last_seen
FROM gaps WHERE gap IS NOT NULL
ORDER BY street NULLS LAST, community NULLS LAST, grid NULLS LAST, gap, person_id
"""


def grid_updates_sql(grid_sources: Sequence[str]) -> str:
    """``CREATE TABLE grid_updates``: every record of the ``role: grid_updates`` sources, with its person, what
    it stated (``change``: the 变更类型 as written: 迁出, 死亡, 独居, 电话变更, 迁入 …), who and when, the person's
    grid and status now, and ``taken``: whether the golden record now states what it stated (status, living alone, phone)."""
    columns = """record_id VARCHAR, person_id VARCHAR, source VARCHAR, change VARCHAR, residence_status VARCHAR,
        lives_alone BOOLEAN, phone VARCHAR, note VARCHAR, reported_by VARCHAR, record_date DATE, grid VARCHAR,
        status_now VARCHAR, taken BOOLEAN"""
    if not grid_sources:
        return f"CREATE TABLE grid_updates ({columns})"
    return f"""
CREATE TABLE grid_updates AS
SELECT r.record_id, r.person_id, r.source,
    -- as the worker wrote it; where a source has no 变更类型, what its record states
    coalesce(r.change, CASE WHEN r.residence_status = 'moved_out' THEN '迁出'
         WHEN r.residence_status = 'deceased' THEN '死亡'
         WHEN r.lives_alone THEN '独居'
         WHEN NOT r.lives_alone THEN '不再独居'
         ELSE '在住' END) AS change,
    r.residence_status, r.lives_alone, r.phone, r.note, r.reported_by, r.record_date, u.grid,
    coalesce(u.residence_status, 'present') AS status_now,
    -- the golden record now states what the update stated
    (r.residence_status IS NULL OR coalesce(u.residence_status, 'present') = r.residence_status)
    AND (r.lives_alone IS NULL OR u.lives_alone IS NOT DISTINCT FROM r.lives_alone)
    AND (r.phone IS NULL OR u.phone IS NOT DISTINCT FROM r.phone) AS taken
FROM source_records r JOIN unified_population u USING (person_id)
WHERE r.source IN ({literals(grid_sources)})
ORDER BY r.record_date DESC NULLS LAST, r.record_id
"""
