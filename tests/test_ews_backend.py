"""The EWS mailbox and sender end to end, through exchangelib, against an EWS stand-in on 127.0.0.1."""

from __future__ import annotations

import base64
import email
import email.policy
import sys
from pathlib import Path

import pytest

import mailfactory
from bot.app import build_context, build_mailbox, build_sender, open_store
from bot.config import config_from_mapping
from bot.errors import ConfigError, RemoteError
from bot.intake import Intake
from bot.mailboxes.ews import EwsMailbox
from bot.pipeline import identify_raw
from ews_server import NS, EwsServer

PROCESSED = "CCAS/Processed"
QUARANTINE = "CCAS/Quarantine"


@pytest.fixture
def ews(tls_material):
    with EwsServer(tls_material, mailbox=mailfactory.CCAS_INBOX) as server:
        yield server


def ews_config(ews: EwsServer, tmp_path: Path, **overrides):
    settings = {
        "service_endpoint": ews.service_endpoint, "username": ews.username,
        "password_env": "TEST_EWS_PASSWORD", "auth": "basic", "ca_file": str(ews.tls.ca_file),
        "timeout_seconds": 5, **overrides,
    }
    data = {
        **mailfactory.council_settings(),
        "store": {"url": f"sqlite:///{tmp_path / 'store.sqlite3'}"},
        "mailbox": {"backend": "ews", "ews": settings},
        "sending": {"backend": "ews"},
    }
    return config_from_mapping(data, base_dir=tmp_path)


