"""The panel pages of the web app: agenda, exports, meetings, drafts and actions, through the Flask test client."""

from __future__ import annotations

import csv
import email
import email.policy
import io
import re
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import icalendar
import pytest
from argon2 import PasswordHasher
from docx import Document
from sqlalchemy import select

from bot.panel_dates import next_meeting, previous_meeting
from bot.pipeline import identify_raw
from store import accounts
from store.models import AuditEvent, Correction, OutboxItem
from store.panel import PanelStore, QueuedMail
from store.records import PlannedMail, TriageRecord
from webtools import add_user, make_web_app, sign_in

LEAD = "lead.nurse@health.example"
OWNER = "panel.member@school.example"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    """Hash with argon2id at its lowest cost, because signing in is not what these tests are about."""
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
def web(tmp_path: Path):
    app, store, config = make_web_app(tmp_path, council={
        "la_name": "Testshire County Council", "ccas_inbox": "ccas@testshire.gov.example",
        "send_inbox": "send@testshire.gov.example", "panel_members": ["chair@testshire.gov.example"]})
    add_user(store, "coord", "coordinator")
    return app, store, config


@pytest.fixture
def panel(web) -> PanelStore:
    _app, store, config = web
    return PanelStore(store, config)


@pytest.fixture
def meeting_date(web, panel) -> date:
    return next_meeting(web[2], date.today(), panel.holidays)


@pytest.fixture
def client(web):
    client = web[0].test_client()
    assert sign_in(client, "coord").status_code == 302
    return client


@pytest.fixture
def member(web):
    add_user(web[1], "member", "panel_member")
    client = web[0].test_client()
    assert sign_in(client, "member").status_code == 302
    return client


def add_case(store, case_id: str, **fields) -> None:
    row = {"id": case_id, "first_name": "Sam", "last_name": "Taylor", "status": "open", "lead_email": LEAD}
    row.update(fields)
    store.upsert_cases([row])


def queue_message(store, number: int, case_id: str | None, item: str, meeting: date) -> int:
    """Store a triaged message queued under `item`, received two days before `meeting`."""
    raw = f"From: a@school.example\r\nMessage-ID: <m{number}@school.example>\r\nSubject: x\r\n\r\nbody\r\n".encode()
    message_id, synthesised, digest = identify_raw(raw)
    at = datetime.combine(meeting - timedelta(days=2), time(9), tzinfo=timezone.utc)
    stored = store.record_triage(TriageRecord(
        message_id=message_id, message_id_synthesised=synthesised, sha256=digest, raw=raw, source="folder",
        folder="inbox", uidvalidity=None, uid=str(number), outcome="handled", reasons=[],
        category="support_request", case_id=case_id, agenda_items=[item], at=at))
    return stored.pk


def page_text(response) -> str:
    return response.get_data(as_text=True)


def post(client, form_page: str, path: str, data: dict, **kwargs):
    """Post `data` to `path` with the CSRF token from the page at `form_page`, as a browser would."""
    match = CSRF_FIELD.search(page_text(client.get(form_page)))
    assert match, f"no form on {form_page}"
    return client.post(path, data={"csrf_token": match.group(1), **data}, **kwargs)


def audit_events(store, action: str) -> list[AuditEvent]:
    return store._read(lambda session: list(session.scalars(
        select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))))


def outbox_row(store, outbox_id: int) -> OutboxItem:
    return store._read(lambda session: session.get(OutboxItem, outbox_id))


def entry_order(html: str, case_ids: list[str]) -> list[str]:
    return sorted(case_ids, key=html.index)


# Agenda ------------------------------------------------------------------------------


def test_agenda_standing_items_in_order(client, web, meeting_date):
    _app, store, _config = web
    add_case(store, "CCAS-2026-0001")
    queue_message(store, 1, "CCAS-2026-0001", "new_referrals", meeting_date)

    response = client.get("/agenda")
    html = page_text(response)

    assert response.status_code == 200
    titles = ["1. Welcomes and introductions", "2. Review of actions from previous meeting",
              "3. Review new referrals", "4. Review existing placements", "5. AOB"]
    positions = [html.index(title) for title in titles]
    assert positions == sorted(positions)
    assert html.index("CCAS-2026-0001") > positions[2]
    assert html.index("CCAS-2026-0001") < positions[3]
    assert "Sam T." in html
    assert "Taylor" not in html


