"""Stage a department's extract: map it onto the canonical record, normalise it, quarantine what breaks.

A source's declaration (``sources.yaml``) says which source column holds which canonical field and
how to translate the source's codes (``values``). Staging applies it, normalises every field, derives
the resident-ID columns and cross-checks, and sorts each row into exactly one of two frames:

- ``staged``: rows fit to use; soft problems (a wrong ID check digit, a birth date that disagrees
  with the ID, an implausible phone) are kept visible as flags and counts, not dropped.
- ``quarantine``: rows that break a quarantine rule (cut off in transfer, no key, a repeated key, no
  name or one that is not a name, an ID Excel turned into a number, a malformed ID, an unreadable or
  impossible birth date), each with the rule, the offending value and a message saying how to fix
  it in the source system.

Every extracted row ends up in exactly one of them; staging raises rather than lose one.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core.errors import ConfigError, SourceError
from core.threads import beside
from core.vocabulary import (
    CONSENT_FIELDS,
    CONSENT_STATUS_WORDS,
    CONSENT_STATUSES,
    DATE_FORMATS,
    FIELD_LABELS,
    PERSON_FIELDS,
    RESIDENCE_STATUS_WORDS,
    SEX_CODES,
)
from staging._arrow import STRING, as_arrow, bool_series, python_on_unique, to_series
from staging._rules import (
    KeyedRows,
    QuarantineRule,
    check_conservation,
    constant,
    null_text,
    quarantine,
    quoted,
)
from staging.dates import CHINA_TZ, date_precision, parse_dates, parse_timestamps
from staging.id_numbers import parse_id_numbers
from staging.phones import normalize_phone
from staging.pinyin import name_pinyin
from staging.schema import (
    BOOLEAN_FIELDS,
    CANONICAL_COLUMNS,
    CONSENT_COLUMNS,
)
from staging.text import clean_text, normalize_address, normalize_aliases, normalize_name

__all__ = [
    "MAX_NAME_LENGTH", "REUSABLE_COLUMNS", "UNMAPPED_VALUE_COLUMNS", "ChunkRunner", "KnownRows", "StageResult",
    "stage_consent_records", "stage_person_records",
]

log = logging.getLogger(__name__)

MAX_NAME_LENGTH = 64
"""Longest plausible name, in characters: a minority name with its transliteration fits; a field
that swallowed an address, a note or a whole line of the file does not."""

UNMAPPED_VALUE_COLUMNS: dict[str, str] = {"field": "string", "column": "string", "value": "string", "rows": "Int64"}
"""Columns of :attr:`StageResult.unmapped_values`."""

REUSABLE_COLUMNS: dict[str, str] = {"record_id": "string", "digest": "UInt64"}
"""Columns of :attr:`StageResult.reusable`."""

_EARLIEST_BIRTH_DATE = "1900-01-01"
_PRECISION_LENGTHS = (4, 7, 10)  # YYYY, YYYY-MM, YYYY-MM-DD

# Without a ``values`` map, a field with a closed vocabulary still understands the obvious
# spellings (compared upper-cased; sex codes are the canonical vocabulary's SEX_CODES). A map
# replaces this: it states the source's own codes.
_BOOLEAN_WORDS = {
    **dict.fromkeys(["TRUE", "T", "Y", "YES", "1", "是", "有"], "true"),
    **dict.fromkeys(["FALSE", "F", "N", "NO", "0", "否", "无"], "false"),
}
_GRADE_WORDS = {
    spelling: str(grade)
    for grade, numeral in enumerate("一二三四", start=1)
    for spelling in (str(grade), f"{grade}级", numeral, f"{numeral}级")
}
# Canonical values a ``values`` map may produce for the fields with a closed vocabulary, with an example.
_TARGET_CHECKS = {
    "sex": (lambda target: target.upper() in SEX_CODES, "M"),
    "disability_grade": (lambda target: target.upper() in _GRADE_WORDS, "1"),
    "status": (lambda target: target.lower() in CONSENT_STATUSES, "granted"),
    "residence_status": (lambda target: target.upper() in RESIDENCE_STATUS_WORDS, "moved_out"),
    **dict.fromkeys(BOOLEAN_FIELDS, (lambda target: target.upper() in _BOOLEAN_WORDS, "true")),
}
_TEXT_FIELDS = ("address", "street", "community", "grid", "chronic_disease", "case_type", "hukou_address")
_FREE_TEXT_FIELDS = ("change", "reported_by", "note")  # kept as written, only cleaned
# Emoji, pictographs and other symbols, private-use and format characters: never part of a name.
_SYMBOLS = r"[\p{So}\p{Sk}\p{Co}\p{Cs}\p{Cf}]"
# A number in scientific notation, as Excel shows one it cannot hold exactly: 3.30106E+17.
_EXCEL_NUMBER = r"(?i)^[0-9](?:\.[0-9]+)?e\+?[0-9]+$"
_SHOWN_CHARACTERS = 20


def _empty_unmapped() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in UNMAPPED_VALUE_COLUMNS.items()})


def _empty_reusable() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in REUSABLE_COLUMNS.items()})


def _reusable(record_ids: pa.Array, digests: pa.Array) -> pd.DataFrame:
    """:attr:`StageResult.reusable` of the rows with these record ids and digests."""
    return pd.DataFrame({"record_id": to_series(record_ids, pd.RangeIndex(len(record_ids))),
                         "digest": digests.to_numpy()}).astype(REUSABLE_COLUMNS)


@dataclass(frozen=True)
class StageResult:
    """What staging one extract produced.

    ``len(staged) + len(quarantine)`` always equals the number of extracted rows.

    Attributes:
        staged: rows that passed the quarantine rules, in canonical columns (person:
            ``schema.CANONICAL_COLUMNS``; consent: ``schema.CONSENT_COLUMNS``), extract order.
        quarantine: one row per extracted row that broke a quarantine rule (``schema.QUARANTINE_COLUMNS``).
        soft_problems: counts of soft problems among the staged rows, only those that occurred:
            ``unmapped_value:<field>`` (a value its ``values`` map does not list; staged as missing),
            ``unrecognised_value:<field>`` (not a sex, yes/no, grade or day-precision date; staged as
            missing), ``invalid_id_number``, ``birth_date_conflict``, ``sex_conflict``,
            ``implausible_phone``.
        unmapped_values: which source values the ``values`` maps missed and on how many staged rows
            (columns ``field, column, value, rows``; by field, the commonest first), so the data team can
            extend the map.
        valid_until: the first instant at which an extraction of the same rows would be staged
            differently: a date after the extraction day (a birth date, an ID's birth date, a form's
            date, a consent decision) stops being in the future. ``None`` when no row is dated after
            the extraction, so the staging holds for any later extraction (:mod:`staging.reuse`).
        reusable: the staged rows a later staging may take as they are (:class:`KnownRows`), in extract
            order: each one's ``record_id`` and the digest of the row it was staged from
            (:meth:`staging._rules.KeyedRows.digests`). A row with a soft problem is not among them: it
            is staged again, so the counts and unmapped values stay those of the rows that have them.
    """

    staged: pd.DataFrame
    quarantine: pd.DataFrame
    soft_problems: Mapping[str, int] = field(default_factory=dict)
    unmapped_values: pd.DataFrame = field(default_factory=_empty_unmapped)
    valid_until: pd.Timestamp | None = None
    reusable: pd.DataFrame = field(default_factory=_empty_reusable)

    @classmethod
    def combined(cls, parts: Sequence[StageResult], source: str, extract_rows: int) -> StageResult:
        """The staging of a whole extract from the stagings of its consecutive chunks, in order.

        Raises:
            TerminalError: the chunks' rows do not add up to the extract's (a defect; never expected).
        """
        staged = pd.concat([part.staged for part in parts], ignore_index=True)
        quarantined = pd.concat([part.quarantine for part in parts], ignore_index=True)
        check_conservation(source, extract_rows, staged, quarantined)
        soft: dict[str, int] = {}
        for part in parts:
            for name, count in part.soft_problems.items():
                soft[name] = soft.get(name, 0) + count
        unmapped = (pd.concat([_empty_unmapped(), *(part.unmapped_values for part in parts)], ignore_index=True)
                    .groupby(["field", "column", "value"], as_index=False)["rows"].sum())
        until = [part.valid_until for part in parts if part.valid_until is not None]
        reusable = pd.concat([_empty_reusable(), *(part.reusable for part in parts)], ignore_index=True)
        return cls(staged=staged, quarantine=quarantined, soft_problems=dict(sorted(soft.items())),
                   unmapped_values=_unmapped_order(unmapped), valid_until=min(until) if until else None,
                   reusable=reusable.astype(REUSABLE_COLUMNS))


@dataclass(frozen=True)
class KnownRows:
    """What an earlier staging of a source left to take as it is (:mod:`staging.reuse`): where a new extract
    repeats a row it staged without a soft problem, that row is not staged again.

    Staging a row depends on that row alone (its key's first row aside, and the extraction day only for
    rows dated after it, which ``valid_until`` covers): a row with the same key, the same values and its
    key's first row, staged by the same declaration and code (the store checks those), is staged as before.

    Attributes:
        staged: the earlier staging's staged rows (as Arrow: the rows are taken by position, in one go).
        reusable: its :attr:`StageResult.reusable`, as Arrow.
        valid_until: its :attr:`StageResult.valid_until`, which the store has checked the new extraction is before.
    """

    staged: pa.Table
    reusable: pa.Table
    valid_until: pd.Timestamp | None = None

    @classmethod
    def of(cls, result: StageResult) -> KnownRows:
        """What ``result`` leaves to take (in memory; :mod:`staging.reuse` reads it from where it was kept)."""
        return cls(pa.Table.from_pandas(result.staged, preserve_index=False),
                   pa.Table.from_pandas(result.reusable, preserve_index=False), result.valid_until)


class ChunkRunner(Protocol):
    """Stages an extract's consecutive chunks apart, somewhere else (:class:`staging.spark.SparkChunks`).

    Everything staging does to a row depends on that row alone, except its key's first row in the whole
    extract, which the chunks carry (:meth:`staging._rules.KeyedRows.rows`): the chunks' stagings added up
    (:meth:`StageResult.combined`) are the staging of the whole.
    """

    #: Rows per chunk; an extract no longer than this is staged here, whole.
    rows_per_chunk: int

    def map(self, stage: Callable[[KeyedRows], StageResult], chunks: list[KeyedRows]) -> list[StageResult]:
        """``stage`` of every chunk, in the chunks' order."""
        ...


