"""Key populations (重点人群) as configuration: ``populations.yaml``.

Each category is a code, its Chinese label, a rule over the unified table's golden columns (a DuckDB
boolean expression) and, where membership itself reveals health or judicial data, the sensitive
consent category sharing it needs (单独同意, or on a statutory basis the law naming it). The unified
table gets one boolean column per category (its code) and ``key_populations``, the list of the
person's categories in file order; ``key_residents`` lists person × category with the reason in
Chinese.

Example ``populations.yaml``::

    version: 1
    categories:
      - code: elderly_living_alone
        label: 独居老人
        rule: age >= 60 AND lives_alone
        reason: 年龄{age}岁，独居
      - code: chronic_patient
        label: 慢性病患者
        rule: chronic_disease IS NOT NULL
        reason: 慢性病：{chronic_disease}
        sensitive: health

A rule is checked when the file is loaded: it is parsed by DuckDB and bound against an empty
``unified_population`` (the golden columns, without the category columns), so an unknown column, a
misspelt function or a rule that is not a yes/no test fails at load with the file, the line, the
category and a fix. A rule is one expression over one person's row: no subqueries, no other tables.

The categories the demo ships (``demo/populations.yaml``) are the defaults
(:func:`default_populations`): what a policy, a product or a test that names no file gets.
Household categories (一老一小: an elderly person living with a young child; 留守 left-behind
children and elderly) need household relations that no source sends yet: a rule sees one person.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any, Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from core.config import key_error, load_yaml_model, suggest
from core.vocabulary import DEPARTED_STATUSES
from publish.sqltext import literal

__all__ = [
    "DEFAULT_POPULATIONS_FILE",
    "SENSITIVE_CATEGORIES",
    "Category",
    "KeyPopulations",
    "default_populations",
    "load_populations",
    "present_sql",
]

def present_sql(alias: str = "") -> str:
    """True for a person not reported moved out or deceased, over ``unified_population``'s columns (of the
    table ``alias`` where given)."""
    column = f"{alias}.residence_status" if alias else "residence_status"
    return f"coalesce({column} NOT IN ({', '.join(repr(s) for s in DEPARTED_STATUSES)}), true)"


DEFAULT_POPULATIONS_FILE = Path(__file__).resolve().parents[1] / "demo" / "populations.yaml"
"""The categories used where no ``populations.yaml`` is named: the demo's, today's behaviour."""

SENSITIVE_CATEGORIES = ("health", "judicial")
"""Consent categories membership of a key population can reveal (PIPL art. 28)."""

#: Golden columns that follow from the birth date: a category over these alone is derived from age,
#: which analyst rows show anyway (no l-diversity category, :mod:`publish.anonymity`).
_AGE_COLUMNS = frozenset({"age", "birth_year", "birth_date", "birth_day", "birth_date_precision"})

#: Columns added to the unified table after the categories: not usable in a rule, nor as a code.
_LATER_COLUMNS = ("key_populations", "consent", "effective_consent")

_CODE = re.compile(r"[a-z][a-z0-9_]*")
_HAN = re.compile(r"[\u3400-\u9fff]")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_UNKNOWN = "不详"  # how a reason shows a value the person's record lacks
_EXAMPLE_RULE = "rule: age >= 60 AND lives_alone"


class Category(BaseModel):
    """One key population: who is in it and what sharing it needs."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="snake_case code: the unified table's column and the value in key_populations")
    label: str = Field(description="the Chinese name a department or grid worker reads, e.g. 独居老人")
    rule: str = Field(description="DuckDB boolean expression over unified_population's golden columns, "
                                  "e.g. age >= 60 AND lives_alone")
    reason: str | None = Field(
        default=None,
        description="why a person is listed, in Chinese, with {column} for a value of theirs, e.g. 年龄{age}岁，独居 "
        "(default: the label)",
    )
    sensitive: str | None = Field(
        default=None,
        description="the consent category membership reveals and sharing needs: health or judicial (PIPL art. 28); "
        "leave out for a category that reveals neither",
    )

    _columns: frozenset[str] = PrivateAttr(default=frozenset())

    @field_validator("code")
    @classmethod
    def _snake_case(cls, code: str) -> str:
        if not _CODE.fullmatch(code):
            raise ValueError(f"code {code!r} is not snake_case (lower-case letters, digits and underscores, "
                             "starting with a letter); e.g. code: elderly_living_alone")
        return code

    @model_validator(mode="after")
    def _checked(self) -> Category:
        columns = dict(rule_columns())
        if self.code in columns or self.code in _LATER_COLUMNS:
            raise key_error(f"category {self.code!r}: the code is already a column of unified_population; "
                            f"choose another, e.g. code: {self.code}_person", "code")
        if not _HAN.search(self.label):
            raise key_error(f"category {self.code!r}: the label is read by departments and grid workers; "
                            "write it in Chinese, e.g. label: 独居老人", "label")
        if self.sensitive is not None and self.sensitive not in SENSITIVE_CATEGORIES:
            raise key_error(f"category {self.code!r}: sensitive {self.sensitive!r} is not a consent category; "
                            f"write one of {', '.join(SENSITIVE_CATEGORIES)} (e.g. sensitive: health), "
                            "or leave it out if membership reveals neither", "sensitive")
        self._columns = _check_rule(self.code, self.rule, columns)
        for placeholder in _PLACEHOLDER.findall(self.reason or ""):
            if placeholder not in columns:
                raise key_error(f"category {self.code!r}: reason names {{{placeholder}}}, which is not a column of "
                                f"unified_population{suggest(placeholder, list(columns))}; e.g. reason: 年龄{{age}}岁",
                                "reason")
        return self

    @property
    def derived_from_age(self) -> bool:
        """Whether the rule reads only the birth date and what follows from it (age, birth year)."""
        return bool(self._columns) and self._columns <= _AGE_COLUMNS

    def reason_sql(self) -> str:
        """A DuckDB expression rendering :attr:`reason` for a row of ``unified_population``."""
        parts = re.split(r"(\{[^{}]*\})", self.reason or self.label)
        pieces = [
            f"coalesce(CAST({p[1:-1]} AS VARCHAR), '{_UNKNOWN}')" if _PLACEHOLDER.fullmatch(p) else literal(p)
            for p in parts if p
        ]
        return " || ".join(pieces) or literal(self.label)


