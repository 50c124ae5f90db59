"""Secret keys: from the environment when the operator provides them, else a key file under the data home.

Every key silobreaker uses (pseudonyms, product encryption, the audit log's membership hashes and
its signatures) is 32 random bytes. An operator may inject it as hex in an environment variable
(e.g. from a vault at launch); otherwise it lives in a key file the data home names
(:class:`core.home.DataHome`, under ``<home>/keys/``), created on first use with mode 600 in a
mode-700 folder. Keys are read when needed, never at import.

A key has a public name, its *key id* (:func:`key_id`): the first 8 hex characters of its SHA-256.
It names which key protects a file without revealing anything of the key.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path

import duckdb
import pyarrow as pa

from core.errors import ConfigError

__all__ = ["KEY_BYTES", "key_id", "keyed_digests", "load_key", "load_or_create_key", "write_key_file"]

KEY_BYTES = 32


def key_id(key: bytes) -> str:
    """The key's public name: the first 8 hex characters of its SHA-256.

    Example:
        >>> key_id(bytes(range(32)))
        '630dcd29'
    """
    return hashlib.sha256(key).hexdigest()[:8]


#: From this many messages :func:`keyed_digests` computes in DuckDB (every core, no Python per message):
#: 2M member ids in 4.1 s against 9.8 s in Python, on 2 cores (``benchmarks/results/sync.md``).
_IN_SQL_FROM = 10_000
_BLOCK = 64  # SHA-256's block size: HMAC pads the key to it


def keyed_digests(key: bytes, messages: Iterable[bytes]) -> list[str]:
    """HMAC-SHA256 of each message under ``key``, as hex.

    A publication hashes millions of members and pseudonyms: from :data:`_IN_SQL_FROM` messages on the
    HMAC is written out in SQL (RFC 2104: ``H((K ^ opad) || H((K ^ ipad) || m))``) and DuckDB computes it
    on every core; fewer are hashed here, the key absorbed once and that state copied for each message.

    Example:
        >>> keyed_digests(b"k", [b"a"]) == [hmac.new(b"k", b"a", hashlib.sha256).hexdigest()]
        True
    """
    messages = list(messages)
    if len(messages) >= _IN_SQL_FROM:
        return _keyed_digests_in_sql(key, messages)
    keyed = hmac.new(key, digestmod=hashlib.sha256)
    digests = []
    for message in messages:
        one = keyed.copy()
        one.update(message)
        digests.append(one.hexdigest())
    return digests


def _keyed_digests_in_sql(key: bytes, messages: list[bytes]) -> list[str]:
    block = (hashlib.sha256(key).digest() if len(key) > _BLOCK else key).ljust(_BLOCK, b"\0")
    pads = {"inner": bytes(b ^ 0x36 for b in block), "outer": bytes(b ^ 0x5C for b in block)}
    with duckdb.connect() as con:
        con.register("keyed_messages", pa.table({"m": pa.array(messages, type=pa.binary())}))
        # A plain projection keeps the messages' order (DuckDB preserves insertion order).
        digests = con.sql("SELECT sha256($outer || unhex(sha256($inner || m))) AS d FROM keyed_messages", params=pads)
        return digests.to_arrow_table().column("d").to_pylist()


def load_or_create_key(path: Path, env_name: str) -> bytes:
    """Return the key named by ``$env_name`` (hex) or stored in the key file ``path``, creating the file
    with a new random key if neither exists.

    A key is refused, with the fix, when it is not 32 bytes, when it is visibly not random (one byte
    repeated, a handful of distinct bytes: ``000…0``), or when its file or folder can be read by anyone
    but its owner (a key another user can read protects nothing).

    Example:
        >>> load_or_create_key(home.audit_key_file, "SILOBREAKER_AUDIT_KEY")   # doctest: +SKIP

    Raises:
        ConfigError: the key is malformed, weak, or its file or folder is readable by others.
    """
    key = load_key(path, env_name)
    if key is None:
        path = Path(path)
        _private_folder(path.parent)
        with contextlib.suppress(FileExistsError):  # created by another process meanwhile: theirs is used
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(KEY_BYTES))
        key = load_key(path, env_name)
    return key


def load_key(path: Path, env_name: str | None = None) -> bytes | None:
    """The key named by ``$env_name`` (hex) or stored in ``path``; ``None`` if neither exists. Nothing is
    created. Checked as :func:`load_or_create_key` checks it.

    Raises:
        ConfigError: the key is malformed, weak, or its file or folder is readable by others.
    """
    if env_name and os.environ.get(env_name):
        try:
            key = bytes.fromhex(os.environ[env_name])
        except ValueError as e:
            raise ConfigError(f"${env_name} must be hex (64 characters, e.g. from `openssl rand -hex 32`)") from e
        if len(key) != KEY_BYTES:
            raise ConfigError(f"${env_name} must be {KEY_BYTES} bytes ({2 * KEY_BYTES} hex characters), got {len(key)}")
        _refuse_weak(key, f"${env_name}", f"export {env_name}=$(openssl rand -hex 32)")
        return key
    path = Path(path)
    if not path.exists():
        return None
    for place, expected in ((path.parent, 0o700), (path, 0o600)):
        mode = stat.S_IMODE(place.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(f"{place} is readable or writable by others (mode {mode:o}); a key must be its owner's "
                              f"alone: chmod {expected:o} {place}")
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise ConfigError(f"key file {path} holds {len(key)} bytes, not {KEY_BYTES}; restore it from the backup of the "
                          "platform's keys (a new key cannot read what the old one protected)")
    _refuse_weak(key, f"key file {path}", "restore it from the backup of the platform's keys")
    return key


def write_key_file(path: Path, key: bytes) -> None:
    """Store ``key`` in ``path`` (mode 600, folder mode 700), replacing what is there in one atomic rename:
    after a crash the file holds the old key or the new one, whole."""
    path = Path(path)
    _private_folder(path.parent)
    staging = path.with_name(f".{path.name}.new")
    staging.unlink(missing_ok=True)
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
        f.flush()
        os.fsync(f.fileno())
    os.replace(staging, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _private_folder(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)


#: A random 32-byte key has about 28 distinct byte values; fewer than this is a typed or zeroed key.
_MIN_DISTINCT_BYTES = 12


def _refuse_weak(key: bytes, where: str, fix: str) -> None:
    if len(set(key)) < _MIN_DISTINCT_BYTES:
        why = f"{len(set(key))} distinct byte values in {len(key)}, e.g. all zeros"
    elif all(0x20 <= b < 0x7F for b in key):
        # 32 random bytes are all printable with probability (95/256)^32, about 1e-14: this is typed text.
        why = "every byte is a printable character: a passphrase, not random bytes"
    elif len({(b - a) % 256 for a, b in zip(key, key[1:])}) <= 2:
        why = "its bytes step by a constant, e.g. 00 01 02 03 …"
    else:
        return
    raise ConfigError(f"{where} is not a random key ({why}); use 32 random bytes: {fix}")
