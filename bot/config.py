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
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
    # Several workers (PostgreSQL only): this worker's name, and how long its claims last.
    worker_id: str = ""
    claim_timeout_seconds: int = 300
    claim_batch_size: int = 20


@dataclass(frozen=True)
class StoreConfig:
    url: str = "sqlite:///var/ccas-bot.sqlite3"
    sqlite_busy_timeout_ms: int = 5000
    # The environment variable holding the Fernet keys for message bytes; "" stores them plain.
    encryption_key_env: str = ""


@dataclass(frozen=True)
class RetentionConfig:
    """How long each kind of personal data is kept; store/retention.py purges what is older."""

    enabled: bool = True
    raw_messages_days: int = 365
    outbox_bodies_days: int = 365
    quarantined_messages_days: int = 90
    message_details_days: int = 730
    closed_cases_years: int = 6
    closed_cases_until_age_years: int = 25
    audit_events_years: int = 7
    sign_in_attempts_days: int = 90
    batch_size: int = 500


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
class CategoryRoute:
    """The route for messages of one category, before the case-specific rules."""

    acknowledge: bool = False
    agenda: str = "none"
    review: bool = False
    forward_to_send: bool = False


@dataclass(frozen=True)
class RoutingConfig:
    """The routing policy. The defaults are the CCAS policy."""

    support_request: CategoryRoute = CategoryRoute(acknowledge=True, agenda="new_referrals")
    change_of_circumstances: CategoryRoute = CategoryRoute(acknowledge=True, agenda="existing_placements")
    ehcp: CategoryRoute = CategoryRoute(acknowledge=True, forward_to_send=True)
    school_notification: CategoryRoute = CategoryRoute(acknowledge=True)
    query: CategoryRoute = CategoryRoute(acknowledge=True, review=True)
    action_update: CategoryRoute = CategoryRoute(agenda="actions_review")
    parent_contact: CategoryRoute = CategoryRoute(review=True)
    auto_reply: CategoryRoute = CategoryRoute()
    bounce: CategoryRoute = CategoryRoute(review=True)
    secure_message: CategoryRoute = CategoryRoute(review=True)
    unrelated: CategoryRoute = CategoryRoute()
    ehcp_assessment: str = "panel"
    review_below_confidence_percent: int = 50
    default_protective_marking: str = ""
    # When a message needs a person, its replies wait as drafts for a coordinator to approve.
    # The urgent alert to the duty coordinators is always sent at once.
    hold_replies_for_review: bool = True


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
    oauth2_tenant_id: str = ""
    oauth2_client_id: str = ""
    oauth2_credential: str = "certificate"
    oauth2_certificate_env: str = "CCAS_IMAP_OAUTH2_CERTIFICATE"
    oauth2_client_secret_env: str = "CCAS_IMAP_OAUTH2_CLIENT_SECRET"
    oauth2_scope: str = "https://outlook.office365.com/.default"
    oauth2_authority_url: str = "https://login.microsoftonline.com"
    oauth2_ca_file: str = ""
    ca_file: str = ""
    folder: str = "INBOX"
    processed_folder: str = "CCAS/Processed"
    quarantine_folder: str = "CCAS/Quarantine"
    timeout_seconds: int = 30
    idle: bool = False
    idle_timeout_seconds: int = 600
    reconnect_max_seconds: int = 300


# RFC 2177 advises clients to re-issue IDLE at least every 29 minutes, because a
# server may log out a client that has been idle for 30.
MAX_IDLE_TIMEOUT_SECONDS = 29 * 60


@dataclass(frozen=True)
class GraphMailboxConfig:
    tenant_id: str = ""
    client_id: str = ""
    credential: str = "certificate"
    certificate_env: str = "CCAS_GRAPH_CERTIFICATE"
    client_secret_env: str = "CCAS_GRAPH_CLIENT_SECRET"
    mailbox: str = ""
    folder: str = "inbox"
    processed_folder: str = "CCAS/Processed"
    quarantine_folder: str = "CCAS/Quarantine"
    page_size: int = 50
    timeout_seconds: int = 30
    max_retries: int = 3
    max_retry_wait_seconds: int = 120
    authority_url: str = "https://login.microsoftonline.com"
    graph_url: str = "https://graph.microsoft.com/v1.0"
    ca_file: str = ""


