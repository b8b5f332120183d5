"""Extraction of the child's details from one message's subject and text.

The text is split into regions: the subject, the new words of the message, the quoted
history and any attachment text. Details come from the earliest region that has them,
so an older message in the thread only fills what the new words leave out. Signatures,
greetings and header lines are kept apart so that staff and parents are never taken
for the child.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

from parsers.identifiers import (
    DateOfBirthMatch,
    find_date_of_birth_matches,
    find_nhs_numbers,
    find_upns,
    find_year_group_mentions,
    parse_uk_date,
)
from parsers.schools import SchoolIndex, SchoolMention

logger = logging.getLogger(__name__)


@dataclass
class ChildDetails:
    """The details a message states about the child it concerns. A field is None when
    the message does not state it.

    `evidence` maps a field name to a short code for where its value came from, such as
    "labelled", "subject" or "domain". `quotes` maps a field name to the passage it was
    read from, for a person to check: {"region", "line", "start", "end"}, where `line` is
    at most one line of the region's text and `start`/`end` mark the value inside it.
    A value read from the sender's address or the school register has no quote.
    """

    first_name: str | None = None
    last_name: str | None = None
    known_as: str | None = None
    first_initial: str | None = None
    last_initial: str | None = None
    dob: date | None = None
    upn: str | None = None
    upn_valid: bool | None = None
    nhs_number: str | None = None
    school_urn: str | None = None
    school_candidates: list[str] = field(default_factory=list)
    year_group: int | None = None
    reason: str | None = None  # "illness" | "exclusion" | "other"
    ehcp: str | None = None  # "none" | "has_ehcp" | "draft_decision" | "assessment"
    absence_days: int | None = None
    exclusion_date: date | None = None
    children_count: int = 0
    other_children: list[str] = field(default_factory=list)
    evidence: dict[str, str] = field(default_factory=dict)
    quotes: dict[str, dict] = field(default_factory=dict)


# Characters kept on each side of a quoted value, so a quote is a short passage, not a page.
_QUOTE_CONTEXT_CHARS = 80


def _quote(details: ChildDetails, name: str, region: str, text: str, start: int, end: int) -> None:
    """Record the line of `text` around text[start:end] as the quote for field `name`."""
    if not 0 <= start <= end <= len(text):
        return
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    begin = max(line_start, start - _QUOTE_CONTEXT_CHARS)
    finish = min(line_end, end + _QUOTE_CONTEXT_CHARS)
    details.quotes[name] = {"region": region, "line": text[begin:finish], "start": start - begin,
                            "end": min(end, finish) - begin}


def _quote_value(details: ChildDetails, name: str, regions: list[_Region], value: str, first_region: str) -> None:
    """Quote the first place `value` is written, searching `first_region` before the others.

    Letters match in any case and digits may be split by spaces or hyphens ("943 476 5919").
    """
    if not value:
        return
    pattern = _value_pattern(value)
    ordered = sorted(regions, key=lambda region: region.kind != first_region)
    for region in ordered:
        found = pattern.search(region.content)
        if found:
            _quote(details, name, region.kind, region.content, found.start(), found.end())
            return


def _value_pattern(value: str) -> re.Pattern[str]:
    parts = [re.escape(character) for character in value if not character.isspace()]
    separator = r"[\s-]?" if value.replace(" ", "").isdigit() else r"\s*"
    return re.compile(r"(?<!\w)" + separator.join(parts) + r"(?!\w)", re.IGNORECASE)


# ---------------------------------------------------------------------------
# Regions of the message


@dataclass
class _Region:
    """One part of the message: `content` is searched for details, `signature` holds the
    sign-off, signature block and quoted header lines, which name staff and parents."""

    kind: str  # "subject" | "new" | "history" | "attachment"
    content: str
    signature: str = ""


_HISTORY_BOUNDARY = re.compile(
    r"^[ \t>]*(?:"
    r"-{2,}\s*(?:original message|forwarded message)\s*-*"
    r"|_{8,}"
    r"|begin forwarded message:"
    r"|on\s[^\n]{4,200}(?:\n[^\n]{0,200})?wrote:"
    r"|from:[^\n]+\n[ \t>]*(?:sent|date):"
    r")",
    re.IGNORECASE | re.MULTILINE,
)
_HEADER_LINE = re.compile(r"^(?:from|sent|to|cc|bcc|subject|date|reply-to):.*$", re.IGNORECASE | re.MULTILINE)
# Header lines that name people (senders and recipients), unlike "Subject:" and "Date:".
_ADDRESS_HEADER_LINE = re.compile(r"^(?:from|to|cc|bcc|reply-to):.*$", re.IGNORECASE | re.MULTILINE)
_SIGN_OFF = re.compile(
    r"^\s*(?:(?:kind|best|warm|warmest|many|with|all\s+the)\s+)?"
    r"(?:regards|wishes|thanks|thank\s+you|cheers|sincerely|best|love)"
    r"(?:\s+(?:in\s+advance|again|so\s+much))?[\s,.!]*$"
    r"|^\s*yours\s+(?:sincerely|faithfully|truly)[\s,.]*$",
    re.IGNORECASE,
)
# Lines that end a trailing signature block when reading upwards: they carry the child's
# details, so they belong to the message even when they are short.
_DETAIL_LINE = re.compile(
    r"^\s*(?:name|child|pupil|student|young\s+person|dob|d\.o\.b|date\s+of\s+birth|upn|nhs|"
    r"year\s+group|form|school|re)\b\s*[:\-–]",
    re.IGNORECASE,
)
_DISCLAIMER_LINE = re.compile(
    r"confidential|intended\s+(?:solely|only|recipient)|disclaimer|classification:|monitored|"
    r"privileged|^\s*[*\-=_]{5,}\s*$|unsubscribe",
    re.IGNORECASE,
)


def _normalise_text(text: str) -> str:
    """Straighten quotes and dashes and unify line ends, keeping the length of each line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ")
    for curly, straight in (("’", "'"), ("‘", "'"), ("“", '"'), ("”", '"'), ("–", "-"), ("—", "-")):
        text = text.replace(curly, straight)
    return text


def _split_messages(text: str) -> list[str]:
    """Split text at quoted-history boundaries: the new words first, then each older message."""
    starts = [found.start() for found in _HISTORY_BOUNDARY.finditer(text)]
    bounds = [0, *starts, len(text)]
    return [text[begin:end] for begin, end in zip(bounds, bounds[1:])]


def _is_signature_line(line: str) -> bool:
    stripped = line.strip()
    if not stripped:
        return True
    if _DETAIL_LINE.match(stripped):
        return False
    return len(stripped) < 60 and not stripped.endswith((".", "?", "!", ":"))


def _split_signature(part: str) -> tuple[str, str]:
    """Split a message into its content and its signature block.

    The signature starts at a sign-off line ("Kind regards", "Thanks"). Without one, it
    is the run of short lines at the end, above any disclaimer.
    """
    lines = part.split("\n")
    for index, line in enumerate(lines):
        if index > 0 and _SIGN_OFF.match(line):
            return "\n".join(lines[:index]), "\n".join(lines[index:])

    end = len(lines)
    while end > 0 and (not lines[end - 1].strip() or _DISCLAIMER_LINE.search(lines[end - 1])):
        end -= 1
    start = end
    while start > 1 and _is_signature_line(lines[start - 1]):
        start -= 1
    return "\n".join(lines[:start]), "\n".join(lines[start:])


def _region_from_message(kind: str, message: str) -> _Region:
    message = re.sub(r"^[ \t]*>+ ?", "", message, flags=re.MULTILINE)
    headers = "\n".join(found.group(0) for found in _ADDRESS_HEADER_LINE.finditer(message))
    message = _HEADER_LINE.sub("", message)
    content, signature = _split_signature(message)
    return _Region(kind, content, "\n".join(part for part in (signature, headers) if part))


