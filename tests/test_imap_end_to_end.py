"""The main job end to end against real Dovecot and SMTP servers on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest

import mailfactory
from bot.app import build_context, build_mailbox, build_sender, open_store
from bot.config import config_from_mapping
from bot.intake import Intake

PROCESSED = "CCAS/Processed"
QUARANTINE = "CCAS/Quarantine"
# Dovecot's Maildir storage uses "." as its hierarchy delimiter.
SERVER_PROCESSED = "CCAS.Processed"
SERVER_QUARANTINE = "CCAS.Quarantine"


@pytest.fixture
def config(dovecot, smtp_server, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TEST_IMAP_PASSWORD", dovecot.password)
    monkeypatch.setenv("TEST_SMTP_PASSWORD", smtp_server.password)
    data = {
        **mailfactory.council_settings(),
        "store": {"url": f"sqlite:///{tmp_path / 'store.sqlite3'}"},
        "mailbox": {"backend": "imap", "imap": {
            "host": dovecot.host, "port": dovecot.port, "security": "starttls",
            "username": dovecot.username, "password_env": "TEST_IMAP_PASSWORD",
            "ca_file": str(dovecot.ca_file), "processed_folder": PROCESSED,
            "quarantine_folder": QUARANTINE, "timeout_seconds": 10}},
        "sending": {"backend": "smtp", "smtp": {
            "host": smtp_server.host, "port": smtp_server.port, "security": "starttls",
            "username": smtp_server.username, "password_env": "TEST_SMTP_PASSWORD",
            "ca_file": str(smtp_server.ca_file), "timeout_seconds": 10}},
    }
    return config_from_mapping(data, base_dir=tmp_path)


def poll(config):
    store = open_store(config)
    return Intake(build_mailbox(config), build_context(config, store), build_sender(config)).poll_once()


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_referral_acknowledged_with_threading_and_loop_headers(config, dovecot, smtp_server):
    referral = mailfactory.referral()
    dovecot.append("INBOX", referral.as_bytes())

    poll(config)

    received = smtp_server.wait_for(1)
    reply = parse(received[0].data)
    original_id = referral["Message-ID"]
    assert received[0].rcpt_tos == ["nia.gwent@testhealth.nhs.example"]
    assert reply["In-Reply-To"] == original_id
    assert original_id in reply["References"]
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["X-Auto-Response-Suppress"] == "All"
    assert reply["X-CCAS-Bot-Loop"] == mailfactory.CCAS_INBOX


def test_reply_subject_carries_case_reference_not_child_name(config, dovecot, smtp_server):
    dovecot.append("INBOX", mailfactory.referral().as_bytes())

    poll(config)

    subject = parse(smtp_server.wait_for(1)[0].data)["Subject"]
    assert "CCAS-" in subject
    assert "Larkspur" not in subject


def test_processed_message_moved_after_commit(config, dovecot, smtp_server):
    dovecot.append("INBOX", mailfactory.referral().as_bytes())

    poll(config)

    assert dovecot.list_uids("INBOX") == []
    assert len(dovecot.list_uids(SERVER_PROCESSED)) == 1


def test_second_poll_sends_nothing(config, dovecot, smtp_server):
    dovecot.append("INBOX", mailfactory.referral().as_bytes())
    poll(config)
    smtp_server.wait_for(1)

    summary = poll(config)

    assert summary.processed == []
    assert len(smtp_server.messages) == 1


def test_new_mail_after_first_poll_is_read_from_last_uid(config, dovecot, smtp_server):
    dovecot.append("INBOX", mailfactory.referral().as_bytes())
    poll(config)
    dovecot.append("INBOX", mailfactory.referral("Ivy", "Marchbank", "02/05/2014").as_bytes())

    summary = poll(config)

    assert len(summary.processed) == 1
    assert len(smtp_server.wait_for(2)) == 2


def test_killed_before_move_reprocesses_without_second_reply(config, dovecot, smtp_server, monkeypatch):
    dovecot.append("INBOX", mailfactory.referral().as_bytes())
    from bot.mailboxes.imap import ImapMailbox

    def killed(self, ref):
        raise KeyboardInterrupt("killed between store commit and move")

    with monkeypatch.context() as patch:
        patch.setattr(ImapMailbox, "move_to_processed", killed)
        with pytest.raises(KeyboardInterrupt):
            poll(config)
    assert dovecot.list_uids("INBOX") != []

    poll(config)

    assert dovecot.list_uids("INBOX") == []
    assert len(dovecot.list_uids(SERVER_PROCESSED)) == 1
    assert len(smtp_server.wait_for(1)) == 1
    assert len(smtp_server.messages) == 1


def test_killed_before_sending_sends_reply_once_on_restart(config, dovecot, smtp_server, monkeypatch):
    dovecot.append("INBOX", mailfactory.referral().as_bytes())
    from replies.send import SmtpSender

    def killed(self, *args):
        raise KeyboardInterrupt("killed after the store commit, before sending")

    with monkeypatch.context() as patch:
        patch.setattr(SmtpSender, "send", killed)
        with pytest.raises(KeyboardInterrupt):
            poll(config)

    poll(config)
    poll(config)

    assert len(smtp_server.wait_for(1)) == 1
    assert len(smtp_server.messages) == 1
    assert dovecot.list_uids("INBOX") == []


def test_out_of_office_and_bounce_get_no_reply(config, dovecot, smtp_server):
    dovecot.append("INBOX", mailfactory.out_of_office().as_bytes())
    dovecot.append("INBOX", mailfactory.bounce())

    summary = poll(config)

    categories = sorted(item.triage.classification.category for item in summary.processed)
    assert categories == ["auto_reply", "bounce"]
    assert smtp_server.messages == []
    assert len(dovecot.list_uids(SERVER_PROCESSED)) == 2


def test_unreadable_message_quarantined_and_rest_processed(config, dovecot, smtp_server):
    dovecot.append("INBOX", mailfactory.unreadable())
    dovecot.append("INBOX", mailfactory.referral().as_bytes())

    summary = poll(config)

    outcomes = [item.stored.outcome for item in summary.processed]
    assert outcomes == ["needs_person", "handled"]
    assert len(dovecot.list_uids(SERVER_QUARANTINE)) == 1
    assert len(dovecot.list_uids(SERVER_PROCESSED)) == 1
    assert len(smtp_server.wait_for(1)) == 1


def test_oversized_message_quarantined_unread(config, dovecot, smtp_server):
    import dataclasses
    small = dataclasses.replace(config, bot=dataclasses.replace(config.bot, max_message_bytes=200))
    dovecot.append("INBOX", mailfactory.referral().as_bytes())

    summary = poll(small)

    assert summary.processed[0].stored.outcome == "needs_person"
    assert len(dovecot.list_uids(SERVER_QUARANTINE)) == 1
    assert smtp_server.messages == []


def test_ehcp_forwarded_to_send_with_original_attached(config, dovecot, smtp_server):
    update = mailfactory.ehcp_update()
    dovecot.append("INBOX", update.as_bytes())

    poll(config)

    received = smtp_server.wait_for(2)
    by_recipient = {item.rcpt_tos[0]: parse(item.data) for item in received}
    forward = by_recipient[mailfactory.SEND_INBOX]
    attached = [part for part in forward.walk() if part.get_content_type() == "message/rfc822"]
    assert len(attached) == 1
    assert attached[0].get_content()["Message-ID"] == update["Message-ID"]
    assert "SEND team" in by_recipient["sam.ashdown@testhealth.nhs.example"].get_content()


def test_implicit_tls_mailbox(config, dovecot, smtp_server):
    import dataclasses
    imap = dataclasses.replace(config.mailbox.imap, port=dovecot.tls_port, security="tls")
    tls_config = dataclasses.replace(config, mailbox=dataclasses.replace(config.mailbox, imap=imap))
    dovecot.append("INBOX", mailfactory.referral().as_bytes())

    poll(tls_config)

    assert len(smtp_server.wait_for(1)) == 1
