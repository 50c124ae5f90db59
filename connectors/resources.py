"""The Dagster resource that gives assets access to the declared sources."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from connectors.config import SourcesFile, load_sources
from connectors.extract import read_source
from connectors.lineage import Extract, Lineage
from core.home import DataHome

__all__ = ["SourceReader"]


class SourceReader(dg.ConfigurableResource):
    """Reads the sources declared in a ``sources.yaml``.

    The file is read when a method is called, never when the resource is built, so a broken
    file fails the run that needs it with a :class:`~core.errors.ConfigError`, not the import.

    Example:
        >>> reader = SourceReader(sources_file="sources.yaml", home=dg.EnvVar("SILOBREAKER_HOME"))  # doctest: +SKIP
        >>> reader.extract("civil_affairs").lineage.row_count  # doctest: +SKIP
        1200
    """

    sources_file: str = Field(description="Path of the sources.yaml to read (relative to the working directory).")
    home: str | None = Field(
        default=None,
        description="Data home; when unset $SILOBREAKER_HOME, else ./var. "
        "${SILOBREAKER_HOME} in sources.yaml stands for this directory.",
    )

    def load(self) -> SourcesFile:
        """Read and validate the sources file.

        Raises:
            ConfigError: the file is missing or invalid.
        """
        return load_sources(Path(self.sources_file).expanduser())

    def extract(self, source_name: str, known: Lineage | None = None) -> Extract:
        """Read one declared source.

        Args:
            source_name: a ``name`` from the sources file.
            known: the lineage of an extract whose staging the caller holds; an unchanged file is not
                parsed again (:func:`connectors.read_source`).

        Raises:
            ConfigError: the file is invalid, or no source has that name.
            SourceError: the source cannot be read or does not match its declaration.
            SourceUnavailableError: its database did not answer; retry.
        """
        return read_source(self.load().source(source_name), DataHome.resolve(self.home), known)
