"""The dashboard's figures and charts, the audit log and the users page."""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from flask import g
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.web.common import CurrentUser, audit_view
from store.accounts import AccountStore
from store.audit import add_audit, add_correction
from store.models import AuditEvent, Case, Message
from webtools import add_user, csrf_token, make_web_app, sign_in

ADMIN = "ada.admin@severnshire.gov.example"
COORDINATOR = "casey.coordinator@severnshire.gov.example"
PANEL_MEMBER = "pat.panel@health.example"

# The figures are laid out around the real date, because the dashboard page counts back from it.
TODAY = datetime.now(ZoneInfo("Europe/London")).date()


@pytest.fixture
def web(tmp_path):
    app, store, config = make_web_app(tmp_path)
    add_user(store, ADMIN, "admin", display_name="Ada Admin")
    add_user(store, COORDINATOR, "coordinator", display_name="Casey Coordinator")
    add_user(store, PANEL_MEMBER, "panel_member", display_name="Pat Panel")
    return app, store, config


def _message(session, number: int, received_at: datetime, category: str | None) -> Message:
    raw = f"fictional message {number}".encode()
    row = Message(message_id=f"<m{number}@school.example>", sha256=hashlib.sha256(raw).hexdigest(), raw=raw,
                  size=len(raw), source="folder", folder="inbox", uid=str(number), received_at=received_at,
                  outcome="handled", reasons=[], category=category, extracted={})
    session.add(row)
    session.flush()
    return row


def _case(session, case_id: str, **fields) -> None:
    session.add(Case(id=case_id, first_name="Sam", last_name="Tester", **fields))


def _noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc)


@pytest.fixture
def figures(web):
    """Messages, cases and corrections spread over known weeks before TODAY."""
    _app, store, _config = web
    this_week = TODAY - timedelta(days=TODAY.weekday())
    with Session(store.engine) as session, session.begin():
        number = 0
        # This week: 3 support requests, 1 school notification; two weeks ago: 2 support requests.
        for weeks_ago, category, count in ((0, "support_request", 3), (0, "school_notification", 1),
                                           (2, "support_request", 2), (0, None, 1), (13, "support_request", 4)):
            for _ in range(count):
                number += 1
                _message(session, number, _noon(this_week - timedelta(weeks=weeks_ago)), category)
        first = session.scalars(select(Message).where(Message.category == "support_request")).first()
        add_correction(session, COORDINATOR, "category", message_pk=first.id, bot_category="support_request",
                       at=_noon(this_week))
        add_correction(session, COORDINATOR, "case_link", message_pk=first.id, bot_category="support_request",
                       at=_noon(this_week - timedelta(weeks=2)))

        _case(session, "CCAS-2026-0001", status="open", opened=this_week, next_review=this_week + timedelta(weeks=1))
        _case(session, "CCAS-2026-0002", status="open", opened=this_week - timedelta(weeks=2),
              last_reviewed=TODAY - timedelta(weeks=13))
        _case(session, "CCAS-2026-0003", status="open", opened=this_week - timedelta(weeks=20))
        _case(session, "CCAS-2026-0004", status="send", opened=this_week - timedelta(weeks=2),
              next_review=this_week)
        _case(session, "CCAS-2026-0005", status="closed", opened=this_week - timedelta(weeks=30))
    return store


# Dashboard figures -----------------------------------------------------------------

def test_dashboard_counts_messages_per_week(figures):
    stats = AccountStore(figures).dashboard_stats(TODAY, "Europe/London")
    assert stats.weeks[-1] == TODAY - timedelta(days=TODAY.weekday())
    assert stats.weeks[0] == stats.weeks[-1] - timedelta(weeks=11)
    assert len(stats.weeks) == 12
    assert stats.messages["support_request"][-1] == 3
    assert stats.messages["support_request"][-3] == 2
    assert stats.message_total("support_request") == 5  # the four from 13 weeks ago are outside
    assert stats.messages["school_notification"][-1] == 1
    assert stats.messages["unreadable"][-1] == 1
    assert stats.categories[0] == "support_request"


