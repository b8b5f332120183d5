"""Panel meeting dates: the configured weekday, skipping bank holidays and no-meeting days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.config import WEEKDAYS, Config
from bot.school_days import BankHolidayCalendar, england_and_wales

# A year of weeks: even a run of bank holidays and closures leaves a meeting within it.
MAX_WEEKS_SEARCHED = 53


@dataclass(frozen=True)
class MeetingDay:
    """A date checked against the meeting rules, with the reason code when it is no meeting date."""

    day: date
    is_meeting: bool
    reason: str = ""
    detail: str = ""


def check_meeting_day(config: Config, day: date,
                      holidays: BankHolidayCalendar | None = None) -> MeetingDay:
    """Check one date against the meeting weekday, the bank holidays and `no_meeting_dates`."""
    holidays = holidays or england_and_wales()
    panel = config.panel
    if WEEKDAYS[day.weekday()] != panel.meeting_weekday:
        return MeetingDay(day, False, "not_meeting_weekday", f"the panel meets on {panel.meeting_weekday.title()}s")
    if holidays.is_bank_holiday(day):
        return MeetingDay(day, False, "bank_holiday", holidays.title(day))
    if day.isoformat() in panel.no_meeting_dates:
        return MeetingDay(day, False, "no_meeting_date", "listed in panel.no_meeting_dates")
    return MeetingDay(day, True)


def next_meeting(config: Config, today: date, holidays: BankHolidayCalendar | None = None) -> date:
    """Return the first meeting date on or after `today`."""
    holidays = holidays or england_and_wales()
    offset = (WEEKDAYS.index(config.panel.meeting_weekday) - today.weekday()) % 7
    day = today + timedelta(days=offset)
    for _ in range(MAX_WEEKS_SEARCHED):
        if check_meeting_day(config, day, holidays).is_meeting:
            return day
        day += timedelta(weeks=1)
    raise ValueError(f"no meeting date within {MAX_WEEKS_SEARCHED} weeks of {today.isoformat()}")


def previous_meeting(config: Config, before: date, holidays: BankHolidayCalendar | None = None) -> date | None:
    """Return the last meeting date strictly before `before`, or None within a year."""
    holidays = holidays or england_and_wales()
    offset = (before.weekday() - WEEKDAYS.index(config.panel.meeting_weekday)) % 7 or 7
    day = before - timedelta(days=offset)
    for _ in range(MAX_WEEKS_SEARCHED):
        if check_meeting_day(config, day, holidays).is_meeting:
            return day
        day -= timedelta(weeks=1)
    return None


def meeting_start(config: Config, day: date) -> datetime:
    """Return the meeting's start as an aware datetime in the configured timezone."""
    hours, minutes = (int(part) for part in config.panel.meeting_time.split(":"))
    return datetime.combine(day, time(hours, minutes), tzinfo=ZoneInfo(config.bot.timezone))


def meeting_end(config: Config, day: date) -> datetime:
    return meeting_start(config, day) + timedelta(minutes=config.panel.meeting_duration_minutes)
