"""Delivery of outgoing messages: by SMTP, or as .eml files in an outbox folder."""

from __future__ import annotations

import smtplib
import socket
import ssl
from pathlib import Path
from typing import Protocol

from bot.errors import RemoteError, describe_error


class Sender(Protocol):
    def send(self, raw: bytes, recipient: str, envelope_from: str, message_id: str) -> None:
        """Deliver one message; raise RemoteError when the remote system failed."""


class FolderSender:
    """Writes each message to `<outbox>/<message id>.eml`: the embedded default and the demo."""

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox

    def send(self, raw: bytes, recipient: str, envelope_from: str, message_id: str) -> None:
        self.outbox.mkdir(parents=True, exist_ok=True)
        # The Message-ID was made by the bot (make_msgid), but is still kept to safe characters.
        name = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in message_id)
        target = self.outbox / f"{name}.eml"
        partial = target.with_suffix(".part")
        partial.write_bytes(raw)
        partial.replace(target)


class RecordingSender:
    """Keeps messages in memory and sends nothing: used by `ccas-bot eval`."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def send(self, raw: bytes, recipient: str, envelope_from: str, message_id: str) -> None:
        self.sent.append((recipient, raw))


class SmtpSender:
    """Sends through an SMTP server over TLS (implicit or STARTTLS), verifying its certificate."""

    def __init__(self, *, host: str, port: int, security: str, username: str, password: str,
                 ca_file: str, timeout_seconds: int) -> None:
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
        self.timeout_seconds = timeout_seconds
        self.tls_context = ssl.create_default_context(cafile=ca_file or None)

    def send(self, raw: bytes, recipient: str, envelope_from: str, message_id: str) -> None:
        try:
            with self._connect() as client:
                if self.username:
                    client.login(self.username, self.password)
                client.sendmail(envelope_from, [recipient], raw)
        except smtplib.SMTPRecipientsRefused as error:
            raise RemoteError(f"smtp recipient refused: {_codes(error.recipients)}") from error
        except (smtplib.SMTPException, OSError, socket.timeout) as error:
            raise RemoteError(f"smtp failed on {self.host}:{self.port}: {describe_error(error)}") from error

    def check(self) -> None:
        """Connect, start TLS and log in as `send` does, but send nothing; raise RemoteError on failure."""
        try:
            with self._connect() as client:
                if self.username:
                    client.login(self.username, self.password)
                client.noop()
        except (smtplib.SMTPException, OSError) as error:
            raise RemoteError(f"smtp check failed: {type(error).__name__}") from error

    def _connect(self) -> smtplib.SMTP:
        if self.security == "tls":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_seconds,
                                    context=self.tls_context)
        client = smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds)
        try:
            client.ehlo()
            client.starttls(context=self.tls_context)
            client.ehlo()
        except Exception:
            client.close()
            raise
        return client


def _codes(recipients: dict) -> str:
    return ",".join(str(code) for code, _ in recipients.values())
