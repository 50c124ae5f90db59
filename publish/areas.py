"""Areas (街道—社区—网格) from address text, against the district's own area register.

Departments that send only an address (卫健, 司法) say nothing of street, community or grid, yet
their addresses name the 社区. The district keeps an **area register**: a CSV a 街道 clerk maintains
in Excel or WPS, one line per grid —

    街道,社区,网格,楼栋,别名
    西溪街道,翠苑社区,翠苑社区第1网格,1-12,翠苑一区
    西溪街道,翠苑社区,翠苑社区第2网格,"13-20,25",

``楼栋`` lists the building numbers the grid covers (``1-12``, ``1-12,15,20-22``; 幢/栋/号楼 may be
written); empty means the whole community (then it is the community's only grid). ``别名`` lists
other names addresses use for the community (a residential compound's name), separated by ``、``.
UTF-8 (Excel's "CSV UTF-8") or GBK (Excel's plain "CSV" on Chinese Windows) both read.

An address is matched in DuckDB SQL over its distinct values, never row by row: the text is
normalised as staging does (:func:`staging.normalize.normalize_address`: half-width digits, no
spaces, simplified characters), the community is found by its name with a suffix (翠苑社区,
翠苑居委会, 翠苑社区居民委员会) or an alias anywhere in the address, else by its bare name (翠苑)
directly followed by a building number; with or without the city, district and street before it.
The first number after the community name is the building (``3幢2单元501室`` and ``3-2-501`` both
give 3), and the register's ranges give its grid. An address that names no community in the register
gives no area; one whose building no grid covers gives street and community but no grid.

Each person's area is then chosen among every record's stated area and the area its address gives:
the most recent ``record_date`` wins, a tie goes to the area the address gives (then the more trusted
source). Where they disagree, every candidate, the choice and why are in ``area_conflicts``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from core.config import suggest
from core.errors import ConfigError
from dedup.prepare import household_key
from publish.sqltext import literal, of_persons
from staging.normalize import normalize_address

__all__ = [
    "AREA_REGISTER_HEADERS",
    "AreaLine",
    "AreaRegister",
    "AreaSummary",
    "add_address_places",
    "add_person_areas",
    "address_areas",
    "area_summary",
    "load_area_register",
    "trust_rank_sql",
]

AREA_REGISTER_HEADERS: Mapping[str, str] = {
    "街道": "street", "社区": "community", "网格": "grid", "楼栋": "buildings", "别名": "aliases", "备注": "note",
}
"""The register's column headers (Chinese, as the clerk writes them) and their English names, which
are accepted too. 街道 and 社区 are required; 备注 (a note) is kept for the clerk and not read."""

_REQUIRED = ("street", "community")
_ENCODINGS = ("utf-8-sig", "gb18030")
# Suffixes an address may write after a community's own name; a 村 (village) has its own family.
_COMMUNITY_SUFFIXES = ("社区居民委员会", "社区居委会", "居民委员会", "居委会", "社区")
_VILLAGE_SUFFIXES = ("村民委员会", "村委会", "村")
_SUFFIX = re.compile(f"({'|'.join((*_COMMUNITY_SUFFIXES, *_VILLAGE_SUFFIXES))})$")
_BUILDING_WORDS = re.compile(r"第|幢|栋|号楼|号|楼")
_RANGE = re.compile(r"(\d+)(?:[-~～—–至到](\d+))?")
_SEPARATORS = re.compile(r"[,，、;；/\s]+")
_LARGEST_BUILDING = 2**31 - 1
_MOST_BUILDINGS = 10_000  # buildings one range is checked over for overlaps
_EXAMPLE = "西溪街道,翠苑社区,翠苑社区第1网格,1-12,翠苑一区"


@dataclass(frozen=True)
class AreaLine:
    """One line of the register: a grid of a community and the buildings it covers."""

    line: int
    street: str
    community: str
    grid: str | None
    buildings: tuple[tuple[int, int], ...]  # inclusive ranges; empty: the whole community
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class AreaRegister:
    """The district's streets, communities and grids, and the buildings each grid covers."""

    path: Path
    lines: tuple[AreaLine, ...]

    @property
    def communities(self) -> dict[str, str]:
        """Community -> its street."""
        return {a.community: a.street for a in self.lines}

    def names(self) -> pd.DataFrame:
        """``name, community, bare``: every way an address may name each community; ``bare`` names (the
        name without 社区/村) count only when a building number follows them directly."""
        rows: list[tuple[str, str, bool]] = []
        cores = {community: _SUFFIX.sub("", community) for community in self.communities}
        shared = {core for core in cores.values() if list(cores.values()).count(core) > 1}
        for community, core in cores.items():
            suffixes = _VILLAGE_SUFFIXES if community.endswith(_VILLAGE_SUFFIXES) else _COMMUNITY_SUFFIXES
            full = {community, *(core + s for s in suffixes if core)}
            aliases = {alias for a in self.lines if a.community == community for alias in a.aliases}
            rows += [(name, community, False) for name in sorted(full | aliases)]
            # A bare 翠苑 is read only where it names one community (翠苑社区 and 翠苑村 both: neither).
            if len(core) >= 2 and core not in full | aliases and core not in shared:
                rows.append((core, community, True))
        return pd.DataFrame(rows, columns=["name", "community", "bare"])

    def grids(self) -> pd.DataFrame:
        """``community, grid, low, high``: the building ranges of every grid (a whole community: 0 to the largest)."""
        rows = [(a.community, a.grid, low, high) for a in self.lines if a.grid for low, high in
                (a.buildings or ((0, _LARGEST_BUILDING),))]
        return pd.DataFrame(rows, columns=["community", "grid", "low", "high"]).astype(
            {"low": "int64", "high": "int64"})


