"""Hard rules and the quarantine they fill: shared by person and consent staging.

A rule is a boolean mask over the extract plus what to tell the data team about a failing row.
Messages are built only for the rows a rule is the first to fail, with vectorised string
operations, so a large quarantine does not turn into a Python loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core.errors import TerminalError
from staging._arrow import STRING, as_arrow, empty_to_null, to_series
from staging.schema import QUARANTINE_COLUMNS

_SEPARATOR = pa.scalar("|", pa.large_string())

Messages = Callable[[np.ndarray], pd.Series]
"""Given 0-based row positions, the message for each of those rows."""


@dataclass(frozen=True)
class QuarantineRule:
    """One quarantine rule (a row breaking it is held back) evaluated over a whole extract.

    Attributes:
        name: the rule's name, e.g. ``malformed_id_number``.
        failed: one flag per extract row, ``True`` where the row breaks the rule.
        field: the canonical field the rule is about.
        column: the source column(s) holding that field.
        value: the offending raw value of every row (only failing rows are read).
        messages: builds the message for given row positions.
    """

    name: str
    failed: np.ndarray
    field: str
    column: str | None
    value: pd.Series
    messages: Messages


def source_keys(raw: pd.DataFrame, primary_key: Sequence[str]) -> pd.Series:
    """Each row's ``source_key``: its primary-key values, trimmed, joined by ``|``; missing if any part is empty.

    The one definition of a row's key, so a record id found in the warehouse leads back to the
    department's row (``silobreaker corrections export``).

    Example:
        >>> source_keys(pd.DataFrame({"a": [" 1", "2"], "b": ["x", ""]}), ["a", "b"]).tolist()
        ['1|x', <NA>]
    """
    # Only surrounding spaces are trimmed: the key must still find the row in the source system.
    parts = [empty_to_null(pc.utf8_trim_whitespace(as_arrow(raw[column]))) for column in primary_key]
    joined = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, _SEPARATOR)
    return to_series(joined, raw.index)


@dataclass(frozen=True)
class KeyedRows:
    """A source's extracted rows with their keys, ready for quarantine rules: what person and consent
    staging share.

    Attributes:
        raw: the extract, re-indexed 0..n-1 so positions and labels agree.
        source: the source name.
        primary_key: the source columns forming the key.
        source_key: key values joined with ``|``; missing if any part is empty.
        record_id: ``<source>:<source_key>``.
        extracted_at: when the connector read the source, in UTC.
        row_number: each row's 1-based number in the whole extract (what a quarantine row reports).
        first_row: the number of the first row of the whole extract with the row's key (its own number
            unless the key repeats an earlier row's), 0 where the key is missing.
    """

    raw: pd.DataFrame
    source: str
    primary_key: tuple[str, ...]
    source_key: pd.Series
    record_id: pd.Series
    extracted_at: pd.Timestamp
    row_number: np.ndarray
    first_row: np.ndarray

    @classmethod
    def build(
        cls,
        raw: pd.DataFrame,
        source: str,
        primary_key: Sequence[str],
        extracted_at: pd.Timestamp,
        used_columns: Sequence[str] = (),
    ) -> KeyedRows:
        """Compute the keys of ``raw``: trimmed key parts joined by ``|``, missing if any part is empty.

        The key and ``used_columns`` are converted to Arrow-backed text once, here, so that every
        normaliser reading them afterwards does so without copying.
        """
        raw = raw.reset_index(drop=True)
        text_columns = [
            column for column in dict.fromkeys([*primary_key, *used_columns]) if raw[column].dtype != STRING
        ]
        if text_columns:
            raw = raw.astype(dict.fromkeys(text_columns, STRING))
        source_key = source_keys(raw, primary_key)
        record_id = (source + ":" + source_key).astype(STRING)
        row_number = np.arange(1, len(raw) + 1, dtype=np.int64)
        key_codes = pd.factorize(source_key, use_na_sentinel=True)[0]
        keyed = np.flatnonzero(key_codes >= 0)
        first_of_key = keyed[np.unique(key_codes[keyed], return_index=True)[1]] + 1
        first_row = np.where(key_codes >= 0, first_of_key[np.maximum(key_codes, 0)] if len(keyed) else 0, 0)
        return cls(raw, source, tuple(primary_key), source_key, record_id, extracted_at, row_number, first_row)

    def rows(self, start: int, stop: int) -> KeyedRows:
        """Rows ``start..stop-1`` as an extract of their own that keeps their numbers and keys' first rows in
        the whole: staged apart (:class:`staging.stage.ChunkRunner`), they are quarantined as in the whole."""
        return self.take(np.arange(start, stop))

    def take(self, positions: np.ndarray) -> KeyedRows:
        """The rows at ``positions`` (0-based, ascending) as an extract of their own that keeps their numbers
        and keys' first rows in the whole, as :meth:`rows` does for a range."""
        def part(series: pd.Series) -> pd.Series:
            return series.iloc[positions].reset_index(drop=True)

        return KeyedRows(self.raw.iloc[positions].reset_index(drop=True), self.source, self.primary_key,
                         part(self.source_key), part(self.record_id), self.extracted_at,
                         self.row_number[positions], self.first_row[positions])

    def digests(self, columns: Sequence[str]) -> pa.Array:
        """Each row's digest over its key and the values of ``columns``: DuckDB's 64-bit ``hash`` of the values
        in order (a missing value hashes apart from an empty one). It tells a changed row from an unchanged
        one; it is no secret and depends on the DuckDB version (``staging.reuse`` keeps it with the version)."""
        names = list(dict.fromkeys([*self.primary_key, *columns]))
        values = pa.table({f"c{i}": as_arrow(self.raw[name]) for i, name in enumerate(names)})
        with duckdb.connect() as con:
            con.register("_rows", values)
            hashed = con.sql(f"SELECT hash({', '.join(values.column_names)}) AS digest FROM _rows")
            return hashed.to_arrow_table().column(0).combine_chunks()

    @property
    def key_columns(self) -> str:
        """The primary-key column names as written in quarantine rows."""
        return "|".join(self.primary_key)

    def truncated_rule(self, truncated_rows: Sequence[int]) -> QuarantineRule:
        """``truncated_row``: rows the reader saw cut off (a file ending mid-row), which lack their last fields."""
        failed = np.isin(self.row_number - 1, np.asarray(truncated_rows, dtype=np.int64))
        message = ("the file ends in the middle of this row (its last fields are missing): the file was cut off "
                   "in transfer; ask the department to send the whole file again")
        return QuarantineRule("truncated_row", failed, "source_key", self.key_columns, self.source_key, constant(message))

    def key_rules(self) -> list[QuarantineRule]:
        """The two rules every source has: ``missing_source_key`` and ``duplicate_source_key``."""
        missing = self.source_key.isna().to_numpy()
        duplicate = (self.first_row != self.row_number) & ~missing
        # What the row holds in its key column(s): the raw value, or the parts joined as found.
        raw_key = (
            self.raw[self.primary_key[0]]
            if len(self.primary_key) == 1
            else to_series(
                pc.binary_join_element_wise(
                    *[as_arrow(self.raw[column]) for column in self.primary_key], _SEPARATOR, null_handling="replace"
                ),
                self.raw.index,
            )
        )
        columns = self.key_columns
        missing_message = (
            f"the primary key ({columns}) is empty; every row needs a key: fill {columns} in the source "
            f"system, or declare another primary_key for source '{self.source}' in sources.yaml"
        )

        def duplicate_messages(positions: np.ndarray) -> pd.Series:
            keys = self.source_key.iloc[positions]
            return (
                "source key '"
                + keys
                + "' ("
                + columns
                + ") repeats row "
                + pd.Series(self.first_row[positions], index=keys.index).astype(STRING)
                + "; keys must be unique: remove or merge the duplicate in the source system, "
                "or extend primary_key in sources.yaml"
            )

        return [
            QuarantineRule("missing_source_key", missing, "source_key", columns, raw_key, constant(missing_message)),
            QuarantineRule("duplicate_source_key", duplicate, "source_key", columns, self.source_key, duplicate_messages),
        ]

    def broadcast_extracted_at(self, length: int) -> pd.Series:
        """``extracted_at`` repeated ``length`` times, as ``datetime64[us, UTC]``."""
        return pd.Series(self.extracted_at, index=pd.RangeIndex(length), dtype=QUARANTINE_COLUMNS["extracted_at"])


