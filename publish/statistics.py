"""Aggregate statistics, perturbed and suppressed: key populations counted per area.

The table is area × key population, with totals: ``population = 'total'`` is the sum of an area's
cells (person-population memberships: someone elderly *and* disabled counts in both), ``area =
'total'`` the district count of a population, and the corner their sum.

**Perturbation (the cell-key method of national census outputs).** Every person gets a record key,
a number in [0, 2³²) derived from their person_id with the recipient's secret key; a cell's key is
the sum of its people's record keys modulo 2³², and the cell's published count is its true count
plus a noise looked up from that cell key (:func:`noise_for`: −``noise`` … +``noise``, triangular,
mean 0). The same people give the same cell key, so the same count is published run after run
(no averaging the noise away by asking again), while a cell that gained or lost anyone gets a fresh
draw — so the difference of two runs is not the number of people who came or went. Published
counts are therefore not additive: a total is perturbed on its own.

**Suppression.** Every cell whose perturbed count is below ``threshold`` is suppressed — zeros
included, so a cell that dropped to 0 after a deletion request does not say who the last member
was (primary suppression). Because the rule reads the perturbed count, a suppressed cell is not
known to be below the threshold either. Then, while any suppressed cell could be computed exactly
from the true values of the published cells and the totals — every row and column is a linear
equation, so a cell is exposed when it is the only unknown of an equation, or, more generally,
when its unit vector lies in the row space of the equations over the unknowns — a complementary
cell on one of its lines is suppressed too (secondary suppression). The tests check the result
against an attacker's linear program that also uses non-negativity, and repeat the two-run
differencing attacks.

People who asked to be deleted (``deletion_requests``) or whose consent decision could not be read
(``consent_problems``) are not counted.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from publish.policy import Aggregate

__all__ = ["TOTAL", "cell_keys_sql", "exposed_cells", "noise_for", "perturb", "statistics_table", "suppress"]

TOTAL = "total"
_KEY_SPACE = 2**32


def noise_for(cell_keys: np.ndarray, noise: int) -> np.ndarray:
    """The perturbation of each cell from its cell key: an offset in ``-noise … +noise`` drawn by
    inverse transform from a triangular distribution (weights ``noise + 1 - |offset|``, mean 0).

    The table is public; what keeps the noise unknown is the secret behind the record keys.
    """
    offsets = np.arange(-noise, noise + 1)
    weights = (noise + 1 - np.abs(offsets)).astype(float)
    cdf = np.cumsum(weights) / weights.sum()
    u = (np.asarray(cell_keys, dtype=np.int64) % _KEY_SPACE) / _KEY_SPACE
    return offsets[np.minimum(np.searchsorted(cdf, u, side="right"), len(offsets) - 1)]


def perturb(counts: np.ndarray, cell_keys: np.ndarray, noise: int) -> np.ndarray:
    """True counts plus their cell-key noise, never below 0; an empty cell stays 0."""
    perturbed = np.maximum(counts + noise_for(cell_keys, noise), 0)
    return np.where(counts > 0, perturbed, 0)


def cell_keys_sql(person_id: str = "u.person_id") -> str:
    """SQL for a person's record key, an integer in [0, 2³²) keyed by the secret ``$secret`` (hex)."""
    return f"CAST('0x' || substr(sha256($secret || {person_id}), 1, 8) AS UBIGINT)"


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


def suppress(table: np.ndarray, threshold: int, primary: np.ndarray | None = None) -> np.ndarray:
    """Which cells of ``table`` (totals in the last row and column) must not be published.

    Args:
        table: the true counts.
        threshold: the smallest count that may be published.
        primary: the cells that must be hidden whatever the rest (default ``0 < count < threshold``;
            :func:`statistics_table` passes the cells whose perturbed count is below the threshold).

    Returns:
        A boolean mask: the primary cells and the complementary cells that
        keep every suppressed cell from being computed from the rest. For an exposed cell the
        cheapest rectangle through it is hidden (fewest new cells, then no totals, then cells at or
        above the threshold, then the fewest people); should that not be possible, the cell on its
        lines that leaves the fewest cells exposed.
    """
    suppressed = (table > 0) & (table < threshold) if primary is None else primary.copy()
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


def statistics_table(con: duckdb.DuckDBPyConnection, aggregate: Aggregate, secret: bytes) -> pa.Table:
    """The perturbed, suppressed long-form counts for ``aggregate``: ``area, population, people, suppressed``.

    ``people`` is the perturbed count, null where ``suppressed`` is true. ``secret`` keys the record
    keys (the recipient's pseudonym key): without it the noise of a cell cannot be worked out.
    """
    populations = aggregate.populations
    counts = ", ".join(f"count(*) FILTER (WHERE coalesce(u.{p}, false)) AS n_{i}" for i, p in enumerate(populations))
    keys = ", ".join(f"CAST(coalesce(sum(rk) FILTER (WHERE coalesce(u.{p}, false)), 0) % {_KEY_SPACE} AS BIGINT) AS k_{i}"
                     for i, p in enumerate(populations))
    frame = con.execute(
        f"""SELECT coalesce(u.{aggregate.by}, '(unknown)') AS area, {counts}, {keys}
        FROM (SELECT *, {cell_keys_sql()} AS rk FROM unified_population u) u
        ANTI JOIN deletion_requests d ON d.person_id = u.person_id
        ANTI JOIN consent_problems p ON p.person_id = u.person_id
        GROUP BY ALL ORDER BY area""",
        {"secret": secret.hex()},
    ).df()
    areas = [*frame["area"], TOTAL]
    columns = [*populations, TOTAL]
    shape = (len(areas), len(columns))
    true, cell_keys = np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=np.int64)
    for into, prefix in ((true, "n"), (cell_keys, "k")):
        cells = frame[[f"{prefix}_{i}" for i in range(len(populations))]].to_numpy(dtype=np.int64)
        into[:-1, :-1] = cells.reshape(len(frame), len(populations))
        into[:-1, -1] = into[:-1, :-1].sum(axis=1)
        into[-1, :] = into[:-1, :].sum(axis=0)
    shown = perturb(true, cell_keys, aggregate.noise)
    hidden = suppress(true, aggregate.threshold, primary=shown < aggregate.threshold)
    return pa.table({
        "area": [a for a in areas for _ in columns],
        "population": columns * len(areas),
        "people": pa.array([None if h else int(v) for v, h in zip(shown.ravel(), hidden.ravel(), strict=True)], pa.int64()),
        "suppressed": hidden.ravel().tolist(),
    })
