"""Pupil and patient identifiers, dates and year groups found in free text.

The UPN check letter follows the DfE Unique Pupil Number standard (GDSC "Unique Pupil
Number" v2.0): weights 2..13 over the 12 characters after the check letter, sum modulo
23, looked up in a 23-letter table without I, O and S. The NHS number check digit
follows the NHS Data Dictionary modulus 11 rule. Dates are read the UK way, day first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

# Check letters (and temporary-UPN final letters) by value: I, O and S are never used.
UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"

_UPN_LETTER = "[A-HJ-NP-RT-Z]"
_UPN_SHAPE = re.compile(rf"{_UPN_LETTER}\d{{11}}[0-9A-HJ-NP-RT-Z]")

# A UPN written without spaces, anywhere in the text.
_UPN_IN_TEXT = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]\d{11}[0-9A-Za-z](?![A-Za-z0-9])")

# A value after a "UPN" label. Spaces or hyphens may split it, and 10 to 14 characters are
# accepted so that a mistyped UPN is still reported (as invalid) instead of being dropped.
_UPN_LABELLED = re.compile(
    r"\bUPN\b(?:\s*(?:no\.?|number|is))?[\s:#.\-–]*"
    r"([A-Za-z](?:[ -]?\d){9,12}(?:[ -]?[0-9A-Za-z])?)(?![A-Za-z0-9])",
    re.IGNORECASE,
)

_NHS_CANDIDATE = re.compile(r"(?<![\d+])(\d{3})[ -]?(\d{3})[ -]?(\d{4})(?![\d])")
_NHS_LABEL = re.compile(r"\bNHS\b[^\d\n]{0,20}$", re.IGNORECASE)
_PHONE_LABEL = re.compile(
    r"\b(?:tel|telephone|phone|mobile|mob|fax|call|ring|text|contact)\b[^\d\n]{0,15}$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class UpnMatch:
    """A UPN found in text. `valid` is False when the check letter or the shape is wrong,
    which usually means a typo, so callers should show it to a person instead of dropping it."""

    value: str
    valid: bool
    labelled: bool
    start: int


def normalise_upn(text: str) -> str:
    """Return text upper-cased with spaces, hyphens and dots removed."""
    return re.sub(r"[\s.\-–]", "", text).upper()


def _upn_character_value(character: str) -> int:
    if character.isdigit():
        return int(character)
    return UPN_LETTERS.index(character)


def upn_check_letter(body: str) -> str:
    """Compute the check letter for the 12 characters that follow it in a UPN."""
    total = sum(_upn_character_value(character) * weight for weight, character in enumerate(body, start=2))
    return UPN_LETTERS[total % 23]


def is_valid_upn(value: object) -> bool:
    """Check shape and check letter of a permanent or temporary UPN.

    NOTE: the LA code in characters 2-4 is not checked against the list of real LA codes.
    """
    if not isinstance(value, str):
        return False

    upn = normalise_upn(value)
    if not _UPN_SHAPE.fullmatch(upn):
        return False

    return upn_check_letter(upn[1:]) == upn[0]


def find_upns(text: str) -> list[UpnMatch]:
    """Find UPNs in text, labelled ones first, each value once.

    A labelled value of the wrong length or with a wrong check letter is kept with
    valid=False. An unlabelled 13-character value is kept only when its shape fits.
    """
    matches: dict[str, UpnMatch] = {}

    for found in _UPN_LABELLED.finditer(text):
        value = normalise_upn(found.group(1))
        if value not in matches:
            matches[value] = UpnMatch(value, is_valid_upn(value), True, found.start(1))

    for found in _UPN_IN_TEXT.finditer(text):
        value = normalise_upn(found.group(0))
        if value in matches or not _UPN_SHAPE.fullmatch(value):
            continue
        matches[value] = UpnMatch(value, is_valid_upn(value), False, found.start())

    return sorted(matches.values(), key=lambda match: (not match.labelled, match.start))


def is_valid_nhs_number(value: object) -> bool:
    """Check an NHS number by modulus 11, allowing spaces and hyphens between digits.

    Numbers made of one repeated digit are rejected because they are placeholders.
    """
    if not isinstance(value, str):
        return False

    if not re.fullmatch(r"\d(?:[ -]?\d){9}", value.strip()):
        return False
    digits = re.sub(r"\D", "", value)
    if len(set(digits)) == 1:
        return False

    total = sum(int(digit) * weight for digit, weight in zip(digits[:9], range(10, 1, -1)))
    check = 11 - total % 11
    if check == 11:
        check = 0
    if check == 10:
        return False

    return check == int(digits[9])


def find_nhs_numbers(text: str) -> list[str]:
    """Find valid NHS numbers in text, as 10 plain digits, labelled ones first.

    An unlabelled number must pass the check digit, must not start with 0 (UK phone
    numbers do) and must not follow a word such as "tel" or "mobile".
    """
    labelled: list[str] = []
    unlabelled: list[str] = []

    for found in _NHS_CANDIDATE.finditer(text):
        digits = "".join(found.groups())
        if not is_valid_nhs_number(digits):
            continue

        before = text[max(0, found.start() - 40) : found.start()]
        if _NHS_LABEL.search(before):
            labelled.append(digits)
        elif not digits.startswith("0") and not _PHONE_LABEL.search(before):
            unlabelled.append(digits)

    return list(dict.fromkeys(labelled + unlabelled))


# ---------------------------------------------------------------------------
# Dates

_MONTHS = {
    "jan": 1,
    "january": 1,
    "feb": 2,
    "february": 2,
    "mar": 3,
    "march": 3,
    "apr": 4,
    "april": 4,
    "may": 5,
    "jun": 6,
    "june": 6,
    "jul": 7,
    "july": 7,
    "aug": 8,
    "august": 8,
    "sep": 9,
    "sept": 9,
    "september": 9,
    "oct": 10,
    "october": 10,
    "nov": 11,
    "november": 11,
    "dec": 12,
    "december": 12,
}
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"

# The lookbehind skips SMTP status codes such as "550 5.1.10" in bounce reports.
_NUMERIC_DATE = re.compile(
    r"(?<![\d/.\-])(?<!\d{3}\s)(?P<day>\d{1,2})\s?(?P<sep>[./\-])\s?(?P<month>\d{1,2})\s?(?P=sep)\s?"
    r"(?P<year>\d{4}|\d{2})(?![\d]|[./\-]\d)"
)
_ISO_DATE = re.compile(r"(?<![\d\-])(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})(?![\d\-])")
_DAY_MONTH_DATE = re.compile(
    rf"(?<![\d/])(?P<day>\d{{1,2}})(?:st|nd|rd|th)?(?:\s+of)?[\s\-]+{_MONTH}\b"
    r"(?:,?[\s\-]+(?P<year>\d{4}|'\d{2}|\d{2})\b)?",
    re.IGNORECASE,
)
_MONTH_DAY_DATE = re.compile(
    rf"\b{_MONTH}\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<year>\d{{4}})\b",
    re.IGNORECASE,
)

_DOB_LABEL = re.compile(
    r"(?:\bDOB\b|\bD\.\s?O\.\s?B\b\.?|\bdate\s+of\s+birth\b|\bborn\b|\bbirthday\b)"
    r"[\s:.,\-–(]*(?:(?:is|was|on|of)\s+)*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _DateMatch:
    start: int
    end: int
    value: date
    has_year: bool


def _resolve_year(year_text: str, today: date) -> int:
    """Expand a two-digit year to the latest century that is not past next year."""
    year_text = year_text.lstrip("'")
    if len(year_text) == 4:
        return int(year_text)

    year = 2000 + int(year_text)
    if year > today.year + 1:
        year -= 100
    return year


def _latest_on_or_before(month: int, day: int, today: date) -> date | None:
    """Give a date without a year the latest year that puts it on or before today."""
    for year in (today.year, today.year - 1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate <= today:
            return candidate
    return None


def _date_from_groups(found: re.Match[str], today: date) -> _DateMatch | None:
    month_text = found.group("month")
    month = int(month_text) if month_text.isdigit() else _MONTHS[month_text.lower().rstrip(".")]
    day = int(found.group("day"))
    year_text = found.group("year")

    if year_text is None:
        value = _latest_on_or_before(month, day, today)
        return _DateMatch(found.start(), found.end(), value, False) if value else None

    try:
        value = date(_resolve_year(year_text, today), month, day)
    except ValueError:
        return None
    return _DateMatch(found.start(), found.end(), value, True)


def _find_dates(text: str, today: date) -> list[_DateMatch]:
    """Find every date in text, day first, in text order without overlaps."""
    found_dates: list[_DateMatch] = []
    for pattern in (_ISO_DATE, _NUMERIC_DATE, _DAY_MONTH_DATE, _MONTH_DAY_DATE):
        for found in pattern.finditer(text):
            match = _date_from_groups(found, today)
            if match is not None:
                found_dates.append(match)

    # Keep the longest match where two patterns read the same characters.
    found_dates.sort(key=lambda match: (match.start, -(match.end - match.start)))
    kept: list[_DateMatch] = []
    for match in found_dates:
        if kept and match.start < kept[-1].end:
            continue
        kept.append(match)
    return kept


def parse_uk_date(text: str, today: date) -> date | None:
    """Parse the first UK-style date in text, reading numeric dates day first.

    Accepts "4/3/12", "04.03.2012", "04-03-2012", "4th March 2012", "4 Mar 2012",
    "March 4th 2012" and "2012-03-04". A two-digit year is taken in the latest century
    that is not past next year, so "12" is 2012. A date without a year ("22nd
    September") is the latest such date on or before today. Numeric dates need a year,
    because "6/10" is more often a score than a date.
    """
    if not isinstance(text, str):
        return None
    matches = _find_dates(text, today)
    return matches[0].value if matches else None


def _age_in_years(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


@dataclass(frozen=True)
class DateOfBirthMatch:
    """A likely date of birth in text. `labelled` is True after "DOB" or a similar label."""

    value: date
    start: int
    labelled: bool


def find_date_of_birth_matches(text: str, today: date) -> list[DateOfBirthMatch]:
    """Find likely dates of birth in text order, with their positions.

    A labelled date ("DOB", "D.O.B.", "date of birth", "born") is kept when the person
    would be 0 to 25 years old today. An unlabelled date is kept only when the age is
    3 to 19, the span around compulsory school age.
    """
    matches: list[DateOfBirthMatch] = []

    for match in _find_dates(text, today):
        if not match.has_year or match.value > today:
            continue

        age = _age_in_years(match.value, today)
        before = text[max(0, match.start - 40) : match.start]
        if _DOB_LABEL.search(before) and age <= 25:
            matches.append(DateOfBirthMatch(match.value, match.start, True))
        elif 3 <= age <= 19:
            matches.append(DateOfBirthMatch(match.value, match.start, False))

    return matches


def find_dates_of_birth(text: str, today: date) -> list[date]:
    """Find likely dates of birth, labelled ones first, each date once."""
    matches = find_date_of_birth_matches(text, today)
    labelled = [match.value for match in matches if match.labelled]
    unlabelled = [match.value for match in matches if not match.labelled]
    return list(dict.fromkeys(labelled + unlabelled))


# ---------------------------------------------------------------------------
# Year groups

_NUMBER_WORDS = {
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
    "thirteen": 13,
}
_NUMBER = r"(?P<number>1[0-3]|[1-9]|" + "|".join(_NUMBER_WORDS) + r")"

_YEAR_GROUP = re.compile(rf"\b(?:year|yr|y)\s?{_NUMBER}\b(?!\s?[/.]\s?\d)", re.IGNORECASE)
_RECEPTION = re.compile(
    r"\b(?:Year\s+R|YR)\b(?!\s?\d)"
    r"|\b(?:in|into|started|starting|a|the)\s+Reception\b"
    r"|\bReception\s+(?:class|year|pupil|child)\b"
)
_LABELLED_YEAR = re.compile(rf"\byear(?:\s+group)?\s*[:\-–]\s*(?:year\s*|y)?{_NUMBER}\b", re.IGNORECASE)

# Tutor or form groups such as "8T" or "10RS", after a label.
_FORM_GROUP_LABELLED = re.compile(
    r"\b(?:form|tutor|registration|reg)(?:\s+group|\s+class)?\s*[:\-–]?\s*"
    r"(?P<number>1[0-3]|[1-9])\s?[A-Z]{1,3}\b",
    re.IGNORECASE,
)
# The same straight after a name or initial ("Freya D 8T", "J Whitmore (9C)"). Secondary
# years only, because "3D" or "4G" after a capitalised word is rarely a class.
_FORM_GROUP_AFTER_NAME = re.compile(
    r"\b(?P<word>[A-Z][A-Za-z'’\-]*)\s+\(?(?P<number>1[0-3]|[7-9])(?P<letters>[A-Z]{1,3})\b"
)
_NOT_FORM_GROUP_WORDS = {
    "flat",
    "room",
    "ward",
    "unit",
    "block",
    "bay",
    "suite",
    "gate",
    "apartment",
    "house",
    "floor",
    "platform",
    "bus",
    "route",
    "level",
    "studio",
    "building",
    "plot",
    "area",
    "zone",
    "court",
    "ks",
    "key",
    "stage",
    "grade",
    "size",
    "band",
    "table",
    "action",
}
_NOT_FORM_GROUP_LETTERS = {"AM", "PM", "GB", "KB", "MB", "TB", "G", "D", "K", "HR", "HRS", "MM", "CM", "KG"}

# Year mentions that describe staff or the past rather than the child's current year.
_YEAR_STAFF_BEFORE = re.compile(r"\bhead\s+of\s*$", re.IGNORECASE)
_YEAR_PAST_BEFORE = re.compile(
    r"\b(?:since|until|till|before|from|throughout|during|end\s+of|through)\s*$", re.IGNORECASE
)
_YEAR_STAFF_AFTER = re.compile(
    r"^\s*(?:lead|leader|team|manager|co-?ordinator|tutors?|teachers?|office|staff|pupils|students|cohort|went)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class YearGroupMention:
    """A year group in text: 0 is Reception. `kind` is "labelled", "year" or "form_group"."""

    value: int
    start: int
    kind: str


def _number_value(text: str) -> int:
    return int(text) if text.isdigit() else _NUMBER_WORDS[text.lower()]


def _is_current_year_mention(text: str, found: re.Match[str]) -> bool:
    before = text[max(0, found.start() - 25) : found.start()]
    after = text[found.end() : found.end() + 20]
    if _YEAR_STAFF_BEFORE.search(before) or _YEAR_PAST_BEFORE.search(before):
        return False
    return not _YEAR_STAFF_AFTER.search(after)


def find_year_group_mentions(text: str) -> list[YearGroupMention]:
    """Find year groups in text order, leaving out staff titles and past years."""
    mentions: list[YearGroupMention] = []

    for found in _LABELLED_YEAR.finditer(text):
        mentions.append(YearGroupMention(_number_value(found.group("number")), found.start(), "labelled"))

    for found in _YEAR_GROUP.finditer(text):
        if _is_current_year_mention(text, found):
            mentions.append(YearGroupMention(_number_value(found.group("number")), found.start(), "year"))

    for found in _RECEPTION.finditer(text):
        if _is_current_year_mention(text, found):
            mentions.append(YearGroupMention(0, found.start(), "year"))

    for found in _FORM_GROUP_LABELLED.finditer(text):
        mentions.append(YearGroupMention(int(found.group("number")), found.start(), "labelled"))

    for found in _FORM_GROUP_AFTER_NAME.finditer(text):
        if found.group("word").lower() in _NOT_FORM_GROUP_WORDS:
            continue
        if found.group("letters") in _NOT_FORM_GROUP_LETTERS:
            continue
        mentions.append(YearGroupMention(int(found.group("number")), found.start("number"), "form_group"))

    return sorted(mentions, key=lambda mention: mention.start)


def find_year_group(text: str) -> int | None:
    """Find the child's year group (Reception is 0): a labelled one, else the first mention."""
    mentions = find_year_group_mentions(text)
    if not mentions:
        return None

    labelled = [mention for mention in mentions if mention.kind == "labelled"]
    return (labelled or mentions)[0].value
