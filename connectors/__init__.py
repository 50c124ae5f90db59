"""Connect: source declarations (``sources.yaml``) and the readers that turn them into text frames.

The public surface: :func:`load_sources` validates the declarations, :func:`read_source` reads
one into an :class:`Extract` (a frame of ``str``/``None`` plus :class:`Lineage`), and
:class:`SourceReader` is the same as a Dagster resource.
"""

from typing import Any

from connectors.config import SourceConfig, SourcesFile, load_sources
from connectors.extract import read_source
from connectors.files import detect_encoding
from connectors.lineage import Extract, Lineage
from connectors.sql import safe_url

__all__ = [
    "Extract",
    "Lineage",
    "SourceConfig",
    "SourceReader",
    "SourcesFile",
    "detect_encoding",
    "load_sources",
    "read_source",
    "safe_url",
]


def __getattr__(name: str) -> Any:
    # Dagster is imported only when SourceReader is asked for, so reading declarations (the CLI,
    # tests) does not pay for importing Dagster.
    if name == "SourceReader":
        from connectors.resources import SourceReader

        return SourceReader
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
