"""Raw assets: one per declared source, exactly as its department's system holds it."""

import dagster as dg
import pandas as pd

from assets.run_lifecycle import RunLockResource
from connectors import Extract, Lineage, SourceConfig, SourceReader
from core.errors import SourceError, TransientError
from core.home import DataHome
from staging.reuse import StagingStore

__all__ = ["build_raw_asset", "read_raw"]


def read_raw(source_reader: SourceReader, source: SourceConfig, known: Lineage | None = None) -> Extract:
    """Read ``source`` (see :meth:`SourceReader.extract`), its errors as Dagster asks: a retry for a source
    that did not answer, a failure with silobreaker's own message (source, file, problem, fix) otherwise."""
    try:
        return source_reader.extract(source.name, known)
    except TransientError as e:
        # Only a source that did not answer is worth another try; a wrong column is not.
        raise dg.RetryRequested(max_retries=2, seconds_to_wait=10) from e
    except SourceError as e:
        raise dg.Failure(description=str(e), metadata={
            "source": e.source, "location": e.location, "problem": e.problem, "fix": e.fix}) from e


def build_raw_asset(source: SourceConfig) -> dg.AssetsDefinition:
    """``raw_<source>``: the source's rows, every value a string, with lineage metadata; a file holding the
    bytes whose staging is kept (:mod:`staging.reuse`) is hashed, not parsed, and marked unchanged."""

    @dg.asset(
        name=f"raw_{source.name}",
        group_name=source.name,
        owners=[source.owner or f"team:{source.name}"],
        kinds={source.kind},
        description=f"{source.department} ({source.name}): rows as the source holds them, all values text.",
    )
    def raw(context: dg.AssetExecutionContext, run_lock: RunLockResource, source_reader: SourceReader) -> dg.Output[Extract]:
        known = StagingStore(DataHome.resolve(source_reader.home)).known_extract(source, pd.Timestamp.now("UTC"))
        extract = read_raw(source_reader, source, known)
        context.log.info("%s %d rows from %s", "unchanged:" if extract.unchanged else "read",
                         extract.lineage.row_count, extract.lineage.location)
        return dg.Output(
            extract,
            metadata={**extract.lineage.as_metadata(), "dagster/row_count": extract.lineage.row_count,
                      "unchanged": extract.unchanged},
        )

    return raw
