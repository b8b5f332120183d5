"""Store functions for the triage queue, the message page and the case pages of the web app.

Each public method of TriageStore is one transaction run through Store._write or Store._read.
Every method that changes something takes `actor` (the user's username) and writes an
audit event in the same transaction. A change to what the bot decided also writes a
Correction counted against the category the bot gave the message. Nothing here sends mail:
a reply a coordinator approves becomes "pending", which the next poll's sender sends.
"""

from __future__ import annotations

import email
import email.policy
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from bot.compose import message_reference
from parsers.identifiers import is_valid_nhs_number, is_valid_upn, normalise_upn
from replies.compose import POLICY
from store import cases as case_records
from store.agenda import ClockView, clock_views, review_due_on
from store.audit import add_audit, add_correction
from store.models import (AgendaItem, AuditEvent, Case, CaseClock, CaseEvent, CaseKey, CaseParty, CaseSchool,
                          Correction, Message, OutboxItem, PanelAction, PanelDecision, School)
from store.records import Store, _reserve_case_id, utcnow

# Reason code added to an urgent message once a coordinator has dealt with its alert.
ALERT_HANDLED = "alert:handled"
# Reason code added when a coordinator confirms the bot's triage.
TRIAGE_CONFIRMED = "review:confirmed_by_person"
CASE_STATUSES = ("open", "closed", "send")
EHCP_STATUSES = ("none", "has_ehcp", "draft_decision", "assessment")
# Child details a coordinator may correct, in the order the form shows them.
CHILD_FIELDS = ("first_name", "last_name", "dob", "upn", "nhs_number", "school_urn", "year_group", "ehcp")
# Replies held for a coordinator have status "draft"; only these may be approved, edited or rejected.
DRAFT = "draft"
# Longest subject a coordinator may give a held reply, and longest reason for rejecting one.
MAX_SUBJECT = 255
MAX_REJECT_REASON = 500
# Longest lead professional name and email address (their columns' sizes).
MAX_LEAD_NAME = 255
MAX_EMAIL = 320


class TriageError(ValueError):
    """A change a coordinator asked for that cannot be made; the message says why, for the page."""


@dataclass(frozen=True)
class QueueItem:
    pk: int
    received_at: datetime
    processed_at: datetime | None
    outcome: str
    sender_email: str
    subject: str
    category: str | None
    confidence: float | None
    urgent: bool
    alert_handled: bool
    reasons: list[str]
    extracted: dict
    case_id: str | None
    held_replies: int
    # The short reference the urgent alert email gives (the start of the message's SHA-256).
    reference: str = ""


@dataclass(frozen=True)
class ReplyView:
    id: int
    purpose: str
    recipient: str
    status: str
    subject: str
    body: str
    editable: bool
    created_at: datetime
    sent_at: datetime | None
    last_error: str


@dataclass
class MessageDetail:
    item: QueueItem
    message_id: str
    size: int
    bot_category: str | None
    replies: list[ReplyView] = field(default_factory=list)
    case: Case | None = None
    corrections: list[Correction] = field(default_factory=list)
    alert_handled_by: str = ""
    alert_handled_at: datetime | None = None


@dataclass
class CaseTimelineEntry:
    at: datetime
    kind: str
    message_pk: int | None = None
    detail: dict = field(default_factory=dict)


@dataclass
class CaseDetail:
    case: Case
    school_names: dict[str, str]
    schools: list[CaseSchool]
    parties: list[CaseParty]
    timeline: list[CaseTimelineEntry]
    clocks: list[ClockView]
    open_actions: list[PanelAction]
    review_due: date | None
    merged_into: str | None


