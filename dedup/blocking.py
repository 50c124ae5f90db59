"""Candidate pairs from blocking rules, generated in DuckDB.

Comparing every record with every other is O(n²): 5 million residents would be 12.5 trillion pairs.
A blocking rule only pairs records that agree exactly on its keys, which DuckDB does as a hash self-join.
Blocks larger than the rule's cap are skipped (and reported) rather than exploded: a placeholder phone
number shared by thousands of records is evidence of nothing, and n²/2 pairs of it would swamp memory.

The ``*_sql`` functions return SQL text only; :func:`candidate_pairs` runs them on a connection.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from core.threads import usable_cores
from dedup.prepare import NAME_KEYS, alias_rows
from dedup.settings import BlockingRule, LinkSettings

__all__ = [
    "BlockingReport",
    "block_summary_sql",
    "block_sizes_sql",
    "blocked_pairs_sql",
    "blocking_keys",
    "blocking_report",
    "blocking_rows",
    "candidate_pairs",
    "coded_keys",
    "flipped_members_sql",
    "iter_pair_batches",
    "load_blocking_rows",
    "pairs_touching",
    "pairs_within_sql",
]

log = logging.getLogger(__name__)

RECORDS_TABLE = "dedup_records"
PAIRS_TABLE = "dedup_pairs"
_RULE_PAIRS_TABLE = f"{PAIRS_TABLE}_by_rule"
_BLOCKS_TABLE = "dedup_blocks"


@dataclass(frozen=True)
class BlockingReport:
    """What blocking produced: pairs per rule (before de-duplication across rules) and skipped blocks."""

    candidate_pairs: int
    pairs_per_rule: dict[str, int]
    skipped_blocks: dict[str, int]
    skipped_records: dict[str, int]
    largest_skipped_block: dict[str, int]


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _keys_present(keys: Sequence[str], alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return " AND ".join(f"{prefix}{_quote(key)} IS NOT NULL" for key in keys)


def _pairing_blocks_sql(rule: BlockingRule, max_block_size: int, table: str, among: str) -> str:
    """SQL for the key values of the blocks of ``rule`` in ``among`` (a query of key values) that yield pairs
    (2..``max_block_size`` records), counted over all of ``table``."""
    keys = ", ".join(_quote(key) for key in rule.keys)
    return (f"SELECT {keys} FROM {table} SEMI JOIN ({among}) USING ({keys}) "
            f"GROUP BY {keys} HAVING count(*) BETWEEN 2 AND {int(max_block_size)}")


def block_sizes_sql(rule: BlockingRule, table: str = RECORDS_TABLE) -> str:
    """SQL giving each block of ``rule`` (records sharing all key values) and its size ``n``."""
    keys = ", ".join(_quote(key) for key in rule.keys)
    return f"SELECT {keys}, count(*) AS n FROM {table} WHERE {_keys_present(rule.keys)} GROUP BY {keys}"


def block_summary_sql(rule: BlockingRule, max_block_size: int, table: str = RECORDS_TABLE) -> str:
    """SQL for one row: pairs the kept blocks of ``rule`` yield, and the blocks, records and largest
    block skipped for exceeding ``max_block_size``. Counting from block sizes avoids running the join."""
    return _summary_sql(max_block_size, f"({block_sizes_sql(rule, table)})")


def _summary_sql(max_block_size: int, sizes: str) -> str:
    """:func:`block_summary_sql` over ``sizes``, a relation of block sizes ``n`` (:func:`block_sizes_sql`)."""
    limit = int(max_block_size)
    return (
        f"SELECT coalesce(sum(n * (n - 1) // 2) FILTER (WHERE n <= {limit}), 0) AS pairs, "
        f"count(*) FILTER (WHERE n > {limit}) AS blocks, "
        f"coalesce(sum(n) FILTER (WHERE n > {limit}), 0) AS records, "
        f"coalesce(max(n) FILTER (WHERE n > {limit}), 0) AS largest "
        f"FROM {sizes}"
    )


def blocked_pairs_sql(rule: BlockingRule, rule_index: int, max_block_size: int, sizes: str, table: str = RECORDS_TABLE) -> str:
    """SQL for the pairs ``(rid_l < rid_r)`` that agree on every key of ``rule``, oversized blocks left out; the
    blocks are read from ``sizes``, a table of their key values and size ``n`` (:func:`block_sizes_sql` of ``table``).

    Only records in blocks of 2..``max_block_size`` enter the self-join, so its output is bounded by
    ``records × max_block_size / 2`` whatever the data.
    """
    keys = ", ".join(_quote(key) for key in rule.keys)
    join = " AND ".join(f"l.{_quote(key)} = r.{_quote(key)}" for key in rule.keys)
    return (
        f"WITH kept AS (SELECT {keys} FROM {sizes} WHERE n BETWEEN 2 AND {int(max_block_size)}), "
        f"members AS (SELECT t.rid, {', '.join(f't.{_quote(key)}' for key in rule.keys)} "
        f"FROM {table} t SEMI JOIN kept USING ({keys})) "
        f"SELECT l.rid AS rid_l, r.rid AS rid_r, {int(rule_index)}::SMALLINT AS rule "
        f"FROM members l JOIN members r ON {join} AND l.rid < r.rid"
    )


def _touching_pairs_sql(settings: LinkSettings, touched: str, table: str) -> list[str]:
    """:func:`blocked_pairs_sql` of every rule for the pairs that hold a record of ``touched`` (a table of ``rid``): those
    records joined to their block mates, not every block to itself. The blocks of the touched records are
    counted over all of ``table``, so a block is left out exactly when a whole run would leave it out."""
    parts = []
    for index, rule in enumerate(settings.blocking_rules):
        keys = ", ".join(_quote(key) for key in rule.keys)
        join = " AND ".join(f"t.{_quote(key)} = m.{_quote(key)}" for key in rule.keys)
        blocks = f"SELECT DISTINCT {keys} FROM {table} SEMI JOIN {touched} USING (rid) WHERE {_keys_present(rule.keys)}"
        parts.append(
            f"WITH kept AS ({_pairing_blocks_sql(rule, settings.block_size_limit(rule), table, blocks)}), "
            f"members AS (SELECT r.rid, {', '.join(f'r.{_quote(key)}' for key in rule.keys)} "
            f"FROM {table} r SEMI JOIN kept USING ({keys})), "
            f"touching AS (SELECT * FROM members SEMI JOIN {touched} USING (rid)) "
            f"SELECT least(t.rid, m.rid) AS rid_l, greatest(t.rid, m.rid) AS rid_r, {index}::SMALLINT AS rule "
            f"FROM touching t JOIN members m ON {join} AND t.rid <> m.rid"
        )
    return parts


def pairs_within_sql(settings: LinkSettings, groups: str, table: str = RECORDS_TABLE) -> str:
    """SQL for the candidate pairs whose two records are in one group of ``groups`` (``rid, label``):
    each group's records joined on their keys within it, block sizes counted over all of ``table`` (only
    those of the groups' blocks: an incremental night searches a few groups among a million records)."""
    parts = []
    for rule in settings.blocking_rules:
        keys = ", ".join(_quote(key) for key in rule.keys)
        join = " AND ".join(f"l.{_quote(key)} = r.{_quote(key)}" for key in rule.keys)
        blocks = f"SELECT DISTINCT {keys} FROM {table} SEMI JOIN {groups} USING (rid) WHERE {_keys_present(rule.keys)}"
        parts.append(
            f"WITH kept AS ({_pairing_blocks_sql(rule, settings.block_size_limit(rule), table, blocks)}), "
            f"members AS (SELECT t.rid, g.label, {', '.join(f't.{_quote(key)}' for key in rule.keys)} "
            f"FROM {table} t JOIN {groups} g USING (rid) SEMI JOIN kept USING ({keys})) "
            f"SELECT l.rid AS rid_l, r.rid AS rid_r FROM members l JOIN members r "
            f"ON l.label = r.label AND {join} AND l.rid < r.rid"
        )
    union = " UNION ".join(f"({part})" for part in parts)
    return f"SELECT DISTINCT rid_l, rid_r FROM ({union})"