def constant(message: str) -> Messages:
    """A message builder that says the same thing for every row."""

    def messages(positions: np.ndarray) -> pd.Series:
        return pd.Series(message, index=positions, dtype=STRING)

    return messages


def quoted(values: pd.Series) -> pd.Series:
    """``'value'`` for messages; a missing value shows as ``''``."""
    return "'" + values.astype(STRING).fillna("") + "'"


def quarantine(
    extract: KeyedRows, rules: Sequence[QuarantineRule], subjects: pd.Series | None = None
) -> tuple[np.ndarray, pd.DataFrame]:
    """Evaluate ``rules`` in order and build one quarantine row per failing extract row.

    Args:
        extract: the rows and their keys.
        rules: the quarantine rules, in the order a quarantine row reports them.
        subjects: per extract row, the resident ID number the row is about when it can be read (a
            consent decision's subject), kept as ``subject_id_number``; ``None`` leaves it empty.

    Returns:
        The mask of quarantined rows and the quarantine frame (columns of ``QUARANTINE_COLUMNS``).
    """
    n = len(extract.raw)
    failed = np.column_stack([rule.failed for rule in rules]) if rules else np.zeros((n, 0), dtype=bool)
    quarantined = failed.any(axis=1)
    positions = np.flatnonzero(quarantined)
    first = failed[positions].argmax(axis=1) if len(positions) else np.zeros(0, dtype=np.int64)

    all_rules = np.full(len(positions), "", dtype=object)
    field = np.full(len(positions), None, dtype=object)
    column = np.full(len(positions), None, dtype=object)
    value = np.full(len(positions), None, dtype=object)
    message = np.full(len(positions), None, dtype=object)
    for i, rule in enumerate(rules):
        hit = failed[positions, i]
        all_rules = np.where(hit & (all_rules != ""), all_rules + "," + rule.name, np.where(hit, rule.name, all_rules))
        chosen = first == i
        if not chosen.any():
            continue
        rows = positions[chosen]
        field[chosen] = rule.field
        column[chosen] = rule.column
        value[chosen] = rule.value.astype(STRING).iloc[rows].to_numpy(dtype=object, na_value=None)
        message[chosen] = rule.messages(rows).to_numpy(dtype=object, na_value=None)

    frame = pd.DataFrame(
        {
            "source": extract.source,
            "source_key": extract.source_key.iloc[positions].to_numpy(dtype=object, na_value=None),
            "record_id": extract.record_id.iloc[positions].to_numpy(dtype=object, na_value=None),
            "row_number": extract.row_number[positions],
            "rule": np.array([rules[i].name for i in range(len(rules))], dtype=object)[first] if len(rules) else [],
            "rules": all_rules,
            "field": field,
            "column": column,
            "value": value,
            "message": message,
            "raw_record": raw_records(extract.raw.iloc[positions]),
            "subject_id_number": (subjects.iloc[positions].to_numpy(dtype=object, na_value=None)
                                  if subjects is not None else None),
        },
        index=pd.RangeIndex(len(positions)),
    )
    frame["extracted_at"] = extract.broadcast_extracted_at(len(positions))
    return quarantined, frame.astype(QUARANTINE_COLUMNS)


