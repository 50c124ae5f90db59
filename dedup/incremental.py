"""Link only what changed since the last run, and find the persons a whole relink would.

A night's sync changes a few records in a million. Each linking run can keep what the next one needs to
spare the work (:class:`KeptLinking`, under ``<home>/kept/linking``): the model it scored with, every
record's prepared features with a fingerprint of what they were prepared from, the blocking keys as
blocked, and the scored pairs it kept (links, near misses, vetoed). The next run
(:func:`dedup.link_records` with ``kept``):

1. prepares only the records that are new or whose fingerprint changed (:func:`plan_increment`);
2. finds the records whose pairs may score differently (:func:`relinked_records`): those, the ones
   whose borrowed-ID status changed (:mod:`dedup.id_sharing`), every record at a flat of a person
   whose homes changed (the ``moved`` address level reads them), every member of a block that crossed
   its rule's size cap either way, and both records of a kept pair whose order in the input turned;
3. blocks and scores only the pairs holding one of them, with the kept model, and carries over the
   kept pairs of all the others as they were;
4. clusters every record again from the links (cheap) — vetoes, review decisions and shared ID numbers
   apply to the whole — and keeps the person ids as every run does (:mod:`dedup.ids`).

The model is not fitted again between relinks, so a pair scores the same whichever run compares it:
the persons are those a whole relink with the same model gives (``tests/dedup/test_dedup_incremental.py``
checks it over a sequence of days). Everything is linked again and the model fitted again when the
kept state is :data:`RELINK_DAYS` old, or when linking.yaml, the columns given or the reading of the ID
number or community column (:class:`dedup.prepare.ColumnReading`) changed. ``silobreaker run --full`` links every
record again with the kept model while it is fresh (:meth:`KeptLinking.forget`, :meth:`KeptLinking.load_model`), so
it gives the persons an incremental night gives; it does not put off the model's next fitting. So does a night whose
kept records, keys or pairs cannot be read.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core.folders import replacing_folder
from core.frames import DIGEST_SUFFIX, FRAME_SUFFIX, read_frame, unreadable_level, write_frame
from dedup.blocking import RECORDS_TABLE, blocking_keys, blocking_rows, flipped_members_sql
from dedup.model import FellegiSunterModel, PairContext, TermFrequencies
from dedup.prepare import (
    OPTIONAL_COLUMNS,
    PREPARED_COLUMNS,
    READING_FACTS,
    REQUIRED_COLUMNS,
    TEXT,
    ColumnReading,
    prepare_with_facts,
)
from dedup.settings import LinkSettings

__all__ = ["RELINK_DAYS", "FittedModel", "Increment", "KeptLinking", "fingerprints", "found_in", "plan_increment", "positions", "present_rows",
           "relinked_records"]

log = logging.getLogger(__name__)

RELINK_DAYS = 7
"""Days after which the model is fitted again and every record linked again."""

#: Bumped when what is kept changes meaning or form (4: Arrow files; 5: pairs by row of the kept records): a kept
#: state of another version is not used.
_VERSION = 5
_STATE, _MODEL, _TERMS = "state.json", "model.json", "term_frequencies.parquet"
_RECORDS, _KEYS, _PAIRS, _WITHIN = (f"{name}{FRAME_SUFFIX}" for name in ("records", "keys", "pairs", "within"))
_MISSING = "\x00"


def fingerprints(records: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash per record of every column linking reads (:data:`dedup.prepare.REQUIRED_COLUMNS`
    and the optional ones given), as text: the same whether a value arrives as Arrow or Python text.
    DuckDB's ``hash``, which is not promised to stay the same across DuckDB versions: a state kept under
    another version is not used (:meth:`KeptLinking.load`)."""
    columns = linked_columns(records)
    text = ", ".join(f"CAST({_quote(column)} AS VARCHAR)" for column in columns)
    with duckdb.connect() as con:
        con.register("dedup_fingerprinted", records.loc[:, columns])
        return con.execute(f"SELECT hash({text}) AS h FROM dedup_fingerprinted").fetchnumpy()["h"].astype(np.uint64)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def positions(values: pd.Series | np.ndarray, among: pd.Series | np.ndarray) -> np.ndarray:
    """Per value, its position in ``among`` (whose values are unique), or -1 (a missing value too): Arrow's
    hash lookup, which takes a third of the time pandas' ``get_indexer`` takes on record ids. A few values
    (a night's review decisions among 2.5M records) are hashed themselves and ``among`` probes them."""
    values, among = pa.array(values, type=pa.large_string()), pa.array(among, type=pa.large_string())
    if len(values) * 8 >= len(among):
        found = pc.index_in(values, value_set=among, skip_nulls=True)
        return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    coded = pc.dictionary_encode(values)
    at = pc.index_in(among, value_set=coded.dictionary, skip_nulls=True).fill_null(-1).to_numpy(zero_copy_only=False)
    hits = np.flatnonzero(at >= 0)
    position = np.full(len(coded.dictionary) + 1, -1, dtype=np.int64)  # the last: a missing value's
    position[at[hits]] = hits
    return position[coded.indices.fill_null(len(coded.dictionary)).to_numpy(zero_copy_only=False)]