def _staged_in_chunks(extract: KeyedRows, stage: Callable[[KeyedRows], StageResult], runner: ChunkRunner | None) -> StageResult:
    rows = len(extract.raw)
    if runner is None or rows <= runner.rows_per_chunk:
        return stage(extract)
    size = runner.rows_per_chunk
    chunks = [extract.rows(start, min(start + size, rows)) for start in range(0, rows, size)]
    return StageResult.combined(runner.map(stage, chunks), extract.source, rows)


def _staged(extract: KeyedRows, stage: Callable[[KeyedRows], StageResult], runner: ChunkRunner | None,
            known: KnownRows | None, columns: Sequence[str], truncated_rows: Sequence[int]) -> StageResult:
    """``stage`` of ``extract``, taking the rows ``known`` holds as they are and staging only the others."""
    if known is None or not known.reusable.num_rows:
        return _staged_in_chunks(extract, stage, runner)
    rows = len(extract.raw)
    record_ids, digests = as_arrow(extract.record_id), extract.digests(columns)
    # Only a row that is its key's first (a repeat is quarantined) and that the reader saw whole.
    own = extract.first_row == extract.row_number
    own[np.asarray(truncated_rows, dtype=np.int64)] = False
    kept_digest = known.reusable.column("digest").take(pc.index_in(record_ids, value_set=known.reusable.column("record_id")))
    same = pc.fill_null(pc.equal(kept_digest, digests), False).to_numpy(zero_copy_only=False) & own
    taken, others = np.flatnonzero(same), np.flatnonzero(~same)
    kept_row = pc.index_in(record_ids.take(taken), value_set=known.staged.column("record_id"))
    if kept_row.null_count:
        log.warning("source %s: the kept staging lacks %d rows it lists as reusable; staging every row",
                    extract.source, kept_row.null_count)
        return _staged_in_chunks(extract, stage, runner)
    if not len(taken):
        return _staged_in_chunks(extract, stage, runner)
    fresh = _staged_in_chunks(extract.take(others), stage, runner)

    # The staged rows in extract order, taken from the kept rows followed by the fresh ones, in one take.
    held = np.isin(extract.row_number[others], fresh.quarantine["row_number"].to_numpy(dtype=np.int64))
    fresh_rows = pa.Table.from_pandas(fresh.staged, preserve_index=False)
    source_row = np.empty(rows, dtype=np.int64)
    source_row[taken] = kept_row.to_numpy()
    source_row[others[~held]] = known.staged.num_rows + np.arange(fresh_rows.num_rows)
    both = pa.concat_tables([known.staged.select(fresh_rows.column_names).cast(fresh_rows.schema), fresh_rows])
    # Column by column: a whole table's take runs its columns on threads that contend for memory (4 s, not 0.2).
    order = source_row[np.sort(np.r_[taken, others[~held]])]
    staged = pa.Table.from_arrays([column.take(order) for column in both.columns], schema=both.schema)
    at = staged.column_names.index("extracted_at")
    staged = staged.set_column(at, staged.field(at),
                               pa.repeat(pa.scalar(extract.extracted_at, staged.field(at).type), staged.num_rows))
    staged = staged.to_pandas().astype(fresh.staged.dtypes.to_dict())
    check_conservation(extract.source, rows, staged, fresh.quarantine)
    # Still to take next time: the rows taken, and the fresh ones staged without a soft problem.
    # (Arrow's hash lookup: pandas' isin on Arrow-backed strings loops in Python, 2 s for 450k changed rows.)
    fresh_clean = pc.is_in(record_ids.take(others), value_set=as_arrow(fresh.reusable["record_id"]))
    clean = np.sort(np.r_[taken, others[own[others] & fresh_clean.to_numpy(zero_copy_only=False)]])
    until = [u for u in (known.valid_until, fresh.valid_until) if u is not None]
    log.info("source %s: %d of %d rows as staged before, %d staged", extract.source, len(taken), rows, len(others))
    return StageResult(staged=staged, quarantine=fresh.quarantine, soft_problems=fresh.soft_problems,
                       unmapped_values=fresh.unmapped_values, valid_until=min(until) if until else None,
                       reusable=_reusable(record_ids.take(clean), digests.take(clean)))