def raw_records(rows: pd.DataFrame) -> list[str]:
    """Each row as a JSON object keyed by the source's column names, Chinese kept readable."""
    if rows.empty:
        return []
    text = rows.to_json(orient="records", lines=True, force_ascii=False)
    # pandas escapes "/" as "\/" (valid JSON, but "1980\/1\/2" is not what the department typed).
    # Every "\/" in its output is that escape: a backslash from the data is written "\\", and a
    # bare "/" never occurs, so no other reading of the pair exists.
    return [line.replace("\\/", "/") for line in text.split("\n")[: len(rows)]]


def check_conservation(source: str, extract_rows: int, staged: pd.DataFrame, quarantined: pd.DataFrame) -> None:
    """Raise if a row was lost or duplicated: every extracted row is staged or quarantined, once.

    Raises:
        TerminalError: the invariant is broken (a defect in staging, never in the data).
    """
    if len(staged) + len(quarantined) != extract_rows:
        raise TerminalError(
            f"staging source {source!r} lost track of rows: {extract_rows} extracted, {len(staged)} staged, "
            f"{len(quarantined)} quarantined. This is a defect in silobreaker's staging, not in the data; "
            "report it with the source's extract"
        )


def null_text(length: int) -> pd.Series:
    """A ``string`` column of ``length`` missing values (for a field the source does not map)."""
    return to_series(pa.nulls(length, pa.large_string()), pd.RangeIndex(length))
