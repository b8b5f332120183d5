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
# An explicit action number ("Action 5", "action 3 from 9/9 panel") is an action update
# even when the text mentions a referral made as part of the action.
NUMBERED_ACTION = re.compile(r"\baction\s*(?:no\.?\s*)?\d+\b|\bactions? from (?:the )?(?:last |\d+/\d+ )?panel\b", re.I)
AOB = re.compile(r"\baob\b|\bany other business\b", re.I)
PARENT = re.compile(
    r"\bmy (?:son|daughter|child|children|boy|girl|kids?|grandson|granddaughter|stepson|stepdaughter|twins)\b"
    r"|\b(?:i am|i'm|i’m|im)\s+(?:writing\s+as\s+)?(?:\w+(?:'s|’s|'|’)?\s+){0,2}"
    r"(?:mum|mother|dad|father|parent|carer|guardian|nan|grandmother|grandad)\b"
    r"|\bthis is (?:\w+(?:'s|’s|s)?\s+)(?:mum|mother|dad|father)\b"
    r"|\bas (?:his|her|their) (?:mum|mother|dad|father|parent|carer)\b",
    re.I,
)
SELF_INTRODUCTION = re.compile(
    r"\b(?:i am|i'm|i’m|im)\s+(?:a|an|the)\s+(?:[\w-]+\s+){0,3}?(?:counsell?or|therapist|psychologist|psychiatrist"
    r"|practitioner|social worker|nurse|health visitor|consultant|paediatrician|clinician|key ?worker|youth worker"
    r"|family support worker|tutor|advocate|mentor)\b",
    re.I,
)
THANKS = re.compile(r"^\W*(?:(?:many |huge )?thanks?(?: you)?(?: so much| very much)?|cheers|noted)\b", re.I)
AUTH_FAILED = re.compile(r"\b(?:dmarc|spf|dkim)=(?:fail|softfail)\b", re.I)
PROCESS_WORDS = re.compile(
    r"\bportal\b|\bhow (?:do|should|can) (?:we|i)\b|\bwho (?:do|should) (?:we|i)\b|\bcriteria\b|\bprocess\b"
    r"|\bpanel dates?\b|\bwhen does the panel\b|\bform\b|\bnotify\b|\bnotification\b",
    re.I,
)
# Signs that a notification carries the details of an absence, not just a question.
ABSENCE_DETAIL = re.compile(
    r"\b(?:off|absent|out of school|not attended|missed)\b[^.]{0,60}\b(?:since|for \d+|\d+\s+(?:school )?(?:days|weeks))\b"
    r"|\b(?:likely|expected|going) to be (?:off|absent|out)\b|\b\d+(?:\.\d+)?%|\bbroke|\bdiagnos\w+|\bhospital\b"
    r"|\bsurgery\b|\boperation\b|\billness\b|\bill\b|\bunwell\b|\bmigraines?\b|\banxiety\b|\bcast\b",
    re.I,
)
# Words that show a message is about a child already on the panel's caseload.
KNOWN_CASE_HINT = re.compile(
    r"\b(?:since|at|from) (?:the )?last panel\b|\bas (?:requested|agreed|discussed) (?:at|by) (?:the )?panel\b"
    r"|\bfurther to\b|\b(?:quick |weekly |monthly |an? )?update (?:on|for|about)\b|\bstill on (?:the )?ccas\b",
    re.I,
)
PROFESSIONAL_ROLE = re.compile(
    r"\b(?:counsell?or|therapist|psychologist|psychiatrist|practitioner|social worker|nurse|health visitor"
    r"|consultant|paediatrician|clinician|key ?worker|youth worker|family support|early help|camhs|gp\b|dr\.? )",
    re.I,
)


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
    case_status: str | None = None
    replies_to_bot: bool = False
    has_dob: bool = False
    sender_name: str = ""


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


def _thanks(facts: ClassifyInput) -> Classification | None:
    if _is_thanks_only(facts):
        return Classification("query", 0.65, ["category:thanks"])
    return None


def _action_update(facts: ClassifyInput) -> Classification | None:
    if not facts.sender_is_panel_member:
        return None
    text = facts.subject + "\n" + facts.new_text
    if NUMBERED_ACTION.search(text):
        return Classification("action_update", 0.85, ["category:numbered_action"])
    if ACTION.search(text) and not REFERRAL.search(facts.new_text):
        return Classification("action_update", 0.7, ["category:panel_member_action"])
    return None