def test_agenda_view_audited(client, web, meeting_date):
    client.get(f"/agenda?date={meeting_date.isoformat()}")

    events = [event for event in audit_events(web[1], "view") if event.target_type == "agenda"]
    assert [(event.actor, event.target_id) for event in events] == [("coord", meeting_date.isoformat())]


def test_agenda_invalid_date_rejected(client):
    assert client.get("/agenda?date=9-12-2026").status_code == 400


def test_agenda_prepare_and_move(client, web, meeting_date):
    _app, store, _config = web
    for number, case_id in enumerate(["CCAS-2026-0001", "CCAS-2026-0002", "CCAS-2026-0003"], start=1):
        add_case(store, case_id)
        queue_message(store, number, case_id, "new_referrals", meeting_date)
    agenda_url = f"/agenda?date={meeting_date.isoformat()}"
    assert "Move down" not in page_text(client.get(agenda_url))

    prepared = post(client, agenda_url, "/agenda/prepare", {"date": meeting_date.isoformat()})
    html = page_text(client.get(agenda_url))
    item_id = re.search(r'id="item-(\d+)"[\s\S]*?CCAS-2026-0001', html).group(1)
    moved = post(client, agenda_url, "/agenda/move",
                 {"date": meeting_date.isoformat(), "item_id": item_id, "direction": "down"})
    html = page_text(client.get(agenda_url))

    assert prepared.status_code == 302
    assert moved.status_code == 302
    assert entry_order(html, ["CCAS-2026-0001", "CCAS-2026-0002", "CCAS-2026-0003"]) == [
        "CCAS-2026-0002", "CCAS-2026-0001", "CCAS-2026-0003"]
    assert [event.actor for event in audit_events(store, "agenda_prepared")] == ["coord"]
    reordered = audit_events(store, "agenda_reordered")
    assert [(event.actor, event.detail["direction"]) for event in reordered] == [("coord", "down")]


def test_prepared_agenda_can_be_prepared_again(client, web, meeting_date):
    _app, store, _config = web
    add_case(store, "CCAS-2026-0001")
    queue_message(store, 1, "CCAS-2026-0001", "new_referrals", meeting_date)
    agenda_url = f"/agenda?date={meeting_date.isoformat()}"
    post(client, agenda_url, "/agenda/prepare", {"date": meeting_date.isoformat()})
    add_case(store, "CCAS-2026-0002")
    queue_message(store, 2, "CCAS-2026-0002", "new_referrals", meeting_date)

    prepared_page = page_text(client.get(agenda_url))
    again = post(client, agenda_url, "/agenda/prepare", {"date": meeting_date.isoformat()})
    agenda = PanelStore(store, web[2]).list_agenda(meeting_date)

    assert "Prepare the agenda again" in prepared_page
    assert again.status_code == 302
    assert [entry.item_ids != [] for entry in agenda.section("new_referrals").entries] == [True, True]
    assert len(audit_events(store, "agenda_prepared")) == 2


def test_agenda_move_first_up_changes_nothing(client, web, meeting_date):
    _app, store, _config = web
    for number, case_id in enumerate(["CCAS-2026-0001", "CCAS-2026-0002"], start=1):
        add_case(store, case_id)
        queue_message(store, number, case_id, "existing_placements", meeting_date)
    agenda_url = f"/agenda?date={meeting_date.isoformat()}"
    post(client, agenda_url, "/agenda/prepare", {"date": meeting_date.isoformat()})
    first = PanelStore(store, web[2]).list_agenda(meeting_date).section("existing_placements").entries[0]

    post(client, agenda_url, "/agenda/move",
         {"date": meeting_date.isoformat(), "item_id": first.item_ids[0], "direction": "up"})

    html = page_text(client.get(agenda_url))
    assert entry_order(html, ["CCAS-2026-0001", "CCAS-2026-0002"]) == ["CCAS-2026-0001", "CCAS-2026-0002"]


