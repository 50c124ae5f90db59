"""One entry point for every kind of source: :func:`read_source`."""

from __future__ import annotations

import logging
from collections.abc import Callable

from connectors._frames import require_columns
from connectors.config import SourceConfig
from connectors.files import read_csv, read_parquet, read_xlsx
from connectors.lineage import Extract, Lineage
from connectors.sql import read_sql
from core.home import HomeLike

__all__ = ["read_source"]

logger = logging.getLogger(__name__)

_READERS: dict[str, Callable[[SourceConfig, HomeLike, Lineage | None], Extract]] = {
    "sql": read_sql,
    "csv": read_csv,
    "xlsx": read_xlsx,
    "parquet": read_parquet,
}


def read_source(cfg: SourceConfig, home: HomeLike, known: Lineage | None = None) -> Extract:
    """Read a declared source into a text frame with its lineage.

    Every cell of the returned frame is a ``str`` or ``None``; column names are stripped of
    surrounding whitespace. Every column named in ``cfg.columns`` and ``cfg.primary_key`` is
    checked to exist.

    Args:
        cfg: the source declaration.
        home: the data home; ``${SILOBREAKER_HOME}`` and relative paths resolve against it.
        known: the lineage of an extract the caller holds the staging of: a file with the same
            bytes is hashed but not parsed, and comes back ``unchanged`` (a database is always read).

    Returns:
        The frame and its :class:`~connectors.lineage.Lineage`.

    Raises:
        SourceError: the source cannot be read or does not match its declaration (terminal).
        SourceUnavailableError: a database did not answer (transient; retry).
        ConfigError: a ``${VAR}`` in the declaration is unset.

    Example:
        >>> extract = read_source(load_sources("sources.yaml").source("health_visits"), DataHome.resolve())  # doctest: +SKIP
        >>> extract.lineage.encoding  # doctest: +SKIP
        'gb18030'
    """
    extract = _READERS[cfg.kind](cfg, home, known)
    lineage = extract.lineage
    if extract.unchanged:
        logger.info("source %s unchanged since %s (%s, sha256=%s): not parsed again", lineage.source,
                    known.extracted_at.isoformat(), lineage.location, lineage.content_hash[:12])
        return extract
    require_columns(cfg, extract.lineage.location, extract.frame.columns, "file" if cfg.kind != "sql" else "result")
    logger.info(
        "extracted %d rows from source %s (%s, %s) sha256=%s",
        lineage.row_count,
        lineage.source,
        lineage.kind,
        lineage.location,
        lineage.content_hash[:12],
    )
    return extract