def flipped_members_sql(
    rule: BlockingRule, max_block_size: int, before: str, changed_now: str, changed_before: str,
    table: str = RECORDS_TABLE,
) -> str:
    """SQL for the ``rid`` of ``table`` in a block of ``rule`` that yields pairs now and did not in
    ``before`` (the same key columns as an earlier run blocked them, ``rid`` its record positions), or
    the other way round: a block that grew past its cap or shrank under it, whose pairs a run that links
    only what changed must redo. Only a block holding a record whose keys changed can: one of
    ``changed_now`` (``rid`` of ``table``) or ``changed_before`` (``rid`` of ``before``)."""
    keys = ", ".join(_quote(key) for key in rule.keys)
    present = _keys_present(rule.keys)
    limit = int(max_block_size)
    return (
        f"WITH blocks AS (SELECT {keys} FROM {table} SEMI JOIN {changed_now} USING (rid) WHERE {present} "
        f"UNION SELECT {keys} FROM {before} SEMI JOIN {changed_before} USING (rid) WHERE {present}), "
        f"now AS (SELECT {keys}, count(*) AS n FROM {table} SEMI JOIN blocks USING ({keys}) GROUP BY {keys}), "
        f"earlier AS (SELECT {keys}, count(*) AS n FROM {before} SEMI JOIN blocks USING ({keys}) GROUP BY {keys}), "
        f"flipped AS (SELECT {keys} FROM now FULL OUTER JOIN earlier USING ({keys}) "
        f"WHERE (coalesce(now.n, 0) BETWEEN 2 AND {limit}) <> (coalesce(earlier.n, 0) BETWEEN 2 AND {limit})) "
        f"SELECT DISTINCT rid FROM {table} SEMI JOIN flipped USING ({keys})"
    )


