"""The case list and the case page: the child, parties, schools, chronology, clocks and actions.

Coordinators change a case's status, lead professional and next review here, and merge
one case into another. Each change goes through a TriageStore method that writes an audit
event in its own transaction.
"""

from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from bot.web.common import audit_view, current_user, get_config, get_store, role_required
from store.triage import TriageError, TriageStore

bp = Blueprint("cases", __name__)

CHANGERS = ("coordinator", "admin")
EVENT_LABELS = {
    "case_opened": "Case opened",
    "case_reopened": "Case reopened",
    "case_closed": "Case closed",
    "message_linked": "Message",
    "message_unlinked": "Message unlinked",
    "merged_into": "Merged into another case",
    "merged_from": "Another case merged into this one",
    "lead_professional_set": "Lead professional changed",
    "outcome_approved": "Outcome email approved",
    "outcome_rejected": "Outcome email rejected",
    "reply_rejected": "Reply rejected",
    "panel_decision": "Panel decision",
    "panel_action": "Panel action",
}
CLOCK_LABELS = {
    "health_absence": "Absence through ill health (15 school days)",
    "exclusion_sixth_day": "Education from the sixth school day of a permanent exclusion",
    "part_time_timetable": "Part-time timetable",
}


def triage_store() -> TriageStore:
    return TriageStore(get_store())


@bp.app_context_processor
def _helpers() -> dict:
    return {"event_label": lambda kind: EVENT_LABELS.get(kind, kind.replace("_", " ").capitalize()),
            "clock_label": lambda kind: CLOCK_LABELS.get(kind, kind.replace("_", " ").capitalize())}


@bp.get("/cases")
def case_list():
    search = request.args.get("q", "").strip()[:100]
    cases = triage_store().find_cases(search)
    audit_view("case_list", search[:60] if search else "all")
    return render_template("cases/list.html", cases=cases, search=search)


@bp.get("/cases/<case_id>")
def case(case_id: str):
    return _render_case(case_id)


def _render_case(case_id: str, *, errors: dict[str, str] | None = None, status: int = 200):
    detail = triage_store().case(case_id, review_interval_weeks=get_config().panel.review_interval_weeks)
    if detail is None:
        abort(404)
    audit_view("case", case_id)
    errors = errors or {}
    error_list = [{"text": text, "href": f"#{name}"} for name, text in errors.items()]
    return render_template("cases/case.html", detail=detail, case=detail.case, errors=errors, error_list=error_list,
                           today=date.today(), can_change=current_user().role in CHANGERS), status


def _done(case_id: str, text: str):
    flash(text, "success")
    return redirect(url_for("cases.case", case_id=case_id))


@bp.post("/cases/<case_id>/status")
@role_required("coordinator")
def set_status(case_id: str):
    status = request.form.get("status", "")
    try:
        triage_store().set_case_status(case_id, status, current_user().username, date.today())
    except TriageError as error:
        return _render_case(case_id, errors={"status": str(error)}, status=400)
    return _done(case_id, f"Case {case_id} is now {status}.")


@bp.post("/cases/<case_id>/lead")
@role_required("coordinator")
def set_lead(case_id: str):
    try:
        triage_store().set_lead_professional(case_id, request.form.get("lead_professional", ""),
                                             request.form.get("lead_email", ""), current_user().username)
    except TriageError as error:
        return _render_case(case_id, errors={"lead-email": str(error)}, status=400)
    return _done(case_id, "Lead professional saved.")


@bp.post("/cases/<case_id>/review")
@role_required("coordinator")
def set_review(case_id: str):
    text = request.form.get("next_review", "").strip()
    next_review = None
    if text:
        try:
            next_review = date.fromisoformat(text)
        except ValueError:
            return _render_case(case_id, errors={"next-review": "Enter the date as YYYY-MM-DD, like 2027-01-13"},
                                status=400)
    try:
        triage_store().set_next_review(case_id, next_review, current_user().username)
    except TriageError as error:
        return _render_case(case_id, errors={"next-review": str(error)}, status=400)
    return _done(case_id, "Next review date saved." if next_review else "Next review date cleared.")


@bp.post("/cases/<case_id>/merge")
@role_required("coordinator")
def merge(case_id: str):
    target = request.form.get("target_case_id", "").strip().upper()
    if not target:
        return _render_case(case_id, errors={"merge-into": "Enter the reference of the case to merge into"},
                            status=400)
    try:
        triage_store().merge_cases(case_id, target, current_user().username)
    except TriageError as error:
        return _render_case(case_id, errors={"merge-into": str(error)}, status=400)
    return _done(target, f"Case {case_id} was merged into {target}.")