@dataclass(frozen=True)
class EwsMailboxConfig:
    service_endpoint: str = ""
    username: str = ""
    password_env: str = "CCAS_EWS_PASSWORD"
    auth: str = "ntlm"
    access_type: str = "delegate"
    mailbox: str = ""
    folder: str = "inbox"
    processed_folder: str = "CCAS/Processed"
    quarantine_folder: str = "CCAS/Quarantine"
    ca_file: str = ""
    timeout_seconds: int = 30


@dataclass(frozen=True)
class MailboxConfig:
    backend: str = "folder"
    folder: FolderMailboxConfig = field(default_factory=FolderMailboxConfig)
    imap: ImapMailboxConfig = field(default_factory=ImapMailboxConfig)
    graph: GraphMailboxConfig = field(default_factory=GraphMailboxConfig)
    ews: EwsMailboxConfig = field(default_factory=EwsMailboxConfig)


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
class LimitsConfig:
    """Bounds on reading attachments; the defaults equal parsers.attachments.AttachmentLimits."""

    attachment_max_bytes: int = 10 * 1024 * 1024
    attachment_max_pages: int = 20
    attachment_time_budget_ms: int = 5000


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class PanelConfig:
    """The weekly panel meeting, its review rule, action reminders and school term dates."""

    meeting_weekday: str = "wednesday"
    meeting_time: str = "10:00"
    meeting_duration_minutes: int = 120
    location: str = "County Hall, Committee Room 2"
    review_interval_weeks: int = 12
    no_meeting_dates: tuple[str, ...] = ()
    agenda_child_names: str = "first_name_initial"
    action_reminder_days: int = 3
    term_dates_file: str = ""


@dataclass(frozen=True)
class WebOidcConfig:
    """Optional sign-in with Microsoft Entra ID; app roles or group ids map to the web app's roles."""

    tenant_id: str = ""
    client_id: str = ""
    client_secret_env: str = "CCAS_WEB_OIDC_SECRET"
    redirect_url: str = ""
    authority_url: str = "https://login.microsoftonline.com"
    admin_app_roles: tuple[str, ...] = ()
    coordinator_app_roles: tuple[str, ...] = ()
    panel_member_app_roles: tuple[str, ...] = ()
    admin_groups: tuple[str, ...] = ()
    coordinator_groups: tuple[str, ...] = ()
    panel_member_groups: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.tenant_id and self.client_id)


@dataclass(frozen=True)
class WebConfig:
    """The coordinators' web app served by `ccas-bot web`."""

    host: str = "127.0.0.1"
    port: int = 8080
    threads: int = 8
    secret_key_env: str = "CCAS_WEB_SECRET_KEY"
    secure_cookies: bool = True
    session_idle_minutes: int = 30
    session_lifetime_minutes: int = 600
    sign_in_max_failures: int = 5
    sign_in_max_failures_per_address: int = 20
    sign_in_window_minutes: int = 15
    trusted_proxy_count: int = 0
    # The address coordinators open the web app at, such as "https://ccas.council.example".
    # Empty: the urgent alert points to `ccas-bot queue` instead of a web page.
    base_url: str = ""
    oidc: WebOidcConfig = field(default_factory=WebOidcConfig)


