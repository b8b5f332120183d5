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
    tell_lead_professional: bool = False
    reasons: list[str] = field(default_factory=list)

    def review(self, reason: str) -> None:
        self.needs_person = True
        self.reasons.append(f"review:{reason}")


def decide_route(triage: Triage, context: Context) -> Decision:
    category = triage.classification.category
    policy = context.config.routing
    route = getattr(policy, category, None)
    decision = Decision()
    if route is None:
        decision.review("unknown_category")
        return decision

    if route.acknowledge:
        decision.acknowledge = "professional_acknowledgement" if triage.sender_roles else "personal_acknowledgement"
    decision.agenda = None if route.agenda == "none" else route.agenda
    decision.forward_to_send = route.forward_to_send
    if route.review:
        decision.review(f"policy:{category}")
    CASE_RULES.get(category, _no_case_rule)(triage, decision)
    _apply_ehcp_assessment(triage, decision, policy.ehcp_assessment)

    if triage.urgent:
        decision.alert = True
        decision.review("urgent")
    if triage.match.method == "ambiguous" and category in CASE_CATEGORIES | {"school_notification"}:
        decision.review("ambiguous_case")
        decision.open_case = False
    if triage.classification.confidence * 100 < policy.review_below_confidence_percent:
        decision.review("low_confidence")
    if "sender:authentication_failed" in triage.reasons and (decision.acknowledge or _about_a_child(triage)):
        # An unverified sender may be forged, so a person checks and any reply contains no case details.
        # Mail about a child is checked too, even when no reply is due: a referral whose DKIM
        # broke in a forwarder must not be filed as unrelated without a person seeing it.
        decision.review("sender_not_verified")
        if decision.acknowledge:
            decision.acknowledge = "personal_acknowledgement"
    council = context.config.council
    if triage.sender_email in (council.ccas_inbox.lower(), council.send_inbox.lower()):
        # Mail claiming to come from the CCAS or SEND inbox is a loop or a forgery.
        decision.review("sender_is_own_inbox")
        decision.open_case = False
        decision.acknowledge = None
    if not triage.sender_email:
        decision.acknowledge = None
    return decision


def _about_a_child(triage: Triage) -> bool:
    """Return whether the message names a child or was linked to a case."""
    child = triage.child
    return bool(triage.match.case_id or getattr(child, "first_name", None) or getattr(child, "last_name", None))


def _apply_ehcp_assessment(triage: Triage, decision: Decision, setting: str) -> None:
    # An EHC needs assessment with no decision to issue a plan is not yet a SEND case.
    if triage.ehcp != "assessment" or decision.forward_to_send:
        return
    if setting == "send":
        decision.forward_to_send = True
        decision.acknowledge = "professional_send_notice" if triage.sender_roles else decision.acknowledge
        decision.agenda = None
    elif setting == "review":
        decision.review("ehcp_assessment")
    else:
        decision.reasons.append("ehcp:assessment_panel_decides")


def _rule_support_request(triage: Triage, decision: Decision) -> None:
    if triage.match.case_id is None:
        decision.open_case = triage.match.method != "ambiguous"
    elif triage.case_status == "closed":
        # A re-referral reuses the closed case, goes to new referrals and is checked by a person.
        decision.reopen_case = True
        decision.agenda = "new_referrals"
        decision.review("re_referral_of_closed_case")
    elif triage.case_reviewed:
        # The panel has reviewed this case before, so the request is about an existing placement.
        decision.agenda = "existing_placements"
    if triage.match.method == "ambiguous" and triage.match.candidates:
        decision.agenda = "existing_placements"


def _rule_change(triage: Triage, decision: Decision) -> None:
    if triage.match.case_id is None:
        decision.review("change_without_case")


def _rule_ehcp(triage: Triage, decision: Decision) -> None:
    # The SEND team leads EHCP cases: forward the original, tell the sender, keep it off the CCAS agenda.
    if decision.acknowledge == "professional_acknowledgement":
        decision.acknowledge = "professional_send_notice"
    decision.open_case = triage.match.case_id is None and triage.match.method != "ambiguous"


def _rule_school_notification(triage: Triage, decision: Decision) -> None:
    if decision.acknowledge:
        decision.acknowledge = "school_portal_pointer"


def _rule_query(triage: Triage, decision: Decision) -> None:
    reasons = triage.classification.reasons
    if "category:thanks" in reasons:
        _clear(decision)
        return
    if "category:aob_request" in reasons:
        _clear(decision)
        decision.agenda = "aob"
        return
    text = triage.message.new_text or triage.message.body
    if "school" in triage.sender_roles and PORTAL_GUIDANCE.search(text) and not PORTAL_PROBLEM.search(text):
        # The portal template covers how a school should notify, so no person is needed.
        _clear(decision)
        decision.acknowledge = "school_portal_pointer"


def _rule_parent(triage: Triage, decision: Decision) -> None:
    # Parents and carers get no automatic reply: the professionals working with the
    # family speak with them, so the case's lead professional is told a message came.
    decision.acknowledge = None
    decision.tell_lead_professional = triage.match.case_id is not None


def _rule_bounce(triage: Triage, decision: Decision) -> None:
    decision.acknowledge = None
    decision.reasons.append("no_reply:automatic")


def _no_case_rule(triage: Triage, decision: Decision) -> None:
    pass


def _clear(decision: Decision) -> None:
    decision.acknowledge = None
    decision.needs_person = False
    decision.reasons[:] = [r for r in decision.reasons if not r.startswith("review:")]


CASE_RULES = {
    "support_request": _rule_support_request,
    "change_of_circumstances": _rule_change,
    "ehcp": _rule_ehcp,
    "school_notification": _rule_school_notification,
    "query": _rule_query,
    "bounce": _rule_bounce,
    "parent_contact": _rule_parent,
}