def linked_columns(records: pd.DataFrame) -> list[str]:
    """The columns of ``records`` that linking reads."""
    return [column for column in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if column in records.columns]


def settings_digest(settings: LinkSettings) -> str:
    """A digest of everything ``settings`` declare: a kept state is used only under the same settings."""
    return hashlib.sha256(settings.model_dump_json().encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class KeptLinking:
    """What a linking run keeps for the next one to link only what changed.

    Attributes:
        model: the model the pairs were scored with (its term frequencies by value).
        records: per record of the run, ``record_id``, ``fingerprint`` (:func:`fingerprints`), ``borrowed``
            (linked without its ID number, :mod:`dedup.id_sharing`), the :data:`READING_FACTS` and the
            prepared columns (before a borrowed number was taken off), in the run's input order.
        keys: the blocking keys as blocked (a row per record and alias, borrowed numbers taken off),
            ``rid`` the record's row in ``records``: the blocks of the run.
        pairs: the scored candidate pairs the run kept (links, near misses, vetoed), before clustering;
            ``rid_l, rid_r`` are rows of ``records``.
        within: ``rid_l, rid_r`` (rows of ``records``) of the vetoed candidate pairs inside the run's
            components (the cannot-links clustering honoured).
        reading: how the run read the ID number and community columns.
        columns: the columns linking read (:func:`linked_columns`).
        digest: :func:`settings_digest` of the run's settings.
        trained_at: when the model was fitted (the last whole relink).
    """

    model: FellegiSunterModel
    records: pd.DataFrame
    keys: pd.DataFrame
    pairs: pd.DataFrame
    within: pd.DataFrame
    reading: ColumnReading
    columns: tuple[str, ...]
    digest: str
    trained_at: dt.datetime

    def save(self, folder: Path) -> None:
        """Write this state to ``folder``, replacing what is there whole or not at all."""
        with replacing_folder(folder) as fresh:
            write_frame(self.records, fresh / _RECORDS)
            write_frame(self.keys, fresh / _KEYS)
            write_frame(self.pairs, fresh / _PAIRS)
            write_frame(self.within, fresh / _WITHIN)
            _save_model(self.model, fresh)
            state = {"version": _VERSION, "duckdb": duckdb.__version__, "digest": self.digest, "columns": list(self.columns),
                     "reading": {"resident_ids": self.reading.resident_ids,
                                 "communities_given": self.reading.communities_given},
                     "trained_at": self.trained_at.isoformat()}
            (fresh / _STATE).write_text(json.dumps(state, indent=1), encoding="utf-8")

    @staticmethod
    def forget(folder: Path) -> None:
        """Forget the records, keys and pairs kept in ``folder`` but not the model (``silobreaker run --full``): the
        next run links every record again, with that model while it is fresh (:meth:`load_model`)."""
        for name in (_RECORDS, _KEYS, _PAIRS, _WITHIN):
            for path in (folder / name, folder / f"{name}{DIGEST_SUFFIX}"):
                path.unlink(missing_ok=True)

    @staticmethod
    def load(folder: Path, settings: LinkSettings, now: dt.datetime) -> KeptLinking | None:
        """The state kept in ``folder`` if it was kept under ``settings`` and its model is younger than
        :data:`RELINK_DAYS`; ``None`` means: link everything (with :meth:`load_model`'s model, if any; and why is
        logged)."""
        try:
            state = json.loads((folder / _STATE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            log.warning("linking: the state kept in %s cannot be read (%s); linking every record again", folder, e)
            return None
        why = _stale(state, settings, now)
        if why:
            log.info("linking: %s; linking every record again and fitting the model again", why)
            return None
        if not (folder / _RECORDS).exists():
            log.info("linking: only the model was kept (run --full); linking every record again with it")
            return None
        try:
            return KeptLinking(
                model=_load_model(folder),
                records=read_frame(folder / _RECORDS),
                keys=read_frame(folder / _KEYS),
                pairs=read_frame(folder / _PAIRS),
                within=read_frame(folder / _WITHIN),
                reading=ColumnReading(**state["reading"]),
                columns=tuple(state["columns"]),
                digest=state["digest"],
                trained_at=dt.datetime.fromisoformat(state["trained_at"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.log(unreadable_level(e), "linking: the state kept in %s cannot be read (%s); linking every record again",
                    folder, e)
            return None


    @staticmethod
    def load_model(folder: Path, settings: LinkSettings, now: dt.datetime) -> FittedModel | None:
        """The model kept in ``folder`` if it was fitted under ``settings`` less than :data:`RELINK_DAYS` ago (what
        :meth:`load` asks of the whole state), for a night that links every record while it is fresh: when only the
        model is kept (:meth:`forget`: ``silobreaker run --full``) or the rest cannot be read (a damaged frame, or one
        an earlier version wrote without its digest). ``None``: fit one. Read it only when :meth:`load` gave nothing,
        as ``assets.linked`` does: a state that loads holds its model already."""
        try:
            state = json.loads((folder / _STATE).read_text(encoding="utf-8"))
            if _stale(state, settings, now):
                return None
            return FittedModel(_load_model(folder), dt.datetime.fromisoformat(state["trained_at"]),
                               ColumnReading(**state["reading"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("linking: the model kept in %s cannot be read (%s); fitting it again", folder, e)
            return None


@dataclass(frozen=True)
class FittedModel:
    """A model a whole relink scores with instead of fitting one (:meth:`KeptLinking.load_model`): when it was fitted,
    and how the records' columns read then — it holds for records that read alike."""

    model: FellegiSunterModel
    trained_at: dt.datetime
    reading: ColumnReading


def _stale(state: dict, settings: LinkSettings, now: dt.datetime) -> str | None:
    if state.get("version") != _VERSION:
        return "the kept linking state is of another version"
    if state.get("duckdb") != duckdb.__version__:
        return "DuckDB was upgraded since the last run (its record fingerprints may differ)"
    if state.get("digest") != settings_digest(settings):
        return "the linking settings changed since the last run"
    trained_at = dt.datetime.fromisoformat(state["trained_at"])
    if now - trained_at >= dt.timedelta(days=RELINK_DAYS):
        return f"the model was fitted {trained_at:%Y-%m-%d}, {RELINK_DAYS} or more days ago"
    return None


#: What an incremental run reads of the kept records once it has prepared the present ones.
_RECORD_FACTS_USED = ["borrowed", "id_number", "id_number_valid", "household"]


@dataclass
class Increment:
    """A run that links only what changed: what it reuses from ``kept`` and what it prepared anew.

    Attributes:
        kept: the previous run's state.
        prepared: every record prepared (reused or anew), borrowed numbers not yet taken off, input order.
        facts: the records' :data:`READING_FACTS`.
        fingerprint: the records' :func:`fingerprints`.
        earlier: per record, its row in ``kept.records``, or -1 for a new record.
        touched: per record, new or changed since the kept run.
        gone: rows of ``kept.records`` no longer among the records.
    """

    kept: KeptLinking
    prepared: pd.DataFrame
    facts: pd.DataFrame
    fingerprint: np.ndarray
    earlier: np.ndarray
    touched: np.ndarray
    gone: np.ndarray = field(repr=False)

    def release(self, *parts: str) -> None:
        """Let go of the kept ``parts`` (``keys``, ``pairs``) once used: at a million people each is
        hundreds of megabytes the rest of the run does not need."""
        self.kept = replace(self.kept, **dict.fromkeys(parts))


def plan_increment(records: pd.DataFrame, kept: KeptLinking, settings: LinkSettings) -> Increment | None:
    """Prepare only the new and changed ``records``, reusing the prepared rows of the rest from ``kept``;
    ``None`` when the records cannot be linked on the kept state (logged: link everything)."""
    if settings_digest(settings) != kept.digest:
        log.info("linking: the settings differ from the kept state's; linking every record again")
        return None
    if tuple(linked_columns(records)) != kept.columns:
        log.info("linking: the records give other columns than the last run's; linking every record again")
        return None
    record_id = records["record_id"].astype(TEXT)
    earlier = positions(record_id, kept.records["record_id"])
    if not _unique(record_id, earlier):
        return None  # the whole run names the record and the fix
    fingerprint = fingerprints(records)
    kept_fingerprint = kept.records["fingerprint"].to_numpy(dtype=np.uint64)
    touched = (earlier < 0) | (kept_fingerprint[np.maximum(earlier, 0)] != fingerprint)
    reused = np.flatnonzero(~touched)
    anew = np.flatnonzero(touched)
    fresh, fresh_facts = prepare_with_facts(records.iloc[anew], kept.reading)
    facts = _in_order(kept.records.loc[:, list(READING_FACTS)], earlier[reused], fresh_facts, reused, anew)
    reading = ColumnReading.of(facts)
    if reading != kept.reading:
        log.info("linking: the ID number or community column now reads otherwise (%s, was %s); "
                 "linking every record again", reading, kept.reading)
        return None
    columns = [column for column in PREPARED_COLUMNS if column != "rid"]
    prepared = _in_order(kept.records.loc[:, columns], earlier[reused], fresh.loc[:, columns], reused, anew)
    prepared.insert(0, "rid", np.arange(len(prepared), dtype=np.int32))
    seen = np.zeros(len(kept.records), dtype=bool)
    seen[earlier[earlier >= 0]] = True
    log.info("linking: %d of %d records new or changed, %d gone since the last run",
             len(anew), len(records), int((~seen).sum()))
    # Of the kept records only what finds the relinked records is read from here on.
    kept = replace(kept, records=kept.records.loc[:, _RECORD_FACTS_USED])
    return Increment(kept=kept, prepared=prepared, facts=facts, fingerprint=fingerprint, earlier=earlier,
                     touched=touched, gone=np.flatnonzero(~seen))


def _unique(record_id: pd.Series, earlier: np.ndarray) -> bool:
    """Whether every record id is given and given once, from where each stood in the last run (``earlier``, its
    unique ids): two ids that were there are one only if at one position, and an id that was not can repeat only
    another that was not either. Hashing only the new ids, not the night's every id (2.5M: 0.8 s by Arrow)."""
    if record_id.isna().any():
        return False
    was = earlier[earlier >= 0]
    if len(was) and np.bincount(was).max() > 1:
        return False
    return not record_id[earlier < 0].duplicated().any()


def _in_order(kept: pd.DataFrame, rows: np.ndarray, anew: pd.DataFrame, reused_at: np.ndarray,
              anew_at: np.ndarray) -> pd.DataFrame:
    """Rows ``rows`` of ``kept`` (at input positions ``reused_at``) and ``anew`` (at ``anew_at``) as one frame
    in input order, with ``kept``'s dtypes: one Arrow ``take`` over both, not a pandas concatenation
    re-ordered (planning a day of 200k people: 0.6–0.9 s against 1.2–1.8 s, three runs each)."""
    table = pa.Table.from_pandas(kept, preserve_index=False)
    fresh = pa.Table.from_pandas(anew.astype(kept.dtypes.to_dict()).reset_index(drop=True), schema=table.schema,
                                 preserve_index=False)
    index = np.empty(len(reused_at) + len(anew_at), dtype=np.int64)
    index[reused_at] = rows
    index[anew_at] = len(kept) + np.arange(len(anew_at))
    both = pa.concat_tables([table, fresh]).take(pa.array(index))
    return both.to_pandas().astype(kept.dtypes.to_dict())


def relinked_records(
    con: duckdb.DuckDBPyConnection,
    increment: Increment,
    prepared: pd.DataFrame,
    borrowed: np.ndarray,
    settings: LinkSettings,
) -> np.ndarray:
    """Mask of the records whose pairs are scored again (see the module): the blocking keys of
    ``prepared`` (borrowed numbers taken off) must be loaded on ``con`` as ``dedup_records``."""
    kept = increment.kept
    earlier = increment.earlier
    was_borrowed = kept.records["borrowed"].to_numpy(dtype=bool)
    changed = increment.touched.copy()  # records whose features may differ from the kept run's
    changed[~changed] = was_borrowed[earlier[~changed]] != borrowed[~changed]
    relinked = changed | _at_flats_of_moved(increment, prepared, borrowed, changed)
    changed_before = np.r_[earlier[changed & (earlier >= 0)], increment.gone].astype(np.int32)
    con.register("dedup_kept_keys", kept.keys)
    con.register("dedup_changed_now", pd.DataFrame({"rid": np.flatnonzero(changed).astype(np.int32)}))
    con.register("dedup_changed_before", pd.DataFrame({"rid": changed_before}))
    for rule in settings.blocking_rules:
        sql = flipped_members_sql(rule, settings.block_size_limit(rule), "dedup_kept_keys", "dedup_changed_now",
                                  "dedup_changed_before", RECORDS_TABLE)
        relinked[np.asarray(con.execute(sql).fetchnumpy()["rid"], dtype=np.int64)] = True
    for name in ("dedup_kept_keys", "dedup_changed_now", "dedup_changed_before"):
        con.unregister(name)
    return relinked


def _at_flats_of_moved(increment: Increment, prepared: pd.DataFrame, borrowed: np.ndarray,
                       changed: np.ndarray) -> np.ndarray:
    """Records at a flat of a person (a valid ID number) whose set of flats changed with the records
    that changed, came or went: the flats one person lived at (:attr:`dedup.compare.RecordArrays.moves`)
    are read from that set."""
    kept = increment.kept.records
    earlier = increment.earlier
    old_rows = np.r_[earlier[changed & (earlier >= 0)], increment.gone].astype(np.int64)
    old_valid = kept["id_number_valid"].to_numpy(dtype=bool) & ~kept["borrowed"].to_numpy(dtype=bool)
    now_valid = prepared["id_number_valid"].to_numpy(dtype=bool)
    old_rows = old_rows[old_valid[old_rows]]
    persons = pd.concat([kept["id_number"].iloc[old_rows], prepared["id_number"][changed & now_valid]]).dropna().unique()
    if not len(persons):
        return np.zeros(len(prepared), dtype=bool)
    old_homes = _homes(kept, old_valid, persons)
    now_homes = _homes(prepared, now_valid, persons)
    both = old_homes.merge(now_homes, how="outer", indicator=True)
    moved = both.loc[both["_merge"] != "both", "person"].unique()
    flats = both.loc[both["person"].isin(moved), "flat"].unique()
    return found_in(prepared["household"], flats)


def _homes(prepared: pd.DataFrame, valid: np.ndarray, persons: np.ndarray) -> pd.DataFrame:
    """``person, flat`` (valid ID number, household) of the records of ``persons`` at a known flat, each once."""
    rows = valid & found_in(prepared["id_number"], persons)
    return pd.DataFrame({"person": prepared["id_number"][rows].to_numpy(dtype=object),
                         "flat": prepared["household"][rows].to_numpy(dtype=object, na_value=None)}
                        ).dropna().drop_duplicates()


def found_in(values: pd.Series, among: pd.Series | np.ndarray | pa.Array) -> np.ndarray:
    """Mask of ``values`` found among ``among`` (Arrow's hash lookup; missing values are not found)."""
    found = pc.is_in(pa.array(values, type=pa.large_string()), value_set=pa.array(among, type=pa.large_string()))
    return found.fill_null(False).to_numpy(zero_copy_only=False).astype(bool)


def present_rows(increment: Increment) -> np.ndarray:
    """Per row of the kept records, the record's position among the present ones, or -1 if it is gone:
    kept pairs are carried by integer lookup, never by hashing record ids again."""
    present = np.full(len(increment.kept.records), -1, dtype=np.int64)
    now = np.flatnonzero(increment.earlier >= 0)
    present[increment.earlier[now]] = now
    return present


def carried_pairs(increment: Increment, present: np.ndarray, relinked: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """The kept pairs of records not ``relinked``, positioned on the present records (``rid_l < rid_r``;
    ``present``: :func:`present_rows`), and the mask ``relinked`` grown by both records of any kept pair
    whose order turned (it is compared again, as a whole run would compare it, left record first)."""
    pairs = increment.kept.pairs
    rid_l = present[pairs["rid_l"].to_numpy(dtype=np.int64)]
    rid_r = present[pairs["rid_r"].to_numpy(dtype=np.int64)]
    both = (rid_l >= 0) & (rid_r >= 0)
    turned = both & (rid_l > rid_r)
    relinked = relinked.copy()
    relinked[rid_l[turned]] = True
    relinked[rid_r[turned]] = True
    carry = both & ~turned
    carry[carry] = ~relinked[rid_l[carry]] & ~relinked[rid_r[carry]]
    out = pairs.loc[carry].reset_index(drop=True)
    out["rid_l"] = rid_l[carry].astype(np.int32)
    out["rid_r"] = rid_r[carry].astype(np.int32)
    return out, relinked


def carried_within(
    increment: Increment, present: np.ndarray, labels: np.ndarray, relinked: np.ndarray, decided: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which present components (``labels``) must be searched again for vetoed candidate pairs inside
    them (a mask over labels), and the vetoed pairs inside the others, as positions.

    A component is searched again when it holds a relinked record, a record a reviewer decided on
    (``decided``: positions), or a vetoed pair of the last run whose rows came in the other order. Any
    other component's links are links the last run had, so it lay inside one of the last run's
    components, and its candidate pairs, vetoes and all, are the last run's: those the last run found
    inside its components (:attr:`KeptLinking.within`) that lie inside it."""
    searched = np.zeros(int(labels.max()) + 1 if len(labels) else 0, dtype=bool)
    searched[labels[relinked]] = True
    searched[labels[np.asarray(decided, dtype=np.int64)]] = True
    within = increment.kept.within
    rid_l = present[within["rid_l"].to_numpy(dtype=np.int64)]
    rid_r = present[within["rid_r"].to_numpy(dtype=np.int64)]
    inside = (rid_l >= 0) & (rid_r >= 0)
    inside[inside] = labels[rid_l[inside]] == labels[rid_r[inside]]
    turned = inside & (rid_l > rid_r)
    searched[labels[rid_l[turned]]] = True
    keep = inside & ~turned
    keep[keep] = ~searched[labels[rid_l[keep]]]
    return searched, rid_l[keep], rid_r[keep]


def kept_state(
    *,
    model: FellegiSunterModel,
    records: pd.DataFrame,
    prepared_before: pd.DataFrame,
    facts: pd.DataFrame,
    fingerprint: np.ndarray,
    borrowed: np.ndarray,
    prepared: pd.DataFrame,
    pairs: pd.DataFrame,
    within: tuple[np.ndarray, np.ndarray],
    reading: ColumnReading,
    settings: LinkSettings,
    trained_at: dt.datetime,
) -> KeptLinking:
    """The state a run keeps for the next (:class:`KeptLinking`): ``prepared_before`` is every record
    prepared before borrowed numbers were taken off, ``prepared`` after; ``pairs`` the scored pairs kept
    (positions ``rid_l, rid_r``), ``within`` the vetoed candidate pairs found inside its components."""
    kept_records = prepared_before.drop(columns=["rid"]).reset_index(drop=True)
    kept_records.insert(1, "fingerprint", fingerprint)
    kept_records.insert(2, "borrowed", np.asarray(borrowed, dtype=bool))
    for column in READING_FACTS:
        kept_records[column] = facts[column].to_numpy(dtype=bool)
    return KeptLinking(
        model=model,
        records=kept_records,
        keys=blocking_rows(prepared, settings).loc[:, ["rid", *blocking_keys(settings)]],
        pairs=pairs.reset_index(drop=True),  # positions in these records, which are the kept records' rows
        within=pd.DataFrame({"rid_l": np.asarray(within[0], dtype=np.int32), "rid_r": np.asarray(within[1], dtype=np.int32)}),
        reading=reading,
        columns=tuple(linked_columns(records)),
        digest=settings_digest(settings),
        trained_at=trained_at,
    )


# -- the model, as files -------------------------------------------------------------------------------


def _save_model(model: FellegiSunterModel, folder: Path) -> None:
    """The model as JSON (weights, m, u, prior, contexts) and its term frequencies as a parquet table of values."""
    arrays = lambda table: {name: np.asarray(values, dtype=np.float64).tolist() for name, values in table.items()}  # noqa: E731
    document = {
        "weights": arrays(model.weights),
        "prior_weight": model.prior_weight,
        "m": arrays(model.m),
        "u": arrays(model.u),
        "exact_m": model.exact_m,
        "max_level_weight": model.max_level_weight,
        "trained": model.trained,
        "stats": {key: value for key, value in model.stats.items() if isinstance(value, (int, float, str))},
        "contexts": [
            {"name": c.name, "conditions": [[name, list(codes)] for name, codes in c.conditions],
             "weights": arrays(c.weights), "u": arrays(c.u), "pairs": c.pairs}
            for c in model.contexts
        ],
        "term_frequencies": {
            name: {"scale": tf.scale, "exact_code": tf.exact_code, "unseen": tf.unseen}
            for name, tf in model.term_frequencies.items()
        },
    }
    (folder / _MODEL).write_text(json.dumps(document), encoding="utf-8")
    tables = [
        pd.DataFrame({"field": name, "value": pd.Series(tf.values, dtype=TEXT), "frequency": tf.frequency})
        for name, tf in model.term_frequencies.items()
    ]
    terms = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(
        {"field": pd.Series([], dtype=TEXT), "value": pd.Series([], dtype=TEXT), "frequency": pd.Series([], dtype=float)})
    terms.to_parquet(folder / _TERMS, index=False)


def _load_model(folder: Path) -> FellegiSunterModel:
    document = json.loads((folder / _MODEL).read_text(encoding="utf-8"))
    arrays = lambda table: {name: np.asarray(values, dtype=np.float64) for name, values in table.items()}  # noqa: E731
    terms = pd.read_parquet(folder / _TERMS)
    tables: dict[str, TermFrequencies] = {}
    for name, spec in document["term_frequencies"].items():
        rows = terms[terms["field"] == name]
        tables[name] = TermFrequencies(
            field=name, frequency=rows["frequency"].to_numpy(dtype=np.float64), scale=float(spec["scale"]),
            exact_code=int(spec["exact_code"]), values=rows["value"].to_numpy(dtype=object, na_value=None),
            unseen=float(spec["unseen"]),
        )
    contexts = tuple(
        PairContext(name=c["name"], conditions=tuple((name, tuple(codes)) for name, codes in c["conditions"]),
                    weights=arrays(c["weights"]), u=arrays(c["u"]), pairs=int(c["pairs"]))
        for c in document["contexts"]
    )
    return FellegiSunterModel(
        weights=arrays(document["weights"]), prior_weight=float(document["prior_weight"]), m=arrays(document["m"]),
        u=arrays(document["u"]), term_frequencies=tables, exact_m={k: float(v) for k, v in document["exact_m"].items()},
        max_level_weight=float(document["max_level_weight"]), trained=bool(document["trained"]),
        contexts=contexts, stats=dict(document["stats"]),
    )

