"""IMAP behaviour that real servers show: UIDVALIDITY changes, CHARSET in SEARCH, unsolicited FETCH."""

from __future__ import annotations

import email
import email.policy
import logging

import pytest

import mailfactory
from bot.app import build_mailbox
from liveconfig import SERVER_PROCESSED, make_config, poll
from replies.send import SmtpSender

POLLED = "Intake"


@pytest.fixture
def config(dovecot, smtp_server, tmp_path, monkeypatch):
    dovecot.create_folder(POLLED)
    return make_config(dovecot, smtp_server, tmp_path, monkeypatch, imap={"folder": POLLED})


def uidvalidity(dovecot, folder: str) -> int:
    with dovecot.connect() as client:
        return int(client.select_folder(folder, readonly=True)[b"UIDVALIDITY"])


def recreate_folder(dovecot, folder: str) -> None:
    """Delete and create the folder again, which gives it a new UIDVALIDITY."""
    with dovecot.connect() as client:
        client.delete_folder(folder)
        client.create_folder(folder)


def replied_to(smtp_server) -> list[str]:
    """Return the In-Reply-To of every message the SMTP server received, in arrival order."""
    return [email.message_from_bytes(item.data, policy=email.policy.compat32)["In-Reply-To"]
            for item in smtp_server.messages]


def test_uidvalidity_change_sends_no_second_reply(config, dovecot, smtp_server):
    first = mailfactory.referral()
    dovecot.append(POLLED, first.as_bytes())
    poll(config)
    smtp_server.wait_for(1)
    old_validity = uidvalidity(dovecot, POLLED)

    recreate_folder(dovecot, POLLED)
    second = mailfactory.referral("Ivy", "Marchbank", "02/05/2014")
    second.replace_header("From", "Dr Ola Fenwick <ola.fenwick@testhealth.nhs.example>")
    dovecot.append(POLLED, first.as_bytes())
    dovecot.append(POLLED, second.as_bytes())
    assert uidvalidity(dovecot, POLLED) != old_validity
    summary = poll(config)

    smtp_server.wait_for(2)
    assert replied_to(smtp_server) == [first["Message-ID"], second["Message-ID"]]
    assert [item.resumed for item in summary.processed] == [True, False]
    assert dovecot.list_uids(POLLED) == []
    assert len(dovecot.list_uids(SERVER_PROCESSED)) == 3


def test_uidvalidity_change_after_crash_sends_pending_reply_once(config, dovecot, smtp_server, monkeypatch):
    referral = mailfactory.referral()
    dovecot.append(POLLED, referral.as_bytes())

    def killed(self, *args):
        raise KeyboardInterrupt("killed after the store commit, before sending")

    with monkeypatch.context() as patch:
        patch.setattr(SmtpSender, "send", killed)
        with pytest.raises(KeyboardInterrupt):
            poll(config)
    recreate_folder(dovecot, POLLED)
    dovecot.append(POLLED, referral.as_bytes())
    poll(config)
    poll(config)

    smtp_server.wait_for(1)
    assert replied_to(smtp_server) == [referral["Message-ID"]]
    assert dovecot.list_uids(POLLED) == []


def test_searches_carry_no_charset(config, dovecot, smtp_server, caplog):
    # Exchange rejects SEARCH CHARSET UTF-8, so the bot's searches name no charset.
    caplog.set_level(logging.DEBUG, logger="imapclient")
    dovecot.append(POLLED, mailfactory.referral().as_bytes())

    poll(config)

    sent = [record.getMessage() for record in caplog.records if record.getMessage().startswith(">")]
    searches = [line for line in sent if " SEARCH " in line]
    assert len(searches) >= 2  # list_new, then contains() before the move
    assert not [line for line in searches if "CHARSET" in line.upper()]


def test_unsolicited_fetch_ignored(config, dovecot, smtp_server, caplog):
    caplog.set_level(logging.DEBUG, logger="imapclient")
    bodies = [f"Subject: note {number}\r\nMessage-ID: <note-{number}@testshire.gov.example>\r\n\r\n"
              f"body {number}\r\n".encode() for number in range(1, 7)]
    for raw in bodies:
        dovecot.append(POLLED, raw)
    with dovecot.connect() as other:
        other.select_folder(POLLED)
        other.delete_messages([1, 2])
        other.expunge()
    # UIDs 3, 4, 5 and 6 now have sequence numbers 1, 2, 3 and 4.
    mailbox = build_mailbox(config)
    mailbox.open()
    try:
        refs = mailbox.list_new(0)
        with dovecot.connect() as other:
            other.select_folder(POLLED)
            other.add_flags([5], [b"\\Flagged"])
        raw = mailbox.fetch(refs[0])
    finally:
        mailbox.close()

    received = [record.getMessage() for record in caplog.records if record.name == "imapclient.imaplib"]
    # Dovecot reports the flag change as "* 3 FETCH (FLAGS (\Flagged))": sequence number 3
    # without a UID, the same number as the UID that was fetched.
    assert any("* 3 FETCH (FLAGS" in line for line in received)
    assert [ref.uid for ref in refs] == ["3", "4", "5", "6"]
    assert raw == bodies[2]
