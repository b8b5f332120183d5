"""Attacks on the web app that once worked: each test protects against one of them."""

from __future__ import annotations

import email
import email.policy
import logging
import threading
from datetime import date

import pytest

import mailfactory
from bot.web import CONTENT_SECURITY_POLICY
from store.accounts import AccountStore
from store.models import Case, OutboxItem
from store.panel import PanelStore
from store.triage import TriageStore
from test_web_triage import COORDINATOR, dated, deliver, held_reply, post, rows, signed_in, urgent
from webtools import add_user, csrf_token, make_web_app, sign_in

ADMIN = "ada.admin@testshire.gov.example"


@pytest.fixture
def web(tmp_path):
    app, store, config = make_web_app(tmp_path, **mailfactory.council_settings())
    add_user(store, COORDINATOR, "coordinator")
    add_user(store, ADMIN, "admin")
    return app, store, config


# Header injection through a held reply's subject ----------------------------------------

@pytest.mark.parametrize("subject", [
    "=?utf-8?q?Your_referral=0D=0ABcc=3A_someone=40elsewhere.example?=",
    "Your referral\u2028Bcc: someone@elsewhere.example",
    "Your referral\x0bBcc: someone@elsewhere.example",
])
def test_draft_subject_cannot_add_a_header(web, subject):
    (pk,) = deliver(web, urgent())
    store = web[1]
    draft = held_reply(store, pk)
    client = signed_in(web)

    response = post(client, f"/messages/{pk}/replies/{draft.id}/edit", {"subject": subject, "body": "Dear Sam,\n"})

    assert response.status_code == 400
    assert "one line" in response.get_data(as_text=True)
    stored = email.message_from_bytes(rows(store, OutboxItem, OutboxItem.id == draft.id)[0].raw,
                                      policy=email.policy.default)
    assert stored["Bcc"] is None
    assert b"elsewhere.example" not in rows(store, OutboxItem, OutboxItem.id == draft.id)[0].raw


def test_draft_subject_and_reject_reason_have_a_length_limit(web):
    (pk,) = deliver(web, urgent())
    store = web[1]
    draft = held_reply(store, pk)
    client = signed_in(web)

    edit = post(client, f"/messages/{pk}/replies/{draft.id}/edit", {"subject": "S" * 5000, "body": "Dear Sam,\n"})
    reject = post(client, f"/messages/{pk}/replies/{draft.id}/reject", {"reason": "R" * 5000})

    assert edit.status_code == 400
    assert reject.status_code == 400
    assert rows(store, OutboxItem, OutboxItem.id == draft.id)[0].status == "draft"


def test_lead_professional_longer_than_its_column_is_refused(web):
    (pk,) = deliver(web, urgent())
    store = web[1]
    client = signed_in(web)
    assert post(client, f"/messages/{pk}/open-case").status_code == 302
    case_id = rows(store, Case)[0].id

    response = post(client, f"/cases/{case_id}/lead", {"lead_professional": "L" * 300_000,
                                                       "lead_email": "lead@testchildren.org.example"})

    assert response.status_code == 400
    assert rows(store, Case)[0].lead_professional == ""


# Sessions ----------------------------------------------------------------------------

def test_stolen_cookie_dies_when_account_disabled_and_enabled_again(web):
    app, store, _config = web
    client = signed_in(web)
    accounts = AccountStore(store)

    accounts.set_active("cli", COORDINATOR, False)
    accounts.set_active("cli", COORDINATOR, True)

    assert client.get("/queue").status_code == 302
    # Signing in again afterwards works.
    assert sign_in(app.test_client(), COORDINATOR).status_code == 302


def test_stolen_cookie_dies_when_password_changed(web):
    _app, store, _config = web
    client = signed_in(web)
    other = signed_in(web, ADMIN)

    AccountStore(store).set_password("cli", COORDINATOR, "a brand new long password")

    assert client.get("/queue").status_code == 302
    # Another user's session is untouched.
    assert other.get("/queue").status_code == 200


# Redirects after sign-in ----------------------------------------------------------------

