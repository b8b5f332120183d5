"""The `agenda`, `meeting` and `reminders` commands, for coordinators until the web app exists."""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import sys
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.agenda_export import FORMATS, render
from bot.config import Config
from bot.panel_dates import check_meeting_day, next_meeting
from store.panel import DECISION_KINDS, Attendee, PanelStore

EXIT_INVALID = 2


def register(subparsers) -> None:
    agenda = subparsers.add_parser("agenda", help="export the agenda of a panel meeting")
    agenda.add_argument("--meeting", type=_date, help="meeting date, YYYY-MM-DD (default: the next meeting from today)")
    agenda.add_argument("--format", choices=FORMATS, default="html", help="output format (default: html)")
    agenda.add_argument("--output", type=Path,
                        help="file to write (default: standard output; a DOCX goes to ccas-panel-agenda-DATE.docx)")
    agenda.add_argument("--today", type=_date, help=argparse.SUPPRESS)
    agenda.set_defaults(handler=run_agenda)

    reminders = subparsers.add_parser("reminders", help="queue reminders to owners of actions due soon")
    reminders.add_argument("--once", action="store_true", required=True, help="queue the reminders once and exit")
    reminders.add_argument("--today", type=_date, help="count due dates from this date (default: today)")
    reminders.set_defaults(handler=run_reminders)

    meeting = subparsers.add_parser("meeting", help="record a panel meeting and review its outcome emails")
    commands = meeting.add_subparsers(required=True, metavar="ACTION")

    record = commands.add_parser("record", help="record attendance, decisions and actions from a JSON file")
    record.add_argument("--date", type=_date, required=True, help="meeting date, YYYY-MM-DD")
    record.add_argument("--decisions", type=Path, required=True, help="JSON file; see docs/panel.md")
    record.add_argument("--no-drafts", action="store_true", help="do not draft the outcome emails yet")
    record.set_defaults(handler=run_record)

    show = commands.add_parser("show", help="print a meeting's record")
    show.add_argument("--date", type=_date, required=True, help="the meeting's date, as YYYY-MM-DD")
    show.set_defaults(handler=run_show)

    drafts = commands.add_parser("drafts", help="list outcome emails waiting for approval")
    drafts.set_defaults(handler=run_drafts)

    show_draft = commands.add_parser("show-draft", help="print one draft outcome email")
    show_draft.add_argument("id", type=int)
    show_draft.set_defaults(handler=run_show_draft)

    approve = commands.add_parser("approve", help="approve a draft; the next poll sends it")
    approve.add_argument("id", type=int)
    approve.add_argument("--coordinator", required=True, help="your email address, recorded with the approval")
    approve.set_defaults(handler=run_approve)

    reject = commands.add_parser("reject", help="reject a draft so it is never sent")
    reject.add_argument("id", type=int)
    reject.add_argument("--coordinator", required=True, help="your email address, recorded with the rejection")
    reject.add_argument("--reason", default="", help="why, kept in the case chronology")
    reject.set_defaults(handler=run_reject)

    aob = commands.add_parser("aob", help="add an item under AOB")
    aob.add_argument("--date", type=_date, required=True, help="the meeting's date, as YYYY-MM-DD")
    aob.add_argument("--title", required=True, help="a short heading, without the child's name")
    aob.add_argument("--case", help="case reference, if the item is about a case")
    aob.set_defaults(handler=run_aob)

    action = commands.add_parser("action", help="mark an action done or open")
    action.add_argument("id", type=int)
    action.add_argument("--status", choices=["open", "done"], required=True, help="the action's new status")
    action.set_defaults(handler=run_action)


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date; write it as YYYY-MM-DD") from None


def _today(config: Config) -> date:
    return datetime.now(ZoneInfo(config.bot.timezone)).date()


def _open(args) -> tuple[Config, PanelStore]:
    from bot.app import open_store
    from bot.cli import load

    config = load(args)
    return config, PanelStore(open_store(config), config)


def _fail(message: str) -> int:
    print(f"ccas-bot: {message}", file=sys.stderr)
    return EXIT_INVALID


def run_agenda(args) -> int:
    config, panel = _open(args)
    today = args.today or _today(config)
    meeting_date = args.meeting or next_meeting(config, today, panel.holidays)
    day = check_meeting_day(config, meeting_date, panel.holidays)
    if not day.is_meeting and panel.get_meeting(meeting_date) is None:
        upcoming = next_meeting(config, meeting_date, panel.holidays)
        return _fail(f"{meeting_date.isoformat()} is not a panel meeting date ({day.detail}); "
                     f"the next one is {upcoming.isoformat()}")

    data = render(panel.list_agenda(meeting_date), config, args.format)
    output = args.output
    if output is None and args.format == "docx":
        output = Path(f"ccas-panel-agenda-{meeting_date.isoformat()}.docx")
    if output is None:
        sys.stdout.write(data.decode("utf-8"))
        return 0
    output.write_bytes(data)
    print(f"agenda for {meeting_date.isoformat()} written to {output}")
    return 0


def run_reminders(args) -> int:
    from bot.outcomes import send_action_reminders

    config, panel = _open(args)
    queued = send_action_reminders(panel.store, config, args.today or _today(config))
    print(f"{len(queued)} reminders queued; the next poll sends them")
    return 0


