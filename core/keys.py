"""Secret keys: from the environment when the operator provides them, else a key file under the data home.

Every key silobreaker uses (pseudonyms, product encryption, the audit log's membership hashes) is
32 random bytes. An operator may inject it as hex in an environment variable (e.g. from a vault at
launch); otherwise it lives in a key file the data home names (:class:`core.home.DataHome`, under
``<home>/keys/``), created on first use with mode 600 in a mode-700 folder. Keys are read when
needed, never at import.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from core.errors import ConfigError

__all__ = ["KEY_BYTES", "load_or_create_key"]

KEY_BYTES = 32


def load_or_create_key(path: Path, env_name: str) -> bytes:
    """Return the key named by ``$env_name`` (hex) or stored in the key file ``path``.

    A key is refused, with the fix, when it is not 32 bytes, when it is visibly not random (one byte
    repeated, a handful of distinct bytes: ``000…0``), or when its file or folder can be read by anyone
    but its owner (a key another user can read protects nothing).

    Example:
        >>> load_or_create_key(home.audit_key_file, "SILOBREAKER_AUDIT_KEY")   # doctest: +SKIP

    Raises:
        ConfigError: the key is malformed, weak, or its file or folder is readable by others.
    """
    if os.environ.get(env_name):
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
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(KEY_BYTES))
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


#: A random 32-byte key has about 28 distinct byte values; fewer than this is a typed or zeroed key.
_MIN_DISTINCT_BYTES = 12


def _refuse_weak(key: bytes, where: str, fix: str) -> None:
    if len(set(key)) < _MIN_DISTINCT_BYTES:
        raise ConfigError(f"{where} is not a random key ({len(set(key))} distinct byte values in {len(key)}, e.g. "
                          f"all zeros); use 32 random bytes: {fix}")
