"""Source declarations: the models behind ``sources.yaml`` and the loader that validates it.

A source says where a department's records live (an SQLAlchemy URL and a table or query, or a
CSV/xlsx/parquet file) and which of its columns carry which canonical field. Nothing is read
here: ``${NAME}`` placeholders stay in the model and are substituted only when a reader asks for
:meth:`SourceConfig.resolved_url` or :meth:`SourceConfig.resolved_path`, so secrets never sit in
a loaded object and nothing depends on the environment at import time.

Example:
    >>> sources = load_sources("demo/sources.yaml")          # doctest: +SKIP
    >>> sources.source("civil_affairs").resolved_url(home)   # doctest: +SKIP
    'sqlite:////srv/silobreaker/demo/civil_affairs.sqlite'
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator
from pydantic_core import PydanticCustomError
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from core.config import key_error, load_yaml_model, suggest
from core.errors import ConfigError
from core.home import HOME_ENV, DataHome, HomeLike
from core.vocabulary import CONSENT_FIELDS, DATE_FORMATS, PERSON_FIELDS, TYPED_DATE_FORMATS

__all__ = ["GRID_UPDATE_CHANGES", "GRID_UPDATE_COLUMNS", "GRID_UPDATE_KEY", "SourceConfig", "SourcesFile",
           "load_sources"]

_FIELDS_BY_ROLE = {"person": PERSON_FIELDS, "grid_updates": PERSON_FIELDS, "consent": CONSENT_FIELDS}

GRID_UPDATE_KEY = ("填报日期", "填报人", "序号")
"""The key of a grid-update form's row: the day, the worker and the row's number on that worker's form. A
source keeps the reports of earlier forms (a new form each week does not forget last week's deaths), so
the key must tell apart rows of different forms; a form sent twice is the same rows again."""

GRID_UPDATE_COLUMNS: dict[str, str] = {
    "change": "变更类型",
    "residence_status": "变更类型",
    "lives_alone": "变更类型",
    "name": "姓名",
    "sex": "性别",
    "birth_date": "出生日期",
    "id_number": "身份证号",
    "phone": "联系电话",
    "address": "现住址",
    "hukou_address": "户籍地址",
    "note": "情况说明",
    "reported_by": "填报人",
    "record_date": "填报日期",
}
"""The fixed schema of a ``role: grid_updates`` source (网格信息变更表): canonical field -> column of the
form ``silobreaker grid-updates template`` writes. Who the update is about is typed as a worker knows
them (name, sex, birth year-month, address; ID and phone where known) and linked like any department's
record."""

GRID_UPDATE_CHANGES: dict[str, tuple[str, str | None]] = {
    "迁出": ("moved_out", None),
    "死亡": ("deceased", None),
    "迁入": ("present", None),
    "独居": ("present", "true"),
    "不再独居": ("present", "false"),
    "电话变更": ("present", None),
    "信息更正": ("present", None),
}
"""Each change a grid worker can report (变更类型) -> (``residence_status``, ``lives_alone``) it states.
Every change but 迁出 and 死亡 says the worker found the person living there."""

GRID_UPDATE_FILLED = ("name", "change", "residence_status", "record_date")
"""The fields every row of the grid-update form states (姓名, 变更类型, 填报日期)."""

_GRID_UPDATE_DEFAULTS: dict[str, Any] = {
    "department": "网格",
    "primary_key": list(GRID_UPDATE_KEY),
    "columns": GRID_UPDATE_COLUMNS,
    "values": {
        "residence_status": {change: status for change, (status, _) in GRID_UPDATE_CHANGES.items()},
        "lives_alone": {change: alone or "" for change, (_, alone) in GRID_UPDATE_CHANGES.items()},
    },
    "date_formats": list(TYPED_DATE_FORMATS),
    "one_row_per": "event",
}
_FILE_KINDS = ("csv", "xlsx", "parquet")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SNAKE_CASE = re.compile(r"[a-z][a-z0-9_]*")

# One correct line per key, shown next to an error about that key so the fix can be copied.
_EXAMPLES = {
    "version": "version: 1",
    "sources": "sources: [{name: civil_affairs, department: 民政, kind: sql, ...}]",
    "name": "name: civil_affairs",
    "department": "department: 民政",
    "role": "role: person",
    "kind": "kind: csv",
    "url": 'url: "sqlite:///${SILOBREAKER_HOME}/demo/civil_affairs.sqlite"',
    "table": "table: mz_resident",
    "watermark": "watermark: gxsj",
    "query": 'query: "SELECT jmbh, xm, sfzh FROM mz_resident"',
    "path": "path: demo/health_visits.csv",
    "encoding": "encoding: gb18030",
    "delimiter": 'delimiter: ","',
    "sheet": "sheet: 在册人员",
    "primary_key": "primary_key: [jmbh]",
    "columns": "columns: {name: xm, id_number: sfzh}",
    "values": 'values: {sex: {"1": M, "2": F, 男: M, 女: F}}',
    "date_formats": 'date_formats: ["%Y-%m-%d", "%Y%m%d"]',
    "trust": "trust: 1",
    "one_row_per": "one_row_per: visit",
    "base": "base: true",
}


class SourceConfig(BaseModel):
    """One department's source: where its records live and what its columns mean.

    Example:
        >>> SourceConfig(
        ...     name="health_visits", department="卫健", kind="csv", path="demo/health_visits.csv",
        ...     primary_key=["visit_id"], columns={"name": "姓名", "id_number": "身份证号"},
        ... ).encoding
        'auto'
    """

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    name: str = Field(description="snake_case identifier; asset names and record ids are built from it.")
    department: str = Field(min_length=1, description="Department label shown in reports, e.g. 民政.")
    role: Literal["person", "consent", "grid_updates"] = Field(
        default="person",
        description="person: a register of residents; consent: the consent registry; grid_updates: what grid "
        "workers report (moved, deceased, lives alone, phone), in the fixed form of GRID_UPDATE_COLUMNS: "
        "department, primary_key, columns, values, date_formats and one_row_per default to that form's.",
    )
    kind: Literal["sql", "csv", "xlsx", "parquet"] = Field(description="How the source is read.")
    url: str | None = Field(
        default=None,
        description="sql: any SQLAlchemy URL; ${NAME} is replaced by an environment variable when read, "
        "${SILOBREAKER_HOME} by the data home; a relative SQLite file is under the data home.",
    )
    table: str | None = Field(default=None, description="sql: table to read (optionally schema.table).")
    watermark: str | None = Field(
        default=None,
        description="sql with table: a column the department's system sets on every insert and update (gxsj, "
        "updated_at). Each run then fetches only rows past the last value read, finds new and deleted rows by a "
        "scan of the primary key, and reads the table whole every 7 days (connectors.increments).",
    )
    query: str | None = Field(default=None, description="sql: SELECT to run instead of reading a whole table.")
    path: str | None = Field(
        default=None, description="csv/xlsx/parquet: file path; relative paths are under the data home."
    )
    encoding: Literal["auto", "utf-8", "utf-8-sig", "gbk", "gb18030"] = Field(
        default="auto", description="csv: text encoding; auto = BOM -> utf-8-sig, valid UTF-8 -> utf-8, else gb18030."
    )
    delimiter: str = Field(default=",", description="csv: the one-character field delimiter.")
    sheet: str | None = Field(default=None, description="xlsx: sheet name; the first sheet when omitted.")
    primary_key: list[str] = Field(
        min_length=1, description='Source column(s) identifying a row; values joined with "|" form source_key.'
    )
    columns: dict[str, str] = Field(min_length=1, description="Canonical field -> source column.")
    values: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="Canonical field -> {source value: canonical value}."
    )
    date_formats: list[str] = Field(
        default_factory=lambda: list(DATE_FORMATS),
        min_length=1,
        description="strptime formats tried in order when staging parses this source's dates "
        "(default: the day-precision forms of core.vocabulary.DATE_FORMATS).",
    )
    owner: str | None = Field(
        default=None,
        pattern=r"^(team:[A-Za-z0-9_\-]+|[^@\s]+@[^@\s]+\.[^@\s]+)$",
        description="who answers for this source's data, shown as the owner of its assets in Dagster: an "
        "e-mail address or team:<name>; default team:<source name>.",
    )
    trust: int | None = Field(
        default=None,
        ge=1,
        description="person sources: rank when departments disagree on a golden-record value; 1 is trusted "
        "first. Sources without trust follow those with one, in file order.",
    )

    base: bool = Field(
        default=False,
        description="person sources: this is the district's base population register (人口普查 or 实有人口库); "
        "the warehouse lists per grid who departments know but it does not, and who only it knows.",
    )

    one_row_per: Literal["person", "visit", "case", "event"] = Field(
        default="person",
        description="person sources: what one row stands for. person (default): a register, one row per resident, "
        "so two rows of one person are a duplicate entry; visit, case or event: a log with many rows per person by "
        "design, so its low uniqueness is noted in the report and left out of the department's grade.",
    )

    # Where the declaration came from, so errors raised later (at read time) can name the file.
    _origin: str | None = PrivateAttr(default=None)
    _index: int | None = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _snake_case_name(cls, value: str) -> str:
        if not _SNAKE_CASE.fullmatch(value):
            raise PydanticCustomError(
                "snake_case",
                "expected snake_case (lower-case letters, digits and underscores, starting with a letter), "
                "got '{value}'; e.g. name: civil_affairs",
                {"value": value},
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _grid_update_form(cls, data: Any) -> Any:
        # A grid-update source reads the one form every grid fills in; only where it lives is declared.
        if isinstance(data, dict) and data.get("role") == "grid_updates":
            merged = {**_GRID_UPDATE_DEFAULTS, **data}
            if isinstance(data.get("date_formats"), list):  # a clerk's own date forms, besides the form's
                merged["date_formats"] = list(dict.fromkeys([*data["date_formats"], *TYPED_DATE_FORMATS]))
            if "values" not in data and isinstance(merged["columns"], dict):  # the form's words, where its columns are
                merged["values"] = {field: words for field, words in _GRID_UPDATE_DEFAULTS["values"].items()
                                    if merged["columns"].get(field) == GRID_UPDATE_COLUMNS[field]}
            return merged
        return data

    @property
    def expected_fields(self) -> list[str]:
        """The fields a filled-in row is expected to state (what an emptied column is judged by): every mapped
        field, but of the grid-update form only those every row has (the worker knows the rest sometimes)."""
        if self.role == "grid_updates":
            return [f for f in self.columns if f in GRID_UPDATE_FILLED]
        return list(self.columns)

    @property
    def holds_persons(self) -> bool:
        """Whether the rows are about residents (a person or grid-update source), staged as person records."""
        return self.role != "consent"

    @field_validator("values", mode="before")
    @classmethod
    def _yaml_scalars_as_text(cls, value: Any) -> Any:
        # YAML reads `是: true` as a boolean; the mapping is about text, so keep the spelling.
        if not isinstance(value, dict):
            return value
        return {
            field: {_yaml_text(k): _yaml_text(v) for k, v in mapping.items()} if isinstance(mapping, dict) else mapping
            for field, mapping in value.items()
        }

    @model_validator(mode="after")
    def _consistent(self) -> SourceConfig:
        self._check_kind_keys()
        self._check_fields()
        for position, key in enumerate(self.primary_key):
            if not key.strip():
                raise key_error("primary_key entries must be column names, got an empty string", "primary_key", position)
        if len(set(self.primary_key)) != len(self.primary_key):
            raise key_error(f"primary_key lists a column twice: {self.primary_key}", "primary_key")
        for position, fmt in enumerate(self.date_formats):
            if "%" not in fmt:
                raise key_error(f"{fmt!r} is not a strptime format; expected e.g. '%Y-%m-%d'", "date_formats", position)
        for key in ("url", "path", "table", "query"):
            text = getattr(self, key)
            if text is not None and "${" in _PLACEHOLDER.sub("", text):
                raise key_error(f"malformed placeholder in {text!r}; expected ${{NAME}} with NAME a variable name", key)
        return self

    def _check_kind_keys(self) -> None:
        given = self.model_fields_set
        if self.kind == "sql":
            if not self.url:
                raise key_error(f"a sql source needs url; e.g. {_EXAMPLES['url']}", "url")
            if (self.table is None) == (self.query is None):
                raise key_error(
                    "a sql source needs exactly one of table or query; e.g. table: mz_resident",
                    "query" if self.query is not None else "table",
                )
            if self.watermark is not None and self.table is None:
                raise key_error("watermark needs table: a query is read whole (declare table: to read by "
                                "watermark)", "watermark")
            misplaced = [k for k in ("path", "sheet", "encoding", "delimiter") if k in given]
        else:
            if not self.path:
                raise key_error(f"a {self.kind} source needs path; e.g. path: demo/my_file.{self.kind}", "path")
            allowed = {"csv": ("encoding", "delimiter"), "xlsx": ("sheet",), "parquet": ()}[self.kind]
            optional = ("url", "table", "query", "watermark", "sheet", "encoding", "delimiter")
            misplaced = [k for k in optional if k in given and k not in allowed]
        if misplaced:
            raise key_error(f"{misplaced[0]} does not apply to a {self.kind} source; remove it", misplaced[0])
        if len(self.delimiter) != 1:
            raise key_error(f"delimiter must be one character, got {self.delimiter!r}; e.g. delimiter: \";\"", "delimiter")

    def _check_fields(self) -> None:
        allowed = _FIELDS_BY_ROLE[self.role]
        for field, column in self.columns.items():
            if field not in allowed:
                other = "consent" if self.role != "consent" else "person"
                hint = (
                    f" ({field!r} is a {other} field; set role: {other} if this is a {other} source)"
                    if field in _FIELDS_BY_ROLE[other]
                    else suggest(field, allowed)
                )
                raise key_error(
                    f"unknown canonical field {field!r} for a {self.role} source{hint}; "
                    f"expected one of: {', '.join(allowed)}",
                    "columns",
                    field,
                )
            if not column.strip():
                raise key_error(f"columns.{field} must name a source column, got an empty string", "columns", field)
        for field in self.values:
            if field not in self.columns:
                raise key_error(
                    f"values.{field} maps values of a field that columns does not map; "
                    f"add columns.{field}: <source column> or remove values.{field}",
                    "values",
                    field,
                )

    def resolved_url(self, home: HomeLike) -> str:
        """The SQLAlchemy URL with ``${...}`` substituted; relative SQLite files are put under ``home``.

        A placeholder standing for one part of the URL (``reader:${PG_PASSWORD}@db``) is
        substituted into that part after parsing, so a password may contain ``@``, ``:`` or ``/``
        as is. A placeholder for the whole URL (``url: ${CIVIL_DB_URL}``) must hold a valid,
        percent-encoded URL.

        Args:
            home: the data home (see :class:`core.home.DataHome`).

        Raises:
            ConfigError: the source is not sql, a variable is unset, or the URL cannot be parsed.
        """
        if self.url is None:
            raise ConfigError(f"{self._where('url')}: a {self.kind} source has no url")
        try:
            url = self._url_by_parts(home)
        except (ArgumentError, ValueError):
            try:
                url = make_url(self._substitute("url", self.url, home))
            except (ArgumentError, ValueError) as e:
                # The text may hold a substituted password, so it is not echoed.
                raise ConfigError(
                    f"{self._where('url')}: not a valid SQLAlchemy URL; expected e.g. "
                    "postgresql+psycopg://reader:${PG_PASSWORD}@db.example:5432/civil or sqlite:///demo/x.sqlite"
                ) from e
        database = url.database or ""
        if url.get_backend_name() == "sqlite" and database not in ("", ":memory:") and not database.startswith("file:"):
            if not Path(database).is_absolute():
                url = url.set(database=str(DataHome.at(home).declared_path(database)))
        return url.render_as_string(hide_password=False)

    def _url_by_parts(self, home: HomeLike) -> URL:
        template = make_url(self.url or "")  # placeholders are inert text while parsing

        def sub(part: str | None) -> str | None:
            return None if part is None else self._substitute("url", part, home)

        query = {
            key: tuple(sub(v) for v in value) if isinstance(value, tuple) else sub(value)
            for key, value in template.query.items()
        }
        return URL.create(
            drivername=sub(template.drivername) or "",
            username=sub(template.username),
            password=sub(template.password),
            host=sub(template.host),
            port=template.port,
            database=sub(template.database),
            query=query,
        )

    def resolved_path(self, home: HomeLike) -> Path:
        """The file path with ``${...}`` substituted and made absolute under ``home`` if relative.

        Raises:
            ConfigError: the source has no path or a variable is unset.
        """
        text = self._resolved("path", home)
        if text is None:
            raise ConfigError(f"{self._where('path')}: a {self.kind} source has no path")
        return DataHome.at(home).declared_path(text)

    def resolved_table(self, home: HomeLike) -> str | None:
        """The table name with ``${...}`` substituted, or None for a query source."""
        return self._resolved("table", home)

    def resolved_query(self, home: HomeLike) -> str | None:
        """The query with ``${...}`` substituted, or None for a table source."""
        return self._resolved("query", home)

    def _resolved(self, key: str, home: HomeLike) -> str | None:
        text = getattr(self, key)
        return None if text is None else self._substitute(key, text, home)

    def _substitute(self, key: str, text: str, home: HomeLike) -> str:
        def substitute(match: re.Match[str]) -> str:
            variable = match.group(1)
            if variable == HOME_ENV:
                return str(DataHome.at(home).root)
            value = os.environ.get(variable)
            if value is None:
                raise ConfigError(
                    f"{self._where(key)}: environment variable {variable} is not set; "
                    f"set it (export {variable}=...) or replace ${{{variable}}} in the file"
                )
            return value

        return _PLACEHOLDER.sub(substitute, text)

    def _where(self, key: str) -> str:
        path = f"sources[{self._index}].{key}" if self._index is not None else key
        origin = f"{self._origin}: " if self._origin else ""
        return f"{origin}source {self.name!r}, key {path}"


class SourcesFile(BaseModel):
    """The whole ``sources.yaml``: a version and the list of sources."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = Field(description="Format version of the file; currently 1.")
    sources: list[SourceConfig] = Field(min_length=1, description="The departments' sources, names unique.")

    @model_validator(mode="after")
    def _unique_and_one_consent(self) -> SourcesFile:
        seen: dict[str, int] = {}
        consent: int | None = None
        for index, source in enumerate(self.sources):
            if source.name in seen:
                raise key_error(
                    f"duplicate source name {source.name!r} (also sources[{seen[source.name]}]); names must be unique",
                    "sources",
                    index,
                    "name",
                )
            seen[source.name] = index
            if source.role == "consent":
                if consent is not None:
                    raise key_error(
                        f"a second consent source (the first is sources[{consent}]); "
                        "at most one source has role: consent",
                        "sources",
                        index,
                        "role",
                    )
                consent = index
        trusted: dict[int, int] = {}
        for index, source in enumerate(self.sources):
            if source.trust is None:
                continue
            if source.role == "consent":
                raise key_error("trust ranks person sources for golden-record values; remove it from the consent "
                                "source", "sources", index, "trust")
            if source.trust in trusted:
                raise key_error(
                    f"trust {source.trust} is also given to sources[{trusted[source.trust]}]; give each person "
                    "source its own rank (1 is trusted first)", "sources", index, "trust")
            trusted[source.trust] = index
        bases = [index for index, source in enumerate(self.sources) if source.base]
        for index in bases:
            if self.sources[index].role != "person":
                raise key_error("base marks the district's population register among the person sources; remove it "
                                f"from a {self.sources[index].role} source", "sources", index, "base")
        if len(bases) > 1:
            raise key_error(f"a second base register (the first is sources[{bases[0]}]); at most one source has "
                            "base: true", "sources", bases[1], "base")
        for index, source in enumerate(self.sources):
            if source.role == "consent" and "one_row_per" in source.model_fields_set:
                raise key_error("one_row_per says what a person source's row stands for; the consent registry "
                                "holds decisions, remove it there", "sources", index, "one_row_per")
        return self

    def source(self, name: str) -> SourceConfig:
        """The source called ``name``.

        Raises:
            ConfigError: no source has that name; the message lists the names that exist.
        """
        for candidate in self.sources:
            if candidate.name == name:
                return candidate
        names = [s.name for s in self.sources]
        raise ConfigError(f"no source named {name!r}{suggest(name, names)}; sources declared: {', '.join(names)}")

    @property
    def consent_source(self) -> SourceConfig | None:
        """The consent registry, if one is declared."""
        return next((s for s in self.sources if s.role == "consent"), None)

    @property
    def person_sources(self) -> list[SourceConfig]:
        """Every source of person records (``role: person`` and ``role: grid_updates``), in file order."""
        return [s for s in self.sources if s.holds_persons]

    @property
    def base_source(self) -> SourceConfig | None:
        """The district's base population register (``base: true``), if one is declared."""
        return next((s for s in self.sources if s.base), None)

    @property
    def trust_ranks(self) -> dict[str, int]:
        """Person source -> rank (0 is trusted first) for choosing between departments' values.

        Sources that declare ``trust`` come first, by it; the others follow in file order.

        Example:
            >>> load_sources("demo/sources.yaml").trust_ranks   # doctest: +SKIP
            {'civil_affairs': 0, 'health': 1, 'justice': 2, 'census': 3}
        """
        persons = self.person_sources
        order = sorted(range(len(persons)), key=lambda i: (persons[i].trust is None, persons[i].trust or 0, i))
        return {persons[i].name: rank for rank, i in enumerate(order)}


def load_sources(path: str | os.PathLike[str]) -> SourcesFile:
    """Read and validate a ``sources.yaml``.

    Args:
        path: the YAML file.

    Returns:
        The validated declarations; placeholders are still unsubstituted.

    Raises:
        ConfigError: the file is missing, is not YAML, or breaks a rule; the message names the file,
            each offending key path (e.g. ``sources[2].columns.nmae``) with its line, and what was expected.
    """
    file = Path(path)
    sources = load_yaml_model(file, SourcesFile, "sources file", examples=_EXAMPLES, like="demo/sources.yaml")
    for index, source in enumerate(sources.sources):
        source._origin = str(file)
        source._index = index
    return sources


def _yaml_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value
