"""Routing: what happens to a classified message, decided from the CCAS policy.

Deciding only; bot.compose turns a Decision into outgoing mail and the intake loop
stores and sends it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.pipeline import Context, Triage

# Below this confidence a person confirms the category before anything is relied on.
REVIEW_BELOW_CONFIDENCE = 0.5

PORTAL_GUIDANCE = re.compile(r"\bportal\b|\bhow\b[^.?]{0,30}\b(?:notify|refer|let you know|tell you|inform you)\b"
                             r"|\bnotif(?:y|ying|ication)\b|\bform (?:we|i) (?:need|have) to\b", re.I)
PORTAL_PROBLEM = re.compile(r"\baccess\b|\blog ?in\b|\bpassword\b|\baccount\b|\bcan'?t see\b|\bcannot see\b"
                            r"|\bnot working\b|\berror\b|\blocked out\b", re.I)

# Categories that open or reuse a case when a child is named.
CASE_CATEGORIES = {"support_request", "change_of_circumstances", "ehcp", "action_update", "parent_contact"}


@dataclass
class Decision:
    acknowledge: str | None = None
    forward_to_send: bool = False
    alert: bool = False
    agenda: str | None = None
    open_case: bool = False
    reopen_case: bool = False
    needs_person: bool = False
    reasons: list[str] = field(default_factory=list)

    def review(self, reason: str) -> None:
        self.needs_person = True
        self.reasons.append(f"review:{reason}")


def decide_route(triage: Triage, context: Context) -> Decision:
    category = triage.classification.category
    decision = Decision()
    ROUTES.get(category, _route_unknown)(triage, decision)

    if triage.urgent:
        decision.alert = True
        decision.review("urgent")
    if triage.match.method == "ambiguous" and category in CASE_CATEGORIES | {"school_notification"}:
        decision.review("ambiguous_case")
        decision.open_case = False
    if triage.classification.confidence < REVIEW_BELOW_CONFIDENCE:
        decision.review("low_confidence")
    if "sender:authentication_failed" in triage.reasons and decision.acknowledge:
        decision.review("sender_not_verified")
    if not triage.sender_email:
        decision.acknowledge = None
    return decision


def _route_support_request(triage: Triage, decision: Decision) -> None:
    decision.acknowledge = "professional_acknowledgement" if triage.sender_roles else "personal_acknowledgement"
    if triage.match.case_id is None:
        decision.open_case = triage.match.method != "ambiguous"
        decision.agenda = "new_referrals"
    elif triage.case_status == "closed":
        # A re-referral reuses the closed case, goes to new referrals and is checked by a person.
        decision.reopen_case = True
        decision.agenda = "new_referrals"
        decision.review("re_referral_of_closed_case")
    elif not triage.case_reviewed:
        # The case was opened by an earlier referral the panel has not yet seen.
        decision.agenda = "new_referrals"
    else:
        decision.agenda = "existing_placements"
    if triage.match.method == "ambiguous" and triage.match.candidates:
        decision.agenda = "existing_placements"


def _route_change(triage: Triage, decision: Decision) -> None:
    decision.acknowledge = "professional_acknowledgement" if triage.sender_roles else "personal_acknowledgement"
    decision.agenda = "existing_placements"
    if triage.match.case_id is None:
        decision.review("change_without_case")


def _route_ehcp(triage: Triage, decision: Decision) -> None:
    # The SEND team leads EHCP cases: forward the original, tell the sender, keep it off the CCAS agenda.
    decision.forward_to_send = True
    decision.acknowledge = "professional_send_notice" if triage.sender_roles else "personal_acknowledgement"
    decision.open_case = triage.match.case_id is None and triage.match.method != "ambiguous"


def _route_school_notification(triage: Triage, decision: Decision) -> None:
    decision.acknowledge = "school_portal_pointer"


def _route_query(triage: Triage, decision: Decision) -> None:
    reasons = triage.classification.reasons
    if "category:thanks" in reasons:
        return
    if "category:aob_request" in reasons:
        decision.agenda = "aob"
        return
    text = triage.message.new_text or triage.message.body
    if "school" in triage.sender_roles and PORTAL_GUIDANCE.search(text) and not PORTAL_PROBLEM.search(text):
        # How a school should notify is answered by the portal template; no person needed.
        decision.acknowledge = "school_portal_pointer"
        return
    decision.acknowledge = "professional_acknowledgement" if triage.sender_roles else "personal_acknowledgement"
    decision.review("query_needs_answer")


def _route_action_update(triage: Triage, decision: Decision) -> None:
    decision.agenda = "actions_review"


def _route_parent(triage: Triage, decision: Decision) -> None:
    # The professionals working with the family reply to parents, not the bot.
    decision.review("parent_or_carer")


def _route_auto_reply(triage: Triage, decision: Decision) -> None:
    decision.reasons.append("no_reply:automatic")


def _route_bounce(triage: Triage, decision: Decision) -> None:
    decision.reasons.append("no_reply:automatic")
    decision.review("bounce")


def _route_secure(triage: Triage, decision: Decision) -> None:
    decision.review("secure_message_to_retrieve")


def _route_unrelated(triage: Triage, decision: Decision) -> None:
    decision.reasons.append("no_reply:unrelated")


def _route_unknown(triage: Triage, decision: Decision) -> None:
    decision.review("unknown_category")


ROUTES = {
    "support_request": _route_support_request,
    "change_of_circumstances": _route_change,
    "ehcp": _route_ehcp,
    "school_notification": _route_school_notification,
    "query": _route_query,
    "action_update": _route_action_update,
    "parent_contact": _route_parent,
    "auto_reply": _route_auto_reply,
    "bounce": _route_bounce,
    "secure_message": _route_secure,
    "unrelated": _route_unrelated,
}
