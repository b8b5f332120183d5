"""Encryption at rest of stored message bytes: round trip, mixed rows, wrong keys and rotation."""

from __future__ import annotations

import zipfile

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import LargeBinary, select, type_coerce

import mailfactory
from bot.app import build_context, build_mailbox, build_sender, open_store
from bot.cli import main
from bot.config import config_from_mapping
from bot.errors import ConfigError
from bot.intake import Intake
from casefactory import NOW, add_case, add_message, make_store
from store.crypto import ENCRYPTED_PREFIX, encrypt_existing
from store.models import Message, OutboxItem
from store.subject_access import export_case

KEY_ENV = "CCAS_TEST_STORE_KEYS"


@pytest.fixture
def keys(monkeypatch):
    """Two fresh keys; the test sets the variable itself."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    return Fernet.generate_key().decode(), Fernet.generate_key().decode()


def stored_columns(store, model) -> list[bytes]:
    """Return the raw column exactly as the database stores it, bypassing the decrypting column type."""
    with store.engine.connect() as connection:
        return [bytes(value) for value in connection.scalars(
            select(type_coerce(model.raw, LargeBinary)).order_by(model.id))]


def test_round_trip_encrypts_on_disk(tmp_path, keys, monkeypatch):
    monkeypatch.setenv(KEY_ENV, keys[0])
    store, _config = make_store(tmp_path, encryption_key_env=KEY_ENV)

    pk = add_message(store, 1, at=NOW, body="Adaline has been unwell.", mail_status="pending")

    for model in (Message, OutboxItem):
        on_disk = stored_columns(store, model)[0]
        assert on_disk.startswith(ENCRYPTED_PREFIX)
        assert b"Adaline" not in on_disk
        assert b"Referral" not in on_disk
    assert b"Adaline has been unwell." in store.load_raw(pk)
    assert store.pending_outbox(pk)[0].raw.startswith(b"To: referrer@school.example")


def test_plain_and_encrypted_rows_side_by_side(tmp_path, keys, monkeypatch):
    store, _config = make_store(tmp_path)
    plain_pk = add_message(store, 1, at=NOW, body="written before encryption")
    monkeypatch.setenv(KEY_ENV, keys[0])
    store, _config = make_store(tmp_path, encryption_key_env=KEY_ENV)
    encrypted_pk = add_message(store, 2, at=NOW, body="written after")

    on_disk = stored_columns(store, Message)
    assert not on_disk[0].startswith(ENCRYPTED_PREFIX)
    assert on_disk[1].startswith(ENCRYPTED_PREFIX)
    assert b"written before encryption" in store.load_raw(plain_pk)
    assert b"written after" in store.load_raw(encrypted_pk)

    summary = encrypt_existing(store.engine, batch_size=1)

    assert (summary.encrypted, summary.rotated) == (1, 1)
    assert all(value.startswith(ENCRYPTED_PREFIX) for value in stored_columns(store, Message))
    assert b"written before encryption" in store.load_raw(plain_pk)


def test_plain_message_cannot_pose_as_encrypted(tmp_path):
    store, _config = make_store(tmp_path)
    raw = ENCRYPTED_PREFIX + b"not a token"
    stored = store.record_unreadable(source="folder", folder="inbox", uidvalidity=None, uid="1", raw=raw,
                                     message_id="x@example", sha256="0" * 64, reason="message:unreadable",
                                     last_uid=None)

    reopened, _config = make_store(tmp_path)

    assert reopened.load_raw(stored.pk) == raw


def test_wrong_or_missing_key_names_variable(tmp_path, keys, monkeypatch):
    monkeypatch.setenv(KEY_ENV, keys[0])
    store, _config = make_store(tmp_path, encryption_key_env=KEY_ENV)
    add_message(store, 1, at=NOW)

    monkeypatch.setenv(KEY_ENV, keys[1])
    with pytest.raises(ConfigError, match=f"no key in environment variable {KEY_ENV} decrypts"):
        make_store(tmp_path, encryption_key_env=KEY_ENV)

    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(ConfigError, match=f"environment variable {KEY_ENV} is not set"):
        make_store(tmp_path, encryption_key_env=KEY_ENV)

    monkeypatch.setenv(KEY_ENV, "not-a-key")
    with pytest.raises(ConfigError, match=f"{KEY_ENV} contains an invalid Fernet key"):
        make_store(tmp_path, encryption_key_env=KEY_ENV)

    with pytest.raises(ConfigError, match="encrypted but no key is configured"):
        make_store(tmp_path)


def test_wrong_key_command_exit_status(tmp_path, keys, monkeypatch, capsys):
    monkeypatch.setenv(KEY_ENV, keys[0])
    store, _config = make_store(tmp_path, encryption_key_env=KEY_ENV)
    add_message(store, 1, at=NOW)
    config = tmp_path / "config.toml"
    config.write_text(f'[store]\nurl = "sqlite:///store.sqlite3"\nencryption_key_env = "{KEY_ENV}"\n',
                      encoding="utf-8")
    monkeypatch.setenv(KEY_ENV, keys[1])

    assert main(["--config", str(config), "purge", "--dry-run"]) == 2
    assert "store.encryption_key_env" in capsys.readouterr().err


def test_key_rotation(tmp_path, keys, monkeypatch, capsys):
    old_key, new_key = keys
    monkeypatch.setenv(KEY_ENV, old_key)
    store, _config = make_store(tmp_path, encryption_key_env=KEY_ENV)
    pk = add_message(store, 1, at=NOW, body="before rotation", mail_status="sent")

    monkeypatch.setenv(KEY_ENV, f"{new_key},{old_key}")
    config = tmp_path / "config.toml"
    config.write_text(f'[store]\nurl = "sqlite:///store.sqlite3"\nencryption_key_env = "{KEY_ENV}"\n',
                      encoding="utf-8")
    assert main(["--config", str(config), "store", "encrypt-existing"]) == 0
    assert "2 encrypted rows re-encrypted" in capsys.readouterr().out

    monkeypatch.setenv(KEY_ENV, new_key)
    store, _config = make_store(tmp_path, encryption_key_env=KEY_ENV)
    assert b"before rotation" in store.load_raw(pk)
    monkeypatch.setenv(KEY_ENV, old_key)
    with pytest.raises(ConfigError):
        make_store(tmp_path, encryption_key_env=KEY_ENV)


def test_export_holds_decrypted_originals(tmp_path, keys, monkeypatch):
    monkeypatch.setenv(KEY_ENV, keys[0])
    store, _config = make_store(tmp_path, encryption_key_env=KEY_ENV)
    add_case(store, "CCAS-2030-0001", first_name="Adaline", last_name="Featherstone", dob=None)
    pk = add_message(store, 1, at=NOW, case_id="CCAS-2030-0001", body="Adaline is unwell.")

    export_case(store, "CCAS-2030-0001", "dpo", tmp_path / "export.zip")

    with zipfile.ZipFile(tmp_path / "export.zip") as archive:
        assert b"Adaline is unwell." in archive.read(f"messages/{pk}.eml")


def test_poll_sends_decrypted_reply(tmp_path, keys, monkeypatch):
    """The whole intake with encryption on: the stored rows are encrypted and the reply leaves readable."""
    monkeypatch.setenv(KEY_ENV, keys[0])
    config = config_from_mapping({
        **mailfactory.council_settings(),
        "store": {"url": "sqlite:///store.sqlite3", "encryption_key_env": KEY_ENV},
        "mailbox": {"backend": "folder", "folder": {
            "inbox_path": "inbox", "processed_path": "processed", "quarantine_path": "quarantine"}},
        "sending": {"backend": "folder", "outbox_path": "outbox"},
    }, base_dir=tmp_path)
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "a.eml").write_bytes(mailfactory.referral().as_bytes())
    store = open_store(config)

    Intake(build_mailbox(config), build_context(config, store), build_sender(config)).poll_once()

    assert all(value.startswith(ENCRYPTED_PREFIX) for value in stored_columns(store, Message))
    assert all(value.startswith(ENCRYPTED_PREFIX) for value in stored_columns(store, OutboxItem))
    sent = list((tmp_path / "outbox").iterdir())
    assert len(sent) == 1
    assert b"nia.gwent@testhealth.nhs.example" in sent[0].read_bytes()