# Real subject lines are short. Broken mail can carry a subject of many kilobytes, and
# reading names in it costs time for nothing.
_MAX_SUBJECT_CHARS = 400
# The same holds for bodies and attachments: the child's details sit near the start,
# while a pasted log or an inline uuencoded file can run to hundreds of kilobytes, and
# every extraction step reads the whole text. Only this many characters of the text, of
# the new words and of each attachment are read.
_MAX_TEXT_CHARS = 30_000

_SUBJECT_PREFIX = re.compile(
    r"^\s*(?:re|fw|fwd|aw|sv|tr|antw|automatic\s+reply|auto(?:matic)?[- ]?reply|out\s+of\s+office|"
    r"undeliverable|undelivered|delivery\s+failure|official(?:-sensitive)?|official\s+sensitive|"
    r"secure|urgent|confidential)\s*[:\-]\s*",
    re.IGNORECASE,
)
_SUBJECT_TAG = re.compile(r"\[[^\]]*\]|\bOFFICIAL(?:[- ]SENSITIVE)?\b|\bURGENT\b", re.IGNORECASE)


def _build_regions(
    subject: str, text: str, new_text: str | None, attachments: Sequence[str]
) -> list[_Region]:
    messages = _split_messages(_normalise_text(text[:_MAX_TEXT_CHARS]))
    first = _region_from_message("new", messages[0])

    subject = _clean_subject(_normalise_text(subject[:_MAX_SUBJECT_CHARS]))
    regions = [_Region("subject", subject), first]
    if new_text and new_text.strip():
        # The caller's new words replace this module's guess. The guess, which may hold
        # more (a returned message in a bounce), becomes history, read only as a fallback.
        first.content = _normalise_text(new_text[:_MAX_TEXT_CHARS])
        regions.append(_region_from_message("history", messages[0]))
    regions.extend(_region_from_message("history", message) for message in messages[1:])
    regions.extend(_Region("attachment", _normalise_text(body[:_MAX_TEXT_CHARS])) for body in attachments if body)
    return regions


def _clean_subject(subject: str) -> str:
    """Strip reply and forward prefixes and security tags from a subject."""
    previous = None
    while previous != subject:
        previous = subject
        subject = _SUBJECT_PREFIX.sub("", subject)
    return re.sub(r"\s{2,}", " ", _SUBJECT_TAG.sub(" ", subject)).strip(" -:")


# ---------------------------------------------------------------------------
# Names

_NAME_WORD = r"(?:[A-Z][a-z]*')?[A-Z][a-z]+(?:[A-Z][a-z]+)?(?:-[A-Z][a-z]+)?"
_INITIAL = r"[A-Z](?![a-z'])\.?"
_NAME_TOKEN = rf"(?:{_NAME_WORD}|{_INITIAL})"
# A run of capitalised words, with an optional nickname in brackets or quotes.
_NAME_RUN = re.compile(
    rf"(?<![A-Za-z'])(?:{_NAME_TOKEN})"
    rf"(?:[ \t]+(?:{_NAME_TOKEN}|\({_NAME_WORD}\)|[\"']{_NAME_WORD}[\"']))*(?![A-Za-z])"
)

# Capitalised words that are never a child's name: greetings, pronouns, calendar words,
# roles, services and common subject-line words.
_STOP_WORDS = frozenset(
    """
    a an the and or but if of in on at to for from by with re fw fwd i we you he she they it
    his her him their our my your me us this that these those there here what when where who
    which why how all any some no not yes please thanks thank kind regards best wishes many
    dear hi hello hey morning afternoon evening good sorry sent get outlook iphone android
    mr mrs ms miss mx dr prof professor sir dame rev cllr mum mummy mom dad daddy mother
    father parent parents carer carers nan gran grandma grandad aunt uncle brother sister
    son daughter child children pupil pupils student students young person people family
    monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs
    fri sat sun january february march april may june july august september october
    november december jan feb mar apr jun jul aug sep sept oct nov dec christmas easter
    summer autumn spring winter term half today tomorrow yesterday week weekend
    year years yr reception key stage school schools primary secondary high academy college
    centre center hospital clinic trust council service services team panel unit
    children's health care social early help support education inclusion medical
    referral referrals request requests update updates concern concerns absence attendance
    pupil's new urgent action actions outcome change placement review meeting question
    query portal access notification notice information info report letter plan plans
    case cases form forms register records record note notes summary dates date time
    hospital's nhs camhs send sen senco ehcp ehc ihcp eha cin cp lac dsl gp ep sw fsw ot
    headteacher head deputy assistant principal teacher tutor senco nurse doctor consultant
    psychologist practitioner worker officer manager coordinator co-ordinator lead leader
    clinician therapist counsellor secretary administrator admin office director
    educational clinical paediatric paediatrician mental safeguarding front door duty
    local authority county city borough district department directorate pathway
    inbox email mail mailbox message reply automatic undeliverable undelivered delivery failure returned
    sender scanned document scan attachment attached secure scanner printer device
    server remote system version contents legal diagnostic postmaster mailer daemon
    home transport application decision appeal section matters news newsletter bulletin
    training session sessions lesson lessons tuition tutor provision timetable
    interim weekly daily monthly good great positive improved improvement back full
    part time start started starting end ending return returning phased return
    private independent confidential official sensitive
    """.split()
)
_TITLES = frozenset("mr mrs ms miss mx dr prof professor sir dame rev cllr".split())

_SENTENCE_CUE = re.compile(
    r"(?:\brefer(?:ring|red)?|\breferral\s+(?:for|of)|\bsupport\s+for|\brequest(?:ing)?(?:\s+support)?\s+for|"
    r"\bon\s+behalf\s+of|\bconsider(?:ed|ing)?|\bregarding|\bconcerning|\babout|\bre|"
    r"\bupdate\s+(?:on|for|about|re)|\bnews\s+(?:on|about)|\bpupil|\bstudent|\byoung\s+person|\bchild|"
    r"\b(?:my|our|her|his|their)\s+(?:(?:eldest|youngest|oldest|younger|older)\s+)?"
    r"(?:son|daughter|child|grandson|granddaughter|stepson|stepdaughter|foster\s+(?:son|daughter|child))|"
    r"\bpicking\s+up|\baction\s+\d+\s*[-:(]?|\btuition\s+for|\bprovision\s+for|\bseeing|\bseen|"
    r"\b(?:worried|concerned)\s+about|\bmeeting\s+for|\bplan\s+for|\bworker\s+for|\breview\s+for)"
    r"[\s,:(]*$",
    re.IGNORECASE,
)
_LABEL_CUE = re.compile(
    r"(?:^|\n)[ \t]*(?:child'?s?\s+(?:full\s+)?name|name\s+of\s+(?:the\s+)?(?:child|pupil|young\s+person)|"
    r"(?:full\s+)?name|child|pupil|student|young\s+person|patient|re)[ \t]*[:\-][ \t]*$",
    re.IGNORECASE,
)
_DETAILS_AFTER = re.compile(
    r"^[ \t]*[,(\-]?[ \t]*(?:who\s+is\s+|is\s+|a\s+|in\s+|now\s+in\s+)?(?:"
    r"(?:DOB|D\.O\.B|date\s+of\s+birth|born|UPN|NHS)\b|(?:year|yr|y)\s?\d|year\s+r\b|reception\b|"
    r"\d{1,2}[A-Z]{1,3}\b|aged?\s+\d|\d{1,2}[./-]\d{1,2}[./-]\d{2,4})",
    re.IGNORECASE,
)
_PARENT_AFTER = re.compile(
    r"^(?P<apostrophe>'s?|s')?\s+(?:mum|mom|mother|dad|father|parents?|carers?|step-?(?:mum|dad)|"
    r"nan|gran|grandparents?|foster\s+carers?)\b",
    re.IGNORECASE,
)
_RELATIVE_BEFORE = re.compile(
    r"\b(?:mum|mom|mother|dad|father|parent|carer|aunt|uncle|nan|gran|grandma|grandad|brother|"
    r"sister|sibling|twin|husband|wife|partner|colleague|called|named\s+contact)[\s,:]*$",
    re.IGNORECASE,
)
_SENTENCE_START = re.compile(r"(?:^|[.!?]\s+|\n\s*)$")
_SENTENCE_VERB_AFTER = re.compile(
    r"^\s+(?:has|is|was|had|will|can|did|does|hasn't|isn't|wasn't|doesn't|didn't|won't|can't|"
    r"remains|started|attended|managed|continues|became|went|came|returned|moved|presents|"
    r"describes|reports|lives|likes|wants|says|said|told|feels|seems|needs|refuses|struggles)\b"
)
_GREETING = re.compile(
    rf"^\s*(?:hi|hello|dear|morning|afternoon|good\s+(?:morning|afternoon|evening)|hey)\s+({_NAME_WORD})",
    re.IGNORECASE | re.MULTILINE,
)
_KNOWN_AS = re.compile(
    rf"\b(?:known\s+as|prefers\s+to\s+be\s+called|prefers|goes\s+by)\s+['\"]?({_NAME_WORD})"
)

