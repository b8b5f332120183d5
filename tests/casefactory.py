"""Fictional cases, messages and panel records on fixed dates, for the retention, export and erasure tests."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy.orm import Session

from bot.app import open_store
from bot.config import config_from_mapping
from bot.pipeline import identify_raw
from store.audit import add_audit, add_correction
from store.models import AgendaItem, CaseClock, CaseEvent, PanelAction, PanelDecision, PanelMeeting
from store.records import PlannedMail, Store, TriageRecord

NOW = datetime(2030, 6, 3, 12, 0, tzinfo=timezone.utc)


def days_ago(days: int) -> datetime:
    return NOW - timedelta(days=days)


def make_store(tmp_path: Path, **store_settings) -> tuple[Store, object]:
    config = config_from_mapping({"store": {"url": "sqlite:///store.sqlite3", **store_settings}}, base_dir=tmp_path)
    return open_store(config), config


def add_case(store: Store, case_id: str, *, first_name: str, last_name: str, dob: date | None,
             upn: str = "", nhs_number: str = "", status: str = "open", closed_on: date | None = None,
             lead_email: str = "lead.nurse@health.example", school_urn: str = "") -> None:
    store.upsert_cases([{"id": case_id, "first_name": first_name, "last_name": last_name, "dob": dob, "upn": upn,
                         "nhs_number": nhs_number, "status": status, "closed_on": closed_on,
                         "lead_email": lead_email, "school_urn": school_urn}])


def add_message(store: Store, number: int, *, at: datetime, case_id: str | None = None, outcome: str = "handled",
                reasons: list[str] | None = None, subject: str = "Referral", body: str = "Please help.",
                sender: str = "referrer@school.example", extracted: dict | None = None,
                mail_status: str | None = None, agenda: str | None = None) -> int:
    """Store one triaged message; `mail_status` adds one outgoing reply with that status."""
    raw = (f"From: {sender}\r\nTo: ccas@council.example\r\nMessage-ID: <m{number}@school.example>\r\n"
           f"Subject: {subject}\r\n\r\n{body}\r\n").encode()
    message_id, synthesised, digest = identify_raw(raw)
    mail = []
    if mail_status is not None:
        reply = (f"To: {sender}\r\nMessage-ID: <reply{number}@council.example>\r\nSubject: Re: {subject}\r\n\r\n"
                 f"Thank you.\r\n").encode()
        mail.append(PlannedMail(purpose="professional_acknowledgement", recipient=sender,
                                out_message_id=f"reply{number}@council.example", raw=reply))
    stored = store.record_triage(TriageRecord(
        message_id=message_id, message_id_synthesised=synthesised, sha256=digest, raw=raw, source="folder",
        folder="inbox", uidvalidity=None, uid=str(number), outcome=outcome, reasons=list(reasons or []),
        sender_email=sender, subject=subject, category="support_request", extracted=dict(extracted or {}),
        case_id=case_id, mail=mail, agenda_items=[agenda] if agenda else [], at=at,
        outbox_status=mail_status or "pending"))
    return stored.pk


def add_panel_records(store: Store, case_id: str, message_pk: int, meeting_date: date) -> None:
    """Add a meeting with a decision, an action, a clock, a correction and an audit event for a case."""
    def work(session: Session):
        at = datetime.combine(meeting_date, datetime.min.time(), tzinfo=timezone.utc)
        meeting = session.query(PanelMeeting).filter_by(meeting_date=meeting_date).first()
        if meeting is None:
            meeting = PanelMeeting(meeting_date=meeting_date, starts_at=at, created_at=at)
            session.add(meeting)
            session.flush()
        session.add(PanelDecision(meeting_id=meeting.id, case_id=case_id, kind="agree_provision",
                                  summary="Tuition agreed.", decided_at=at))
        session.add(PanelAction(meeting_id=meeting.id, case_id=case_id, owner_email="panel.member@school.example",
                                description="Arrange tuition.", created_at=at, updated_at=at))
        session.add(CaseClock(case_id=case_id, kind="sixth_day", started_on=meeting_date, due_on=meeting_date,
                              message_pk=message_pk, recorded_at=at))
        add_correction(session, "coordinator@council.example", "category", message_pk=message_pk,
                       bot_category="support_request", at=at)
        add_audit(session, "coordinator@council.example", "case_viewed", target_type="case", target_id=case_id,
                  at=at)
    store._write(work)


def link_message(store: Store, case_id: str, message_pk: int, at: datetime) -> None:
    """Link a message to a second case as the web app does: a chronology event and an agenda item."""
    def work(session: Session):
        session.add(CaseEvent(case_id=case_id, message_pk=message_pk, kind="message_linked", at=at, detail={}))
        session.add(AgendaItem(standing_item="existing_placements", case_id=case_id, message_pk=message_pk,
                               created_at=at))
    store._write(work)
