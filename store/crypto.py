"""Encryption at rest of the stored message bytes (Message.raw and OutboxItem.raw).

With `[store] encryption_key_env` set, the variable it names contains one or more Fernet keys,
comma separated, newest first. New rows are encrypted with the newest key and any of the
keys decrypts, so a key can be rotated: put the new key first, run
`ccas-bot store encrypt-existing`, then drop the old key.

An encrypted value starts with ENCRYPTED_PREFIX, so plain rows written before encryption
was turned on are still read as they are. Both prefixes start with a NUL byte, which no
mail header starts with, and a plain value that happens to start like them is stored behind
PLAIN_PREFIX, so no message can pass itself off as encrypted.

The column type EncryptedBytes does the work for every reader of the two columns. It finds
the keys on the engine's dialect (attach_cipher), so two stores in one process may use
different keys.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Engine, LargeBinary, select, type_coerce, update
from sqlalchemy.types import TypeDecorator

from bot.errors import ConfigError

log = logging.getLogger(__name__)

ENCRYPTED_PREFIX = b"\x00ccas-fernet\x00"
PLAIN_PREFIX = b"\x00ccas-plain\x00"
_RESERVED_START = b"\x00ccas-"
CONFIG_KEY = "store.encryption_key_env"
_DIALECT_ATTRIBUTE = "ccas_raw_cipher"


class RawCipher:
    """The Fernet keys of one store: encrypts with the first key, decrypts with any."""

    def __init__(self, keys: list[str], env_name: str) -> None:
        self.env_name = env_name
        try:
            fernets = [Fernet(key.strip().encode("ascii")) for key in keys]
        except (ValueError, UnicodeEncodeError):
            raise ConfigError(CONFIG_KEY, f"environment variable {env_name} contains an invalid Fernet key",
                              "each key is 32 bytes in URL-safe base64; generate one with "
                              "python -c \"from cryptography.fernet import Fernet; "
                              "print(Fernet.generate_key().decode())\"") from None
        self._fernet = MultiFernet(fernets)

    def encrypt(self, data: bytes) -> bytes:
        return ENCRYPTED_PREFIX + self._fernet.encrypt(data)

    def decrypt(self, value: bytes) -> bytes:
        try:
            return self._fernet.decrypt(value[len(ENCRYPTED_PREFIX):])
        except InvalidToken:
            raise ConfigError(CONFIG_KEY, f"no key in environment variable {self.env_name} decrypts a stored message",
                              "put the key the rows were encrypted with back in the list") from None

    def rotate(self, value: bytes) -> bytes:
        """Re-encrypt an encrypted value with the newest key."""
        try:
            return ENCRYPTED_PREFIX + self._fernet.rotate(value[len(ENCRYPTED_PREFIX):])
        except InvalidToken:
            raise ConfigError(CONFIG_KEY, f"no key in environment variable {self.env_name} decrypts a stored message",
                              "put the key the rows were encrypted with back in the list") from None


def is_encrypted(value: bytes | None) -> bool:
    return value is not None and bytes(value[:len(ENCRYPTED_PREFIX)]) == ENCRYPTED_PREFIX


def _plain_for_storage(value: bytes) -> bytes:
    return PLAIN_PREFIX + value if value.startswith(_RESERVED_START) else value


def _plain_from_storage(value: bytes) -> bytes:
    return value[len(PLAIN_PREFIX):] if value.startswith(PLAIN_PREFIX) else value


def cipher_from_env(env_name: str) -> RawCipher | None:
    """Build the cipher from the keys in `env_name`; an empty name turns encryption off."""
    if not env_name:
        return None
    value = os.environ.get(env_name)
    if value is None:
        raise ConfigError(CONFIG_KEY, f"environment variable {env_name} is not set",
                          f"export {env_name} with the Fernet keys before starting ccas-bot")
    keys = [key for key in value.split(",") if key.strip()]
    if not keys:
        raise ConfigError(CONFIG_KEY, f"environment variable {env_name} is empty",
                          f"put one or more Fernet keys, comma separated and newest first, in {env_name}")
    return RawCipher(keys, env_name)


def attach_cipher(engine: Engine, cipher: RawCipher | None) -> None:
    """Make every EncryptedBytes column of this engine use `cipher` (None: write plain bytes)."""
    setattr(engine.dialect, _DIALECT_ATTRIBUTE, cipher)


def engine_cipher(engine: Engine) -> RawCipher | None:
    return getattr(engine.dialect, _DIALECT_ATTRIBUTE, None)


class EncryptedBytes(TypeDecorator):
    """Bytes stored encrypted when the engine has a cipher, and read back decrypted either way."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        cipher = getattr(dialect, _DIALECT_ATTRIBUTE, None)
        if cipher is None:
            return _plain_for_storage(bytes(value))
        return cipher.encrypt(bytes(value))

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        value = bytes(value)
        if not is_encrypted(value):
            return _plain_from_storage(value)
        cipher = getattr(dialect, _DIALECT_ATTRIBUTE, None)
        if cipher is None:
            raise ConfigError(CONFIG_KEY, "a stored message is encrypted but no key is configured",
                              "set it to the environment variable that holds the Fernet keys")
        return cipher.decrypt(bytes(value))


