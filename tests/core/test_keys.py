"""Key handling shared by pseudonyms, product encryption and the audit log."""

from __future__ import annotations

import stat

import pytest

from core.errors import ConfigError
from core.home import DataHome
from core.keys import load_or_create_key


def test_key_file_is_created_once_private_and_reused(tmp_path, monkeypatch):
    monkeypatch.delenv("SB_TEST_KEY", raising=False)
    first = load_or_create_key(DataHome.at(tmp_path).pseudonym_key_file("r"), "SB_TEST_KEY")
    path = tmp_path / "keys" / "r.key"
    assert len(first) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create_key(DataHome.at(tmp_path).pseudonym_key_file("r"), "SB_TEST_KEY") == first
    assert load_or_create_key(DataHome.at(tmp_path).pseudonym_key_file("other"), "SB_TEST_KEY") != first


def test_environment_key_wins_and_is_validated(tmp_path, monkeypatch):
    monkeypatch.setenv("SB_TEST_KEY", "ab" * 32)
    assert load_or_create_key(DataHome.at(tmp_path).pseudonym_key_file("r"), "SB_TEST_KEY") == bytes.fromhex("ab" * 32)
    assert not (tmp_path / "keys").exists()
    monkeypatch.setenv("SB_TEST_KEY", "abc")
    with pytest.raises(ConfigError, match=r"\$SB_TEST_KEY must be hex"):
        load_or_create_key(DataHome.at(tmp_path).pseudonym_key_file("r"), "SB_TEST_KEY")
    monkeypatch.setenv("SB_TEST_KEY", "ab" * 16)
    with pytest.raises(ConfigError, match="must be 32 bytes"):
        load_or_create_key(DataHome.at(tmp_path).pseudonym_key_file("r"), "SB_TEST_KEY")
