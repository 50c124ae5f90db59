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

import difflib
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from core.errors import ConfigError
from core.paths import HOME_ENV

__all__ = [
    "CONSENT_FIELDS",
    "DEFAULT_DATE_FORMATS",
    "PERSON_FIELDS",
    "SourceConfig",
    "SourcesFile",
    "load_sources",
]

PERSON_FIELDS: tuple[str, ...] = (
    "name",
    "sex",
    "birth_date",
    "id_number",
    "phone",
    "address",
    "street",
    "community",
    "grid",
    "record_date",
    "lives_alone",
    "low_income",
    "disability_grade",
    "chronic_disease",
    "pregnant",
    "corrections",
    "case_type",
)
"""Canonical fields a ``role: person`` source may map in ``columns``."""

CONSENT_FIELDS: tuple[str, ...] = (
    "id_number", "name", "purpose", "recipient", "status", "decided_at", "channel", "categories", "expires_at",
    "guardian_id_number",
)
"""Canonical fields a ``role: consent`` source may map in ``columns``."""

DEFAULT_DATE_FORMATS: tuple[str, ...] = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y年%m月%d日")
"""strptime formats tried, in order, when a source does not declare ``date_formats``."""

_FIELDS_BY_ROLE = {"person": PERSON_FIELDS, "consent": CONSENT_FIELDS}
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
    "query": 'query: "SELECT jmbh, xm, sfzh FROM mz_resident"',
    "path": "path: demo/health_visits.csv",
    "encoding": "encoding: gb18030",
    "delimiter": 'delimiter: ","',
    "sheet": "sheet: 在册人员",
    "primary_key": "primary_key: [jmbh]",
    "columns": "columns: {name: xm, id_number: sfzh}",
    "values": 'values: {sex: {"1": M, "2": F, 男: M, 女: F}}',
    "date_formats": 'date_formats: ["%Y-%m-%d", "%Y%m%d"]',
}


def _rule(problem: str, *sub_loc: str | int) -> PydanticCustomError:
    """A validation error whose key path is refined by ``sub_loc`` when the file is reported.

    Model validators can only fail for the whole model; ``sub_loc`` lets the report still point
    at ``sources[2].columns.nmae`` rather than at ``sources[2]``.
    """
    return PydanticCustomError("source_rule", problem, {"sub_loc": sub_loc})