class TriageStore:
    """Queue, message and case records on top of a Store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # Queue ----------------------------------------------------------------------

    def queue(self, *, urgent_only: bool = False, category: str | None = None, reference: str | None = None,
              limit: int = 200) -> list[QueueItem]:
        """Return the messages that need a person: urgent ones with an alert not yet dealt
        with first, then oldest first.

        `reference` keeps only messages whose SHA-256 starts with it (the urgent alert's reference).
        """
        def work(session: Session):
            query = select(Message).where(Message.outcome == "needs_person")
            if urgent_only:
                query = query.where(Message.urgent.is_(True))
            if category:
                query = query.where(Message.category == category)
            if reference:
                query = query.where(Message.sha256.startswith(reference, autoescape=True))
            query = query.order_by(Message.received_at, Message.id)
            # Urgent messages come first however many older ones wait, so they are read on their own.
            urgent = list(session.scalars(query.where(Message.urgent.is_(True)).limit(limit)))
            rows = {row.id: row for row in [*urgent, *session.scalars(query.limit(limit))]}
            held = _held_counts(session, list(rows))
            items = [_queue_item(row, held) for row in rows.values()]
            items.sort(key=lambda item: (not (item.urgent and not item.alert_handled), item.received_at, item.pk))
            return items[:limit]
        return self.store._read(work)

    def recently_handled(self, *, days: int = 7, urgent_only: bool = False, category: str | None = None,
                         reference: str | None = None, limit: int = 100,
                         now: datetime | None = None) -> list[QueueItem]:
        """Return messages the bot or a coordinator finished in the last `days` days, newest first.

        With `reference`, the message with that reference is returned however long ago it was handled.
        """
        since = (now or utcnow()) - timedelta(days=days)

        def work(session: Session):
            query = select(Message).where(Message.outcome == "handled")
            if reference:
                query = query.where(Message.sha256.startswith(reference, autoescape=True))
            else:
                query = query.where(Message.processed_at >= since)
            if urgent_only:
                query = query.where(Message.urgent.is_(True))
            if category:
                query = query.where(Message.category == category)
            rows = session.scalars(query.order_by(Message.processed_at.desc(), Message.id.desc()).limit(limit))
            return [_queue_item(row, {}) for row in rows]
        return self.store._read(work)

    def school_names(self, urns) -> dict[str, str]:
        """Return the register's name of each school URN given; unknown URNs are left out."""
        wanted = {urn for urn in urns if urn}
        if not wanted:
            return {}
        return self.store._read(lambda session: {school.urn: school.name for school in session.scalars(
            select(School).where(School.urn.in_(wanted)))})

    def categories(self) -> list[str]:
        """Return the categories stored messages have, for the queue's filter."""
        def work(session: Session):
            return sorted(value for value in session.scalars(select(Message.category).distinct()) if value)
        return self.store._read(work)

    # Message --------------------------------------------------------------------

    def message(self, pk: int) -> MessageDetail | None:
        def work(session: Session):
            row = session.get(Message, pk)
            if row is None:
                return None
            outbox = list(session.scalars(select(OutboxItem).where(OutboxItem.message_pk == pk)
                                          .order_by(OutboxItem.id)))
            held = sum(item.status == DRAFT for item in outbox)
            detail = MessageDetail(item=_queue_item(row, {row.id: held}), message_id=row.message_id, size=row.size,
                                   bot_category=_bot_category(row))
            detail.replies = [_reply_view(item) for item in outbox]
            detail.case = session.get(Case, row.case_id) if row.case_id else None
            detail.corrections = list(session.scalars(select(Correction).where(Correction.message_pk == pk)
                                                      .order_by(Correction.id)))
            handled = session.scalars(select(AuditEvent).where(
                AuditEvent.action == "alert_handled", AuditEvent.target_type == "message",
                AuditEvent.target_id == str(pk)).order_by(AuditEvent.id.desc())).first()
            if handled is not None:
                detail.alert_handled_by, detail.alert_handled_at = handled.actor, handled.at
            return detail
        return self.store._read(work)

    def confirm_triage(self, pk: int, actor: str) -> None:
        """Mark a message handled as the bot triaged it; this is no correction."""
        def work(session: Session):
            row = _message(session, pk)
            row.outcome = "handled"
            row.reasons = _with_reason(row.reasons, TRIAGE_CONFIRMED)
            add_audit(session, actor, "triage_confirmed", target_type="message", target_id=pk,
                      detail={"category": row.category or ""})
        self.store._write(work)

    def correct_category(self, pk: int, category: str, actor: str, *, allowed: set[str]) -> bool:
        """Change a message's category; return False when it already had it."""
        if category not in allowed:
            raise TriageError(f"Choose a category from the list, not {category!r}")

        def work(session: Session):
            row = _message(session, pk)
            if row.category == category:
                return False
            bot_category = _remember_bot_decision(row)
            add_audit(session, actor, "category_corrected", target_type="message", target_id=pk,
                      detail={"from": row.category or "", "to": category})
            add_correction(session, actor, "category", message_pk=pk, bot_category=bot_category)
            row.category = category
            return True
        return self.store._write(work)

    def correct_child(self, pk: int, values: Mapping[str, object], actor: str) -> list[str]:
        """Correct the child's details stored for a message; return the fields changed.

        `values` holds the fields of CHILD_FIELDS as check_child_details returns them.
        """
        def work(session: Session):
            row = _message(session, pk)
            extracted = dict(row.extracted or {})
            changed = [name for name in CHILD_FIELDS if _as_stored(values.get(name)) != extracted.get(name)]
            if not changed:
                return []
            bot_category = _remember_bot_decision(row)
            corrected = dict(extracted.get("corrected") or {})
            for name in changed:
                extracted[name] = _as_stored(values.get(name))
                corrected[name] = True
                add_correction(session, actor, f"child.{name}", message_pk=pk, bot_category=bot_category)
            if "upn" in changed:
                extracted["upn_valid"] = bool(extracted["upn"])
            extracted["corrected"] = corrected
            row.extracted = extracted
            add_audit(session, actor, "child_corrected", target_type="message", target_id=pk,
                      detail={"fields": changed})
            return changed
        return self.store._write(work)

    def link_case(self, pk: int, case_id: str, actor: str) -> None:
        """Link a message to an existing case, in place of the case the bot chose (if any)."""
        def work(session: Session):
            row = _message(session, pk)
            case = session.get(Case, case_id)
            if case is None:
                raise TriageError(f"Case {case_id} was not found")
            if case.status == "merged":
                raise TriageError(f"Case {case_id} was merged into another case; link the message to that one")
            if row.case_id == case_id:
                return
            _move_message(session, row, case_id, actor)
        self.store._write(work)

    def unlink_case(self, pk: int, actor: str) -> None:
        def work(session: Session):
            row = _message(session, pk)
            if row.case_id is None:
                return
            _move_message(session, row, None, actor)
        self.store._write(work)

    def open_case(self, pk: int, actor: str, today: date) -> str:
        """Open a new case from the message's (corrected) details and link the message to it."""
        def work(session: Session):
            row = _message(session, pk)
            extracted = row.extracted or {}
            if not extracted.get("first_name") or not extracted.get("last_name"):
                raise TriageError("Enter the child's first name and last name before opening a case")
            case_id = _reserve_case_id(session, today.year)
            now = utcnow()
            dob = extracted.get("dob")
            upn = extracted.get("upn") or ""
            case = Case(id=case_id, first_name=extracted["first_name"], last_name=extracted["last_name"],
                        dob=date.fromisoformat(dob) if dob else None,
                        upn=upn if upn and extracted.get("upn_valid") else "",
                        nhs_number=extracted.get("nhs_number") or "", school_urn=extracted.get("school_urn") or "",
                        ehcp=extracted.get("ehcp") or "none", status="open", opened=today,
                        lead_email=row.sender_email or "")
            session.add(case)
            case_records.index_case(session, case, now, party_role="referrer")
            session.add(CaseEvent(case_id=case_id, kind="case_opened", at=now, detail={"by": actor}))
            add_audit(session, actor, "case_opened", target_type="case", target_id=case_id,
                      detail={"message_pk": pk})
            _move_message(session, row, case_id, actor)
            return case_id
        return self.store._write(work)

    def mark_alert_handled(self, pk: int, actor: str) -> None:
        """Record that a coordinator dealt with an urgent message's alert; it leaves the top of the queue."""
        def work(session: Session):
            row = _message(session, pk)
            if not row.urgent:
                raise TriageError("This message is not urgent")
            if ALERT_HANDLED in (row.reasons or []):
                return
            row.reasons = _with_reason(row.reasons, ALERT_HANDLED)
            add_audit(session, actor, "alert_handled", target_type="message", target_id=pk)
        self.store._write(work)

    # Replies held for approval -----------------------------------------------------

    def approve_reply(self, outbox_id: int, actor: str, *, message_pk: int | None = None) -> None:
        """Let a held reply go: its status becomes "pending", which the next poll sends."""
        def work(session: Session):
            item = _draft(session, outbox_id, message_pk)
            item.status = "pending"
            add_audit(session, actor, "reply_approved", target_type="outbox", target_id=outbox_id,
                      detail={"message_pk": item.message_pk, "purpose": item.purpose})
        self.store._write(work)

    def reject_reply(self, outbox_id: int, actor: str, reason: str, *, message_pk: int | None = None) -> None:
        """Stop a held reply for good; the reason stays in the store, never in logs."""
        reason = reason.strip()
        if not reason:
            raise TriageError("Enter why the reply should not be sent")
        if len(reason) > MAX_REJECT_REASON:
            raise TriageError(f"Enter no more than {MAX_REJECT_REASON} characters")

        def work(session: Session):
            item = _draft(session, outbox_id, message_pk)
            item.status = "rejected"
            item.last_error = f"rejected: {reason}"[:255]
            add_audit(session, actor, "reply_rejected", target_type="outbox", target_id=outbox_id,
                      detail={"message_pk": item.message_pk, "purpose": item.purpose})
            if item.case_id is not None:
                session.add(CaseEvent(case_id=item.case_id, message_pk=item.message_pk, kind="reply_rejected",
                                      at=utcnow(), detail={"outbox_id": outbox_id, "by": actor, "reason": reason}))
            row = session.get(Message, item.message_pk) if item.message_pk else None
            add_correction(session, actor, "draft_reject", message_pk=item.message_pk,
                           bot_category=_bot_category(row) if row is not None else "")
        self.store._write(work)

    def edit_reply(self, outbox_id: int, actor: str, subject: str, body: str, *,
                   message_pk: int | None = None) -> None:
        """Replace a held reply's subject and text, keeping its Message-ID and threading headers."""
        _check_subject(subject)
        if not subject.strip():
            raise TriageError("Enter a subject")
        if not body.strip():
            raise TriageError("Enter the text of the reply")

        def work(session: Session):
            item = _draft(session, outbox_id, message_pk)
            item.raw = rewrite_reply(item.raw, subject.strip(), body)
            add_audit(session, actor, "reply_edited", target_type="outbox", target_id=outbox_id,
                      detail={"message_pk": item.message_pk, "purpose": item.purpose})
            row = session.get(Message, item.message_pk) if item.message_pk else None
            add_correction(session, actor, "draft_edit", message_pk=item.message_pk,
                           bot_category=_bot_category(row) if row is not None else "")
        self.store._write(work)

    # Cases ----------------------------------------------------------------------

    def find_cases(self, search: str = "", limit: int = 100) -> list[Case]:
        """Return cases whose id or surname (or a former surname) matches `search`, newest first."""
        search = search.strip()

        def work(session: Session):
            query = select(Case)
            if search:
                pattern = f"%{_escape_like(search.lower())}%"
                query = query.where(or_(func.lower(Case.id).like(pattern, escape="\\"),
                                        func.lower(Case.last_name).like(pattern, escape="\\")))
            return list(session.scalars(query.order_by(Case.opened.desc(), Case.id.desc()).limit(limit)))
        return self.store._read(work)

    def case(self, case_id: str, *, review_interval_weeks: int) -> CaseDetail | None:
        def work(session: Session):
            case = session.get(Case, case_id)
            if case is None:
                return None
            schools = list(session.scalars(select(CaseSchool).where(CaseSchool.case_id == case_id)
                                           .order_by(CaseSchool.left_on.is_(None), CaseSchool.left_on)))
            urns = {school.urn for school in schools} | ({case.school_urn} if case.school_urn else set())
            names = {school.urn: school.name for school in session.scalars(select(School).where(School.urn.in_(urns)))}
            parties = list(session.scalars(select(CaseParty).where(CaseParty.case_id == case_id)
                                           .order_by(CaseParty.added_at)))
            actions = list(session.scalars(select(PanelAction).where(
                PanelAction.case_id == case_id, PanelAction.status == "open").order_by(PanelAction.due_on)))
            merged = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id,
                                                             CaseEvent.kind == "merged_into")
                                     .order_by(CaseEvent.id.desc())).first()
            return CaseDetail(case=case, school_names=names, schools=schools, parties=parties,
                              timeline=_timeline(session, case_id), clocks=clock_views(session, {case_id})[case_id],
                              open_actions=actions, review_due=review_due_on(case, review_interval_weeks),
                              merged_into=(merged.detail or {}).get("case_id") if merged else None)
        return self.store._read(work)

    def set_case_status(self, case_id: str, status: str, actor: str, today: date) -> None:
        if status not in ("open", "closed"):
            raise TriageError("Choose open or closed")

        def work(session: Session):
            case = _case(session, case_id)
            if case.status == status:
                return
            previous = case.status
            case.status = status
            case.closed_on = today if status == "closed" else None
            session.add(CaseEvent(case_id=case_id, kind=f"case_{'closed' if status == 'closed' else 'reopened'}",
                                  at=utcnow(), detail={"by": actor}))
            add_audit(session, actor, "case_status_changed", target_type="case", target_id=case_id,
                      detail={"from": previous, "to": status})
        self.store._write(work)

    def set_lead_professional(self, case_id: str, name: str, lead_email: str, actor: str) -> None:
        name, lead_email = name.strip(), lead_email.strip().lower()
        if lead_email and ("@" not in lead_email or any(ch.isspace() for ch in lead_email)):
            raise TriageError("Enter the lead professional's email address, like name@school.example")
        if len(name) > MAX_LEAD_NAME or len(lead_email) > MAX_EMAIL:
            raise TriageError(f"Enter a name of no more than {MAX_LEAD_NAME} characters and an email address "
                              f"of no more than {MAX_EMAIL}")

        def work(session: Session):
            case = _case(session, case_id)
            case.lead_professional = name
            case.lead_email = lead_email
            if lead_email and session.scalars(select(CaseParty.id).where(
                    CaseParty.case_id == case_id, CaseParty.email == lead_email)).first() is None:
                session.add(CaseParty(case_id=case_id, email=lead_email, role="lead", added_at=utcnow()))
            session.add(CaseEvent(case_id=case_id, kind="lead_professional_set", at=utcnow(), detail={"by": actor}))
            add_audit(session, actor, "lead_professional_set", target_type="case", target_id=case_id)
        self.store._write(work)

    def set_next_review(self, case_id: str, next_review: date | None, actor: str) -> None:
        def work(session: Session):
            case = _case(session, case_id)
            case.next_review = next_review
            add_audit(session, actor, "next_review_set", target_type="case", target_id=case_id,
                      detail={"next_review": next_review.isoformat() if next_review else ""})
        self.store._write(work)

    def merge_cases(self, source_id: str, target_id: str, actor: str) -> None:
        """Merge case `source_id` into `target_id`: everything moves, and the source gets status "merged".

        Messages, chronology, parties, school history, agenda items, clocks, decisions, actions
        and outbox rows move. The target keeps its own clock of a kind both have. A meeting that
        decided on both cases stops the merge, because one of its decisions would be lost.
        """
        if source_id == target_id:
            raise TriageError("Choose a different case to merge into")

        def work(session: Session):
            source, target = _case(session, source_id), _case(session, target_id)
            if source.status == "merged":
                raise TriageError(f"Case {source_id} has already been merged")
            if target.status == "merged":
                raise TriageError(f"Case {target_id} has been merged into another case; merge into that one")
            clash = session.scalars(select(PanelDecision.meeting_id).where(PanelDecision.case_id == source_id)
                                    .intersect(select(PanelDecision.meeting_id).where(
                                        PanelDecision.case_id == target_id))).first()
            if clash is not None:
                raise TriageError("Both cases have a panel decision from the same meeting; "
                                  "change one of the decisions before merging")
            moved = _merge(session, source, target)
            now = utcnow()
            session.add(CaseEvent(case_id=source_id, kind="merged_into", at=now,
                                  detail={"case_id": target_id, "by": actor}))
            session.add(CaseEvent(case_id=target_id, kind="merged_from", at=now,
                                  detail={"case_id": source_id, "by": actor}))
            add_audit(session, actor, "cases_merged", target_type="case", target_id=target_id,
                      detail={"from": source_id, "moved": moved})
        self.store._write(work)


