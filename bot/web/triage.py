"""The triage queue and the message page.

The queue lists the messages that need a person, urgent ones first, then oldest first, and
below them the messages handled recently. The message page shows one message, why the bot
sent it to a person, the child's details with the passage each came from, the case
candidates, and the replies held for approval. Coordinators correct the bot there. Every
change goes through a TriageStore method that writes an audit event. A change to the bot's
decision also writes a correction row. No change sends mail by itself: an approved reply
becomes "pending" and leaves with the next poll.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from datetime import date, datetime, timezone

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from markupsafe import Markup

from bot.config import CategoryRoute, RoutingConfig
from bot.labels import CATEGORY_LABELS, NOT_RECORDED, case_status_label, category_label, risk_label
from bot.web.common import audit_view, current_user, get_config, get_store, role_required
from parsers.html_safe import message_html, sanitise_html
from parsers.mime import parse_message
from store.triage import CHILD_FIELDS, EHCP_STATUSES, TriageError, TriageStore, check_child_details

bp = Blueprint("triage", __name__)

CATEGORIES = tuple(field.name for field in dataclasses.fields(RoutingConfig) if field.type in (CategoryRoute,
                                                                                              "CategoryRoute"))
EHCP_LABELS = {
    "none": "No EHCP",
    "has_ehcp": "Has an EHCP",
    "draft_decision": "Decision to issue a draft EHCP",
    "assessment": "EHC needs assessment under way",
}
FIELD_LABELS = {
    "first_name": "First name",
    "last_name": "Last name",
    "dob": "Date of birth",
    "upn": "UPN",
    "nhs_number": "NHS number",
    "school_urn": "School",
    "year_group": "Year group",
    "ehcp": "EHCP status",
    "reason": "Reason for not attending",
}
REASON_LABELS = {
    "review:urgent": "Signals a risk to a child",
    "review:ambiguous_case": "Could be about more than one case: choose the case",
    "review:low_confidence": "The bot is not sure of the category",
    "review:change_without_case": "A change of circumstances for a child with no case",
    "review:re_referral_of_closed_case": "A new referral for a closed case",
    "review:sender_not_verified": "The sender's address failed its authentication check",
    "review:sender_is_own_inbox": "Claims to come from the panel's own inbox",
    "review:address_not_replyable": "The sender's address cannot be answered",
    "review:ehcp_assessment": "An EHC needs assessment is under way",
    "review:unknown_category": "The category has no routing rule",
    "review:confirmed_by_person": "A coordinator confirmed the triage",
    "sender:untrusted": "Sender outside the trusted domains (public or parent)",
    "sender:authentication_failed": "Sender failed SPF, DKIM or DMARC",
    "sender:missing": "No sender address",
    "sender:panel_member": "Sender is a panel member",
    "mailbox:quarantine": "Moved to quarantine: the bot could not read it safely",
    "match:none": "No existing case matches",
    "match:several_children": "Names more than one child",
    "match:candidates_ruled_out": "Possible cases were ruled out by date of birth or an identifier",
    "retry:attempts_exhausted": "Reading it failed too many times",
    "alert:handled": "Urgent alert dealt with",
    "thread:replies_to_bot": "Replies to the bot's own mail",
    "bounce:own_mail_failed": "The bot's own mail could not be delivered",
    "brake:acknowledged_recently": "No acknowledgement: the sender had one recently",
    "brake:case_mail_cap": "No acknowledgement: too much mail about this case in the last hour",
    "case:opened": "A new case was opened",
}
REASON_PREFIX_LABELS = {
    "review:policy:": "The policy says a person reviews every message of this category",
    "risk:": "Risk signal",
    "sender:": "Sender's organisation",
    "message:": "The message could not be read",
    "bug:": "The bot failed on this message; triage it by hand",
    "attachment:": "An attachment could not be read",
    "match:": "Matching",
    "defect:": "The message had a fault the bot repaired",
}
# Prefixes of the reason codes the queue shows as "why"; the message page shows all of them.
WHY_PREFIXES = ("review:", "risk:", "sender:", "mailbox:", "message:", "bug:", "match:", "retry:",
                "attachment:", "brake:", "alert:", "bounce:")
EVIDENCE_LABELS = {
    "labelled": "labelled", "details": "written with the child's details", "subject": "the subject line",
    "sentence": "in a sentence about the child", "sentence_subject": "at the start of a sentence",
    "parent_reference": "beside a parent's words", "plain": "mentioned", "after_name": "after the child's name",
    "text": "in the text", "found": "in the text", "year": "written as a year", "form_group": "a form group",
    "name": "the school's name", "urn": "the school's URN", "laestab": "the school's DfE number",
    "domain": "the sender's mail domain", "signature": "the sender's signature", "keyword": "a keyword",
    "phrase": "a phrase", "stated": "stated", "completed": "completed from another mention",
    "ambiguous": "more than one school fits", "error": "reading failed",
}
REGION_LABELS = {"subject": "subject line", "new": "new text", "history": "quoted earlier mail",
                 "attachment": "an attachment"}
PURPOSE_LABELS = {
    "professional_acknowledgement": "Acknowledgement to a professional",
    "personal_acknowledgement": "Acknowledgement with no case details",
    "school_portal_pointer": "Pointer to the schools' portal",
    "professional_send_notice": "Notice that the SEND team leads",
    "forward_to_send": "Forward to the SEND team",
    "duty_urgent_alert": "Urgent alert to the duty coordinators",
    "lead_professional_parent_notice": "Notice to the lead professional",
}
STATUS_LABELS = {"draft": "Held for approval", "pending": "Waiting to be sent", "sent": "Sent",
                 "rejected": "Rejected", "failed": "Failed", "bounced": "Bounced", "suppressed": "Not sent (backfill)",
                 "superseded": "Replaced"}
# Content types a browser may be given as they are; anything else is sent as application/octet-stream.
SAFE_DOWNLOAD_TYPES = frozenset({
    "application/pdf", "image/png", "image/jpeg", "image/gif", "text/plain", "text/csv",
    "application/msword", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
})
CHANGERS = ("coordinator", "admin")
# A message reference as the urgent alert gives it: the start of the message's SHA-256 in hex.
REFERENCE = re.compile(r"[0-9a-fA-F]{6,64}")


def triage_store() -> TriageStore:
    return TriageStore(get_store())


def reason_label(code: str) -> str:
    """Return a reason code in plain English; the code itself is always shown beside it."""
    if code in REASON_LABELS:
        return REASON_LABELS[code]
    if code.startswith("risk:"):
        return f"Risk signal: {risk_label(code)}"
    for prefix, label in REASON_PREFIX_LABELS.items():
        if code.startswith(prefix):
            rest = code[len(prefix):].replace("_", " ").replace(":", ", ")
            return f"{label}: {rest}" if rest else label
    return code


def evidence_label(code: str | None) -> str:
    """Turn an evidence code such as "labelled:history" into "labelled, in quoted earlier mail"."""
    if not code:
        return ""
    parts = code.split(":")
    label = EVIDENCE_LABELS.get(parts[0], parts[0].replace("_", " "))
    if parts[-1] in ("history", "attachment") and len(parts) > 1:
        label += f", in {REGION_LABELS[parts[-1]]}"
    return label


def is_why(code: str) -> bool:
    return code.startswith(WHY_PREFIXES)


def quote_html(quote: dict | None) -> Markup:
    """Return a stored quote as escaped HTML with the value marked."""
    if not quote or not isinstance(quote.get("line"), str):
        return Markup("")
    line, start, end = quote["line"], int(quote.get("start", 0)), int(quote.get("end", 0))
    start, end = max(0, min(start, len(line))), max(0, min(end, len(line)))
    return Markup("{}<mark>{}</mark>{}").format(line[:start], line[start:end], line[end:])


def when(value: datetime | date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).strftime("%-d %b %Y %H:%M UTC")
    return value.strftime("%-d %b %Y")


def age(value: datetime) -> str:
    value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    hours = int((datetime.now(timezone.utc) - value).total_seconds() // 3600)
    if hours < 1:
        return "under an hour"
    if hours < 48:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{hours // 24} days"


@bp.app_context_processor
def _helpers() -> dict:
    return {"reason_label": reason_label, "evidence_label": evidence_label, "quote_html": quote_html,
            "triage_when": when, "triage_age": age, "category_label": category_label,
            "not_recorded": NOT_RECORDED, "case_status_label": case_status_label,
            "ehcp_label": lambda value: EHCP_LABELS.get(value or "", value or NOT_RECORDED), "is_why": is_why,
            "purpose_label": lambda p: PURPOSE_LABELS.get(p, p.replace("_", " ")),
            "reply_status_label": lambda s: STATUS_LABELS.get(s, s), "shown_filename": shown_filename}


# Queue ---------------------------------------------------------------------------

@bp.get("/queue")
def queue():
    urgent_only = request.args.get("urgent") == "1"
    category = request.args.get("category") or None
    if category is not None and category not in CATEGORIES:
        category = None
    reference_text = request.args.get("reference", "").strip()
    reference = reference_text.lower() if REFERENCE.fullmatch(reference_text) else None
    reference_error = "" if reference or not reference_text else \
        "Enter the message reference as it is in the alert email: 6 to 64 letters a to f and digits"
    store = triage_store()
    waiting = store.queue(urgent_only=urgent_only, category=category, reference=reference)
    recent = store.recently_handled(urgent_only=urgent_only, category=category, reference=reference)
    school_names = store.school_names({item.extracted.get("school_urn") for item in [*waiting, *recent]})
    audit_view("queue", "needs_person")
    return render_template("triage/queue.html", waiting=waiting, recent=recent, urgent_only=urgent_only,
                           category=category, categories=CATEGORIES, category_labels=CATEGORY_LABELS,
                           school_names=school_names, reference=reference_text, reference_error=reference_error,
                           filtered=bool(urgent_only or category or reference))


# Message page ---------------------------------------------------------------------

@bp.get("/messages/<int:pk>")
def message(pk: int):
    return _render_message(pk)


def _render_message(pk: int, *, errors: dict[str, str] | None = None, values: dict | None = None,
                    status: int = 200):
    store = triage_store()
    detail = store.message(pk)
    if detail is None:
        abort(404)
    raw, raw_missing = _load_raw(pk)
    parsed = parse_message(raw) if raw else None
    html = sanitise_html(message_html(raw)) if raw else ""
    extracted = detail.item.extracted
    school_names = store.school_names({extracted.get("school_urn"), *(extracted.get("school_candidates") or [])})
    audit_view("message", pk)
    errors = errors or {}
    error_list = [{"text": text, "href": f"#{name.replace('_', '-')}"} for name, text in errors.items()]
    return render_template(
        "triage/message.html", detail=detail, item=detail.item, extracted=extracted, parsed=parsed,
        body_html=Markup(html), school_names=school_names, categories=CATEGORIES, category_labels=CATEGORY_LABELS,
        child_fields=CHILD_FIELDS, field_labels=FIELD_LABELS, ehcp_statuses=EHCP_STATUSES, errors=errors,
        error_list=error_list, values=values or _child_form_values(extracted), raw_missing=raw_missing,
        can_change=current_user().role in CHANGERS), status


def _load_raw(pk: int) -> tuple[bytes | None, str]:
    """Return the message's raw bytes, or None and the reason (such as the retention purge) they are gone."""
    try:
        return get_store().load_raw(pk), ""
    except LookupError as error:  # RawPurgedError is a LookupError
        return None, str(error)