@pytest.fixture
def config(ews, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_EWS_PASSWORD", ews.password)
    return ews_config(ews, tmp_path)


def poll(config):
    store = open_store(config)
    return Intake(build_mailbox(config), build_context(config, store), build_sender(config)).poll_once()


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def mime_requests(ews: EwsServer) -> int:
    return sum(1 for body in ews.bodies if b"item:MimeContent" in body)


def test_referral_answered_with_loop_headers(config, ews):
    referral = mailfactory.referral()
    ews.deliver(referral.as_bytes())

    summary = poll(config)

    assert [item.stored.outcome for item in summary.processed] == ["handled"]
    assert len(ews.sent) == 1
    reply = parse(ews.sent[0])
    assert reply["To"] == "nia.gwent@testhealth.nhs.example"
    assert reply["In-Reply-To"] == referral["Message-ID"]
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["X-Auto-Response-Suppress"] == "All"
    assert reply["X-CCAS-Bot-Loop"] == mailfactory.CCAS_INBOX


def test_reply_sent_and_saved_to_sent_items(config, ews):
    ews.deliver(mailfactory.referral().as_bytes())

    poll(config)

    create = [body for body in ews.bodies if b"<m:CreateItem" in body]
    assert len(create) == 1
    assert b'MessageDisposition="SendAndSaveCopy"' in create[0]
    assert len(ews.folder_messages("Sent Items")) == 1


def test_processed_item_moved_after_commit(config, ews):
    raw = mailfactory.referral().as_bytes()
    ews.deliver(raw)
    message_id, _, digest = identify_raw(raw)
    stored_at_move = []
    ews.on_move = lambda item: stored_at_move.append(open_store(config).find_message(message_id, digest) is not None)

    poll(config)

    assert stored_at_move == [True]
    assert ews.folder_messages("Inbox") == []
    assert [item.raw for item in ews.folder_messages(PROCESSED)] == [raw]


def test_second_poll_fetches_nothing(config, ews):
    ews.deliver(mailfactory.referral().as_bytes())
    poll(config)
    fetched = mime_requests(ews)

    summary = poll(config)

    assert summary.processed == []
    assert mime_requests(ews) == fetched
    assert len(ews.sent) == 1


def test_oldest_item_processed_first(config, ews):
    first = ews.deliver(mailfactory.out_of_office().as_bytes())
    second = ews.deliver(mailfactory.referral().as_bytes())

    summary = poll(config)

    assert [item.ref.uid for item in summary.processed] == [first, second]


def test_failing_item_quarantined_rest_processed(config, ews):
    broken = ews.deliver(mailfactory.referral("Ivy", "Marchbank", "02/05/2014").as_bytes())
    ews.deliver(mailfactory.referral().as_bytes())
    ews.fail_item(broken, "ErrorMimeContentConversionFailed")

    summary = poll(config)

    assert [item.stored.outcome for item in summary.processed] == ["needs_person", "handled"]
    assert len(ews.folder_messages(QUARANTINE)) == 1
    assert len(ews.folder_messages(PROCESSED)) == 1
    assert len(ews.sent) == 1


def test_busy_server_leaves_item_for_next_poll(config, ews):
    item = ews.deliver(mailfactory.referral().as_bytes())
    ews.fail_item(item, "ErrorServerBusy")

    with pytest.raises(RemoteError, match="ErrorServerBusy"):
        poll(config)
    assert len(ews.folder_messages("Inbox")) == 1

    summary = poll(config)

    assert [entry.stored.outcome for entry in summary.processed] == ["handled"]
    assert ews.folder_messages("Inbox") == []


def test_failed_listing_is_remote_error(config, ews):
    ews.fail_operation("FindItem", "ErrorInternalServerError")

    with pytest.raises(RemoteError):
        poll(config)


def test_killed_before_move_finishes_without_second_reply(config, ews, monkeypatch):
    ews.deliver(mailfactory.referral().as_bytes())

    def killed(self, ref):
        raise KeyboardInterrupt("killed between store commit and move")

    with monkeypatch.context() as patch:
        patch.setattr(EwsMailbox, "move_to_processed", killed)
        with pytest.raises(KeyboardInterrupt):
            poll(config)
    assert len(ews.folder_messages("Inbox")) == 1

    poll(config)

    assert ews.folder_messages("Inbox") == []
    assert len(ews.folder_messages(PROCESSED)) == 1
    assert len(ews.sent) == 1


def test_only_documented_operations_used(config, ews):
    ews.deliver(mailfactory.referral().as_bytes())
    ews.deliver(mailfactory.unreadable())

    poll(config)

    assert ews.unknown == []
    assert set(ews.operations) <= {"ConvertId", "GetFolder", "FindFolder", "CreateFolder", "FindItem",
                                   "GetItem", "MoveItem", "CreateItem"}


def test_wrong_password_is_config_error(ews, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_EWS_PASSWORD", "not-the-password")

    with pytest.raises(ConfigError, match="mailbox.ews.username") as raised:
        poll(ews_config(ews, tmp_path))

    assert "not-the-password" not in str(raised.value)


def test_missing_password_stops_build(ews, tmp_path, monkeypatch):
    monkeypatch.delenv("TEST_EWS_PASSWORD", raising=False)

    with pytest.raises(ConfigError, match="TEST_EWS_PASSWORD"):
        build_mailbox(ews_config(ews, tmp_path))


def test_without_exchangelib_build_names_extra(config, monkeypatch):
    monkeypatch.setitem(sys.modules, "exchangelib", None)

    with pytest.raises(ConfigError, match=r"ccas-bot\[exchange\]"):
        build_mailbox(config)


def test_sender_rejects_other_recipients(config, ews):
    message = mailfactory.referral()
    message["Cc"] = "someone.else@testhealth.nhs.example"

    with pytest.raises(RemoteError, match="outbox recipient"):
        build_sender(config).send(message.as_bytes(), message["To"], "", message["Message-ID"])

    assert ews.sent == []


def test_sender_posts_mime_unchanged(config, ews):
    message = mailfactory.referral()

    build_sender(config).send(message.as_bytes(), message["To"], "", message["Message-ID"])

    from lxml import etree
    create = etree.fromstring([body for body in ews.bodies if b"<m:CreateItem" in body][0])
    mime = create.findtext(".//t:MimeContent", namespaces=NS)
    assert base64.b64decode(mime) == message.as_bytes()
