"""Statutory clocks, school days, bank holidays and panel meeting dates, on fixed dates."""

from __future__ import annotations

from datetime import date, timezone
from pathlib import Path

import pytest

from bot.clocks import ClockFacts, compute_clocks, exclusion_clock, facts_from_message, health_absence_clock
from bot.config import config_from_mapping
from bot.errors import ConfigError
from bot.panel_dates import check_meeting_day, meeting_start, next_meeting, previous_meeting
from bot.school_days import SchoolCalendar, england_and_wales, load_school_calendar, read_term_dates
from store.db import create_store_engine, upgrade_schema
from store.panel import PanelStore
from store.records import Store

TERM_DATES_TOML = """
[default]
terms = [
  { start = 2025-01-06, end = 2025-02-14 },
  { start = 2025-02-24, end = 2025-04-04 },
]
closures = [2025-03-07]

[schools.100001]
terms = [
  { start = 2025-01-06, end = 2025-02-21 },
  { start = 2025-03-03, end = 2025-04-04 },
]
"""


def panel_config(tmp_path: Path, **panel):
    return config_from_mapping({"panel": panel}, base_dir=tmp_path)


def term_calendar(tmp_path: Path) -> SchoolCalendar:
    path = tmp_path / "terms.toml"
    path.write_text(TERM_DATES_TOML, encoding="utf-8")
    return load_school_calendar(panel_config(tmp_path, term_dates_file="terms.toml"))


# Meeting dates ------------------------------------------------------------------


def test_wednesday_panel_skips_christmas_and_new_year(tmp_path):
    config = panel_config(tmp_path, meeting_weekday="wednesday")

    assert next_meeting(config, date(2024, 12, 23)) == date(2025, 1, 8)
    assert check_meeting_day(config, date(2024, 12, 25)).reason == "bank_holiday"
    assert check_meeting_day(config, date(2024, 12, 25)).detail == "Christmas Day"


def test_monday_panel_skips_spring_bank_holiday(tmp_path):
    config = panel_config(tmp_path, meeting_weekday="monday")

    assert next_meeting(config, date(2025, 5, 20)) == date(2025, 6, 2)


def test_meeting_day_itself_is_next(tmp_path):
    config = panel_config(tmp_path)

    assert next_meeting(config, date(2025, 1, 8)) == date(2025, 1, 8)


def test_no_meeting_dates_skipped(tmp_path):
    config = panel_config(tmp_path, no_meeting_dates=["2025-01-08"])

    assert next_meeting(config, date(2025, 1, 2)) == date(2025, 1, 15)
    assert check_meeting_day(config, date(2025, 1, 8)).reason == "no_meeting_date"


def test_previous_meeting_skips_holidays(tmp_path):
    config = panel_config(tmp_path)

    assert previous_meeting(config, date(2025, 1, 8)) == date(2024, 12, 18)


def test_meeting_start_in_british_summer_time(tmp_path):
    config = panel_config(tmp_path, meeting_time="10:00")

    start = meeting_start(config, date(2025, 7, 2))

    assert start.astimezone(timezone.utc).hour == 9
    assert meeting_start(config, date(2025, 1, 8)).astimezone(timezone.utc).hour == 10


def test_invalid_meeting_time_rejected(tmp_path):
    with pytest.raises(ConfigError, match="panel.meeting_time"):
        panel_config(tmp_path, meeting_time="9am")


def test_bank_holidays_load_without_network(monkeypatch):
    import requests

    def no_network(*args, **kwargs):
        raise AssertionError("the bank holiday list must not be downloaded")

    monkeypatch.setattr(requests, "get", no_network)
    england_and_wales.cache_clear()
    try:
        holidays = england_and_wales()
    finally:
        england_and_wales.cache_clear()

    assert holidays.is_bank_holiday(date(2025, 5, 26))
    assert not holidays.is_bank_holiday(date(2025, 5, 27))
    assert holidays.covers(date(2025, 1, 1))


# School days -------------------------------------------------------------------


def test_sixth_day_across_weekend_and_bank_holiday():
    calendar = SchoolCalendar(bank_holidays=england_and_wales())
    facts = ClockFacts(reason="exclusion", exclusion_date=date(2025, 4, 30), permanent_exclusion=True)

    entry = exclusion_clock(facts, calendar)

    # Wed 30 Apr, Thu 1, Fri 2, (weekend, Mon 5 May bank holiday), Tue 6, Wed 7, Thu 8.
    assert entry.due_on == date(2025, 5, 8)
    assert entry.flagged
    assert entry.estimated


def test_sixth_day_from_saturday_starts_monday():
    calendar = SchoolCalendar(bank_holidays=england_and_wales())
    facts = ClockFacts(exclusion_date=date(2025, 3, 8), permanent_exclusion=True)

    assert exclusion_clock(facts, calendar).due_on == date(2025, 3, 17)


def test_sixth_day_skips_half_term(tmp_path):
    calendar = term_calendar(tmp_path)
    facts = ClockFacts(exclusion_date=date(2025, 2, 12), permanent_exclusion=True)

    entry = exclusion_clock(facts, calendar)

    # Wed 12, Thu 13, Fri 14 Feb; half term; Mon 24, Tue 25, Wed 26.
    assert entry.due_on == date(2025, 2, 26)
    assert not entry.estimated


def test_sixth_day_skips_closure_day(tmp_path):
    calendar = term_calendar(tmp_path)
    facts = ClockFacts(exclusion_date=date(2025, 3, 5), permanent_exclusion=True)

    # Wed 5, Thu 6, (Fri 7 closed), Mon 10, Tue 11, Wed 12, Thu 13.
    assert exclusion_clock(facts, calendar).due_on == date(2025, 3, 13)


