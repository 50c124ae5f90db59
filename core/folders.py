"""A folder, or a text file, replaced whole: its new content is written beside it and takes its place in one step."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["replace_text", "replacing_folder"]


@contextmanager
def replacing_folder(folder: Path) -> Iterator[Path]:
    """A fresh, empty folder beside ``folder`` to write into; when the block ends it replaces ``folder``.

    The old folder goes aside before the new one takes its place, so a crash leaves either the old
    content, the new one or none, never a mix; leftovers of an earlier crash are removed first. If the
    block raises, the fresh folder is removed and ``folder`` is left as it was.

    Example:
        >>> with replacing_folder(home.kept_staging_dir("health")) as fresh:  # doctest: +SKIP
        ...     frame.to_parquet(fresh / "staged.parquet")
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    fresh, old = folder.with_name(f".{folder.name}.new"), folder.with_name(f".{folder.name}.old")
    for leftover in (fresh, old):
        shutil.rmtree(leftover, ignore_errors=True)
    fresh.mkdir()
    try:
        yield fresh
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    if folder.exists():
        folder.rename(old)
    fresh.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def replace_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` beside it first, so a crash leaves the old file or the new one, never half."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