def _suggest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


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
    role: Literal["person", "consent"] = Field(
        default="person", description="person: a register of residents; consent: the consent registry."
    )
    kind: Literal["sql", "csv", "xlsx", "parquet"] = Field(description="How the source is read.")
    url: str | None = Field(
        default=None,
        description="sql: any SQLAlchemy URL; ${NAME} is replaced by an environment variable when read, "
        "${SILOBREAKER_HOME} by the data home; a relative SQLite file is under the data home.",
    )
    table: str | None = Field(default=None, description="sql: table to read (optionally schema.table).")
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
        default_factory=lambda: list(DEFAULT_DATE_FORMATS),
        min_length=1,
        description="strptime formats tried in order when staging parses this source's dates.",
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
                raise _rule("primary_key entries must be column names, got an empty string", "primary_key", position)
        if len(set(self.primary_key)) != len(self.primary_key):
            raise _rule(f"primary_key lists a column twice: {self.primary_key}", "primary_key")
        for position, fmt in enumerate(self.date_formats):
            if "%" not in fmt:
                raise _rule(f"{fmt!r} is not a strptime format; expected e.g. '%Y-%m-%d'", "date_formats", position)
        for key in ("url", "path", "table", "query"):
            text = getattr(self, key)
            if text is not None and "${" in _PLACEHOLDER.sub("", text):
                raise _rule(f"malformed placeholder in {text!r}; expected ${{NAME}} with NAME a variable name", key)
        return self

    def _check_kind_keys(self) -> None:
        given = self.model_fields_set
        if self.kind == "sql":
            if not self.url:
                raise _rule(f"a sql source needs url; e.g. {_EXAMPLES['url']}", "url")
            if (self.table is None) == (self.query is None):
                raise _rule(
                    "a sql source needs exactly one of table or query; e.g. table: mz_resident",
                    "query" if self.query is not None else "table",
                )
            misplaced = [k for k in ("path", "sheet", "encoding", "delimiter") if k in given]
        else:
            if not self.path:
                raise _rule(f"a {self.kind} source needs path; e.g. path: demo/my_file.{self.kind}", "path")
            allowed = {"csv": ("encoding", "delimiter"), "xlsx": ("sheet",), "parquet": ()}[self.kind]
            optional = ("url", "table", "query", "sheet", "encoding", "delimiter")
            misplaced = [k for k in optional if k in given and k not in allowed]
        if misplaced:
            raise _rule(f"{misplaced[0]} does not apply to a {self.kind} source; remove it", misplaced[0])
        if len(self.delimiter) != 1:
            raise _rule(f"delimiter must be one character, got {self.delimiter!r}; e.g. delimiter: \";\"", "delimiter")

    def _check_fields(self) -> None:
        allowed = _FIELDS_BY_ROLE[self.role]
        for field, column in self.columns.items():
            if field not in allowed:
                other = "consent" if self.role == "person" else "person"
                hint = (
                    f" ({field!r} is a {other} field; set role: {other} if this is a {other} source)"
                    if field in _FIELDS_BY_ROLE[other]
                    else _suggest(field, allowed)
                )
                raise _rule(
                    f"unknown canonical field {field!r} for a {self.role} source{hint}; "
                    f"expected one of: {', '.join(allowed)}",
                    "columns",
                    field,
                )
            if not column.strip():
                raise _rule(f"columns.{field} must name a source column, got an empty string", "columns", field)
        for field in self.values:
            if field not in self.columns:
                raise _rule(
                    f"values.{field} maps values of a field that columns does not map; "
                    f"add columns.{field}: <source column> or remove values.{field}",
                    "values",
                    field,
                )

    def resolved_url(self, home: Path) -> str:
        """The SQLAlchemy URL with ``${...}`` substituted; relative SQLite files are put under ``home``.

        A placeholder standing for one part of the URL (``reader:${PG_PASSWORD}@db``) is
        substituted into that part after parsing, so a password may contain ``@``, ``:`` or ``/``
        as is. A placeholder for the whole URL (``url: ${CIVIL_DB_URL}``) must hold a valid,
        percent-encoded URL.

        Args:
            home: the data home (see :func:`core.paths.data_home`).

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
                url = url.set(database=str(Path(home) / database))
        return url.render_as_string(hide_password=False)

    def _url_by_parts(self, home: Path) -> URL:
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

    def resolved_path(self, home: Path) -> Path:
        """The file path with ``${...}`` substituted and made absolute under ``home`` if relative.

        Raises:
            ConfigError: the source has no path or a variable is unset.
        """
        text = self._resolved("path", home)
        if text is None:
            raise ConfigError(f"{self._where('path')}: a {self.kind} source has no path")
        path = Path(text).expanduser()
        return path if path.is_absolute() else (Path(home) / path).absolute()

    def resolved_table(self, home: Path) -> str | None:
        """The table name with ``${...}`` substituted, or None for a query source."""
        return self._resolved("table", home)

    def resolved_query(self, home: Path) -> str | None:
        """The query with ``${...}`` substituted, or None for a table source."""
        return self._resolved("query", home)

    def _resolved(self, key: str, home: Path) -> str | None:
        text = getattr(self, key)
        return None if text is None else self._substitute(key, text, home)

    def _substitute(self, key: str, text: str, home: Path) -> str:
        def substitute(match: re.Match[str]) -> str:
            variable = match.group(1)
            if variable == HOME_ENV:
                return str(home)
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
                raise _rule(
                    f"duplicate source name {source.name!r} (also sources[{seen[source.name]}]); names must be unique",
                    "sources",
                    index,
                    "name",
                )
            seen[source.name] = index
            if source.role == "consent":
                if consent is not None:
                    raise _rule(
                        f"a second consent source (the first is sources[{consent}]); "
                        "at most one source has role: consent",
                        "sources",
                        index,
                        "role",
                    )
                consent = index
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
        raise ConfigError(f"no source named {name!r}{_suggest(name, names)}; sources declared: {', '.join(names)}")

    @property
    def consent_source(self) -> SourceConfig | None:
        """The consent registry, if one is declared."""
        return next((s for s in self.sources if s.role == "consent"), None)

    @property
    def person_sources(self) -> list[SourceConfig]:
        """Every source with ``role: person``, in file order."""
        return [s for s in self.sources if s.role == "person"]


def load_sources(path: str | os.PathLike[str]) -> SourcesFile:
    """Read and validate a ``sources.yaml``.

    Args:
        path: the YAML file.

    Returns:
        The validated declarations; placeholders are still unsubstituted.

    Raises:
        ConfigError: the file is missing, is not YAML, or breaks a rule; the message names the file,
            each offending key path (e.g. ``sources[2].columns.nmae``) and what was expected.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError as e:
        raise ConfigError(f"{file}: sources file not found; expected a YAML file like demo/sources.yaml") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{file}: cannot read the sources file as UTF-8 text ({e})") from e
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        raise ConfigError(f"{file}: not valid YAML: {_yaml_problem(e)}") from e
    if raw is None:
        raise ConfigError(f"{file}: the file is empty; expected at least:\nversion: 1\nsources:\n  - name: ...")
    try:
        sources = SourcesFile.model_validate(raw)
    except ValidationError as e:
        problems = [_describe(error) for error in e.errors(include_url=False)]
        listing = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"{file}: invalid sources file, {len(problems)} problem(s):\n{listing}") from e
    for index, source in enumerate(sources.sources):
        source._origin = str(file)
        source._index = index
    return sources


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping instead of keeping the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in keys:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, f"found duplicate key {key!r}", key_node.start_mark
                )
            keys.add(key)
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    if mark is None:
        return problem
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"


def _yaml_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _key_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part != "[key]":
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def _describe(error: dict[str, Any]) -> str:
    """One line per pydantic error: key path, what is wrong, what was expected."""
    ctx = error.get("ctx") or {}
    loc = tuple(error["loc"]) + tuple(ctx.get("sub_loc", ()))
    path = _key_path(loc)
    last = next((p for p in reversed(loc) if isinstance(p, str) and p != "[key]"), None)
    # The example is for the key as written in the file (sources[i].<key> or <key>), not for a
    # canonical field inside columns, which may share a name with a source key.
    key = loc[2] if len(loc) >= 3 and loc[0] == "sources" and isinstance(loc[1], int) else (loc[0] if loc else None)
    example = f" Example: {_EXAMPLES[key]}" if key in _EXAMPLES else ""
    kind = error["type"]
    if kind in ("source_rule", "snake_case"):
        return f"{path}: {error['msg']}"
    if kind == "missing":
        return f"{path}: required key is missing.{example}"
    if kind == "extra_forbidden":
        model = SourcesFile if len(loc) == 1 else SourceConfig
        allowed = list(model.model_fields)
        return f"{path}: unknown key{_suggest(str(last), allowed)}; allowed here: {', '.join(allowed)}"
    if kind in ("model_type", "dict_type") and not loc:
        return "(top level): expected a mapping with keys version and sources"
    got = error.get("input")
    shown = f", got {got!r}" if isinstance(got, str | int | float | bool) or got is None else ""
    return f"{path}: {error['msg']}{shown}.{example}"