def test_school_terms_override_default(tmp_path):
    calendar = term_calendar(tmp_path)
    facts = ClockFacts(exclusion_date=date(2025, 2, 19), permanent_exclusion=True)

    entry = exclusion_clock(facts, calendar, school_urn="100001")

    # Wed 19, Thu 20, Fri 21 Feb; that school's half term; Mon 3, Tue 4, Wed 5 Mar.
    assert entry.due_on == date(2025, 3, 5)


def test_outside_term_dates_estimated(tmp_path):
    calendar = term_calendar(tmp_path)
    facts = ClockFacts(exclusion_date=date(2025, 6, 2), permanent_exclusion=True)

    assert exclusion_clock(facts, calendar).estimated


def test_term_dates_from_csv(tmp_path):
    path = tmp_path / "terms.csv"
    path.write_text("urn,kind,start,end\n,term,2025-01-06,2025-02-14\n,closure,2025-01-10,\n"
                    "100001,term,2025-01-06,2025-02-21\n", encoding="utf-8")

    default, schools = read_term_dates(path)

    assert default.terms == ((date(2025, 1, 6), date(2025, 2, 14)),)
    assert date(2025, 1, 10) in default.closures
    assert schools["100001"].terms[0][1] == date(2025, 2, 21)


def test_missing_term_dates_file_rejected(tmp_path):
    config = panel_config(tmp_path, term_dates_file="absent.toml")

    with pytest.raises(ConfigError, match="panel.term_dates_file"):
        load_school_calendar(config)


def test_term_ending_before_start_rejected(tmp_path):
    path = tmp_path / "terms.toml"
    path.write_text("[default]\nterms = [{ start = 2025-02-14, end = 2025-01-06 }]\n", encoding="utf-8")

    with pytest.raises(ConfigError, match="starts after it ends"):
        read_term_dates(path)


# Clocks ------------------------------------------------------------------------


def test_health_absence_fifteen_days_flagged():
    entry = health_absence_clock(ClockFacts(reason="illness", absence_days=15))

    assert entry.flagged
    assert entry.reason == "reached_15_school_days"


def test_health_absence_fourteen_days_not_flagged():
    entry = health_absence_clock(ClockFacts(reason="illness", absence_days=14))

    assert not entry.flagged


def test_expected_absence_flagged():
    facts = facts_from_message({"reason": "illness", "absence_days": 3},
                               "Her consultant has signed her off for 4 weeks after surgery.", date(2025, 1, 6))

    entry = health_absence_clock(facts)

    assert facts.expected_absence_days == 20
    assert entry.flagged
    assert entry.reason == "expected_to_reach_15_school_days"


def test_absence_for_exclusion_starts_no_health_clock():
    assert health_absence_clock(ClockFacts(reason="exclusion", absence_days=30)) is None


def test_permanent_exclusion_read_from_text():
    facts = facts_from_message({"reason": "exclusion", "exclusion_date": "2025-04-30"},
                               "He was permanently excluded on 30 April 2025.", date(2025, 5, 1))
    calendar = SchoolCalendar(bank_holidays=england_and_wales())

    kinds = [entry.kind for entry in compute_clocks(facts, calendar)]

    assert kinds == ["exclusion_sixth_day"]


def test_suspension_starts_no_clock():
    facts = facts_from_message({"reason": "exclusion", "exclusion_date": "2025-04-30"},
                               "He has been suspended for three days from 30 April 2025.", date(2025, 5, 1))

    assert compute_clocks(facts, SchoolCalendar(bank_holidays=england_and_wales())) == []


def test_permanent_exclusion_without_date_flagged():
    entry = exclusion_clock(ClockFacts(permanent_exclusion=True), SchoolCalendar(bank_holidays=england_and_wales()))

    assert entry.flagged
    assert entry.reason == "exclusion_date_missing"
    assert entry.due_on is None


def test_part_time_without_end_flagged():
    facts = facts_from_message({}, "She is on a part-time timetable, mornings only.", date(2025, 1, 6))

    entries = compute_clocks(facts, SchoolCalendar(bank_holidays=england_and_wales()))

    assert [(entry.kind, entry.flagged) for entry in entries] == [("part_time_timetable", True)]


def test_part_time_with_end_date_not_flagged():
    facts = facts_from_message({}, "He is on a reduced timetable until 14 March 2025.", date(2025, 1, 6))

    entries = compute_clocks(facts, SchoolCalendar(bank_holidays=england_and_wales()))

    assert [(entry.kind, entry.flagged, entry.due_on) for entry in entries] == [
        ("part_time_timetable", False, date(2025, 3, 14))]


def test_clocks_stored_one_per_kind(tmp_path):
    engine = create_store_engine(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    upgrade_schema(engine)
    store = Store(engine)
    store.upsert_cases([{"id": "CCAS-2025-0001", "first_name": "Sam", "last_name": "Taylor"}])
    panel = PanelStore(store, panel_config(tmp_path))
    calendar = SchoolCalendar(bank_holidays=england_and_wales())
    first = compute_clocks(ClockFacts(exclusion_date=date(2025, 4, 30), permanent_exclusion=True), calendar)
    second = compute_clocks(ClockFacts(exclusion_date=date(2025, 5, 6), permanent_exclusion=True), calendar)

    panel.record_clocks("CCAS-2025-0001", first)
    panel.record_clocks("CCAS-2025-0001", second)
    clocks = panel.case_clocks("CCAS-2025-0001")

    assert len(clocks) == 1
    assert clocks[0].due_on == date(2025, 5, 13)
