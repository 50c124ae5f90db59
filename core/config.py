"""The one loader of configuration files: strict YAML into pydantic models, errors that name the fix.

sources.yaml, policy.yaml, rules.yaml and linking.yaml are all read by :func:`load_yaml_model`, so
each is held to the same rules: UTF-8 (a BOM is allowed, Windows editors write one), no key given
twice in one mapping (YAML would silently keep the last), not empty, and valid against its model.
A file that breaks any of them raises one :class:`~core.errors.ConfigError` listing every problem
with the key path (``sources[2].columns.nmae``), the line it is on, what was expected and, where
the model offers one, a correct line to copy.

Model validators that check a whole object can still point at one key inside it: raise
:func:`key_error` with the key path below the object (see ``connectors.config``).
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from core.errors import ConfigError

__all__ = ["format_validation_error", "key_error", "load_yaml_model", "suggest"]

M = TypeVar("M", bound=BaseModel)

_KEY_RULE = "key_rule"


def key_error(problem: str, *sub_loc: str | int) -> PydanticCustomError:
    """A validation error reported at ``sub_loc`` below the object whose validator raises it.

    Model validators can only fail for the whole model; ``sub_loc`` lets the report still point at
    ``sources[2].columns.nmae`` rather than at ``sources[2]``. Braces in ``problem`` are kept as they are.

    Example:
        >>> raise key_error("a sql source needs url; e.g. url: sqlite:///x.sqlite", "url")  # doctest: +SKIP
    """
    return PydanticCustomError(_KEY_RULE, "{problem}", {"problem": problem, "sub_loc": sub_loc})


def suggest(word: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices`` to a misspelt ``word``, else ``""``."""
    close = difflib.get_close_matches(str(word), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def load_yaml_model(
    path: str | Path,
    model: type[M],
    what: str,
    *,
    examples: Mapping[str, str] | None = None,
    like: str | None = None,
    context: Mapping[str, Any] | None = None,
) -> M:
    """Read ``path`` as YAML and validate it as ``model``.

    Args:
        path: the file.
        model: the pydantic model of the whole file.
        what: what the file is, for messages (``sources file``, ``sharing policy``).
        examples: a correct line per key name (``{"path": "path: demo/x.csv"}``), shown next to an
            error about that key so the fix can be copied.
        like: a file to point to when this one is missing (``demo/sources.yaml``).
        context: passed to the model's validators (pydantic's validation context), e.g. the key
            populations a sharing policy may name.

    Raises:
        ConfigError: the file is missing, unreadable, not YAML, empty, repeats a key, or does not
            match the model; the message names the file, each offending key path with its line,
            and what was expected.

    Example:
        >>> policy = load_yaml_model("demo/policy.yaml", SharingPolicy, "sharing policy")  # doctest: +SKIP
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as e:
        hint = f"; expected a YAML file like {like}" if like else ""
        raise ConfigError(f"{path}: {what} not found{hint}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the {what} as UTF-8 text ({e}); save it as UTF-8") from e
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
        lines = _key_lines(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: {what} is not valid YAML: {_yaml_problem(e)}") from e
    if data is None:
        keys = ", ".join(model.model_fields)
        first = " (first line: version: 1)" if "version" in model.model_fields else ""
        start = f"; start from {like}" if like else ""
        raise ConfigError(f"{path}: the {what} is empty; expected a mapping with keys {keys}{first}{start}")
    try:
        return model.model_validate(data, context=dict(context) if context else None)
    except ValidationError as e:
        raise ConfigError(format_validation_error(path, e, what, model, examples or {}, lines)) from e


def format_validation_error(
    path: Path,
    error: ValidationError,
    what: str,
    model: type[BaseModel] | None = None,
    examples: Mapping[str, str] | None = None,
    lines: Mapping[tuple[Any, ...], int] | None = None,
) -> str:
    """Render a pydantic error as ``file: invalid <what>, N problem(s):`` and one line per problem."""
    problems = [_describe(err, model, examples or {}, lines or {}) for err in error.errors(include_url=False)]
    listing = "\n".join(f"  - {p}" for p in problems)
    return f"{path}: invalid {what}, {len(problems)} problem(s):\n{listing}"


class _StrictLoader(yaml.SafeLoader):
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


def _key_lines(text: str) -> dict[tuple[Any, ...], int]:
    """Line (1-based) of every key path in the document: ``("sources", 2, "path") -> 31``."""
    lines: dict[tuple[Any, ...], int] = {}

    def walk(node: yaml.Node, at: tuple[Any, ...]) -> None:
        lines.setdefault(at, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                walk(value_node, at + (key_node.value,))
                lines[at + (key_node.value,)] = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, at + (index,))

    root = yaml.compose(text, Loader=_StrictLoader)
    if root is not None:
        walk(root, ())
    return lines


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    if mark is None:
        return problem
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"


def _key_path(loc: Sequence[Any]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part != "[key]":
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _line(loc: tuple[Any, ...], lines: Mapping[tuple[Any, ...], int]) -> str:
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return f"line {lines[loc[:end]]}, "
    return ""


def _describe(
    error: Mapping[str, Any], model: type[BaseModel] | None, examples: Mapping[str, str], lines: Mapping[tuple[Any, ...], int]
) -> str:
    """One line per problem: where (line and key path), what is wrong, what was expected."""
    ctx = error.get("ctx") or {}
    loc = tuple(p for p in (*error["loc"], *ctx.get("sub_loc", ())) if p != "[key]")
    where = f"{_line(loc, lines)}{_key_path(loc)}"
    steps = _walk(model, loc) if model is not None else []
    # The example is for the deepest key that is a model field, not for a key inside a free mapping
    # (a canonical field under columns may share its name with a source key).
    fields = [name for name, is_field, _ in steps if is_field]
    example = f" Example: {examples[fields[-1]]}" if fields and fields[-1] in examples else ""
    kind = error["type"]
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind in (_KEY_RULE, "snake_case"):
        return f"{where}: {message}"
    if kind == "missing":
        return f"{where}: required key is missing.{example}"
    if kind == "extra_forbidden":
        parent = steps[-1][2] if steps else None
        if parent is not None:
            allowed = list(parent.model_fields)
            return f"{where}: unknown key{suggest(str(loc[-1]), allowed)}; allowed here: {', '.join(allowed)}"
        return f"{where}: unknown key"
    if kind in ("model_type", "dict_type") and not loc and model is not None:
        return f"(top level): expected a mapping with keys {', '.join(model.model_fields)}"
    if kind == "value_error":
        return f"{where}: {message}"
    got = error.get("input")
    shown = f", got {got!r}" if isinstance(got, str | int | float | bool) or got is None else ""
    return f"{where}: {message}{shown}.{example}"


def _walk(model: type[BaseModel], loc: tuple[Any, ...]) -> list[tuple[Any, bool, type[BaseModel] | None]]:
    """Follow ``loc`` through the model's annotations: per part, whether it is a model field, and
    the model the part is a key of (``None`` inside a free mapping or list)."""
    steps: list[tuple[Any, bool, type[BaseModel] | None]] = []
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        origin = typing.get_origin(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part) if isinstance(part, str) else None
            steps.append((part, field is not None, current))
            current = field.annotation if field is not None else None
        elif origin in (list, tuple, Sequence, set, frozenset) and isinstance(part, int):
            steps.append((part, False, None))
            args = typing.get_args(current)
            current = args[0] if args else None
        elif origin in (dict, Mapping):
            steps.append((part, False, None))
            args = typing.get_args(current)
            current = args[1] if len(args) == 2 else None
        else:
            steps.append((part, False, None))
            current = None
    return steps


def _unwrap(annotation: Any) -> Any:
    """``X`` from ``X | None``, ``Optional[X]`` or ``Annotated[X, ...]``; the first model of a union."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            annotation = models[0] if models else (args[0] if args else None)
        else:
            return annotation