# Weights of the cues that a capitalised name is the child's.
_WEIGHT_LABELLED = 5.0
_WEIGHT_DETAILS = 4.0
_WEIGHT_SUBJECT = 3.0
_WEIGHT_SENTENCE = 3.0
_WEIGHT_PARENT_REFERENCE = 3.0
_WEIGHT_SENTENCE_SUBJECT = 1.0
_WEIGHT_REPEAT = 0.5
_CHILD_THRESHOLD = 2.5


@dataclass
class _NameMention:
    first: str | None
    last: str | None
    first_initial: str | None
    last_initial: str | None
    known_as: str | None
    start: int
    # "labelled" | "details" | "subject" | "sentence" | "parent_reference" | "sentence_subject" | "plain"
    cue: str
    weight: float
    single: bool  # one word, which may be a first name or a family name
    in_subject: bool = False


@dataclass
class _Person:
    first: str | None = None
    last: str | None = None
    first_initial: str | None = None
    last_initial: str | None = None
    known_as: str | None = None
    last_name_source: str | None = None  # set when the family name came from another mention
    score: float = 0.0
    best_cue: str = "plain"
    best_weight: float = 0.0
    has_body_cue: bool = False

    def display_name(self) -> str:
        first = self.first or self.first_initial or "?"
        last = self.last or self.last_initial or ""
        return f"{first} {last}".strip()


def _tokens_of_run(run: str) -> list[tuple[str, str]]:
    """Split a run of capitalised words into (kind, word) pairs: "name", "initial",
    "nickname" (from brackets or quotes) or "stop"."""
    tokens = []
    for word in run.split():
        if word[0] in "(\"'":
            tokens.append(("nickname", word.strip("()\"'")))
        elif re.fullmatch(_INITIAL, word):
            tokens.append(("initial", word.rstrip(".")))
        elif word.lower() in _STOP_WORDS or word.lower().rstrip("s") in _STOP_WORDS:
            tokens.append(("stop", word))
        else:
            tokens.append(("name", word))
    return tokens


def _split_run(run: str, run_start: int) -> list[tuple[list[tuple[str, str]], int, int]]:
    """Cut a run at stop words into groups of name tokens, with their offsets."""
    groups: list[tuple[list[tuple[str, str]], int, int]] = []
    offset = run_start
    current: list[tuple[str, str]] = []
    current_start = current_end = run_start
    for (kind, word), raw in zip(_tokens_of_run(run), run.split()):
        position = run.index(raw, offset - run_start) + run_start
        offset = position + len(raw)
        if kind == "stop":
            if current:
                groups.append((current, current_start, current_end))
            current = []
            continue
        if not current:
            current_start = position
        current.append((kind, word))
        current_end = offset
    if current:
        groups.append((current, current_start, current_end))
    return groups


def _mention_from_tokens(tokens: list[tuple[str, str]], start: int) -> _NameMention | None:
    """Read one group of tokens as a name: "Daisy Whitfield", "Ellie P", "J Whitmore",
    "Joshua (Josh) Fenwick" or a single word.

    Three words are a first name and a two-word family name ("Evie Carter Jones"),
    because referrals rarely give middle names.
    """
    known_as = next((word for kind, word in tokens if kind == "nickname"), None)
    words = [(kind, word) for kind, word in tokens if kind != "nickname"]
    kinds = [kind for kind, _ in words]
    values = [word for _, word in words]

    if kinds == ["name"]:
        return _NameMention(values[0], None, None, None, known_as, start, "plain", 0.0, single=True)
    if kinds == ["name", "initial"]:
        return _NameMention(values[0], None, None, values[1], known_as, start, "plain", 0.0, single=False)
    if kinds == ["initial", "name"]:
        return _NameMention(None, values[1], values[0], None, known_as, start, "plain", 0.0, single=False)
    if kinds in (["name", "name"], ["name", "name", "name"]):
        return _NameMention(
            values[0], " ".join(values[1:]), None, None, known_as, start, "plain", 0.0, single=False
        )
    return None


def _cue_for(text: str, start: int, end: int, kind: str) -> tuple[str, float] | None:
    """Weigh the context of a name: None when it names a relative or is titled."""
    before = text[max(0, start - 60) : start]
    after = text[end : end + 40]

    previous_words = before.split()
    if previous_words and previous_words[-1].lower().rstrip(".") in _TITLES:
        return None
    if _RELATIVE_BEFORE.search(before) and not _SENTENCE_CUE.search(before):
        return None

    if kind == "subject":
        return _subject_cue(text, start, end)
    if _LABEL_CUE.search(before):
        return ("labelled", _WEIGHT_LABELLED)
    if _DETAILS_AFTER.match(after):
        return ("details", _WEIGHT_DETAILS)
    if _PARENT_AFTER.match(after):
        return ("parent_reference", _WEIGHT_PARENT_REFERENCE)
    if _SENTENCE_CUE.search(before):
        return ("sentence", _WEIGHT_SENTENCE)
    if _SENTENCE_START.search(before) and _SENTENCE_VERB_AFTER.match(after):
        return ("sentence_subject", _WEIGHT_SENTENCE_SUBJECT)
    return ("plain", 0.0)


_SUBJECT_SEPARATOR = re.compile(r"\s[-|/]\s|[:()\[\],;]")
_SUBJECT_DETAIL = re.compile(
    r"\b(?:DOB|D\.O\.B\.?)\b|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\b(?:year|yr|y)\s?\d{1,2}\b|\b\d{1,2}[A-Z]{1,3}\b",
    re.IGNORECASE,
)


