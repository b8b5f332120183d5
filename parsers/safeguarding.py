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
    "risk:safeguarding": re.compile(
        r"\bsafeguarding (?:concern|issue|referral|risk)s?\b|\bchild protection\b|\bsection 47\b"
        r"|\bstrategy (?:meeting|discussion)\b|\bmash referral\b|\bdesignated safeguarding lead\b",
        re.I),
    "risk:self_harm": re.compile(
        r"\bself[- ]?harm(?:ing|ed)?\b|\bcut(?:ting)? (?:her|him|them)sel(?:f|ves)\b|\bligature\b"
        r"|\boverdose\b|\btook an overdose\b|\bburn(?:ing|t)? (?:her|him|them)sel(?:f|ves)\b",
        re.I),
    "risk:suicide": re.compile(
        r"\bsuicid\w*|\bend (?:her|his|their|my) (?:own )?life\b|\bkill (?:her|him|them|my)sel(?:f|ves)\b"
        r"|\b(?:wants?|wanted|wanting) to die\b|\bbetter off dead\b|\bnot (?:want|wanting) to (?:be alive|live)\b"
        r"|\b(?:tried|trying|attempted) to (?:climb|jump|throw (?:her|him|them)self) (?:out|off)\b",
        re.I),
    "risk:missing": re.compile(
        r"\b(?:gone|went|go|going|been|was|were|is|are|reported)\s+missing\b"
        r"(?!\s+(?:a|an|the|lots?|out|some|most|much|more|her|his|their|school|lessons?|learning|sessions?|days?|work|classes|education))"
        r"|\bmissing from (?:home|care|placement)\b|\bmissing person\b"
        r"|\bha(?:s|sn'?t|s not|ve not|ven'?t) (?:come|been) (?:back )?home\b|\bnot (?:come|returned) home\b"
        r"|\bran away\b|\brun(?:ning)? away from home\b|\bwhereabouts (?:are |is )?(?:unknown|not known)\b"
        r"|\b(?:don'?t|do not|does not|doesn'?t) know where (?:she|he|they) (?:is|are)\b"
        r"|\bnot (?:been )?seen (?:by anyone |at all )?(?:since|for)\b|\bcannot (?:be )?(?:found|located)\b"
        r"|\bpolice (?:have been|were|are) (?:told|informed|called|notified|involved)\b|\bpolice attended\b"
        r"|\bno contact (?:with (?:the )?(?:family|her|him|them|mum|dad|parents?) )?since\b"
        r"|\bworried about [^.]{0,25}\b(?:whereabouts|welfare|safety)\b|\bwelfare (?:concern|check|visit)s?\b",
        re.I),
    "risk:harm": re.compile(
        r"\bat (?:immediate |serious |significant )?risk of (?:harm|abuse|exploitation)\b|\brisk of (?:serious )?harm\b"
        r"|\bsignificant harm\b|\b(?:unsafe|not safe) (?:at|to go) home\b|\b(?:doesn'?t|does not|don'?t|do not) feel safe\b"
        r"|\b(?:scared|afraid|frightened|terrified) (?:to go|of going) home\b|\bscared of (?:her|his|their) (?:mum|dad|mother|father|step\w*|\w+'s boyfriend|\w+'s partner)\b"
        r"|\bdisclos(?:ed|ure)\b|\babus(?:e|ed|ive)\b|\bneglect(?:ed)?\b|\bexploit(?:ation|ed)\b|\bcounty lines\b|\bgrooming\b"
        r"|\bdomestic (?:abuse|violence)\b|\bassault(?:ed)?\b|\bbruis(?:e|es|ed|ing)\b|\bthreat(?:s|ened)? to (?:kill|hurt)\b"
        r"|\b(?:hit|hits|hitting|grabbed|punched|kicked|slapped|strangled|choked|shook|beat|beaten|burned|pushed) (?:her|him|them)\b"
        r"|\bby the (?:neck|throat)\b|\bsexual(?:ly)? (?:abuse|assault|exploit)\w*",
        re.I),
}

NEGATION = re.compile(
    r"\b(?:no|not|nil|none|never|without|denies|denied|ruled out|no current|no known|no immediate"
    r"|historic(?:al)?|previous(?:ly)?|past|in the past|years ago|last year|no longer|resolved"
    r"|had a period of|history of|any)\b",
    re.I,
)

# After the term: "which has not recurred", "in 2019", "some years ago".
HISTORIC_AFTER = re.compile(
    r"^[^.;]{0,40}?\b(?:in (?:19|20)\d\d|(?:has|have) not recurred|not recurred|years ago|last year|in the past"
    r"|when (?:she|he|they) (?:was|were) (?:younger|little|in year \d+))\b",
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
                if not _is_negated(sentence, match.start(), match.end()):
                    reasons.append(code)
                    break
    return reasons


def _is_negated(sentence: str, start: int, end: int) -> bool:
    # A negation counts when it stands within the few words before the term, as in
    # "no safeguarding concerns" or "historic self-harm", or when the words after it
    # put the event in the past ("self-harm in 2024 which has not recurred").
    window = sentence[max(0, start - 40):start]
    return bool(NEGATION.search(window)) or bool(HISTORIC_AFTER.search(sentence[end:]))