def _unmapped_order(unmapped: pd.DataFrame) -> pd.DataFrame:
    """Unmapped values by field, the commonest first (ties by value), as :attr:`StageResult.unmapped_values` lists them."""
    ordered = unmapped.sort_values(["field", "rows", "value"], ascending=[True, False, True], ignore_index=True)
    return ordered.astype(UNMAPPED_VALUE_COLUMNS)


def stage_person_records(
    raw: pd.DataFrame,
    *,
    source: str,
    primary_key: Sequence[str],
    columns: Mapping[str, str],
    values: Mapping[str, Mapping[str, str | None]] | None = None,
    date_formats: Sequence[str] = DATE_FORMATS,
    extracted_at: dt.datetime,
    truncated_rows: Sequence[int] = (),
    form_fields: Sequence[str] = (),
    runner: ChunkRunner | None = None,
    known: KnownRows | None = None,
) -> StageResult:
    """Map a person source's extract onto the canonical person record and apply the quarantine rules.

    Each mapped value is cleaned (:func:`staging.clean_text`), translated by the field's ``values``
    map if there is one (a value the map does not list becomes missing and is counted), then
    normalised for its field: names, pinyin, resident ID (upgraded, validated, birth date and sex
    derived and cross-checked), dates at their stated precision, phones, address text, yes/no
    flags, disability grade. Canonical fields the source does not map are missing.

    Quarantine rules, in the order a quarantine row reports them: ``truncated_row`` (the reader saw
    the row cut off), ``missing_source_key``, ``duplicate_source_key`` (the second and later rows
    with a key), ``missing_name``, ``implausible_name`` (longer than :data:`MAX_NAME_LENGTH`, no
    letter at all, or emoji and symbols), ``excel_number_id`` (an ID number Excel turned into a
    number, ``3.30106E+17``, whose last digits are lost), ``malformed_id_number``,
    ``unparseable_birth_date``, ``birth_date_out_of_range`` (before 1900-01-01 or after the
    extraction day, compared at the stated precision).

    Args:
        raw: the extract, with the source's column names; every value a string or ``None``.
        source: the source name (``civil_affairs``); record ids are ``<source>:<source_key>``.
        primary_key: the source column(s) whose values, joined with ``|``, form ``source_key``.
        columns: canonical field -> source column, e.g. ``{"name": "xm", "id_number": "sfzh"}``;
            must map ``name``.
        values: canonical field -> {source value: canonical value}, e.g.
            ``{"sex": {"1": "M", "2": "F"}, "lives_alone": {"是": "true", "否": "false"}}``.
        date_formats: ``strptime`` formats for ``birth_date`` and ``record_date``, most likely first.
        extracted_at: when the connector read the source; a naive value is taken as UTC.
        truncated_rows: 0-based positions of rows the reader saw cut off (``connectors.Extract``).
        form_fields: fields of a form filled in by hand whose every row must state a value its ``values`` map
            lists (a grid update's 变更类型): a row without one, or dated after the extraction day, is
            quarantined (``unlisted_value``, ``future_record_date``) rather than staged with the value missing.
        runner: stages chunks of the extract apart (on a Spark cluster, :class:`staging.spark.SparkChunks`);
            the result is what staging the whole here gives.
        known: rows an earlier staging of the source left to take as they are (:class:`KnownRows`); only
            the other rows are staged, and the result is what staging the whole gives.

    Returns:
        The staged records, the quarantine, and the soft-problem counts.

    Raises:
        ConfigError: the declaration is inconsistent (unknown field, ``values`` for an unmapped
            field, a ``values`` target that is not a canonical value, a date format without a year).
        SourceError: a declared column is missing from the extract.
        TerminalError: rows were lost (a defect; never expected).

    Example:
        >>> result = stage_person_records(
        ...     pd.DataFrame({"jmbh": ["1"], "xm": ["張偉"], "xb": ["1"]}),
        ...     source="civil_affairs", primary_key=["jmbh"], columns={"name": "xm", "sex": "xb"},
        ...     values={"sex": {"1": "M", "2": "F"}}, date_formats=["%Y-%m-%d"],
        ...     extracted_at=dt.datetime(2026, 11, 23, tzinfo=dt.UTC))
        >>> result.staged.loc[0, ["record_id", "name", "name_pinyin", "sex"]].tolist()
        ['civil_affairs:1', '张伟', 'zhang wei', 'M']
    """
    values = values or {}
    _check_declaration(raw, source, primary_key, columns, values, PERSON_FIELDS, required=("name",))
    for date_format in date_formats:
        date_precision(date_format)
    extract = KeyedRows.build(raw, source, primary_key, _as_utc(extracted_at), list(columns.values()))
    stage = functools.partial(_stage_persons, columns=dict(columns), value_maps=_prepare_value_maps(source, columns, values),
                              date_formats=tuple(date_formats), truncated_rows=tuple(truncated_rows),
                              form_fields=tuple(form_fields))
    return _staged(extract, stage, runner, known, list(columns.values()), truncated_rows)


def _normalised_addresses(mapped: Mapping[str, pd.Series]) -> dict[str, pd.Series]:
    """Each address-like field's mapped values normalised (:func:`staging.text.normalize_address`), as text."""
    return {name: normalize_address(values).astype(STRING) for name, values in mapped.items()}


