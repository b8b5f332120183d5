"""Bank holidays, school term dates and school-day counting.

Bank holidays are the England and Wales list shipped inside the govuk-bank-holidays
package (version 0.19 ships 2012 to 2028). The package can download a fresh list from
GOV.UK, but this module always passes `use_cached_holidays=True`, so it never opens a
network connection. Outside the years the list covers, no date is known to be a bank
holiday, and `BankHolidayCalendar.covers` returns False so callers can say so.

Term dates come from the file named by `[panel] term_dates_file`: a TOML or CSV file
with a default list of terms and, optionally, a list per school URN. A date inside the
span of a school's terms is a school day when it falls in a term, on a weekday, and is
neither a bank holiday nor a listed closure (such as an INSET day). Outside that span,
or when no file is configured, every weekday that is not a bank holiday counts, and the
result is marked estimated.
"""

from __future__ import annotations

import csv
import functools
import tomllib
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from govuk_bank_holidays.bank_holidays import BankHolidays

from bot.config import Config
from bot.errors import ConfigError

DIVISION = BankHolidays.ENGLAND_AND_WALES
DEFAULT_SCHOOL = "default"


@dataclass(frozen=True)
class BankHolidayCalendar:
    """Bank holiday dates with their titles, and the years the list covers."""

    titles: dict[date, str]
    first_year: int
    last_year: int

    def is_bank_holiday(self, day: date) -> bool:
        return day in self.titles

    def title(self, day: date) -> str:
        return self.titles.get(day, "")

    def covers(self, day: date) -> bool:
        """Return whether the list covers the year of `day`, so a missing date is a working day."""
        return self.first_year <= day.year <= self.last_year


@functools.cache
def england_and_wales() -> BankHolidayCalendar:
    """Load the England and Wales bank holidays from the package's cached JSON, offline."""
    holidays = BankHolidays(use_cached_holidays=True).get_holidays(division=DIVISION)
    titles = {holiday["date"]: holiday["title"] for holiday in holidays}
    years = [day.year for day in titles]
    return BankHolidayCalendar(titles=titles, first_year=min(years), last_year=max(years))


@dataclass(frozen=True)
class TermDates:
    """One school's terms (first and last day, inclusive) and its closure days within them."""

    terms: tuple[tuple[date, date], ...]
    closures: frozenset[date] = frozenset()

    def covers(self, day: date) -> bool:
        return bool(self.terms) and self.terms[0][0] <= day <= self.terms[-1][1]

    def in_term(self, day: date) -> bool:
        return any(start <= day <= end for start, end in self.terms) and day not in self.closures


@dataclass(frozen=True)
class SchoolCalendar:
    """School days per school, from bank holidays and term dates."""

    bank_holidays: BankHolidayCalendar
    default_terms: TermDates | None = None
    school_terms: dict[str, TermDates] = field(default_factory=dict)

    def terms_for(self, urn: str) -> TermDates | None:
        return self.school_terms.get(urn) or self.default_terms

    def is_school_day(self, day: date, urn: str = "") -> tuple[bool, bool]:
        """Return (whether `day` is a school day, whether that result is estimated)."""
        weekday_open = day.weekday() < 5 and not self.bank_holidays.is_bank_holiday(day)
        estimated = not self.bank_holidays.covers(day)
        terms = self.terms_for(urn)
        if terms is None or not terms.covers(day):
            return weekday_open, True
        return weekday_open and terms.in_term(day), estimated

    def nth_school_day(self, first_day: date, count: int, urn: str = "") -> tuple[date, bool]:
        """Return the `count`-th school day counting `first_day` as day 1 when it is a school day.

        The second value is True when any day counted was estimated.
        """
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        day = first_day
        counted = 0
        estimated = False
        # A year of days is far more than any school holiday, so a gap in the term
        # dates cannot make this loop run for ever.
        for _ in range(366 + count * 7):
            is_open, guessed = self.is_school_day(day, urn)
            estimated = estimated or guessed
            if is_open:
                counted += 1
                if counted == count:
                    return day, estimated
            day += timedelta(days=1)
        raise ValueError(f"no {count} school days found within a year of {first_day.isoformat()}")


def load_school_calendar(config: Config) -> SchoolCalendar:
    """Build the school calendar from the bank holidays and `[panel] term_dates_file`."""
    value = config.panel.term_dates_file
    if not value:
        return SchoolCalendar(bank_holidays=england_and_wales())
    path = config.path(value)
    if not path.is_file():
        raise ConfigError("panel.term_dates_file", f"file {str(path)!r} not found",
                          "create it (see docs/panel.md) or set the key to \"\"")
    default, schools = read_term_dates(path)
    return SchoolCalendar(bank_holidays=england_and_wales(), default_terms=default, school_terms=schools)


def read_term_dates(path: Path) -> tuple[TermDates | None, dict[str, TermDates]]:
    """Read a term dates file: TOML by the `.toml` suffix, otherwise CSV."""
    try:
        if path.suffix.lower() == ".toml":
            lists = _read_toml(path)
        else:
            lists = _read_csv(path)
    except (ValueError, KeyError, TypeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError("panel.term_dates_file", f"{path} is not a valid term dates file ({error})",
                          "see docs/panel.md for the format") from None

    calendars = {urn: TermDates(terms=tuple(sorted(terms)), closures=frozenset(closures))
                 for urn, (terms, closures) in lists.items()}
    default = calendars.pop(DEFAULT_SCHOOL, None)
    return default, calendars


def _read_toml(path: Path) -> dict[str, tuple[list, list]]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    tables = {}
    if "default" in data:
        tables[DEFAULT_SCHOOL] = data["default"]
    for urn, table in data.get("schools", {}).items():
        tables[str(urn)] = table
    unknown = set(data) - {"default", "schools"}
    if unknown:
        raise ValueError(f"unknown tables {sorted(unknown)}; use [default] and [schools.URN]")

    lists = {}
    for urn, table in tables.items():
        terms = [(_as_date(term["start"]), _as_date(term["end"])) for term in table.get("terms", [])]
        closures = [_as_date(value) for value in table.get("closures", [])]
        lists[urn] = (_checked(terms, urn), closures)
    return lists


def _read_csv(path: Path) -> dict[str, tuple[list, list]]:
    lists: dict[str, tuple[list, list]] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            urn = (row.get("urn") or "").strip() or DEFAULT_SCHOOL
            kind = (row.get("kind") or "term").strip().lower()
            start = _as_date(row["start"].strip())
            end = _as_date((row.get("end") or "").strip() or row["start"].strip())
            terms, closures = lists.setdefault(urn, ([], []))
            if kind == "term":
                terms.append((start, end))
            elif kind == "closure":
                closures.extend(start + timedelta(days=offset) for offset in range((end - start).days + 1))
            else:
                raise ValueError(f"line {line}: kind {kind!r} is not term or closure")
    for urn, (terms, _closures) in lists.items():
        _checked(terms, urn)
    return lists


def _as_date(value) -> date:
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _checked(terms: list[tuple[date, date]], urn: str) -> list[tuple[date, date]]:
    for start, end in terms:
        if end < start:
            raise ValueError(f"{urn}: term ending {end.isoformat()} starts after it ends")
    return terms
