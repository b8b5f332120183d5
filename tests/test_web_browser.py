"""The web app in a real browser: sign-in, a held reply approved and sent, agenda downloads, a meeting
recorded through to its outcome email, and an axe-core accessibility check of every page.

Headless Chromium (the Debian package) runs under Playwright. The app is served by waitress
on 127.0.0.1, the bot polls a folder mailbox in the test's own folder, and replies go to
the test SMTP server on 127.0.0.1. One browser serves the whole session.
"""

from __future__ import annotations

import csv
import email
import email.policy
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from argon2 import PasswordHasher
from docx import Document
from sqlalchemy import func, select

import mailfactory

pytest.register_assert_rewrite("browser")

from bot.app import build_context, build_mailbox, build_sender, open_store
from bot.config import Config, config_from_mapping
from bot.intake import Intake
from bot.outcomes import draft_outcomes
from bot.panel_dates import next_meeting
from bot.pipeline import identify_raw
from bot.web import create_app
from browser import LiveServer, sign_in
from store import accounts
from store.models import Message
from store.panel import PanelStore
from store.records import Store, TriageRecord
from webtools import PASSWORD, SECRET_ENV, add_user

pytest_plugins = ["browser"]

LEAD = "lead.teacher@brambleway.sch.example"
QUERY_SENDER = f"nia.gwent@{mailfactory.HEALTH_DOMAIN}"
SMTP_PASSWORD_ENV = "TEST_SMTP_PASSWORD"
# axe-core impact levels that fail the accessibility check.
FAILING_IMPACTS = {"serious", "critical"}
# GET endpoints the accessibility check does not open as pages: files, redirects to other sites, JSON.
NOT_PAGES = {"static", "govuk_assets", "health", "auth.oidc_start", "auth.oidc_callback", "triage.attachment",
             "panel.agenda_export"}


@dataclass
class Site:
    """The web app on a live server, over a store and mailbox this test prepared."""

    url: str
    app: object
    store: Store
    config: Config
    inbox: Path

    def poll(self):
        """Run one poll as `ccas-bot poll --once` does: read the inbox, store, send what is pending."""
        return Intake(build_mailbox(self.config), build_context(self.config, self.store),
                      build_sender(self.config)).poll_once()

    def deliver(self, name: str, message) -> None:
        (self.inbox / f"{name}.eml").write_bytes(message.as_bytes())

    @property
    def panel(self) -> PanelStore:
        return PanelStore(self.store, self.config)

    def meeting_date(self) -> date:
        return next_meeting(self.config, date.today(), self.panel.holidays)


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    """Hash with argon2id at its lowest cost, because these tests are not about hashing."""
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
def site(tmp_path: Path, smtp_server, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, "browser-test-secret-key-that-is-long-enough")
    monkeypatch.setenv(SMTP_PASSWORD_ENV, smtp_server.password)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    settings = {
        **mailfactory.council_settings(),
        "store": {"url": f"sqlite:///{tmp_path / 'store.sqlite3'}"},
        "mailbox": {"backend": "folder", "folder": {
            "inbox_path": "inbox", "processed_path": "processed", "quarantine_path": "quarantine"}},
        "sending": {"backend": "smtp", "smtp": {
            "host": smtp_server.host, "port": smtp_server.port, "security": "starttls",
            "username": smtp_server.username, "password_env": SMTP_PASSWORD_ENV,
            "ca_file": str(smtp_server.ca_file), "timeout_seconds": 10}},
        "routing": {"hold_replies_for_review": True},
        "web": {"secret_key_env": SECRET_ENV, "secure_cookies": False},
    }
    config = config_from_mapping(settings, base_dir=tmp_path)
    store = open_store(config)
    add_user(store, "coord", "coordinator", display_name="Casey Coordinator")
    app = create_app(config, store)
    with LiveServer(app) as server:
        yield Site(url=server.url, app=app, store=store, config=config, inbox=inbox)


def add_case(site: Site, case_id: str) -> None:
    site.store.upsert_cases([{"id": case_id, "first_name": "Robin", "last_name": "Hollowell", "status": "open",
                              "lead_email": LEAD}])


def queue_for_meeting(site: Site, number: int, case_id: str, item: str = "new_referrals") -> None:
    """Store a triaged message about `case_id`, queued under `item` of the next meeting."""
    raw = (f"From: {LEAD}\r\nMessage-ID: <agenda{number}@brambleway.sch.example>\r\nSubject: Referral\r\n\r\n"
           "Referral for the panel.\r\n").encode()
    message_id, synthesised, digest = identify_raw(raw)
    at = datetime.combine(site.meeting_date() - timedelta(days=2), time(9), tzinfo=timezone.utc)
    site.store.record_triage(TriageRecord(
        message_id=message_id, message_id_synthesised=synthesised, sha256=digest, raw=raw, source="folder",
        folder="inbox", uidvalidity=None, uid=f"agenda{number}", outcome="handled", reasons=[],
        category="support_request", case_id=case_id, agenda_items=[item], at=at))