def _child_form_values(extracted: dict) -> dict:
    values = {name: extracted.get(name) for name in CHILD_FIELDS}
    return {name: "" if value is None else str(value) for name, value in values.items()}


@bp.get("/messages/<int:pk>/attachments/<int:index>")
def attachment(pk: int, index: int):
    if triage_store().message(pk) is None:
        abort(404)
    raw, _missing = _load_raw(pk)
    parsed = parse_message(raw) if raw else None
    if parsed is None or not 0 <= index < len(parsed.attachments):
        abort(404)
    part = parsed.attachments[index]
    audit_view("attachment", f"{pk}:{index}")
    content_type = part.content_type.lower() if part.content_type.lower() in SAFE_DOWNLOAD_TYPES \
        else "application/octet-stream"
    response = Response(part.payload, content_type=content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{safe_filename(part.filename, index)}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# Characters that reorder the text around them. In a file name, "invoice\u202egpj.exe" shows as
# "invoiceexe.jpg", so the name shown on the page is given without them.
_BIDI_CONTROLS = dict.fromkeys(map(ord, "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                                       "\u2066\u2067\u2068\u2069"))


def shown_filename(name: str | None) -> str:
    """Return an attachment's name for the page, without the characters that reorder text."""
    return (name or "").translate(_BIDI_CONTROLS)


def safe_filename(name: str, index: int) -> str:
    """Return an ASCII file name made of letters, digits, dots, hyphens and underscores.

    Folders in the name are dropped, so a name can never be read as a path.
    """
    base = re.split(r"[\\/]", name or "")[-1]
    ascii_name = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode("ascii")
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_name).strip("._-")
    cleaned = re.sub(r"\.{2,}", ".", cleaned)[-100:].lstrip(".")
    return cleaned or f"attachment-{index + 1}"


# Actions on the message page -----------------------------------------------------------

def _done(pk: int, text: str, anchor: str = ""):
    flash(text, "success")
    return redirect(url_for("triage.message", pk=pk) + anchor)


def _failed(pk: int, error: TriageError, field: str):
    return _render_message(pk, errors={field: str(error)}, status=400)


@bp.post("/messages/<int:pk>/confirm")
@role_required("coordinator")
def confirm(pk: int):
    try:
        triage_store().confirm_triage(pk, current_user().username)
    except TriageError as error:
        return _failed(pk, error, "confirm")
    return _done(pk, "Triage confirmed. The message has left the queue.")


@bp.post("/messages/<int:pk>/category")
@role_required("coordinator")
def correct_category(pk: int):
    try:
        changed = triage_store().correct_category(pk, request.form.get("category", ""), current_user().username,
                                                  allowed=set(CATEGORIES))
    except TriageError as error:
        return _failed(pk, error, "category")
    return _done(pk, "Category corrected." if changed else "The category was already that.")


@bp.post("/messages/<int:pk>/child")
@role_required("coordinator")
def correct_child(pk: int):
    values, errors = check_child_details(request.form, today=date.today())
    if errors:
        return _render_message(pk, errors=errors, values={name: request.form.get(name, "") for name in CHILD_FIELDS},
                               status=400)
    try:
        changed = triage_store().correct_child(pk, values, current_user().username)
    except TriageError as error:
        return _failed(pk, error, "first_name")
    if not changed:
        return _done(pk, "Nothing was changed.", "#child")
    names = ", ".join(FIELD_LABELS[name].lower() for name in changed)
    return _done(pk, f"Child's details corrected: {names}.", "#child")


@bp.post("/messages/<int:pk>/link")
@role_required("coordinator")
def link_case(pk: int):
    case_id = request.form.get("case_id", "").strip().upper()
    if not case_id:
        return _failed(pk, TriageError("Enter a case reference, like CCAS-2026-0042"), "case_id")
    try:
        triage_store().link_case(pk, case_id, current_user().username)
    except TriageError as error:
        return _failed(pk, error, "case_id")
    return _done(pk, f"Message linked to case {case_id}.", "#case")


@bp.post("/messages/<int:pk>/unlink")
@role_required("coordinator")
def unlink_case(pk: int):
    try:
        triage_store().unlink_case(pk, current_user().username)
    except TriageError as error:
        return _failed(pk, error, "case_id")
    return _done(pk, "Message unlinked from its case.", "#case")


@bp.post("/messages/<int:pk>/open-case")
@role_required("coordinator")
def open_case(pk: int):
    try:
        case_id = triage_store().open_case(pk, current_user().username, date.today())
    except TriageError as error:
        return _failed(pk, error, "first_name")
    return _done(pk, f"Case {case_id} opened and the message linked to it.", "#case")


@bp.post("/messages/<int:pk>/alert-handled")
@role_required("coordinator")
def alert_handled(pk: int):
    try:
        triage_store().mark_alert_handled(pk, current_user().username)
    except TriageError as error:
        return _failed(pk, error, "alert")
    return _done(pk, "Urgent alert marked as dealt with.")


@bp.post("/messages/<int:pk>/replies/<int:outbox_id>/approve")
@role_required("coordinator")
def approve_reply(pk: int, outbox_id: int):
    try:
        triage_store().approve_reply(outbox_id, current_user().username, message_pk=pk)
    except TriageError as error:
        return _failed(pk, error, f"reply-{outbox_id}")
    return _done(pk, "Reply approved. It will be sent with the next poll of the mailbox.", "#replies")


@bp.post("/messages/<int:pk>/replies/<int:outbox_id>/reject")
@role_required("coordinator")
def reject_reply(pk: int, outbox_id: int):
    try:
        triage_store().reject_reply(outbox_id, current_user().username, request.form.get("reason", ""),
                                    message_pk=pk)
    except TriageError as error:
        return _failed(pk, error, f"reject-reason-{outbox_id}")
    return _done(pk, "Reply rejected. It will not be sent.", "#replies")


@bp.post("/messages/<int:pk>/replies/<int:outbox_id>/edit")
@role_required("coordinator")
def edit_reply(pk: int, outbox_id: int):
    try:
        triage_store().edit_reply(outbox_id, current_user().username, request.form.get("subject", ""),
                                  request.form.get("body", ""), message_pk=pk)
    except TriageError as error:
        return _failed(pk, error, f"reply-body-{outbox_id}")
    return _done(pk, "Reply changed. It is still held: approve it to send it.", "#replies")
