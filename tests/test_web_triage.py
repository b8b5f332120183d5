"""The triage queue, the message page and the case pages, through the Flask test client."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import re
from datetime import date, datetime, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

import mailfactory
from bot.app import build_context, build_mailbox, build_sender
from bot.intake import Intake
from store.models import (AgendaItem, AuditEvent, Case, CaseClock, CaseEvent, CaseKey, CaseParty, Correction,
                          Message, OutboxItem, PanelAction, PanelDecision, PanelMeeting)
from store.triage import TriageStore
from webtools import add_user, csrf_token, make_web_app, sign_in

COORDINATOR = "coordinator@testshire.gov.example"
PANEL_MEMBER = "panel.member@testshire.gov.example"
SOCIAL_WORKER = "Sam Okafor <sam.okafor@testchildren.org.example>"


@pytest.fixture
def web(tmp_path):
    app, store, config = make_web_app(tmp_path, **mailfactory.council_settings())
    add_user(store, COORDINATOR, "coordinator")
    add_user(store, PANEL_MEMBER, "panel_member")
    return app, store, config


def dated(message, day: int, hour: int = 9):
    del message["Date"]
    message["Date"] = format_datetime(datetime(2026, 11, day, hour, 0, tzinfo=timezone.utc))
    return message


def deliver(web, *messages) -> list[int]:
    """Put messages in the folder mailbox, run one poll as of each Date header, return their ids."""
    _app, store, config = web
    inbox = Path(config.mailbox.folder.inbox_path)
    inbox.mkdir(parents=True, exist_ok=True)
    start = len(list(inbox.parent.rglob("*.eml")))
    for number, message in enumerate(messages, start=start):
        raw = message if isinstance(message, bytes) else message.as_bytes()
        (inbox / f"{number:03d}.eml").write_bytes(raw)
    poll(web)
    ids = store._read(lambda session: list(session.scalars(select(Message.id).order_by(Message.id))))
    return ids[-len(messages):]


def poll(web):
    _app, store, config = web
    context = dataclasses.replace(build_context(config, store), replay_clock=True)
    return Intake(build_mailbox(config), context, build_sender(config)).poll_once()


def urgent(name: str = "Kai Brook", day: int = 29):
    return dated(mailfactory._base(SOCIAL_WORKER, f"Referral - {name}",
                                   f"Hello,\n\nI am referring {name} (DOB 05/06/2012), Year 9. {name.split()[0]} "
                                   "told his teacher today that he wants to die.\n\nRegards,\nSam Okafor\n"), day)


def query(day: int, subject: str = "A question"):
    return dated(mailfactory._base("Jo Public <jo@webmail.example>", subject,
                                   "Hello, how do I find out about the panel dates?\n"), day)


def signed_in(web, username: str = COORDINATOR):
    app = web[0]
    client = app.test_client()
    assert sign_in(client, username).status_code == 302
    return client


def page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return response.get_data(as_text=True)


def post(client, path: str, data: dict | None = None, *, token_page: str = "/queue"):
    return client.post(path, data={"csrf_token": csrf_token(client, token_page), **(data or {})})


def rows(store, model, *where):
    return store._read(lambda session: list(session.scalars(select(model).where(*where))))


def audit(store, action: str) -> list[AuditEvent]:
    return rows(store, AuditEvent, AuditEvent.action == action)


def outbox_statuses(store) -> list[tuple[str, str]]:
    return [(item.purpose, item.status) for item in rows(store, OutboxItem)]


# Queue --------------------------------------------------------------------------

def test_queue_urgent_first_then_oldest(web):
    newer, older, urgent_pk = deliver(web, query(27, "Newer question"), query(20, "Older question"),
                                      urgent(day=28))
    client = signed_in(web)

    html = page(client, "/queue")

    positions = [html.index(f'id="message-{pk}"') for pk in (urgent_pk, older, newer)]
    assert positions == sorted(positions)


def test_queue_alert_handled_leaves_top(web):
    query_pk, urgent_pk = deliver(web, query(20), urgent(day=28))
    client = signed_in(web)

    response = post(client, f"/messages/{urgent_pk}/alert-handled")
    html = page(client, "/queue")

    assert response.status_code == 302
    assert html.index(f'id="message-{query_pk}"') < html.index(f'id="message-{urgent_pk}"')
    event = audit(web[1], "alert_handled")[0]
    assert (event.actor, event.target_id) == (COORDINATOR, str(urgent_pk))
    assert f"dealt with by {COORDINATOR}" in page(client, f"/messages/{urgent_pk}")


def test_queue_shows_reasons_and_child(web):
    (urgent_pk,) = deliver(web, urgent())
    client = signed_in(web)

    html = page(client, "/queue")

    assert "Signals a risk to a child" in html
    assert "review:urgent" in html
    assert "risk:suicide" in html
    assert "Kai Brook" in html
    assert "Request for support (referral)" in html


def test_queue_filters(web):
    query_pk, urgent_pk = deliver(web, query(20), urgent(day=28))
    client = signed_in(web)

    urgent_only = page(client, "/queue?urgent=1")
    by_category = page(client, "/queue?category=query")

    assert f'id="message-{urgent_pk}"' in urgent_only
    assert f'id="message-{query_pk}"' not in urgent_only
    assert f'id="message-{query_pk}"' in by_category
    assert f'id="message-{urgent_pk}"' not in by_category


def alert_text(store, pk: int) -> str:
    alert = next(item for item in rows(store, OutboxItem, OutboxItem.message_pk == pk)
                 if item.purpose == "duty_urgent_alert")
    parsed = email.message_from_bytes(alert.raw, policy=email.policy.default)
    return parsed.get_content().replace("\r\n", "\n")


def test_alert_link_finds_message_in_queue(tmp_path):
    app, store, config = make_web_app(tmp_path, **mailfactory.council_settings(),
                                      web={"base_url": "https://ccas.testshire.gov.example/"})
    add_user(store, COORDINATOR, "coordinator")
    web = (app, store, config)
    query_pk, urgent_pk = deliver(web, query(20), urgent(day=28))
    reference = rows(store, Message, Message.id == urgent_pk)[0].sha256[:12]

    text = alert_text(store, urgent_pk)
    link = re.search(r"https://ccas\.testshire\.gov\.example/\S+", text).group(0)
    html = page(signed_in(web), link.removeprefix("https://ccas.testshire.gov.example"))
    message_page = page(signed_in(web), f"/messages/{urgent_pk}")

    assert link == f"https://ccas.testshire.gov.example/queue?reference={reference}"
    assert f"Inbox message reference: {reference}" in text
    assert "- suicide or a wish to die is mentioned" in text
    assert "suicide," not in text
    assert f'id="message-{urgent_pk}"' in html
    assert f'id="message-{query_pk}"' not in html
    assert reference in html
    assert reference in message_page
    assert "Risk signal: suicide or a wish to die is mentioned" in message_page


def test_alert_without_base_url_names_queue_command(web):
    (urgent_pk,) = deliver(web, urgent())

    text = alert_text(web[1], urgent_pk)

    assert "`ccas-bot queue`" in text
    assert "https://" not in text.split("Why it was flagged")[1]


def test_queue_rejects_malformed_reference(web):
    query_pk, = deliver(web, query(20))

    html = page(signed_in(web), "/queue?reference=zz'<x>")

    assert "Enter the message reference as it is in the alert email" in html
    assert f'id="message-{query_pk}"' in html


def test_queue_shows_candidates_with_scores(web):
    _app, store, _config = web
    store.upsert_cases([
        {"id": "CCAS-2025-0001", "first_name": "Ellie", "last_name": "Padgett", "dob": date(2012, 3, 1),
         "status": "open"},
        {"id": "CCAS-2025-0002", "first_name": "Ellie", "last_name": "Padgett", "dob": date(2014, 7, 9),
         "status": "open"},
    ])
    message = dated(mailfactory._base(SOCIAL_WORKER, "Update on Ellie Padgett",
                                      "Hello,\n\nEllie Padgett has not been in school for three weeks because "
                                      "of anxiety.\n\nRegards,\nSam Okafor\n"), 25)
    (pk,) = deliver(web, message)
    extracted = rows(store, Message, Message.id == pk)[0].extracted
    assert {candidate["case_id"] for candidate in extracted["match"]["candidates"]} == {
        "CCAS-2025-0001", "CCAS-2025-0002"}
    client = signed_in(web)

    queue_html = page(client, "/queue")
    message_html = page(client, f"/messages/{pk}")

    score = extracted["match"]["candidates"][0]["score"]
    assert f"CCAS-2025-0001</a> score {extracted['match']['candidates'][0]['score']}" in queue_html \
        or f"CCAS-2025-0002</a> score {score}" in queue_html
    assert "Link<span class=\"govuk-visually-hidden\"> to case CCAS-2025-0001" in message_html


# Message page -----------------------------------------------------------------------

def test_message_page_shows_quotes_and_records_view(web):
    (pk,) = deliver(web, urgent())
    client = signed_in(web)

    html = page(client, f"/messages/{pk}")

    assert "I am referring <mark>Kai</mark> Brook" in html
    assert "<mark>05/06/2012</mark>" in html
    assert "sam.okafor@testchildren.org.example" in html
    views = [event for event in audit(web[1], "view") if event.target_type == "message"]
    assert [(event.actor, event.target_id) for event in views] == [(COORDINATOR, str(pk))]


def test_message_page_html_body_sanitised(web):
    message = dated(mailfactory._base("Jo Public <jo@webmail.example>", "Formatted", "plain words\n"), 20)
    message.add_alternative('<p onclick="steal()">Hello <b>there</b><img src="https://tracker.example/p.gif">'
                            '<script>alert(1)</script><a href="javascript:steal()">x</a></p>', subtype="html")
    (pk,) = deliver(web, message)
    client = signed_in(web)

    html = page(client, f"/messages/{pk}")
    body = html[html.index('class="app-message-html"'):]
    body = body[:body.index("</div>")]

    assert "<b>there</b>" in body
    assert "tracker.example" not in body
    assert "onclick" not in body
    assert "<script" not in body
    assert "javascript:" not in body


def test_confirm_marks_handled_without_correction(web):
    (pk,) = deliver(web, query(20))
    client = signed_in(web)

    response = post(client, f"/messages/{pk}/confirm")

    assert response.status_code == 302
    assert rows(web[1], Message, Message.id == pk)[0].outcome == "handled"
    assert len(audit(web[1], "triage_confirmed")) == 1
    assert rows(web[1], Correction) == []


def test_category_correction_recorded_no_mail(web):
    (pk,) = deliver(web, urgent())
    store = web[1]
    before = outbox_statuses(store)
    client = signed_in(web)

    response = post(client, f"/messages/{pk}/category", {"category": "change_of_circumstances"})
    post(client, f"/messages/{pk}/category", {"category": "query"})

    assert response.status_code == 302
    assert rows(store, Message, Message.id == pk)[0].category == "query"
    corrections = rows(store, Correction)
    assert [(c.field, c.bot_category, c.actor) for c in corrections] == [
        ("category", "support_request", COORDINATOR), ("category", "support_request", COORDINATOR)]
    assert len(audit(store, "category_corrected")) == 2
    assert outbox_statuses(store) == before


def test_corrected_category_shows_who_not_confidence(web):
    (pk,) = deliver(web, urgent())
    client = signed_in(web)
    before = page(client, f"/messages/{pk}")
    confidence = re.search(r"confidence \d+%", before).group(0)

    post(client, f"/messages/{pk}/category", {"category": "query"})
    html = page(client, f"/messages/{pk}")
    value = html[html.index('id="category-value"'):]
    value = value[:value.index("</dd>")]

    assert f"Request for support (referral), {confidence}" in " ".join(before.split())
    assert re.search(rf"Query, corrected by {re.escape(COORDINATOR)}", value)
    assert re.search(rf"The bot chose Request for support \(referral\), {confidence}", value)
    assert not re.search(rf"Query, {confidence}", value)


def test_category_correction_rejects_unknown(web):
    (pk,) = deliver(web, query(20))
    client = signed_in(web)

    response = post(client, f"/messages/{pk}/category", {"category": "made_up"})

    assert response.status_code == 400
    assert "There is a problem" in response.get_data(as_text=True)
    assert rows(web[1], Correction) == []


def test_child_correction_checks_identifiers(web):
    (pk,) = deliver(web, urgent())
    client = signed_in(web)

    response = post(client, f"/messages/{pk}/child", {
        "first_name": "Kai", "last_name": "Brook", "dob": "2012-06-05", "upn": "B123456789012",
        "nhs_number": "9434765910", "school_urn": "", "year_group": "9", "ehcp": ""})

    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Enter a UPN of 13 characters with a correct check letter" in html
    assert "Enter an NHS number of 10 digits with a correct check digit" in html
    assert rows(web[1], Correction) == []


def test_child_correction_changes_store(web):
    (pk,) = deliver(web, urgent())
    store = web[1]
    before = outbox_statuses(store)
    client = signed_in(web)

    response = post(client, f"/messages/{pk}/child", {
        "first_name": "Kai", "last_name": "Brooke", "dob": "2012-06-05", "upn": "",
        "nhs_number": "943 476 5919", "school_urn": "", "year_group": "9", "ehcp": "none"})

    assert response.status_code == 302
    extracted = rows(store, Message, Message.id == pk)[0].extracted
    assert (extracted["last_name"], extracted["nhs_number"], extracted["ehcp"]) == ("Brooke", "9434765919", "none")
    assert sorted(c.field for c in rows(store, Correction)) == ["child.ehcp", "child.last_name", "child.nhs_number"]
    assert audit(store, "child_corrected")[0].detail == {"fields": ["last_name", "nhs_number", "ehcp"]}
    assert outbox_statuses(store) == before


def test_link_unlink_and_open_case(web):
    store = web[1]
    store.upsert_cases([{"id": "CCAS-2025-0009", "first_name": "Ava", "last_name": "Stone",
                         "dob": date(2013, 1, 2), "status": "open"}])
    (pk,) = deliver(web, urgent())
    bot_case = rows(store, Message, Message.id == pk)[0].case_id
    client = signed_in(web)

    post(client, f"/messages/{pk}/link", {"case_id": "ccas-2025-0009"})
    linked = rows(store, Message, Message.id == pk)[0].case_id
    post(client, f"/messages/{pk}/unlink")
    unlinked = rows(store, Message, Message.id == pk)[0].case_id
    post(client, f"/messages/{pk}/open-case")
    opened = rows(store, Message, Message.id == pk)[0].case_id

    assert linked == "CCAS-2025-0009"
    assert unlinked is None
    assert opened not in (None, bot_case, "CCAS-2025-0009")
    assert rows(store, Case, Case.id == opened)[0].last_name == "Brook"
    assert [c.field for c in rows(store, Correction)] == ["case_link", "case_link", "case_link"]
    assert len(audit(store, "case_link_corrected")) == 3
    assert rows(store, CaseEvent, CaseEvent.case_id == "CCAS-2025-0009", CaseEvent.kind == "message_unlinked")


def test_link_unknown_case_shows_error(web):
    (pk,) = deliver(web, query(20))
    client = signed_in(web)

    response = post(client, f"/messages/{pk}/link", {"case_id": "CCAS-1999-0001"})

    assert response.status_code == 400
    assert "Case CCAS-1999-0001 was not found" in response.get_data(as_text=True)


# Replies held for approval ---------------------------------------------------------------

def held_reply(store, pk: int) -> OutboxItem:
    return next(item for item in rows(store, OutboxItem, OutboxItem.message_pk == pk) if item.status == "draft")


def sent_files(web) -> list[Path]:
    outbox = Path(web[2].sending.outbox_path)
    return sorted(outbox.glob("*.eml")) if outbox.is_dir() else []


def test_approve_then_poll_sends(web):
    (pk,) = deliver(web, urgent())
    store = web[1]
    draft = held_reply(store, pk)
    client = signed_in(web)
    html = page(client, f"/messages/{pk}")
    assert "Approve and send" in html
    sent_before = len(sent_files(web))

    response = post(client, f"/messages/{pk}/replies/{draft.id}/approve")

    assert response.status_code == 302
    assert rows(store, OutboxItem, OutboxItem.id == draft.id)[0].status == "pending"
    assert len(sent_files(web)) == sent_before
    poll(web)
    assert rows(store, OutboxItem, OutboxItem.id == draft.id)[0].status == "sent"
    assert len(sent_files(web)) == sent_before + 1
    assert audit(store, "reply_approved")[0].detail["purpose"] == "professional_acknowledgement"


def test_reject_never_sends(web):
    (pk,) = deliver(web, urgent())
    store = web[1]
    draft = held_reply(store, pk)
    client = signed_in(web)
    sent_before = len(sent_files(web))

    empty = post(client, f"/messages/{pk}/replies/{draft.id}/reject", {"reason": " "})
    response = post(client, f"/messages/{pk}/replies/{draft.id}/reject", {"reason": "Already phoned them"})
    poll(web)

    assert empty.status_code == 400
    assert response.status_code == 302
    assert rows(store, OutboxItem, OutboxItem.id == draft.id)[0].status == "rejected"
    assert len(sent_files(web)) == sent_before
    assert [c.field for c in rows(store, Correction)] == ["draft_reject"]


def test_edit_keeps_threading_headers(web):
    incoming = urgent()
    (pk,) = deliver(web, incoming)
    store = web[1]
    draft = held_reply(store, pk)
    original = email.message_from_bytes(draft.raw, policy=email.policy.default)
    client = signed_in(web)

    response = post(client, f"/messages/{pk}/replies/{draft.id}/edit",
                    {"subject": "Your referral for Kai", "body": "Dear Sam,\n\nThank you. We will call you today.\n"})

    assert response.status_code == 302
    edited = email.message_from_bytes(rows(store, OutboxItem, OutboxItem.id == draft.id)[0].raw,
                                      policy=email.policy.default)
    assert edited["Subject"] == "Your referral for Kai"
    # The stored reply is SMTP wire format, so its lines end in CRLF.
    assert edited.get_content().replace("\r\n", "\n") == "Dear Sam,\n\nThank you. We will call you today.\n"
    for header in ("Message-ID", "In-Reply-To", "References", "Auto-Submitted", "To", "From"):
        assert edited[header] == original[header], header
    assert edited["In-Reply-To"].strip() == incoming["Message-ID"]
    assert rows(store, OutboxItem, OutboxItem.id == draft.id)[0].status == "draft"
    assert [c.field for c in rows(store, Correction)] == ["draft_edit"]


def test_sent_reply_cannot_be_approved_again(web):
    (pk,) = deliver(web, urgent())
    store = web[1]
    alert = next(item for item in rows(store, OutboxItem, OutboxItem.message_pk == pk)
                 if item.purpose == "duty_urgent_alert")
    client = signed_in(web)

    response = post(client, f"/messages/{pk}/replies/{alert.id}/approve")

    assert alert.status == "sent"
    assert response.status_code == 400
    assert "not waiting for approval" in response.get_data(as_text=True)


# Attachments ---------------------------------------------------------------------------

def test_attachment_download_headers(web):
    message = dated(mailfactory._base(SOCIAL_WORKER, "Letter", "Please see the letter attached.\n"), 20)
    message.add_attachment(b"<script>alert(1)</script>", maintype="text", subtype="html",
                           filename="../../etc/Lettre d'hôpital.html")
    message.add_attachment(b"%PDF-1.4 fictional", maintype="application", subtype="pdf", filename="report.pdf")
    (pk,) = deliver(web, message)
    client = signed_in(web)

    html_file = client.get(f"/messages/{pk}/attachments/0")
    pdf_file = client.get(f"/messages/{pk}/attachments/1")
    missing = client.get(f"/messages/{pk}/attachments/7")

    assert html_file.status_code == 200
    assert html_file.headers["Content-Type"] == "application/octet-stream"
    assert html_file.headers["Content-Disposition"] == 'attachment; filename="Lettre_d_hopital.html"'
    assert html_file.headers["X-Content-Type-Options"] == "nosniff"
    assert html_file.data == b"<script>alert(1)</script>"
    assert pdf_file.headers["Content-Type"] == "application/pdf"
    assert pdf_file.headers["Content-Disposition"] == 'attachment; filename="report.pdf"'
    assert missing.status_code == 404
    assert [event.target_id for event in audit(web[1], "view") if event.target_type == "attachment"] == [
        f"{pk}:0", f"{pk}:1"]


# Cases -----------------------------------------------------------------------------------

def test_case_list_search_and_case_page(web):
    (pk,) = deliver(web, urgent())
    store = web[1]
    case_id = rows(store, Message, Message.id == pk)[0].case_id
    client = signed_in(web)

    found = page(client, "/cases?q=brook")
    missing = page(client, "/cases?q=nobody")
    case_html = page(client, f"/cases/{case_id}")

    assert case_id in found
    assert case_id not in missing
    assert "Kai Brook" in case_html
    assert f'href="/messages/{pk}"' in case_html
    assert [event.target_id for event in audit(store, "view") if event.target_type == "case"] == [case_id]


def test_pages_use_plain_labels(web):
    _app, store, _config = web
    store.upsert_cases([{"id": "CCAS-2025-0009", "first_name": "Ria", "last_name": "Stone", "status": "send",
                         "lead_email": "lead.worker@testchildren.org.example"}])
    (pk,) = deliver(web, urgent())
    case_id = rows(store, Message, Message.id == pk)[0].case_id
    client = signed_in(web)

    cases = page(client, "/cases")
    send_case = " ".join(page(client, "/cases/CCAS-2025-0009").split())
    queue = page(client, "/queue")
    timeline = " ".join(page(client, f"/cases/{case_id}").split())

    assert "With the SEND team" in cases
    assert "<td class=\"govuk-table__cell\">send</td>" not in cases
    assert "With the SEND team" in send_case
    assert "Lead professional</dt><dd class=\"govuk-summary-list__value\">lead.worker@testchildren.org.example" \
        in send_case
    assert "Not recorded" not in send_case.split("Lead professional")[1].split("</div>")[0]
    assert "Request for support (referral)" in queue
    assert "None" not in re.sub(r"<[^>]+>", " ", queue)
    assert not re.search(r"\w :", re.sub(r"<[^>]+>", "", timeline))


def test_case_status_lead_and_review(web):
    (pk,) = deliver(web, urgent())
    store = web[1]
    case_id = rows(store, Message, Message.id == pk)[0].case_id
    client = signed_in(web)
    path = f"/cases/{case_id}"

    post(client, f"{path}/status", {"status": "closed"}, token_page=path)
    post(client, f"{path}/lead", {"lead_professional": "Ruth Hale, SENCo", "lead_email": "ruth.hale@brambleway.sch.example"},
         token_page=path)
    post(client, f"{path}/review", {"next_review": "2027-01-13"}, token_page=path)
    bad = post(client, f"{path}/review", {"next_review": "13/01/2027"}, token_page=path)

    case = rows(store, Case, Case.id == case_id)[0]
    assert (case.status, case.lead_professional, case.lead_email) == (
        "closed", "Ruth Hale, SENCo", "ruth.hale@brambleway.sch.example")
    assert case.next_review == date(2027, 1, 13)
    assert bad.status_code == 400
    assert {e.action for e in rows(store, AuditEvent, AuditEvent.target_id == case_id)} >= {
        "case_status_changed", "lead_professional_set", "next_review_set"}


def test_merge_moves_everything(web):
    store = web[1]
    (first_pk, second_pk) = deliver(web, urgent("Kai Brook", 20),
                                    dated(mailfactory._base(SOCIAL_WORKER, "Referral - Kay Brooke",
                                                            "Hello,\n\nI am referring Kay Brooke (DOB 06/05/2012), "
                                                            "Year 9, who is off with anxiety.\n\nRegards,\nSam\n"),
                                          21))
    source = rows(store, Message, Message.id == second_pk)[0].case_id
    target = rows(store, Message, Message.id == first_pk)[0].case_id
    assert source is not None
    assert target is not None
    assert source != target

    def seed(session):
        now = datetime.now(timezone.utc)
        meeting = PanelMeeting(meeting_date=date(2026, 12, 9), starts_at=now, created_at=now)
        session.add(meeting)
        session.flush()
        session.add(PanelDecision(meeting_id=meeting.id, case_id=source, kind="more_information", decided_at=now))
        session.add(PanelAction(meeting_id=meeting.id, case_id=source, owner_email="a@testshire.gov.example",
                                description="Ask the GP", created_at=now, updated_at=now))
        session.add(CaseClock(case_id=source, kind="health_absence", flagged=True, reason="x", recorded_at=now))
        session.add(CaseParty(case_id=source, email="gp@testhealth.nhs.example", role="health", added_at=now))
    store._write(seed)
    source_agenda = len(rows(store, AgendaItem, AgendaItem.case_id == source))
    client = signed_in(web)

    response = post(client, f"/cases/{source}/merge", {"target_case_id": target}, token_page=f"/cases/{source}")

    assert response.status_code == 302
    assert rows(store, Case, Case.id == source)[0].status == "merged"
    assert rows(store, Message, Message.case_id == source) == []
    assert {m.id for m in rows(store, Message, Message.case_id == target)} == {first_pk, second_pk}
    for model in (PanelDecision, PanelAction, CaseClock, AgendaItem, OutboxItem):
        assert rows(store, model, model.case_id == source) == [], model.__name__
    assert len(rows(store, AgendaItem, AgendaItem.case_id == target)) >= source_agenda
    assert "gp@testhealth.nhs.example" in {p.email for p in rows(store, CaseParty, CaseParty.case_id == target)}
    assert store._read(lambda s: s.scalar(select(func.count()).select_from(CaseKey).where(
        CaseKey.case_id == source))) == 0
    assert "Brooke" in rows(store, Case, Case.id == target)[0].other_last_names
    pointer = rows(store, CaseEvent, CaseEvent.case_id == source, CaseEvent.kind == "merged_into")
    assert pointer[0].detail["case_id"] == target
    assert audit(store, "cases_merged")[0].detail["from"] == source
    assert f"merged into <a class=\"govuk-link\" href=\"/cases/{target}\">" in page(client, f"/cases/{source}")


def test_merge_into_itself_refused(web):
    (pk,) = deliver(web, urgent())
    case_id = rows(web[1], Message, Message.id == pk)[0].case_id
    client = signed_in(web)

    response = post(client, f"/cases/{case_id}/merge", {"target_case_id": case_id}, token_page=f"/cases/{case_id}")

    assert response.status_code == 400
    assert rows(web[1], Case, Case.id == case_id)[0].status == "open"


# Roles -----------------------------------------------------------------------------------

def test_panel_member_reads_but_cannot_change(web):
    (pk,) = deliver(web, urgent())
    store = web[1]
    case_id = rows(store, Message, Message.id == pk)[0].case_id
    draft = held_reply(store, pk)
    client = signed_in(web, PANEL_MEMBER)

    html = page(client, f"/messages/{pk}")
    page(client, "/queue")
    page(client, f"/cases/{case_id}")
    token = csrf_token(client, "/queue")
    posts = [f"/messages/{pk}/confirm", f"/messages/{pk}/category", f"/messages/{pk}/child",
             f"/messages/{pk}/link", f"/messages/{pk}/unlink", f"/messages/{pk}/open-case",
             f"/messages/{pk}/alert-handled", f"/messages/{pk}/replies/{draft.id}/approve",
             f"/messages/{pk}/replies/{draft.id}/reject", f"/messages/{pk}/replies/{draft.id}/edit",
             f"/cases/{case_id}/status", f"/cases/{case_id}/lead", f"/cases/{case_id}/review",
             f"/cases/{case_id}/merge"]
    statuses = {path: client.post(path, data={"csrf_token": token, "reason": "x", "category": "query"}).status_code
                for path in posts}

    assert "Approve and send" not in html
    assert set(statuses.values()) == {403}, statuses
    assert held_reply(store, pk).status == "draft"
    assert rows(store, Correction) == []


def test_every_form_field_has_label(web):
    (pk,) = deliver(web, urgent())
    client = signed_in(web)
    case_id = rows(web[1], Message, Message.id == pk)[0].case_id

    for path in (f"/messages/{pk}", "/queue", f"/cases/{case_id}", "/cases"):
        html = page(client, path)
        field_ids = re.findall(r'<(?:input|select|textarea)\b(?![^>]*type="hidden")(?![^>]*type="checkbox")'
                               r'(?![^>]*type="radio")[^>]*\bid="([^"]+)"', html)
        label_targets = set(re.findall(r'<label\b[^>]*\bfor="([^"]+)"', html))
        assert field_ids, path
        assert [field_id for field_id in field_ids if field_id not in label_targets] == [], path