def _stage_persons(
    extract: KeyedRows, *, columns: dict[str, str], value_maps: dict[str, dict[str, str | None]],
    date_formats: tuple[str, ...], truncated_rows: tuple[int, ...], form_fields: tuple[str, ...],
) -> StageResult:
    """:func:`stage_person_records` of the rows of ``extract`` (all of an extract, or a chunk of one)."""
    fields = _Fields(extract, columns, value_maps)
    as_of = extract.extracted_at.tz_convert(CHINA_TZ).date()

    # The address-like fields are normalised in a thread beside the names, ID numbers and dates (core.threads.beside),
    # their values mapped here first: mapping counts the values it cannot map.
    mapped = {name: fields.mapped(name) for name in _TEXT_FIELDS if name in columns}
    with beside(_normalised_addresses, mapped) as places:
        out = _identity_columns(extract)
        out["name"] = fields.text("name", normalize_name)
        out["name_pinyin"] = name_pinyin(out["name"])
        out["alias"] = fields.text("alias", normalize_aliases)
        out["sex"] = fields.vocabulary("sex", SEX_CODES)
        birth = fields.dates("birth_date", date_formats)
        out["birth_date"], out["birth_date_precision"] = birth["date"], birth["precision"]
        ids = fields.id_numbers(as_of)
        out |= {
            column: ids[column] for column in ("id_number", "id_number_valid", "id_upgraded", "id_birth_date", "id_sex")
        }
        out["birth_date_conflict"] = _birth_date_conflict(out["birth_date"], out["id_birth_date"])
        out["sex_conflict"] = _sex_conflict(out["sex"], out["id_sex"])
        out["phone"] = fields.phone()
        for text_field in _TEXT_FIELDS:
            out[text_field] = places.result()[text_field] if text_field in mapped else null_text(fields.length)
    for text_field in _FREE_TEXT_FIELDS:
        out[text_field] = fields.text(text_field, clean_text)
    out["residence_status"] = fields.vocabulary("residence_status", RESIDENCE_STATUS_WORDS)
    out["record_date"] = fields.record_date(date_formats)
    for flag in BOOLEAN_FIELDS:
        out[flag] = fields.flag(flag)
    out["disability_grade"] = fields.grade()
    out["extracted_at"] = _extracted_at_column(extract)
    for problem in ("birth_date_conflict", "sex_conflict"):
        fields.count(problem, out[problem].to_numpy(bool))

    raw_birth = fields.raw("birth_date")
    rules = [
        extract.truncated_rule(truncated_rows),
        *extract.key_rules(),
        fields.missing_rule(
            "missing_name",
            out["name"].isna().to_numpy(),
            f"every person record needs a name: fill column {columns['name']} in the source system",
        ),
        fields.implausible_name_rule(out["name"]),
        fields.excel_number_rule(),
        fields.malformed_id_rule(ids),
        QuarantineRule(
            "unparseable_birth_date",
            birth["unparseable"].to_numpy(bool),
            "birth_date",
            columns.get("birth_date"),
            raw_birth,
            lambda rows: _unreadable_date(_label("birth_date", raw_birth.iloc[rows]), raw_birth.iloc[rows], date_formats),
        ),
        _birth_out_of_range_rule(birth, raw_birth, columns.get("birth_date"), as_of),
    ]
    if form_fields:
        rules += [*(fields.unlisted_rule(f) for f in form_fields if f in columns),
                  _future_record_date_rule(out["record_date"], fields.raw("record_date"), columns.get("record_date"), as_of)]
    quarantined, quarantine_frame = quarantine(extract, rules)
    future = [ids["id_valid_from"], birth["date"], *([out["record_date"]] if form_fields else [])]
    return fields.result(pd.DataFrame(out), quarantined, quarantine_frame, CANONICAL_COLUMNS,
                         valid_until=_first_day_after(as_of, future))


def stage_consent_records(
    raw: pd.DataFrame,
    *,
    source: str,
    primary_key: Sequence[str],
    columns: Mapping[str, str],
    values: Mapping[str, Mapping[str, str | None]] | None = None,
    extracted_at: dt.datetime,
    date_formats: Sequence[str] = (),
    truncated_rows: Sequence[int] = (),
    runner: ChunkRunner | None = None,
    known: KnownRows | None = None,
) -> StageResult:
    """Stage a consent registry: who decided what, for which purpose and recipient, and when.

    ``values`` maps translate the registry's codes (``{"status": {"同意": "granted", "撤回":
    "withdrawn"}}``). ``decided_at`` is read as ISO 8601 first, then with ``date_formats``; a time
    without a UTC offset is China Standard Time.

    Hard rules, in order: ``missing_source_key``, ``duplicate_source_key``, ``missing_id_number``,
    ``malformed_id_number``, ``unknown_status`` (not granted / refused / withdrawn /
    deletion_requested after mapping), ``missing_purpose``, ``missing_recipient`` (a registry that
    maps no recipient column decides for everyone, ``*``), ``unparseable_decided_at``,
    ``missing_decided_at``, ``future_decided_at`` (after the registry was read),
    ``unparseable_expires_at``. ``categories`` (e.g. ``basic,health``) is lower-cased and joined by
    commas; a ``guardian_id_number`` that is not a valid resident ID is staged as missing.

    Args:
        raw: the registry extract, with the source's column names; every value a string or ``None``.
        source: the source name; record ids are ``<source>:<source_key>``.
        primary_key: the source column(s) forming ``source_key``.
        columns: canonical field -> source column; must map ``id_number``, ``purpose`` and ``status``.
        values: canonical field -> {source value: canonical value}.
        extracted_at: when the connector read the registry; a naive value is taken as UTC.
        date_formats: further ``strptime`` formats for ``decided_at``.
        truncated_rows: 0-based positions of rows the reader saw cut off (``connectors.Extract``).
        runner: stages chunks of the extract apart, as for :func:`stage_person_records`.
        known: rows an earlier staging left to take as they are, as for :func:`stage_person_records`.

    Returns:
        The staged consent records (``schema.CONSENT_COLUMNS``), the quarantine and soft-problem counts.

    Raises:
        ConfigError: the declaration is inconsistent.
        SourceError: a declared column is missing from the extract.
        TerminalError: rows were lost (a defect; never expected).
    """
    values = values or {}
    _check_declaration(
        raw, source, primary_key, columns, values, CONSENT_FIELDS, required=("id_number", "purpose", "status")
    )
    extract = KeyedRows.build(raw, source, primary_key, _as_utc(extracted_at), list(columns.values()))
    stage = functools.partial(_stage_consents, columns=dict(columns), value_maps=_prepare_value_maps(source, columns, values),
                              date_formats=tuple(date_formats), truncated_rows=tuple(truncated_rows))
    return _staged(extract, stage, runner, known, list(columns.values()), truncated_rows)


