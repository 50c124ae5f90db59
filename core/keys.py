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
from pathlib import Path

from core.errors import ConfigError

__all__ = ["KEY_BYTES", "load_or_create_key"]

KEY_BYTES = 32


def load_or_create_key(path: Path, env_name: str) -> bytes:
    """Return the key named by ``$env_name`` (hex) or stored in the key file ``path``.

    Example:
        >>> load_or_create_key(home.audit_key_file, "SILOBREAKER_AUDIT_KEY")   # doctest: +SKIP

    Raises:
        ConfigError: the environment variable is not 64 hex characters.
    """
    if os.environ.get(env_name):
        try:
            key = bytes.fromhex(os.environ[env_name])
        except ValueError as e:
            raise ConfigError(f"${env_name} must be hex (64 characters, e.g. from `openssl rand -hex 32`)") from e
        if len(key) != KEY_BYTES:
            raise ConfigError(f"${env_name} must be {KEY_BYTES} bytes ({2 * KEY_BYTES} hex characters), got {len(key)}")
        return key
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(KEY_BYTES))
    return path.read_bytes()