def _subject_cue(subject: str, start: int, end: int) -> tuple[str, float] | None:
    """Accept a subject name that is alone in its part of the subject ("Referral - Daisy
    Whitfield"), carries the child's details ("Amber Nicholls 9B") or follows a cue
    ("request for Ellie"). "Notifying pupils who can't attend" contains no name."""
    if _DETAILS_AFTER.match(subject[end : end + 40]):
        return ("subject", _WEIGHT_SUBJECT + 1.0)

    bounds = [0, len(subject)] + [found.end() for found in _SUBJECT_SEPARATOR.finditer(subject)]
    bounds += [found.start() for found in _SUBJECT_SEPARATOR.finditer(subject)]
    segment_start = max(bound for bound in bounds if bound <= start)
    segment_end = min(bound for bound in bounds if bound >= end)
    rest = subject[segment_start:start] + " " + subject[end:segment_end]
    rest_words = re.findall(r"[A-Za-z']+", _SUBJECT_DETAIL.sub(" ", rest))
    if all(word.lower() in _STOP_WORDS for word in rest_words):
        return ("subject", _WEIGHT_SUBJECT)
    if _SENTENCE_CUE.search(subject[segment_start:start]):
        return ("subject", _WEIGHT_SUBJECT)
    return None


_LABELLED_CAPITALS = re.compile(
    r"(?im)^([ \t]*(?:child'?s?\s+(?:full\s+)?name|(?:full\s+)?name|child|pupil|student|young\s+person|"
    r"first\s+names?|forenames?|given\s+names?|surname|last\s+name|family\s+name)[ \t]*[:\-][ \t]*)"
    r"([A-Z][A-Z' \-]+?)[ \t]*$"
)
_FIRST_NAME_FIELD = re.compile(
    rf"(?im)^[ \t]*(?:first\s+names?|forenames?|given\s+names?)[ \t]*[:\-][ \t]*({_NAME_WORD})"
)
_LAST_NAME_FIELD = re.compile(
    rf"(?im)^[ \t]*(?:surname|last\s+name|family\s+name)[ \t]*[:\-][ \t]*"
    rf"({_NAME_WORD}(?:[ \t]+{_NAME_WORD})?)"
)


def _title_case_labelled_capitals(text: str) -> str:
    """Rewrite "Name: DAISY WHITFIELD" as "Name: Daisy Whitfield", keeping offsets the same."""
    return _LABELLED_CAPITALS.sub(lambda found: found.group(1) + found.group(2).title(), text)


def _separate_name_fields(text: str) -> list[_NameMention]:
    """Read a form with "First name:" and "Surname:" on separate lines as one name."""
    first = _FIRST_NAME_FIELD.search(text)
    last = _LAST_NAME_FIELD.search(text)
    if not first or not last:
        return []
    start = min(first.start(1), last.start(1))
    return [
        _NameMention(
            first.group(1), last.group(1), None, None, None, start, "labelled", _WEIGHT_LABELLED, False
        )
    ]


def _name_mentions(text: str, kind: str, schools: SchoolIndex) -> list[_NameMention]:
    """Find capitalised names in text, each with the cue that it is a child's name.

    Names inside a school's name ("St Joseph's") are skipped, and so are titled names
    ("Mrs Cross") and relatives ("mum, Karen Dale").
    """
    text = _title_case_labelled_capitals(text)
    school_spans = [(mention.start, mention.end) for mention in schools.find_in_text(text)]
    mentions = _separate_name_fields(text)

    for run in _NAME_RUN.finditer(text):
        for tokens, start, end in _split_run(run.group(0), run.start()):
            if any(begin < end and start < finish for begin, finish in school_spans):
                continue
            mention = _mention_from_tokens(tokens, start)
            cue = _cue_for(text, start, end, kind) if mention else None
            if mention is None or cue is None:
                continue
            mention.cue, mention.weight = cue
            mention.in_subject = kind == "subject"
            _strip_possessive_s(mention, text, end)
            mentions.append(mention)
    return mentions


def _strip_possessive_s(mention: _NameMention, text: str, end: int) -> None:
    """Read "Tylers dad" as Tyler's dad when "Tyler" is written elsewhere too."""
    if mention.cue != "parent_reference" or not mention.single or not mention.first:
        return
    found = _PARENT_AFTER.match(text[end : end + 40])
    if found and not found.group("apostrophe") and mention.first.endswith("s"):
        shorter = mention.first[:-1]
        if re.search(rf"\b{re.escape(shorter)}\b", text):
            mention.first = shorter


def _people_not_children(regions: list[_Region], sender_name: str) -> set[str]:
    """Collect lower-cased names of signatories, greeted recipients, header names and the
    sender: staff and parents, never the child."""
    names: set[str] = set()
    for region in regions:
        for run in _NAME_RUN.finditer(region.signature):
            for tokens, _, _ in _split_run(run.group(0), run.start()):
                names.update(_name_keys(tokens))
        for found in _GREETING.finditer(region.content):
            names.add(found.group(1).lower())

    for tokens, _, _ in _split_run(sender_name, 0) if sender_name.strip() else []:
        names.update(_name_keys(tokens))
    return names


def _name_keys(tokens: list[tuple[str, str]]) -> set[str]:
    words = [word.lower() for kind, word in tokens if kind == "name"]
    keys = set(words[:1])
    if len(words) > 1:
        keys.add(" ".join(words))
    return keys


def _same(left: str | None, right: str | None) -> bool:
    return bool(left and right and left.lower() == right.lower())


def _same_initial(initial: str | None, name: str | None) -> bool:
    return bool(initial and name and name[0].upper() == initial[0].upper())


def _matches_person(person: _Person, mention: _NameMention) -> bool:
    """Tell whether a mention can be the same child: "Daisy" or "D Whitfield" for Daisy
    Whitfield, but not "Lily Reid" for Sam Reid."""
    if mention.single:
        word = mention.first
        return _same(person.first, word) or _same(person.known_as, word) or _same(person.last, word)

    if mention.first and (_same(person.first, mention.first) or _same(person.known_as, mention.first)):
        if mention.last and person.last and not _same(person.last, mention.last):
            return False
        return not (
            mention.last_initial and person.last and not _same_initial(mention.last_initial, person.last)
        )

    if mention.last and not mention.first and _same(person.last, mention.last):
        return (
            not person.first
            or not mention.first_initial
            or _same_initial(mention.first_initial, person.first)
        )
    return False


def _merge(person: _Person, mention: _NameMention) -> None:
    if mention.single:
        # A lone word that repeats the family name adds weight but no first name.
        if not _same(person.last, mention.first):
            person.first = person.first or mention.first
    else:
        person.first = person.first or mention.first
        person.last = person.last or mention.last
        person.first_initial = person.first_initial or mention.first_initial
        person.last_initial = person.last_initial or mention.last_initial
    person.known_as = person.known_as or mention.known_as

    person.score += mention.weight if mention.weight else _WEIGHT_REPEAT
    if mention.weight and not mention.in_subject:
        person.has_body_cue = True
    if mention.weight > person.best_weight:
        person.best_weight, person.best_cue = mention.weight, mention.cue


def _people_from_mentions(mentions: list[_NameMention]) -> list[_Person]:
    """Group mentions into people, full names first so that "Daisy" joins "Daisy Whitfield".
    A name that is only ever written without a cue does not become a person."""
    people: list[_Person] = []
    ordered = sorted(mentions, key=lambda mention: (mention.single, mention.first is None))
    for mention in ordered:
        person = next((person for person in people if _matches_person(person, mention)), None)
        if person is None:
            if mention.weight == 0.0:
                continue
            person = _Person()
            people.append(person)
        _merge(person, mention)
    return people


def _is_excluded(person: _Person, excluded: set[str]) -> bool:
    """Drop staff and parents unless the text labels the name with the child's details."""
    if person.best_weight >= _WEIGHT_DETAILS:
        return False
    first = (person.first or "").lower()
    full = f"{first} {(person.last or '').lower()}".strip()
    if full in excluded:
        return True
    return bool(first) and first in excluded and not person.last


