"""`ccas-bot health`: check that the bot could run, one line per check, for operators and monitoring.

The checks change nothing the bot would not change at start-up: the store is read,
never created or upgraded, and no mail is sent. Opening the mailbox creates the
processed and quarantine folders when they are missing, as every poll does.
Each network check is bounded by the configured timeouts (`mailbox.imap.timeout_seconds`,
`sending.smtp.timeout_seconds`, `store.sqlite_busy_timeout_ms`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.config import Config, load_config
from bot.errors import CcasError

EXIT_OK = 0
EXIT_FAILED = 1


class CheckFailed(Exception):
    """Raised by a check with the one-line reason it failed."""


class CheckSkipped(Exception):
    """Raised by a check that has no way to test the configured backend, with the reason."""


def register(subparsers) -> None:
    health = subparsers.add_parser(
        "health", help="check the configuration, store, mailbox and SMTP server; exit 1 when one fails")
    health.set_defaults(handler=run_health)


def run_health(args) -> int:
    """Print one line per check and return 0 when all pass, 1 when any fails."""
    logging.basicConfig(level="WARNING")
    # imapclient logs protocol lines at DEBUG, which carry addresses and subjects.
    logging.getLogger("imapclient").setLevel(logging.WARNING)

    try:
        config = load_config(args.config)
    except CcasError as error:
        _print_line("FAIL", "config", 0.0, str(error))
        return EXIT_FAILED
    _print_line("ok", "config", 0.0, f"{args.config} loaded")

    checks: list[tuple[str, Callable[[Config], str]]] = [
        ("store", check_store),
        ("mailbox", check_mailbox),
        ("sending", check_sending),
    ]
    failed = 0
    for name, check in checks:
        started = time.monotonic()
        try:
            detail = check(config)
        except (CheckFailed, CcasError) as error:
            _print_line("FAIL", name, time.monotonic() - started, str(error))
            failed += 1
        except CheckSkipped as reason:
            _print_line("skip", name, time.monotonic() - started, str(reason))
        else:
            _print_line("ok", name, time.monotonic() - started, detail)
    return EXIT_FAILED if failed else EXIT_OK


def _print_line(status: str, name: str, seconds: float, detail: str) -> None:
    print(f"{status:<5} {name:<8} {seconds:6.2f} s  {detail}", flush=True)


def check_store(config: Config) -> str:
    """Check that the store opens and its schema is at the newest migration, without changing it."""
    from store.db import MIGRATIONS, create_store_engine

    url = config.store_url
    display_url = make_url(url).render_as_string(hide_password=True)
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        path = Path(url[len("sqlite:///"):])
        if not path.is_file():
            raise CheckFailed(f"database file {path} not found; `ccas-bot poll --once` creates it")

    alembic_config = AlembicConfig()
    alembic_config.set_main_option("script_location", str(MIGRATIONS))
    newest = set(ScriptDirectory.from_config(alembic_config).get_heads())
    engine = create_store_engine(url, config.store.sqlite_busy_timeout_ms)
    try:
        with engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as error:
        raise CheckFailed(f"{display_url} could not be read: {type(error).__name__}") from None
    finally:
        engine.dispose()

    if current != newest:
        raise CheckFailed(f"{display_url} is at migration {_revisions(current)}, the newest is "
                          f"{_revisions(newest)}; `ccas-bot run` or `poll --once` upgrades it")
    return f"{display_url} at the newest migration {_revisions(current)}"


def _revisions(revisions: set[str]) -> str:
    return ",".join(sorted(revisions)) or "none"


def check_mailbox(config: Config) -> str:
    """Log in to the mailbox and select its folder, as the start of a poll does."""
    from bot.app import build_mailbox

    mailbox = build_mailbox(config)
    try:
        folder, uidvalidity = mailbox.open()
    finally:
        mailbox.close()
    where = folder
    if config.mailbox.backend == "imap":
        imap = config.mailbox.imap
        where = f"{imap.host}:{imap.port} folder {folder}"
    validity = f" (UIDVALIDITY {uidvalidity})" if uidvalidity is not None else ""
    return f"{config.mailbox.backend} {where} opened{validity}"


def check_sending(config: Config) -> str:
    """Log in to the SMTP server without sending, or check that the outbox folder is writable."""
    from bot.app import build_sender

    sender = build_sender(config)
    check = getattr(sender, "check", None)
    if check is not None:
        check()
        smtp = config.sending.smtp
        return f"{config.sending.backend} {smtp.host}:{smtp.port} accepted the connection and login"

    outbox = getattr(sender, "outbox", None)
    if outbox is None:
        raise CheckSkipped(f"no check for sending backend {config.sending.backend!r}")
    # The sender creates a missing outbox folder, so the nearest existing folder must be writable.
    existing = Path(outbox)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise CheckFailed(f"outbox folder {outbox} cannot be created or written: {existing} is not a writable folder")
    return f"folder {outbox} writable"
