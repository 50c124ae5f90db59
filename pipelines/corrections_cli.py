"""``silobreaker corrections export``: hand a department back what to correct, in its own form.

    silobreaker corrections export --source S [--out FILE]   S's quarantined rows and its records other
                                                             departments disagree with, in S's own columns,
                                                             format and encoding, with Chinese columns saying
                                                             what is wrong, how sure, and how to correct it
    silobreaker quarantine export --source S [--out FILE]    the same command and file (its older name)

The next run counts what the department corrected (``fixed`` and ``conflicts_fixed`` in
``quality_metrics``); the run summary shows both on each source's line (``pipelines.summary``).
See ``docs/quality.md``, "The corrections round trip".
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from core.config import suggest
from core.errors import ConfigError, SilobreakerError
from core.home import HOME_ENV, DataHome
from pipelines.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

    from connectors import SourceConfig
    from publish import WarehouseReader

__all__ = ["add_corrections_commands"]

def _cmd_corrections_export(args: argparse.Namespace) -> int:
    from connectors import load_sources
    from publish import WarehouseReader
    from quality.corrections import build_corrections
    from quality.quarantine import export_suffix, write_department_file

    base = Settings.from_env(args.home)
    home = base.home
    sources_file = Path(args.sources).resolve() if args.sources else base.sources_file
    declared = {s.name: s for s in load_sources(sources_file).sources}
    if args.source not in declared:
        raise ConfigError(
            f"数据源 {args.source!r} 未在 {sources_file} 中声明 / --source {args.source!r} is not declared in "
            f"{sources_file}{suggest(args.source, list(declared))}; declared sources: {', '.join(declared)}")
    source = declared[args.source]
    reader = WarehouseReader(home)
    quarantine = _latest_quarantine(home, reader, source.name)
    disagreements = reader.disagreements(source.name) if source.holds_persons else None
    raw = _department_rows(home, reader, source) if disagreements is not None and len(disagreements) else None
    departments = {**reader.departments(), **{s.name: s.department for s in declared.values()}}
    departments = {name: departments[name] for name in [*declared, *departments] if name in departments}
    corrections = build_corrections(source, quarantine, disagreements, raw=raw, departments=departments)
    out = Path(args.out) if args.out else home.corrections_file(source.name, export_suffix(source))
    path = write_department_file(source, corrections.rows, out)
    print(f"corrections for {source.name} ({source.department}) written to {path}: "
          f"{corrections.quarantined} quarantined row(s), {corrections.likely_wrong + corrections.to_verify} "
          f"record(s) other departments disagree with ({corrections.likely_wrong} 较确定, {corrections.to_verify} 待核实)")
    if corrections.rows_not_found:
        print(f"  {corrections.rows_not_found} disputed record(s) are no longer in {source.name}'s extract: "
              "their rows carry the key and the disputed column only")
    return 0


def _latest_quarantine(home: DataHome, reader: WarehouseReader, source: str) -> pd.DataFrame:
    """The latest attempt's quarantine (so a blocked run's rows can be corrected too), else the published one."""
    from core.frames import DamagedFrameError
    from pipelines.storage import stored_frame

    try:
        quarantine = stored_frame(home, f"quarantine_{source}")
    except DamagedFrameError as e:
        print(f"WARNING {source}: the latest run's quarantine cannot be read ({e}); the published one is exported")
        quarantine = None
    if quarantine is not None:
        return quarantine
    if not reader.exists:
        raise ConfigError(f"尚未运行，没有可导出的数据 / nothing to export for source {source!r} under {home}: "
                          "run the pipeline first (silobreaker run), then export")
    return reader.quarantined_rows(source)


def _department_rows(home: DataHome, reader: WarehouseReader, source: SourceConfig) -> pd.DataFrame | None:
    """The department's rows as its system holds them now, read again through its connector, or
    ``None`` (said why) if it cannot be read: the disputed records then carry their key columns only."""
    from connectors import read_source

    try:
        extract = read_source(source, home)
    except SilobreakerError as e:
        print(f"WARNING {source.name}: could not read the source again ({e}); disputed records are written "
              "with their key and the disputed column only")
        return None
    published = reader.extraction(source.name)
    if published is not None and published[1] != extract.lineage.content_hash:
        print(f"NOTE {source.name} changed since run {published[0]} read it: each disputed record's row is "
              "shown as the department holds it now, 本部门的值 as that run read it")
    return extract.frame


def _export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, help="source name from sources.yaml, e.g. health")
    parser.add_argument("--out", help="file to write (default <home>/corrections/<source>.csv, or .xlsx for an "
                                      "Excel source); a .xlsx name writes a workbook")
    parser.add_argument("--home", help=f"data home (default ${HOME_ENV} or ./var)")
    parser.add_argument("--sources", help="sources.yaml (default $SILOBREAKER_SOURCES or the demo's)")
    parser.set_defaults(func=_cmd_corrections_export)


def add_corrections_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``corrections export`` and its older name ``quarantine export`` on the CLI's subparsers."""
    what = ("write a source's quarantined rows and the records other departments disagree with, in its own "
            "columns, format and encoding, with Chinese columns saying what to correct")
    corrections = sub.add_parser("corrections", help="give a department back what to correct, in its own form")
    corrections_sub = corrections.add_subparsers(dest="corrections_command", required=True)
    _export_arguments(corrections_sub.add_parser("export", help=what, description=what))
    alias = ("the same as `corrections export`, which writes the same file: quarantined rows first, then the "
             "records other departments disagree with")
    quarantine = sub.add_parser("quarantine", help="work with quarantined rows (see also: corrections)")
    quarantine_sub = quarantine.add_subparsers(dest="quarantine_command", required=True)
    _export_arguments(quarantine_sub.add_parser("export", help=alias, description=alias))
