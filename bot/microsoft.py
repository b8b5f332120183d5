"""Wiring for Microsoft 365 and Exchange: Graph, EWS and IMAP XOAUTH2 from the configuration.

Secrets are read from the environment here, when the backend is built, so a missing
one stops the bot at start-up. Network access waits until the first poll or send.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from urllib.parse import urlsplit

from bot.config import Config, read_secret
from bot.errors import ConfigError
from bot.graph import GraphClient
from bot.oauth import ClientCredentials, token_source


def graph_mailbox_address(config: Config) -> str:
    """Return the mailbox that Graph reads and sends from: mailbox.graph.mailbox, else the CCAS inbox."""
    return config.mailbox.graph.mailbox or config.council.ccas_inbox


def graph_scope(graph_url: str) -> str:
    """Return the app-only scope of the Graph host in `graph_url`, such as https://graph.microsoft.com/.default."""
    parts = urlsplit(graph_url)
    return f"{parts.scheme}://{parts.netloc}/.default"


def graph_client(config: Config) -> GraphClient:
    graph = config.mailbox.graph
    if graph.credential == "secret":
        credential = {"secret": read_secret(graph.client_secret_env, "mailbox.graph.client_secret_env")}
    else:
        credential = {"certificate_pem": _certificate_pem(graph.certificate_env, "mailbox.graph.certificate_env")}
    credentials = ClientCredentials(
        authority_url=graph.authority_url, tenant_id=graph.tenant_id, client_id=graph.client_id,
        credential=graph.credential, ca_file=_path_or_empty(config, graph.ca_file),
        timeout_seconds=graph.timeout_seconds, config_prefix="mailbox.graph", **credential)
    return GraphClient(
        base_url=graph.graph_url, mailbox=graph_mailbox_address(config),
        tokens=token_source(credentials, graph_scope(graph.graph_url)),
        ca_file=_path_or_empty(config, graph.ca_file), timeout_seconds=graph.timeout_seconds,
        max_retries=graph.max_retries, max_retry_wait_seconds=graph.max_retry_wait_seconds)


def build_graph_mailbox(config: Config):
    from bot.mailboxes.graph import GraphMailbox

    return GraphMailbox(config.mailbox.graph, graph_client(config), config.bot.max_message_bytes)


def build_graph_sender(config: Config):
    from replies.send_graph import GraphSender

    return GraphSender(graph_client(config))


def imap_oauth2_token(config: Config) -> Callable[[], str]:
    """Return a function that returns an IMAP XOAUTH2 access token from Entra ID (client credentials)."""
    imap = config.mailbox.imap
    if imap.oauth2_credential == "secret":
        credential = {"secret": read_secret(imap.oauth2_client_secret_env, "mailbox.imap.oauth2_client_secret_env")}
    else:
        credential = {"certificate_pem": _certificate_pem(imap.oauth2_certificate_env,
                                                          "mailbox.imap.oauth2_certificate_env")}
    credentials = ClientCredentials(
        authority_url=imap.oauth2_authority_url, tenant_id=imap.oauth2_tenant_id,
        client_id=imap.oauth2_client_id, credential=imap.oauth2_credential,
        ca_file=_path_or_empty(config, imap.oauth2_ca_file), timeout_seconds=imap.timeout_seconds,
        config_prefix="mailbox.imap", tenant_key="oauth2_tenant_id", client_key="oauth2_client_id",
        **credential)
    return token_source(credentials, imap.oauth2_scope).token


def ews_mailbox_address(config: Config) -> str:
    """Return the mailbox that EWS reads and sends from: mailbox.ews.mailbox, else the CCAS inbox."""
    return config.mailbox.ews.mailbox or config.council.ccas_inbox


def _ews_settings(config: Config):
    ews = config.mailbox.ews
    password = read_secret(ews.password_env, "mailbox.ews.password_env")
    settings = dataclasses.replace(ews, ca_file=_path_or_empty(config, ews.ca_file))
    return settings, password, ews_mailbox_address(config)


def build_ews_mailbox(config: Config):
    from bot.mailboxes.ews import EwsMailbox, import_exchangelib

    import_exchangelib()
    settings, password, mailbox = _ews_settings(config)
    return EwsMailbox(settings, password, mailbox, config.bot.max_message_bytes)


def build_ews_sender(config: Config):
    from bot.mailboxes.ews import import_exchangelib
    from replies.send_ews import EwsSender

    import_exchangelib()
    settings, password, mailbox = _ews_settings(config)
    return EwsSender(settings, password, mailbox)


def _certificate_pem(env_name: str, key: str) -> str:
    """Read the PEM text of a private key and its certificate from the environment."""
    pem = read_secret(env_name, key)
    if "PRIVATE KEY-----" not in pem or "-----BEGIN CERTIFICATE-----" not in pem:
        raise ConfigError(key, f"environment variable {env_name} must contain a PEM private key "
                          "followed by its certificate", "for example: export "
                          f'{env_name}="$(cat ccas-bot-key.pem ccas-bot-cert.pem)"')
    return pem


def _path_or_empty(config: Config, value: str) -> str:
    return str(config.path(value)) if value else ""
