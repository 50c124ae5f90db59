"""Raw assets: one per declared source, exactly as its department's system holds it."""

import dagster as dg

from assets.run_lifecycle import RunLockResource
from connectors import Extract, SourceConfig, SourceReader
from core.errors import SourceError, TransientError

__all__ = ["build_raw_asset"]


def build_raw_asset(source: SourceConfig) -> dg.AssetsDefinition:
    """``raw_<source>``: the source's rows, every value a string, with lineage metadata."""

    @dg.asset(
        name=f"raw_{source.name}",
        group_name=source.name,
        owners=[source.owner or f"team:{source.name}"],
        kinds={source.kind},
        description=f"{source.department} ({source.name}): rows as the source holds them, all values text.",
    )
    def raw(context: dg.AssetExecutionContext, run_lock: RunLockResource, source_reader: SourceReader) -> dg.Output[Extract]:
        try:
            extract = source_reader.extract(source.name)
        except TransientError as e:
            # Only a source that did not answer is worth another try; a wrong column is not.
            raise dg.RetryRequested(max_retries=2, seconds_to_wait=10) from e
        except SourceError as e:
            # The UI shows silobreaker's own message (source, file, problem, fix) as the failure.
            raise dg.Failure(description=str(e), metadata={
                "source": e.source, "location": e.location, "problem": e.problem, "fix": e.fix}) from e
        context.log.info("read %d rows from %s", extract.lineage.row_count, extract.lineage.location)
        return dg.Output(
            extract,
            metadata={**extract.lineage.as_metadata(), "dagster/row_count": extract.lineage.row_count},
        )

    return raw
