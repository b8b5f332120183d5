"""IMAP XOAUTH2 with a token from Microsoft Entra ID's client credentials grant.

A stand-in token endpoint on 127.0.0.1 issues the JWT that the test Dovecot validates,
so the whole path runs: msal requests a token from the authority, and the IMAP backend logs
in with it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import mailfactory
from bot.app import build_context, build_mailbox, build_sender, open_store
from bot.config import config_from_mapping
from bot.errors import ConfigError
from bot.intake import Intake
from graph_server import CLIENT_ID, TENANT_ID, GraphServer

SERVER_PROCESSED = "CCAS.Processed"


@pytest.fixture
def entra(tls_material):
    with GraphServer(tls_material, mailbox=mailfactory.CCAS_INBOX) as server:
        yield server


def imap_config(dovecot, entra: GraphServer, tmp_path: Path, **imap_overrides):
    imap = {
        "host": dovecot.host, "port": dovecot.port, "security": "starttls",
        "username": dovecot.username, "auth": "xoauth2", "ca_file": str(dovecot.ca_file),
        "oauth2_tenant_id": TENANT_ID, "oauth2_client_id": CLIENT_ID, "oauth2_credential": "secret",
        "oauth2_client_secret_env": "TEST_IMAP_CLIENT_SECRET",
        "oauth2_authority_url": entra.base_url, "oauth2_ca_file": str(entra.tls.ca_file),
        "timeout_seconds": 10, **imap_overrides,
    }
    data = {
        **mailfactory.council_settings(),
        "store": {"url": f"sqlite:///{tmp_path / 'store.sqlite3'}"},
        "mailbox": {"backend": "imap", "imap": imap},
        "sending": {"backend": "folder", "outbox_path": "outbox"},
    }
    return config_from_mapping(data, base_dir=tmp_path)


def poll(config):
    store = open_store(config)
    return Intake(build_mailbox(config), build_context(config, store), build_sender(config)).poll_once()


def test_client_credentials_token_logs_in(dovecot, entra, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_IMAP_CLIENT_SECRET", entra.client_secret)
    entra.make_access_token = dovecot.make_oauth2_token
    dovecot.append("INBOX", mailfactory.referral().as_bytes())

    summary = poll(imap_config(dovecot, entra, tmp_path))

    assert [item.stored.outcome for item in summary.processed] == ["handled"]
    assert len(dovecot.list_uids(SERVER_PROCESSED)) == 1
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1


def test_token_requested_for_exchange_online_scope(dovecot, entra, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_IMAP_CLIENT_SECRET", entra.client_secret)
    entra.make_access_token = dovecot.make_oauth2_token

    poll(imap_config(dovecot, entra, tmp_path))

    assert [request["scope"] for request in entra.token_requests] == ["https://outlook.office365.com/.default"]


def test_token_rejected_by_server_is_config_error(dovecot, entra, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_IMAP_CLIENT_SECRET", entra.client_secret)
    entra.make_access_token = lambda: dovecot.make_oauth2_token(signing_key=b"k" * 32)

    with pytest.raises(ConfigError, match="rejected the login"):
        poll(imap_config(dovecot, entra, tmp_path))


def test_without_tenant_token_read_from_environment(dovecot, entra, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_IMAP_TOKEN", dovecot.make_oauth2_token())
    config = imap_config(dovecot, entra, tmp_path, oauth2_tenant_id="", oauth2_token_env="TEST_IMAP_TOKEN")
    dovecot.append("INBOX", mailfactory.referral().as_bytes())

    summary = poll(config)

    assert len(summary.processed) == 1
    assert entra.token_requests == []


def test_building_mailbox_sends_no_token_request(dovecot, entra, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_IMAP_CLIENT_SECRET", entra.client_secret)

    build_mailbox(imap_config(dovecot, entra, tmp_path))

    assert entra.token_requests == []
