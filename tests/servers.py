"""Real servers for the tests: a throw-away Dovecot IMAP server, an aiosmtpd SMTP server and PostgreSQL.

They listen only on 127.0.0.1, on ports chosen free at start. The mail servers use TLS
certificates that generate_tls_material() issues from a fresh self-signed CA, so clients can
verify the server against `ca_file` as they would in production.
"""

from __future__ import annotations

import hmac
import os
import secrets
import ssl
import threading
import time
from typing import NamedTuple

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

# The Dovecot server and the TLS material live in bot/localservers.py, so that the
# `ccas-bot bench` commands can start them too; they are re-exported here for the tests.
from bot.localservers import (  # noqa: F401
    CLIENT_TIMEOUT_SECONDS, LOOPBACK_HOST, SHUTDOWN_TIMEOUT_SECONDS, STARTUP_TIMEOUT_SECONDS,
    DovecotServer, ServerStartError, TlsMaterial, dovecot_version, find_dovecot_binary, find_free_port,
    generate_tls_material)

SKIP_SERVER_TESTS_VARIABLE = "CCAS_SKIP_SERVER_TESTS"


def require_dovecot_binary() -> str:
    """Return the dovecot binary's path, or end the calling test when Dovecot is missing.

    A missing Dovecot fails the test with a hint to run `make test`, which installs it.
    With CCAS_SKIP_SERVER_TESTS=1 set, the test is skipped instead.
    """
    binary = find_dovecot_binary()
    if binary is not None:
        return binary
    if os.environ.get(SKIP_SERVER_TESTS_VARIABLE) == "1":
        pytest.skip(f"dovecot is not installed and {SKIP_SERVER_TESTS_VARIABLE}=1 is set")
    pytest.fail(
        "dovecot is not installed, so the IMAP server tests cannot run. Run `make test`, "
        "which installs it with scripts/install-test-deps.sh, or set "
        f"{SKIP_SERVER_TESTS_VARIABLE}=1 to skip these tests.",
        pytrace=False,
    )



# --- SMTP -------------------------------------------------------------------------------------


class ReceivedMessage(NamedTuple):
    """One message as the SMTP server received it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    # time.time() when the server accepted the message, just before it replied 250.
    accepted_at: float = 0.0


class _CollectingHandler:
    """aiosmtpd handler that stores every message it accepts and wakes waiting threads."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.messages: list[ReceivedMessage] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # original_content is the message as sent, before aiosmtpd decodes anything.
        data = envelope.original_content or b""
        message = ReceivedMessage(envelope.mail_from or "", list(envelope.rcpt_tos), data, time.time())
        with self.condition:
            self.messages.append(message)
            self.condition.notify_all()
        return "250 Message accepted for delivery"