@dataclass(frozen=True)
class AreaSummary:
    """How the published people are placed in areas.

    Attributes:
        persons: people in ``unified_population``.
        without_community: no community: no department states one and their address names none in
            the register (or there is no register).
        without_grid: no grid (those without a community included).
        placed_only_by_address: placed by their address alone: no department states an area for them.
        in_conflict: people whose departments or addresses disagree on their area (``area_conflicts``).
    """

    persons: int
    without_community: int
    without_grid: int
    placed_only_by_address: int
    in_conflict: int

    def as_counts(self) -> dict[str, int]:
        """The figures as ``persons_<what>`` counts, for a run's metadata."""
        return {"persons_without_community": self.without_community, "persons_without_grid": self.without_grid,
                "persons_placed_only_by_address": self.placed_only_by_address,
                "persons_in_area_conflict": self.in_conflict}


def area_summary(con: duckdb.DuckDBPyConnection) -> AreaSummary:
    """:class:`AreaSummary` of a warehouse holding ``unified_population``, ``source_records`` (with its
    ``address_*`` columns) and ``area_conflicts``."""
    row = con.execute("""SELECT
        (SELECT count(*) FROM unified_population),
        (SELECT count(*) FILTER (WHERE community IS NULL) FROM unified_population),
        (SELECT count(*) FILTER (WHERE grid IS NULL) FROM unified_population),
        (SELECT count(*) FROM (SELECT person_id FROM source_records GROUP BY person_id
                               HAVING bool_or(address_community IS NOT NULL)
                                  AND NOT bool_or(coalesce(street, community, grid) IS NOT NULL))),
        (SELECT count(DISTINCT person_id) FROM area_conflicts)""").fetchone()
    return AreaSummary(*(int(n) for n in row))