def test_dashboard_counts_referrals_and_new_cases(figures):
    stats = AccountStore(figures).dashboard_stats(TODAY, "Europe/London")
    assert stats.referrals[-1] == 3
    assert stats.referrals[-3] == 2
    assert stats.new_cases[-1] == 1
    assert stats.new_cases[-3] == 2
    assert sum(stats.new_cases) == 3


def test_dashboard_counts_cases_and_reviews(figures):
    stats = AccountStore(figures).dashboard_stats(TODAY, "Europe/London", review_interval_weeks=12)
    assert stats.cases_by_status == {"open": 3, "send": 1}
    assert stats.closed_cases == 1
    # Case 1 is due next week. Case 2 was last reviewed 13 weeks ago, so it is overdue.
    # Case 3 has no review date, and the SEND case is not an open case.
    assert stats.reviews_due[1] == 1
    assert sum(stats.reviews_due) == 1
    assert stats.reviews_overdue == 1
    assert stats.reviews_without_date == 1


def test_dashboard_correction_rate(figures):
    stats = AccountStore(figures).dashboard_stats(TODAY, "Europe/London")
    assert stats.corrections["support_request"][-1] == 1
    assert stats.corrections["support_request"][-3] == 1
    assert stats.correction_total("support_request") == 2
    assert stats.correction_rate("support_request") == pytest.approx(40.0)
    assert stats.correction_rate("school_notification") == 0
    assert stats.correction_rate("no_such_category") is None


def test_dashboard_weeks_follow_uk_time(web):
    _app, store, _config = web
    with Session(store.engine) as session, session.begin():
        # 23:30 UTC on Sunday 11 October is 00:30 on Monday 12 October in London (BST).
        _message(session, 1, datetime(2026, 10, 11, 23, 30, tzinfo=timezone.utc), "query")
    # Wednesday 14 October 2026, whose week starts on Monday 12 October.
    stats = AccountStore(store).dashboard_stats(date(2026, 10, 14), "Europe/London")
    assert stats.weeks[-1] == date(2026, 10, 12)
    assert stats.messages["query"][-1] == 1


# Dashboard page ---------------------------------------------------------------------

def test_dashboard_page_shows_charts_with_text_alternatives(web, figures):
    app, _store, _config = web
    client = app.test_client()
    sign_in(client, PANEL_MEMBER)
    page = client.get("/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    svgs = re.findall(r"<svg class=\"app-chart\".*?</svg>", text, re.S)
    assert len(svgs) == 5
    for svg in svgs:
        chart_id = re.search(r'id="([^"]+)"', svg).group(1)
        assert f'aria-labelledby="{chart_id}-title {chart_id}-desc"' in svg
        assert f'<title id="{chart_id}-title">' in svg
        assert f'<desc id="{chart_id}-desc">' in svg
        assert " style=" not in svg
    assert text.count('<table class="govuk-table') >= 4
    assert "Corrections per 100 messages" in text


def test_dashboard_table_matches_figures(web, figures):
    app, _store, _config = web
    client = app.test_client()
    sign_in(client, COORDINATOR)
    page = client.get("/").get_data(as_text=True)
    text = page[page.index("Messages and corrections by category"):]
    row = re.search(r'<th scope="row" class="govuk-table__header">Request for support \(referral\)</th>\s*'
                    r'<td class="govuk-table__cell govuk-table__cell--numeric">(\d+)</td>\s*'
                    r'<td class="govuk-table__cell govuk-table__cell--numeric">(\d+)</td>\s*'
                    r'<td class="govuk-table__cell govuk-table__cell--numeric">([\d.]+)</td>', text)
    assert row, "the corrections table has no support request row"
    assert row.groups() == ("5", "2", "40.0")


def test_corrected_category_counts_against_bot_category(web):
    from store.triage import TriageStore

    app, store, _config = web
    this_week = TODAY - timedelta(days=TODAY.weekday())
    with Session(store.engine) as session, session.begin():
        pk = _message(session, 1, _noon(this_week), "query").id
        _message(session, 2, _noon(this_week), "query")
    TriageStore(store).correct_category(pk, "support_request", COORDINATOR, allowed={"support_request"})
    client = app.test_client()
    sign_in(client, COORDINATOR)

    stats = AccountStore(store).dashboard_stats(TODAY, "Europe/London")
    page = client.get("/").get_data(as_text=True)
    chart = page[page.index('id="chart-corrections"'):]
    chart = chart[:chart.index("</svg>")]

    assert stats.message_total("query") == 2
    assert stats.correction_total("query") == 1
    assert stats.correction_rate("query") == 50.0
    assert stats.message_total("support_request") == 0
    assert stats.referrals[-1] == 1
    assert "Query" in chart
    assert "50" in chart