def _aob(facts: ClassifyInput) -> Classification | None:
    if AOB.search(facts.subject + "\n" + facts.new_text) and not facts.has_child:
        return Classification("query", 0.75, ["category:aob_request"])
    return None


def _parent(facts: ClassifyInput) -> Classification | None:
    text = facts.subject + "\n" + facts.new_text
    if not PARENT.search(text):
        return None
    confidence = 0.8 if _is_personal(facts) else 0.65
    return Classification("parent_contact", confidence, ["category:parent_words"])


def _ehcp(facts: ClassifyInput) -> Classification | None:
    if facts.ehcp not in ("has_ehcp", "draft_decision") or facts.sender_is_send_team:
        return None
    return Classification("ehcp", 0.85, [f"category:ehcp:{facts.ehcp}"])


def _school(facts: ClassifyInput) -> Classification | None:
    if "school" not in facts.sender_roles:
        return None
    text = facts.subject + "\n" + facts.new_text
    question = bool(QUESTION.search(facts.new_text))
    known_open_case = facts.case_matched and facts.case_status not in ("closed",)
    if not facts.has_child:
        return Classification("query", 0.7, ["category:school_no_child"])
    if known_open_case:
        return Classification("change_of_circumstances", 0.75, ["category:school_known_case"])

    if KNOWN_CASE_HINT.search(text) and not facts.has_dob:
        return Classification("change_of_circumstances", 0.55, ["category:school_update_unmatched_case"])
    if question and PROCESS_WORDS.search(facts.new_text) and not facts.has_dob:
        return Classification("query", 0.6, ["category:school_process_question"])
    detailed = facts.has_dob or len(ABSENCE_DETAIL.findall(facts.new_text)) >= 2
    if ABSENCE.search(text) or detailed:
        return Classification("school_notification", 0.75, ["category:school_absence"])
    if CHANGE.search(text):
        return Classification("change_of_circumstances", 0.5, ["category:school_update_unknown_case"])
    return Classification("query", 0.4, ["category:school_other"])


def _professional(facts: ClassifyInput) -> Classification | None:
    if _is_personal(facts) and not _signed_as_professional(facts):
        return None
    text = facts.subject + "\n" + facts.new_text
    if not facts.has_child:
        if QUESTION.search(facts.new_text) or _is_trusted(facts):
            return Classification("query", 0.65, ["category:no_child"])
        return Classification("unrelated", 0.5, ["category:no_child_untrusted"])
    if REFERRAL.search(text):
        confidence = 0.8 if _is_trusted(facts) else 0.55
        return Classification("support_request", confidence, ["category:referral_words"])
    if facts.case_matched and facts.case_status != "closed":
        return Classification("change_of_circumstances", 0.7, ["category:known_case_update"])
    # A change of circumstances presupposes a known child; about an unknown child a
    # professional is asking for support, whatever words they use.
    confidence = 0.6 if _is_trusted(facts) else 0.45
    return Classification("support_request", confidence, ["category:child_not_known"])


def _personal(facts: ClassifyInput) -> Classification | None:
    if not facts.has_child:
        return Classification("unrelated", 0.45, ["category:personal_no_child"])
    # Someone writing from a personal address about a named child is, in this inbox,
    # most often a parent or carer, even without "my son" in the text.
    return Classification("parent_contact", 0.55, ["category:personal_sender_child"])


def _is_trusted(facts: ClassifyInput) -> bool:
    return bool(facts.sender_roles)


def _is_personal(facts: ClassifyInput) -> bool:
    return not facts.sender_roles


def _signed_as_professional(facts: ClassifyInput) -> bool:
    # A private professional on a webmail address: the role in the display name, in an
    # introduction ("I'm an independent counsellor") or in the signature.
    if PROFESSIONAL_ROLE.search(facts.sender_name):
        return True
    if SELF_INTRODUCTION.search(facts.new_text):
        return True
    return bool(PROFESSIONAL_ROLE.search(facts.new_text[-300:])) and bool(REFERRAL.search(facts.new_text))


def _is_thanks_only(facts: ClassifyInput) -> bool:
    text = facts.new_text.strip()
    if not THANKS.match(text) or "?" in text or len(text) > 400:
        return False
    return not (REFERRAL.search(text) or ABSENCE_DETAIL.search(text) or PARENT.search(text))


RULES = [_machine, _thanks, _action_update, _aob, _parent, _ehcp, _school, _professional, _personal]
