"""The safeguarding screen: does the message signal that a child may be at risk of harm?

One sentence is enough, wherever it sits in the new text or a forwarded part. A
negated or historic mention ("no safeguarding concerns", "historic self-harm") is
not a signal. The screen errs towards flagging: a false alarm costs a coordinator a
minute, a miss can cost a child.
"""

from __future__ import annotations

import re

# Each pattern is a reason code and the words that signal it.
RISK_PATTERNS: dict[str, re.Pattern[str]] = {
    "risk:safeguarding": re.compile(r"\bsafeguarding (?:concern|issue|referral|risk)s?\b|\bchild protection\b|\bsection 47\b|\bstrategy (?:meeting|discussion)\b", re.I),
    "risk:self_harm": re.compile(r"\bself[- ]?harm(?:ing|ed)?\b|\bcutting (?:her|him|them)sel(?:f|ves)\b|\bligature\b|\boverdose\b", re.I),
    "risk:suicide": re.compile(r"\bsuicid\w*|\bend (?:her|his|their) life\b|\bkill (?:her|him|them)sel(?:f|ves)\b|\bwants? to die\b", re.I),
    "risk:missing": re.compile(r"\b(?:gone|went|is|been|reported|was) missing\b|\bmissing from (?:home|care)\b|\bnot (?:been )?seen (?:by anyone |at all )?(?:since|for)\b|\bwhereabouts (?:are |is )?(?:unknown|not known)\b|\bcannot (?:be )?(?:found|located)\b|\bno contact (?:with the family )?(?:since|for)\b", re.I),
    "risk:harm": re.compile(r"\bat (?:immediate |serious |significant )?risk\b|\brisk of (?:serious )?harm\b|\bsignificant harm\b|\bunsafe at home\b|\bnot safe\b|\bdisclos(?:ed|ure)\b|\babuse[ds]?\b|\bneglect(?:ed)?\b|\bexploitation\b|\bcounty lines\b|\bdomestic (?:abuse|violence)\b|\bassault(?:ed)?\b|\bbruis(?:e|es|ing)\b|\bthreat(?:s|ened)? to (?:kill|hurt)\b", re.I),
}

NEGATION = re.compile(
    r"\b(?:no|not|nil|none|never|without|denies|denied|ruled out|no current|no known|no immediate"
    r"|historic(?:al)?|previous(?:ly)?|past|in the past|years ago|last year|no longer|resolved)\b",
    re.I,
)

SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n\s*\n|\n(?=[-*•]\s)")


def screen_for_risk(text: str) -> list[str]:
    """Return risk reason codes found in `text`, skipping negated or historic mentions."""
    reasons: list[str] = []
    for sentence in SENTENCE_SPLIT.split(text):
        for code, pattern in RISK_PATTERNS.items():
            if code in reasons:
                continue
            for match in pattern.finditer(sentence):
                if not _is_negated(sentence, match.start()):
                    reasons.append(code)
                    break
    return reasons


def _is_negated(sentence: str, start: int) -> bool:
    # A negation counts when it stands within the few words before the term,
    # as in "no safeguarding concerns" or "historic self-harm".
    window = sentence[max(0, start - 40):start]
    return bool(NEGATION.search(window))