def query_message():
    """A professional's question, which the bot routes to a person with its acknowledgement held."""
    return mailfactory._base(
        f"Dr Nia Gwent <{QUERY_SENDER}>", "Question about the CCAS panel",
        "Dear CCAS team,\n\nCould you tell me how often the panel meets and what information you need with "
        "a referral? I would like to understand the process before I refer anyone.\n\nKind regards,\n"
        "Dr Nia Gwent\nClinical Psychologist\n")


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def click_button(page, name: str) -> None:
    """Click the one button whose accessible name starts with `name` (the rest is visually hidden)."""
    page.get_by_role("button", name=re.compile(rf"^{re.escape(name)}")).click()


# (a) Signing in -----------------------------------------------------------------------


def test_sign_in_and_out(page, site, console_errors):
    sign_in(page, site.url, "coord", "not the password")

    assert page.get_by_role("heading", name="There is a problem").is_visible()
    assert urlsplit(page.url).path == "/sign-in"

    sign_in(page, site.url, "coord", PASSWORD)

    assert urlsplit(page.url).path == "/"
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    assert "Casey Coordinator" in page.text_content("body")

    page.get_by_role("button", name="Sign out").click()

    assert urlsplit(page.url).path == "/sign-in"
    assert "You have signed out." in page.text_content("body")
    page.goto(f"{site.url}/agenda")
    assert urlsplit(page.url).path == "/sign-in"
    assert console_errors == []


# (b) A held acknowledgement approved and sent -------------------------------------------------


def test_held_acknowledgement_approved_then_sent(page, site, smtp_server):
    query = query_message()
    site.deliver("query", query)
    first = site.poll()
    assert [item.stored.outcome for item in first.processed] == ["needs_person"]
    assert smtp_server.messages == []

    sign_in(page, site.url, "coord", PASSWORD)
    page.get_by_role("link", name="Queue").first.click()
    page.get_by_role("link", name="Question about the CCAS panel").click()
    click_button(page, "Approve and send")
    assert "next poll" in page.text_content("body")
    assert smtp_server.messages == []

    site.poll()

    received = smtp_server.wait_for(1)
    reply = parse(received[0].data)
    assert received[0].rcpt_tos == [QUERY_SENDER]
    assert reply["In-Reply-To"] == query["Message-ID"]
    assert query["Message-ID"] in reply["References"]
    assert reply["Auto-Submitted"] == "auto-replied"


# (c) Agenda downloads -------------------------------------------------------------------------


def test_agenda_downloads(page, site):
    add_case(site, "CCAS-2026-0101")
    queue_for_meeting(site, 1, "CCAS-2026-0101")
    sign_in(page, site.url, "coord", PASSWORD)
    page.get_by_role("link", name="Agenda").first.click()

    with page.expect_download() as csv_download:
        page.get_by_role("link", name="Spreadsheet (CSV)").click()
    with page.expect_download() as docx_download:
        page.get_by_role("link", name="Word document (DOCX)").click()

    meeting = site.meeting_date().isoformat()
    assert csv_download.value.suggested_filename == f"ccas-panel-agenda-{meeting}.csv"
    rows = list(csv.DictReader(io.StringIO(Path(csv_download.value.path()).read_text(encoding="utf-8"))))
    referral = [row for row in rows if row["case_reference"] == "CCAS-2026-0101"]
    assert [row["standing_item"] for row in referral] == ["Review new referrals"]
    assert [row["child"] for row in referral] == ["Robin H."]
    assert not any("Hollowell" in value for row in rows for value in row.values())

    document = Document(io.BytesIO(Path(docx_download.value.path()).read_bytes()))
    cells = [cell.text for table in document.tables for row in table.rows for cell in row.cells]
    headings = [paragraph.text for paragraph in document.paragraphs if paragraph.style.name.startswith("Heading")]
    assert "CCAS-2026-0101" in cells
    assert headings[1:] == ["1. Welcomes and introductions", "2. Review of actions from previous meeting",
                            "3. Review new referrals",
                            "4. Review existing placements / advice for ongoing placements", "5. AOB"]


# (d) A meeting recorded, its outcome approved and sent ------------------------------------------


