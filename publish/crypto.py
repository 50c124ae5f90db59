"""Products encrypted at rest: Parquet Modular Encryption (AES-GCM) with a local key-wrapping KMS.

Every product file is written by pyarrow with Parquet Modular Encryption: each column and the
footer are encrypted with AES-GCM under random data keys, and those data keys are wrapped (AES-GCM,
``cryptography``'s :class:`~cryptography.hazmat.primitives.ciphers.aead.AESGCM`) with the
recipient's 256-bit *master key*. Nothing is fetched over the network: the KMS is a local class,
so this works on an air-gapped intranet.

The master key of recipient ``r`` comes from ``$SILOBREAKER_PRODUCT_KEY_<R>`` (64 hex characters)
when set, else from its key file under the data home (``<home>/keys/<r>.product.key``, 32 random
bytes, mode 600, created on first use). The platform keeps the key; the recipient receives it once, out of band.

Each file names the key it was encrypted under by its *key id* (:func:`core.keys.key_id`): in the
master key identifier ``<recipient>:<key id>``, which the file keeps readable so that a reader holding
the wrong key is told which one it needs (:class:`KeyIdMismatchError`), and in the encrypted
key-value metadata (``silobreaker.key_id``). :func:`rotate_product_key` replaces a recipient's key
and keeps the old one under its key id, so products already published stay readable.

Example (the recipient's side)::

    from publish.crypto import read_product
    table = read_product("health_family_doctors.parquet", key=bytes.fromhex(open("k.hex").read()))
    import duckdb; duckdb.sql("SELECT count(*) FROM table")     # DuckDB queries the Arrow table
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pyarrow.parquet.encryption as pe
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.errors import ConfigError
from core.home import DataHome, HomeLike
from core.keys import KEY_BYTES, key_id, load_key, load_or_create_key, write_key_file

__all__ = [
    "DISCLOSURE_METADATA",
    "KEY_ENV_PREFIX",
    "KEY_ID_METADATA",
    "KeyIdMismatchError",
    "KeyRotation",
    "LocalKmsClient",
    "product_key",
    "product_key_id",
    "product_keys",
    "product_metadata",
    "read_product",
    "rotate_product_key",
    "write_encrypted",
]

KEY_ENV_PREFIX = "SILOBREAKER_PRODUCT_KEY_"
KEY_ID_METADATA = "silobreaker.key_id"
"""The key-value metadata entry of a product holding the id of the key it is encrypted under."""
DISCLOSURE_METADATA = "silobreaker.disclosure"
"""The entry holding what de-identification did to the product (its disclosure, JSON), where it did any."""
_NONCE_BYTES = 12


class KeyIdMismatchError(ValueError):
    """The product was encrypted under another key than the one offered: the message names both key ids."""

    def __init__(self, recipient: str, file_key_id: str, offered_key_id: str) -> None:
        self.recipient = recipient
        self.file_key_id = file_key_id
        self.offered_key_id = offered_key_id
        super().__init__(f"wrong product key for {recipient!r}: this product was encrypted under key id "
                         f"{file_key_id}; your key is {offered_key_id}")


@dataclass(frozen=True)
class KeyRotation:
    """What :func:`rotate_product_key` did: the old and new key ids and where the old key is kept."""

    recipient: str
    old_key_id: str
    new_key_id: str
    retired_file: Path
    key_file: Path


class LocalKmsClient(pe.KmsClient):
    """Wraps and unwraps Parquet data keys with master keys held in memory (AES-256-GCM).

    The wrapped form is ``base64(nonce ‖ ciphertext‖tag)``; the master key identifier is bound as
    associated data, so a data key wrapped for one recipient does not unwrap under another's id.

    Args:
        master_keys: master key identifier -> 32-byte key.
    """

    def __init__(self, master_keys: dict[str, bytes]) -> None:
        super().__init__()
        for identifier, key in master_keys.items():
            if len(key) != KEY_BYTES:
                raise ConfigError(f"master key {identifier!r} must be {KEY_BYTES} bytes (64 hex characters), got {len(key)}")
        self._keys = dict(master_keys)

    def _aead(self, identifier: str) -> AESGCM:
        try:
            return AESGCM(self._keys[identifier])
        except KeyError as e:
            raise ConfigError(f"no master key for {identifier!r}; pass the recipient's product key") from e

    def wrap_key(self, key_bytes: bytes, master_key_identifier: str) -> str:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._aead(master_key_identifier).encrypt(nonce, key_bytes, master_key_identifier.encode())
        return base64.b64encode(nonce + sealed).decode("ascii")

    def unwrap_key(self, wrapped_key: str, master_key_identifier: str) -> bytes:
        raw = base64.b64decode(wrapped_key)
        try:
            return self._aead(master_key_identifier).decrypt(
                raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], master_key_identifier.encode()
            )
        except InvalidTag as e:
            raise ValueError(
                f"wrong product key for {master_key_identifier!r}: the file's data key does not unwrap with it"
            ) from e


class _RecipientKmsClient(LocalKmsClient):
    """Unwraps with one recipient's key under whatever key id the file names, refusing with both ids when
    the file names another key than this one (files written before key ids name the recipient alone)."""

    def __init__(self, recipient: str, key: bytes) -> None:
        super().__init__({recipient: key})
        self._recipient = recipient
        self._key = key

    def unwrap_key(self, wrapped_key: str, master_key_identifier: str) -> bytes:
        recipient, _, file_key_id = master_key_identifier.partition(":")
        if recipient == self._recipient and file_key_id:
            if file_key_id != key_id(self._key):
                raise KeyIdMismatchError(recipient, file_key_id, key_id(self._key))
            self._keys[master_key_identifier] = self._key
        return super().unwrap_key(wrapped_key, master_key_identifier)


class _NamedKey(Exception):
    """Not an error: stops reading a file, carrying the master key identifier it names."""

    def __init__(self, identifier: str) -> None:
        super().__init__(identifier)
        self.identifier = identifier


class _IdentifierSpy(pe.KmsClient):
    """Unwraps nothing: stops at the first key the file asks for, reporting the identifier it names."""

    def wrap_key(self, key_bytes: bytes, master_key_identifier: str) -> str:
        raise NotImplementedError("reads only")

    def unwrap_key(self, wrapped_key: str, master_key_identifier: str) -> bytes:
        raise _NamedKey(master_key_identifier)


def _decryption(client: pe.KmsClient) -> pe.FileDecryptionProperties:
    factory = pe.CryptoFactory(lambda _config: client)
    return factory.file_decryption_properties(pe.KmsConnectionConfig(),
                                              pe.DecryptionConfiguration(cache_lifetime=timedelta(minutes=1)))


def write_encrypted(table: pa.Table, path: Path, recipient: str, key: bytes,
                    metadata: Mapping[str, str] | None = None) -> None:
    """Write ``table`` to ``path`` with every column and the footer encrypted under ``key``.

    Args:
        table: the product.
        path: the parquet file to write.
        recipient: the recipient; with the key id it makes the master key identifier kept in the file.
        key: the recipient's 32-byte master key.
        metadata: key-value metadata to store (encrypted, in the footer) beside the key id.
    """
    identifier = f"{recipient}:{key_id(key)}"
    client = LocalKmsClient({identifier: key})
    factory, kms = pe.CryptoFactory(lambda _config: client), pe.KmsConnectionConfig()
    existing = {k.decode("utf-8"): v.decode("utf-8") for k, v in (table.schema.metadata or {}).items()}
    table = table.replace_schema_metadata({**existing, **(metadata or {}), KEY_ID_METADATA: key_id(key)})
    config = pe.EncryptionConfiguration(
        footer_key=identifier,
        uniform_encryption=True,  # footer and every column, so not even the schema leaks
        encryption_algorithm="AES_GCM_V1",
        double_wrapping=True,
        cache_lifetime=timedelta(minutes=1),
        data_key_length_bits=256,
    )
    properties = factory.file_encryption_properties(kms, config)
    pq.write_table(table, path, encryption_properties=properties)


def read_product(path: str | Path, key: bytes, identifier: str | None = None) -> pa.Table:
    """Decrypt and read a product file.

    Args:
        path: the product's parquet file.
        key: the recipient's 32-byte master key (``bytes.fromhex`` of the hex key).
        identifier: the recipient; defaults to the file name without ``.parquet``.

    Raises:
        KeyIdMismatchError: the file names another key id than ``key``'s (a ``ValueError``).
        ValueError: the key is not this file's recipient key (raised through pyarrow, which may
            wrap it in an ``OSError``); a file that is not encrypted fails likewise.
    """
    path = Path(path)
    return pq.read_table(path, decryption_properties=_decryption(_RecipientKmsClient(identifier or path.stem, key)))


def product_metadata(path: str | Path, key: bytes, identifier: str | None = None) -> dict[str, str]:
    """The key-value metadata of a product (key id, audit anchor), decrypting its footer only.

    Raises:
        KeyIdMismatchError, ValueError: as :func:`read_product`.
    """
    path = Path(path)
    client = _RecipientKmsClient(identifier or path.stem, key)
    metadata = pq.ParquetFile(path, decryption_properties=_decryption(client)).metadata.metadata or {}
    return {k.decode("utf-8"): v.decode("utf-8") for k, v in metadata.items() if not k.startswith(b"ARROW:")}


def product_key_id(path: str | Path) -> str | None:
    """The key id a product file names, read without any key; ``None`` for a file written before key ids
    (or one that is not encrypted).

    Raises:
        OSError: the file is not a parquet file.
    """
    try:
        pq.ParquetFile(path, decryption_properties=_decryption(_IdentifierSpy()))
    except _NamedKey as named:
        return named.identifier.partition(":")[2] or None
    return None


def product_key(home: HomeLike, recipient: str) -> bytes:
    """The recipient's product master key: ``$SILOBREAKER_PRODUCT_KEY_<RECIPIENT>`` or its key file
    under the data home (created on first use, see :mod:`core.keys`)."""
    return load_or_create_key(DataHome.at(home).product_key_file(recipient), _env(recipient))


def product_keys(home: HomeLike, recipient: str) -> dict[str, bytes]:
    """Every product key the platform holds for ``recipient``, by key id: the current one first, then those
    :func:`rotate_product_key` retired. Nothing is created."""
    home = DataHome.at(home)
    keys = {}
    current = load_key(home.product_key_file(recipient), _env(recipient))
    if current is not None:
        keys[key_id(current)] = current
    for path in home.retired_product_key_files(recipient).values():
        retired = load_key(path)
        if retired is not None:
            keys.setdefault(key_id(retired), retired)
    return keys


def rotate_product_key(home: HomeLike, recipient: str) -> KeyRotation:
    """Give ``recipient`` a new product key; keep the old one as ``<recipient>.product.key.<key id>``.

    Products published before stay encrypted under the old key (and readable with it); the next
    publication encrypts under the new one. The recipient's pseudonym key is not touched: stable pseudonyms
    (``pseudonyms: stable``) stay the same across the rotation. Hold the data home's lock around it (``core.lock``) so no run
    builds a product meanwhile.

    Raises:
        ConfigError: the key comes from the environment (rotate it where it is kept), or there is no
            key yet (it is created by the recipient's first publication).
    """
    home = DataHome.at(home)
    current = home.product_key_file(recipient)
    if os.environ.get(_env(recipient)):
        raise ConfigError(f"the product key of {recipient!r} comes from ${_env(recipient)}: rotate it where it is "
                          "kept (the secret store that sets it), and keep the old value to read older products")
    old = load_key(current)
    if old is None:
        raise ConfigError(f"no product key for {recipient!r} at {current}: a recipient's key is created by its first "
                          "publication; check the recipient's name in policy.yaml")
    retired = home.retired_product_key_file(recipient, key_id(old))
    if load_key(retired) != old:
        write_key_file(retired, old)
    new = secrets.token_bytes(KEY_BYTES)
    write_key_file(current, new)
    return KeyRotation(recipient, key_id(old), key_id(new), retired, current)


def _env(recipient: str) -> str:
    return f"{KEY_ENV_PREFIX}{recipient.upper()}"