def _is_child(person: _Person) -> bool:
    """Check that a person has enough cues to be a child, and a cue in the text itself
    unless the subject gives the child's details. A subject alone ("Test") is not enough."""
    if person.score < _CHILD_THRESHOLD:
        return False
    return person.has_body_cue or person.best_weight > _WEIGHT_SUBJECT


# Words that make a subject line about a child, so a name in it is trusted without the body.
_SUBJECT_CONTEXT = re.compile(
    r"\b(?:ccas|referral|refer|re-referral|pupil|child|student|young\s+person|absence|absent|attendance|"
    r"update|outcome|panel|action|school|dob|concern|request|support|tuition|ehcp|camhs|hospital|"
    r"admission|exclusion|excluded|notification|placement|illness|medical)\b|\b(?:y|yr|year)\s?\d",
    re.IGNORECASE,
)


def _admitted_subject_mentions(subject: str, mentions: list[_NameMention]) -> list[_NameMention]:
    """Keep subject names that carry details, sit in a subject about a child, or are the
    whole subject ("Tyler", "Pritchard")."""
    about_child = bool(_SUBJECT_CONTEXT.search(subject))
    kept = []
    for mention in mentions:
        words = " ".join(
            word
            for word in (mention.first_initial, mention.first, mention.last_initial, mention.last)
            if word
        )
        is_whole_subject = words.lower() == subject.strip().lower()
        if mention.weight > _WEIGHT_SUBJECT or about_child or is_whole_subject:
            kept.append(mention)
    return kept


def _repeated_in(words: list[str | None], body: str) -> bool:
    return any(word and re.search(rf"\b{re.escape(word)}\b", body) for word in words)


def _corroborated(subject_mentions: list[_NameMention], body: str) -> list[_NameMention]:
    """Keep subject names that the body repeats, or that stand with the child's details."""
    return [
        mention
        for mention in subject_mentions
        if mention.weight > _WEIGHT_SUBJECT or _repeated_in([mention.first, mention.last], body)
    ]


def _apply_family_name(people: list[_Person], subject_mentions: list[_NameMention], body: str) -> None:
    """Read a one-word subject that the body never repeats ("Pritchard") as the family
    name of brothers and sisters the body names by first name only ("Mia ... Mason")."""
    for mention in subject_mentions:
        word = mention.first
        if not mention.single or not word or re.search(rf"\b{re.escape(word)}\b", body, re.IGNORECASE):
            continue
        first_name_only = [
            person for person in people if person.first and not person.last and not _same(person.first, word)
        ]
        if len(first_name_only) < 2:
            continue
        for person in first_name_only:
            person.last = word
            person.score += _WEIGHT_SUBJECT / 2


@dataclass
class _NameResult:
    child: _Person | None
    others: list[_Person]
    region: str


def _find_child(regions: list[_Region], schools: SchoolIndex, sender_name: str) -> _NameResult:
    """Choose the child among the names the message gives.

    The new words are searched first, then the quoted history, then attachments. The
    subject adds weight to the names it repeats. The child is the name with the most
    cues, and the others are further children the same part of the message names.
    """
    excluded = _people_not_children(regions, sender_name)
    mentions_by_region = [_name_mentions(region.content, region.kind, schools) for region in regions]
    every_mention = [mention for mentions in mentions_by_region for mention in mentions]
    subject_mentions = _admitted_subject_mentions(regions[0].content, mentions_by_region[0])

    for kind in ("new", "history", "attachment"):
        body = "\n".join(region.content for region in regions if region.kind == kind)
        body_mentions = [
            mention
            for region, mentions in zip(regions, mentions_by_region)
            if region.kind == kind
            for mention in mentions
        ]
        people = _people_from_mentions(_corroborated(subject_mentions, body) + body_mentions)
        _apply_family_name(people, subject_mentions, body)
        children = [person for person in people if _is_child(person) and not _is_excluded(person, excluded)]
        if any(person.has_body_cue for person in children):
            children.sort(key=lambda person: -person.score)
            _use_formal_first_name(children[0], every_mention)
            _complete_last_name(children[0], every_mention)
            return _NameResult(children[0], children[1:], kind)

    children = _subject_only_children(regions[0].content, subject_mentions, excluded)
    return _NameResult(children[0] if children else None, children[1:], "subject")


def _subject_only_children(
    subject: str, subject_mentions: list[_NameMention], excluded: set[str]
) -> list[_Person]:
    """Read the child from the subject alone when the body gives no child's name. Only a
    name with details ("Amber Nicholls 9B") or a full name in a subject about a child counts."""
    about_child = bool(_SUBJECT_CONTEXT.search(subject))
    trusted = [
        mention
        for mention in subject_mentions
        if mention.weight > _WEIGHT_SUBJECT or (about_child and not mention.single)
    ]
    people = _people_from_mentions(trusted)
    return [person for person in people if not _is_excluded(person, excluded)]


def _use_formal_first_name(child: _Person, mentions: list[_NameMention]) -> None:
    """Take the full first name where the thread writes it beside the one the child goes
    by: "Pupil: Alfred (Alfie) Simmons" turns "Alfie Simmons" into Alfred, known as Alfie."""
    if not child.first:
        return
    for mention in mentions:
        if not (mention.known_as and mention.first and _same(mention.known_as, child.first)):
            continue
        if child.last and mention.last and not _same(mention.last, child.last):
            continue
        child.known_as, child.first = child.first, mention.first
        child.last = child.last or mention.last
        return


def _complete_last_name(child: _Person, mentions: list[_NameMention]) -> None:
    """Take a missing family name from another part of the thread that writes the same
    first name in full with a child cue: "my daughter Lexi" and "Lexi Hawkins (Year 7)"."""
    if child.last or not child.first:
        return
    for mention in mentions:
        if (
            mention.single
            or not mention.last
            or mention.weight == 0.0
            or not _same(mention.first, child.first)
        ):
            continue
        if not child.last_initial or _same_initial(child.last_initial, mention.last):
            child.last = mention.last
            child.last_name_source = f"completed:{mention.cue}"
            return


def _fill_names(details: ChildDetails, result: _NameResult, regions: list[_Region]) -> None:
    child = result.child
    if child is None:
        return

    details.first_name = child.first
    details.last_name = child.last
    details.first_initial = child.first_initial or (child.first[0] if child.first else None)
    details.last_initial = child.last_initial or (child.last[0] if child.last else None)
    details.known_as = child.known_as or _known_as_from_text(regions, child)
    details.children_count = 1 + len(result.others)
    details.other_children = [person.display_name() for person in result.others]

    code = _code(child.best_cue, result.region)
    if details.first_name:
        details.evidence["first_name"] = code
        _quote_value(details, "first_name", regions, details.first_name, result.region)
    if details.last_name:
        details.evidence["last_name"] = child.last_name_source or code
        _quote_value(details, "last_name", regions, details.last_name, result.region)
    if child.last_initial and not child.last:
        details.evidence["last_initial"] = code
    if child.first_initial and not child.first:
        details.evidence["first_initial"] = code


def _known_as_from_text(regions: list[_Region], child: _Person) -> str | None:
    """Find "known as Alfie" or "prefers Alfie" written after the child's first name."""
    if not child.first:
        return None
    pattern = re.compile(rf"\b{re.escape(child.first)}\b[^.\n]{{0,40}}?{_KNOWN_AS.pattern}")
    for region in regions:
        found = pattern.search(region.content)
        if found:
            return found.group(1)
    return None


# ---------------------------------------------------------------------------
# Identifiers, school and year group


def _content_texts(regions: list[_Region]) -> list[tuple[str, str]]:
    return [(region.kind, region.content) for region in regions]


