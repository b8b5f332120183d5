"""Wiring: build the store, mailbox, sender and pipeline context from a Config."""

from __future__ import annotations

from datetime import date

from sqlalchemy.exc import OperationalError

from bot.config import Config, read_secret
from bot.errors import RemoteError
from bot.mailboxes.folder import FolderMailbox
from bot.mailboxes.imap import ImapMailbox
from bot.pipeline import Context
from parsers.schools import SchoolIndex
from replies.render import Renderer
from replies.send import FolderSender, SmtpSender
from store.crypto import attach_cipher, check_key, cipher_from_env
from store.db import create_store_engine, upgrade_schema
from store.records import Store


def open_store(config: Config) -> Store:
    """Open the configured store and bring its schema up to date; a locked database raises RemoteError."""
    engine = create_store_engine(config.store_url, config.store.sqlite_busy_timeout_ms)
    try:
        upgrade_schema(engine)
    except OperationalError as error:
        message = str(error.orig).lower()
        if "locked" in message or "busy" in message:
            raise RemoteError("database locked") from error
        raise
    # A missing or wrong encryption key stops here with a ConfigError, not half-way through a poll.
    attach_cipher(engine, cipher_from_env(config.store.encryption_key_env))
    check_key(engine)
    return Store(engine)


def build_context(config: Config, store: Store, today: date | None = None) -> Context:
    schools = SchoolIndex.from_rows([
        {"urn": s.urn, "laestab": s.laestab, "name": s.name, "domain": s.domain,
         "postcode": s.postcode, "status": s.status}
        for s in store.list_schools()
    ])
    return Context(config=config, store=store, schools=schools, renderer=Renderer(),
                   today=today or date.today())


def build_mailbox(config: Config):
    if config.mailbox.backend == "graph":
        from bot.microsoft import build_graph_mailbox
        return build_graph_mailbox(config)
    if config.mailbox.backend == "ews":
        from bot.microsoft import build_ews_mailbox
        return build_ews_mailbox(config)
    if config.mailbox.backend == "imap":
        imap = config.mailbox.imap
        if imap.auth == "xoauth2" and imap.oauth2_tenant_id:
            from bot.microsoft import imap_oauth2_token
            secret = imap_oauth2_token(config)
        elif imap.auth == "xoauth2":
            secret = read_secret(imap.oauth2_token_env, "mailbox.imap.oauth2_token_env")
        else:
            secret = read_secret(imap.password_env, "mailbox.imap.password_env")
        return ImapMailbox(imap, secret, config.bot.max_message_bytes)

    folder = config.mailbox.folder
    return FolderMailbox(config.path(folder.inbox_path), config.path(folder.processed_path),
                         config.path(folder.quarantine_path), config.bot.max_message_bytes)


def build_sender(config: Config):
    if config.sending.backend == "graph":
        from bot.microsoft import build_graph_sender
        return build_graph_sender(config)
    if config.sending.backend == "ews":
        from bot.microsoft import build_ews_sender
        return build_ews_sender(config)
    if config.sending.backend == "smtp":
        smtp = config.sending.smtp
        password = read_secret(smtp.password_env, "sending.smtp.password_env") if smtp.username else ""
        return SmtpSender(host=smtp.host, port=smtp.port, security=smtp.security,
                          username=smtp.username, password=password, ca_file=smtp.ca_file,
                          timeout_seconds=smtp.timeout_seconds)
    return FolderSender(config.path(config.sending.outbox_path))