def _stage_consents(
    extract: KeyedRows, *, columns: dict[str, str], value_maps: dict[str, dict[str, str | None]],
    date_formats: tuple[str, ...], truncated_rows: tuple[int, ...],
) -> StageResult:
    """:func:`stage_consent_records` of the rows of ``extract`` (all of an extract, or a chunk of one)."""
    fields = _Fields(extract, columns, value_maps)
    as_of = extract.extracted_at.tz_convert(CHINA_TZ).date()

    ids = fields.id_numbers(as_of)
    status = fields.consent_status()
    known_status = status.isin(CONSENT_STATUSES).fillna(False).to_numpy(bool)
    decided = parse_timestamps(fields.mapped("decided_at"), date_formats)
    expires = parse_timestamps(fields.mapped("expires_at"), date_formats)
    guardians = parse_id_numbers(fields.mapped("guardian_id_number"), as_of=as_of)
    guardian = guardians["id_number"]
    # A decision more than a day after the read: its clock was wrong (a day allows for time zones).
    ahead = (decided["timestamp"] > pd.Timestamp(extract.extracted_at) + pd.Timedelta(days=1)).fillna(False)
    out = _identity_columns(extract) | {
        "id_number": ids["id_number"],
        "name": fields.text("name", normalize_name),
        # Codes are case-blind (Health, SERVICE_DELIVERY): a withdrawal must not miss its recipient by a capital.
        "purpose": fields.text("purpose", lambda v: normalize_address(v).str.lower()),
        # A registry without a recipient column records decisions about sharing as such: everyone.
        "recipient": (fields.text("recipient", lambda v: normalize_address(v).str.lower()) if "recipient" in columns
                      else pd.Series("*", index=extract.raw.index, dtype=STRING)),
        "status": status.where(known_status),
        "decided_at": decided["timestamp"],
        "channel": fields.text("channel", normalize_address),
        # "basic,health": lower-case codes joined by commas, whatever separators the registry used
        "categories": fields.text(
            "categories", lambda c: clean_text(c).str.lower().str.replace(r"[\s,，、;；/]+", ",", regex=True).str.strip(",")
        ),
        "expires_at": expires["timestamp"],
        "guardian_id_number": guardian.where(guardian.notna(), None).astype(STRING),
        "extracted_at": _extracted_at_column(extract),
    }

    raw_status, raw_decided, raw_expires = fields.raw("status"), fields.raw("decided_at"), fields.raw("expires_at")
    rules = [
        extract.truncated_rule(truncated_rows),
        *extract.key_rules(),
        fields.missing_rule(
            "missing_id_number",
            (ids["id_number"].isna() & ~ids["id_malformed"]).to_numpy(bool),
            f"a consent record must name its subject: fill column {columns['id_number']} in the consent registry",
        ),
        fields.excel_number_rule(),
        fields.malformed_id_rule(ids),
        QuarantineRule(
            "unknown_status",
            ~known_status,
            "status",
            columns["status"],
            raw_status,
            lambda rows: (
                (_label("status", raw_status.iloc[rows]) + f" is not one of {', '.join(CONSENT_STATUSES)}").where(
                    raw_status.iloc[rows].notna(), f"{FIELD_LABELS['status']} is empty"
                )
                + "; correct it in the consent registry, or map it under values.status in sources.yaml "
                "(e.g. 同意: granted, 拒绝: refused, 撤回: withdrawn)"
            ),
        ),
        fields.missing_rule(
            "missing_purpose",
            out["purpose"].isna().to_numpy(),
            f"consent is always given for a purpose: fill column {columns['purpose']} in the consent registry",
        ),
        fields.missing_rule(
            "missing_recipient",
            out["recipient"].isna().to_numpy(),
            f"a decision is made for a recipient: fill column {columns.get('recipient')} in the consent registry, "
            "or write * where it covers every recipient",
        ),
        QuarantineRule(
            "unparseable_decided_at",
            decided["unparseable"].to_numpy(bool),
            "decided_at",
            columns.get("decided_at"),
            raw_decided,
            lambda rows: (
                _label("decided_at", raw_decided.iloc[rows])
                + " is not a date or time; write it as ISO 8601 (2024-05-01 10:00:00) in the consent registry, "
                "or add its format to date_formats in sources.yaml"
            ),
        ),
        fields.missing_rule(
            "missing_decided_at",
            # (a registry that keeps no decision times at all orders its decisions by nothing; not quarantined)
            (decided["timestamp"].isna() & ~decided["unparseable"]).to_numpy(bool) & ("decided_at" in columns),
            "when a decision was made decides which one counts: fill column "
            f"{columns.get('decided_at')} in the consent registry",
        ),
        QuarantineRule(
            "future_decided_at",
            ahead.to_numpy(bool),
            "decided_at",
            columns.get("decided_at"),
            raw_decided,
            lambda rows: (
                _label("decided_at", raw_decided.iloc[rows])
                + " is after the registry was read: a decision dated in the future would outrank every real "
                "later one; correct the date in the consent registry"
            ),
        ),
        QuarantineRule(
            "unparseable_expires_at",
            expires["unparseable"].to_numpy(bool),
            "expires_at",
            columns.get("expires_at"),
            raw_expires,
            lambda rows: (
                _label("expires_at", raw_expires.iloc[rows])
                + " is not a date or time, so when the consent ends is unknown; write it as ISO 8601 (2027-05-01) "
                "in the consent registry, or add its format to date_formats in sources.yaml"
            ),
        ),
    ]
    quarantined, quarantine_frame = quarantine(extract, rules, subjects=ids["id_number"])
    # A decision ahead is no longer ahead once the read is less than a day before it.
    changes = [t for t in (_first_day_after(as_of, [ids["id_valid_from"], guardians["id_valid_from"]]),
                           decided["timestamp"][ahead].min() - pd.Timedelta(days=1) if ahead.any() else None)
               if t is not None]
    return fields.result(pd.DataFrame(out), quarantined, quarantine_frame, CONSENT_COLUMNS,
                         valid_until=min(changes) if changes else None)


