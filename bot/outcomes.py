"""Mail after a panel meeting: outcome drafts, action reminders, and replies about actions.

- `draft_outcomes` renders one outcome email per decision, to the case's lead
  professional, and stores it as a draft. A coordinator approves or rejects each draft
  (store.panel.PanelStore.approve_draft); approved drafts become "pending" and the
  intake's next poll sends them.
- `send_action_reminders` queues one reminder per open action and due date when the due
  date is at most `[panel] action_reminder_days` away, or already past. The intake's
  next poll sends them.
- `record_action_reply` updates the action a reply is about ("action 5 is done").

Every email goes to one recipient and names the case by its reference only. Free text
a coordinator wrote (a decision summary, an action description) has the child's names,
UPN-shaped and NHS-number-shaped identifiers replaced before it goes into an email.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from bot.config import Config
from replies.compose import build_reply
from replies.render import Renderer
from store.models import Case
from store.panel import DECISION_KINDS, PanelStore, QueuedMail
from store.records import PlannedMail, Store

log = logging.getLogger(__name__)

# One template per decision kind, in replies/templates.
OUTCOME_TEMPLATES: dict[str, str] = {
    "provision_arranged": "professional_outcome_provision_arranged",
    "advice_and_guidance": "professional_outcome_advice_and_guidance",
    "signposting": "professional_outcome_signposting",
    "school_to_school_support": "professional_outcome_school_to_school_support",
    "refer_to_send": "professional_outcome_refer_to_send",
    "more_information": "professional_outcome_more_information",
    "close": "professional_outcome_close",
}
ACTION_REMINDER_TEMPLATE = "panel_action_reminder"

UPN_SHAPED = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]\d{11}[0-9A-Za-z](?![A-Za-z0-9])")
NHS_SHAPED = re.compile(r"(?<![\d+])\d{3}[ -]?\d{3}[ -]?\d{4}(?!\d)")
ACTION_NUMBER = re.compile(r"\bactions?\s*(?:no\.?\s*|number\s*|#\s*)?(\d{1,6})\b", re.I)
DONE = re.compile(r"\b(?:done|complete|completed|finished)\b", re.I)
NOT_DONE = re.compile(
    r"\b(?:not|isn'?t|hasn'?t|haven'?t|wasn'?t|won'?t\s+be|yet\s+to\s+be)\s+(?:been\s+|yet\s+|fully\s+|quite\s+|be\s+)?"
    r"(?:done|complete|completed|finished)\b|\bincomplete\b|\bnot\s+yet\b", re.I)


@dataclass
class DraftSummary:
    drafted: list[int] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # case id -> reason code
    superseded: int = 0


@dataclass(frozen=True)
class ActionReplyResult:
    """The result of a reply about actions: the actions it updated and an outcome code."""

    action_ids: tuple[int, ...]
    outcome: str  # "marked_done", "updated", "not_found" or "ambiguous"


def long_date(day: date) -> str:
    """Format a date as "Wednesday 8 January 2025"."""
    return f"{day:%A} {day.day} {day:%B %Y}"


def mask_free_text(text: str, case: Case | None) -> str:
    """Replace the child's names and UPN- or NHS-number-shaped identifiers in coordinator text."""
    text = UPN_SHAPED.sub("[identifier removed]", text)
    text = NHS_SHAPED.sub("[identifier removed]", text)
    if case is not None:
        names = {case.first_name, case.last_name, case.known_as, *case.other_first_names, *case.other_last_names}
        for name in sorted((name for name in names if name and len(name) > 1), key=len, reverse=True):
            # Case-sensitive, so a name that is also a word ("Will", "May") is replaced only when capitalised.
            text = re.sub(rf"\b{re.escape(name)}\b", "the child", text)
    return text


def _marking_prefix(config: Config) -> str:
    marking = config.routing.default_protective_marking
    return f"{marking} " if marking else ""


def _planned(config: Config, renderer: Renderer, template: str, recipient: str, values: dict) -> PlannedMail:
    rendered = renderer.render(template, values)
    message = build_reply(original=None, sender=config.council.ccas_inbox, recipient=recipient,
                          subject=rendered.subject, body=rendered.body, loop_header=config.sending.loop_header,
                          auto_submitted="auto-generated")
    return PlannedMail(purpose=template, recipient=recipient,
                       out_message_id=message["Message-ID"].strip().strip("<>"), raw=message.as_bytes())