def test_prepare_refused_after_next_meeting(client, web, meeting_date):
    later = next_meeting(web[2], meeting_date + timedelta(days=1))
    agenda_url = f"/agenda?date={later.isoformat()}"

    assert "Prepare the agenda" not in page_text(client.get(agenda_url))
    response = post(client, agenda_url, "/agenda/prepare", {"date": later.isoformat()})

    assert response.status_code == 400
    assert "only the next meeting" in page_text(response).lower()


def test_aob_item_added(client, web, meeting_date):
    agenda_url = f"/agenda?date={meeting_date.isoformat()}"

    response = post(client, agenda_url, "/agenda/aob",
                    {"date": meeting_date.isoformat(), "aob-title": "Spring term training dates", "aob-case": ""})

    html = page_text(client.get(agenda_url))
    assert response.status_code == 302
    assert html.index("Spring term training dates") > html.index("5. AOB")
    assert [event.actor for event in audit_events(web[1], "agenda_item_added")] == ["coord"]


def test_aob_title_escaped_in_move_buttons(client, web, meeting_date):
    _app, store, _config = web
    agenda_url = f"/agenda?date={meeting_date.isoformat()}"
    post(client, agenda_url, "/agenda/prepare", {"date": meeting_date.isoformat()})
    for title in ("<b>Transport</b> costs", "Training dates"):
        post(client, agenda_url, "/agenda/aob", {"date": meeting_date.isoformat(), "aob-title": title})

    html = page_text(client.get(agenda_url))

    assert "<b>Transport</b>" not in html
    assert "&lt;b&gt;Transport&lt;/b&gt; costs" in html
    assert 'Move down<span class="govuk-visually-hidden"> &lt;b&gt;Transport' in html


def test_aob_without_title_shows_error(client, meeting_date):
    agenda_url = f"/agenda?date={meeting_date.isoformat()}"

    response = post(client, agenda_url, "/agenda/aob", {"date": meeting_date.isoformat(), "aob-title": " "})

    html = page_text(response)
    assert response.status_code == 400
    assert "There is a problem" in html
    assert 'href="#aob-title"' in html


def test_aob_unknown_case_shows_error(client, meeting_date):
    agenda_url = f"/agenda?date={meeting_date.isoformat()}"

    response = post(client, agenda_url, "/agenda/aob",
                    {"date": meeting_date.isoformat(), "aob-title": "Transport", "aob-case": "CCAS-2026-9999"})

    assert response.status_code == 400
    assert "Case CCAS-2026-9999 not found" in page_text(response)


# Exports -----------------------------------------------------------------------------


@pytest.fixture
def exported_agenda(client, web, meeting_date):
    _app, store, _config = web
    add_case(store, "CCAS-2026-0001")
    queue_message(store, 1, "CCAS-2026-0001", "new_referrals", meeting_date)
    return lambda output_format: client.get(f"/agenda/export?date={meeting_date.isoformat()}&format={output_format}")


def test_export_csv_download(exported_agenda, web, meeting_date):
    response = exported_agenda("csv")

    rows = list(csv.DictReader(io.StringIO(page_text(response))))
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert f"ccas-panel-agenda-{meeting_date.isoformat()}.csv" in response.headers["Content-Disposition"]
    assert [row["case_reference"] for row in rows if row["case_reference"]] == ["CCAS-2026-0001"]
    assert [row["child"] for row in rows if row["case_reference"]] == ["Sam T."]
    events = audit_events(web[1], "agenda_exported")
    assert [(event.actor, event.detail["format"]) for event in events] == [("coord", "csv")]


def test_export_docx_opens(exported_agenda):
    response = exported_agenda("docx")

    document = Document(io.BytesIO(response.data))
    cells = [cell.text for table in document.tables for row in table.rows for cell in row.cells]
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert "CCAS-2026-0001" in cells


def test_export_ics_has_no_case_reference(exported_agenda, meeting_date):
    response = exported_agenda("ics")

    calendar = icalendar.Calendar.from_ical(response.data)
    event = next(iter(calendar.walk("VEVENT")))
    assert event.decoded("dtstart").date() == meeting_date
    assert b"CCAS-2026-0001" not in response.data


def test_export_html_is_attachment(exported_agenda):
    response = exported_agenda("html")

    assert response.headers["Content-Disposition"].startswith("attachment")
    assert "CCAS-2026-0001" in page_text(response)