# Audit log ---------------------------------------------------------------------------

def _events(store, count: int) -> None:
    with Session(store.engine) as session, session.begin():
        for number in range(count):
            add_audit(session, COORDINATOR if number % 2 else ADMIN, "case_updated" if number % 3 else "view",
                      target_type="case", target_id=f"CCAS-2026-{number:04d}",
                      at=datetime(2026, 10, 1, tzinfo=timezone.utc) + timedelta(minutes=number))


def test_audit_log_pages_newest_first(web):
    app, store, _config = web
    _events(store, 120)
    client = app.test_client()
    sign_in(client, COORDINATOR)
    # The sign-in events of the fixture come first: they are newer than the events added here.
    newer = AccountStore(store).list_audit().total - 120
    first = _targets(client.get("/audit").get_data(as_text=True))
    assert len(first) == 50 - newer
    assert first[:3] == [119, 118, 117]
    assert "page 1 of 3" in client.get("/audit").get_data(as_text=True)
    third = _targets(client.get("/audit?page=3").get_data(as_text=True))
    assert third[-1] == 0
    assert 119 not in third


def _targets(page: str) -> list[int]:
    """Return the case numbers in the audit table's Target column, in page order."""
    return [int(number) for number in re.findall(r'<td class="govuk-table__cell">case CCAS-2026-(\d{4})</td>', page)]


def test_audit_log_filters(web):
    app, store, _config = web
    _events(store, 30)
    client = app.test_client()
    sign_in(client, ADMIN)
    by_target = _targets(client.get("/audit?target=case:CCAS-2026-0007").get_data(as_text=True))
    assert by_target == [7]
    numbers = _targets(client.get(f"/audit?actor={COORDINATOR}&action=case_updated").get_data(as_text=True))
    assert numbers and all(n % 2 and n % 3 for n in numbers)
    assert len(numbers) == len([n for n in range(30) if n % 2 and n % 3])


def test_audit_log_times_match_other_pages(web):
    app, store, _config = web
    _events(store, 8)
    client = app.test_client()
    sign_in(client, ADMIN)

    html = client.get("/audit?target=case:CCAS-2026-0007").get_data(as_text=True)

    assert "1 Oct 2026 00:07 UTC" in html
    assert "01/10/2026" not in html


def test_audit_view_records_viewer(web):
    app, store, _config = web
    with app.test_request_context("/cases/CCAS-2026-0001"):
        g.user = CurrentUser(id=1, username=COORDINATOR, display_name="Casey", role="coordinator")
        audit_view("case", "CCAS-2026-0001")
    page = AccountStore(store).list_audit(action="view")
    assert [(row.actor, row.target_type, row.target_id) for row in page.rows] == [
        (COORDINATOR, "case", "CCAS-2026-0001")]


# Users page ----------------------------------------------------------------------------

def test_users_page_for_admins_only(web):
    app, _store, _config = web
    for username, status in ((ADMIN, 200), (COORDINATOR, 403), (PANEL_MEMBER, 403)):
        client = app.test_client()
        sign_in(client, username)
        assert client.get("/users").status_code == status, username


def test_admin_adds_user_who_can_sign_in(web):
    app, store, _config = web
    client = app.test_client()
    sign_in(client, ADMIN)
    token = csrf_token(client, "/users")
    response = client.post("/users", data={"csrf_token": token, "username": "Robin.New@severnshire.gov.example",
                                           "display_name": "Robin New", "role": "coordinator",
                                           "password": "a long enough passphrase"})
    assert response.status_code == 302
    assert "Added robin.new@severnshire.gov.example" in client.get("/users").get_data(as_text=True)
    assert sign_in(app.test_client(), "robin.new@severnshire.gov.example",
                   "a long enough passphrase").status_code == 302
    added = AccountStore(store).list_audit(action="user_added").rows[0]
    assert added.actor == ADMIN
    assert "passphrase" not in str(added.detail)