# Checks of a coordinator's form input ----------------------------------------------------

def check_child_details(form: Mapping[str, str], *, today: date) -> tuple[dict, dict[str, str]]:
    """Check the child-details form; return (values, errors by field name).

    UPN and NHS number must pass their check characters (parsers/identifiers.py).
    """
    values: dict[str, object] = {}
    errors: dict[str, str] = {}
    for name in ("first_name", "last_name"):
        value = " ".join((form.get(name) or "").split())
        if len(value) > 100:
            errors[name] = "Names must be 100 characters or fewer"
        values[name] = value or None

    dob_text = (form.get("dob") or "").strip()
    values["dob"] = None
    if dob_text:
        try:
            dob = date.fromisoformat(dob_text)
        except ValueError:
            errors["dob"] = "Enter the date of birth as YYYY-MM-DD, like 2013-04-03"
        else:
            if not date(today.year - 25, 1, 1) <= dob <= today:
                errors["dob"] = "Date of birth must be a past date within the last 25 years"
            values["dob"] = dob

    upn = normalise_upn(form.get("upn") or "")
    if upn and not is_valid_upn(upn):
        errors["upn"] = "Enter a UPN of 13 characters with a correct check letter, like the one on the school census"
    values["upn"] = upn or None

    nhs = "".join((form.get("nhs_number") or "").split()).replace("-", "")
    if nhs and not is_valid_nhs_number(nhs):
        errors["nhs_number"] = "Enter an NHS number of 10 digits with a correct check digit"
    values["nhs_number"] = nhs or None

    urn = (form.get("school_urn") or "").strip()
    if urn and not (urn.isdigit() and len(urn) <= 8):
        errors["school_urn"] = "Enter the school's URN in digits, like 100001"
    values["school_urn"] = urn or None

    year = (form.get("year_group") or "").strip()
    values["year_group"] = None
    if year:
        if not year.isdigit() or not 0 <= int(year) <= 14:
            errors["year_group"] = "Enter the year group as a number from 0 (Reception) to 14"
        else:
            values["year_group"] = int(year)

    ehcp = (form.get("ehcp") or "").strip()
    if ehcp and ehcp not in EHCP_STATUSES:
        errors["ehcp"] = "Choose an EHCP status from the list"
    values["ehcp"] = ehcp or None
    return values, errors


