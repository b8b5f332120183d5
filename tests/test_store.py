"""The store: message identity, de-duplication, outcomes and the outbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.pipeline import identify_raw
from store.db import create_store_engine, upgrade_schema
from store.records import PlannedMail, Store, TriageRecord

RAW = b"From: a@b.example\r\nMessage-ID: <same@b.example>\r\nSubject: one\r\n\r\nfirst\r\n"
RAW_CHANGED = b"From: a@b.example\r\nMessage-ID: <same@b.example>\r\nSubject: one\r\n\r\nsecond\r\n"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    upgrade_schema(engine)
    return Store(engine)


def record_for(raw: bytes, uid: str = "1", mail: list[PlannedMail] | None = None) -> TriageRecord:
    message_id, synthesised, digest = identify_raw(raw)
    return TriageRecord(message_id=message_id, message_id_synthesised=synthesised, sha256=digest,
                        raw=raw, source="imap", folder="INBOX", uidvalidity=7, uid=uid,
                        outcome="handled", reasons=["test"], mail=mail or [])


@pytest.mark.sqlite_only("checks SQLite's journal mode")
def test_sqlite_uses_write_ahead_log(store):
    with store.engine.connect() as connection:
        mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()

    assert mode == "wal"


def test_raw_bytes_kept_exactly(store):
    stored = store.record_triage(record_for(RAW))

    assert store.load_raw(stored.pk) == RAW


def test_message_without_message_id_gets_one_from_hash():
    raw = b"From: a@b.example\r\nSubject: none\r\n\r\nbody\r\n"

    first = identify_raw(raw)
    second = identify_raw(raw)

    assert first == second
    assert first[1] is True
    assert first[2] in first[0] or first[0].startswith("sha256-")


def test_message_id_with_square_brackets_kept_whole():
    raw = b"From: a@b.example\r\nMessage-ID: <[abc]@b.example>\r\n\r\nbody\r\n"

    message_id, synthesised, _ = identify_raw(raw)

    assert message_id == "[abc]@b.example"
    assert synthesised is False


def test_known_message_id_with_different_bytes_kept_and_flagged(store):
    first = store.record_triage(record_for(RAW))
    second = store.record_triage(record_for(RAW_CHANGED, uid="2"))

    assert second.pk != first.pk
    from store.models import Message
    from sqlalchemy.orm import Session
    with Session(store.engine) as session:
        assert session.get(Message, second.pk).conflicts_with_id == first.pk
        assert session.get(Message, first.pk).conflicts_with_id is None


def test_same_message_recorded_twice_is_one_row(store):
    first = store.record_triage(record_for(RAW))
    again = store.record_triage(record_for(RAW, uid="9"))

    assert again.pk == first.pk


def test_outbox_never_holds_same_reply_twice(store):
    mail = [PlannedMail(purpose="professional_acknowledgement", recipient="a@b.example",
                        out_message_id="out-1@ccas.example", raw=b"x")]
    store.record_triage(record_for(RAW, mail=mail))
    store.record_triage(record_for(RAW, mail=[PlannedMail(
        purpose="professional_acknowledgement", recipient="a@b.example",
        out_message_id="out-2@ccas.example", raw=b"y")]))

    assert len(store.pending_outbox()) == 1


def test_changed_copy_of_answered_message_not_answered_again(store):
    def ack(out_id: str) -> list[PlannedMail]:
        return [PlannedMail(purpose="professional_acknowledgement", recipient="a@b.example",
                            out_message_id=out_id, raw=b"x")]

    store.record_triage(record_for(RAW, mail=ack("out-1@ccas.example")))
    store.record_triage(record_for(RAW_CHANGED, uid="2", mail=ack("out-2@ccas.example")))

    assert len(store.pending_outbox()) == 1


def test_uidvalidity_change_restarts_folder_from_zero(store):
    assert store.mailbox_state("imap", "INBOX", 7) == 0
    record = record_for(RAW)
    record.last_uid = 42
    store.record_triage(record)
    assert store.mailbox_state("imap", "INBOX", 7) == 42

    assert store.mailbox_state("imap", "INBOX", 8) == 0


def test_last_uid_never_moves_backwards(store):
    store.mailbox_state("imap", "INBOX", 7)
    newer = record_for(RAW)
    newer.last_uid = 10
    store.record_triage(newer)
    older = record_for(RAW_CHANGED, uid="5")
    older.last_uid = 5
    store.record_triage(older)

    assert store.mailbox_state("imap", "INBOX", 7) == 10


def test_reserved_case_ids_never_repeat(store):
    store.upsert_cases([{"id": "CCAS-2026-0041", "first_name": "Test", "last_name": "Child"}])

    first = store.reserve_case_id(2026)
    second = store.reserve_case_id(2026)

    assert first == "CCAS-2026-0042"
    assert second == "CCAS-2026-0043"