class _Fields:
    """The mapped fields of one extract: raw values, value maps, and the soft problems met on the way."""

    def __init__(self, extract: KeyedRows, columns: Mapping[str, str], value_maps: Mapping[str, dict[str, str | None]]):
        self.extract = extract
        self.columns = columns
        self.value_maps = value_maps
        self.length = len(extract.raw)
        self.soft: dict[str, np.ndarray] = {}
        self._unmapped: dict[str, tuple[pd.Series, np.ndarray]] = {}

    def raw(self, field_name: str) -> pd.Series:
        """The field's raw source values (all missing if the source does not map it)."""
        if field_name not in self.columns:
            return null_text(self.length)
        return self.extract.raw[self.columns[field_name]]

    def mapped(self, field_name: str) -> pd.Series:
        """The field's values after its ``values`` map (cleaned first), or as the source gave them."""
        value_map = self.value_maps.get(field_name)
        if value_map is None:
            return self.raw(field_name)
        cleaned = clean_text(self.raw(field_name))
        translated = to_series(
            python_on_unique(as_arrow(cleaned), lambda distinct: [value_map.get(value) for value in distinct]),
            cleaned.index,
        )
        unmapped = (cleaned.notna() & ~cleaned.isin(list(value_map))).to_numpy(bool)
        self.count(f"unmapped_value:{field_name}", unmapped)
        self._unmapped[field_name] = (cleaned, unmapped)
        return translated

    def unlisted_rule(self, field_name: str) -> QuarantineRule:
        """Rows whose ``field_name`` is empty or a value no ``values`` map of its column lists (a form's drop-down:
        the grid form's 变更类型 is mapped to residence_status and lives_alone, and kept as written as change)."""
        column = self.columns[field_name]
        listed = list(dict.fromkeys(word for f, words in self.value_maps.items() if self.columns.get(f) == column
                                    for word in words))
        raw = self.raw(field_name)
        cleaned = clean_text(raw)
        failed = (cleaned.isna() | ~cleaned.isin(listed)).to_numpy(bool)
        empty = cleaned.isna().to_numpy(bool)

        def messages(rows: np.ndarray) -> pd.Series:
            stated = column + " " + quoted(raw.iloc[rows]) + " is not one of " + "、".join(listed)
            blank = pd.Series(f"{column} is empty: choose one of " + "、".join(listed), index=stated.index)
            return blank.where(empty[rows], stated) + " (the form's drop-down list)"

        return QuarantineRule("unlisted_value", failed, field_name, column, raw, messages)

    def count(self, problem: str, rows: np.ndarray) -> None:
        """Record a soft problem on the flagged rows (counted later over the staged rows only)."""
        self.soft[problem] = rows

    def text(self, field_name: str, normalise: Callable[[pd.Series], pd.Series]) -> pd.Series:
        """The field mapped and then normalised; all missing if the source does not map it."""
        if field_name not in self.columns:
            return null_text(self.length)
        return normalise(self.mapped(field_name)).astype(STRING)

    def vocabulary(self, field_name: str, words: Mapping[str, str]) -> pd.Series:
        """The field reduced to a closed vocabulary; other values become missing and are counted."""
        if field_name not in self.columns:
            return null_text(self.length)
        present = clean_text(self.mapped(field_name))
        result = to_series(
            python_on_unique(as_arrow(present), lambda distinct: [words.get(value.upper()) for value in distinct]),
            present.index,
        )
        self._count_unrecognised(field_name, present.notna() & result.isna())
        return result

    def consent_status(self) -> pd.Series:
        """``status``: the source's ``values`` map first, then the common ways registries write each
        status (:data:`core.vocabulary.CONSENT_STATUS_WORDS`); anything else missing (unknown)."""
        declared = self.text("status", lambda statuses: clean_text(statuses).str.lower())
        if "status" not in self.columns:
            return declared
        cleaned = clean_text(self.raw("status"))
        common = to_series(
            python_on_unique(as_arrow(cleaned), lambda distinct: [CONSENT_STATUS_WORDS.get(v.lower()) for v in distinct]),
            cleaned.index,
        )
        return declared.where(declared.isin(CONSENT_STATUSES).fillna(False), common).astype(STRING)

    def flag(self, field_name: str) -> pd.Series:
        """A yes/no field as nullable booleans."""
        words = self.vocabulary(field_name, _BOOLEAN_WORDS)
        return bool_series(pc.equal(as_arrow(words), "true"), words.index)

    def grade(self) -> pd.Series:
        """``disability_grade`` as ``Int8`` 1-4."""
        words = self.vocabulary("disability_grade", _GRADE_WORDS)
        return pd.Series(pd.array(pc.cast(as_arrow(words), pa.int8()), dtype="Int8"), index=words.index)

    def dates(self, field_name: str, date_formats: Sequence[str]) -> pd.DataFrame:
        """The field parsed as dates at their stated precision (see :func:`staging.parse_dates`)."""
        if field_name not in self.columns:
            return parse_dates(null_text(self.length), ["%Y"])
        return parse_dates(self.mapped(field_name), date_formats)

    def record_date(self, date_formats: Sequence[str]) -> pd.Series:
        """``record_date`` as ``YYYY-MM-DD``; values without a day (or unreadable) are counted."""
        if "record_date" not in self.columns:
            return null_text(self.length)
        parsed = parse_dates(self.mapped("record_date"), date_formats, drop_time=True)
        day = parsed["date"].where(parsed["precision"] == "day")
        self._count_unrecognised("record_date", parsed["unparseable"] | (parsed["date"].notna() & day.isna()))
        return day.astype(STRING)

    def id_numbers(self, as_of: dt.date) -> pd.DataFrame:
        """The resident-ID columns (see :func:`staging.parse_id_numbers`); invalid IDs are counted."""
        ids = parse_id_numbers(self.mapped("id_number"), as_of=as_of)
        self.count("invalid_id_number", ~ids["id_number_valid"].fillna(True).to_numpy(bool))
        return ids

    def phone(self) -> pd.Series:
        """``phone`` normalised; a number given but not plausible is counted."""
        phones = self.text("phone", normalize_phone)
        if "phone" in self.columns:
            stated = pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(as_arrow(self.raw("phone")))), 0)
            self.count(
                "implausible_phone",
                pc.fill_null(stated, False).to_numpy(zero_copy_only=False) & phones.isna().to_numpy(),
            )
        return phones

    def missing_rule(self, rule: str, failed: np.ndarray, fix: str) -> QuarantineRule:
        """A ``missing_<field>`` rule: the required field is empty."""
        field_name = rule.removeprefix("missing_")
        message = f"{FIELD_LABELS[field_name]} is empty; {fix}"
        return QuarantineRule(rule, failed, field_name, self.columns.get(field_name), self.raw(field_name), constant(message))

    def implausible_name_rule(self, names: pd.Series) -> QuarantineRule:
        """``implausible_name``: a name too long to be one, without any letter, or with emoji or symbols."""
        text = as_arrow(names)
        too_long = pc.fill_null(pc.greater(pc.utf8_length(text), MAX_NAME_LENGTH), False).to_numpy(zero_copy_only=False)
        no_letter = pc.fill_null(pc.invert(pc.match_substring_regex(text, r"\p{L}")), False).to_numpy(zero_copy_only=False)
        symbols = pc.fill_null(pc.match_substring_regex(text, _SYMBOLS), False).to_numpy(zero_copy_only=False)
        raw_names = self.raw("name")

        def messages(rows: np.ndarray) -> pd.Series:
            shown = FIELD_LABELS["name"] + " " + quoted(_shortened(raw_names.iloc[rows]))
            long_text = shown + " has " + names.iloc[rows].str.len().astype(STRING) + f" characters (a name has at most {MAX_NAME_LENGTH})"
            odd = shown + " is not a name (no letter, or emoji and symbols)"
            return long_text.where(too_long[rows], odd) + "; correct the name in the source system"

        return QuarantineRule("implausible_name", too_long | no_letter | symbols, "name", self.columns.get("name"),
                              raw_names, messages)

    def excel_number_rule(self) -> QuarantineRule:
        """``excel_number_id``: an ID number that Excel turned into a number (``3.30106E+17``): Excel keeps
        15 digits, so the last ones are lost and no check digit can be trusted to catch it."""
        raw_ids = clean_text(self.raw("id_number"))
        excel = pc.fill_null(pc.match_substring_regex(as_arrow(raw_ids), _EXCEL_NUMBER), False).to_numpy(
            zero_copy_only=False)
        column = self.columns.get("id_number")

        def messages(rows: np.ndarray) -> pd.Series:
            return (_label("id_number", raw_ids.iloc[rows]) + " was turned into a number by Excel, which keeps only 15 "
                    "digits, so its last digits are lost; format the column "
                    + (column or "id_number") + " as text in Excel (设置单元格格式 → 文本) and enter the IDs again, "
                    "or export them from the department's system again")

        return QuarantineRule("excel_number_id", excel, "id_number", column, raw_ids, messages)

    def malformed_id_rule(self, ids: pd.DataFrame) -> QuarantineRule:
        """``malformed_id_number``, with the length or the stray characters in the message."""
        raw_ids = self.raw("id_number")

        def messages(rows: np.ndarray) -> pd.Series:
            value = clean_text(raw_ids.iloc[rows])
            length = value.str.len().astype("Int64")
            wrong_length = ~length.isin([15, 18]).to_numpy(bool)
            prefix = _label("id_number", raw_ids.iloc[rows])
            by_length = prefix + " has " + length.astype(STRING) + " characters; expected 18 (or the old 15)"
            by_content = prefix + " has characters other than digits and a final X"
            return by_length.where(wrong_length, by_content) + "; correct the ID in the source system"

        return QuarantineRule(
            "malformed_id_number",
            ids["id_malformed"].to_numpy(bool),
            "id_number",
            self.columns.get("id_number"),
            raw_ids,
            messages,
        )

    def result(
        self, staged: pd.DataFrame, quarantined: np.ndarray, quarantine_frame: pd.DataFrame, schema: Mapping[str, str],
        *, valid_until: pd.Timestamp | None,
    ) -> StageResult:
        """Keep the rows no quarantine rule held back, check conservation, and count the soft problems."""
        keep = ~quarantined
        staged = pd.DataFrame({name: _keep_rows(staged[name].astype(dtype), keep) for name, dtype in schema.items()})
        check_conservation(self.extract.source, self.length, staged, quarantine_frame)
        soft = {name: int((mask & keep).sum()) for name, mask in sorted(self.soft.items())}
        clean = keep.copy()
        for mask in self.soft.values():
            clean &= ~mask
        clean = pa.array(clean)
        reusable = _reusable(as_arrow(self.extract.record_id).filter(clean),
                             self.extract.digests(list(self.columns.values())).filter(clean))
        return StageResult(
            staged=staged,
            quarantine=quarantine_frame,
            soft_problems={name: count for name, count in soft.items() if count},
            unmapped_values=self._unmapped_values(keep),
            valid_until=valid_until,
            reusable=reusable,
        )

    def _count_unrecognised(self, field_name: str, unrecognised: pd.Series) -> None:
        mask = unrecognised.fillna(False).to_numpy(bool)
        # A value the ``values`` map missed is already counted as unmapped.
        unmapped = self.soft.get(f"unmapped_value:{field_name}")
        self.count(f"unrecognised_value:{field_name}", mask if unmapped is None else mask & ~unmapped)

    def _unmapped_values(self, keep: np.ndarray) -> pd.DataFrame:
        frames = []
        for field_name, (cleaned, unmapped) in self._unmapped.items():
            counts = cleaned[unmapped & keep].value_counts()
            if counts.empty:
                continue
            frames.append(
                pd.DataFrame(
                    {
                        "field": field_name,
                        "column": self.columns[field_name],
                        "value": counts.index.astype(STRING),
                        "rows": counts.to_numpy(),
                    }
                )
            )
        if not frames:
            return _empty_unmapped()
        return _unmapped_order(pd.concat(frames, ignore_index=True))


