"""Helpers for the dedup tests: valid resident ID numbers, canonical records built from a few fields, and
a generated demo district's staged person records."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dedup.prepare import REQUIRED_COLUMNS
from staging.normalize import id_check_digit


def valid_id(area: str, birth: str, sequence: str) -> str:
    """An 18-character ID with a correct MOD 11-2 check character, e.g. ``valid_id("330106", "19850312", "001")``."""
    first17 = f"{area}{birth}{sequence}"
    return first17 + id_check_digit(first17)


def broken_check(id_number: str) -> str:
    """The same ID with a wrong check character, as a keying error leaves it."""
    return id_number[:-1] + ("0" if id_number[-1] != "0" else "1")


def mistype(id_number: str, position: int) -> str:
    """The ID with the digit at ``position`` replaced by another digit (one substitution)."""
    digit = id_number[position]
    return id_number[:position] + ("9" if digit != "9" else "8") + id_number[position + 1 :]


def transpose(id_number: str, position: int) -> str:
    """The ID with the characters at ``position`` and ``position + 1`` swapped."""
    chars = list(id_number)
    chars[position], chars[position + 1] = chars[position + 1], chars[position]
    return "".join(chars)


def records(rows: list[dict[str, str]]) -> pd.DataFrame:
    """Canonical records: every required column present, unspecified values empty."""
    frame = pd.DataFrame([{column: row.get(column, "") for column in REQUIRED_COLUMNS} for row in rows])
    for column in sorted({key for row in rows for key in row} - set(REQUIRED_COLUMNS)):
        frame[column] = [row.get(column, "") for row in rows]
    return frame

#: A fixed person-id key, so ids in tests are the same on every run (a district keeps its own key).
ID_KEY = bytes(range(100, 132))


def staged_demo(home: Path, persons: int, seed: int) -> pd.DataFrame:
    """The staged person records of a demo district of ``persons`` generated into ``home``, all sources in one frame."""
    from connectors import load_sources, read_source
    from demo.generate import SOURCES_YAML, generate_demo
    from staging.stage import stage_person_records

    generate_demo(home, persons=persons, seed=seed)
    frames = []
    for cfg in load_sources(SOURCES_YAML).person_sources:
        extract = read_source(cfg, home)
        frames.append(
            stage_person_records(
                extract.frame, source=cfg.name, primary_key=cfg.primary_key, columns=cfg.columns,
                values=cfg.values, date_formats=cfg.date_formats, extracted_at=extract.lineage.extracted_at,
            ).staged
        )
    return pd.concat(frames, ignore_index=True)