def load_area_register(path: str | Path) -> AreaRegister:
    """Read and check the area register, failing with the file, the line and the fix for every problem.

    Raises:
        ConfigError: the file is missing or unreadable; a required column is missing or a header
            unknown; a line lacks its street or community, or its 楼栋 cannot be read; a grid is named
            in two communities, a community under two streets, two grids of a community share a
            building, or two communities share a name an address may use.

    Example:
        >>> register = load_area_register("var/demo/areas.csv")  # doctest: +SKIP
        >>> register.communities["翠苑社区"]                       # doctest: +SKIP
        '西溪街道'
    """
    path = Path(path)
    frame = _read(path)
    problems: list[str] = []
    lines = []
    for number, row in zip(range(2, len(frame) + 2), frame.itertuples(index=False), strict=True):
        line, problem = _line(number, row._asdict())
        if problem:
            problems.append(problem)
        elif line:
            lines.append(line)
    if not problems:
        problems = _consistency(lines)
    if not lines and not problems:
        problems = [f"no lines; write one line per grid, e.g. {_EXAMPLE}"]
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"{path}: invalid area register, {len(problems)} problem(s):\n{listing}")
    return AreaRegister(path, tuple(lines))


def _read(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise ConfigError(f"{path}: area register not found; expected a CSV with the columns "
                          f"{','.join(AREA_REGISTER_HEADERS)}, one line per grid (e.g. {_EXAMPLE}); "
                          "`silobreaker demo` writes the demo's under <home>/demo/areas.csv")
    for encoding in _ENCODINGS:
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding, skip_blank_lines=True)
            break
        except UnicodeDecodeError:
            continue
        except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as e:
            raise ConfigError(f"{path}: cannot read the area register as CSV ({e}); save it from Excel as "
                              "CSV UTF-8 (or CSV) with the header line 街道,社区,网格,楼栋,别名") from e
    else:
        raise ConfigError(f"{path}: the area register is neither UTF-8 nor GBK text; save it from Excel as CSV UTF-8")
    clean = normalize_address(pd.Series([str(h) for h in frame.columns])).fillna("")
    headers = dict(zip(frame.columns, clean, strict=True))
    english = {**AREA_REGISTER_HEADERS, **{v: v for v in AREA_REGISTER_HEADERS.values()}}
    unknown = [h for h, clean in headers.items() if clean not in english]
    if unknown:
        hints = "; ".join(f"{h!r}{suggest(headers[h], list(AREA_REGISTER_HEADERS))}" for h in unknown)
        raise ConfigError(f"{path}: line 1: unknown column(s) {hints}; the columns are "
                          f"{','.join(AREA_REGISTER_HEADERS)} (备注 is free text)")
    frame = frame.rename(columns={h: english[clean] for h, clean in headers.items()})
    missing = [name for name, field in AREA_REGISTER_HEADERS.items() if field in _REQUIRED and field not in frame]
    if missing:
        raise ConfigError(f"{path}: line 1: column(s) {', '.join(missing)} missing; the header line is "
                          f"{','.join(AREA_REGISTER_HEADERS)}")
    for field in ("grid", "buildings", "aliases"):
        if field not in frame:
            frame[field] = ""
    # As staging normalises addresses: half-width digits and commas, no spaces, simplified characters.
    texts = ["street", "community", "grid", "buildings", "aliases"]
    frame[texts] = frame[texts].apply(lambda column: normalize_address(column).fillna(""))
    return frame


def _line(number: int, row: dict[str, str]) -> tuple[AreaLine | None, str | None]:
    """One register line, or why it cannot be read."""
    if not any(str(row.get(f, "")).strip() for f in ("street", "community", "grid", "buildings")):
        return None, None  # a blank line Excel left
    where = f"line {number}"
    if not row["street"] or not row["community"]:
        empty = "街道" if not row["street"] else "社区"
        return None, f"{where}: {empty} is empty; every line names its street and community, e.g. {_EXAMPLE}"
    ranges: list[tuple[int, int]] = []
    for part in _SEPARATORS.split(_BUILDING_WORDS.sub("", row["buildings"])):
        match = _RANGE.fullmatch(part) if part else None
        if part and (match is None or int(match.group(2) or match.group(1)) < int(match.group(1))):
            return None, (f"{where} ({row['grid'] or row['community']}): 楼栋 {row['buildings']!r} cannot be read at "
                          f"{part!r}; write building numbers and ranges, e.g. 1-12 or 1-12,15,20-22")
        if part:
            ranges.append((int(match.group(1)), int(match.group(2) or match.group(1))))
    if ranges and not row["grid"]:
        return None, f"{where} ({row['community']}): 楼栋 is given but 网格 is empty; name the grid these buildings form"
    aliases = tuple(a for a in re.split(r"[、,;/|]+", row["aliases"]) if a)
    return AreaLine(number, row["street"], row["community"], row["grid"] or None, tuple(ranges), aliases), None


