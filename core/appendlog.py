"""A small append-only table in the data home, kept outside the warehouse each run replaces.

What people decide between runs — a reviewer's verdict on a pair of records, a grid worker's action on a
warning — must outlive the warehouse, which every publication replaces whole. Each is a Parquet file
appended one row at a time and replaced atomically; the next run reads it and applies the latest row per
subject. :class:`AppendLog` is that file; :class:`dedup.review.DecisionLog` and
:class:`publish.risks.WarningActions` say what their rows are.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from core.errors import TerminalError

__all__ = ["AppendLog"]


class AppendLog:
    """An append-only Parquet table at ``path``.

    Args:
        path: the file.
        empty: an empty frame with the table's columns (what :meth:`load` gives before the first row).
        what: what the rows are, for messages ("the review decisions").
        restore: how to get the file back if it cannot be read.
        normalize: applied to what is read and to every row appended (types, column order).
    """

    def __init__(self, path: Path, empty: Callable[[], pd.DataFrame], what: str, restore: str,
                 normalize: Callable[[pd.DataFrame], pd.DataFrame] = lambda frame: frame) -> None:
        self.path = Path(path)
        self._empty, self._what, self._restore, self._normalize = empty, what, restore, normalize

    def load(self) -> pd.DataFrame:
        """Every row appended so far (the empty frame when none was).

        Raises:
            TerminalError: the file cannot be read; the message says how to restore it.
        """
        if not self.path.exists():
            return self._empty()
        try:
            return self._normalize(pd.read_parquet(self.path))
        except (OSError, ValueError) as e:
            raise TerminalError(f"{self.path}: cannot read {self._what}: {e}; {self._restore}") from e

    def append(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Append ``rows`` and return them as kept; the file is replaced whole or not at all.

        Raises:
            TerminalError: the file cannot be written.
        """
        rows = self._normalize(rows)
        combined = pd.concat([self.load(), rows], ignore_index=True) if self.path.exists() else rows
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.partial")
        try:
            combined.to_parquet(partial, index=False)
            partial.replace(self.path)
        except OSError as e:
            partial.unlink(missing_ok=True)
            raise TerminalError(f"cannot write {self.path}: {e}; check the directory is writable") from e
        return rows
