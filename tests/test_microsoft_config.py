"""Configuration of the Graph, EWS and IMAP OAuth backends: documented defaults and start-up checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Config, config_from_mapping, load_config
from bot.errors import ConfigError
from bot.microsoft import graph_scope

REPOSITORY = Path(__file__).resolve().parents[1]


def build(mailbox: dict, sending: dict | None = None) -> Config:
    return config_from_mapping({"mailbox": mailbox, "sending": sending or {}}, base_dir=Path("."))


def test_example_file_documents_graph_and_ews_defaults():
    config = load_config(REPOSITORY / "config.example.toml")

    defaults = Config()
    assert config.mailbox.graph == defaults.mailbox.graph
    assert config.mailbox.ews == defaults.mailbox.ews
    assert config.mailbox.imap.oauth2_scope == "https://outlook.office365.com/.default"


@pytest.mark.parametrize("missing", ["tenant_id", "client_id"])
def test_graph_backend_needs_app_ids(missing):
    graph = {"tenant_id": "tenant", "client_id": "client", missing: ""}

    with pytest.raises(ConfigError, match=f"mailbox.graph.{missing}"):
        build({"backend": "graph", "graph": graph})


def test_graph_sending_alone_needs_app_ids():
    with pytest.raises(ConfigError, match="mailbox.graph.tenant_id"):
        build({"backend": "folder"}, {"backend": "graph"})


def test_graph_url_must_be_https():
    graph = {"tenant_id": "tenant", "client_id": "client", "graph_url": "http://graph.example/v1.0"}

    with pytest.raises(ConfigError, match="mailbox.graph.graph_url"):
        build({"backend": "graph", "graph": graph})


def test_unknown_graph_credential_rejected():
    graph = {"tenant_id": "tenant", "client_id": "client", "credential": "password"}

    with pytest.raises(ConfigError, match="mailbox.graph.credential"):
        build({"backend": "graph", "graph": graph})


def test_ews_endpoint_must_be_https():
    ews = {"service_endpoint": "http://mail.council.example/EWS/Exchange.asmx", "username": "svc"}

    with pytest.raises(ConfigError, match="mailbox.ews.service_endpoint"):
        build({"backend": "ews", "ews": ews})


def test_ews_backend_needs_username():
    ews = {"service_endpoint": "https://mail.council.example/EWS/Exchange.asmx"}

    with pytest.raises(ConfigError, match="mailbox.ews.username"):
        build({"backend": "ews", "ews": ews})


def test_imap_tenant_without_client_rejected():
    imap = {"username": "ccas@council.example", "auth": "xoauth2", "oauth2_tenant_id": "tenant"}

    with pytest.raises(ConfigError, match="mailbox.imap.oauth2_client_id"):
        build({"backend": "imap", "imap": imap})


def test_graph_scope_follows_graph_host():
    assert graph_scope("https://graph.microsoft.com/v1.0") == "https://graph.microsoft.com/.default"
    assert graph_scope("https://graph.microsoft.us/v1.0") == "https://graph.microsoft.us/.default"
