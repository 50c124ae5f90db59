"""One policy entry for every area: ``scope: {grid: "*"}`` becomes one product per grid.

A 街道 has dozens of communities and hundreds of grids (网格); writing one policy entry per grid is how
the demo once had 193 grids and one grid product. An entry whose scope says ``"*"`` for a level —

    - name: grid_workers
      kind: grid_worker
      level: grid
      scope: {grid: "*"}            # or {community: 翠苑社区, grid: "*"}: the grids of one community

— is expanded at every publication into one product per area of that level (街道—社区—网格: ``street``,
``community``, ``grid``), each the entry with that area's scope, its own name ``<name>_<area slug>``
(so its own product key, password and files, :mod:`publish.products`) and the area in its description.
The consent registry keeps naming the entry (``consent_recipient``, default the entry's name): a resident
consents to the grid service, not to grid 3.

The areas are the district's area register (:mod:`publish.areas`): every grid there gets its list, an
empty one included (a grid worker whose list is empty learns that, instead of receiving nothing). A
person whose golden area is not in the register is in no area product; :func:`unlisted_areas` counts
them by area for the run log. Without a register the areas are those the published people are in.

The slug is the area's name in toneless pinyin without the generic words (社区, 网格, 第, 街道…): 翠苑社区第1网格
gives ``cuiyuan_1``, 翠苑社区 ``cuiyuan``, 西溪街道 ``xixi``. Two areas whose names read the same (翠苑 and
翠园) both get four hex characters of their name's hash, so names never collide and stay stable run after run.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import defaultdict

import duckdb
import pandas as pd
from pypinyin import lazy_pinyin

from core.errors import ConfigError
from publish.areas import AreaRegister
from publish.policy import SCOPE_FIELDS, Recipient

__all__ = ["area_slug", "expand_recipients", "known_areas", "scope_areas", "unlisted_areas"]

log = logging.getLogger(__name__)

_GENERIC = {
    "street": re.compile(r"(街道办事处|街道|办事处|镇|乡)$"),
    "community": re.compile(r"(社区居民委员会|社区居委会|居民委员会|居委会|社区|村民委员会|村委会|村)$"),
    "grid": re.compile(r"第|网格$|网格"),
}


def area_slug(level: str, name: str, community: str | None = None) -> str:
    """The ASCII part of a product name for an area: its pinyin without the generic words.

    >>> area_slug("grid", "翠苑社区第1网格", community="翠苑社区")
    'cuiyuan_1'
    >>> area_slug("community", "翠苑社区"), area_slug("street", "西溪街道")
    ('cuiyuan', 'xixi')
    """
    if level == "grid" and community:
        inner = name.removeprefix(community)
        return f"{area_slug('community', community)}_{_ascii(_GENERIC['grid'].sub('', inner) or inner, name)}"
    return _ascii(_GENERIC[level].sub("", name) or name, name)


def _ascii(text: str, name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "", "".join(lazy_pinyin(text)).lower())
    return slug or "a" + hashlib.sha256(name.encode()).hexdigest()[:6]


def known_areas(con: duckdb.DuckDBPyConnection, register: AreaRegister | None) -> pd.DataFrame:
    """``street, community, grid``: the register's lines, or without one every area of ``unified_population``."""
    if register is not None:
        return pd.DataFrame([(a.street, a.community, a.grid) for a in register.lines],
                            columns=list(SCOPE_FIELDS)).drop_duplicates()
    return con.execute("SELECT DISTINCT street, community, grid FROM unified_population "
                       "WHERE coalesce(street, community, grid) IS NOT NULL ORDER BY ALL").df()


def scope_areas(recipient: Recipient, areas: pd.DataFrame) -> list[tuple[str, dict[str, str], str]]:
    """``(slug, scope, label)`` of every area ``recipient``'s ``"*"`` scope covers, in name order.

    The scope of a grid keeps its community (grid names repeat across communities in some districts);
    levels the entry fixes (``{community: 翠苑社区, grid: "*"}``) narrow the areas.
    """
    level = recipient.every_area
    fixed = {k: v for k, v in recipient.scope.items() if k != level}
    rows = areas.dropna(subset=[level])
    for key, value in fixed.items():
        rows = rows[rows[key] == value]
    found: dict[tuple, tuple[str, dict[str, str], str]] = {}
    for row in rows.itertuples(index=False):
        row = row._asdict()
        keys = ["community", "grid"] if level == "grid" else [level]
        scope = {**fixed, **{k: row[k] for k in keys if row[k] is not None and not pd.isna(row[k])}}
        name = row[level]
        community = scope.get("community") if level == "grid" else None
        label = name if not community or name.startswith(community) else f"{community}{name}"
        found.setdefault(tuple(sorted(scope.items())), (area_slug(level, name, community), scope, label))
    by_slug: dict[str, list[tuple]] = defaultdict(list)
    for key, (slug, _, _) in found.items():
        by_slug[slug].append(key)
    result = []
    for key, (slug, scope, label) in sorted(found.items(), key=lambda kv: kv[1][2]):
        if len(by_slug[slug]) > 1:  # 翠苑 and 翠园 read the same: keep both apart, stably
            slug = f"{slug}_{hashlib.sha256(label.encode()).hexdigest()[:4]}"
        result.append((slug, scope, label))
    return result


def expand_recipients(recipients: list[Recipient], areas: pd.DataFrame) -> list[Recipient]:
    """The products a policy publishes: every entry, a ``"*"`` one replaced by its products per area."""
    products: list[Recipient] = []
    for recipient in recipients:
        if recipient.every_area:
            expanded = recipient.for_areas(scope_areas(recipient, areas))
            if not expanded:
                log.warning("policy entry %s (scope %s) covers no area: no %s is known", recipient.name,
                            recipient.scope, recipient.every_area)
            products += expanded
        else:
            products.append(recipient)
    names = [p.name for p in products]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ConfigError(f"product names {clash} are both a policy entry and an area product of a \"*\" entry: "
                         "rename the policy entry")
    return products


def unlisted_areas(con: duckdb.DuckDBPyConnection, areas: pd.DataFrame, level: str) -> list[tuple[str, int]]:
    """Areas of ``level`` people are placed in that ``areas`` does not hold, with how many people: they
    are in no area product of that level (a grid a department states that the register lacks)."""
    con.register("_known_areas", areas)
    try:
        return con.execute(
            f"SELECT u.{level}, count(*) FROM unified_population u WHERE u.{level} IS NOT NULL "
            f"AND u.{level} NOT IN (SELECT {level} FROM _known_areas WHERE {level} IS NOT NULL) "
            "GROUP BY 1 ORDER BY 2 DESC, 1").fetchall()
    finally:
        con.unregister("_known_areas")