def _identity_columns(extract: KeyedRows) -> dict[str, pd.Series]:
    return {
        "record_id": extract.record_id,
        "source": pd.Series(extract.source, index=extract.raw.index, dtype=STRING),
        "source_key": extract.source_key,
    }


def _extracted_at_column(extract: KeyedRows) -> pd.Series:
    return pd.Series(extract.extracted_at, index=extract.raw.index, dtype=CANONICAL_COLUMNS["extracted_at"])


def _shortened(values: pd.Series) -> pd.Series:
    """Values cut to :data:`_SHOWN_CHARACTERS` characters (``…`` marks a cut), for messages."""
    text = values.astype(STRING)
    return text.str.slice(0, _SHOWN_CHARACTERS).where(text.str.len() <= _SHOWN_CHARACTERS,
                                                      text.str.slice(0, _SHOWN_CHARACTERS) + "…")


def _label(field_name: str, raw_values: pd.Series) -> pd.Series:
    """``公民身份号码 '1101051980'``: the department's name for the field, then the value as typed."""
    return FIELD_LABELS[field_name] + " " + quoted(raw_values)


def _sex_conflict(sex: pd.Series, id_sex: pd.Series) -> pd.Series:
    """Stated sex and the ID's disagree (``False`` when either is unknown)."""
    return bool_series((sex != id_sex).fillna(False).to_numpy(bool), sex.index)


def _keep_rows(column: pd.Series, keep: np.ndarray) -> pd.Series:
    """``column[keep]`` on a fresh 0..n-1 index."""
    if keep.all():
        return column.reset_index(drop=True)
    if isinstance(column.dtype, pd.StringDtype):
        # Arrow's filter kernel directly: pandas' boolean indexing of an Arrow column is several
        # times slower, which adds up over 29 columns of a million rows.
        return to_series(pc.filter(as_arrow(column), pa.array(keep)), pd.RangeIndex(int(keep.sum())))
    return column[keep].reset_index(drop=True)


def _birth_date_conflict(birth_date: pd.Series, id_birth_date: pd.Series) -> pd.Series:
    """Stated and ID birth dates differ at the stated precision (``1980-01`` agrees with ``1980-01-02``)."""
    stated, from_id = as_arrow(birth_date), as_arrow(id_birth_date)
    stated_length = pc.utf8_length(stated)
    conflict = np.zeros(len(birth_date), dtype=bool)
    for length in _PRECISION_LENGTHS:
        differs = pc.not_equal(pc.utf8_slice_codeunits(from_id, 0, length), stated)
        at_precision = pc.and_(pc.equal(stated_length, length), differs)
        conflict |= pc.fill_null(at_precision, False).to_numpy(zero_copy_only=False)
    return bool_series(conflict, birth_date.index)


def _first_day_after(as_of: dt.date, dates: Sequence[pd.Series]) -> pd.Timestamp | None:
    """The first day after ``as_of`` that one of ``dates`` names, as midnight China time (``None`` if none).

    Dates are ISO text at any precision: ``2031-05`` stands for ``2031-05-01``, the day from which a
    rule comparing at the stated precision no longer finds it after the extraction day."""
    latest = as_of.isoformat()
    candidates = []
    for values in dates:
        text = as_arrow(values)
        length = pc.utf8_length(text)
        for size, pad in ((4, "-01-01"), (7, "-01"), (10, "")):
            stated = pc.filter(text, pc.fill_null(pc.equal(length, size), False))
            days = pc.binary_join_element_wise(stated, pa.scalar(pad, stated.type), pa.scalar("", stated.type))
            later = pc.min(pc.filter(days, pc.greater(days, latest))).as_py()
            if later is not None:
                candidates.append(later)
    return pd.Timestamp(min(candidates), tz=CHINA_TZ) if candidates else None