class SmtpServer:
    """An aiosmtpd SMTP server on 127.0.0.1 that offers STARTTLS and AUTH PLAIN/LOGIN.

    Every message it accepts is stored in `messages` as a ReceivedMessage
    (mail_from, rcpt_tos, data, accepted_at). stop() and start() again keep the port.
    AUTH is offered only after STARTTLS and accepts only
    `username` and `password`. With `require_starttls`, the server rejects every command
    but EHLO, HELO, NOOP, RSET, QUIT and STARTTLS until the client has issued STARTTLS.
    With `require_auth`, it rejects MAIL FROM until the client has authenticated.
    """

    def __init__(
        self,
        tls: TlsMaterial,
        *,
        username: str = "bot@council.example",
        password: str | None = None,
        require_starttls: bool = False,
        require_auth: bool = False,
    ) -> None:
        self.tls = tls
        self.ca_file = tls.ca_file
        self.host = LOOPBACK_HOST
        self.port: int | None = None
        self.username = username
        self.password = password if password is not None else secrets.token_urlsafe(12)
        self.require_starttls = require_starttls
        self.require_auth = require_auth
        self._handler = _CollectingHandler()
        self._controller: Controller | None = None

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: object,
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login_matches = hmac.compare_digest(auth_data.login or b"", self.username.encode())
        password_matches = hmac.compare_digest(auth_data.password or b"", self.password.encode())
        # handled=False makes aiosmtpd send the 535 reply; with handled=True it sends none.
        return AuthResult(success=login_matches and password_matches, handled=False)

    def start(self) -> None:
        """Start the server in a background thread; it is ready to accept connections on return."""
        if self._controller is not None:
            return
        # A restarted server keeps its port, so clients configured for it reach it again.
        if self.port is None:
            self.port = find_free_port()
        controller = Controller(
            self._handler,
            hostname=self.host,
            port=self.port,
            # A fixed name, because aiosmtpd's default, socket.getfqdn(), may wait on DNS.
            server_hostname="localhost",
            ready_timeout=STARTUP_TIMEOUT_SECONDS,
            tls_context=self.tls.server_context(),
            require_starttls=self.require_starttls,
            authenticator=self._authenticate,
            auth_required=self.require_auth,
            auth_require_tls=True,
        )
        try:
            controller.start()
        except Exception as error:
            raise ServerStartError(f"SMTP server did not start on {self.host}:{self.port}: {error}") from error
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def client_context(self) -> ssl.SSLContext:
        """Build a client TLS context that verifies this server against `ca_file`."""
        return self.tls.client_context()

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A copy of the messages received so far, in arrival order."""
        with self._handler.condition:
            return list(self._handler.messages)

    def wait_for(self, count: int, timeout_seconds: float = 5.0) -> list[ReceivedMessage]:
        """Wait until at least `count` messages have arrived and return all of them.

        Raises TimeoutError when fewer than `count` arrive within `timeout_seconds`.
        """
        with self._handler.condition:
            arrived = self._handler.condition.wait_for(
                lambda: len(self._handler.messages) >= count, timeout=timeout_seconds
            )
            if not arrived:
                raise TimeoutError(
                    f"SMTP server received {len(self._handler.messages)} of {count} expected "
                    f"messages within {timeout_seconds} s"
                )
            return list(self._handler.messages)


# --- PostgreSQL -------------------------------------------------------------------------------
# The server itself lives in bot/localservers.py, so that `ccas-bot bench load` can start one too.

from bot.localservers import PostgresServer  # noqa: E402  (re-exported for the tests)

TEST_DATABASE_VARIABLE = "CCAS_TEST_DATABASE"
TEMPLATE_DATABASE = "ccas_template"


def selected_test_database() -> str:
    """Which database the suite's stores use: "sqlite" (the default) or "postgresql"."""
    kind = os.environ.get(TEST_DATABASE_VARIABLE, "sqlite").strip().lower() or "sqlite"
    if kind not in {"sqlite", "postgresql"}:
        raise ValueError(f"{TEST_DATABASE_VARIABLE} must be 'sqlite' or 'postgresql', not {kind!r}")
    return kind


def start_postgres_with_template() -> PostgresServer:
    """Start a PostgreSQL server holding a migrated template database, which makes new databases fast."""
    from store.db import create_store_engine, upgrade_schema

    server = PostgresServer()
    server.start()
    try:
        server.create_database(TEMPLATE_DATABASE)
        engine = create_store_engine(server.url(TEMPLATE_DATABASE))
        try:
            upgrade_schema(engine)
        finally:
            engine.dispose()
    except BaseException:
        server.close()
        raise
    return server


class StoreRouter:
    """Sends every SQLite store a test opens to a fresh PostgreSQL database instead.

    install() replaces store.db.create_store_engine, and the copies that modules imported
    before, with a function that maps each SQLite URL to a database of its own, created from
    the migrated template the first time the test opens it. The same URL opened twice in one
    test reaches the same database; `sqlite:///:memory:` gets a new one each time. Between
    tests (begin_test() not called) URLs pass through unchanged.
    """

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self._mapping: dict[str, str] | None = None
        self._created: list[str] = []
        self._counter = 0
        self._original = None

    def install(self) -> None:
        import sys

        import store.db

        original = store.db.create_store_engine
        self._original = original

        def create_store_engine(url: str, busy_timeout_ms: int = 5000):
            return original(self.route(url), busy_timeout_ms)

        create_store_engine.__doc__ = original.__doc__
        for module in list(sys.modules.values()):
            if getattr(module, "create_store_engine", None) is original:
                setattr(module, "create_store_engine", create_store_engine)

    def route(self, url: str) -> str:
        if self._mapping is None or not url.startswith("sqlite"):
            return url
        if url in self._mapping and url != "sqlite:///:memory:":
            return self._mapping[url]
        self._counter += 1
        name = f"test_{os.getpid()}_{self._counter}"
        self._mapping[url] = self.server.create_database(name, template=TEMPLATE_DATABASE)
        self._created.append(name)
        return self._mapping[url]

    def begin_test(self) -> None:
        self._mapping = {}

    def end_test(self) -> None:
        self._mapping = None
        created, self._created = self._created, []
        for name in created:
            self.server.drop_database(name)