def _consistency(lines: list[AreaLine]) -> list[str]:
    """Problems between lines: a grid or a name in two places, buildings in two grids."""
    problems = []
    first: dict[tuple[str, str], AreaLine] = {}
    for a in lines:
        for kind, key, other_value in (("community", a.community, a.street), ("grid", a.grid, a.community)):
            if key is None:
                continue
            seen = first.setdefault((kind, key), a)
            if (seen.street if kind == "community" else seen.community) != other_value:
                what = "street" if kind == "community" else "community"
                problems.append(
                    f"line {a.line}: {kind} {key} is under {what} {other_value}, but line {seen.line} puts it under "
                    f"{seen.street if kind == 'community' else seen.community}; a {kind} name must be unique in the "
                    "district (addresses are placed by it): correct the line")
    by_community: dict[str, list[AreaLine]] = {}
    for a in lines:
        by_community.setdefault(a.community, []).append(a)
    for community, own in by_community.items():
        grids = {a.grid for a in own if a.grid}
        whole = [a for a in own if a.grid and not a.buildings]
        if whole and len(grids) > 1:
            problems.append(f"line {whole[0].line}: grid {whole[0].grid} has no 楼栋, so it covers all of {community}, "
                            f"which has other grids too; list the buildings each grid covers")
        covered: dict[int, AreaLine] = {}
        for a in own:
            for low, high in a.buildings:
                numbers = range(low, min(high, low + _MOST_BUILDINGS) + 1)
                shared = next((b for b in numbers if b in covered and covered[b].grid != a.grid), None)
                if shared is not None:
                    problems.append(f"line {a.line}: building {shared} of {community} is in grid {a.grid} and, on line "
                                    f"{covered[shared].line}, in grid {covered[shared].grid}; a building belongs to one grid")
                    break
                covered.update(dict.fromkeys(numbers, a))
    names = AreaRegister(Path(), tuple(lines)).names()
    taken = names.groupby("name")["community"].nunique()
    for name in taken[taken > 1].index:
        holders = sorted(names.loc[names["name"] == name, "community"].unique())
        problems.append(f"名称 {name}: addresses could mean {' or '.join(holders)}; give each alias (别名) to one "
                        "community")
    return problems


def address_areas(addresses: pd.Series, register: AreaRegister) -> pd.DataFrame:
    """The area each address names: ``street, community, grid, building`` (null where none), on the
    same index. The text is normalised first as staging does.

    Example:
        >>> address_areas(pd.Series(["杭州市西湖区翠苑街道翠苑社区3幢2单元501室"]), register)  # doctest: +SKIP
          street community        grid  building
        0  西溪街道   翠苑社区  翠苑社区第1网格         3
    """
    text = normalize_address(pd.Series(addresses).reset_index(drop=True))
    frame = pd.DataFrame({"_row": range(len(text)), "address": text})
    with duckdb.connect() as con:
        con.register("_addresses", frame)
        _match(con, register, "_addresses")
        out = con.execute("SELECT a.street, a.community, a.grid, a.building FROM _addresses r "
                          "LEFT JOIN _address_areas a USING (address) ORDER BY r._row").df()
    out.index = pd.Series(addresses).index
    return out


