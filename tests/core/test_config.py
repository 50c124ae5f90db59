"""The one configuration loader: strict YAML, every problem with its key path, line and fix."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from core.config import load_yaml_model
from core.errors import ConfigError


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    size: int = Field(ge=1)


class File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Literal[1]
    items: list[Item]


def load(tmp_path, text: str, **options) -> File:
    path = tmp_path / "f.yaml"
    path.write_text(text, encoding="utf-8")
    return load_yaml_model(path, File, "test file", **options)


def error(tmp_path, text: str, **options) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, **options)
    return str(caught.value)


def test_a_valid_file_with_a_bom_loads(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_bytes("\ufeffversion: 1\nitems: [{name: 张伟, size: 2}]\n".encode())
    assert load_yaml_model(path, File, "test file").items[0].name == "张伟"


def test_a_key_given_twice_is_refused_with_its_line(tmp_path):
    message = error(tmp_path, "version: 1\nitems:\n  - name: a\n    name: b\n    size: 1\n")
    assert "duplicate key 'name'" in message and "line 4" in message


def test_every_problem_is_listed_with_key_path_line_and_example(tmp_path):
    message = error(tmp_path, "version: 1\nitems:\n  - name: a\n    size: 0\n  - nmae: b\n    size: 1\n",
                    examples={"name": "name: civil_affairs"})
    assert message.startswith(f"{tmp_path / 'f.yaml'}: invalid test file, 3 problem(s):")
    assert "line 4, items[0].size: Input should be greater than or equal to 1, got 0" in message
    assert "line 5, items[1].nmae: unknown key (did you mean 'name'?); allowed here: name, size" in message
    assert "items[1].name: required key is missing. Example: name: civil_affairs" in message


def test_empty_missing_and_malformed_files_say_what_to_do(tmp_path):
    assert "is empty; expected a mapping with keys version, items (first line: version: 1)" in error(tmp_path, "")
    assert "not valid YAML" in error(tmp_path, "version: [1\n") and "line 2" in error(tmp_path, "version: [1\n")
    with pytest.raises(ConfigError, match=r"nowhere\.yaml: test file not found; expected a YAML file like demo/x\.yaml"):
        load_yaml_model(tmp_path / "nowhere.yaml", File, "test file", like="demo/x.yaml")