def _fill_dob(details: ChildDetails, regions: list[_Region], today: date, child_names: list[str]) -> None:
    """Take a labelled date of birth first, the one nearest after the child's name when
    there are several. An unlabelled date counts only straight after the child's name
    ("Kieran Doyle 03/10/2011"), because a letter's other dates can fall in school age."""
    for want_labelled in (True, False):
        for kind, text in _content_texts(regions):
            matches = [
                match for match in find_date_of_birth_matches(text, today) if match.labelled == want_labelled
            ]
            if not want_labelled:
                matches = [
                    match for match in matches if _follows_name(text, match.start, child_names, window=40)
                ]
            if not matches:
                continue
            chosen = _nearest_after_name(matches, text, child_names)
            details.dob = chosen.value
            details.evidence["dob"] = _code("labelled" if want_labelled else "after_name", kind)
            written = _WRITTEN_DATE.match(text, chosen.start)
            _quote(details, "dob", kind, text, chosen.start, written.end() if written else chosen.start)
            return


# A date as people write it, to mark the whole date in a quote: "03/10/2011", "3rd October 2011".
_WRITTEN_DATE = re.compile(r"\d{1,4}(?:st|nd|rd|th)?(?:[\s/.,-]+(?:\d{1,4}|[A-Za-z]{3,9})){1,2}")


def _nearest_after_name(
    matches: list[DateOfBirthMatch], text: str, child_names: list[str]
) -> DateOfBirthMatch:
    if len({match.value for match in matches}) == 1 or not child_names:
        return matches[0]
    positions = [
        found.end() for name in child_names for found in re.finditer(rf"\b{re.escape(name)}\b", text)
    ]
    if not positions:
        return matches[0]

    def distance(match: DateOfBirthMatch) -> int:
        gaps = [match.start - position for position in positions if position <= match.start]
        return min(gaps) if gaps else len(text)

    return min(matches, key=distance)


def _code(code: str, region: str) -> str:
    return code if region in ("subject", "new") else f"{code}:{region}"


def _fill_upn(details: ChildDetails, regions: list[_Region]) -> None:
    candidates = [(kind, text, match) for kind, text in _content_texts(regions) for match in find_upns(text)]
    if not candidates:
        return

    # A valid UPN wins over a typo, and a labelled one over an unlabelled one.
    kind, text, match = min(candidates, key=lambda item: (not item[2].valid, not item[2].labelled))
    details.upn, details.upn_valid = match.value, match.valid
    code = "labelled" if match.labelled else "text"
    details.evidence["upn"] = _code(code if match.valid else f"{code}:invalid_check", kind)
    # The UPN may be written with spaces, hyphens or dots between its characters.
    written = re.compile(r"[\s.-]*".join(re.escape(character) for character in match.value), re.I).match(
        text, match.start)
    _quote(details, "upn", kind, text, match.start, written.end() if written else match.start + len(match.value))


def _fill_nhs_number(details: ChildDetails, regions: list[_Region]) -> None:
    for kind, text in _content_texts(regions):
        numbers = find_nhs_numbers(text)
        if numbers:
            details.nhs_number = numbers[0]
            details.evidence["nhs_number"] = _code("found", kind)
            _quote_value(details, "nhs_number", regions, numbers[0], kind)
            return


def _follows_name(text: str, position: int, child_names: list[str], window: int = 100) -> bool:
    """Tell whether one of the child's names comes shortly before position, in the same paragraph."""
    before = text[max(0, position - window) : position]
    for name in child_names:
        for found in re.finditer(rf"\b{re.escape(name)}\b", before):
            if "\n\n" not in before[found.end() :]:
                return True
    return False


def _fill_year_group(details: ChildDetails, regions: list[_Region], child_names: list[str]) -> None:
    """Take the year group written beside the child's name. In the subject and the new
    words the first one will do, but older messages in a thread often list other children."""
    for kind, text in _content_texts(regions):
        mentions = find_year_group_mentions(text)
        near = [mention for mention in mentions if _follows_name(text, mention.start, child_names)]
        if not near and (kind not in ("subject", "new") or not mentions):
            continue

        candidates = near or mentions
        labelled = [mention for mention in candidates if mention.kind == "labelled"]
        mention = (labelled or candidates)[0]
        details.year_group = mention.value
        details.evidence["year_group"] = _code(mention.kind, kind)
        written = _WRITTEN_YEAR_GROUP.match(text, mention.start)
        _quote(details, "year_group", kind, text, mention.start, written.end() if written else mention.start)
        return


# A year group as written from its start: "Year 9", "Yr 10", "9B", "Reception".
_WRITTEN_YEAR_GROUP = re.compile(r"(?:year|yr|y)?\s?\w+", re.IGNORECASE)


# Scores for choosing the child's school among the schools a message names.
_SCHOOL_REGION_WEIGHT = {"subject": 3.0, "new": 2.0, "history": 1.0, "attachment": 1.0}
_ROLL_CUE = re.compile(r"\b(?:roll|registered|on\s+roll)\b", re.IGNORECASE)
_ENROLMENT_CUE = re.compile(
    r"\b(?:at|attends|attending|attend|pupil\s+at|student\s+at|goes\s+to)\s+(?:the\s+)?$",
    re.IGNORECASE,
)
_PAST_CUE = re.compile(
    r"\b(?:was|previous|previously|formerly|former|used\s+to|primary\s+school\s+was)\b[^.\n]{0,30}$",
    re.IGNORECASE,
)


_YEAR_BEFORE = re.compile(
    r"\b(?:year|yr|y)\s?\d{1,2}[\s,]*(?:at|in|pupil\s+at)?\s*(?:the\s+)?$", re.IGNORECASE
)
# A school that only provides teaching ("tuition from the Beacon Centre") is not the
# school the child is on roll at.
_PROVIDER_BEFORE = re.compile(
    r"\b(?:with|from|by)\s+(?:the\s+)?$|\b(?:tuition|outreach|provision|placement)\s+(?:at|from|with|by)\s+(?:the\s+)?$",
    re.IGNORECASE,
)
_PROVIDER_AFTER = re.compile(
    r"^\s*(?:tutors?|tuition|outreach|teachers?|staff|medical\s+education)\b", re.IGNORECASE
)


def _score_school_mention(text: str, mention: SchoolMention, child_names: list[str]) -> float:
    before = text[max(0, mention.start - 40) : mention.start]
    after = text[mention.end : mention.end + 20]
    if _PROVIDER_BEFORE.search(before) or _PROVIDER_AFTER.search(after):
        return -2.0

    score = 0.0
    if _follows_name(text, mention.start, child_names):
        score += 2.0
    if _ENROLMENT_CUE.search(before) or _YEAR_BEFORE.search(before):
        score += 2.0
    if _ROLL_CUE.search(after) or _ROLL_CUE.search(before[-15:]):
        score += 4.0
    if _PAST_CUE.search(before):
        score -= 2.0
    return score


def _school_scores(
    regions: list[_Region],
    schools: SchoolIndex,
    sender_domain: str,
    child_names: list[str],
    singled_out: set[str],
    spans: dict[str, tuple[str, str, int, int]] | None = None,
) -> tuple[dict[str, float], dict[str, str]]:
    """Score each school the message names by its best mention, then add the sender's.
    Adds to `singled_out` the schools that some mention names without ambiguity, and to
    `spans` the (region, text, start, end) of each school's best mention."""
    spans = {} if spans is None else spans
    totals: dict[str, float] = {}
    sources: dict[str, str] = {}
    first_seen = True

    for region in regions:
        for mention in schools.find_in_text(region.content):
            # Cues count for less in older messages, as the region weight does.
            weight = _SCHOOL_REGION_WEIGHT[region.kind]
            score = weight + _score_school_mention(region.content, mention, child_names) * weight / 2
            if first_seen:
                score, first_seen = score + 1.0, False
            for urn in mention.urns:
                if score > totals.get(urn, float("-inf")):
                    totals[urn] = score
                    sources[urn] = _code("name", region.kind) if mention.kind == "name" else mention.kind
                    spans[urn] = (region.kind, region.content, mention.start, mention.end)
            if not mention.ambiguous:
                singled_out.update(mention.urns)

    _add_sender_scores(totals, sources, regions, schools, sender_domain)
    return totals, sources