@dataclass(frozen=True)
class Config:
    bot: BotConfig = field(default_factory=BotConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    council: CouncilConfig = field(default_factory=CouncilConfig)
    trusted_domains: TrustedDomainsConfig = field(default_factory=TrustedDomainsConfig)
    registers: RegistersConfig = field(default_factory=RegistersConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    mailbox: MailboxConfig = field(default_factory=MailboxConfig)
    sending: SendingConfig = field(default_factory=SendingConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    panel: PanelConfig = field(default_factory=PanelConfig)
    web: WebConfig = field(default_factory=WebConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
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
    "mailbox.backend": {"folder", "imap", "graph", "ews"},
    "mailbox.imap.security": {"tls", "starttls"},
    "mailbox.imap.auth": {"password", "xoauth2"},
    "mailbox.imap.oauth2_credential": {"certificate", "secret"},
    "mailbox.graph.credential": {"certificate", "secret"},
    "mailbox.ews.auth": {"ntlm", "basic"},
    "mailbox.ews.access_type": {"delegate", "impersonation"},
    "sending.backend": {"folder", "smtp", "graph", "ews"},
    "sending.smtp.security": {"tls", "starttls"},
    "routing.ehcp_assessment": {"panel", "review", "send"},
    "routing.default_protective_marking": {"", "OFFICIAL", "OFFICIAL-SENSITIVE"},
    "panel.meeting_weekday": set(WEEKDAYS),
    "panel.agenda_child_names": {"first_name_initial", "none"},
}

_POSITIVE = {
    "bot.poll_interval_seconds", "bot.misfire_grace_seconds", "bot.max_attempts",
    "bot.max_message_bytes", "bot.acknowledgement_grace_hours", "bot.max_mail_per_case_per_hour",
    "bot.claim_timeout_seconds", "bot.claim_batch_size",
    "store.sqlite_busy_timeout_ms", "mailbox.imap.port",
    "mailbox.imap.timeout_seconds", "sending.smtp.port", "sending.smtp.timeout_seconds",
    "mailbox.imap.idle_timeout_seconds", "mailbox.imap.reconnect_max_seconds",
    "mailbox.graph.page_size", "mailbox.graph.timeout_seconds", "mailbox.graph.max_retry_wait_seconds",
    "mailbox.ews.timeout_seconds",
    "limits.attachment_max_bytes", "limits.attachment_max_pages", "limits.attachment_time_budget_ms",
    "panel.meeting_duration_minutes", "panel.review_interval_weeks", "panel.action_reminder_days",
    "web.port", "web.threads", "web.session_idle_minutes", "web.session_lifetime_minutes",
    "web.sign_in_max_failures", "web.sign_in_max_failures_per_address", "web.sign_in_window_minutes",
    "retention.raw_messages_days", "retention.outbox_bodies_days", "retention.quarantined_messages_days",
    "retention.message_details_days", "retention.closed_cases_years", "retention.audit_events_years",
    "retention.sign_in_attempts_days", "retention.batch_size",
}


def load_config(path: str | Path | None) -> Config:
    """Read and validate a configuration file; None gives the defaults with base_dir '.'."""
    if path is None:
        return _validate(Config())

    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("", f"config file {path} not found",
                          f"copy config.example.toml to {path} and edit it, or name another file with --config"
                          ) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError("", f"config file {path} is not valid TOML ({error})") from None

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
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"must be true or false, got {value!r}")
        return value
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

    agendas = {"none", "new_referrals", "existing_placements", "actions_review", "aob"}
    for field_ in dataclasses.fields(RoutingConfig):
        route = getattr(config.routing, field_.name)
        if isinstance(route, CategoryRoute) and route.agenda not in agendas:
            raise ConfigError(f"routing.{field_.name}.agenda", f"{route.agenda!r} is not one of {sorted(agendas)}")
    if not 0 <= config.routing.review_below_confidence_percent <= 100:
        raise ConfigError("routing.review_below_confidence_percent", "must be between 0 and 100")

    for key in _POSITIVE:
        if _lookup(config, key) <= 0:
            raise ConfigError(key, f"must be greater than zero, got {_lookup(config, key)!r}")

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
    if config.mailbox.imap.idle_timeout_seconds > MAX_IDLE_TIMEOUT_SECONDS:
        raise ConfigError("mailbox.imap.idle_timeout_seconds",
                          f"must be at most {MAX_IDLE_TIMEOUT_SECONDS}, because a server may log out "
                          "a client that has been idle for 30 minutes (RFC 2177)")
    _validate_microsoft_backends(config)
    _validate_panel(config)
    _validate_web(config)
    if config.retention.closed_cases_until_age_years < 0:
        raise ConfigError("retention.closed_cases_until_age_years", "must be zero (no age rule) or more")
    return config


def _validate_microsoft_backends(config: Config) -> None:
    """Check the Graph, EWS and IMAP OAuth keys that the chosen backends use."""
    uses = {config.mailbox.backend, config.sending.backend}
    graph = config.mailbox.graph
    if "graph" in uses:
        for name in ("tenant_id", "client_id"):
            if not getattr(graph, name):
                raise ConfigError(f"mailbox.graph.{name}", "is empty",
                                  "copy it from the app registration in Microsoft Entra ID")
    if graph.max_retries < 0:
        raise ConfigError("mailbox.graph.max_retries", "must be zero or more")
    for key in ("mailbox.graph.authority_url", "mailbox.graph.graph_url", "mailbox.imap.oauth2_authority_url"):
        if not _lookup(config, key).startswith("https://"):
            raise ConfigError(key, "must start with https://")

    if "ews" in uses:
        ews = config.mailbox.ews
        if not ews.service_endpoint.startswith("https://"):
            raise ConfigError("mailbox.ews.service_endpoint", "must be an https:// URL",
                              "use the server's EWS URL, such as https://mail.example/EWS/Exchange.asmx")
        if not ews.username:
            raise ConfigError("mailbox.ews.username", "is empty", "set the account the bot signs in as")

    imap = config.mailbox.imap
    if imap.oauth2_tenant_id and not imap.oauth2_client_id:
        raise ConfigError("mailbox.imap.oauth2_client_id", "is empty while oauth2_tenant_id is set",
                          "copy it from the app registration in Microsoft Entra ID")


def _validate_panel(config: Config) -> None:
    panel = config.panel
    hours, _, minutes = panel.meeting_time.partition(":")
    if not (len(hours) == 2 and len(minutes) == 2 and hours.isdigit() and minutes.isdigit()
            and int(hours) < 24 and int(minutes) < 60):
        raise ConfigError("panel.meeting_time", f"{panel.meeting_time!r} is not a 24-hour time",
                          'write it as HH:MM, such as "10:00"')
    for value in panel.no_meeting_dates:
        try:
            date.fromisoformat(value)
        except ValueError:
            raise ConfigError("panel.no_meeting_dates", f"{value!r} is not a date",
                              "write each date as YYYY-MM-DD") from None


def _validate_web(config: Config) -> None:
    web = config.web
    if web.port > 65535:
        raise ConfigError("web.port", f"must be at most 65535, got {web.port}")
    if web.trusted_proxy_count < 0:
        raise ConfigError("web.trusted_proxy_count", "must be zero or more")
    if web.session_idle_minutes > web.session_lifetime_minutes:
        raise ConfigError("web.session_idle_minutes", "must not be longer than web.session_lifetime_minutes")
    if not web.secret_key_env:
        raise ConfigError("web.secret_key_env", "is empty", "name the environment variable that holds the key")
    if web.base_url:
        _validate_base_url(web.base_url)
    oidc = web.oidc
    if oidc.tenant_id or oidc.client_id:
        for name in ("tenant_id", "client_id", "redirect_url"):
            if not getattr(oidc, name):
                raise ConfigError(f"web.oidc.{name}", "is empty",
                                  "copy it from the app registration in Microsoft Entra ID")
        if not oidc.authority_url.startswith("https://"):
            raise ConfigError("web.oidc.authority_url", "must start with https://")
        if not any(getattr(oidc, f"{role}_{kind}") for role in ("admin", "coordinator", "panel_member")
                   for kind in ("app_roles", "groups")):
            raise ConfigError("web.oidc.coordinator_app_roles", "no app role or group is allowed to sign in",
                              "list the app role values or group ids that may use the web app")


def _validate_base_url(base_url: str) -> None:
    """Check web.base_url: an https URL with a host, or http only for this machine (localhost)."""
    parts = urlsplit(base_url)
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        raise ConfigError("web.base_url", f"{base_url!r} is not an https:// URL",
                          "give the address coordinators open, such as https://ccas.council.example "
                          "(http:// is allowed only for localhost)")
    if not parts.hostname or parts.query or parts.fragment or parts.username:
        raise ConfigError("web.base_url", f"{base_url!r} is not a plain web address",
                          "give the scheme, host and optional path only, such as https://ccas.council.example")


def _lookup(config: Config, dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def read_secret(env_name: str, key: str) -> str:
    """Return the secret held in environment variable `env_name`, named by config `key`."""
    value = os.environ.get(env_name)
    if value is None:
        raise ConfigError(key, f"environment variable {env_name} is not set",
                          f"export {env_name} before starting ccas-bot")
    if not value:
        raise ConfigError(key, f"environment variable {env_name} is empty",
                          f"put the secret in {env_name} before starting ccas-bot")
    return value