def candidate_pairs(
    con: duckdb.DuckDBPyConnection,
    prepared: pd.DataFrame,
    settings: LinkSettings,
) -> BlockingReport:
    """Materialise the candidate pairs of ``prepared`` into table ``dedup_pairs`` on ``con``.

    Args:
        con: a DuckDB connection owned by the caller (its temp directory is where pairs spill).
        prepared: output of :func:`dedup.prepare.prepare_records`.
        settings: blocking rules and block-size caps.

    Returns:
        Counts per rule and the oversized blocks skipped; the pairs stay in DuckDB for
        :func:`iter_pair_batches` to stream.
    """
    _load_rows(con, coded_keys(blocking_rows(prepared, settings)))
    _create_rule_pairs(con)
    summaries = []
    for index, rule in enumerate(settings.blocking_rules):
        # A rule's blocks counted once, for its summary and for the blocks it pairs within.
        limit = settings.block_size_limit(rule)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_BLOCKS_TABLE} AS {block_sizes_sql(rule)}")
        summaries.append(_one_row(con, _summary_sql(limit, _BLOCKS_TABLE)))
        con.execute(f"INSERT INTO {_RULE_PAIRS_TABLE} {blocked_pairs_sql(rule, index, limit, _BLOCKS_TABLE)}")
    con.execute(f"DROP TABLE {_BLOCKS_TABLE}")
    return _distinct_pairs(con, settings, summaries, len(prepared))


def pairs_touching(con: duckdb.DuckDBPyConnection, settings: LinkSettings, rids: np.ndarray) -> BlockingReport:
    """:func:`candidate_pairs` for the pairs that hold one of the records ``rids`` only, into ``dedup_pairs``;
    the records' keys must be loaded (:func:`load_blocking_rows`). ``candidate_pairs`` in the report
    counts those pairs; the per-rule counts are of every record's blocks, as a whole run reports them."""
    con.register("dedup_touching_frame", pd.DataFrame({"rid": np.asarray(rids, dtype=np.int32)}))
    con.execute("CREATE OR REPLACE TEMP TABLE dedup_touching AS SELECT * FROM dedup_touching_frame")
    con.unregister("dedup_touching_frame")
    summaries = [_one_row(con, block_summary_sql(rule, settings.block_size_limit(rule))) for rule in settings.blocking_rules]
    _create_rule_pairs(con)
    for part in _touching_pairs_sql(settings, "dedup_touching", RECORDS_TABLE):
        con.execute(f"INSERT INTO {_RULE_PAIRS_TABLE} {part}")
    return _distinct_pairs(con, settings, summaries, len(rids))


