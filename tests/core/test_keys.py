"""Key handling shared by pseudonyms, product encryption and the audit log."""

from __future__ import annotations

import hashlib
import hmac
import stat

import pytest

from core.errors import ConfigError
from core.home import DataHome
from core.keys import key_id, keyed_digests, load_key, load_or_create_key, write_key_file

GOOD = bytes.fromhex("9eb470e717b33b25fb48215d817c4bf0dda1d01e7f077ac3e8c27fc05976ee64")  # drawn once from secrets.token_hex(32)


def key_file(tmp_path, name: str = "r"):
    return DataHome.at(tmp_path).pseudonym_key_file(name)


def test_key_file_is_created_once_private_and_reused(tmp_path, monkeypatch):
    monkeypatch.delenv("SB_TEST_KEY", raising=False)
    first = load_or_create_key(key_file(tmp_path), "SB_TEST_KEY")
    path = tmp_path / "keys" / "r.key"
    assert len(first) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create_key(key_file(tmp_path), "SB_TEST_KEY") == first
    assert load_or_create_key(key_file(tmp_path, "other"), "SB_TEST_KEY") != first


def test_environment_key_wins_and_is_validated(tmp_path, monkeypatch):
    monkeypatch.setenv("SB_TEST_KEY", GOOD.hex())
    assert load_or_create_key(key_file(tmp_path), "SB_TEST_KEY") == GOOD
    assert not (tmp_path / "keys").exists()
    monkeypatch.setenv("SB_TEST_KEY", "abc")
    with pytest.raises(ConfigError, match=r"\$SB_TEST_KEY must be hex"):
        load_or_create_key(key_file(tmp_path), "SB_TEST_KEY")
    monkeypatch.setenv("SB_TEST_KEY", GOOD[:16].hex())
    with pytest.raises(ConfigError, match="must be 32 bytes"):
        load_or_create_key(key_file(tmp_path), "SB_TEST_KEY")


@pytest.mark.parametrize("weak", [
    "00" * 32, "ab" * 32, "0123" * 16,
    bytes(range(32)).hex(),  # seen accepted: 00 01 02 … 1f
    b"0123456789abcdef0123456789abcdef".hex(),  # seen accepted: typed characters
    b"silobreaker-district-key-2026!!!".hex(),  # seen accepted: a passphrase
])
def test_a_key_that_is_not_random_is_refused(tmp_path, monkeypatch, weak):
    monkeypatch.setenv("SB_TEST_KEY", weak)
    with pytest.raises(ConfigError, match=r"is not a random key .*openssl rand -hex 32"):
        load_or_create_key(key_file(tmp_path), "SB_TEST_KEY")
    monkeypatch.delenv("SB_TEST_KEY")
    path = key_file(tmp_path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_bytes(bytes.fromhex(weak))
    path.chmod(0o600)
    with pytest.raises(ConfigError, match=r"is not a random key"):
        load_or_create_key(path, "SB_TEST_KEY")


def test_a_key_file_others_can_read_or_of_the_wrong_length_is_refused_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("SB_TEST_KEY", raising=False)
    path = key_file(tmp_path)
    load_or_create_key(path, "SB_TEST_KEY")
    path.chmod(0o644)
    with pytest.raises(ConfigError, match=rf"mode 644\); a key must be its owner's alone: chmod 600 {path}"):
        load_or_create_key(path, "SB_TEST_KEY")
    path.chmod(0o600)
    path.parent.chmod(0o755)
    with pytest.raises(ConfigError, match="chmod 700"):
        load_or_create_key(path, "SB_TEST_KEY")
    path.parent.chmod(0o700)
    path.write_bytes(GOOD[:3])
    with pytest.raises(ConfigError, match="holds 3 bytes, not 32"):
        load_or_create_key(path, "SB_TEST_KEY")


def test_loading_a_key_that_does_not_exist_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("SB_TEST_KEY", raising=False)
    assert load_key(key_file(tmp_path), "SB_TEST_KEY") is None and not (tmp_path / "keys").exists()
    monkeypatch.setenv("SB_TEST_KEY", GOOD.hex())
    assert load_key(key_file(tmp_path), "SB_TEST_KEY") == GOOD


def test_a_written_key_replaces_the_old_one_whole_and_privately(tmp_path, monkeypatch):
    monkeypatch.delenv("SB_TEST_KEY", raising=False)
    path = key_file(tmp_path)
    old = load_or_create_key(path, "SB_TEST_KEY")
    write_key_file(path, GOOD)
    assert load_key(path) == GOOD != old and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no staging file left


def test_a_key_id_names_a_key_without_revealing_it():
    assert key_id(GOOD) == key_id(bytes(GOOD)) != key_id(GOOD[::-1])
    assert len(key_id(GOOD)) == 8 and key_id(GOOD) not in GOOD.hex()


def test_random_keys_pass_the_weakness_checks():
    import secrets

    from core.keys import _refuse_weak

    for _ in range(2000):  # a false alarm would stop a district's publication
        _refuse_weak(secrets.token_bytes(32), "k", "fix")


def test_keyed_digests_are_hmac_sha256_of_each_message():
    # Pseudonyms and audit membership hashes are compared across nights: the definition must not drift.
    # RFC 4231 test case 2, then a key longer than a block (hashed first, as HMAC prescribes).
    assert keyed_digests(b"Jefe", [b"what do ya want for nothing?"]) == [
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"]
    long_key = bytes(range(131))
    messages = [b"", b"P0000000001", "张三".encode()]
    assert keyed_digests(long_key, messages) == [hmac.new(long_key, m, hashlib.sha256).hexdigest() for m in messages]
    assert keyed_digests(b"k", []) == []


@pytest.mark.parametrize("key", [bytes(range(32)), bytes(range(131))], ids=["key of 32 bytes", "key longer than a block"])
def test_keyed_digests_of_many_messages_computed_in_sql_are_the_same_hmac(key):
    # From 10,000 messages the HMAC is computed by DuckDB; it must be the same digests, in the same order.
    messages = [b"", "张三".encode(), b"\x00\xff", *(f"P{i:012x}".encode() for i in range(12_000))]
    assert keyed_digests(key, messages) == [hmac.new(key, m, hashlib.sha256).hexdigest() for m in messages]