class KeyPopulations(BaseModel):
    """The whole ``populations.yaml``."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = Field(description="file format version")
    categories: list[Category] = Field(min_length=1, description="every key population, in the order lists show them")

    @model_validator(mode="after")
    def _unique(self) -> KeyPopulations:
        seen: dict[str, int] = {}
        for i, category in enumerate(self.categories):
            if category.code in seen:
                raise key_error(f"code {category.code!r} is given twice (categories[{seen[category.code]}] and "
                                f"categories[{i}]); each category needs its own code", "categories", i, "code")
            seen[category.code] = i
        return self

    @property
    def codes(self) -> tuple[str, ...]:
        """Every category's code, in file order."""
        return tuple(c.code for c in self.categories)

    @property
    def labels(self) -> dict[str, str]:
        """Code -> Chinese label."""
        return {c.code: c.label for c in self.categories}

    @property
    def sensitive(self) -> dict[str, str]:
        """Code -> the consent category (health, judicial) membership needs, for sensitive categories only."""
        return {c.code: c.sensitive for c in self.categories if c.sensitive}

    @property
    def derived_from_age(self) -> tuple[str, ...]:
        """Codes of the categories that follow from age alone."""
        return tuple(c.code for c in self.categories if c.derived_from_age)

    def flags_sql(self) -> str:
        """One ``coalesce(<rule>, false) AS <code>`` per category, for a SELECT over the golden columns. A person
        reported moved out or deceased (``residence_status``) is in no category: they are no longer served here."""
        return ",\n    ".join(f"(coalesce(({c.rule}), false) AND {present_sql()}) AS {c.code}" for c in self.categories)

    def list_sql(self) -> str:
        """The ``key_populations`` list from the category columns :meth:`flags_sql` made."""
        whens = ", ".join(f"CASE WHEN {c.code} THEN '{c.code}' END" for c in self.categories)
        return f"list_filter([{whens}], lambda x: x IS NOT NULL)"

    def key_residents_sql(self) -> str:
        """``CREATE TABLE key_residents``: person × category, with the area and the reason in Chinese."""
        unions = "\nUNION ALL\n".join(
            f"SELECT person_id, '{c.code}' AS category, {literal(c.label)} AS category_label, "
            f"{literal(c.sensitive) if c.sensitive else 'CAST(NULL AS VARCHAR)'} AS sensitive, "
            f"street, community, grid, {c.reason_sql()} AS reason, {i} AS _order "
            f"FROM unified_population WHERE {c.code}"
            for i, c in enumerate(self.categories)
        )
        return f"""CREATE TABLE key_residents AS
SELECT * EXCLUDE (_order) FROM ({unions})
ORDER BY street NULLS LAST, community NULLS LAST, grid NULLS LAST, _order, person_id"""


