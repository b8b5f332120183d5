"""Export a panel agenda as printable HTML, DOCX, CSV or an ICS calendar invitation.

What each format shows, to keep personal data to what the panel needs:
- HTML, DOCX and CSV: case references and, unless `[panel] agenda_child_names = "none"`,
  the child's first name (or known-as name) with the last initial, such as "Sam T.". No
  full names, dates of birth, identifiers, subjects or message text. Action
  descriptions are printed as coordinators wrote them, with UPN- and NHS-number-shaped
  identifiers removed.
- ICS: the meeting's time, place and standing items with the number of cases under
  each, and no case references or names, because invitations are copied to phones and
  shared calendars.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timezone
from pathlib import Path

import icalendar
from docx import Document
from docx.shared import Pt
from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

from bot.config import Config
from bot.outcomes import NHS_SHAPED, UPN_SHAPED
from store.agenda import Agenda, AgendaEntry, ClockView

TEMPLATES = Path(__file__).resolve().parent / "templates"
FORMATS = ("html", "docx", "csv", "ics")
CSV_COLUMNS = ("item_number", "standing_item", "title", "case_reference", "child", "reason", "review_due",
               "overdue", "messages", "clocks", "action", "action_owner", "action_due", "action_status")

REASON_TEXT = {
    "queued": "New message",
    "review_due": "Review due",
    "review_overdue": "Review overdue",
    "aob": "Added by a coordinator",
}
CLOCK_TEXT = {
    "health_absence": "Health absence",
    "exclusion_sixth_day": "Sixth school day of permanent exclusion",
    "part_time_timetable": "Part-time timetable",
}
CLOCK_REASON_TEXT = {
    "reached_15_school_days": "15 school days reached",
    "expected_to_reach_15_school_days": "expected to reach 15 school days",
    "below_15_school_days": "below 15 school days",
    "permanent_exclusion": "provision due",
    "exclusion_date_missing": "exclusion date not known",
    "no_end_date": "no end date",
    "end_date_stated": "ends",
    "end_mentioned_without_date": "end mentioned, date not known",
}


def short_date(day: date | None) -> str:
    return f"{day.day} {day:%b %Y}" if day else ""


def long_date(day: date | datetime) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}"


def clock_time(moment: datetime) -> str:
    return f"{moment:%H:%M}"


def clock_text(clock: ClockView) -> str:
    """Describe a clock in a few words, such as "Sixth school day of permanent exclusion: provision due 8 May 2025"."""
    text = f"{CLOCK_TEXT.get(clock.kind, clock.kind)}: {CLOCK_REASON_TEXT.get(clock.reason, clock.reason)}"
    if clock.due_on:
        text += f" {short_date(clock.due_on)}"
    if clock.estimated:
        text += " (estimated)"
    return text


def entry_reason(entry: AgendaEntry) -> str:
    text = REASON_TEXT.get(entry.reason, entry.reason)
    if entry.review_due_on and entry.reason == "review_due":
        text += f" {short_date(entry.review_due_on)}"
    elif entry.review_due_on and entry.reason == "review_overdue":
        text += f" (due {short_date(entry.review_due_on)})"
    return text


def remove_identifiers(text: str) -> str:
    return NHS_SHAPED.sub("[identifier removed]", UPN_SHAPED.sub("[identifier removed]", text))


def _entry_title(entry: AgendaEntry) -> str:
    return remove_identifiers(entry.title)


def render_html(agenda: Agenda, config: Config) -> str:
    environment = SandboxedEnvironment(loader=FileSystemLoader(str(TEMPLATES)), undefined=StrictUndefined,
                                       autoescape=select_autoescape(["html.j2"]), trim_blocks=True,
                                       lstrip_blocks=True)
    environment.filters.update(short_date=short_date, long_date=long_date, clock_time=clock_time,
                               clock_text=clock_text, entry_reason=entry_reason)
    agenda = _minimised(agenda)
    return environment.get_template("agenda.html.j2").render(
        agenda=agenda, la_name=config.council.la_name, marking=config.routing.default_protective_marking,
        names_shown=config.panel.agenda_child_names != "none")


def render_csv(agenda: Agenda) -> str:
    """Render one row per case entry and per action, and one for each standing item with neither, in agenda order."""
    agenda = _minimised(agenda)
    output = io.StringIO()
    writer = csv.writer(output, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for number, section in enumerate(agenda.sections, start=1):
        blank = {column: "" for column in CSV_COLUMNS}
        blank.update(item_number=number, standing_item=section.title)
        rows = []
        for action in section.actions:
            rows.append({**blank, "case_reference": action.case_id or "", "action": f"{action.id}: {action.description}",
                         "action_owner": action.owner_email, "action_due": _iso(action.due_on),
                         "action_status": action.status, "overdue": "yes" if action.overdue else ""})
        for entry in section.entries:
            rows.append({**blank, "title": entry.title, "case_reference": entry.case_id or "",
                         "child": entry.child_label, "reason": entry.reason, "review_due": _iso(entry.review_due_on),
                         "overdue": "yes" if entry.overdue else "",
                         "messages": " ".join(f"#{message.pk}" for message in entry.messages),
                         "clocks": "; ".join(clock_text(clock) for clock in entry.clocks)})
        for row in rows or [blank]:
            writer.writerow([_spreadsheet_safe(row[column]) for column in CSV_COLUMNS])
    return output.getvalue()


def _spreadsheet_safe(value):
    """Prefix text that a spreadsheet would run as a formula with an apostrophe, which shows it as text.

    AOB titles, action descriptions and child names come from people and from mail, so an
    export opened in Excel or LibreOffice must not evaluate "=HYPERLINK(...)" or "@SUM(...)".
    """
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def render_docx(agenda: Agenda, config: Config) -> bytes:
    agenda = _minimised(agenda)
    document = Document()
    document.styles["Normal"].font.size = Pt(10)
    if config.routing.default_protective_marking:
        document.add_paragraph().add_run(config.routing.default_protective_marking).bold = True
    document.add_heading(f"{config.council.la_name}: CCAS panel", level=1)
    document.add_paragraph(f"{long_date(agenda.starts_at)}, {clock_time(agenda.starts_at)} to "
                           f"{clock_time(agenda.ends_at)}\n{agenda.location}")
    for notice in agenda.notices:
        document.add_paragraph(notice).runs[0].bold = True
    names_shown = config.panel.agenda_child_names != "none"

    for number, section in enumerate(agenda.sections, start=1):
        document.add_heading(f"{number}. {section.title}", level=2)
        if section.key == "welcomes":
            document.add_paragraph("Attendance and apologies are recorded in the meeting record.")
            continue
        if section.actions:
            _docx_table(document, ["Action", "Case", "Description", "Owner", "Due", "Status"], [
                [str(action.id), action.case_id or "", action.description, action.owner_email,
                 short_date(action.due_on) + (" (overdue)" if action.overdue else ""), action.status]
                for action in section.actions])
        if section.entries:
            headings = ["#", "Case"] + (["Child"] if names_shown else []) + ["Why on the agenda", "Messages", "Clocks"]
            rows = []
            for index, entry in enumerate(section.entries, start=1):
                case = entry.case_id or ""
                if entry.title:
                    case = f"{case}\n{entry.title}".strip()
                row = [str(index), case] + ([entry.child_label] if names_shown else [])
                row += [entry_reason(entry),
                        "\n".join(f"#{m.pk} {m.category.replace('_', ' ')}, {short_date(m.received_on)}"
                                  for m in entry.messages),
                        "\n".join(clock_text(clock) for clock in entry.clocks)]
                rows.append(row)
            _docx_table(document, headings, rows)
        if not section.entries and not section.actions:
            document.add_paragraph("Nothing queued.")

    output = io.BytesIO()
    document.save(output)
    return output.getvalue()


def _docx_table(document, headings: list[str], rows: list[list[str]]) -> None:
    table = document.add_table(rows=1, cols=len(headings))
    table.style = "Table Grid"
    for cell, heading in zip(table.rows[0].cells, headings):
        cell.text = heading
        cell.paragraphs[0].runs[0].bold = True
    for values in rows:
        cells = table.add_row().cells
        for cell, value in zip(cells, values):
            cell.text = value


def render_ics(agenda: Agenda, config: Config, now: datetime | None = None) -> bytes:
    """Build a METHOD:REQUEST invitation from the CCAS inbox to the configured panel members.

    The UID depends only on the meeting date and inbox domain, so sending the invitation
    again updates the calendar entry instead of adding a second one.
    """
    inbox = config.council.ccas_inbox
    domain = inbox.rpartition("@")[2]
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//ccas-bot//CCAS panel agenda//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "REQUEST")

    event = icalendar.Event()
    event.add("uid", f"ccas-panel-{agenda.meeting_date.isoformat()}@{domain}")
    event.add("dtstamp", (now or datetime.now(timezone.utc)).astimezone(timezone.utc))
    event.add("dtstart", agenda.starts_at)
    event.add("dtend", agenda.ends_at)
    event.add("summary", "CCAS panel meeting")
    event.add("location", agenda.location)
    event.add("description", _ics_description(agenda))
    event.add("sequence", 0)
    organizer = icalendar.vCalAddress(f"mailto:{inbox}")
    organizer.params["cn"] = "CCAS panel"
    event.add("organizer", organizer)
    for member in config.council.panel_members:
        event.add("attendee", icalendar.vCalAddress(f"mailto:{member}"),
                  parameters={"ROLE": "REQ-PARTICIPANT", "PARTSTAT": "NEEDS-ACTION", "RSVP": "TRUE"})
    calendar.add_component(event)
    calendar.add_missing_timezones()
    return calendar.to_ical()


def _ics_description(agenda: Agenda) -> str:
    lines = ["CCAS panel agenda. The full agenda is sent to panel members separately.", ""]
    for number, section in enumerate(agenda.sections, start=1):
        count = len(section.entries) + len(section.actions)
        suffix = "" if section.key == "welcomes" else f" ({count} {'item' if count == 1 else 'items'})"
        lines.append(f"{number}. {section.title}{suffix}")
    return "\n".join(lines)


def _minimised(agenda: Agenda) -> Agenda:
    """Return the agenda with identifiers removed from the free text it prints."""
    from dataclasses import replace

    sections = []
    for section in agenda.sections:
        actions = [replace(action, description=remove_identifiers(action.description)) for action in section.actions]
        entries = [replace(entry, title=_entry_title(entry)) for entry in section.entries]
        sections.append(replace(section, actions=actions, entries=entries))
    return replace(agenda, sections=sections)


def _iso(day: date | None) -> str:
    return day.isoformat() if day else ""


def render(agenda: Agenda, config: Config, output_format: str) -> bytes:
    """Render the agenda in one of FORMATS, as bytes ready to write to a file."""
    if output_format == "html":
        return render_html(agenda, config).encode("utf-8")
    if output_format == "csv":
        return render_csv(agenda).encode("utf-8")
    if output_format == "docx":
        return render_docx(agenda, config)
    if output_format == "ics":
        return render_ics(agenda, config)
    raise ValueError(f"format {output_format!r} is not one of {list(FORMATS)}")
