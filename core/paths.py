"""Where silobreaker keeps what it writes: one data home per deployment."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["HOME_ENV", "data_home"]

HOME_ENV = "SILOBREAKER_HOME"


def data_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Return the data home: ``explicit`` if given, else ``$SILOBREAKER_HOME``, else ``./var``.

    The directory is created if it does not exist. Read at call time, never at import.
    """
    chosen = explicit or os.environ.get(HOME_ENV) or "var"
    home = Path(chosen).expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home