def _birth_out_of_range_rule(birth: pd.DataFrame, raw_birth: pd.Series, column: str | None, as_of: dt.date) -> QuarantineRule:
    """Birth dates before 1900-01-01 or after the extraction day, compared at the stated precision."""
    stated = as_arrow(birth["date"])
    stated_length = pc.utf8_length(stated)
    latest = as_of.isoformat()
    too_early = np.zeros(len(birth), dtype=bool)
    too_late = np.zeros(len(birth), dtype=bool)
    for length in _PRECISION_LENGTHS:
        # ISO strings of one length compare like the dates they spell.
        at_length = pc.equal(stated_length, length)
        too_early |= pc.fill_null(pc.and_(at_length, pc.less(stated, _EARLIEST_BIRTH_DATE[:length])), False).to_numpy(
            zero_copy_only=False
        )
        too_late |= pc.fill_null(pc.and_(at_length, pc.greater(stated, latest[:length])), False).to_numpy(
            zero_copy_only=False
        )

    def messages(rows: np.ndarray) -> pd.Series:
        prefix = _label("birth_date", raw_birth.iloc[rows])
        early = prefix + f" is before {_EARLIEST_BIRTH_DATE}"
        late = prefix + " is after the day the source was extracted"
        return early.where(too_early[rows], late) + "; correct the date in the source system"

    return QuarantineRule("birth_date_out_of_range", too_early | too_late, "birth_date", column, raw_birth, messages)


def _future_record_date_rule(record_date: pd.Series, raw: pd.Series, column: str | None, as_of: dt.date) -> QuarantineRule:
    """Rows dated after the extraction day: a report cannot come from the future, and by recency it would
    outrank every record until that day came."""
    failed = pc.fill_null(pc.greater(as_arrow(record_date), as_of.isoformat()), False).to_numpy(zero_copy_only=False)
    return QuarantineRule("future_record_date", failed, "record_date", column, raw,
                          lambda rows: _label("record_date", raw.iloc[rows])
                          + " is after the day the source was extracted; correct the date")


def _check_declaration(
    raw: pd.DataFrame,
    source: str,
    primary_key: Sequence[str],
    columns: Mapping[str, str],
    values: Mapping[str, Mapping[str, str | None]],
    allowed: Sequence[str],
    *,
    required: Sequence[str],
) -> None:
    if not source:
        raise ConfigError("a source needs a name, e.g. source='civil_affairs'")
    unknown = sorted(set(columns) - set(allowed))
    if unknown:
        raise ConfigError(
            f"source {source!r}: columns maps unknown canonical field(s) {unknown}; the fields are {list(allowed)}"
        )
    absent = [name for name in required if name not in columns]
    if absent:
        raise ConfigError(
            f"source {source!r}: columns must map {absent} (every record needs them), "
            f"e.g. columns: {{{absent[0]}: <source column>}}"
        )
    unused = sorted(set(values) - set(columns))
    if unused:
        raise ConfigError(
            f"source {source!r}: values given for {unused}, which columns does not map; "
            "map the field or drop its values"
        )
    if not primary_key:
        raise ConfigError(f"source {source!r}: primary_key is empty; name the key column(s), e.g. primary_key: [jmbh]")
    if raw.columns.duplicated().any():
        repeated = sorted({str(name) for name in raw.columns[raw.columns.duplicated()]})
        raise SourceError(
            source, "extract", f"the extract repeats column(s) {repeated}", "give every column its own name"
        )
    declared = [*primary_key, *columns.values()]
    missing = [name for name in dict.fromkeys(declared) if name not in raw.columns]
    if missing:
        raise SourceError(
            source,
            "extract",
            f"declared column(s) {missing} are not in the extract (it has {[str(c) for c in raw.columns]})",
            "correct primary_key/columns in sources.yaml, or the source's table or query",
        )


def _prepare_value_maps(
    source: str, columns: Mapping[str, str], values: Mapping[str, Mapping[str, str | None]]
) -> dict[str, dict[str, str | None]]:
    """Clean the map keys as the values will be cleaned, and check the targets are canonical values."""
    prepared: dict[str, dict[str, str | None]] = {}
    for field_name, value_map in values.items():
        keys = clean_text(pd.Series([str(key) for key in value_map], dtype=STRING)).tolist()
        targets = [_target_text(target) for target in value_map.values()]
        accepts = _TARGET_CHECKS.get(field_name)
        if accepts is not None:
            check, example = accepts
            bad = sorted({target for target in targets if target is not None and not check(target)})
            if bad:
                raise ConfigError(
                    f"source {source!r}: values.{field_name} maps to {bad}, which {field_name} cannot hold; "
                    f"map each source value to a canonical one, e.g. {{<source value>: {example}}}"
                )
        # A key that cleans to nothing (" ") can never match: cleaned values are never empty.
        prepared[field_name] = {key: target for key, target in zip(keys, targets, strict=True) if key is not pd.NA}
    return prepared


def _target_text(target: object) -> str | None:
    """A ``values`` target as text; ``None`` or ``""`` means "not stated" (e.g. 普通门诊: no chronic disease)."""
    if target is None or target == "":
        return None
    # YAML reads an unquoted ``true`` as a bool: take it as the text it was meant to be.
    return str(target).lower() if isinstance(target, bool) else str(target)


def _as_utc(extracted_at: dt.datetime) -> pd.Timestamp:
    if not isinstance(extracted_at, dt.datetime):
        raise ConfigError(f"extracted_at must be a datetime, e.g. datetime.now(UTC); got {extracted_at!r}")
    stamp = pd.Timestamp(extracted_at)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.as_unit("us")


def _unreadable_date(label: pd.Series, raw: pd.Series, date_formats: Sequence[str]) -> pd.Series:
    """Why each date could not be read: a day the calendar does not have (2023-02-30, in a format declared), which the
    source must correct, or a form none of ``date_formats`` reads, which sources.yaml may declare."""
    no_such_day = raw.map(lambda value: isinstance(value, str) and _names_no_day(value.strip(), date_formats))
    return (label + " names a day the calendar does not have; correct the date in the source system").where(
        no_such_day.astype(bool),
        label + " matches none of the date formats " + _format_list(date_formats)
        + "; correct the date in the source system, or add its format to date_formats in sources.yaml")


def _names_no_day(value: str, date_formats: Sequence[str]) -> bool:
    """Whether ``value`` has the shape of one of the day-precision ``date_formats`` (digits where its year, month and
    day go) but names no day: a month past 12, a day its month lacks, a zero."""
    for form in date_formats:
        if "%d" not in form or not _date_shape(form).fullmatch(value):
            continue
        try:
            dt.datetime.strptime(value, form)
        except ValueError:
            return True
    return False


def _date_shape(form: str) -> re.Pattern[str]:
    """A ``strptime`` date format as a pattern of its digits (``%Y%m%d`` → 8 digits), other text as it is."""
    digits = {"%Y": r"\d{4}", "%m": r"\d{1,2}", "%d": r"\d{1,2}"}
    if "%m%d" in form or "%Y%m" in form:  # run together: the widths are fixed
        digits = {"%Y": r"\d{4}", "%m": r"\d{2}", "%d": r"\d{2}"}
    parts = re.split(r"(%[Ymd])", form)
    return re.compile("".join(digits.get(part, re.escape(part)) for part in parts))


def _format_list(date_formats: Sequence[str]) -> str:
    return "[" + ", ".join(date_formats) + "]"
