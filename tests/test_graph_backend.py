"""The Microsoft Graph mailbox and sender end to end, against a Graph stand-in on 127.0.0.1."""

from __future__ import annotations

import base64
import dataclasses
import email
import email.policy
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import mailfactory
from bot.app import build_context, build_mailbox, build_sender, open_store
from bot.config import config_from_mapping
from bot.errors import ConfigError, RemoteError
from bot.intake import Intake
from bot.mailboxes.graph import GraphMailbox
from bot.microsoft import graph_client
from bot.pipeline import identify_raw
from graph_server import CLIENT_ID, IMMUTABLE_ID_PREFERENCE, TENANT_ID, AppCertificate, GraphServer

PROCESSED = "CCAS/Processed"
QUARANTINE = "CCAS/Quarantine"


@pytest.fixture(scope="session")
def app_certificate() -> AppCertificate:
    return AppCertificate.generate()


@pytest.fixture
def graph(tls_material, app_certificate):
    with GraphServer(tls_material, mailbox=mailfactory.CCAS_INBOX, certificate=app_certificate) as server:
        yield server


def graph_config(graph: GraphServer, tmp_path: Path, **overrides):
    settings = {
        "tenant_id": TENANT_ID, "client_id": CLIENT_ID, "certificate_env": "TEST_GRAPH_CERTIFICATE",
        "client_secret_env": "TEST_GRAPH_SECRET", "authority_url": graph.base_url,
        "graph_url": graph.graph_url, "ca_file": str(graph.tls.ca_file), "timeout_seconds": 5,
        **overrides,
    }
    data = {
        **mailfactory.council_settings(),
        "store": {"url": f"sqlite:///{tmp_path / 'store.sqlite3'}"},
        "mailbox": {"backend": "graph", "graph": settings},
        "sending": {"backend": "graph"},
    }
    return config_from_mapping(data, base_dir=tmp_path)