def test_export_unknown_format_rejected(exported_agenda):
    assert exported_agenda("pdf").status_code == 400


# Meetings ----------------------------------------------------------------------------


@pytest.fixture
def recorded_meeting(client, web, meeting_date):
    """A meeting record created through the page, with one case on the agenda."""
    _app, store, _config = web
    add_case(store, "CCAS-2026-0001")
    queue_message(store, 1, "CCAS-2026-0001", "new_referrals", meeting_date)
    url = f"/meetings/{meeting_date.isoformat()}"
    response = post(client, url, f"{url}/create", {})
    assert response.status_code == 302
    return url


def test_meeting_created_from_page(client, web, meeting_date, recorded_meeting):
    html = page_text(client.get(recorded_meeting))

    assert "Create the meeting record" not in html
    assert "Decision on CCAS-2026-0001" in html
    assert PanelStore(web[1], web[2]).get_meeting(meeting_date) is not None
    listing = page_text(client.get("/meetings"))
    assert f'href="/meetings/{meeting_date.isoformat()}"' in listing


def test_meeting_after_next_refused(client, web, meeting_date):
    later = next_meeting(web[2], meeting_date + timedelta(days=1))
    url = f"/meetings/{later.isoformat()}"

    response = post(client, url, f"{url}/create", {})

    assert response.status_code == 400
    assert PanelStore(web[1], web[2]).get_meeting(later) is None


def test_attendance_present_and_apologies(client, web, meeting_date, recorded_meeting):
    post(client, recorded_meeting, f"{recorded_meeting}/attendance",
         {"attendee-name": "A Chair", "attendee-organisation": "CCAS", "attendee-email": "chair@testshire.gov.example",
          "attendee-attended": "present"})
    post(client, recorded_meeting, f"{recorded_meeting}/attendance",
         {"attendee-name": "B Member", "attendee-attended": "apologies"})

    record = PanelStore(web[1], web[2]).get_meeting(meeting_date)
    assert [(person.name, person.attended) for person in record.attendance] == [("A Chair", True),
                                                                              ("B Member", False)]
    html = page_text(client.get(recorded_meeting))
    assert "Apologies" in html


def test_attendance_needs_name_and_choice(client, recorded_meeting):
    response = post(client, recorded_meeting, f"{recorded_meeting}/attendance", {"attendee-name": ""})

    html = page_text(response)
    assert response.status_code == 400
    assert 'href="#attendee-name"' in html
    assert 'href="#attendee-attended"' in html


def test_attendee_removed(client, web, meeting_date, recorded_meeting):
    post(client, recorded_meeting, f"{recorded_meeting}/attendance",
         {"attendee-name": "A Chair", "attendee-attended": "present"})
    attendee = PanelStore(web[1], web[2]).get_meeting(meeting_date).attendance[0]

    post(client, recorded_meeting, f"{recorded_meeting}/attendance/{attendee.id}/remove", {})

    assert PanelStore(web[1], web[2]).get_meeting(meeting_date).attendance == []


def test_notes_saved(client, web, meeting_date, recorded_meeting):
    post(client, recorded_meeting, f"{recorded_meeting}/notes", {"notes": "Quorate."})

    assert PanelStore(web[1], web[2]).get_meeting(meeting_date).notes == "Quorate."


def test_decision_recorded_and_audited(client, web, meeting_date, recorded_meeting):
    response = post(client, recorded_meeting, f"{recorded_meeting}/decisions",
                    {"case_id": "CCAS-2026-0001", "kind": "provision_arranged", "summary": ""})

    record = PanelStore(web[1], web[2]).get_meeting(meeting_date)
    assert response.status_code == 302
    assert [(decision.case_id, decision.kind) for decision in record.decisions] == [
        ("CCAS-2026-0001", "provision_arranged")]
    events = audit_events(web[1], "panel_decision_recorded")
    assert [(event.actor, event.target_id) for event in events] == [("coord", "CCAS-2026-0001")]