def load_blocking_rows(con: duckdb.DuckDBPyConnection, prepared: pd.DataFrame, settings: LinkSettings) -> None:
    """Load the records' blocking keys (a row per record and alias, :func:`blocking_rows`) as table
    ``dedup_records`` on ``con``, as text: an incremental run blocks them against the keys the last run kept."""
    _load_rows(con, blocking_rows(prepared, settings))


def _load_rows(con: duckdb.DuckDBPyConnection, rows: pd.DataFrame) -> None:
    con.register(f"{RECORDS_TABLE}_frame", rows)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {RECORDS_TABLE} AS SELECT * FROM {RECORDS_TABLE}_frame")
    con.unregister(f"{RECORDS_TABLE}_frame")


def blocking_rows(prepared: pd.DataFrame, settings: LinkSettings) -> pd.DataFrame:
    """``rid`` and every key column of ``settings``' blocking rules, a row per record and alias."""
    return _blocking_rows(prepared, blocking_keys(settings))


def coded_keys(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` (``rid`` and the blocking keys) with every key as an integer code of its value, null where
    the value is missing. Blocking only asks which records agree on a key, and an engine hashes, joins and
    groups integers faster than text (the linking step at 1M records 0.92×, benchmarks/results/splink_compare.md,
    2026-12-07). The codes are of these rows only: never compare them with another run's."""
    keys = list(rows.columns.drop("rid"))

    def code(key: str) -> pd.arrays.IntegerArray:
        codes = pd.factorize(rows[key], use_na_sentinel=True)[0].astype(np.int32)
        return pd.arrays.IntegerArray(codes, codes < 0)

    # A column at a time on each core: factorising Arrow-backed text runs outside the GIL.
    with ThreadPoolExecutor(max_workers=max(1, min(len(keys), usable_cores()))) as pool:
        coded = dict(zip(keys, pool.map(code, keys), strict=True))
    return pd.DataFrame({"rid": rows["rid"].to_numpy(dtype=np.int32), **coded})


def blocking_keys(settings: LinkSettings) -> list[str]:
    """The prepared columns ``settings``' blocking rules key on, in name order."""
    return sorted({key for rule in settings.blocking_rules for key in rule.keys})


#: Keys whose one value belongs to one person (or one household's phone): a block larger than the cap is a placeholder.
_IDENTIFIER_KEYS = frozenset({"id_number", "phone"})


def blocking_report(settings: LinkSettings, summaries: Sequence[tuple[int, int, int, int]], total: int) -> BlockingReport:
    """The report of a blocking run from each rule's summary (in rule order: the pairs its kept blocks
    yield, and the blocks, records and largest block skipped, as :func:`block_summary_sql` gives them)
    and the distinct candidate pairs; the skipped blocks are logged (sizes only)."""
    pairs_per_rule: dict[str, int] = {}
    skipped_blocks: dict[str, int] = {}
    skipped_records: dict[str, int] = {}
    largest: dict[str, int] = {}
    for rule, (pairs, blocks, skipped, biggest) in zip(settings.blocking_rules, summaries, strict=True):
        if blocks:
            # Key values are personal data (ID numbers, phones); log sizes only. A block of one ID number or phone
            # shared by many records is a placeholder a department typed: a warning, told in the run's summary. A
            # common name or a crowded address in one month is what the cap is for: said every night, a warning
            # would teach the data team to read past warnings.
            placeholder = bool(_IDENTIFIER_KEYS & set(rule.keys))
            log.log(logging.WARNING if placeholder else logging.INFO,
                    "blocking rule %s: skipped %d block(s) larger than %d records (%d records, largest %d)%s",
                    rule.name, blocks, settings.block_size_limit(rule), skipped, biggest,
                    "; one value shared by so many records is likely a placeholder: see the quality report" if placeholder
                    else "")
        skipped_blocks[rule.name] = int(blocks)
        skipped_records[rule.name] = int(skipped)
        largest[rule.name] = int(biggest)
        pairs_per_rule[rule.name] = int(pairs)
        log.info("blocking rule %s: %d pairs", rule.name, pairs)
    return BlockingReport(int(total), pairs_per_rule, skipped_blocks, skipped_records, largest)


def _create_rule_pairs(con: duckdb.DuckDBPyConnection) -> None:
    # Rule by rule into one table, then each pair once (_distinct_pairs): one rule's self-join at a time holds
    # one rule's hash tables, where a UNION ALL of them all built every rule's at once (the linking step's peak
    # memory at 1M records, benchmarks/results/splink_compare.md).
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_RULE_PAIRS_TABLE} (rid_l INTEGER, rid_r INTEGER, rule SMALLINT)")


def _distinct_pairs(con: duckdb.DuckDBPyConnection, settings: LinkSettings, summaries: Sequence[tuple[int, int, int, int]],
                    records: int) -> BlockingReport:
    """Each pair of the rules' pairs once, with its first rule, into ``dedup_pairs``; the report."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {PAIRS_TABLE} AS "
                f"SELECT rid_l, rid_r, min(rule) AS rule FROM {_RULE_PAIRS_TABLE} GROUP BY rid_l, rid_r")
    con.execute(f"DROP TABLE {_RULE_PAIRS_TABLE}")
    (total,) = _one_row(con, f"SELECT count(*) FROM {PAIRS_TABLE}")
    log.info("blocking: %d distinct candidate pairs from %d records", total, records)
    return blocking_report(settings, summaries, total)


def _blocking_rows(prepared: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The records' blocking keys, plus a row per alias (曾用名) of a record: the record's keys with its
    name keys taken from the alias (:func:`dedup.prepare.alias_rows`), so a record is blocked under each
    name it is known by. Pairs keep the record's ``rid``; a record never pairs with its own alias."""
    rows = prepared.loc[:, ["rid", *keys]]
    if "aliases" not in prepared.columns or not prepared["aliases"].notna().any():
        return rows
    aliases = alias_rows(prepared)
    variants = rows.iloc[aliases["rid"].to_numpy()].reset_index(drop=True)
    for key in (key for key in NAME_KEYS if key in keys):
        variants[key] = aliases[key].to_numpy()
    return pd.concat([rows, variants], ignore_index=True)


def _one_row(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    # fetchall, not fetchone: DuckDB 2.0 refuses further work on a connection whose result is unfinished.
    (row,) = con.execute(sql).fetchall()
    return row


def iter_pair_batches(
    con: duckdb.DuckDBPyConnection, batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Stream ``(rid_l, rid_r, rule)`` arrays from ``dedup_pairs`` in batches of ``batch_size`` (the last one fewer).

    DuckDB hands out Arrow batches of its own size (about 120k rows); they are gathered and cut at
    ``batch_size`` exactly, so each comparison call amortises its start-up over many pairs and batches
    of :func:`dedup.backend.even_batch_size` keep every thread busy to the end.
    """
    reader = con.sql(f"SELECT rid_l, rid_r, rule FROM {PAIRS_TABLE}").to_arrow_reader(batch_size)
    pending = pa.Table.from_batches([], schema=reader.schema)
    for batch in reader:
        pending = pa.concat_tables([pending, pa.Table.from_batches([batch])])
        while pending.num_rows >= batch_size:
            yield _columns(pending.slice(0, batch_size))
            pending = pending.slice(batch_size)
    if pending.num_rows:
        yield _columns(pending)


def _columns(table: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    table = table.combine_chunks()
    return tuple(table.column(name).to_numpy() for name in ("rid_l", "rid_r", "rule"))
