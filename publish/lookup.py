"""Look up before you enter (先查后录): is the resident a grid worker is about to register already known?

A worker types what the resident says — name, sex, birth year-month, the address or part of an ID
number — and gets back the matching persons *in the worker's scope*, masked as the worker's product
shows them, each with how sure the match is. Nobody outside the worker's area is ever compared.

    >>> found = lookup(home, "grid_workers_cuiyuan_1", LookupQuery(name="熊建国", sex="男", birth="1959-12",
    ...                address="翠苑社区1-2-302"), policy, register)          # doctest: +SKIP
    >>> found.matches[0].probability, found.matches[0].fields["name"]       # doctest: +SKIP
    (0.9999, '熊*国')

How it works, against the published warehouse (read-only):

1. The recipient's area scope (a ``"*"`` entry's area product resolves to its grid) selects the
   candidate persons; within it, only records that share something with the query are read — the
   birth year, the name's pinyin or surname with the birth year, the flat, or the typed part of the ID
   number — in one DuckDB query (indexed by the scope's filter, never a scan of every pair).
2. The query and those records go through the linking engine's own preparation and comparisons
   (:mod:`dedup.prepare`, :mod:`dedup.compare`, the district's ``linking.yaml``): a homophone (建/健),
   a year-month against a full date, 1-2-302 against 1幢2单元302室 are judged exactly as linking
   judges them, with the same vetoes. Each person's best record gives the match weight, read as a
   probability with the declared level weights (:func:`dedup.model.match_probability`).
3. Matches the worker's product may show (consent, key population, the policy's columns and masks:
   the product's own query, :func:`publish.products.product_query_sql`) come back with those fields;
   matches it may not show are only counted (``withheld``), so the worker knows the resident is
   already registered — and that their consent is the way to see more — without seeing who.

A typed fragment of an ID number (``id_part``, at least four characters) must occur in the candidate's ID
number; a full 18-character number is compared like any record's. It is accepted only from a recipient
whose list shows ``id_number``: matching on a number the worker may not see would let them test its
digits one guess at a time. For the same reason a resident who refused, withdrew or asked to be deleted
is neither shown nor counted, and sex and an ID fragment do not count towards the two parts a look-up
needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from core.errors import ConfigError
from core.home import DataHome, HomeLike
from core.vocabulary import SEX_CODES, TYPED_DATE_FORMATS
from dedup.compare import RecordArrays, compare_pairs, level_labels
from dedup.model import match_probability
from dedup.prepare import household_key, prepare_records
from dedup.score import score_pairs
from dedup.settings import LinkSettings
from publish.areas import AreaRegister
from publish.policy import EVERY_AREA, Recipient, SharingPolicy
from publish.populations import present_sql
from publish.products import product_query_sql
from publish.scopes import known_areas, scope_areas
from staging.dates import parse_dates
from staging.pinyin import name_pinyin

__all__ = ["LookupMatch", "LookupQuery", "LookupResult", "certainty_label", "lookup", "resolve_recipient"]

#: Below this probability a candidate is not reported.
MIN_PROBABILITY = 0.5
_FIELDS_AGREED = {"name": "姓名", "sex": "性别", "birth_date": "出生日期", "id_number": "身份证号", "phone": "电话",
                  "address": "住址", "community": "社区"}
_AGREEING_LEVELS = {"exact", "equal", "homophone", "typo", "shape", "day", "month", "year", "household", "building_room", "similar",
                    "swapped", "near", "close"}


@dataclass(frozen=True)
class LookupQuery:
    """What a worker typed; any part may be missing, but at least two must be given."""

    name: str | None = None
    sex: str | None = None
    birth: str | None = None  # 1959, 1959-12, 1959-12-03 (or 195912, 19591203)
    address: str | None = None
    id_part: str | None = None  # a full ID number, or a fragment of one (the last 4 characters)
    phone: str | None = None

    def given(self) -> list[str]:
        """The parts typed that narrow the search (sex and an ID fragment only refine it)."""
        return [k for k in ("name", "birth", "address", "phone") if (getattr(self, k) or "").strip()]


@dataclass(frozen=True)
class LookupMatch:
    """One person the query matches, as the worker may see them."""

    probability: float
    certainty: str
    agreed: tuple[str, ...]
    fields: dict[str, object]


@dataclass(frozen=True)
class LookupResult:
    """The matches the worker may see (most certain first) and how many others matched but are withheld."""

    recipient: str
    matches: list[LookupMatch] = field(default_factory=list)
    withheld: int = 0
    candidates: int = 0

    def as_dict(self) -> dict:
        return {"recipient": self.recipient, "withheld": self.withheld, "candidates": self.candidates,
                "matches": [{"probability": round(m.probability, 4), "certainty": m.certainty,
                             "agreed": list(m.agreed), **{k: _plain(v) for k, v in m.fields.items()}}
                            for m in self.matches]}


def certainty_label(probability: float) -> str:
    """How sure, in the words a grid worker reads."""
    if probability >= 0.999:
        return "确定是同一人"
    if probability >= 0.95:
        return "很可能是同一人"
    return "可能是同一人，请核对证件"


def resolve_recipient(name: str, policy: SharingPolicy, con: duckdb.DuckDBPyConnection,
                      register: AreaRegister | None) -> Recipient:
    """The product ``name`` of the policy (an area product of a ``"*"`` entry included)."""
    plain = [r for r in policy.recipients if not r.every_area]
    found = next((r for r in plain if r.name == name), None)
    entries = [r for r in policy.recipients if r.every_area and name.startswith(f"{r.name}_")]
    if found is None and entries:
        areas = known_areas(con, register)
        for entry in entries:
            area = [a for a in scope_areas(entry, areas) if f"{entry.name}_{a[0]}" == name]
            if area:
                found = entry.for_areas(area)[0]
    if found is None:
        known = [r.name for r in plain] + [f"{r.name}_<area>" for r in policy.recipients if r.every_area]
        raise ConfigError(f"no product {name!r} in the policy; products: {', '.join(known)}")
    if found.aggregate is not None or found.kind == "analyst":
        raise ConfigError(f"{name} receives statistics, not people: a look-up is for workers who serve residents")
    return found


def lookup(home: HomeLike, recipient: str | Recipient, query: LookupQuery, policy: SharingPolicy,
           register: AreaRegister | None, settings: LinkSettings, limit: int = 5) -> LookupResult:
    """The persons in ``recipient``'s scope that ``query`` matches, as that recipient may see them.

    Raises:
        ConfigError: fewer than two parts typed, an unknown recipient, or nothing published yet.
    """
    if limit < 1:
        raise ConfigError(f"--limit {limit}: show at least one match (default 5)")
    if len(query.given()) < 2:
        raise ConfigError("type at least two of name, birth, address and phone (sex and an ID fragment only narrow "
                          "them): one alone matches too many people, e.g. --name 熊建国 --birth 1959-12")
    part = re.sub(r"\s", "", query.id_part or "")
    if part and len(part) < 4:
        raise ConfigError("an ID fragment needs at least 4 characters, e.g. --id-part 302X")
    path = DataHome.at(home).warehouse_file
    if not Path(path).exists():
        raise ConfigError(f"nothing published under {DataHome.at(home).root}: run the pipeline first")
    with duckdb.connect(str(path), read_only=True) as con:
        target = recipient if isinstance(recipient, Recipient) else resolve_recipient(recipient, policy, con, register)
        if part and "id_number" not in target.columns:
            # Matching on a number the worker may not see would let them test its digits one guess at a time.
            raise ConfigError(f"{target.name}'s list holds no 公民身份号码 (policy.yaml): the look-up cannot use an ID "
                              "fragment; type the name, birth year-month, address or phone")
        candidates = _candidates(con, target, query)
        if candidates.empty:
            return LookupResult(target.name)
        scored = _score(query, candidates, settings)
        scored = scored[scored["probability"] >= MIN_PROBABILITY]
        if scored.empty:
            return LookupResult(target.name, candidates=int(candidates["person_id"].nunique()))
        visible, protected = _visible(con, target, scored["person_id"].tolist())
    matches = []
    withheld = 0
    for row in scored.itertuples(index=False):
        shown = visible.get(row.person_id)
        if row.person_id in protected:
            continue  # refused, withdrew or asked to be deleted: not even their existence is told
        if shown is None:
            withheld += 1
        elif len(matches) < limit:
            matches.append(LookupMatch(float(row.probability), certainty_label(float(row.probability)),
                                       tuple(row.agreed), shown))
    return LookupResult(target.name, matches, withheld, int(candidates["person_id"].nunique()))


def _query_record(query: LookupQuery) -> dict[str, object]:
    birth = parse_dates(pd.Series([query.birth or None], dtype="string"), TYPED_DATE_FORMATS).iloc[0]
    if birth["unparseable"]:
        raise ConfigError(f"出生日期 {query.birth!r} 无法识别 / birth {query.birth!r} is not a date: type it as 1959-12-03, "
                          "1959-12 or 1959")
    birth_date, precision = (None, None) if pd.isna(birth["date"]) else (birth["date"], birth["precision"])
    id_text = (query.id_part or "").strip().upper()
    sex = (query.sex or "").strip()
    return {"record_id": "lookup:query", "source": "lookup", "name": (query.name or "").strip() or None,
            "sex": SEX_CODES.get(sex, sex if sex in ("M", "F") else None), "birth_date": birth_date,
            "birth_date_precision": precision, "id_number": id_text if len(id_text) in (15, 18) else None,
            "phone": re.sub(r"\D", "", query.phone or "") or None, "address": (query.address or "").strip() or None,
            "community": None}


def _candidates(con: duckdb.DuckDBPyConnection, recipient: Recipient, query: LookupQuery) -> pd.DataFrame:
    """The records, in scope, that share something with the query."""
    record = _query_record(query)
    keys = {
        "name_pinyin": name_pinyin(pd.Series([record["name"]], dtype="string")).iloc[0] if record["name"] else None,
        "phone": record["phone"],
        "household": household_key(pd.Series([record["address"]], dtype="string")).iloc[0] if record["address"] else None,
    }
    present = {row[0] for row in con.execute("SELECT column_name FROM duckdb_columns() "
                                              "WHERE table_name = 'source_records'").fetchall()}
    params: dict[str, object] = {}
    # Someone reported moved out or deceased is not "already registered" here: a worker enters them again
    # (迁入), and linking joins the new record to the old.
    scope = [present_sql("u")]
    for i, (level, value) in enumerate(recipient.scope.items()):
        if value != EVERY_AREA:
            scope.append(f"u.{level} = $scope{i}")
            params[f"scope{i}"] = value
    shares = []
    if record["birth_date"]:
        # Born the same year — and, where a name was typed, of the same surname (by its sound, so 张/章
        # still meet): a district-wide scope holds ~1/80 of a million people per birth year.
        same_year = "substr(r.birth_date, 1, 4) = $year"
        params["year"] = str(record["birth_date"])[:4]
        surname = (keys["name_pinyin"] or "").split(" ")[0] if keys["name_pinyin"] else ""
        if surname and "name_pinyin" in present:
            same_year += " AND (r.name_pinyin = $surname OR starts_with(r.name_pinyin, $surname || ' '))"
            params["surname"] = surname
        shares.append(f"({same_year})")
    for key, column in (("name_pinyin", "r.name_pinyin"), ("phone", "r.phone"), ("household", "r.flat")):
        value = keys[key]
        if value is not None and not pd.isna(value) and column[2:] in present:
            shares.append(f"{column} = ${key}")
            params[key] = str(value)
    part = re.sub(r"\s", "", query.id_part or "").upper()
    id_filter = "TRUE"
    if part:
        shares.append("contains(r.id_number, $id_part)")
        id_filter = "(r.id_number IS NULL OR contains(r.id_number, $id_part))"
        params["id_part"] = part
    if not shares:
        shares.append("TRUE")
    community = "coalesce(r.community, r.address_community)" if "address_community" in present else "r.community"
    sql = f"""
        SELECT r.record_id, r.person_id, r.source, r.name, r.sex, r.birth_date, r.birth_date_precision,
               r.id_number, r.phone, r.address, {community} AS community
        FROM source_records r JOIN unified_population u ON u.person_id = r.person_id
        WHERE {' AND '.join(scope)} AND ({' OR '.join(shares)}) AND {id_filter}"""
    if part:  # every record of a person whose ID holds the fragment: the fragment names them
        sql = f"""{sql} UNION
        SELECT r.record_id, r.person_id, r.source, r.name, r.sex, r.birth_date, r.birth_date_precision, r.id_number,
               r.phone, r.address, {community}
        FROM source_records r JOIN unified_population u ON u.person_id = r.person_id
        WHERE {' AND '.join(scope)} AND contains(u.id_number, $id_part)"""
    return con.execute(sql, params).df()


def _score(query: LookupQuery, candidates: pd.DataFrame, settings: LinkSettings) -> pd.DataFrame:
    """Per candidate person: the best record's match probability and the fields that agreed."""
    records = pd.concat([pd.DataFrame([_query_record(query)]), candidates.drop(columns=["person_id"])],
                        ignore_index=True)
    prepared = prepare_records(records)
    arrays = RecordArrays.from_prepared(prepared)
    right = np.arange(1, len(prepared), dtype=np.int64)
    levels = compare_pairs(arrays, np.zeros(len(right), dtype=np.int64), right, settings.comparisons)
    scored = score_pairs(levels, settings)
    probability = np.where(scored.veto.isna().to_numpy(), match_probability(scored.score.astype(np.float64)), 0.0)
    agreed = [[] for _ in right]
    for comparison in settings.comparisons:
        labels = level_labels(comparison, levels[comparison.field]).to_numpy()
        for i, label in enumerate(labels):
            if label in _AGREEING_LEVELS and comparison.field in _FIELDS_AGREED:
                agreed[i].append(_FIELDS_AGREED[comparison.field])
    frame = pd.DataFrame({"person_id": candidates["person_id"].to_numpy(), "probability": probability,
                          "agreed": agreed})
    best = frame.sort_values("probability", ascending=False).drop_duplicates("person_id")
    return best.reset_index(drop=True)