def test_decision_needing_summary_refused(client, web, meeting_date, recorded_meeting):
    response = post(client, recorded_meeting, f"{recorded_meeting}/decisions",
                    {"case_id": "CCAS-2026-0001", "kind": "signposting", "summary": ""})

    assert response.status_code == 400
    assert 'href="#decision-CCAS-2026-0001-summary"' in page_text(response)
    assert PanelStore(web[1], web[2]).get_meeting(meeting_date).decisions == []


def test_action_added_with_due_date(client, web, meeting_date, recorded_meeting):
    due = meeting_date + timedelta(days=14)

    post(client, recorded_meeting, f"{recorded_meeting}/actions",
         {"action-case": "CCAS-2026-0001", "action-owner": OWNER, "action-description": "Confirm the tutor",
          "action-due-day": str(due.day), "action-due-month": str(due.month), "action-due-year": str(due.year)})

    actions = PanelStore(web[1], web[2]).get_meeting(meeting_date).actions
    assert [(action.owner_email, action.due_on, action.case_id) for action in actions] == [
        (OWNER, due, "CCAS-2026-0001")]
    assert [event.actor for event in audit_events(web[1], "action_added")] == ["coord"]


def test_action_with_impossible_date_refused(client, web, meeting_date, recorded_meeting):
    response = post(client, recorded_meeting, f"{recorded_meeting}/actions",
                    {"action-owner": OWNER, "action-description": "Confirm the tutor",
                     "action-due-day": "31", "action-due-month": "2", "action-due-year": "2027"})

    assert response.status_code == 400
    assert "must be a real date" in page_text(response)
    assert PanelStore(web[1], web[2]).get_meeting(meeting_date).actions == []


def test_draft_outcomes_then_approve(client, web, meeting_date, recorded_meeting):
    _app, store, _config = web
    post(client, recorded_meeting, f"{recorded_meeting}/decisions",
         {"case_id": "CCAS-2026-0001", "kind": "advice_and_guidance", "summary": "Advice about a reduced timetable."})

    drafted = post(client, recorded_meeting, f"{recorded_meeting}/draft-outcomes", {})
    assert "1 outcome email drafted" in page_text(client.get(recorded_meeting))
    drafts_page = page_text(client.get("/drafts"))
    draft_id = int(re.search(r'id="draft-(\d+)"', drafts_page).group(1))
    assert drafted.status_code == 302
    assert LEAD in drafts_page
    assert "Outcome email: Advice and guidance" in drafts_page
    assert "Advice about a reduced timetable." in drafts_page
    assert "next poll" in drafts_page
    assert outbox_row(store, draft_id).status == "draft"

    approved = post(client, "/drafts", f"/drafts/{draft_id}/approve", {})

    assert approved.status_code == 302
    assert outbox_row(store, draft_id).status == "pending"
    assert [item.id for item in store.pending_outbox()] == [draft_id]
    events = audit_events(store, "draft_approved")
    assert [(event.actor, event.target_id) for event in events] == [("coord", str(draft_id))]
    assert [event.actor for event in audit_events(store, "outcomes_drafted")] == ["coord"]


def test_draft_outcomes_names_case_without_lead(client, web, meeting_date, recorded_meeting):
    _app, store, _config = web
    add_case(store, "CCAS-2026-0001", lead_email="")
    post(client, recorded_meeting, f"{recorded_meeting}/decisions",
         {"case_id": "CCAS-2026-0001", "kind": "provision_arranged"})

    post(client, recorded_meeting, f"{recorded_meeting}/draft-outcomes", {})

    html = page_text(client.get(recorded_meeting))
    assert "0 outcome emails drafted" in html
    assert "No draft for CCAS-2026-0001: the case has no lead professional email." in html


def test_draft_rejected_never_pending(client, web, meeting_date, recorded_meeting):
    _app, store, _config = web
    post(client, recorded_meeting, f"{recorded_meeting}/decisions",
         {"case_id": "CCAS-2026-0001", "kind": "provision_arranged"})
    post(client, recorded_meeting, f"{recorded_meeting}/draft-outcomes", {})
    draft_id = int(re.search(r'id="draft-(\d+)"', page_text(client.get("/drafts"))).group(1))

    post(client, "/drafts", f"/drafts/{draft_id}/reject", {f"reason-{draft_id}": "wrong case"})

    assert outbox_row(store, draft_id).status == "rejected"
    assert store.pending_outbox() == []
    assert "No drafts are waiting" in page_text(client.get("/drafts"))


