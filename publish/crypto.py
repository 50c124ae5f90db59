"""Products encrypted at rest: Parquet Modular Encryption (AES-GCM) with a local key-wrapping KMS.

Every product file is written by pyarrow with Parquet Modular Encryption: each column and the
footer are encrypted with AES-GCM under random data keys, and those data keys are wrapped (AES-GCM,
``cryptography``'s :class:`~cryptography.hazmat.primitives.ciphers.aead.AESGCM`) with the
recipient's 256-bit *master key*. Nothing is fetched over the network: the KMS is a local class,
so this works on an air-gapped intranet.

The master key of recipient ``r`` comes from ``$SILOBREAKER_PRODUCT_KEY_<R>`` (64 hex characters)
when set, else from its key file under the data home (``<home>/keys/<r>.product.key``, 32 random
bytes, mode 600, created on first use). The platform keeps the key; the recipient receives it once, out of band.

Example (the recipient's side)::

    from publish.crypto import read_product
    table = read_product("health_family_doctors.parquet", key=bytes.fromhex(open("k.hex").read()))
    import duckdb; duckdb.sql("SELECT count(*) FROM table")     # DuckDB queries the Arrow table
"""

from __future__ import annotations

import base64
import secrets
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pyarrow.parquet.encryption as pe
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.errors import ConfigError
from core.home import DataHome, HomeLike
from core.keys import KEY_BYTES, load_or_create_key

__all__ = ["KEY_ENV_PREFIX", "LocalKmsClient", "product_key", "read_product", "write_encrypted"]

KEY_ENV_PREFIX = "SILOBREAKER_PRODUCT_KEY_"
_NONCE_BYTES = 12


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


def _factory_and_kms(identifier: str, key: bytes) -> tuple[pe.CryptoFactory, pe.KmsConnectionConfig]:
    client = LocalKmsClient({identifier: key})
    return pe.CryptoFactory(lambda _config: client), pe.KmsConnectionConfig()


def write_encrypted(table: pa.Table, path: Path, identifier: str, key: bytes) -> None:
    """Write ``table`` to ``path`` with every column and the footer encrypted under ``key``.

    Args:
        table: the product.
        path: the parquet file to write.
        identifier: the master key identifier stored in the file's key metadata (the recipient name).
        key: the recipient's 32-byte master key.
    """
    factory, kms = _factory_and_kms(identifier, key)
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
        identifier: the master key identifier; defaults to the file name without ``.parquet``.

    Raises:
        ValueError: the key is not this file's recipient key (raised through pyarrow, which may
            wrap it in an ``OSError``); a file that is not encrypted fails likewise.
    """
    path = Path(path)
    identifier = identifier or path.stem
    factory, kms = _factory_and_kms(identifier, key)
    properties = factory.file_decryption_properties(kms, pe.DecryptionConfiguration(cache_lifetime=timedelta(minutes=1)))
    return pq.read_table(path, decryption_properties=properties)


def product_key(home: HomeLike, recipient: str) -> bytes:
    """The recipient's product master key: ``$SILOBREAKER_PRODUCT_KEY_<RECIPIENT>`` or its key file
    under the data home (created on first use, see :mod:`core.keys`)."""
    return load_or_create_key(DataHome.at(home).product_key_file(recipient), f"{KEY_ENV_PREFIX}{recipient.upper()}")
