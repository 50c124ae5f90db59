"""Loading YAML configuration into pydantic models with errors that name the file and the key."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from core.errors import ConfigError

__all__ = ["format_validation_error", "load_yaml_model"]

M = TypeVar("M", bound=BaseModel)


def _key_path(loc: tuple[object, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<top level>"


def format_validation_error(path: Path, error: ValidationError, what: str) -> str:
    """Render a pydantic error as ``file: invalid <what>: key.path: message; ...``."""
    problems = "; ".join(f"{_key_path(tuple(err['loc']))}: {err['msg']}" for err in error.errors())
    return f"{path}: invalid {what}: {problems}"


def load_yaml_model(path: str | Path, model: type[M], what: str) -> M:
    """Read ``path`` as YAML and validate it as ``model``.

    Raises:
        ConfigError: the file is missing, is not YAML, or does not match the model; the message
            names the file, the key path (e.g. ``recipients[2].columns``) and what was expected.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: {what} file not found") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: {what} is not valid YAML: {e}") from e
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(path, e, what)) from e
