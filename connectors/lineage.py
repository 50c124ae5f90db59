"""What a connector hands on: the extracted frame and where, when and how it was read."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = ["Extract", "Lineage"]


@dataclass(frozen=True)
class Lineage:
    """Where an extract came from, enough to trace and to detect an unchanged source.

    Attributes:
        source: the source name from ``sources.yaml``.
        kind: ``sql``, ``csv``, ``xlsx`` or ``parquet``.
        location: the file path, or the SQLAlchemy URL with the password hidden (plus table).
        extracted_at: when reading started, timezone-aware UTC.
        row_count: rows in the extracted frame.
        content_hash: sha256 hex of the file bytes (files) or of the serialised frame (sql).
        encoding: the text encoding actually used (csv only, else None).
    """

    source: str
    kind: str
    location: str
    extracted_at: dt.datetime
    row_count: int
    content_hash: str
    encoding: str | None = None

    def as_metadata(self) -> dict[str, Any]:
        """The lineage as JSON-able values, e.g. for Dagster ``MaterializeResult`` metadata.

        Example:
            >>> at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
            >>> Lineage("x", "csv", "/d/x.csv", at, 3, "ab", "gb18030").as_metadata()["extracted_at"]
            '2026-01-01T00:00:00+00:00'
        """
        return {
            "source": self.source,
            "kind": self.kind,
            "location": self.location,
            "extracted_at": self.extracted_at.isoformat(),
            "row_count": self.row_count,
            "content_hash": self.content_hash,
            "encoding": self.encoding,
        }

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> Lineage:
        """Rebuild a lineage from :meth:`as_metadata` output (e.g. read back from JSON).

        Raises:
            KeyError: a required key is missing.
            ValueError: ``extracted_at`` is not an ISO 8601 timestamp.
        """
        extracted_at = metadata["extracted_at"]
        if isinstance(extracted_at, str):
            extracted_at = dt.datetime.fromisoformat(extracted_at)
        return cls(
            source=metadata["source"],
            kind=metadata["kind"],
            location=metadata["location"],
            extracted_at=extracted_at,
            row_count=int(metadata["row_count"]),
            content_hash=metadata["content_hash"],
            encoding=metadata.get("encoding"),
        )


@dataclass(frozen=True)
class Extract:
    """A source's rows as text (``str`` or ``None`` in every cell; read back from a run's folder, Arrow-backed
    strings with missing as NA, see :mod:`pipelines.storage`) with their lineage.

    ``truncated_rows`` holds the 0-based positions of rows the reader saw cut off (the last line
    of a CSV that ends mid-row, its last fields missing); staging quarantines them.

    ``unchanged`` says the source holds exactly the content of a lineage the caller already knew
    (``read_source(..., known=...)``): the file was hashed, not parsed, ``frame`` is empty and the
    lineage is the known one with this read's time and location; the staging kept for it applies.
    """

    frame: pd.DataFrame
    lineage: Lineage
    truncated_rows: tuple[int, ...] = ()
    unchanged: bool = False
