"""Statutory clocks on a case, computed from the facts a message gives.

- Health absence: the council should arrange education for a child whose illness keeps
  them out of school for 15 school days or more, in one absence or added up over the
  school year ("Arranging education for children who cannot attend school because of
  health needs", DfE statutory guidance, December 2023). A case is flagged when the
  stated absence reaches 15 days or a message expects it to.
- Permanent exclusion: the council must arrange full-time education from the sixth
  school day of a permanent exclusion (Education (Provision of Full-Time Education for
  Excluded Pupils) (England) Regulations 2007). The exclusion date is taken as the
  first day of the exclusion, counted as day 1 when it is a school day.
- Part-time timetable: DfE attendance guidance expects a part-time timetable to be
  time-limited, so one with no stated end date is flagged.

The functions are pure: they take the facts and a SchoolCalendar and return ClockEntry
values for the store (store.panel.PanelStore.record_clocks) and the web app.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from bot.school_days import SchoolCalendar
from parsers.identifiers import parse_uk_date

HEALTH_ABSENCE_THRESHOLD_DAYS = 15
EXCLUSION_PROVISION_SCHOOL_DAY = 6
# An estimate for "off for two months": about 20 school days in a month.
SCHOOL_DAYS_PER_MONTH = 20

PERMANENT_EXCLUSION = re.compile(r"\bpermanent(?:ly)?\s+exclu(?:ded|sion)\b|\bPEX\b", re.I)
NOT_PERMANENT = re.compile(r"\bnot\s+(?:been\s+)?permanently\s+excluded\b|\bnot\s+a\s+permanent\s+exclusion\b", re.I)
PART_TIME = re.compile(r"\b(?:part[- ]time|reduced|partial)\s+timetable\b", re.I)
PART_TIME_END = re.compile(r"\buntil\b|\bend(?:s|ing)?\b|\bfinish(?:es|ing)?\b|\breview(?:ed)?\s+(?:on|by)\b"
                           r"|\bfor\s+(?:the\s+next\s+)?(?:\d{1,2}|one|two|three|four|five|six)\s+weeks\b", re.I)
_COUNT_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                "nine": 9, "ten": 10, "twelve": 12}
EXPECTED_ABSENCE = re.compile(
    r"\b(?:expected|likely|going|signed\s+(?:\w+\s+)?off|will\s+(?:be|need|have)|unable\s+to\s+attend|won'?t\s+be\s+(?:back|able))"
    r"[^.\n]{0,40}?\bfor\s+(?:at\s+least\s+|the\s+next\s+|another\s+|a\s+further\s+)?"
    r"(\d{1,3}|" + "|".join(_COUNT_WORDS) + r")\s+(?:more\s+)?(?:school\s+)?(days?|weeks?|months?)\b",
    re.I)


@dataclass(frozen=True)
class ClockFacts:
    """Facts from a message that can start a statutory clock."""

    reason: str | None = None  # "illness" | "exclusion" | "other", as parsers.extract gives it
    absence_days: int | None = None
    expected_absence_days: int | None = None
    exclusion_date: date | None = None
    permanent_exclusion: bool = False
    part_time_timetable: bool = False
    part_time_end_stated: bool = False
    part_time_end_date: date | None = None


@dataclass(frozen=True)
class ClockEntry:
    """One statutory clock: what it is, whether it needs attention, and its dates."""

    kind: str  # "health_absence", "exclusion_sixth_day" or "part_time_timetable"
    flagged: bool
    reason: str
    started_on: date | None = None
    due_on: date | None = None
    estimated: bool = False


def health_absence_clock(facts: ClockFacts) -> ClockEntry | None:
    """Flag a health absence that has reached, or is expected to reach, 15 school days."""
    if facts.reason != "illness":
        return None
    if facts.absence_days is not None and facts.absence_days >= HEALTH_ABSENCE_THRESHOLD_DAYS:
        return ClockEntry("health_absence", True, "reached_15_school_days")
    if facts.expected_absence_days is not None and facts.expected_absence_days >= HEALTH_ABSENCE_THRESHOLD_DAYS:
        return ClockEntry("health_absence", True, "expected_to_reach_15_school_days")
    if facts.absence_days is not None or facts.expected_absence_days is not None:
        return ClockEntry("health_absence", False, "below_15_school_days")
    return None


def exclusion_clock(facts: ClockFacts, calendar: SchoolCalendar, school_urn: str = "") -> ClockEntry | None:
    """Return the sixth school day of a permanent exclusion as the due date for provision."""
    if not facts.permanent_exclusion:
        return None
    if facts.exclusion_date is None:
        return ClockEntry("exclusion_sixth_day", True, "exclusion_date_missing")
    due, estimated = calendar.nth_school_day(facts.exclusion_date, EXCLUSION_PROVISION_SCHOOL_DAY, school_urn)
    return ClockEntry("exclusion_sixth_day", True, "permanent_exclusion", started_on=facts.exclusion_date,
                      due_on=due, estimated=estimated)


def part_time_clock(facts: ClockFacts) -> ClockEntry | None:
    """Flag a part-time timetable with no end date; one with an end date is shown, not flagged."""
    if not facts.part_time_timetable:
        return None
    if facts.part_time_end_date is not None:
        return ClockEntry("part_time_timetable", False, "end_date_stated", due_on=facts.part_time_end_date)
    if facts.part_time_end_stated:
        return ClockEntry("part_time_timetable", False, "end_mentioned_without_date")
    return ClockEntry("part_time_timetable", True, "no_end_date")


def compute_clocks(facts: ClockFacts, calendar: SchoolCalendar, school_urn: str = "") -> list[ClockEntry]:
    """Return every clock the facts start, in a fixed order."""
    entries = [health_absence_clock(facts), exclusion_clock(facts, calendar, school_urn), part_time_clock(facts)]
    return [entry for entry in entries if entry is not None]


def facts_from_message(extracted: dict, text: str, today: date) -> ClockFacts:
    """Build ClockFacts from a stored message's `extracted` details and its new text.

    `extracted` is the dictionary the intake stores on Message.extracted, with dates as
    ISO strings. The text adds what parsers.extract does not read: whether an exclusion
    is permanent, an expected length of absence and a part-time timetable.
    """
    exclusion_date = extracted.get("exclusion_date")
    if isinstance(exclusion_date, str) and exclusion_date:
        exclusion_date = date.fromisoformat(exclusion_date)
    reason = extracted.get("reason")
    end_stated, end_date = _part_time_end(text, today)
    return ClockFacts(
        reason=reason,
        absence_days=extracted.get("absence_days"),
        expected_absence_days=expected_absence_days(text),
        exclusion_date=exclusion_date or None,
        permanent_exclusion=bool(PERMANENT_EXCLUSION.search(text)) and not NOT_PERMANENT.search(text),
        part_time_timetable=bool(PART_TIME.search(text)),
        part_time_end_stated=end_stated,
        part_time_end_date=end_date,
    )


def expected_absence_days(text: str) -> int | None:
    """Read an expected absence ("signed off for 4 weeks") as school days: a week is 5, a month 20."""
    found = EXPECTED_ABSENCE.search(text)
    if not found:
        return None
    count_text, unit = found.group(1).lower(), found.group(2).lower()
    count = int(count_text) if count_text.isdigit() else _COUNT_WORDS[count_text]
    if unit.startswith("week"):
        return count * 5
    if unit.startswith("month"):
        return count * SCHOOL_DAYS_PER_MONTH
    return count


def _part_time_end(text: str, today: date) -> tuple[bool, date | None]:
    """Return whether the sentence naming a part-time timetable gives an end, and its date."""
    for found in PART_TIME.finditer(text):
        start = max(text.rfind(".", 0, found.start()), text.rfind("\n", 0, found.start())) + 1
        stop_match = re.search(r"[.!?\n]", text[found.end():])
        stop = found.end() + (stop_match.start() if stop_match else len(text) - found.end())
        sentence = text[start:stop]
        if PART_TIME_END.search(sentence):
            end = parse_uk_date(sentence[found.end() - start:], today)
            # A date without a year is read as the latest one on or before today, which
            # cannot be the end of a timetable still running, so only a later date counts.
            return True, end if end is not None and end >= today else None
    return False, None