def _add_sender_scores(
    totals: dict[str, float],
    sources: dict[str, str],
    regions: list[_Region],
    schools: SchoolIndex,
    sender_domain: str,
) -> None:
    """Count the sender's own school: its domain, and a school named in its signature."""
    domain_schools = schools.by_domain(sender_domain) if sender_domain else []
    for school in domain_schools:
        totals[school.urn] = totals.get(school.urn, 0.0) + 2.0 / len(domain_schools)
        sources.setdefault(school.urn, "domain")

    for region in regions:
        if region.kind != "new":
            continue
        for mention in schools.find_in_text(region.signature):
            for urn in mention.urns:
                totals[urn] = totals.get(urn, 0.0) + 1.0
                sources.setdefault(urn, "signature")


def _fill_school(
    details: ChildDetails,
    regions: list[_Region],
    schools: SchoolIndex,
    sender_domain: str,
    child_names: list[str],
) -> None:
    singled_out: set[str] = set()
    spans: dict[str, tuple[str, str, int, int]] = {}
    totals, sources = _school_scores(regions, schools, sender_domain, child_names, singled_out, spans)
    if not totals:
        return

    ranked = sorted(totals.items(), key=lambda item: -item[1])
    top_score = ranked[0][1]
    tied = [urn for urn, score in ranked if score == top_score]
    # "St Marys" fits two schools, and a later "St Mary's Catholic Primary" settles it.
    if len(tied) > 1 and len(set(tied) & singled_out) == 1:
        tied = list(set(tied) & singled_out)
    details.school_candidates = [urn for urn, _ in ranked]
    if len(tied) == 1:
        details.school_urn = tied[0]
        details.evidence["school_urn"] = sources[tied[0]]
        if tied[0] in spans:
            _quote(details, "school_urn", *spans[tied[0]])
    else:
        details.school_candidates = tied
        details.evidence["school_urn"] = "ambiguous"


# ---------------------------------------------------------------------------
# Reason, EHCP, absence and exclusion date

# A negation up to two words before a keyword: "no health needs", "no evidence of self-harm".
_NEGATION_BEFORE = re.compile(
    r"(?:\b(?:no|not|never|without|nor|denies|denied|free\s+of)\b|n't\b)(?:\W+\w+){0,2}\W*$", re.IGNORECASE
)

_EXCLUSION_WORDS = re.compile(
    r"\bpermanent(?:ly)?\s+exclu\w+|\bexclu(?:ded|sion)\s+permanently|\bsuspension\b|"
    r"\bsuspended\s+(?:from\s+school|for\s+\d+|until)|\bfixed[- ]term\s+exclusion|"
    r"\b(?:was|been|being|is|got)\s+excluded\b",
    re.IGNORECASE,
)
_RISK_BEFORE = re.compile(r"\b(?:risk|danger|threat|avoid|prevent)\w*\s+(?:of\s+)?(?:a\s+)?$", re.IGNORECASE)
_ILLNESS_WORDS = re.compile(
    r"\b(?:anxi(?:ety|ous)|depress\w*|low\s+mood|mental\s+health|CAMHS|EBSA|emotionally\s+based|"
    r"self[- ]harm\w*|suicid\w*|eating\s+disorder|anorexi\w*|bulimi\w*|OCD|PTSD|trauma|grief|"
    r"panic\s+attacks?|psychosis|hospital|inpatient|in-patient|admitted|discharged|surgery|"
    r"operation|physio\w*|fractur\w*|broken|broke\s+(?:his|her|their)|spica|injur\w*|illness|"
    r"ill|unwell|sick(?:ness)?|medical\s+(?:needs|condition|reasons?|evidence)|medically|medication|diagnosed|diagnosis|consultant|paediatric\w*|chronic|"
    r"fatigue|ME/CFS|CFS|pain|migraines?|headaches?|stomach|crohn's|colitis|arthritis|diabet\w*|"
    r"asthma|epilep\w*|seizures?|cancer|leuk(?:a)?emia|tumour|chemo\w*|immunosuppress\w*|"
    r"sickle\s+cell|glandular\s+fever|long\s+covid|infection|cystic\s+fibrosis|pregnan\w*|"
    r"signed\s+off|GP\s+letter|health\s+needs|ill\s+health|not\s+well\s+enough|dose|therapy|"
    r"IHCP|individual\s+health\s*care\s+plan|medical\s+education|school\s+nurse)\b",
    re.IGNORECASE,
)
_OTHER_CAUSE_WORDS = re.compile(
    r"\b(?:housing|homeless\w*|(?:temporary|emergency|bed\s+and\s+breakfast|B&B)\s+accommodation|hostel|"
    r"evict\w*|transport|no\s+direct\s+bus|"
    r"miles\s+(?:from|away)|no\s+school\s+place|without\s+a\s+school\s+place|awaiting\s+a\s+(?:school\s+)?place|"
    r"young\s+carer|caring\s+responsibilit\w*|refugee|asylum|house\s+fire|moved\s+(?:to|into)\s+the\s+area)\b",
    re.IGNORECASE,
)


