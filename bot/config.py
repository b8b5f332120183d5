"""Configuration: read once from TOML into a frozen, typed object.

A missing or invalid value raises ConfigError naming the key and the fix, so the
bot stops at start-up rather than half-way through a poll. Secrets are read from
the environment variables that the file names.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.errors import ConfigError


@dataclass(frozen=True)
class BotConfig:
    timezone: str = "Europe/London"
    poll_interval_seconds: int = 60
    misfire_grace_seconds: int = 30
    max_attempts: int = 5
    max_message_bytes: int = 25 * 1024 * 1024
    log_level: str = "INFO"
    acknowledgement_grace_hours: int = 24
    max_mail_per_case_per_hour: int = 5


@dataclass(frozen=True)
class StoreConfig:
    url: str = "sqlite:///var/ccas-bot.sqlite3"
    sqlite_busy_timeout_ms: int = 5000


@dataclass(frozen=True)
class CouncilConfig:
    la_name: str = "Severnshire County Council"
    ccas_inbox: str = "ccas@severnshire.gov.example"
    send_inbox: str = "send@severnshire.gov.example"
    portal_url: str = "https://childrensportal.severnshire.gov.example/"
    safeguarding_contact: str = "the Family Front Door on 01000 000000"
    duty_coordinators: tuple[str, ...] = ("ccas-duty@severnshire.gov.example",)
    panel_members: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrustedDomainsConfig:
    school: tuple[str, ...] = ()
    health: tuple[str, ...] = ()
    social_care: tuple[str, ...] = ()
    la: tuple[str, ...] = ("severnshire.gov.example",)
    send: tuple[str, ...] = ()

    def roles_of(self, domain: str) -> list[str]:
        """Return the roles whose trusted domains include `domain`, in a fixed order."""
        domain = domain.lower()
        roles = []
        for role in ("school", "health", "social_care", "la", "send"):
            if domain in getattr(self, role):
                roles.append(role)
        return roles


@dataclass(frozen=True)
class RegistersConfig:
    schools_csv: str = ""
    cases_csv: str = ""


@dataclass(frozen=True)
class FolderMailboxConfig:
    inbox_path: str = "var/mailbox/inbox"
    processed_path: str = "var/mailbox/processed"
    quarantine_path: str = "var/mailbox/quarantine"


@dataclass(frozen=True)
class ImapMailboxConfig:
    host: str = "imap.example"
    port: int = 993
    security: str = "tls"
    username: str = ""
    auth: str = "password"
    password_env: str = "CCAS_IMAP_PASSWORD"
    oauth2_token_env: str = "CCAS_IMAP_TOKEN"
    ca_file: str = ""
    folder: str = "INBOX"
    processed_folder: str = "CCAS/Processed"
    quarantine_folder: str = "CCAS/Quarantine"
    timeout_seconds: int = 30


@dataclass(frozen=True)
class MailboxConfig:
    backend: str = "folder"
    folder: FolderMailboxConfig = field(default_factory=FolderMailboxConfig)
    imap: ImapMailboxConfig = field(default_factory=ImapMailboxConfig)


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "smtp.example"
    port: int = 587
    security: str = "starttls"
    username: str = ""
    password_env: str = "CCAS_SMTP_PASSWORD"
    ca_file: str = ""
    timeout_seconds: int = 30


@dataclass(frozen=True)
class SendingConfig:
    backend: str = "folder"
    outbox_path: str = "var/outbox"
    loop_header: str = "X-CCAS-Bot-Loop"
    smtp: SmtpConfig = field(default_factory=SmtpConfig)


@dataclass(frozen=True)
class Config:
    bot: BotConfig = field(default_factory=BotConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    council: CouncilConfig = field(default_factory=CouncilConfig)
    trusted_domains: TrustedDomainsConfig = field(default_factory=TrustedDomainsConfig)
    registers: RegistersConfig = field(default_factory=RegistersConfig)
    mailbox: MailboxConfig = field(default_factory=MailboxConfig)
    sending: SendingConfig = field(default_factory=SendingConfig)
    base_dir: Path = Path(".")

    def path(self, value: str) -> Path:
        """Resolve a path from the file against the folder that holds the file."""
        candidate = Path(value).expanduser()
        return candidate if candidate.is_absolute() else self.base_dir / candidate

    @property
    def store_url(self) -> str:
        """The store URL with a relative SQLite path resolved against base_dir."""
        prefix = "sqlite:///"
        url = self.store.url
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite:///:memory:":
            return prefix + str(self.path(url[len(prefix):]))
        return url


_CHOICES = {
    "bot.log_level": {"DEBUG", "INFO", "WARNING", "ERROR"},
    "mailbox.backend": {"folder", "imap"},
    "mailbox.imap.security": {"tls", "starttls"},
    "mailbox.imap.auth": {"password", "xoauth2"},
    "sending.backend": {"folder", "smtp"},
    "sending.smtp.security": {"tls", "starttls"},
}

_POSITIVE = {
    "bot.poll_interval_seconds", "bot.misfire_grace_seconds", "bot.max_attempts",
    "bot.max_message_bytes", "bot.acknowledgement_grace_hours", "bot.max_mail_per_case_per_hour",
    "store.sqlite_busy_timeout_ms", "mailbox.imap.port",
    "mailbox.imap.timeout_seconds", "sending.smtp.port", "sending.smtp.timeout_seconds",
}


def load_config(path: str | Path | None) -> Config:
    """Read and validate a configuration file; None gives the defaults with base_dir '.'."""
    if path is None:
        return _validate(Config())

    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("--config", f"file {str(path)!r} not found",
                          "copy config.example.toml and edit it") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError("--config", f"{path} is not valid TOML ({error})") from None

    config = _build(Config, data, prefix="")
    config = dataclasses.replace(config, base_dir=path.resolve().parent)
    return _validate(config)


def config_from_mapping(data: dict[str, Any], base_dir: Path) -> Config:
    """Build a configuration from an already-parsed mapping (used by eval and tests)."""
    config = dataclasses.replace(_build(Config, data, prefix=""), base_dir=base_dir)
    return _validate(config)


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(prefix.rstrip("."), "must be a table")

    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.name != "base_dir"}
    for key in data:
        if key not in known:
            raise ConfigError(prefix + key, "unknown key",
                              "check the spelling against config.example.toml")

    values = {}
    for name in known & data.keys():
        values[name] = _convert(hints[name], data[name], prefix + name)
    return cls(**values)


def _convert(hint: Any, value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key + ".")
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(key, f"must be a list of strings, got {value!r}")
        return tuple(v.strip().lower() if "@" in v or "." in v else v for v in value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"must be a whole number, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"must be a string, got {value!r}")
        return value
    raise ConfigError(key, f"has an unsupported type {hint!r}")


def _validate(config: Config) -> Config:
    for key, allowed in _CHOICES.items():
        value = _lookup(config, key)
        if value not in allowed:
            raise ConfigError(key, f"{value!r} is not one of {sorted(allowed)}")

    for key in _POSITIVE:
        if _lookup(config, key) <= 0:
            raise ConfigError(key, "must be greater than zero")

    try:
        zoneinfo.ZoneInfo(config.bot.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError("bot.timezone", f"unknown timezone {config.bot.timezone!r}",
                          "use an IANA name such as 'Europe/London'") from None

    for key in ("council.ccas_inbox", "council.send_inbox"):
        if "@" not in _lookup(config, key):
            raise ConfigError(key, "must be an email address")

    if config.mailbox.backend == "imap" and not config.mailbox.imap.username:
        raise ConfigError("mailbox.imap.username", "is empty", "set the mailbox's login name")
    return config


def _lookup(config: Config, dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def read_secret(env_name: str, key: str) -> str:
    """Return the secret held in environment variable `env_name`, named by config `key`."""
    value = os.environ.get(env_name, "")
    if not value:
        raise ConfigError(key, f"environment variable {env_name} is not set",
                          f"export {env_name} before starting ccas-bot")
    return value
