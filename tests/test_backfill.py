"""`ccas-bot backfill`: existing mail is triaged and stored, nothing is sent or moved."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

import mailfactory
from bot.app import build_context, build_mailbox, build_sender, open_store
from bot.backfill import run_backfill
from bot.config import config_from_mapping
from bot.intake import Intake
from store.models import Message, OutboxItem

REPOSITORY = Path(__file__).resolve().parents[1]


def folder_config(tmp_path: Path):
    data = {
        **mailfactory.council_settings(),
        "store": {"url": "sqlite:///store.sqlite3"},
        "mailbox": {"backend": "folder", "folder": {
            "inbox_path": "inbox", "processed_path": "processed", "quarantine_path": "quarantine"}},
        "sending": {"backend": "folder", "outbox_path": "outbox"},
    }
    (tmp_path / "inbox").mkdir()
    return config_from_mapping(data, base_dir=tmp_path)


def deliver(tmp_path: Path, name: str, raw: bytes, delivered: datetime) -> Path:
    path = tmp_path / "inbox" / name
    path.write_bytes(raw)
    os.utime(path, (delivered.timestamp(), delivered.timestamp()))
    return path


def outbox_statuses(store) -> list[str]:
    with store.engine.connect() as connection:
        return list(connection.execute(select(OutboxItem.status)).scalars())


def test_backfill_stores_without_sending(tmp_path):
    config = folder_config(tmp_path)
    deliver(tmp_path, "old.eml", mailfactory.referral("Ivy", "Thorne").as_bytes(), datetime(2025, 3, 1, 9))
    new = deliver(tmp_path, "new.eml", mailfactory.referral().as_bytes(), datetime(2026, 9, 10, 9))
    store = open_store(config)

    summary = run_backfill(build_mailbox(config), build_context(config, store), datetime(2026, 9, 1).date())

    assert (summary.listed, summary.stored, summary.opened_cases) == (1, 1, 1)
    assert outbox_statuses(store)
    assert set(outbox_statuses(store)) == {"suppressed"}
    assert not (tmp_path / "outbox").exists() or not any((tmp_path / "outbox").iterdir())
    assert new.exists()


def test_backfill_resumes_by_skipping_stored(tmp_path):
    config = folder_config(tmp_path)
    deliver(tmp_path, "a.eml", mailfactory.referral().as_bytes(), datetime(2026, 9, 10, 9))
    store = open_store(config)
    run_backfill(build_mailbox(config), build_context(config, store), datetime(2026, 9, 1).date())
    deliver(tmp_path, "b.eml", mailfactory.referral("Ivy", "Thorne").as_bytes(), datetime(2026, 9, 11, 9))

    summary = run_backfill(build_mailbox(config), build_context(config, store), datetime(2026, 9, 1).date())

    with store.engine.connect() as connection:
        stored = connection.execute(select(Message.id)).all()
    assert (summary.stored, summary.skipped) == (1, 1)
    assert len(stored) == 2


def test_poll_after_backfill_moves_without_reply(tmp_path):
    config = folder_config(tmp_path)
    deliver(tmp_path, "a.eml", mailfactory.referral().as_bytes(), datetime(2026, 9, 10, 9))
    store = open_store(config)
    run_backfill(build_mailbox(config), build_context(config, store), datetime(2026, 9, 1).date())

    summary = Intake(build_mailbox(config), build_context(config, store), build_sender(config)).poll_once()

    assert summary.sent == 0
    assert (tmp_path / "processed" / "a.eml").exists()
    assert set(outbox_statuses(store)) == {"suppressed"}


def test_backfill_command_prints_summary(tmp_path):
    (tmp_path / "inbox").mkdir()
    deliver(tmp_path, "a.eml", mailfactory.referral().as_bytes(), datetime(2026, 9, 10, 9))
    config_file = tmp_path / "config.toml"
    config_file.write_text(
        '[mailbox.folder]\ninbox_path = "inbox"\nprocessed_path = "done"\nquarantine_path = "bad"\n'
        '[store]\nurl = "sqlite:///bot.sqlite3"\n[sending]\noutbox_path = "outbox"\n'
        '[trusted_domains]\nhealth = ["testhealth.nhs.example"]\n', encoding="utf-8")

    result = subprocess.run([sys.executable, "-m", "bot.cli", "--config", str(config_file), "backfill",
                             "--since", "2026-09-01"], capture_output=True, text=True, timeout=120, cwd=REPOSITORY)

    assert result.returncode == 0, result.stderr
    assert "listed 1, stored 1, already stored 0" in result.stdout
    assert "backfill" in result.stderr
    assert (tmp_path / "inbox" / "a.eml").exists()


def test_imap_backfill_uses_since(dovecot, smtp_server, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_IMAP_PASSWORD", dovecot.password)
    config = config_from_mapping({
        **mailfactory.council_settings(),
        "store": {"url": f"sqlite:///{tmp_path / 'store.sqlite3'}"},
        "mailbox": {"backend": "imap", "imap": {
            "host": dovecot.host, "port": dovecot.port, "security": "starttls",
            "username": dovecot.username, "password_env": "TEST_IMAP_PASSWORD",
            "ca_file": str(dovecot.ca_file), "timeout_seconds": 10}},
    }, base_dir=tmp_path)
    client = dovecot.connect()
    client.append("INBOX", mailfactory.referral("Ivy", "Thorne").as_bytes(), msg_time=datetime(2025, 3, 1, 9))
    client.append("INBOX", mailfactory.referral().as_bytes(), msg_time=datetime(2026, 9, 10, 9))
    client.logout()
    store = open_store(config)

    summary = run_backfill(build_mailbox(config), build_context(config, store), datetime(2026, 9, 1).date())

    assert (summary.listed, summary.stored) == (1, 1)
    assert smtp_server.messages == []
    assert len(dovecot.list_uids("INBOX")) == 2