def draft_outcomes(store: Store, config: Config, meeting_id: int, renderer: Renderer | None = None) -> DraftSummary:
    """Draft one outcome email per decision of a meeting, to the case's lead professional.

    Drafting again after a decision changed supersedes the old draft. A case whose draft
    for the same decision is still a draft, approved or sent gets no new one.
    """
    renderer = renderer or Renderer()
    panel = PanelStore(store, config)
    meeting = panel.get_meeting_by_id(meeting_id)
    summary = DraftSummary()
    for decision in meeting.decisions:
        prefix = f"outcome|{meeting_id}|{decision.case_id}|"
        base_key = f"{prefix}{decision.kind}"
        existing = panel.outbox_keys(prefix)
        summary.superseded += panel.supersede_drafts(prefix, keep={key for key in existing
                                                                   if key.startswith(base_key + "|")})
        if any(key.startswith(base_key + "|") and status in ("draft", "pending", "sent")
               for key, status in existing.items()):
            summary.skipped[decision.case_id] = "already_drafted"
            continue
        if not decision.lead_email or "@" not in decision.lead_email:
            summary.skipped[decision.case_id] = "no_lead_email"
            log.warning("meeting %d: no outcome drafted for case %s: no lead professional email",
                        meeting_id, decision.case_id)
            continue

        case = store.get_case(decision.case_id)
        values = _outcome_values(config, meeting, decision, case)
        mail = _planned(config, renderer, OUTCOME_TEMPLATES[decision.kind], decision.lead_email, values)
        # A rejected draft keeps its key, so a new draft for the same decision takes the next revision.
        revision = 1 + sum(1 for key in existing if key.startswith(base_key + "|"))
        summary.drafted += panel.queue_mail([QueuedMail(f"{base_key}|{revision}", decision.case_id, mail)],
                                            status="draft")
    log.info("meeting %d: %d outcome drafts, %d skipped, %d superseded", meeting_id, len(summary.drafted),
             len(summary.skipped), summary.superseded)
    return summary


def _outcome_values(config: Config, meeting, decision, case: Case | None) -> dict:
    actions = [{"number": action.id,
                "description": mask_free_text(action.description, case),
                "due": long_date(action.due_on) if action.due_on else "no date set"}
               for action in meeting.actions if action.case_id == decision.case_id]
    next_review = case.next_review if case is not None and decision.kind != "close" else None
    return {
        "la_name": config.council.la_name,
        "case_reference": decision.case_id,
        "marking_prefix": _marking_prefix(config),
        "meeting_date": long_date(meeting.meeting_date),
        "decision_label": DECISION_KINDS[decision.kind],
        "summary": mask_free_text(decision.summary, case),
        "actions": actions,
        "next_review": long_date(next_review) if next_review else "",
        "safeguarding_contact": config.council.safeguarding_contact,
        "send_inbox": config.council.send_inbox,
    }


def send_action_reminders(store: Store, config: Config, today: date, renderer: Renderer | None = None) -> list[int]:
    """Queue a reminder to the owner of each open action due within the reminder window, or overdue.

    Each action gets one reminder per due date, however often this runs; a changed due
    date gets a new one. Return the outbox ids queued; the intake's next poll sends them.
    """
    renderer = renderer or Renderer()
    panel = PanelStore(store, config)
    until = today + timedelta(days=config.panel.action_reminder_days)
    queued = []
    for action in panel.open_actions(today=today):
        if action.due_on is None or action.due_on > until:
            continue
        case = store.get_case(action.case_id) if action.case_id else None
        values = {
            "la_name": config.council.la_name,
            "case_reference": action.case_id,
            "marking_prefix": _marking_prefix(config) if action.case_id else "",
            "action_number": action.id,
            "action_description": mask_free_text(action.description, case),
            "action_due": long_date(action.due_on),
            "overdue": action.due_on < today,
            "ccas_inbox": config.council.ccas_inbox,
        }
        mail = _planned(config, renderer, ACTION_REMINDER_TEMPLATE, action.owner_email, values)
        key = f"action-reminder|{action.id}|{action.due_on.isoformat()}"
        queued += panel.queue_mail([QueuedMail(key, action.case_id, mail)], status="pending")
    log.info("action reminders: %d queued", len(queued))
    return queued


def record_action_reply(store: Store, config: Config, target: int | str | None, message_pk: int | None,
                        text: str, *, sender_email: str = "", today: date | None = None) -> ActionReplyResult:
    """Update the action a reply is about, and mark it done when the text states it is done.

    The action is found by a number in the text ("action 5"), else by `target`: an
    action id (int) or a case id (str), whose single open action is taken. A case with
    several open actions is "ambiguous" unless exactly one of them is the sender's.
    Pass the reply's new text only, without the quoted history.
    """
    panel = PanelStore(store, config)
    today = today or date.today()
    action_ids = _actions_named(panel, text, today)
    if not action_ids and isinstance(target, int):
        action_ids = [target] if panel.get_action(target, today) is not None else []
    elif not action_ids and isinstance(target, str):
        candidates = panel.open_actions(case_id=target, today=today)
        if len(candidates) > 1:
            candidates = [action for action in candidates if action.owner_email == sender_email.lower()]
            if len(candidates) != 1:
                log.info("message %s: action reply for case %s is ambiguous", message_pk, target)
                return ActionReplyResult((), "ambiguous")
        action_ids = [action.id for action in candidates]
    if not action_ids:
        return ActionReplyResult((), "not_found")

    done = bool(DONE.search(text)) and not NOT_DONE.search(text)
    for action_id in action_ids:
        panel.update_action(action_id, status="done" if done else None, message_pk=message_pk,
                            by=sender_email, today=today)
    outcome = "marked_done" if done else "updated"
    log.info("message %s: actions %s %s", message_pk, ",".join(map(str, action_ids)), outcome)
    return ActionReplyResult(tuple(action_ids), outcome)


def _actions_named(panel: PanelStore, text: str, today: date) -> list[int]:
    numbers = []
    for found in ACTION_NUMBER.finditer(text):
        number = int(found.group(1))
        if number not in numbers and panel.get_action(number, today) is not None:
            numbers.append(number)
    return numbers