def load_populations(path: str | Path) -> KeyPopulations:
    """Load and check ``populations.yaml``, failing with the file, the line, the category and the fix."""
    return load_yaml_model(path, KeyPopulations, "key populations file", like="demo/populations.yaml",
                           examples={"rule": _EXAMPLE_RULE, "label": "label: 独居老人", "code": "code: elderly_living_alone",
                                     "version": "version: 1"})


@functools.cache
def default_populations() -> KeyPopulations:
    """The categories of :data:`DEFAULT_POPULATIONS_FILE`, loaded once."""
    return load_populations(DEFAULT_POPULATIONS_FILE)


@functools.cache
def rule_columns() -> tuple[tuple[str, str], ...]:
    """``(column, DuckDB type)`` of every golden column a rule may use, as the warehouse builds them."""
    from publish.golden import golden_columns  # (publish.golden reads the categories from here)

    return tuple((name, kind) for name, kind in golden_columns() if name not in _LATER_COLUMNS)


def _check_rule(code: str, rule: str, columns: dict[str, str], what: str = "category", key: str = "rule",
                example: str = _EXAMPLE_RULE) -> frozenset[str]:
    """The columns ``rule`` reads; raises a key error at ``key`` when it is not one yes/no expression
    over those columns (``what`` names the thing the rule belongs to, a category or a risk rule)."""
    where = f"{what} {code!r}: {key} {rule!r}"
    example_rule = example
    if any(token in rule for token in (";", "--", "/*")):
        raise key_error(f"{where}: write one expression, without ';' or comments; e.g. {example_rule}", key)
    sql = f"SELECT ({rule}) FROM unified_population"
    with duckdb.connect() as con:
        tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
        if tree.get("error"):
            problem = str(tree.get("error_message", "")).splitlines()[0]
            raise key_error(f"{where} is not valid SQL ({problem}); e.g. {example_rule}", key)
        node = tree["statements"][0]["node"] if len(tree["statements"]) == 1 else {}
        source = node.get("from_table") or {}
        if (len(node.get("select_list", ())) != 1 or source.get("type") != "BASE_TABLE"
                or source.get("table_name") != "unified_population" or node.get("where_clause")):
            raise key_error(f"{where}: a rule is one expression over one person's row; e.g. {example_rule}", key)
        used, nested = _walk(node["select_list"][0])
        if nested:
            raise key_error(f"{where}: a rule may not contain a query (SELECT); it sees one person's golden "
                            f"columns only; e.g. {example_rule}", key)
        for name in used:
            if len(name) != 1 or name[0] not in columns:
                shown = ".".join(name)
                raise key_error(f"{where}: unknown column {shown!r}{suggest(name[-1], list(columns))}; a rule may use "
                                f"the golden columns of unified_population: {', '.join(columns)}", key)
        con.execute(f"CREATE TABLE unified_population ({', '.join(f'{n} {t}' for n, t in columns.items())})")
        try:
            kind = con.execute(f"DESCRIBE SELECT ({rule}) AS _rule FROM unified_population").fetchall()[0][1]
        except duckdb.Error as e:
            problem = str(e).splitlines()[0]
            raise key_error(f"{where} cannot be evaluated ({problem}); e.g. {example_rule}", key) from e
    if kind != "BOOLEAN":
        raise key_error(f"{where} gives {kind}, not yes/no; compare it, e.g. disability_grade IS NOT NULL "
                        f"or {example_rule.removeprefix('rule: ')}", key)
    return frozenset(n[0] for n in used)


def _walk(node: Any) -> tuple[list[tuple[str, ...]], bool]:
    """Column names referenced in a serialised DuckDB expression (a lambda's own parameters aside), and
    whether it holds a subquery."""
    used: list[tuple[str, ...]] = []
    bound: set[tuple[str, ...]] = set()
    nested = False
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("class") == "COLUMN_REF":
                used.append(tuple(item.get("column_names", ())))
            if item.get("class") == "LAMBDA":  # list_filter(sources, lambda x: x = 'health'): x is no column
                bound.update(_walk(item.get("lhs"))[0])
            if item.get("class") == "SUBQUERY" or "SUBQUERY" in str(item.get("type", "")):
                nested = True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return [name for name in used if name not in bound], nested