def test_add_user_shows_errors(web):
    app, _store, _config = web
    client = app.test_client()
    sign_in(client, ADMIN)
    token = csrf_token(client, "/users")
    response = client.post("/users", data={"csrf_token": token, "username": COORDINATOR, "role": "coordinator",
                                           "password": "a long enough passphrase"})
    assert response.status_code == 400
    assert "An account with this username already exists" in response.get_data(as_text=True)
    response = client.post("/users", data={"csrf_token": token, "username": "", "role": "", "password": "short"})
    text = response.get_data(as_text=True)
    for message in ("Enter a username", "Select a role", "Enter a password of at least 12 characters"):
        assert message in text


def test_admin_changes_role_and_disables(web):
    app, store, _config = web
    accounts = AccountStore(store)
    coordinator_id = accounts.find_user(COORDINATOR).id
    session_of_coordinator = app.test_client()
    sign_in(session_of_coordinator, COORDINATOR)

    client = app.test_client()
    sign_in(client, ADMIN)
    token = csrf_token(client, "/users")
    assert client.post(f"/users/{coordinator_id}/role", data={"csrf_token": token, "role": "panel_member"}
                       ).status_code == 302
    assert accounts.find_user(COORDINATOR).role == "panel_member"
    # The new role applies to the running session at once.
    assert session_of_coordinator.get("/audit").status_code == 403

    assert client.post(f"/users/{coordinator_id}/active", data={"csrf_token": token, "active": "0"}
                       ).status_code == 302
    assert not accounts.find_user(COORDINATOR).active
    assert session_of_coordinator.get("/").status_code == 302
    actions = [row.action for row in accounts.list_audit(actor=ADMIN).rows]
    assert "user_role_changed" in actions
    assert "user_disabled" in actions


def test_admin_cannot_disable_self(web):
    app, store, _config = web
    client = app.test_client()
    sign_in(client, ADMIN)
    admin_id = AccountStore(store).find_user(ADMIN).id
    token = csrf_token(client, "/users")
    response = client.post(f"/users/{admin_id}/active", data={"csrf_token": token, "active": "0"})
    assert response.status_code == 302
    assert AccountStore(store).find_user(ADMIN).active
    assert "You cannot change your own account" in client.get("/users").get_data(as_text=True)


def test_no_view_events_for_dashboard(web):
    app, store, _config = web
    client = app.test_client()
    sign_in(client, ADMIN)
    client.get("/")
    with Session(store.engine) as session:
        assert session.scalars(select(AuditEvent).where(AuditEvent.action == "view")).first() is None


def test_demo_config_runs_web_app(tmp_path, monkeypatch, capsys):
    from bot.app import open_store
    from bot.cli import main
    from bot.config import load_config
    from bot.demo import run_demo
    from bot.web import create_app

    folder = tmp_path / "demo"
    assert run_demo(folder) == 0
    printed = capsys.readouterr().out
    config_path = folder / "config.toml"
    monkeypatch.setenv("CCAS_TEST_DEMO_PASSWORD", "correct horse battery staple")
    added = main(["--config", str(config_path), "users", "add", "coordinator@marlshire.gov.example",
                  "--role", "coordinator", "--password-env", "CCAS_TEST_DEMO_PASSWORD"])
    monkeypatch.setenv("CCAS_WEB_SECRET_KEY", "a" * 48)
    config = load_config(config_path)
    app = create_app(config, open_store(config))
    client = app.test_client()
    signed_in = sign_in(client, "coordinator@marlshire.gov.example")
    queue = client.get("/queue").get_data(as_text=True)
    outbox = [path.read_text(encoding="utf-8", errors="replace") for path in (folder / "outbox").glob("*.eml")]

    assert f"ccas-bot --config {config_path} web" in printed
    assert added == 0
    assert signed_in.status_code == 302
    assert config.web.secure_cookies is False
    assert config.web.host == "127.0.0.1"
    assert "Marlshire County Council" in queue
    assert "Severnshire" not in queue
    assert outbox
    assert not [text for text in outbox if "Severnshire" in text]