def check_key(engine: Engine) -> None:
    """Read the newest stored message, so a missing or wrong key stops ccas-bot at start-up, not mid-poll.

    Only one row is read, to keep start-up fast on a large store. Older rows written under
    another key still raise the same ConfigError when they are read.
    """
    from store.models import Message

    stored_raw = type_coerce(Message.raw, LargeBinary)
    with engine.connect() as connection:
        newest = connection.execute(select(stored_raw).where(Message.raw.is_not(None))
                                    .order_by(Message.id.desc()).limit(1)).scalar()
    if newest is not None:
        EncryptedBytes().process_result_value(newest, engine.dialect)


@dataclass
class EncryptionSummary:
    encrypted: int = 0
    rotated: int = 0
    unchanged: int = 0

    def line(self) -> str:
        return (f"{self.encrypted} plain rows encrypted, {self.rotated} encrypted rows re-encrypted "
                f"with the newest key, {self.unchanged} empty rows left")


def encrypt_existing(engine: Engine, batch_size: int = 200,
                     progress: Callable[[str, int], None] | None = None) -> EncryptionSummary:
    """Encrypt plain rows and re-encrypt encrypted rows with the newest key, one transaction per batch.

    Covers Message.raw and OutboxItem.raw. Running it again after an interruption is safe:
    a row already encrypted is only re-encrypted.
    """
    from store.models import Message, OutboxItem

    cipher = engine_cipher(engine)
    if cipher is None:
        raise ConfigError(CONFIG_KEY, "is not set, so there is no key to encrypt with",
                          "name the environment variable that holds the Fernet keys")
    summary = EncryptionSummary()
    for model in (Message, OutboxItem):
        stored_raw = type_coerce(model.raw, LargeBinary)
        last_id = 0
        while True:
            with engine.begin() as connection:
                rows = connection.execute(select(model.id, stored_raw).where(model.id > last_id)
                                          .order_by(model.id).limit(batch_size)).all()
                for row_id, value in rows:
                    if value is None or len(value) == 0:
                        summary.unchanged += 1
                        continue
                    if is_encrypted(value):
                        new_value = cipher.rotate(bytes(value))
                        summary.rotated += 1
                    else:
                        new_value = cipher.encrypt(_plain_from_storage(bytes(value)))
                        summary.encrypted += 1
                    connection.execute(update(model).where(model.id == row_id)
                                       .values({model.raw: type_coerce(new_value, LargeBinary)}))
            if not rows:
                break
            last_id = rows[-1][0]
            if progress is not None:
                progress(model.__tablename__, len(rows))
    log.info("encrypt-existing finished: %s", summary.line())
    return summary
