"""Rule-based classification into the panel's message categories.

Deciding only: the rules record a category, a confidence and reason codes; routing
acts on them later. Each rule returns None when it does not apply, and the first
rule that applies wins, so the order of RULES is the order of precedence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

REFERRAL = re.compile(
    r"\brefer(?:ral|ring|red)?\b|\brequest(?:ing)? (?:for )?(?:support|help)\b|\bseeking (?:support|help)\b"
    r"|\bask(?:ing)? for (?:your |the panel'?s? )?(?:support|help|consideration)\b"
    r"|\bfor (?:the )?(?:ccas )?panel'?s? consideration\b|\bconsider(?:ation)? (?:by|at) (?:the )?(?:ccas )?panel\b"
    r"|\bsupport (?:from|through) (?:the )?ccas\b|\brequest for (?:education|tuition|provision)\b",
    re.I,
)
ABSENCE = re.compile(
    r"\babsen(?:t|ce|ces)\b|\bnot (?:been )?attend(?:ed|ing)\b|\bnon[- ]attendance\b|\boff school\b"
    r"|\bhas(?:n'?t| not) been (?:in|at) school\b|\bunable to attend\b|\bmissed \d+\s+(?:school )?days\b"
    r"|\battendance (?:has )?(?:dropped|fallen|is now|of)\b|\bnot been in school\b",
    re.I,
)
CHANGE = re.compile(
    r"\bupdate\b|\breturn(?:ed|ing)? to school\b|\bback (?:in|at|to) school\b|\bback full[- ]time\b"
    r"|\bnow attending\b|\bdual[- ]regist\w+|\bpart[- ]time timetable\b|\btimetable\b|\bexcluded\b"
    r"|\badmitted to hospital\b|\bdischarged\b|\bmoved (?:school|to)\b|\bchange of (?:school|placement|circumstances)\b"
    r"|\bengagement\b|\battendance (?:has )?improved\b|\bimproved attendance\b|\bplacement\b",
    re.I,
)
QUESTION = re.compile(
    r"\?|\bcould you (?:advise|confirm|let me know|tell)\b|\bcan you (?:advise|confirm|tell)\b"
    r"|\bwhat is the (?:process|procedure|criteria)\b|\bhow do (?:we|i)\b|\bplease advise\b",
    re.I,
)
ACTION = re.compile(r"\baction(?:s|ed)?\b|\bas agreed at (?:the )?panel\b|\bfollowing (?:the )?panel\b", re.I)
PARENT = re.compile(
    r"\bmy (?:son|daughter|child|children|boy|girl|kids?|grandson|granddaughter|stepson|stepdaughter)\b"
    r"|\bi am (?:his|her|their) (?:mum|mother|dad|father|parent|carer|guardian)\b|\bas (?:his|her|their) (?:mum|mother|dad|father|parent|carer)\b",
    re.I,
)
THANKS_ONLY = re.compile(r"^\W*(?:many )?thanks?(?: you)?\b.{0,160}$", re.I | re.S)
AUTH_FAILED = re.compile(r"\b(?:dmarc|spf|dkim)=(?:fail|softfail)\b", re.I)


@dataclass
class ClassifyInput:
    """The facts the rules look at, gathered by earlier pipeline steps."""

    subject: str
    new_text: str
    full_text: str
    automation: str | None
    bulk: bool
    secure: bool
    auth_failed: bool
    sender_roles: list[str]
    sender_is_panel_member: bool
    sender_is_send_team: bool
    has_child: bool
    ehcp: str | None
    case_matched: bool
    in_thread: bool


@dataclass
class Classification:
    category: str
    confidence: float
    reasons: list[str] = field(default_factory=list)


def classify(facts: ClassifyInput) -> Classification:
    for rule in RULES:
        result = rule(facts)
        if result is not None:
            return result
    return Classification("query", 0.3, ["category:fallback"])


def _machine(facts: ClassifyInput) -> Classification | None:
    if facts.automation in ("auto_reply", "bounce"):
        return Classification(facts.automation, 0.95, [f"category:{facts.automation}"])
    if facts.secure:
        return Classification("secure_message", 0.9, ["category:secure_notice"])
    if facts.bulk:
        return Classification("unrelated", 0.85, ["category:bulk_mail"])
    if facts.auth_failed and not _is_trusted(facts):
        return Classification("unrelated", 0.7, ["category:sender_not_verified"])
    return None


def _ehcp(facts: ClassifyInput) -> Classification | None:
    if facts.ehcp not in ("has_ehcp", "draft_decision") or facts.sender_is_send_team:
        return None
    if _is_thanks_only(facts):
        return None
    return Classification("ehcp", 0.85, [f"category:ehcp:{facts.ehcp}"])


def _parent(facts: ClassifyInput) -> Classification | None:
    text = facts.subject + "\n" + facts.new_text
    if not PARENT.search(text):
        return None
    if "school" in facts.sender_roles and not _is_personal(facts) and REFERRAL.search(text):
        return None
    confidence = 0.8 if _is_personal(facts) else 0.6
    return Classification("parent_contact", confidence, ["category:parent_words"])


def _action_update(facts: ClassifyInput) -> Classification | None:
    if not facts.sender_is_panel_member:
        return None
    if ACTION.search(facts.subject + "\n" + facts.new_text) and not REFERRAL.search(facts.new_text):
        return Classification("action_update", 0.75, ["category:panel_member_action"])
    return None


def _school(facts: ClassifyInput) -> Classification | None:
    if "school" not in facts.sender_roles:
        return None
    text = facts.subject + "\n" + facts.new_text
    if not facts.has_child:
        return Classification("query", 0.7, ["category:school_no_child"])
    if _is_thanks_only(facts):
        return Classification("query", 0.6, ["category:thanks"])
    if facts.case_matched and (CHANGE.search(text) or not ABSENCE.search(text)):
        return Classification("change_of_circumstances", 0.75, ["category:school_known_case"])
    if ABSENCE.search(text):
        return Classification("school_notification", 0.75, ["category:school_absence"])
    if CHANGE.search(text):
        return Classification("change_of_circumstances", 0.55, ["category:school_update"])
    return Classification("query", 0.4, ["category:school_other"])


def _professional(facts: ClassifyInput) -> Classification | None:
    text = facts.subject + "\n" + facts.new_text
    if not facts.has_child:
        if QUESTION.search(facts.new_text) or _is_trusted(facts):
            return Classification("query", 0.65, ["category:no_child"])
        return Classification("unrelated", 0.5, ["category:no_child_untrusted"])
    if _is_thanks_only(facts):
        return Classification("query", 0.6, ["category:thanks"])
    if REFERRAL.search(text):
        confidence = 0.8 if _is_trusted(facts) else 0.55
        return Classification("support_request", confidence, ["category:referral_words"])
    if facts.case_matched:
        return Classification("change_of_circumstances", 0.65, ["category:known_case_update"])
    if CHANGE.search(text):
        return Classification("change_of_circumstances", 0.45, ["category:update_words"])
    return Classification("support_request", 0.45, ["category:child_named"])


def _is_trusted(facts: ClassifyInput) -> bool:
    return bool(facts.sender_roles)


def _is_personal(facts: ClassifyInput) -> bool:
    return not facts.sender_roles


def _is_thanks_only(facts: ClassifyInput) -> bool:
    return bool(THANKS_ONLY.match(facts.new_text.strip())) and not REFERRAL.search(facts.new_text)


RULES = [_machine, _ehcp, _parent, _action_update, _school, _professional]