def _unnegated(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    for found in pattern.finditer(text):
        before = text[max(0, found.start() - 40) : found.start()]
        if not _NEGATION_BEFORE.search(before) and not _RISK_BEFORE.search(before):
            return found
    return None


def _fill_reason(details: ChildDetails, regions: list[_Region]) -> None:
    """Pick exclusion over illness over another cause, from the first region that gives one.
    Negation is not checked for other causes, because "no transport" is itself a cause."""
    for kind, text in _content_texts(regions):
        if kind == "subject":
            continue
        for reason, found in (
            ("exclusion", _unnegated(_EXCLUSION_WORDS, text)),
            ("illness", _unnegated(_ILLNESS_WORDS, text)),
            ("other", _OTHER_CAUSE_WORDS.search(text)),
        ):
            if found:
                details.reason = reason
                details.evidence["reason"] = _code(f"keyword:{found.group(0).lower()}", kind)
                _quote(details, "reason", kind, text, found.start(), found.end())
                return


_EHCP = r"(?:EHCP|EHC\s*plan|education,?\s+health\s+(?:and|&)\s+care\s+plan)"
_EHCP_NONE = re.compile(
    rf"\b(?:no|not\s+(?:got|have|had|on)|doesn't\s+have|does\s+not\s+have|hasn't\s+got|has\s+not\s+got|"
    rf"without|isn't\s+on|is\s+not\s+on|never\s+had)\s+(?:an?\s+|any\s+|current\s+)?{_EHCP}"
    rf"|{_EHCP}\s+(?:was\s+|has\s+been\s+)?(?:refused|declined|turned\s+down)"
    rf"|\b(?:refused|declined|decided\s+not|decision\s+not|agreed\s+not)\s+to\s+(?:assess|issue|carry\s+out)"
    rf"|\bnot\s+eligible\s+for\s+(?:an?\s+)?{_EHCP}",
    re.IGNORECASE,
)
_EHCP_HAS = re.compile(
    rf"\b(?:has|have|had|with|holds?|on)\s+(?:had\s+)?(?:an?\s+)?(?:existing\s+|current\s+|final\s+)?{_EHCP}"
    rf"|{_EHCP}\s+(?:is\s+|was\s+)?(?:in\s+place|was\s+(?:issued|finalised|transferred)|transferred|names|named)"
    rf"|\b(?:his|her|their|child's)\s+{_EHCP}(?!\s+(?:needs\s+)?(?:assessment|application|request))"
    rf"|{_EHCP}\s+annual\s+review",
    re.IGNORECASE,
)
_EHCP_DRAFT = re.compile(
    rf"\b(?:decision|decided|agreed|agree)\s+to\s+issue\s+(?:an?\s+)?(?:draft\s+)?(?:{_EHCP}|plan)"
    rf"|\bdraft\s+{_EHCP}"
    rf"|\bissue\s+(?:an?\s+)?draft\s+plan",
    re.IGNORECASE,
)
_EHCP_ASSESSMENT = re.compile(
    r"\bEHC\s*needs\s+assessment|\bEHCNA\b|\bEHC\s*NA\b|\beducation,?\s+health\s+(?:and|&)\s+care\s+needs\s+assessment|"
    r"\bstatutory\s+(?:EHC\s+)?assessment|\bagreed\s+to\s+assess|\brequest(?:ed)?\s+(?:for\s+)?an?\s+EHC",
    re.IGNORECASE,
)
_REFUSAL = re.compile(r"\b(?:refused|declined|turned\s+down|not\s+agreed|decided\s+not)\b", re.IGNORECASE)


def _ehcp_statements(text: str) -> list[tuple[str, str]]:
    """Classify each sentence that talks about an EHC plan or assessment."""
    found: list[tuple[str, str]] = []
    for sentence in re.split(r"(?<=[.;!?])\s+|\n+", text):
        if _EHCP_NONE.search(sentence):
            found.append(("none", _EHCP_NONE.search(sentence).group(0)))
        draft = _unnegated(_EHCP_DRAFT, sentence)
        if draft:
            found.append(("draft_decision", draft.group(0)))
        has = _unnegated(_EHCP_HAS, sentence)
        if has and not _EHCP_NONE.search(sentence):
            found.append(("has_ehcp", has.group(0)))
        assessment = _EHCP_ASSESSMENT.search(sentence)
        if assessment:
            # "The EHC needs assessment was refused" leaves the child without a plan.
            found.append(("none" if _REFUSAL.search(sentence) else "assessment", assessment.group(0)))
    return found


def _fill_ehcp(details: ChildDetails, regions: list[_Region]) -> None:
    """Set the EHCP status from the first region that mentions one. A draft decision
    outranks a plan in place, then an assessment, then "no EHCP", so "no EHCP yet, the
    assessment is under way" is an assessment."""
    priority = ("draft_decision", "has_ehcp", "assessment", "none")
    for kind, text in _content_texts(regions):
        if kind == "subject":
            continue
        statements = _ehcp_statements(text)
        if statements:
            status, phrase = min(statements, key=lambda item: priority.index(item[0]))
            details.ehcp = status
            details.evidence["ehcp"] = _code(f"phrase:{phrase.lower()}", kind)
            _quote_value(details, "ehcp", [_Region(kind, text)], phrase, kind)
            return


_COUNT_WORDS = {
    "a": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
}
_COUNT = r"(\d{1,3}|" + "|".join(_COUNT_WORDS) + r")"
_ABSENCE = re.compile(
    r"\b(?:off|absent|out\s+of\s+school|not\s+(?:been\s+)?(?:in|attended|attending)(?:\s+school)?|missed|"
    r"not\s+been\s+able\s+to\s+attend)\b[^.\n]{0,30}?\bfor\s+(?:the\s+(?:last|past)\s+)?(?:at\s+least\s+)?"
    + _COUNT
    + r"\s+(?:school\s+)?(days?|weeks?)\b"
    r"|\b(?:missed|absent\s+for|off\s+for)\s+" + _COUNT + r"\s+(?:school\s+)?(days?|weeks?)\b"
    r"|\b" + _COUNT + r"\s+(?:school\s+)?(days?|weeks?)\s+(?:of\s+)?(?:absence|absent|off|missed)\b",
    re.IGNORECASE,
)


def _fill_absence_days(details: ChildDetails, regions: list[_Region]) -> None:
    """Read a stated absence as school days, counting a week as 5 school days."""
    for kind, text in _content_texts(regions):
        found = _ABSENCE.search(text)
        if not found:
            continue
        groups = [group for group in found.groups() if group]
        count_text, unit = groups[0].lower(), groups[1].lower()
        count = int(count_text) if count_text.isdigit() else _COUNT_WORDS[count_text]
        details.absence_days = count * 5 if unit.startswith("week") else count
        details.evidence["absence_days"] = _code("stated", kind)
        return


def _fill_exclusion_date(details: ChildDetails, regions: list[_Region], today: date) -> None:
    """Read the date written after "permanently excluded" or "suspension" in the same sentence."""
    for kind, text in _content_texts(regions):
        for found in _EXCLUSION_WORDS.finditer(text):
            sentence_end = re.search(r"[.!?\n]", text[found.end() :])
            rest = text[found.end() : found.end() + (sentence_end.start() if sentence_end else 200)]
            excluded_on = parse_uk_date(rest, today)
            if excluded_on:
                details.exclusion_date = excluded_on
                details.evidence["exclusion_date"] = _code("stated", kind)
                return


# ---------------------------------------------------------------------------
# Entry point


def _run_step(details: ChildDetails, name: str, step: Callable[[], None]) -> None:
    """Run one extraction step. A failure loses that field only, so triage goes on."""
    try:
        step()
    except Exception:  # noqa: BLE001 - extraction must never stop the message pipeline
        logger.exception("extracting %s failed", name)
        details.evidence[name] = "error"


def extract_child(
    subject: str,
    text: str,
    sender_domain: str,
    schools: SchoolIndex,
    today: date,
    *,
    new_text: str | None = None,
    sender_name: str = "",
    attachment_texts: Sequence[str] = (),
) -> ChildDetails:
    """Extract the details of the child a message is about, without raising an Exception.

    `text` is what a person reads, quoted history included. `new_text`, when the caller
    has it, replaces this module's own guess at the new words. `attachment_texts` are read
    last. `sender_name` is never taken as the child's name, and neither are signatories.
    A step that fails is logged, and its field stays None with evidence "error".
    """
    details = ChildDetails()
    try:
        regions = _build_regions(subject or "", text or "", new_text, attachment_texts)
    except Exception:  # noqa: BLE001 - see _run_step
        logger.exception("splitting the message into regions failed")
        details.evidence["regions"] = "error"
        return details

    names: list[str] = []

    def find_names() -> None:
        result = _find_child(regions, schools, sender_name or "")
        _fill_names(details, result, regions)
        names.extend(name for name in (details.first_name, details.known_as, details.last_name) if name)

    steps: list[tuple[str, Callable[[], None]]] = [
        ("first_name", find_names),
        ("dob", lambda: _fill_dob(details, regions, today, names)),
        ("upn", lambda: _fill_upn(details, regions)),
        ("nhs_number", lambda: _fill_nhs_number(details, regions)),
        ("school_urn", lambda: _fill_school(details, regions, schools, sender_domain or "", names)),
        ("year_group", lambda: _fill_year_group(details, regions, names)),
        ("reason", lambda: _fill_reason(details, regions)),
        ("ehcp", lambda: _fill_ehcp(details, regions)),
        ("absence_days", lambda: _fill_absence_days(details, regions)),
        ("exclusion_date", lambda: _fill_exclusion_date(details, regions, today)),
    ]
    for name, step in steps:
        _run_step(details, name, step)
    return details