@pytest.fixture
def config(graph, app_certificate, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_GRAPH_CERTIFICATE", app_certificate.pem_bundle)
    monkeypatch.setenv("TEST_GRAPH_SECRET", graph.client_secret)
    return graph_config(graph, tmp_path)


def poll(config):
    store = open_store(config)
    return Intake(build_mailbox(config), build_context(config, store), build_sender(config)).poll_once()


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def value_requests(graph: GraphServer):
    return [r for r in graph.graph_requests() if r.path.endswith("/$value")]


def delta_requests(graph: GraphServer):
    return [r for r in graph.graph_requests() if r.path.endswith("/messages/delta")]


def test_referral_answered_through_sendmail(config, graph):
    referral = mailfactory.referral()
    graph.deliver(referral.as_bytes())

    summary = poll(config)

    assert [item.stored.outcome for item in summary.processed] == ["handled"]
    assert len(graph.sent) == 1
    reply = parse(graph.sent[0])
    assert reply["To"] == "nia.gwent@testhealth.nhs.example"
    assert reply["In-Reply-To"] == referral["Message-ID"]
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["X-Auto-Response-Suppress"] == "All"
    assert reply["X-CCAS-Bot-Loop"] == mailfactory.CCAS_INBOX


def test_processed_message_moved_by_immutable_id(config, graph):
    message_id = graph.deliver(mailfactory.referral().as_bytes())

    poll(config)

    assert graph.folder_messages("Inbox") == []
    assert [m.id for m in graph.folder_messages(PROCESSED)] == [message_id]


def test_every_request_prefers_immutable_ids(config, graph):
    graph.deliver(mailfactory.referral().as_bytes())

    poll(config)

    requests = graph.graph_requests()
    assert requests
    for request in requests:
        assert IMMUTABLE_ID_PREFERENCE in request.headers.get("Prefer", ""), request.path


def test_move_happens_after_store_commit(config, graph):
    raw = mailfactory.referral().as_bytes()
    graph.deliver(raw)
    message_id, _, digest = identify_raw(raw)
    stored_at_move = []
    graph.on_move = lambda message: stored_at_move.append(
        open_store(config).find_message(message_id, digest) is not None)

    poll(config)

    assert stored_at_move == [True]


def test_second_poll_fetches_nothing(config, graph):
    graph.deliver(mailfactory.referral().as_bytes())
    poll(config)
    fetched = len(value_requests(graph))

    summary = poll(config)

    assert summary.processed == []
    assert len(value_requests(graph)) == fetched
    assert "$deltatoken" in delta_requests(graph)[-1].query
    assert len(graph.sent) == 1


def test_mail_after_first_poll_read_from_delta_link(config, graph):
    graph.deliver(mailfactory.referral().as_bytes())
    poll(config)
    graph.deliver(mailfactory.referral("Ivy", "Marchbank", "02/05/2014").as_bytes())

    summary = poll(config)

    assert len(summary.processed) == 1
    assert len(graph.sent) == 2
    assert len(graph.folder_messages(PROCESSED)) == 2


def test_delta_pages_followed_to_delta_link(graph, app_certificate, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_GRAPH_CERTIFICATE", app_certificate.pem_bundle)
    config = graph_config(graph, tmp_path, page_size=2)
    for number in range(5):
        graph.deliver(mailfactory.out_of_office().as_bytes() + f"\n{number}\n".encode())

    summary = poll(config)

    assert len(summary.processed) == 5
    pages = delta_requests(graph)
    assert len(pages) == 3
    assert all("odata.maxpagesize=2" in page.headers["Prefer"] for page in pages)
    assert "$skiptoken" in pages[1].query


def test_throttled_fetch_waits_for_retry_after(config, graph):
    graph.deliver(mailfactory.referral().as_bytes())
    graph.fail_next("GET", r"/\$value$", 429, headers={"Retry-After": "1"}, code="TooManyRequests")

    started = time.monotonic()
    summary = poll(config)

    assert time.monotonic() - started >= 1.0
    assert [item.stored.outcome for item in summary.processed] == ["handled"]
    assert len(value_requests(graph)) == 2


def test_throttling_past_retries_leaves_mail_for_next_poll(config, graph):
    graph.deliver(mailfactory.referral().as_bytes())
    graph.fail_next("GET", r"/messages/delta$", 503, headers={"Retry-After": "0"}, times=4)

    with pytest.raises(RemoteError, match="still throttled"):
        poll(config)
    assert len(graph.folder_messages("Inbox")) == 1

    summary = poll(config)

    assert len(summary.processed) == 1
    assert graph.folder_messages("Inbox") == []


def test_long_retry_after_fails_without_waiting(config, graph):
    graph.fail_next("GET", r"/messages/delta$", 429, headers={"Retry-After": "3600"})

    started = time.monotonic()
    with pytest.raises(RemoteError, match="max_retry_wait_seconds"):
        poll(config)

    assert time.monotonic() - started < 2.0


def test_expired_delta_link_starts_fresh_round(config, graph):
    graph.deliver(mailfactory.referral().as_bytes())
    poll(config)
    graph.deliver(mailfactory.referral("Ivy", "Marchbank", "02/05/2014").as_bytes())
    graph.expire_delta_links()

    summary = poll(config)

    assert len(summary.processed) == 1
    assert "$deltatoken" not in delta_requests(graph)[-1].query
    assert len(graph.sent) == 2
    assert graph.folder_messages("Inbox") == []


def test_killed_before_move_finishes_without_second_reply(config, graph, monkeypatch):
    graph.deliver(mailfactory.referral().as_bytes())

    def killed(self, ref):
        raise KeyboardInterrupt("killed between store commit and move")

    with monkeypatch.context() as patch:
        patch.setattr(GraphMailbox, "move_to_processed", killed)
        with pytest.raises(KeyboardInterrupt):
            poll(config)
    assert len(graph.folder_messages("Inbox")) == 1
    assert open_store(config).mailbox_cursor("graph", f"{mailfactory.CCAS_INBOX}/inbox") == ""

    poll(config)

    assert graph.folder_messages("Inbox") == []
    assert len(graph.folder_messages(PROCESSED)) == 1
    assert len(graph.sent) == 1


def test_killed_mid_round_skips_no_message(config, graph, monkeypatch):
    graph.deliver(mailfactory.referral().as_bytes())
    graph.deliver(mailfactory.referral("Ivy", "Marchbank", "02/05/2014").as_bytes())
    fetch = GraphMailbox.fetch
    calls = []

    def killed_on_second(self, ref):
        calls.append(ref.uid)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed while reading the second message")
        return fetch(self, ref)

    with monkeypatch.context() as patch:
        patch.setattr(GraphMailbox, "fetch", killed_on_second)
        with pytest.raises(KeyboardInterrupt):
            poll(config)

    poll(config)

    assert graph.folder_messages("Inbox") == []
    assert len(graph.folder_messages(PROCESSED)) == 2
    assert len(graph.sent) == 2


def test_unreadable_message_quarantined(config, graph):
    graph.deliver(mailfactory.unreadable())
    graph.deliver(mailfactory.referral().as_bytes())

    summary = poll(config)

    assert [item.stored.outcome for item in summary.processed] == ["needs_person", "handled"]
    assert len(graph.folder_messages(QUARANTINE)) == 1
    assert len(graph.folder_messages(PROCESSED)) == 1


def test_oversized_message_quarantined_unread(config, graph):
    small = dataclasses.replace(config, bot=dataclasses.replace(config.bot, max_message_bytes=200))
    graph.deliver(mailfactory.referral().as_bytes())

    summary = poll(small)

    assert summary.processed[0].stored.outcome == "needs_person"
    assert len(graph.folder_messages(QUARANTINE)) == 1
    assert graph.sent == []


def test_folders_created_once(config, graph):
    graph.deliver(mailfactory.referral().as_bytes())
    poll(config)
    graph.deliver(mailfactory.referral("Ivy", "Marchbank", "02/05/2014").as_bytes())
    poll(config)

    names = sorted(folder.display_name for folder in graph.folders.values())
    assert names == ["CCAS", "Inbox", "Processed"]


def test_token_fetched_once_for_many_polls(config, graph):
    graph.deliver(mailfactory.referral().as_bytes())
    poll(config)
    poll(config)

    assert len(graph.token_requests) == 1


def test_certificate_signs_client_assertion(config, graph):
    graph.deliver(mailfactory.referral().as_bytes())

    poll(config)

    request = graph.token_requests[0]
    assert "client_secret" not in request
    assert request["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert request["scope"] == f"{graph.base_url}/.default"


def test_client_secret_signs_in(graph, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_GRAPH_SECRET", graph.client_secret)
    config = graph_config(graph, tmp_path, credential="secret")
    graph.deliver(mailfactory.referral().as_bytes())

    summary = poll(config)

    assert len(summary.processed) == 1
    assert graph.token_requests[0]["client_secret"] == graph.client_secret


def test_wrong_secret_is_config_error(graph, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_GRAPH_SECRET", "not-the-secret")
    config = graph_config(graph, tmp_path, credential="secret")

    with pytest.raises(ConfigError) as raised:
        poll(config)

    assert "mailbox.graph.client_id" in str(raised.value)
    assert "invalid_client" in str(raised.value)
    assert "not-the-secret" not in str(raised.value)


def test_missing_certificate_variable_stops_build(graph, tmp_path, monkeypatch):
    monkeypatch.delenv("TEST_GRAPH_CERTIFICATE", raising=False)
    config = graph_config(graph, tmp_path)

    with pytest.raises(ConfigError, match="TEST_GRAPH_CERTIFICATE"):
        build_mailbox(config)


def test_forbidden_mailbox_is_config_error(config, graph):
    graph.fail_next("GET", r"/messages/delta$", 403, code="ErrorAccessDenied")

    with pytest.raises(ConfigError, match="Mail.ReadWrite"):
        poll(config)


def test_sendmail_rejects_other_recipients(config, graph):
    message = mailfactory.referral()
    message["Cc"] = "someone.else@testhealth.nhs.example"

    with pytest.raises(RemoteError, match="outbox recipient"):
        build_sender(config).send(message.as_bytes(), "ccas@testshire.gov.example", "", "<x@example>")

    assert graph.sent == []


def test_sendmail_posts_base64_mime(config, graph):
    message = mailfactory.referral()
    recipient = message["To"]

    build_sender(config).send(message.as_bytes(), recipient, "", message["Message-ID"])

    request = [r for r in graph.graph_requests() if r.path.endswith("/sendMail")][0]
    assert request.headers["Content-Type"] == "text/plain"
    assert base64.b64decode(request.body) == message.as_bytes()


def test_retry_after_seconds_and_date_honoured(graph, app_certificate, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_GRAPH_CERTIFICATE", app_certificate.pem_bundle)
    client = graph_client(graph_config(graph, tmp_path))
    waits = []
    client.sleep = waits.append
    in_thirty_seconds = email.utils.format_datetime(
        datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    graph.fail_next("GET", r"/mailFolders/inbox$", 429, headers={"Retry-After": "7"})
    graph.fail_next("GET", r"/mailFolders/inbox$", 503, headers={"Retry-After": in_thirty_seconds})

    response = client.request("GET", client.user_url("mailFolders/inbox"), operation="get folder")

    assert response.json()["id"] == graph.inbox_id
    assert waits[0] == 7.0
    assert 25.0 < waits[1] <= 30.0


def test_link_to_other_host_gets_no_token(config, graph):
    client = graph_client(config)

    with pytest.raises(RemoteError, match="graph_url host"):
        client.request("GET", "https://graph.example/v1.0/users", operation="list users")

    assert graph.token_requests == []


def test_certificate_without_key_stops_build(graph, app_certificate, tmp_path, monkeypatch):
    certificate_only = app_certificate.pem_bundle[app_certificate.pem_bundle.index("-----BEGIN CERTIFICATE"):]
    monkeypatch.setenv("TEST_GRAPH_CERTIFICATE", certificate_only)

    with pytest.raises(ConfigError, match="PEM private key followed by its certificate"):
        build_mailbox(graph_config(graph, tmp_path))