def test_meeting_outcome_approved_then_sent(page, site, smtp_server):
    add_case(site, "CCAS-2026-0102")
    queue_for_meeting(site, 2, "CCAS-2026-0102")
    meeting = site.meeting_date()
    due = meeting + timedelta(days=14)
    sign_in(page, site.url, "coord", PASSWORD)

    page.get_by_role("link", name="Meetings").first.click()
    page.get_by_role("button", name="Record the next meeting").click()
    click_button(page, "Create the meeting record")

    page.get_by_label("Name", exact=True).fill("A Chair")
    page.get_by_label("Organisation (optional)").fill("CCAS")
    page.get_by_label("Present", exact=True).check()
    click_button(page, "Add to attendance")
    page.get_by_label("Name", exact=True).fill("B Member")
    page.get_by_label("Apologies", exact=True).check()
    click_button(page, "Add to attendance")

    page.get_by_label("Decision on CCAS-2026-0102").select_option("provision_arranged")
    click_button(page, "Save decision")

    page.get_by_label("Case", exact=True).select_option("CCAS-2026-0102")
    page.get_by_label("Owner's email address").fill(LEAD)
    page.get_by_label("What is to be done").fill("Confirm the tutor's start date for CCAS-2026-0102")
    page.get_by_label("Day").fill(str(due.day))
    page.get_by_label("Month").fill(str(due.month))
    page.get_by_label("Year").fill(str(due.year))
    click_button(page, "Add action")
    click_button(page, "Draft outcome emails")
    assert "1 outcome email drafted" in page.text_content("body")

    record = site.panel.get_meeting(meeting)
    assert [(person.name, person.attended) for person in record.attendance] == [("A Chair", True),
                                                                              ("B Member", False)]
    assert [(decision.case_id, decision.kind) for decision in record.decisions] == [
        ("CCAS-2026-0102", "provision_arranged")]
    assert [(action.owner_email, action.due_on) for action in record.actions] == [(LEAD, due)]
    assert smtp_server.messages == []

    page.get_by_role("link", name="Drafts page").first.click()
    assert LEAD in page.text_content("body")
    click_button(page, "Approve and send")
    assert "next poll" in page.text_content("body")

    site.poll()

    received = smtp_server.wait_for(1)
    outcome = parse(received[0].data)
    assert received[0].rcpt_tos == [LEAD]
    assert "[CCAS-2026-0102]" in outcome["Subject"]
    body = outcome.get_body(preferencelist=("plain",)).get_content()
    assert "Confirm the tutor's start date" in body
    assert "Robin" not in received[0].data.decode("utf-8", "replace")


# Accessibility --------------------------------------------------------------------------------


def axe_problems(page, axe) -> list[str]:
    """Run axe-core on the page and describe each serious or critical violation."""
    results = axe.run(page)
    return [f"{urlsplit(page.url).path}: {violation['id']} ({violation['impact']}): {violation['help']} at "
            + ", ".join(" ".join(node["target"]) for node in violation["nodes"][:3])
            for violation in results.response["violations"] if violation["impact"] in FAILING_IMPACTS]


def sample_data(site: Site) -> dict[str, str]:
    """Fill the store with a bit of everything and return a value for each URL argument."""
    site.deliver("referral", mailfactory.referral())
    site.deliver("query", query_message())
    site.deliver("ehcp", mailfactory.ehcp_update())
    site.poll()
    add_case(site, "CCAS-2026-0103")
    queue_for_meeting(site, 3, "CCAS-2026-0103")
    meeting = site.meeting_date()
    panel = site.panel
    meeting_id = panel.create_meeting(meeting, date.today())
    panel.add_action(meeting_id, LEAD, "Send the attendance record for CCAS-2026-0103", case_id="CCAS-2026-0103",
                     due_on=date.today() - timedelta(days=1))
    panel.record_decision(meeting_id, "CCAS-2026-0103", "signposting", "Signposted to the local offer.")
    draft_outcomes(site.store, site.config, meeting_id)
    pk = site.store._read(lambda session: session.scalar(
        select(func.min(Message.id)).where(Message.outcome == "needs_person")))
    return {"pk": str(pk), "case_id": "CCAS-2026-0103", "meeting_date": meeting.isoformat()}


def test_every_page_accessible(page, site, console_errors):
    from axe_playwright_python.sync_playwright import Axe

    # axe-playwright-python injects axe.min.js with page.evaluate, which runs through the
    # DevTools protocol and is not subject to the page's Content-Security-Policy, so the
    # pages keep their CSP (no inline script) and no bypass_csp context is needed.
    axe = Axe()
    values = sample_data(site)
    add_user(site.store, "admin", "admin", display_name="Alex Admin")
    problems: list[str] = []

    page.goto(f"{site.url}/sign-in")
    problems += axe_problems(page, axe)
    sign_in(page, site.url, "admin", PASSWORD)

    visited = []
    for rule in sorted(site.app.url_map.iter_rules(), key=lambda rule: rule.rule):
        if "GET" not in rule.methods or rule.endpoint in NOT_PAGES or rule.endpoint == "auth.sign_in":
            continue
        missing = rule.arguments - values.keys()
        assert not missing, f"no sample value for {sorted(missing)} of {rule.endpoint}; add one in sample_data"
        path = rule.rule
        for name in rule.arguments:
            path = re.sub(rf"<(?:[a-z]+:)?{name}>", values[name], path)
        response = page.goto(f"{site.url}{path}")
        assert response.status == 200, f"{path} answered {response.status}"
        problems += axe_problems(page, axe)
        visited.append(rule.endpoint)

    assert {"admin.dashboard", "triage.queue", "triage.message", "cases.case_list", "cases.case", "panel.agenda",
            "panel.meetings", "panel.meeting", "panel.drafts", "panel.actions"} <= set(visited)
    assert problems == []
    assert console_errors == []
