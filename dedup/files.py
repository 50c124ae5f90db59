"""``silobreaker dedup INPUT OUTPUT``: link the person records of one file, outside the pipeline.

For a data team that wants person ids for an export it holds (a department's register, a merged
spreadsheet) without configuring a source. The file goes through the same engine as the pipeline,
with every column the engine reads: the required ones (:data:`dedup.prepare.REQUIRED_COLUMNS`) and
those of :data:`dedup.prepare.OPTIONAL_COLUMNS` the file has (``community``, ``grid``,
``birth_date_precision``, ``hukou_address``). The statistics say which optional columns were used and
which columns were ignored, so a misspelt header is seen rather than silently dropped.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import TerminalError
from dedup.engine import PhaseHook, link_records
from dedup.ids import PreviousLinking
from dedup.prepare import OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from dedup.settings import LinkSettings

__all__ = ["dedup_file", "explain_path", "format_waterfall"]

log = logging.getLogger(__name__)

_PARQUET_SUFFIXES = {".parquet", ".pq"}
_CSV_SUFFIXES = {".csv", ".txt"}


def dedup_file(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    settings: LinkSettings | None = None,
    *,
    explain: bool = False,
    previous: str | os.PathLike[str] | None = None,
    on_phase: PhaseHook | None = None,
) -> dict[str, Any]:
    """Assign a person id to every record of a parquet or UTF-8 CSV file.

    Args:
        input_path: ``.parquet`` or ``.csv`` (UTF-8, with or without BOM) with columns
            ``record_id, source, name, sex, birth_date, id_number, phone, address``; values may be empty.
            ``sex`` may be ``M``/``F``, ``男``/``女`` or ``1``/``2``. Used when present:
            ``community`` (社区/村, or a postcode; without the column each record's is read from its
            address),
            ``grid``, ``birth_date_precision`` (``day``, ``month`` or ``year``: a census ``1964-05-01``
            at ``month`` is compared as 1964-05) and ``hukou_address`` (户籍地址, compared with the other
            record's address). Other columns are ignored, and listed as such in the statistics.
        output_path: parquet file to write, with ``record_id, person_id``, one row per input record.
            Written to a temporary name first, so a failed run never leaves half a file.
        settings: engine settings; defaults when omitted.
        explain: also write :func:`explain_path` (``<output>.explain.parquet``): every link, near miss,
            vetoed and cut pair with its level per comparison and the waterfall of its match weight —
            ``w_prior`` plus one ``w_<field>`` per comparison adds up to ``match_weight`` — and its
            ``match_probability``.
        previous: a parquet of ``record_id, person_id`` from an earlier run (its OUTPUT): the persons it
            names keep their ids, and none of its ids is given to anyone else.
        on_phase: told as each phase ends: ``read`` (records read), the phases of
            :func:`dedup.engine.link_records`, then ``write`` (rows written).

    Returns:
        Statistics for the CLI to print: input, output, ``optional_columns`` (those used),
        ``ignored_columns``, records, persons, candidate pairs, links, seconds.

    Raises:
        TerminalError: the input is missing, of an unknown kind, unreadable, or lacks a required column.
    """
    started = time.perf_counter()
    source = Path(input_path)
    target = Path(output_path)
    records = _read(source)
    if on_phase:
        on_phase("read", len(records))
    missing = [column for column in REQUIRED_COLUMNS if column not in records.columns]
    if missing:
        raise TerminalError(
            f"{source}: missing required column(s) {', '.join(missing)}; the file needs columns "
            f"{', '.join(REQUIRED_COLUMNS)} (values may be empty), and may have {', '.join(OPTIONAL_COLUMNS)}"
        )
    optional = [column for column in OPTIONAL_COLUMNS if column in records.columns]
    ignored = [str(column) for column in records.columns if column not in (*REQUIRED_COLUMNS, *optional)]
    log.info("%s: optional columns used: %s; ignored: %s", source, ", ".join(optional) or "none", ", ".join(ignored) or "none")
    try:
        result = link_records(records.loc[:, [*REQUIRED_COLUMNS, *optional]], settings, _read_previous(previous),
                              on_phase=on_phase)
    except TerminalError as e:
        raise TerminalError(f"{source}: {e}") from e

    target.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "record_id": pa.array(result.mapping["record_id"].tolist(), type=pa.string()),
            "person_id": pa.array(result.mapping["person_id"].tolist(), type=pa.string()),
        }
    )
    _write_atomically(table, target)
    if explain:
        _write_atomically(pa.Table.from_pandas(result.pairs, preserve_index=False), explain_path(target))
    if on_phase:
        on_phase("write", table.num_rows)
    return {
        "input": str(source),
        "output": str(target),
        "optional_columns": optional,
        "ignored_columns": ignored,
        "records": result.stats["records"],
        "persons": result.stats["persons"],
        "candidate_pairs": result.stats["candidate_pairs"],
        "links": result.stats["links"],
        "model": result.stats.get("model", {}),
        **({"explain": str(explain_path(target))} if explain else {}),
        "seconds": round(time.perf_counter() - started, 3),
    }


def explain_path(output_path: str | os.PathLike[str]) -> Path:
    """Where ``explain=True`` writes the pairs: ``persons.parquet`` → ``persons.explain.parquet``."""
    target = Path(output_path)
    return target.with_name(f"{target.stem}.explain.parquet")


def format_waterfall(pairs: pd.DataFrame, record_id: str) -> str:
    """The waterfall of every explained pair that involves ``record_id``, as text for a reviewer.

    Each pair reads as the prior, then each comparison's level and contribution in bits, then the match
    weight, match probability and decision (with the veto that forbade it, if one did).

    Example:
        >>> print(format_waterfall(pd.read_parquet("persons.explain.parquet"), "census:42"))  # doctest: +SKIP
    """
    fields = [column[2:] for column in pairs.columns if column.startswith("w_") and column != "w_prior"]
    rows = pairs[(pairs["record_id_l"] == record_id) | (pairs["record_id_r"] == record_id)]
    if rows.empty:
        return f"{record_id}: no scored pair (no candidate reached the review band)"
    lines: list[str] = []
    for row in rows.sort_values("match_weight", ascending=False).itertuples(index=False):
        pair = row._asdict()
        lines.append(f"{pair['record_id_l']}  ~  {pair['record_id_r']}   (blocking rule {pair['rule']})")
        lines.append(f"  {'prior':<12}{'':<12}{pair['w_prior']:+8.2f}")
        for name in fields:
            lines.append(f"  {name:<12}{str(pair[name]):<12}{pair['w_' + name]:+8.2f}")
        veto = f", vetoed by {pair['veto']}" if isinstance(pair["veto"], str) else ""
        lines.append(
            f"  {'= weight':<24}{pair['match_weight']:+8.2f}   probability {pair['match_probability']:.6f}"
            f"   -> {pair['decision']}{veto}"
        )
    return "\n".join(lines)


def _write_atomically(table: pa.Table, target: Path) -> None:
    """Write to a temporary name first, so a failed run never leaves half a file."""
    partial = target.with_name(f".{target.name}.partial")
    try:
        pq.write_table(table, partial)
        partial.replace(target)
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise TerminalError(f"cannot write {target}: {e}; check the directory exists and is writable") from e


def _read_previous(path: str | os.PathLike[str] | None) -> PreviousLinking | None:
    if path is None:
        return None
    mapping = _read(Path(path))
    try:
        return PreviousLinking(mapping=mapping)
    except ValueError as e:
        raise TerminalError(f"{path}: {e}") from e


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise TerminalError(f"{path}: no such file; give the path of a .parquet or .csv file of person records")
    suffix = path.suffix.lower()
    try:
        if suffix in _PARQUET_SUFFIXES:
            return pd.read_parquet(path)
        if suffix in _CSV_SUFFIXES:
            # Every value stays text: ID numbers and phones must keep leading zeros and trailing X.
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise TerminalError(
            f"{path}: not UTF-8 (byte {e.start}); re-save the CSV as UTF-8, or declare it as a source "
            f"with encoding: gbk in sources.yaml"
        ) from e
    except (OSError, ValueError, pa.ArrowException) as e:
        raise TerminalError(f"{path}: cannot be read as {suffix[1:]}: {e}") from e
    raise TerminalError(f"{path}: unknown file kind {suffix!r}; use .parquet or .csv (UTF-8)")