def test_approving_twice_shows_error(client, web, meeting_date, recorded_meeting):
    post(client, recorded_meeting, f"{recorded_meeting}/decisions",
         {"case_id": "CCAS-2026-0001", "kind": "provision_arranged"})
    post(client, recorded_meeting, f"{recorded_meeting}/draft-outcomes", {})
    draft_id = int(re.search(r'id="draft-(\d+)"', page_text(client.get("/drafts"))).group(1))
    post(client, "/drafts", f"/drafts/{draft_id}/approve", {})

    again = post(client, "/drafts", f"/drafts/{draft_id}/approve", {})

    assert again.status_code == 409
    assert "not a draft" in page_text(again)


def test_drafts_page_lists_every_purpose(client, web, panel):
    raw = (b"From: ccas@testshire.gov.example\r\nTo: owner@school.example\r\nSubject: Action 3 is due\r\n"
           b"Message-ID: <r1@testshire.gov.example>\r\n\r\nPlease reply with action 3 done.\r\n")
    panel.queue_mail([QueuedMail("action-reminder|3|2026-12-09", None, PlannedMail(
        "panel_action_reminder", "owner@school.example", "r1@testshire.gov.example", raw))], status="draft")

    html = page_text(client.get("/drafts"))

    assert "Action reminder" in html
    assert "owner@school.example" in html
    assert "Please reply with action 3 done." in html


def add_held_reply(store) -> tuple[int, int]:
    """Store a message that needs a person with its acknowledgement held; return the message and outbox ids."""
    raw = b"From: nurse@health.example\r\nMessage-ID: <q1@health.example>\r\nSubject: Question\r\n\r\nHow?\r\n"
    reply = (b"From: ccas@testshire.gov.example\r\nTo: nurse@health.example\r\nSubject: Re: Question\r\n"
             b"Message-ID: <ack1@testshire.gov.example>\r\n\r\nWe have received your message.\r\n")
    message_id, synthesised, digest = identify_raw(raw)
    stored = store.record_triage(TriageRecord(
        message_id=message_id, message_id_synthesised=synthesised, sha256=digest, raw=raw, source="folder",
        folder="inbox", uidvalidity=None, uid="q1", outcome="needs_person", reasons=["review:policy:query"],
        category="query", mail=[PlannedMail("professional_acknowledgement", "nurse@health.example",
                                            "ack1@testshire.gov.example", reply, held=True)]))
    outbox_id = store._read(lambda session: session.scalar(
        select(OutboxItem.id).where(OutboxItem.message_pk == stored.pk)))
    return stored.pk, outbox_id


def test_held_reply_listed_with_message(client, web):
    pk, outbox_id = add_held_reply(web[1])

    html = page_text(client.get("/drafts"))

    assert f'id="draft-{outbox_id}"' in html
    assert "Acknowledgement to a professional" in html
    assert "We have received your message." in html
    assert f"#{pk}" in html


def test_held_reply_approved_from_drafts(client, web):
    _app, store, _config = web
    _pk, outbox_id = add_held_reply(store)

    post(client, "/drafts", f"/drafts/{outbox_id}/approve", {})

    assert outbox_row(store, outbox_id).status == "pending"
    assert [event.actor for event in audit_events(store, "reply_approved")] == ["coord"]


def test_held_reply_rejection_needs_reason(client, web):
    _app, store, _config = web
    pk, outbox_id = add_held_reply(store)

    refused = post(client, "/drafts", f"/drafts/{outbox_id}/reject", {})
    rejected = post(client, "/drafts", f"/drafts/{outbox_id}/reject", {f"reason-{outbox_id}": "already answered"})

    corrections = store._read(lambda session: list(session.scalars(select(Correction))))
    assert refused.status_code == 400
    assert f'href="#reason-{outbox_id}"' in page_text(refused)
    assert rejected.status_code == 302
    assert outbox_row(store, outbox_id).status == "rejected"
    assert [(row.field, row.message_pk) for row in corrections] == [("draft_reject", pk)]


# Actions -----------------------------------------------------------------------------