def rewrite_reply(raw: bytes, subject: str, body: str) -> bytes:
    """Return a stored reply with a new subject and text, as plain-text MIME.

    Every other header (Message-ID, In-Reply-To, References, the loop headers) stays. In a
    forward, only the cover note changes and the attached original stays.
    """
    message = email.message_from_bytes(raw, policy=POLICY)
    del message["Subject"]
    message["Subject"] = subject
    text_part = message
    if message.is_multipart():
        text_part = next((part for part in message.iter_parts() if part.get_content_type() == "text/plain"), None)
        if text_part is None:
            raise TriageError("This reply has no text part to edit")
    text_part.set_content(body.replace("\r\n", "\n"), charset="utf-8")
    return message.as_bytes(policy=POLICY)


def _check_subject(subject: str) -> None:
    """Refuse a subject that would break out of its header line, as typed or once decoded.

    The email package decodes RFC 2047 encoded words in a header set from a string, so
    "=?utf-8?q?x=0D=0ABcc:...?=" would otherwise become a real header line.
    """
    if len(subject) > MAX_SUBJECT:
        raise TriageError(f"Enter a subject of no more than {MAX_SUBJECT} characters")
    decoded = str(email.policy.default.header_factory("Subject", subject))
    for text in (subject, decoded):
        if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in text):
            raise TriageError("The subject must be one line, with no control characters")