def add_address_places(con: duckdb.DuckDBPyConnection, relation: str, register: AreaRegister | None) -> None:
    """Create ``_address_places(address, flat, address_street, address_community, address_grid)``
    (temporary): for each distinct address of ``relation`` (staged, so normalised), the flat it points to
    however written (:func:`dedup.prepare.household_key`; null where none can be read) and the area it
    names in ``register`` (null without one). ``source_records`` joins them as it is written
    (``publish.warehouse``), one place per distinct address, rather than being updated with each kind of
    place afterwards. Also creates ``_area_names``, which :func:`add_person_areas` reads."""
    _register_names(con, register)
    addresses = con.execute(f"SELECT DISTINCT address FROM {relation} WHERE address IS NOT NULL").df()
    addresses["flat"] = household_key(addresses["address"]) if len(addresses) else pd.Series(dtype="string")
    con.register("_address_flats", addresses)
    if register is None:
        areas, join = "NULL, NULL, NULL", ""
    else:
        _match(con, register, "_address_flats")
        areas, join = "a.street, a.community, a.grid", "LEFT JOIN _address_areas a USING (address)"
    con.execute("""CREATE OR REPLACE TEMP TABLE _address_places (address VARCHAR, flat VARCHAR, address_street VARCHAR,
                    address_community VARCHAR, address_grid VARCHAR)""")
    con.execute(f"INSERT INTO _address_places SELECT f.address, f.flat, {areas} FROM _address_flats f {join}")
    con.unregister("_address_flats")


def _register_names(con: duckdb.DuckDBPyConnection, register: AreaRegister | None) -> None:
    names = register.names() if register else pd.DataFrame({"name": [], "community": [], "bare": []})
    con.register("_area_names_frame", names.astype({"name": "string", "community": "string", "bare": "bool"}))
    con.execute("CREATE OR REPLACE TEMP TABLE _area_names AS SELECT * FROM _area_names_frame")
    con.unregister("_area_names_frame")


def _match(con: duckdb.DuckDBPyConnection, register: AreaRegister, relation: str) -> None:
    """``_address_areas(address, street, community, grid, building)`` for the distinct addresses of ``relation``."""
    _register_names(con, register)
    names = register.names()
    grids = register.grids()
    communities = pd.DataFrame(list(register.communities.items()), columns=["community", "street"])
    con.register("_area_grids", grids)
    con.register("_area_communities", communities)
    full = _alternation(names.loc[~names["bare"], "name"])
    bare = _alternation(names.loc[names["bare"], "name"])
    # RE2 finds the leftmost match, and of alternatives there the first: longer names are listed first,
    # so 翠苑社区居委会 wins over 翠苑社区. The full names are found without capture groups (RE2's fast
    # path; the match is the name's first occurrence, so strpos finds where the rest begins); bare
    # names, which must be followed by the building number itself, only where no full name is.
    con.execute(f"""
CREATE OR REPLACE TEMP TABLE _address_areas AS
WITH a AS (SELECT DISTINCT address FROM {relation} WHERE address IS NOT NULL),
f AS MATERIALIZED (SELECT address, regexp_extract(address, '{full}') AS name FROM a),
named AS (
    SELECT address, name, substr(address, strpos(address, name) + length(name)) AS rest FROM f WHERE name <> ''
    UNION ALL
    SELECT address, b.name, b.rest
    FROM (SELECT address, regexp_extract(address, '({bare})([0-9].*)$', ['name', 'rest']) AS b FROM f WHERE name = '')
    WHERE b.name <> ''
), placed AS (
    SELECT n.address, k.community, TRY_CAST(nullif(regexp_extract(n.rest, '[0-9]+'), '') AS BIGINT) AS building
    FROM named n JOIN _area_names k ON k.name = n.name
)
SELECT p.address, c.street, p.community, g.grid, p.building
FROM placed p JOIN _area_communities c USING (community)
LEFT JOIN _area_grids g ON g.community = p.community AND p.building BETWEEN g.low AND g.high
""")
    con.unregister("_area_grids")
    con.unregister("_area_communities")


