"""The panel pages: agenda, meetings, drafts awaiting approval, and open actions.

Coordinators and admins change things here, and panel members only read. Every change
goes through a PanelStore method that writes an audit event with the signed-in username
in its own transaction. Mail that these pages cause (outcome emails) is stored as a
draft, and an approved draft becomes "pending", which the bot's next poll sends.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for

from bot.agenda_export import FORMATS, clock_text, entry_reason, render, short_date
from bot.outcomes import draft_outcomes, long_date
from bot.panel_dates import check_meeting_day, next_meeting, previous_meeting
from bot.web.common import audit_view, current_user, get_accounts, get_config, get_store, role_required
from store.panel import DECISION_KINDS, SUMMARY_REQUIRED, Attendee, DraftView, PanelStore
from store.triage import TriageStore

bp = Blueprint("panel", __name__)

CHANGERS = ("coordinator", "admin")
EXPORT_TYPES = {
    "html": "text/html; charset=utf-8",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "csv": "text/csv; charset=utf-8",
    "ics": "text/calendar; charset=utf-8",
}
EXPORT_LABELS = {"html": "Web page (HTML)", "docx": "Word document (DOCX)", "csv": "Spreadsheet (CSV)",
                 "ics": "Calendar invitation (ICS)"}
PURPOSE_LABELS = {
    "panel_action_reminder": "Action reminder",
    "professional_acknowledgement": "Acknowledgement to a professional",
    "personal_acknowledgement": "Acknowledgement to a parent or member of the public",
    "lead_professional_parent_notice": "Notice to the lead professional",
    "professional_send_notice": "Notice that the SEND team leads",
    "school_portal_pointer": "Pointer to the schools' portal",
    "send_team_forward": "Forward to the SEND team",
    "duty_urgent_alert": "Urgent alert to the duty coordinators",
}
OUTCOME_PREFIX = "professional_outcome_"
MAX_TEXT = 2000
FIRST_DATE = date(1900, 1, 1)
LAST_DATE = date(2999, 12, 31)


@dataclass
class FormErrors:
    """Validation errors of one form: field id to message, in the order found."""

    form: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)

    def add(self, field_id: str, message: str) -> None:
        self.fields.setdefault(field_id, message)

    def __bool__(self) -> bool:
        return bool(self.fields)

    def summary(self) -> list[dict]:
        return [{"text": message, "href": f"#{field_id}"} for field_id, message in self.fields.items()]

    def message(self, field_id: str) -> dict | None:
        return {"text": self.fields[field_id]} if field_id in self.fields else None


def _panel() -> PanelStore:
    return PanelStore(get_store(), get_config())


def _today() -> date:
    return datetime.now(ZoneInfo(get_config().bot.timezone)).date()


def _actor() -> str:
    return current_user().username


def _can_change() -> bool:
    return current_user().can_change


def _parse_iso(value: str | None) -> date | None:
    """Read a YYYY-MM-DD date; None for anything else, and for a year no meeting can have."""
    try:
        day = date.fromisoformat(value) if value else None
    except ValueError:
        return None
    # The pages look a year back and many weeks ahead of a date, which needs room in date's range.
    return day if day is None or FIRST_DATE <= day <= LAST_DATE else None


def _meeting_date_or_404(meeting_date: str) -> date:
    day = _parse_iso(meeting_date)
    if day is None:
        abort(404)
    return day


def _date_fields(prefix: str, errors: FormErrors, *, required: bool, label: str) -> date | None:
    """Read a GOV.UK date input (PREFIX-day, -month, -year) from the form."""
    parts = {name: request.form.get(f"{prefix}-{name}", "").strip() for name in ("day", "month", "year")}
    for name, value in parts.items():
        errors.values[f"{prefix}-{name}"] = value
    if not any(parts.values()):
        if required:
            errors.add(f"{prefix}-day", f"Enter the {label}")
        return None
    try:
        day = date(int(parts["year"]), int(parts["month"]), int(parts["day"]))
    except (ValueError, OverflowError):
        day = None
    if day is None or not FIRST_DATE <= day <= LAST_DATE:
        errors.add(f"{prefix}-day", f"The {label} must be a real date, for example 27 3 2027")
        return None
    return day


def _text(name: str, errors: FormErrors, *, required: str = "", limit: int = MAX_TEXT) -> str:
    value = request.form.get(name, "").strip()
    errors.values[name] = value
    if required and not value:
        errors.add(name, required)
    elif len(value) > limit:
        errors.add(name, f"Enter no more than {limit} characters")
    return value


# Agenda -----------------------------------------------------------------------------

@bp.get("/agenda")
def agenda():
    config = get_config()
    panel = _panel()
    requested = request.args.get("date")
    meeting_date = _parse_iso(requested) if requested else next_meeting(config, _today(), panel.holidays)
    if meeting_date is None:
        abort(400, description="The date must be written as YYYY-MM-DD, for example 2026-12-09.")
    return _render_agenda(panel, meeting_date)


def _render_agenda(panel: PanelStore, meeting_date: date, errors: FormErrors | None = None, status: int = 200):
    config = get_config()
    today = _today()
    agenda = panel.list_agenda(meeting_date)
    audit_view("agenda", meeting_date.isoformat())
    day = check_meeting_day(config, meeting_date, panel.holidays)
    upcoming = next_meeting(config, today, panel.holidays)
    page = render_template(
        "panel/agenda.html", agenda=agenda, meeting_date=meeting_date, day=day, upcoming=upcoming,
        # A prepared agenda may be prepared again until its meeting day, to add the items that arrived since.
        can_prepare=_can_change() and meeting_date <= upcoming
        and not (agenda.prepared and meeting_date < today)
        and (day.is_meeting or panel.get_meeting(meeting_date) is not None),
        previous=previous_meeting(config, meeting_date, panel.holidays),
        following=next_meeting(config, meeting_date + timedelta(days=1), panel.holidays),
        can_change=_can_change(), errors=errors or FormErrors(), formats=FORMATS, export_labels=EXPORT_LABELS,
        long_date=long_date, short_date=short_date, entry_reason=entry_reason,
        clock_text=clock_text, names_shown=config.panel.agenda_child_names != "none")
    return page, status


def _form_meeting_date() -> date:
    meeting_date = _parse_iso(request.form.get("date"))
    if meeting_date is None:
        abort(400, description="The meeting date is missing or not written as YYYY-MM-DD.")
    return meeting_date


@bp.post("/agenda/prepare")
@role_required(*CHANGERS)
def agenda_prepare():
    meeting_date = _form_meeting_date()
    try:
        _panel().prepare_agenda(meeting_date, _today(), actor=_actor())
    except ValueError as error:
        errors = FormErrors("prepare")
        errors.add("prepare", _sentence(error))
        return _render_agenda(_panel(), meeting_date, errors, 400)
    flash(f"The agenda for {long_date(meeting_date)} is prepared: its items are numbered and can be reordered.",
          "success")
    return redirect(url_for("panel.agenda", date=meeting_date.isoformat()))


@bp.post("/agenda/move")
@role_required(*CHANGERS)
def agenda_move():
    meeting_date = _form_meeting_date()
    direction = request.form.get("direction", "")
    try:
        item_id = int(request.form.get("item_id", ""))
    except ValueError:
        abort(400, description="The agenda item is missing.")
    if direction not in ("up", "down"):
        abort(400, description="The direction must be up or down.")
    try:
        moved = _panel().move_agenda_entry(meeting_date, item_id, direction, actor=_actor())
    except ValueError as error:
        errors = FormErrors("move")
        errors.add(f"item-{item_id}", _sentence(error))
        return _render_agenda(_panel(), meeting_date, errors, 400)
    if moved:
        flash(f"Item moved {direction}.", "success")
    return redirect(url_for("panel.agenda", date=meeting_date.isoformat()) + f"#item-{item_id}")


@bp.post("/agenda/aob")
@role_required(*CHANGERS)
def agenda_aob():
    meeting_date = _form_meeting_date()
    errors = FormErrors("aob")
    title = _text("aob-title", errors, required="Enter a title for the AOB item", limit=200)
    case_id = _text("aob-case", errors, limit=40) or None
    if not errors:
        try:
            _panel().add_aob_item(meeting_date, title, case_id=case_id, actor=_actor())
        except ValueError as error:
            errors.add("aob-case", _sentence(error))
    if errors:
        return _render_agenda(_panel(), meeting_date, errors, 400)
    flash("AOB item added.", "success")
    return redirect(url_for("panel.agenda", date=meeting_date.isoformat()))


@bp.get("/agenda/export")
def agenda_export():
    panel = _panel()
    meeting_date = _parse_iso(request.args.get("date")) or next_meeting(get_config(), _today(), panel.holidays)
    output_format = request.args.get("format", "html")
    if output_format not in FORMATS:
        abort(400, description=f"The format must be one of {', '.join(FORMATS)}.")
    data = render(panel.list_agenda(meeting_date), get_config(), output_format)
    get_accounts().add_event(_actor(), "agenda_exported", target_type="meeting", target_id=meeting_date.isoformat(),
                             detail={"format": output_format})
    filename = f"ccas-panel-agenda-{meeting_date.isoformat()}.{output_format}"
    return Response(data, content_type=EXPORT_TYPES[output_format],
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


# Meetings ---------------------------------------------------------------------------

@bp.get("/meetings")
def meetings():
    panel = _panel()
    upcoming = next_meeting(get_config(), _today(), panel.holidays)
    return render_template("panel/meetings.html", meetings=panel.list_meetings(), upcoming=upcoming,
                           draft_count=len(panel.list_drafts(prefix=None)), long_date=long_date)


@bp.get("/meetings/<meeting_date>")
def meeting(meeting_date: str):
    return _render_meeting(_meeting_date_or_404(meeting_date))


def _render_meeting(meeting_date: date, errors: FormErrors | None = None, status: int = 200):
    config = get_config()
    panel = _panel()
    record = panel.get_meeting(meeting_date)
    audit_view("meeting", meeting_date.isoformat())
    agenda = panel.list_agenda(meeting_date)
    decided = {decision.case_id: decision for decision in record.decisions} if record else {}
    cases = []
    for section in agenda.sections:
        for entry in section.entries:
            if entry.case_id and entry.case_id not in [case["id"] for case in cases]:
                cases.append({"id": entry.case_id, "label": entry.child_label, "section": section.title})
    for case_id in decided:
        if case_id not in [case["id"] for case in cases]:
            cases.append({"id": case_id, "label": "", "section": ""})
    drafts = panel.list_drafts(prefix=f"outcome|{record.id}|") if record else []
    day = check_meeting_day(config, meeting_date, panel.holidays)

    def decision_options(chosen: str) -> list[dict]:
        return [{"value": "", "text": "Choose a decision", "selected": not chosen}] + [
            {"value": kind, "text": label, "selected": kind == chosen} for kind, label in DECISION_KINDS.items()]

    def case_options(chosen: str) -> list[dict]:
        return [{"value": "", "text": "Not about one case"}] + [
            {"value": case["id"], "text": case["id"], "selected": case["id"] == chosen} for case in cases]

    page = render_template(
        "panel/meeting.html", meeting_date=meeting_date, record=record, cases=cases, decided=decided,
        decision_options=decision_options, case_options=case_options,
        decision_kinds=DECISION_KINDS, summary_required=SUMMARY_REQUIRED, drafts=drafts, day=day,
        can_change=_can_change(), errors=errors or FormErrors(), long_date=long_date, short_date=short_date,
        upcoming=next_meeting(config, _today(), panel.holidays))
    return page, status


def _meeting_id_or_404(meeting_date: date) -> int:
    record = _panel().get_meeting(meeting_date)
    if record is None:
        abort(404)
    return record.id


@bp.post("/meetings/<meeting_date>/create")
@role_required(*CHANGERS)
def meeting_create(meeting_date: str):
    day = _meeting_date_or_404(meeting_date)
    extraordinary = request.form.get("extraordinary") == "yes"
    try:
        _panel().create_meeting(day, _today(), extraordinary=extraordinary, actor=_actor())
    except ValueError as error:
        errors = FormErrors("create")
        errors.add("create", _sentence(error))
        return _render_meeting(day, errors, 400)
    flash(f"The meeting record for {long_date(day)} is created.", "success")
    return redirect(url_for("panel.meeting", meeting_date=day.isoformat()))


@bp.post("/meetings/<meeting_date>/attendance")
@role_required(*CHANGERS)
def meeting_attendee_add(meeting_date: str):
    day = _meeting_date_or_404(meeting_date)
    meeting_id = _meeting_id_or_404(day)
    errors = FormErrors("attendance")
    name = _text("attendee-name", errors, required="Enter the person's name", limit=255)
    address = _text("attendee-email", errors, limit=320)
    organisation = _text("attendee-organisation", errors, limit=255)
    attended = request.form.get("attendee-attended", "")
    errors.values["attendee-attended"] = attended
    if address and "@" not in address:
        errors.add("attendee-email", "Enter an email address in the correct format, like name@example.org")
    if attended not in ("present", "apologies"):
        errors.add("attendee-attended", "Select present or apologies")
    if errors:
        return _render_meeting(day, errors, 400)
    _panel().add_attendee(meeting_id, Attendee(name=name, email=address, organisation=organisation,
                                               attended=attended == "present"), actor=_actor())
    flash(f"{name} added as {'present' if attended == 'present' else 'sending apologies'}.", "success")
    return redirect(url_for("panel.meeting", meeting_date=day.isoformat()) + "#attendance")


@bp.post("/meetings/<meeting_date>/attendance/<int:attendance_id>/remove")
@role_required(*CHANGERS)
def meeting_attendee_remove(meeting_date: str, attendance_id: int):
    day = _meeting_date_or_404(meeting_date)
    try:
        _panel().remove_attendee(_meeting_id_or_404(day), attendance_id, actor=_actor())
    except ValueError:
        abort(404)
    flash("Removed from the attendance list.", "success")
    return redirect(url_for("panel.meeting", meeting_date=day.isoformat()) + "#attendance")


@bp.post("/meetings/<meeting_date>/notes")
@role_required(*CHANGERS)
def meeting_notes(meeting_date: str):
    day = _meeting_date_or_404(meeting_date)
    meeting_id = _meeting_id_or_404(day)
    errors = FormErrors("notes")
    notes = _text("notes", errors, limit=20000)
    if errors:
        return _render_meeting(day, errors, 400)
    _panel().set_notes(meeting_id, notes, actor=_actor())
    flash("Notes saved.", "success")
    return redirect(url_for("panel.meeting", meeting_date=day.isoformat()) + "#notes")


@bp.post("/meetings/<meeting_date>/decisions")
@role_required(*CHANGERS)
def meeting_decision(meeting_date: str):
    day = _meeting_date_or_404(meeting_date)
    meeting_id = _meeting_id_or_404(day)
    case_id = request.form.get("case_id", "").strip()
    errors = FormErrors(f"decision-{case_id}")
    kind = request.form.get("kind", "")
    errors.values["kind"] = kind
    summary = _text("summary", errors)
    field_prefix = f"decision-{case_id}"
    if kind not in DECISION_KINDS:
        errors.add(f"{field_prefix}-kind", f"Select the panel's decision on {case_id}")
    elif kind in SUMMARY_REQUIRED and not summary:
        errors.add(f"{field_prefix}-summary",
                   f"Enter a summary for {case_id}: the outcome email for this decision refers to it")
    if not errors:
        try:
            _panel().record_decision(meeting_id, case_id, kind, summary, actor=_actor())
        except ValueError as error:
            errors.add(f"{field_prefix}-kind", _sentence(error))
    if errors:
        return _render_meeting(day, errors, 400)
    flash(f"Decision on {case_id} saved: {DECISION_KINDS[kind]}.", "success")
    return redirect(url_for("panel.meeting", meeting_date=day.isoformat()) + f"#decision-{case_id}")


@bp.post("/meetings/<meeting_date>/actions")
@role_required(*CHANGERS)
def meeting_action_add(meeting_date: str):
    day = _meeting_date_or_404(meeting_date)
    meeting_id = _meeting_id_or_404(day)
    errors = FormErrors("action")
    case_id = _text("action-case", errors, limit=40) or None
    owner = _text("action-owner", errors, required="Enter the email address of the action's owner", limit=320)
    description = _text("action-description", errors, required="Enter what the action is")
    due_on = _date_fields("action-due", errors, required=False, label="due date")
    if owner and "@" not in owner:
        errors.add("action-owner", "Enter an email address in the correct format, like name@example.org")
    if not errors:
        try:
            action_id = _panel().add_action(meeting_id, owner, description, case_id=case_id, due_on=due_on,
                                            actor=_actor())
        except ValueError as error:
            errors.add("action-case", _sentence(error))
    if errors:
        return _render_meeting(day, errors, 400)
    flash(f"Action {action_id} added.", "success")
    return redirect(url_for("panel.meeting", meeting_date=day.isoformat()) + "#actions")


@bp.post("/meetings/<meeting_date>/draft-outcomes")
@role_required(*CHANGERS)
def meeting_draft_outcomes(meeting_date: str):
    day = _meeting_date_or_404(meeting_date)
    meeting_id = _meeting_id_or_404(day)
    summary = draft_outcomes(get_store(), get_config(), meeting_id)
    get_accounts().add_event(_actor(), "outcomes_drafted", target_type="meeting", target_id=meeting_id,
                             detail={"drafted": summary.drafted, "skipped": summary.skipped,
                                     "superseded": summary.superseded})
    text = f"{len(summary.drafted)} outcome {'email' if len(summary.drafted) == 1 else 'emails'} drafted."
    missing = sorted(case_id for case_id, reason in summary.skipped.items() if reason == "no_lead_email")
    if missing:
        text += f" No draft for {', '.join(missing)}: the case has no lead professional email."
    if summary.superseded:
        text += f" {summary.superseded} older {'draft' if summary.superseded == 1 else 'drafts'} replaced."
    text += " Read and approve them on the Drafts page."
    flash(text, "success")
    return redirect(url_for("panel.meeting", meeting_date=day.isoformat()) + "#outcomes")


# Drafts -----------------------------------------------------------------------------

@dataclass(frozen=True)
class RenderedDraft:
    id: int
    case_id: str | None
    purpose: str
    purpose_label: str
    recipient: str
    message_pk: int | None
    subject: str
    body: str
    created_at: datetime


def _rendered(draft: DraftView) -> RenderedDraft:
    # A row whose body the retention purge removed (raw is None) shows an empty email.
    message = email.message_from_bytes(draft.raw or b"", policy=email.policy.default)
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    return RenderedDraft(id=draft.id, case_id=draft.case_id, purpose=draft.purpose,
                         purpose_label=purpose_label(draft.purpose), recipient=draft.recipient,
                         message_pk=draft.message_pk, subject=str(message["Subject"] or ""), body=text.strip(), created_at=draft.created_at)


def purpose_label(purpose: str) -> str:
    """Name what a draft is for, such as "Outcome email: Advice and guidance"."""
    if purpose.startswith(OUTCOME_PREFIX):
        kind = purpose.removeprefix(OUTCOME_PREFIX)
        return f"Outcome email: {DECISION_KINDS.get(kind, kind.replace('_', ' '))}"
    return PURPOSE_LABELS.get(purpose, purpose.replace("_", " ").capitalize())


@bp.get("/drafts")
def drafts():
    return _render_drafts()


def _render_drafts(errors: FormErrors | None = None, status: int = 200):
    items = [_rendered(draft) for draft in _panel().list_drafts(prefix=None)]
    audit_view("outbox_drafts", "list")
    return render_template("panel/drafts.html", drafts=items, can_change=_can_change(),
                           errors=errors or FormErrors()), status


# A held reply answers a stored message, so it is approved or rejected as on the message's
# page (store/triage.py), where a rejection also counts as a correction of the bot. Outcome
# emails and other drafts of the panel go through PanelStore.


def _held_reply(outbox_id: int) -> bool:
    draft = _panel().get_draft(outbox_id)
    return draft is not None and draft.message_pk is not None


@bp.post("/drafts/<int:outbox_id>/approve")
@role_required(*CHANGERS)
def draft_approve(outbox_id: int):
    try:
        if _held_reply(outbox_id):
            TriageStore(get_store()).approve_reply(outbox_id, _actor())
        else:
            _panel().approve_draft(outbox_id, _actor())
    except ValueError as error:
        errors = FormErrors("draft")
        errors.add(f"draft-{outbox_id}", _sentence(error))
        return _render_drafts(errors, 409)
    flash(f"Draft {outbox_id} approved. The bot sends it with its next poll of the mailbox.", "success")
    return redirect(url_for("panel.drafts"))


@bp.post("/drafts/<int:outbox_id>/reject")
@role_required(*CHANGERS)
def draft_reject(outbox_id: int):
    errors = FormErrors("draft")
    field_id = f"reason-{outbox_id}"
    reason = _text(field_id, errors, limit=500)
    held = _held_reply(outbox_id)
    if held and not reason and not errors:
        errors.add(field_id, "Enter why the reply should not be sent")
    if not errors:
        try:
            if held:
                TriageStore(get_store()).reject_reply(outbox_id, _actor(), reason)
            else:
                _panel().reject_draft(outbox_id, _actor(), reason)
        except ValueError as error:
            errors.add(f"draft-{outbox_id}", _sentence(error))
    if errors:
        return _render_drafts(errors, 409 if f"draft-{outbox_id}" in errors.fields else 400)
    flash(f"Draft {outbox_id} rejected. It will not be sent.", "success")
    return redirect(url_for("panel.drafts"))


# Actions ----------------------------------------------------------------------------

@bp.get("/actions")
def actions():
    return _render_actions()


def _render_actions(errors: FormErrors | None = None, status: int = 200):
    open_actions = _panel().open_actions(today=_today())
    audit_view("actions", "open")
    return render_template("panel/actions.html", actions=open_actions, can_change=_can_change(),
                           errors=errors or FormErrors(), short_date=short_date), status


@bp.post("/actions/<int:action_id>/done")
@role_required(*CHANGERS)
def action_done(action_id: int):
    try:
        _panel().update_action(action_id, status="done", by=_actor(), today=_today(), actor=_actor())
    except ValueError:
        abort(404)
    flash(f"Action {action_id} marked as done.", "success")
    return redirect(url_for("panel.actions"))


@bp.post("/actions/<int:action_id>/due")
@role_required(*CHANGERS)
def action_due(action_id: int):
    errors = FormErrors(f"due-{action_id}")
    due_on = _date_fields(f"due-{action_id}", errors, required=True, label=f"new due date of action {action_id}")
    if errors:
        return _render_actions(errors, 400)
    try:
        _panel().update_action(action_id, due_on=due_on, by=_actor(), today=_today(), actor=_actor())
    except ValueError:
        abort(404)
    flash(f"Action {action_id} is now due on {long_date(due_on)}.", "success")
    return redirect(url_for("panel.actions"))


def _sentence(error: ValueError) -> str:
    """Turn a store error ("agenda items [3] are not …") into a sentence for the page."""
    text = str(error)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