def reply_text(raw: bytes) -> tuple[str, str]:
    """Return (subject, plain text) of a stored reply, for showing and editing it."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    part = message.get_body(preferencelist=("plain",))
    text = part.get_content() if part is not None else ""
    # Stored replies are in SMTP wire format, with CRLF line ends.
    return str(message.get("Subject", "")), text.replace("\r\n", "\n")


# Helpers run inside a transaction ------------------------------------------------------

def _message(session: Session, pk: int) -> Message:
    row = session.get(Message, pk)
    if row is None:
        raise TriageError(f"Message {pk} was not found")
    return row


def _case(session: Session, case_id: str) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise TriageError(f"Case {case_id} was not found")
    return case


def _draft(session: Session, outbox_id: int, message_pk: int | None) -> OutboxItem:
    item = session.get(OutboxItem, outbox_id)
    if item is None or (message_pk is not None and item.message_pk != message_pk):
        raise TriageError(f"Reply {outbox_id} was not found")
    if item.status != DRAFT:
        raise TriageError(f"Reply {outbox_id} is {item.status}, not waiting for approval")
    return item


def _with_reason(reasons: list | None, reason: str) -> list[str]:
    reasons = list(reasons or [])
    return reasons if reason in reasons else [*reasons, reason]


def _bot_category(row: Message) -> str | None:
    """Return the category the bot gave a message, before any correction."""
    bot = (row.extracted or {}).get("bot_decision") or {}
    return bot.get("category", row.category)


def _remember_bot_decision(row: Message) -> str | None:
    """Keep the bot's own category and case in `extracted` before the first correction; return the category."""
    extracted = dict(row.extracted or {})
    if "bot_decision" not in extracted:
        extracted["bot_decision"] = {"category": row.category, "case_id": row.case_id}
        row.extracted = extracted
    return extracted["bot_decision"]["category"]