def test_actions_page_flags_overdue(client, panel):
    overdue = panel.add_action(None, OWNER, "Send the attendance record", due_on=date.today() - timedelta(days=3))
    later = panel.add_action(None, OWNER, "Book the tutor", due_on=date.today() + timedelta(days=30))

    html = page_text(client.get("/actions"))

    overdue_card = html[html.index(f'id="action-{overdue}"'):html.index(f'id="action-{later}"')]
    later_card = html[html.index(f'id="action-{later}"'):]
    assert "Overdue" in overdue_card
    assert "Overdue" not in later_card
    assert OWNER in html


def test_action_marked_done(client, web, panel):
    action_id = panel.add_action(None, OWNER, "Send the attendance record")

    post(client, "/actions", f"/actions/{action_id}/done", {})

    assert panel.get_action(action_id).status == "done"
    assert f'id="action-{action_id}"' not in page_text(client.get("/actions"))
    assert [event.actor for event in audit_events(web[1], "action_updated")] == ["coord"]


def test_action_due_date_changed(client, panel):
    action_id = panel.add_action(None, OWNER, "Send the attendance record", due_on=date(2026, 1, 5))

    post(client, "/actions", f"/actions/{action_id}/due",
         {f"due-{action_id}-day": "12", f"due-{action_id}-month": "1", f"due-{action_id}-year": "2027"})

    assert panel.get_action(action_id).due_on == date(2027, 1, 12)


def test_action_due_date_missing_shows_error(client, panel):
    action_id = panel.add_action(None, OWNER, "Send the attendance record")

    response = post(client, "/actions", f"/actions/{action_id}/due", {})

    assert response.status_code == 400
    assert f'href="#due-{action_id}-day"' in page_text(response)


# Roles -------------------------------------------------------------------------------


def test_panel_member_reads_without_forms(member, web, meeting_date, panel):
    add_case(web[1], "CCAS-2026-0001")
    queue_message(web[1], 1, "CCAS-2026-0001", "new_referrals", meeting_date)
    panel.add_action(None, OWNER, "Send the attendance record")

    add_held_reply(web[1])

    pages = ["/agenda", "/meetings", f"/meetings/{meeting_date.isoformat()}", "/drafts", "/actions"]
    for path in pages:
        response = member.get(path)
        html = page_text(response)
        assert response.status_code == 200, path
        # The only form a panel member sees is the layout's sign-out button.
        assert html.count('method="post"') == 1, path
        assert 'action="/sign-out"' in html, path


def test_panel_member_cannot_change(member, web, meeting_date, panel):
    action_id = panel.add_action(None, OWNER, "Send the attendance record")
    match = CSRF_FIELD.search(page_text(member.get("/agenda")))
    token = match.group(1) if match else ""

    responses = [
        member.post("/agenda/prepare", data={"csrf_token": token, "date": meeting_date.isoformat()}),
        member.post(f"/actions/{action_id}/done", data={"csrf_token": token}),
        member.post(f"/meetings/{meeting_date.isoformat()}/create", data={"csrf_token": token}),
    ]

    assert [response.status_code for response in responses] == [403, 403, 403]
    assert panel.get_action(action_id).status == "open"
    assert panel.get_meeting(meeting_date) is None


def test_signed_out_user_redirected(web):
    response = web[0].test_client().get("/agenda")

    assert response.status_code == 302
    assert "/sign-in" in response.headers["Location"]


def test_previous_meeting_link(client, web, meeting_date):
    earlier = previous_meeting(web[2], meeting_date)

    html = page_text(client.get(f"/agenda?date={meeting_date.isoformat()}"))

    assert f"/agenda?date={earlier.isoformat()}" in html


def test_outcome_draft_body_is_mail_text(client, web, meeting_date, recorded_meeting):
    post(client, recorded_meeting, f"{recorded_meeting}/decisions",
         {"case_id": "CCAS-2026-0001", "kind": "provision_arranged"})
    post(client, recorded_meeting, f"{recorded_meeting}/draft-outcomes", {})
    draft = PanelStore(web[1], web[2]).list_drafts()[0]
    subject = str(email.message_from_bytes(draft.raw, policy=email.policy.default)["Subject"])

    html = page_text(client.get("/drafts"))

    assert subject in html
    assert "Sam" not in html