def _alternation(names: pd.Series) -> str:
    ordered = sorted(set(names), key=lambda n: (-len(n), n))
    # A name that never occurs keeps an empty register from matching everything.
    return "|".join(re.escape(n).replace("'", "''") for n in ordered) or "[^\\s\\S]"


def trust_rank_sql(trust: Mapping[str, int]) -> str:
    """A DuckDB expression ranking ``source`` by ``trust`` (0 most trusted; unranked sources last)."""
    if not trust:
        return "0"
    whens = " ".join(f"WHEN {literal(s)} THEN {int(rank)}" for s, rank in trust.items())
    return f"CASE source {whens} ELSE {len(trust)} END"


def add_person_areas(con: duckdb.DuckDBPyConnection, trust: Mapping[str, int],
                     departments: Mapping[str, str] | None = None, persons: str | None = None,
                     conflicts: str | None = "CREATE TABLE area_conflicts AS") -> None:
    """Create ``person_areas`` (temporary: each person's chosen area, read by the golden record) and
    ``area_conflicts`` from ``source_records`` with its ``address_*`` columns (:func:`add_address_places`).

    Every record offers the area its department states and the area its address names. The most recent
    ``record_date`` wins (undated records last), then the area the address names, then the more trusted
    source, then the larger record id (record dates are staged ISO text, compared as text). A winner without street or grid takes them from the best area
    of its community that has them. All of it is aggregation over the candidates, without sorting them.

    A person's areas and conflicts follow from their own records alone, so a night built on the last
    publication places only the persons it writes again (:mod:`publish.carry`).

    Args:
        con: the warehouse being built.
        trust: source -> rank, the last tie-break but one.
        departments: source -> department label (民政), for the reason shown; the source name otherwise.
        persons: a relation with a ``person_id`` column: place only these persons (default: everyone).
        conflicts: how their ``area_conflicts`` rows are written (``INSERT INTO area_conflicts`` to add
            them to a carried table); ``None`` writes none.
    """
    records = of_persons("source_records", persons)
    con.register("_area_departments", pd.DataFrame(list((departments or {}).items()),
                                                   columns=["source", "department"], dtype="string"))
    # The order of candidates as one text, compared as a whole (a struct compares several times slower):
    # the date padded so that 2024-05 (a month) sorts before 2024-05-03 and an undated record before
    # both, 1 for an address, the inverse trust rank, the record id.
    key = (f"rpad(coalesce(CAST(record_date AS VARCHAR), ''), 19, ' ') || CAST(origin = 'address' AS INTEGER) "
           f"|| lpad(CAST(999 - ({trust_rank_sql(trust)}) AS VARCHAR), 3, '0') || record_id")
    con.execute(f"""
CREATE OR REPLACE TEMP TABLE _area_candidates AS
WITH stated AS (
    SELECT person_id, source, record_id, record_date, 'stated' AS origin, street,
        -- a department writing 翠苑 or 翠苑社区居委会 names the register's 翠苑社区
        coalesce(k.community, r.community) AS community, grid
    FROM {records} r LEFT JOIN _area_names k ON k.name = r.community
    WHERE coalesce(r.street, r.community, r.grid) IS NOT NULL
), derived AS (
    SELECT person_id, source, record_id, record_date, 'address' AS origin,
        address_street AS street, address_community AS community, address_grid AS grid
    FROM {records} WHERE address_community IS NOT NULL
)
SELECT *, {key} AS key FROM (SELECT * FROM stated UNION ALL SELECT * FROM derived)
""")
    fills = ",\n        ".join(
        f"arg_max({{'v': c.{level}, 's': c.source, 'd': c.record_date}}, c.key) FILTER (WHERE c.{level} IS NOT NULL) "
        f"AS {level}_fill" for level in ("street", "grid"))
    area = ", ".join(
        f"CASE WHEN w.{level} IS NOT NULL THEN w.{level} ELSE f.{level}_fill.v END AS {level}, "
        f"CASE WHEN w.{level} IS NOT NULL THEN w.source ELSE f.{level}_fill.s END AS {level}_source, "
        f"CASE WHEN w.{level} IS NOT NULL THEN w.date ELSE f.{level}_fill.d END AS {level}_date"
        for level in ("street", "grid"))
    con.execute(f"""
CREATE OR REPLACE TEMP TABLE person_areas AS
WITH best AS (
    SELECT person_id,
        arg_max({{'street': street, 'community': community, 'grid': grid, 'source': source, 'date': record_date,
                  'origin': origin}}, key) AS w,
        max(key) AS winner,
        -- departments or addresses disagree: two different values at some level (missing values aside)
        coalesce(min(street) <> max(street) OR min(community) <> max(community) OR min(grid) <> max(grid), false)
            AS conflicted
    FROM _area_candidates GROUP BY person_id
), winners AS (SELECT person_id, unnest(w), winner, conflicted FROM best),
fill AS (
    -- only where the winner lacks a street or a grid: the best area of its community that has one
    SELECT c.person_id,
        {fills}
    FROM _area_candidates c JOIN winners w ON w.person_id = c.person_id
        AND c.community IS NOT DISTINCT FROM w.community AND (w.street IS NULL OR w.grid IS NULL)
    GROUP BY c.person_id
)
SELECT w.person_id, {area}, w.community,
    CASE WHEN w.community IS NOT NULL THEN w.source END AS community_source,
    CASE WHEN w.community IS NOT NULL THEN w.date END AS community_date,
    w.origin = 'address' AS area_from_address, w.conflicted, w.winner
FROM winners w LEFT JOIN fill f USING (person_id)
""")
    if conflicts is None:
        con.unregister("_area_departments")
        return
    con.execute(f"""
{conflicts}
WITH groups AS (
    SELECT c.person_id, c.source, c.origin, c.street, c.community, c.grid, max(c.record_date) AS record_date,
        count(*) AS records, arg_max(c.record_id, c.key) AS record_id, max(c.key) AS best,
        bool_or(c.key = p.winner) AS chosen
    FROM _area_candidates c JOIN person_areas p ON p.person_id = c.person_id AND p.conflicted
    GROUP BY ALL
), winners AS (
    SELECT g.person_id, coalesce(d.department, g.source) AS department, g.origin, g.record_date AS date,
        g.record_date IS NOT NULL AS dated,
        -- another area stated or named on the winner's own date: the tie the address (then trust) broke
        (SELECT count(*) FROM groups o WHERE o.person_id = g.person_id AND NOT o.chosen
            AND o.record_date = g.record_date) > 0 AS tied
    FROM groups g LEFT JOIN _area_departments d USING (source)
    WHERE g.chosen
)
SELECT g.person_id, g.source, coalesce(d.department, g.source) AS department, g.origin, g.street, g.community,
    g.grid, g.record_date, g.records, g.record_id, g.chosen,
    CASE WHEN g.chosen THEN
        CASE WHEN NOT w.dated THEN '各记录均无登记日期，'
             WHEN w.tied THEN '登记日期相同（' || CAST(w.date AS VARCHAR) || '），'
             ELSE '登记日期最近（' || CAST(w.date AS VARCHAR) || '），' END
        || CASE WHEN w.origin = 'address' THEN '采用' || w.department || '记录住址对照区划登记得出的区划'
                WHEN w.dated AND NOT w.tied THEN '采用' || w.department || '登记的区划'
                ELSE '按部门可信度采用' || w.department || '登记的区划' END
    END AS reason
FROM groups g JOIN winners w USING (person_id) LEFT JOIN _area_departments d ON d.source = g.source
ORDER BY g.person_id, g.chosen DESC, g.best DESC
""")
    con.unregister("_area_departments")