def _as_stored(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value


def _move_message(session: Session, row: Message, case_id: str | None, actor: str) -> None:
    """Link a message (and its agenda items and replies) to another case, or to none."""
    bot_category = _remember_bot_decision(row)
    previous = row.case_id
    now = utcnow()
    row.case_id = case_id
    session.execute(update(AgendaItem).where(AgendaItem.message_pk == row.id).values(case_id=case_id))
    session.execute(update(OutboxItem).where(OutboxItem.message_pk == row.id).values(case_id=case_id))
    if previous is not None:
        session.execute(delete(CaseEvent).where(CaseEvent.case_id == previous, CaseEvent.message_pk == row.id,
                                                CaseEvent.kind == "message_linked"))
        session.add(CaseEvent(case_id=previous, kind="message_unlinked", at=now,
                              detail={"message_pk": row.id, "by": actor}))
    if case_id is not None:
        session.add(CaseEvent(case_id=case_id, message_pk=row.id, kind="message_linked", at=now,
                              detail={"category": row.category, "outcome": row.outcome, "by": actor}))
    add_audit(session, actor, "case_link_corrected", target_type="message", target_id=row.id,
              detail={"from": previous or "", "to": case_id or ""})
    add_correction(session, actor, "case_link", message_pk=row.id, bot_category=bot_category)


def _merge(session: Session, source: Case, target: Case) -> dict[str, int]:
    """Move everything of `source` to `target`; return how many rows of each kind moved."""
    source_id, target_id = source.id, target.id
    moved: dict[str, int] = {}

    def move(model, name: str) -> None:
        result = session.execute(update(model).where(model.case_id == source_id).values(case_id=target_id))
        moved[name] = result.rowcount or 0

    for model, name in ((Message, "messages"), (CaseEvent, "events"), (AgendaItem, "agenda_items"),
                        (PanelDecision, "decisions"), (PanelAction, "actions"), (OutboxItem, "outbox")):
        move(model, name)

    # Rows that are unique per case: move those the target lacks, drop the duplicates.
    target_parties = set(session.scalars(select(CaseParty.email).where(CaseParty.case_id == target_id)))
    target_schools = set(session.scalars(select(CaseSchool.urn).where(CaseSchool.case_id == target_id)))
    target_clocks = set(session.scalars(select(CaseClock.kind).where(CaseClock.case_id == target_id)))
    moved["parties"] = _move_unique(session, CaseParty, source_id, target_id, "email", target_parties)
    moved["schools"] = _move_unique(session, CaseSchool, source_id, target_id, "urn", target_schools)
    moved["clocks"] = _move_unique(session, CaseClock, source_id, target_id, "kind", target_clocks)

    # The target is found by the source's names and identifiers too from now on.
    target.other_first_names = _add_names(target.other_first_names, [source.first_name, source.known_as,
                                                                     *(source.other_first_names or [])],
                                          exclude={target.first_name, target.known_as})
    target.other_last_names = _add_names(target.other_last_names, [source.last_name,
                                                                   *(source.other_last_names or [])],
                                         exclude={target.last_name})
    target.former_upns = _add_names(target.former_upns, [source.upn, *(source.former_upns or [])],
                                    exclude={target.upn})
    for name in ("dob", "nhs_number", "upn", "school_urn", "lead_email"):
        if not getattr(target, name) and getattr(source, name):
            setattr(target, name, getattr(source, name))
    moved["keys"] = session.scalar(select(func.count()).select_from(CaseKey).where(CaseKey.case_id == source_id))
    session.execute(delete(CaseKey).where(CaseKey.case_id == source_id))
    case_records.index_case(session, target, utcnow())
    source.status = "merged"
    return moved


def _move_unique(session: Session, model, source_id: str, target_id: str, column: str, taken: set) -> int:
    count = 0
    for row in list(session.scalars(select(model).where(model.case_id == source_id))):
        if getattr(row, column) in taken:
            session.delete(row)
            continue
        row.case_id = target_id
        taken.add(getattr(row, column))
        count += 1
    session.flush()
    return count


def _add_names(existing: list | None, names: list, exclude: set) -> list[str]:
    result = list(existing or [])
    for name in names:
        if name and name not in exclude and name not in result:
            result.append(name)
    return result


def _queue_item(row: Message, held: dict[int, int]) -> QueueItem:
    reasons = list(row.reasons or [])
    return QueueItem(pk=row.id, received_at=row.received_at, processed_at=row.processed_at, outcome=row.outcome,
                     sender_email=row.sender_email, subject=row.subject, category=row.category,
                     confidence=row.confidence, urgent=row.urgent, alert_handled=ALERT_HANDLED in reasons,
                     reasons=reasons, extracted=dict(row.extracted or {}), case_id=row.case_id,
                     held_replies=held.get(row.id, 0), reference=message_reference(row.sha256 or ""))


def _held_counts(session: Session, pks: list[int]) -> dict[int, int]:
    rows = session.execute(select(OutboxItem.message_pk, func.count()).where(
        OutboxItem.message_pk.in_(pks), OutboxItem.status == DRAFT).group_by(OutboxItem.message_pk))
    return {pk: count for pk, count in rows}


def _reply_view(item: OutboxItem) -> ReplyView:
    try:
        subject, body = reply_text(item.raw)
    except Exception:  # noqa: BLE001 - a reply that cannot be read is shown without its text
        subject, body = "", ""
    return ReplyView(id=item.id, purpose=item.purpose, recipient=item.recipient, status=item.status,
                     subject=subject, body=body, editable=item.status == DRAFT, created_at=item.created_at,
                     sent_at=item.sent_at, last_error=item.last_error)


def _timeline(session: Session, case_id: str) -> list[CaseTimelineEntry]:
    """Return the case's chronology, newest first: events, linked messages, decisions and actions."""
    entries = [CaseTimelineEntry(at=event.at, kind=event.kind, message_pk=event.message_pk,
                                 detail=dict(event.detail or {}))
               for event in session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id))]
    linked = {entry.message_pk for entry in entries if entry.kind == "message_linked"}
    for message in session.scalars(select(Message).where(Message.case_id == case_id)):
        if message.id not in linked:
            entries.append(CaseTimelineEntry(at=message.received_at, kind="message_linked", message_pk=message.id,
                                             detail={"category": message.category, "outcome": message.outcome}))
    messages = {message.id: message for message in session.scalars(select(Message).where(
        Message.id.in_({entry.message_pk for entry in entries if entry.message_pk})))}
    for entry in entries:
        message = messages.get(entry.message_pk)
        if message is not None:
            entry.detail.setdefault("subject", message.subject)
            entry.detail.setdefault("sender_email", message.sender_email)
    for decision in session.scalars(select(PanelDecision).where(PanelDecision.case_id == case_id)):
        entries.append(CaseTimelineEntry(at=decision.decided_at, kind="panel_decision",
                                         detail={"decision": decision.kind, "summary": decision.summary}))
    for action in session.scalars(select(PanelAction).where(PanelAction.case_id == case_id)):
        entries.append(CaseTimelineEntry(at=action.created_at, kind="panel_action",
                                         detail={"action_id": action.id, "description": action.description,
                                                 "status": action.status}))
    entries.sort(key=lambda entry: _aware(entry.at), reverse=True)
    return entries


def _aware(value: datetime) -> datetime:
    """Compare stored times with and without a zone: SQLite returns them without one, in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
