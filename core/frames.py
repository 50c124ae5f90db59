"""Frames one step writes for another, or one run keeps for the next: Arrow IPC files (Feather v2, LZ4).

Not parquet: these files are restricted working state, read back whole by silobreaker itself and never
published, and at 1M people a night spent ~25 s writing and reading them as parquet. An Arrow file is
written and read 2-3× faster (2.48M staged records: 1.3 + 0.7 s against 3.3 + 1.8 s; the explained pairs
0.7 + 0.5 s against 1.7 + 1.2 s; ``benchmarks/results/sync.md``) for files ~2.5× larger; pandas, pyarrow
and polars read it.

An Arrow file has no checksum of its own, and a few bytes changed in one (a failing disk, a copy cut short
and patched) are often read without complaint as other values: of 60 random three-byte changes to a
20,000-row frame, 9 read back as different rows and no error (``tests/core/test_frames.py``). Each file is
therefore written with its sha256 beside it (``<name>.arrow.sha256``) and read only when it still has
it: otherwise :class:`DamagedFrameError`, which every reader of kept state takes as "cannot be read" and
does the work again (stages, links or reads the table whole), never publishing what the damaged file says.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather

from core.folders import replace_text

__all__ = ["DIGEST_SUFFIX", "FRAME_SUFFIX", "DamagedFrameError", "read_frame", "read_table", "unreadable_level",
           "write_frame"]

FRAME_SUFFIX = ".arrow"

#: Appended to a frame file's name for the file holding its sha256 (hex).
DIGEST_SUFFIX = ".sha256"


class DamagedFrameError(OSError):
    """A frame file that is not as it was written (or whose digest is missing): not to be read.

    ``unverified``: the file has no digest at all — written before frames had them (expected once, on the first
    night after an upgrade), or its digest was lost."""

    def __init__(self, message: str, *, unverified: bool = False) -> None:
        super().__init__(message)
        self.unverified = unverified


def unreadable_level(error: BaseException) -> int:
    """The level to log that a kept file cannot be read at: INFO for a frame an earlier version wrote without its
    digest (the first night after an upgrade redoes the work, as it should), WARNING for anything else."""
    return logging.INFO if isinstance(error, DamagedFrameError) and error.unverified else logging.WARNING


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` (its index dropped) to ``path``, and its sha256 beside it.

    Written beside and renamed, the digest first: a crash leaves the old file and digest, or a pair that
    disagrees (read as damaged), never a half-written file read as whole."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    try:
        frame.reset_index(drop=True).to_feather(partial, compression="lz4")
        replace_text(_digest_path(path), _sha256(partial))
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def read_frame(path: Path) -> pd.DataFrame:
    """The frame :func:`write_frame` wrote to ``path``, with the dtypes it had.

    Raises:
        DamagedFrameError: the file's sha256 is not the one written beside it, or none was.
    """
    _verify(Path(path))
    return pd.read_feather(path)


def read_table(path: Path) -> pa.Table:
    """The Arrow table :func:`write_frame` wrote to ``path`` (no pandas conversion); raises as :func:`read_frame`."""
    _verify(Path(path))
    return feather.read_table(path)


def _verify(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(path)
    try:
        written = _digest_path(path).read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise DamagedFrameError(f"{path}: no sha256 beside it ({_digest_path(path).name}): written by an earlier "
                                "version, or its digest was lost: it is not read",
                                unverified=True) from None
    except (OSError, ValueError) as e:
        raise DamagedFrameError(f"{path}: its sha256 file cannot be read ({e}): it is not read") from e
    found = _sha256(path)
    if found != written:
        raise DamagedFrameError(f"{path}: changed since it was written (sha256 {found[:12]}…, written {written[:12]}…): "
                                "a failing disk or a copy that altered it; it is not read (check the disk if this "
                                "repeats)")


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + DIGEST_SUFFIX)
