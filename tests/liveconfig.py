"""Configuration for tests that run the bot against the real Dovecot and SMTP test servers."""

from __future__ import annotations

import os
from pathlib import Path

import mailfactory
from bot.app import build_context, build_mailbox, build_sender, open_store
from bot.bench_latency import config_toml
from bot.config import Config, config_from_mapping
from bot.intake import Intake, PollSummary

IMAP_PASSWORD_ENV = "TEST_IMAP_PASSWORD"
SMTP_PASSWORD_ENV = "TEST_SMTP_PASSWORD"
PROCESSED = "CCAS/Processed"
QUARANTINE = "CCAS/Quarantine"
# Dovecot's Maildir storage uses "." as its hierarchy delimiter.
SERVER_PROCESSED = "CCAS.Processed"
SERVER_QUARANTINE = "CCAS.Quarantine"


def settings(dovecot, smtp_server, folder: Path, *, imap: dict | None = None, bot: dict | None = None,
             store: dict | None = None) -> dict:
    """Return a configuration mapping for IMAP and SMTP; `imap`, `bot` and `store` override keys."""
    return {
        **mailfactory.council_settings(),
        "bot": {**(bot or {})},
        "store": {"url": f"sqlite:///{folder / 'store.sqlite3'}", **(store or {})},
        "mailbox": {"backend": "imap", "imap": {
            "host": dovecot.host, "port": dovecot.port, "security": "starttls",
            "username": dovecot.username, "password_env": IMAP_PASSWORD_ENV,
            "ca_file": str(dovecot.ca_file), "processed_folder": PROCESSED,
            "quarantine_folder": QUARANTINE, "timeout_seconds": 10, **(imap or {})}},
        "sending": {"backend": "smtp", "smtp": {
            "host": smtp_server.host, "port": smtp_server.port, "security": "starttls",
            "username": smtp_server.username, "password_env": SMTP_PASSWORD_ENV,
            "ca_file": str(smtp_server.ca_file), "timeout_seconds": 10}},
    }


def make_config(dovecot, smtp_server, folder: Path, monkeypatch, **overrides) -> Config:
    """Build a Config for the test servers and put their passwords in the environment."""
    monkeypatch.setenv(IMAP_PASSWORD_ENV, dovecot.password)
    monkeypatch.setenv(SMTP_PASSWORD_ENV, smtp_server.password)
    return config_from_mapping(settings(dovecot, smtp_server, folder, **overrides), base_dir=folder)


def write_config(dovecot, smtp_server, folder: Path, **overrides) -> Path:
    """Write a config.toml for the test servers into `folder` and return its path."""
    path = folder / "config.toml"
    path.write_text(config_toml(settings(dovecot, smtp_server, folder, **overrides)))
    return path


def server_env(dovecot, smtp_server) -> dict[str, str]:
    """Return this process's environment with the test servers' passwords added, for a child process."""
    return dict(os.environ, **{IMAP_PASSWORD_ENV: dovecot.password, SMTP_PASSWORD_ENV: smtp_server.password})


def poll(config: Config) -> PollSummary:
    """Run one poll as `ccas-bot poll --once` does."""
    store = open_store(config)
    return Intake(build_mailbox(config), build_context(config, store), build_sender(config)).poll_once()
