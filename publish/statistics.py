"""Aggregate statistics with small-cell suppression: key populations counted per area.

The table is area × key population, with totals: ``population = 'total'`` is the sum of an area's
cells (person-population memberships: someone elderly *and* disabled counts in both), ``area =
'total'`` the district count of a population, and the corner their sum. Every cell, total included,
holding 1 to ``threshold - 1`` people is suppressed (primary suppression). Then, while any
suppressed cell could be computed exactly from the published cells and the totals — every row and
column is a linear equation, so a cell is exposed when it is the only unknown of an equation, or,
more generally, when its unit vector lies in the row space of the equations over the unknowns — a
complementary cell on one of its lines is suppressed too (secondary suppression). The tests check
the result against an attacker's linear program that also uses non-negativity. Zero cells are
published: they count no one.

People who asked to be deleted (``deletion_requests``) are not counted.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

import duckdb

from publish.policy import Aggregate

__all__ = ["TOTAL", "exposed_cells", "statistics_table", "suppress"]

TOTAL = "total"


def _equations(shape: tuple[int, int]) -> np.ndarray:
    """Linear equations of a table with totals in its last row and column: one per line, ``A @ x = 0``."""
    rows, cols = shape
    equations = []
    for i in range(rows - 1):
        eq = np.zeros(shape)
        eq[i, : cols - 1] = 1
        eq[i, cols - 1] = -1
        equations.append(eq.ravel())
    for j in range(cols):
        eq = np.zeros(shape)
        eq[: rows - 1, j] = 1
        eq[rows - 1, j] = -1
        equations.append(eq.ravel())
    return np.array(equations)


def exposed_cells(suppressed: np.ndarray) -> list[tuple[int, int]]:
    """Suppressed cells whose value follows exactly from the published cells and the line equations.

    A cell is determined exactly when every solution of the homogeneous equations over the
    unknowns leaves it unchanged, i.e. its component is zero in every null-space vector.

    Args:
        suppressed: boolean mask over the table including its totals row and column.
    """
    unknown = np.flatnonzero(suppressed.ravel())
    if len(unknown) == 0:
        return []
    a = _equations(suppressed.shape)[:, unknown]
    _, singular, vh = np.linalg.svd(a)
    rank = int((singular > 1e-9).sum())
    null = vh[rank:]
    free = np.linalg.norm(null, axis=0) > 1e-9 if len(null) else np.zeros(len(unknown), dtype=bool)
    return [divmod(int(flat), suppressed.shape[1]) for flat in unknown[~free]]


def _rectangle(table: np.ndarray, suppressed: np.ndarray, i: int, j: int, threshold: int) -> list[tuple[int, int]]:
    """The cheapest cells that close a rectangle through cell ``(i, j)``: each of its two lines then
    holds two unknowns, and so does each line through the opposite corner."""
    best, best_cost = [], None
    last_row, last_col = table.shape[0] - 1, table.shape[1] - 1
    for k in range(table.shape[0]):
        for m in range(table.shape[1]):
            if k == i or m == j:
                continue
            new = [c for c in ((i, m), (k, j), (k, m)) if not suppressed[c]]
            cost = (
                len(new),
                sum(c[0] == last_row or c[1] == last_col for c in new),  # keep totals published
                sum(int(table[c] < threshold) for c in new),  # complements that blur the sum
                sum(int(table[c]) for c in new),  # lose as few people as possible
            )
            if new and (best_cost is None or cost < best_cost):
                best, best_cost = new, cost
    return best


def suppress(table: np.ndarray, threshold: int) -> np.ndarray:
    """Which cells of ``table`` (totals in the last row and column) must not be published.

    Returns:
        A boolean mask: primary cells (``0 < count < threshold``) and the complementary cells that
        keep every suppressed cell from being computed from the rest. For an exposed cell the
        cheapest rectangle through it is hidden (fewest new cells, then no totals, then cells at or
        above the threshold, then the fewest people); should that not be possible, the cell on its
        lines that leaves the fewest cells exposed.
    """
    suppressed = (table > 0) & (table < threshold)
    last_row, last_col = table.shape[0] - 1, table.shape[1] - 1
    while exposed := exposed_cells(suppressed):
        i, j = exposed[0]
        rectangle = _rectangle(table, suppressed, i, j, threshold)
        if rectangle:
            before = len(exposed)
            for cell in rectangle:
                suppressed[cell] = True
            if len(exposed_cells(suppressed)) < before:
                continue
            for cell in rectangle:
                suppressed[cell] = False
        candidates = []
        for cell in dict.fromkeys([(i, k) for k in range(table.shape[1])] + [(k, j) for k in range(table.shape[0])]):
            if suppressed[cell]:
                continue
            suppressed[cell] = True
            still_exposed = len(exposed_cells(suppressed))
            suppressed[cell] = False
            value = table[cell]
            is_total = cell[0] == last_row or cell[1] == last_col
            candidates.append((still_exposed, value < threshold, value == 0, value, is_total, cell))
        if not candidates:  # both lines already fully hidden: then the cell could not be exposed
            raise AssertionError(f"cell {i, j} exposed with no cell left to suppress")
        suppressed[min(candidates)[-1]] = True
    return suppressed


def statistics_table(con: duckdb.DuckDBPyConnection, aggregate: Aggregate) -> pa.Table:
    """The suppressed long-form counts for ``aggregate``: ``area, population, people, suppressed``.

    ``people`` is null where ``suppressed`` is true.
    """
    counts = ", ".join(f"count(*) FILTER (WHERE coalesce(u.{p}, false)) AS {p}" for p in aggregate.populations)
    frame = con.execute(
        f"""SELECT coalesce(u.{aggregate.by}, '(unknown)') AS area, {counts}
        FROM unified_population u ANTI JOIN deletion_requests d ON d.person_id = u.person_id
        GROUP BY ALL ORDER BY area"""
    ).df()
    areas = [*frame["area"], TOTAL]
    populations = [*aggregate.populations, TOTAL]
    cells = frame[aggregate.populations].to_numpy(dtype=np.int64).reshape(len(frame), len(aggregate.populations))
    table = np.zeros((len(areas), len(populations)), dtype=np.int64)
    table[:-1, :-1] = cells
    table[:-1, -1] = cells.sum(axis=1)
    table[-1, :] = table[:-1, :].sum(axis=0)
    hidden = suppress(table, aggregate.threshold)
    return pa.table({
        "area": [a for a in areas for _ in populations],
        "population": populations * len(areas),
        "people": pa.array([None if h else int(v) for v, h in zip(table.ravel(), hidden.ravel(), strict=True)], pa.int64()),
        "suppressed": hidden.ravel().tolist(),
    })