#: The tables a product's query reads, each narrowed to the matched persons for a look-up.
_PRODUCT_TABLES = ("unified_population", "deletion_requests", "consent_problems", "consent_effective", "key_residents",
                   "risk_warnings")


#: Why a product leaves a person out that a look-up must not even count: the person said no (or may have:
#: an unreadable decision), and "someone like this is registered" would tell of them.
_UNTOLD = ("deleted", "refused", "withdrawn", "consent_unreadable")


def _visible(con: duckdb.DuckDBPyConnection, recipient: Recipient,
             person_ids: list[str]) -> tuple[dict[str, dict], set[str]]:
    """Person id -> the fields ``recipient``'s product shows of them, for those it may show; and the
    persons whose refusal, withdrawal or deletion request keeps them out of even a count.

    The product's own query (:func:`publish.products.product_query_sql`) runs over temporary views of its
    tables narrowed to ``person_ids``, so a look-up reads a handful of people, not the district's consent."""
    database = con.execute("SELECT current_database()").fetchone()[0]
    present = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = ?",
                                             [database]).fetchall()}
    con.execute("CREATE OR REPLACE TEMP TABLE _lookup_ids AS SELECT unnest($ids::VARCHAR[]) AS person_id",
                {"ids": person_ids})
    for table in _PRODUCT_TABLES:
        if table in present:
            con.execute(f'CREATE OR REPLACE TEMP VIEW {table} AS SELECT * FROM "{database}".main.{table} '
                        "WHERE person_id IN (SELECT person_id FROM _lookup_ids)")
    sql, params = product_query_sql(recipient)
    rows = con.execute(f"SELECT * FROM ({sql})", params).df()
    protected = set(rows.loc[rows["_reason"].isin(_UNTOLD), "_person_id"])
    # Out of every product by law too: a standing deletion request, whatever the recipient's scope or filter.
    if "deletion_requests" in present:
        protected |= {r[0] for r in con.execute("SELECT person_id FROM deletion_requests").fetchall()}
    rows = rows[rows["_reason"].isna()]
    shown = [c for c in rows.columns if not c.startswith("_")]
    return {row["_person_id"]: {c: row[c] for c in shown} for _, row in rows.iterrows()}, protected


def _plain(value: object) -> object:
    if isinstance(value, np.ndarray | list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return None
    return value if isinstance(value, str | int | float | bool) else str(value)