def run_record(args) -> int:
    from bot.outcomes import draft_outcomes

    config, panel = _open(args)
    try:
        record = json.loads(args.decisions.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return _fail(f"file {args.decisions} not found")
    except json.JSONDecodeError as error:
        return _fail(f"{args.decisions} is not valid JSON ({error})")
    try:
        summary = record_meeting(panel, args.date, record, _today(config))
    except (ValueError, KeyError, TypeError) as error:
        return _fail(f"meeting not recorded: {error}")
    print(f"meeting {summary['meeting_id']} on {args.date.isoformat()}: {summary['attendance']} attendees, "
          f"{summary['decisions']} decisions, actions {summary['actions'] or 'none'}")
    if not args.no_drafts:
        drafts = draft_outcomes(panel.store, config, summary["meeting_id"])
        print(f"{len(drafts.drafted)} outcome emails drafted; list them with `ccas-bot meeting drafts`")
        for case_id, reason in sorted(drafts.skipped.items()):
            print(f"  {case_id}: no draft ({reason.replace('_', ' ')})")
    return 0


def record_meeting(panel: PanelStore, meeting_date: date, record: dict, today: date) -> dict:
    """Record a meeting from the JSON structure documented in docs/panel.md; return counts and action ids.

    Each part is its own transaction, in order, so a failure part-way leaves the earlier
    parts recorded. Running the same file again replaces attendance and decisions, but
    adds its actions a second time.
    """
    if not isinstance(record, dict):
        raise ValueError("the file must hold a JSON object")
    unknown = set(record) - {"notes", "extraordinary", "attendance", "decisions", "actions"}
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}")
    for decision in record.get("decisions", []):
        if decision["decision"] not in DECISION_KINDS:
            raise ValueError(f"decision {decision['decision']!r} is not one of {sorted(DECISION_KINDS)}")

    meeting_id = panel.create_meeting(meeting_date, today, notes=record.get("notes", ""),
                                      extraordinary=bool(record.get("extraordinary", False)))
    attendance = [Attendee(name=person["name"], email=person.get("email", ""),
                           organisation=person.get("organisation", ""), attended=person.get("attended", True))
                  for person in record.get("attendance", [])]
    panel.record_attendance(meeting_id, attendance)
    for decision in record.get("decisions", []):
        panel.record_decision(meeting_id, decision["case"], decision["decision"], decision.get("summary", ""))
    actions = []
    for action in record.get("actions", []):
        due = date.fromisoformat(action["due"]) if action.get("due") else None
        actions.append(panel.add_action(meeting_id, action["owner"], action["description"],
                                        case_id=action.get("case"), due_on=due))
    return {"meeting_id": meeting_id, "attendance": len(attendance),
            "decisions": len(record.get("decisions", [])), "actions": actions}


def run_show(args) -> int:
    _config, panel = _open(args)
    meeting = panel.get_meeting(args.date)
    if meeting is None:
        return _fail(f"no meeting recorded on {args.date.isoformat()}")
    print(f"meeting {meeting.id}: {meeting.meeting_date.isoformat()}, {meeting.location}")
    for person in meeting.attendance:
        print(f"  {'present' if person.attended else 'apologies'}: {person.name} {person.organisation}".rstrip())
    for decision in meeting.decisions:
        print(f"  decision {decision.case_id}: {DECISION_KINDS[decision.kind]}")
    for action in meeting.actions:
        due = action.due_on.isoformat() if action.due_on else "no date"
        print(f"  action {action.id} [{action.status}] {action.case_id or '-'} {action.owner_email} due {due}")
    return 0


def run_drafts(args) -> int:
    _config, panel = _open(args)
    drafts = panel.list_drafts()
    for draft in drafts:
        print(f"{draft.id}\t{draft.case_id}\t{draft.purpose.removeprefix('professional_outcome_')}\t{draft.recipient}")
    if not drafts:
        print("no drafts waiting for approval")
    return 0


def run_show_draft(args) -> int:
    _config, panel = _open(args)
    draft = panel.get_draft(args.id)
    if draft is None:
        return _fail(f"outbox item {args.id} not found")
    if draft.raw is None:
        return _fail(f"outbox item {args.id} is {draft.status}; its body was removed by the retention purge")
    message = email.message_from_bytes(draft.raw, policy=email.policy.default)
    print(f"Status: {draft.status}\nTo: {message['To']}\nSubject: {message['Subject']}\n")
    print(message.get_content())
    return 0


def run_approve(args) -> int:
    _config, panel = _open(args)
    try:
        panel.approve_draft(args.id, args.coordinator)
    except ValueError as error:
        return _fail(str(error))
    print(f"draft {args.id} approved; the next poll sends it")
    return 0


def run_reject(args) -> int:
    _config, panel = _open(args)
    try:
        panel.reject_draft(args.id, args.coordinator, args.reason)
    except ValueError as error:
        return _fail(str(error))
    print(f"draft {args.id} rejected")
    return 0


def run_aob(args) -> int:
    _config, panel = _open(args)
    try:
        item_id = panel.add_aob_item(args.date, args.title, case_id=args.case)
    except ValueError as error:
        return _fail(str(error))
    print(f"AOB item {item_id} added to {args.date.isoformat()}")
    return 0


def run_action(args) -> int:
    config, panel = _open(args)
    try:
        action = panel.update_action(args.id, status=args.status, by="coordinator", today=_today(config))
    except ValueError as error:
        return _fail(str(error))
    print(f"action {action.id} is {action.status}")
    return 0
