"""Behaviour of the test servers in tests/servers.py, which the other test modules rely on."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

import servers
from servers import DovecotServer, SmtpServer, TlsMaterial

# A referral with an 8-bit UTF-8 body, so that a server or helper which rewrites line
# endings, encodings or non-ASCII bytes fails the byte-for-byte comparisons below.
REFERRAL_MESSAGE = (
    b"From: Jo Bloggs <jo.bloggs@school.example>\r\n"
    b"To: CCAS Panel <ccas@council.example>\r\n"
    b"Subject: CCAS referral for pupil A.B.\r\n"
    b"Date: Mon, 06 Jan 2025 09:15:00 +0000\r\n"
    b"Message-ID: <referral-0001@school.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Dear panel,\r\n"
    b"\r\n"
    b"Please find the referral for the pupil we discussed \xe2\x80\x94 attendance 42%.\r\n"
    b".A line that starts with a dot.\r\n"
    b"\r\n"
    b"Kind regards,\r\n"
    b"Jo\r\n"
)


def short_message(subject: bytes) -> bytes:
    return (
        b"From: Sam Example <sam@school.example>\r\n"
        b"To: ccas@council.example\r\n"
        b"Subject: " + subject + b"\r\n"
        b"\r\n"
        b"Body of " + subject + b".\r\n"
    )


# --- Dovecot: installation check ---


def test_missing_dovecot_fails_with_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(servers, "find_dovecot_binary", lambda: None)
    monkeypatch.delenv(servers.SKIP_SERVER_TESTS_VARIABLE, raising=False)

    with pytest.raises(pytest.fail.Exception, match="make test"):
        servers.require_dovecot_binary()


def test_missing_dovecot_skips_when_opted_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(servers, "find_dovecot_binary", lambda: None)
    monkeypatch.setenv(servers.SKIP_SERVER_TESTS_VARIABLE, "1")

    with pytest.raises(pytest.skip.Exception, match="CCAS_SKIP_SERVER_TESTS=1"):
        servers.require_dovecot_binary()


# --- Dovecot: connections and authentication ---


def test_imap_starttls_login_verifies_ca(dovecot: DovecotServer) -> None:
    client = IMAPClient(dovecot.host, port=dovecot.port, ssl=False, timeout=10)
    try:
        assert b"STARTTLS" in client.capabilities()

        client.starttls(ssl.create_default_context(cafile=str(dovecot.ca_file)))
        client.login(dovecot.username, dovecot.password)

        assert client.select_folder("INBOX")[b"EXISTS"] == 0
    finally:
        client.logout()


def test_imap_implicit_tls_login(dovecot: DovecotServer) -> None:
    context = ssl.create_default_context(cafile=str(dovecot.ca_file))
    with IMAPClient(dovecot.host, port=dovecot.tls_port, ssl=True, ssl_context=context, timeout=10) as client:
        client.login(dovecot.username, dovecot.password)

        assert client.select_folder("INBOX")[b"EXISTS"] == 0


def test_imap_tls_rejects_unknown_ca(dovecot: DovecotServer) -> None:
    # The system trust store does not contain the test CA, so verification must fail.
    with pytest.raises(ssl.SSLCertVerificationError):
        IMAPClient(
            dovecot.host,
            port=dovecot.tls_port,
            ssl=True,
            ssl_context=ssl.create_default_context(),
            timeout=10,
        )


def test_imap_rejects_wrong_password(dovecot: DovecotServer) -> None:
    with dovecot.connect(login=False) as client:
        with pytest.raises(LoginError):
            client.login(dovecot.username, dovecot.password + "-wrong")


def test_imap_xoauth2_accepts_signed_token(dovecot: DovecotServer) -> None:
    with dovecot.connect(starttls=True, login=False) as client:
        client.oauth2_login(dovecot.username, dovecot.make_oauth2_token())

        assert client.select_folder("INBOX")[b"EXISTS"] == 0


@pytest.mark.parametrize(
    "token_options",
    [
        pytest.param({"expires_in_seconds": -60}, id="expired"),
        pytest.param({"signing_key": b"a key the server does not have"}, id="foreign-key"),
        pytest.param({"username": "someone.else@council.example"}, id="other-user"),
    ],
)
def test_imap_xoauth2_rejects_bad_token(dovecot: DovecotServer, token_options: dict[str, object]) -> None:
    token = dovecot.make_oauth2_token(**token_options)

    with dovecot.connect(login=False) as client:
        with pytest.raises(LoginError):
            client.oauth2_login(dovecot.username, token)


# --- Dovecot: mailbox operations ---


def test_append_then_fetch_returns_identical_bytes(dovecot: DovecotServer) -> None:
    dovecot.append("INBOX", REFERRAL_MESSAGE)

    uids = dovecot.list_uids("INBOX")
    assert len(uids) == 1
    assert dovecot.fetch_raw("INBOX", uids[0]) == REFERRAL_MESSAGE

    with dovecot.connect() as client:
        client.select_folder("INBOX", readonly=True)
        response = client.fetch(uids, ["BODY.PEEK[]", "FLAGS"])
    assert response[uids[0]][b"BODY[]"] == REFERRAL_MESSAGE
    assert b"\\Seen" not in response[uids[0]][b"FLAGS"]


def test_select_reports_uidvalidity(dovecot: DovecotServer) -> None:
    with dovecot.connect() as client:
        status = client.select_folder("INBOX")

    assert status[b"UIDVALIDITY"] > 0
    assert status[b"UIDNEXT"] == 1


def test_move_to_created_folder(dovecot: DovecotServer) -> None:
    dovecot.append("INBOX", REFERRAL_MESSAGE)
    dovecot.create_folder("Processed")

    with dovecot.connect() as client:
        assert b"MOVE" in client.capabilities()
        client.select_folder("INBOX")
        (uid,) = client.search("ALL")
        client.move([uid], "Processed")

    assert dovecot.list_uids("INBOX") == []
    assert dovecot.folder_messages("Processed") == [REFERRAL_MESSAGE]


def test_folder_helpers_list_in_uid_order(dovecot: DovecotServer) -> None:
    dovecot.create_folder("Triage")
    for subject in (b"first", b"second", b"third"):
        dovecot.append("Triage", short_message(subject))

    uids = dovecot.list_uids("Triage")

    assert len(uids) == 3
    assert uids == sorted(uids)
    assert dovecot.folder_messages("Triage") == [
        short_message(b"first"),
        short_message(b"second"),
        short_message(b"third"),
    ]
    assert dovecot.folder_messages("INBOX") == []
    with pytest.raises(KeyError):
        dovecot.fetch_raw("Triage", uids[-1] + 100)


def test_maildir_root_contains_appended_mail(dovecot: DovecotServer) -> None:
    dovecot.append("INBOX", REFERRAL_MESSAGE)

    stored = list((dovecot.maildir_root / "cur").iterdir()) + list((dovecot.maildir_root / "new").iterdir())

    assert len(stored) == 1


def test_stop_then_restart_keeps_mail(dovecot: DovecotServer) -> None:
    # One test for both, because each graceful stop of Dovecot takes about a second.
    dovecot.append("INBOX", REFERRAL_MESSAGE)
    with dovecot.connect() as client:
        uidvalidity_before = client.select_folder("INBOX")[b"UIDVALIDITY"]
    ports_before = (dovecot.port, dovecot.tls_port)

    dovecot.stop()

    assert not dovecot.is_running()
    with pytest.raises(ConnectionRefusedError):
        dovecot.connect()

    dovecot.restart()

    assert dovecot.is_running()
    assert (dovecot.port, dovecot.tls_port) == ports_before
    with dovecot.connect(starttls=True) as client:
        assert client.select_folder("INBOX")[b"UIDVALIDITY"] == uidvalidity_before
    assert dovecot.folder_messages("INBOX") == [REFERRAL_MESSAGE]


# --- SMTP ---


def test_smtp_starttls_auth_delivers_message(smtp_server: SmtpServer) -> None:
    context = ssl.create_default_context(cafile=str(smtp_server.ca_file))
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.ehlo()
        assert not client.has_extn("auth")

        client.starttls(context=context)
        client.ehlo()
        assert client.has_extn("auth")
        client.login(smtp_server.username, smtp_server.password)
        client.sendmail("ccas@council.example", ["jo.bloggs@school.example"], REFERRAL_MESSAGE)

    (received,) = smtp_server.wait_for(1, timeout_seconds=5)
    assert received.mail_from == "ccas@council.example"
    assert received.rcpt_tos == ["jo.bloggs@school.example"]
    assert received.data == REFERRAL_MESSAGE
    assert smtp_server.messages == [received]


def test_smtp_rejects_wrong_password(smtp_server: SmtpServer) -> None:
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.starttls(context=smtp_server.client_context())
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login(smtp_server.username, smtp_server.password + "-wrong")


def test_smtp_require_starttls_rejects_plain_session(tls_material: TlsMaterial) -> None:
    with SmtpServer(tls_material, require_starttls=True) as server:
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            client.ehlo()
            code, _ = client.mail("ccas@council.example")
            assert code == 530

        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            client.starttls(context=server.client_context())
            client.login(server.username, server.password)
            client.sendmail("ccas@council.example", ["jo.bloggs@school.example"], REFERRAL_MESSAGE)

        assert len(server.wait_for(1, timeout_seconds=5)) == 1


def test_smtp_require_auth_rejects_anonymous_sender(tls_material: TlsMaterial) -> None:
    with SmtpServer(tls_material, require_auth=True) as server:
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            client.starttls(context=server.client_context())
            client.ehlo()
            code, _ = client.mail("ccas@council.example")

        assert code == 530
        assert server.messages == []


def test_smtp_wait_for_times_out(smtp_server: SmtpServer) -> None:
    with pytest.raises(TimeoutError):
        smtp_server.wait_for(1, timeout_seconds=0.1)


# --- shared corpus ---


def test_shared_corpus_skips_missing_item(shared_corpus: Callable[[str], Path]) -> None:
    with pytest.raises(pytest.skip.Exception):
        shared_corpus("no-such-corpus-item")