@pytest.mark.parametrize("target", ["/queue\r\nSet-Cookie: x=1", "/\t/elsewhere.example", "/ /elsewhere.example"])
def test_sign_in_next_with_control_characters_goes_to_dashboard(web, target):
    app = web[0]
    client = app.test_client()
    token = csrf_token(client)

    response = client.post("/sign-in", query_string={"next": target},
                           data={"csrf_token": token, "username": COORDINATOR, "password": "correct horse battery staple"})

    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert "Set-Cookie: x" not in str(response.headers)


# Sign-in limit ---------------------------------------------------------------------------

def test_concurrent_wrong_passwords_check_no_more_than_the_limit(web, monkeypatch):
    app, _store, config = web
    limit = config.web.sign_in_max_failures
    clients = [app.test_client() for _ in range(3 * limit)]
    tokens = [csrf_token(client) for client in clients]
    checked = []
    real_check = AccountStore.check_password
    start = threading.Barrier(len(clients))

    def slow_check(self, username, password):
        checked.append(username)
        threading.Event().wait(0.2)
        return real_check(self, username, password)

    monkeypatch.setattr(AccountStore, "check_password", slow_check)
    statuses = []

    def attempt(client, token):
        start.wait()
        response = client.post("/sign-in", data={"csrf_token": token, "username": COORDINATOR,
                                                 "password": "wrong password guess"})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=attempt, args=pair) for pair in zip(clients, tokens)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(checked) <= limit
    assert statuses.count(429) >= len(clients) - limit


# Numbers and dates out of range --------------------------------------------------------------

@pytest.mark.parametrize(("path", "status"), [
    (f"/messages/{2**70}", 404),
    (f"/messages/1/attachments/{2**70}", 404),
    (f"/audit?page={10**30}", 200),
    ("/agenda?date=9999-12-31", 400),
    ("/agenda?date=0001-01-01", 400),
    ("/meetings/0001-01-01", 404),
    ("/agenda/export?format=csv&date=0001-01-01", 200),
])
def test_huge_ids_pages_and_dates_are_not_server_errors(web, path, status):
    client = signed_in(web)
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_action_due_date_with_huge_year_is_a_form_error(web):
    _app, store, config = web
    panel = PanelStore(store, config)
    meeting_id = panel.create_meeting(date(2026, 12, 9), date(2026, 12, 9), actor="test-setup")
    action_id = panel.add_action(meeting_id, "owner@testshire.gov.example", "Phone the school", actor="test-setup")
    client = signed_in(web)

    response = post(client, f"/actions/{action_id}/due", {f"due-{action_id}-day": "1", f"due-{action_id}-month": "1",
                                                        f"due-{action_id}-year": "1" + "0" * 30}, token_page="/actions")

    assert response.status_code == 400
    assert "must be a real date" in response.get_data(as_text=True)


# Logs --------------------------------------------------------------------------------------

def test_server_error_log_leaves_out_the_error_message(web, monkeypatch, caplog):
    # A database error quotes its statement's values; the stack shows source lines, so the
    # values are kept off the line that raises.
    quoted = "parameters: ('Tommy Fictional', '2014-04-03')"

    def failing(self, search="", limit=100):
        raise ValueError(quoted)

    monkeypatch.setattr(TriageStore, "find_cases", failing)
    client = signed_in(web)
    # As in production: the error becomes a 500 page rather than reaching the test.
    web[0].testing = False
    caplog.set_level(logging.DEBUG)

    response = client.get("/cases")

    assert response.status_code == 500
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "Tommy" not in response.get_data(as_text=True)
    assert "ValueError" in caplog.text
    assert "cases.case_list" in caplog.text
    assert "Tommy" not in caplog.text
    assert "2014-04-03" not in caplog.text


# Attachment names --------------------------------------------------------------------------

def test_attachment_name_shown_without_characters_that_reorder_it(web):
    message = dated(mailfactory._base("Sam Okafor <sam.okafor@testchildren.org.example>", "Letter",
                                      "Please see the letter attached.\n"), 20)
    message.add_attachment(b"MZ fictional", maintype="application", subtype="octet-stream",
                           filename="letter\u202efdp.exe")
    (pk,) = deliver(web, message)
    client = signed_in(web)

    html = client.get(f"/messages/{pk}").get_data(as_text=True)

    assert "letterfdp.exe" in html
    assert "\u202e" not in html
