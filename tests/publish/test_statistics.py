"""Small-cell suppression: no published cell is small, and no suppressed cell can be worked out.

An attacker knows every published cell, every published total, that counts are whole numbers
>= 0, and that each line adds up to its total. For every suppressed cell we ask a linear program
for the smallest and largest value consistent with all of that: if they are equal, the cell has
been recovered.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

from publish.statistics import exposed_cells, suppress

THRESHOLD = 5


def with_totals(cells: np.ndarray) -> np.ndarray:
    rows, cols = cells.shape
    table = np.zeros((rows + 1, cols + 1), dtype=np.int64)
    table[:-1, :-1] = cells
    table[:-1, -1] = cells.sum(axis=1)
    table[-1, :] = table[:-1, :].sum(axis=0)
    return table


def recoverable(table: np.ndarray, hidden: np.ndarray) -> list[tuple[int, int]]:
    """Suppressed cells whose value an attacker pins down from the published ones and the sums."""
    rows, cols = table.shape
    unknown = list(zip(*np.nonzero(hidden), strict=True))
    index = {cell: k for k, cell in enumerate(unknown)}
    a_eq, b_eq = [], []
    lines = [[(i, j) for j in range(cols - 1)] + [(i, cols - 1)] for i in range(rows - 1)]
    lines += [[(i, j) for i in range(rows - 1)] + [(rows - 1, j)] for j in range(cols)]
    for line in lines:
        row, rhs = np.zeros(len(unknown)), 0.0
        for position, cell in enumerate(line):
            sign = -1.0 if position == len(line) - 1 else 1.0  # cells minus their total = 0
            if cell in index:
                row[index[cell]] += sign
            else:
                rhs -= sign * table[cell]
        if row.any():
            a_eq.append(row)
            b_eq.append(rhs)
    found = []
    for cell, k in index.items():
        objective = np.zeros(len(unknown))
        objective[k] = 1
        low = linprog(objective, A_eq=a_eq, b_eq=b_eq, bounds=(0, None)).fun
        high = -linprog(-objective, A_eq=a_eq, b_eq=b_eq, bounds=(0, None)).fun
        if high - low < 0.5:
            found.append(cell)
    return found


def test_one_small_cell_takes_three_others_with_it():
    cells = np.array([[20, 3, 15], [12, 30, 18], [25, 14, 40]])
    table = with_totals(cells)
    hidden = suppress(table, THRESHOLD)
    assert hidden[0, 1]  # the primary cell
    assert hidden.sum() == 4  # a rectangle: one more in its row, its column, and the corner between them
    assert recoverable(table, hidden) == []


@pytest.mark.parametrize("seed", range(25))
def test_random_tables_publish_no_small_cell_and_leak_no_suppressed_one(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(2, 9)), int(rng.integers(2, 8)))
    cells = rng.choice([0, 1, 2, 3, 4, 6, 9, 15, 40], size=shape, p=[0.1, 0.1, 0.1, 0.1, 0.1, 0.15, 0.15, 0.1, 0.1])
    table = with_totals(cells)
    hidden = suppress(table, THRESHOLD)
    published = table[~hidden]
    assert not ((published > 0) & (published < THRESHOLD)).any()
    assert exposed_cells(hidden) == []
    assert recoverable(table, hidden) == []


def test_a_lone_suppressed_cell_is_exposed():
    hidden = np.zeros((3, 3), dtype=bool)
    hidden[0, 0] = True
    assert exposed_cells(hidden) == [(0, 0)]
