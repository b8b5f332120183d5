"""Store functions for the panel: agenda, meetings, decisions, actions, outcome drafts and clocks.

Every public method of PanelStore is one transaction, run through Store._write, so a
locked SQLite database becomes RemoteError as it does for the intake. The web app and
the `ccas-bot agenda`, `meeting` and `reminders` commands call these methods. The web app
passes `actor`, the signed-in username, to each method that changes something, and the
method writes an audit event (store/audit.py) in the same transaction; the commands pass
none and write no audit event.

Outcome emails are drafted by bot.outcomes.draft_outcomes, which renders the templates
and stores each draft here as an outbox row with status "draft". The intake's sender
only sends status "pending", so a draft leaves only after `approve_draft`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.config import Config
from bot.panel_dates import check_meeting_day, meeting_end, meeting_start, next_meeting, previous_meeting
from bot.school_days import BankHolidayCalendar, england_and_wales
from store import agenda as agenda_queries
from store.agenda import STANDING_ITEM_KEYS, Agenda, ActionView, AgendaRules, action_view
from store.audit import add_audit
from store.models import (AgendaItem, Case, CaseClock, CaseEvent, OutboxItem, PanelAction, PanelAttendance,
                          PanelDecision, PanelMeeting)
from store.records import PlannedMail, Store, utcnow

# Decision kinds, each with the label coordinators see; bot.outcomes has one email template per kind.
DECISION_KINDS: dict[str, str] = {
    "provision_arranged": "Meets the Section 19 criteria: provision arranged",
    "advice_and_guidance": "Advice and guidance",
    "signposting": "Signposting to other services",
    "school_to_school_support": "School-to-school support",
    "refer_to_send": "Referred to the SEND team",
    "more_information": "Deferred: more information needed",
    "close": "Case closed",
}
# Their outcome emails refer to details "below", so the decision needs a summary.
SUMMARY_REQUIRED = frozenset({"advice_and_guidance", "signposting", "more_information"})
ACTION_STATUSES = ("open", "done")
MOVE_DIRECTIONS = ("up", "down")


@dataclass(frozen=True)
class Attendee:
    name: str
    email: str = ""
    organisation: str = ""
    attended: bool = True
    # The stored row's id; None for an attendee not stored yet.
    id: int | None = None


@dataclass(frozen=True)
class DecisionView:
    case_id: str
    kind: str
    summary: str
    lead_email: str
    case_status: str


@dataclass(frozen=True)
class MeetingView:
    """A meeting's record: when, who came, what was decided and which actions were agreed."""

    id: int
    meeting_date: date
    starts_at: datetime
    location: str
    notes: str
    attendance: list[Attendee]
    decisions: list[DecisionView]
    actions: list[ActionView]


@dataclass(frozen=True)
class MeetingSummary:
    """A line of the list of meetings: the date, and how many were present, decided and agreed."""

    id: int
    meeting_date: date
    location: str
    present: int
    decisions: int
    actions: int


@dataclass(frozen=True)
class QueuedMail:
    """An outgoing message to store in the outbox, with the key that stops a second copy."""

    dedupe_key: str
    case_id: str | None
    mail: PlannedMail


@dataclass(frozen=True)
class DraftView:
    id: int
    case_id: str | None
    purpose: str
    recipient: str
    status: str
    raw: bytes
    created_at: datetime
    # The incoming message a held reply answers; None for outcome emails and reminders.
    message_pk: int | None = None


class PanelStore:
    """Panel records on top of a Store; the configuration supplies meeting times and the review rule."""

    def __init__(self, store: Store, config: Config, holidays: BankHolidayCalendar | None = None) -> None:
        self.store = store
        self.config = config
        self.holidays = holidays or england_and_wales()

    def _write(self, work):
        return self.store._write(work)

    def agenda_rules(self, meeting_date: date) -> AgendaRules:
        panel = self.config.panel
        return AgendaRules(
            meeting_date=meeting_date,
            starts_at=meeting_start(self.config, meeting_date),
            ends_at=meeting_end(self.config, meeting_date),
            location=panel.location,
            previous_meeting=previous_meeting(self.config, meeting_date, self.holidays),
            review_interval_weeks=panel.review_interval_weeks,
            child_names=panel.agenda_child_names,
        )

    # Agenda --------------------------------------------------------------------

    def list_agenda(self, meeting_date: date) -> Agenda:
        """Return the agenda of a meeting; reading it changes nothing."""
        rules = self.agenda_rules(meeting_date)
        agenda = self._write(lambda session: agenda_queries.build_agenda(session, rules))
        if not self.holidays.covers(meeting_date):
            agenda.notices.append(f"Bank holidays are known only from {self.holidays.first_year} to "
                                  f"{self.holidays.last_year}; check this date is not one.")
        return agenda

    def prepare_agenda(self, meeting_date: date, today: date, *, extraordinary: bool = False,
                       actor: str | None = None) -> int:
        """Fix the agenda of a meeting and return the meeting's id.

        Waiting items and reviews that fell due are stored against the meeting, so they
        get ids and positions that `reorder_agenda_items` can change. Only the next
        meeting from `today`, or an earlier one, can be prepared, so items waiting for
        the next meeting are never moved past it. `extraordinary` allows a date that is
        not a regular meeting date.
        """
        self._check_meeting_date(meeting_date, today, extraordinary)
        rules = self.agenda_rules(meeting_date)

        def work(session: Session):
            meeting = agenda_queries.prepare_agenda(session, rules, utcnow())
            _audit(session, actor, "agenda_prepared", "meeting", meeting_date.isoformat())
            return meeting.id
        return self._write(work)

    def reorder_agenda_items(self, meeting_date: date, standing_item: str, item_ids: Sequence[int], *,
                             actor: str | None = None) -> None:
        """Number the given items 1, 2, 3 … under one standing item; the others follow in their order.

        Raises ValueError when an id is not an item of that meeting and standing item;
        call `prepare_agenda` first so every entry has stored items.
        """
        def work(session: Session):
            rows = {item.id: item for item in session.scalars(select(AgendaItem).where(
                AgendaItem.meeting_date == meeting_date, AgendaItem.standing_item == standing_item))}
            unknown = [item_id for item_id in item_ids if item_id not in rows]
            if unknown:
                raise ValueError(f"agenda items {unknown} are not under {standing_item!r} on {meeting_date.isoformat()}; "
                                 "prepare the agenda first")
            others = sorted((item for item in rows.values() if item.id not in item_ids),
                            key=lambda item: (item.position is None, item.position or 0, item.id))
            ordered = [rows[item_id] for item_id in item_ids] + others
            for position, item in enumerate(ordered, start=1):
                item.position = position
            _audit(session, actor, "agenda_reordered", "meeting", meeting_date.isoformat(),
                   {"standing_item": standing_item, "item_ids": list(item_ids)})
        self._write(work)

    def move_agenda_entry(self, meeting_date: date, item_id: int, direction: str, *,
                          actor: str | None = None) -> bool:
        """Swap the agenda entry holding `item_id` with the entry above ("up") or below ("down") it.

        An entry is one case under a standing item and may hold several stored items, which
        move together. Return False when the entry is already first ("up") or last ("down").
        Raises ValueError when the item is not on that meeting's prepared agenda.
        """
        if direction not in MOVE_DIRECTIONS:
            raise ValueError(f"direction {direction!r} is not one of {list(MOVE_DIRECTIONS)}")
        rules = self.agenda_rules(meeting_date)

        def work(session: Session):
            agenda = agenda_queries.build_agenda(session, rules)
            section = next((section for section in agenda.sections
                            if any(item_id in entry.item_ids for entry in section.entries)), None)
            if section is None or not agenda.prepared:
                raise ValueError(f"agenda item {item_id} is not on the prepared agenda of {meeting_date.isoformat()}")
            if any(not entry.item_ids for entry in section.entries):
                raise ValueError(f"the agenda of {meeting_date.isoformat()} has entries without stored items; "
                                 "prepare the agenda first")
            entries = list(section.entries)
            index = next(index for index, entry in enumerate(entries) if item_id in entry.item_ids)
            other = index - 1 if direction == "up" else index + 1
            if other < 0 or other >= len(entries):
                return False
            entries[index], entries[other] = entries[other], entries[index]
            rows = {item.id: item for item in session.scalars(select(AgendaItem).where(
                AgendaItem.id.in_([i for entry in entries for i in entry.item_ids])))}
            position = 0
            for entry in entries:
                for entry_item_id in entry.item_ids:
                    position += 1
                    rows[entry_item_id].position = position
            _audit(session, actor, "agenda_reordered", "meeting", meeting_date.isoformat(),
                   {"standing_item": section.key, "item_id": item_id, "direction": direction})
            return True
        return self._write(work)

    def add_aob_item(self, meeting_date: date, title: str, *, case_id: str | None = None,
                     actor: str | None = None) -> int:
        """Add an item under AOB at the end, with a short title; return its id."""
        title = " ".join(title.split())
        if not title:
            raise ValueError("an AOB item needs a title")

        def work(session: Session):
            if case_id is not None and session.get(Case, case_id) is None:
                raise ValueError(f"case {case_id} not found")
            # On a prepared agenda the item is numbered after the others; otherwise it has no
            # number yet and sorts after the items created before it.
            prepared = session.scalars(select(PanelMeeting.id).where(
                PanelMeeting.meeting_date == meeting_date)).first() is not None
            last = session.scalar(select(func.max(AgendaItem.position)).where(
                AgendaItem.meeting_date == meeting_date, AgendaItem.standing_item == "aob"))
            item = AgendaItem(standing_item="aob", case_id=case_id, message_pk=None, meeting_date=meeting_date,
                              created_at=utcnow(), reason="aob", title=title[:200],
                              position=(last or 0) + 1 if prepared else None)
            session.add(item)
            session.flush()
            _audit(session, actor, "agenda_item_added", "agenda_item", item.id,
                   {"meeting_date": meeting_date.isoformat(), "standing_item": "aob", "case_id": case_id})
            return item.id
        return self._write(work)

    # Meetings ------------------------------------------------------------------

    def create_meeting(self, meeting_date: date, today: date, *, notes: str = "",
                       extraordinary: bool = False, actor: str | None = None) -> int:
        """Create (or find) the meeting, prepare its agenda and set its notes; return its id."""
        meeting_id = self.prepare_agenda(meeting_date, today, extraordinary=extraordinary, actor=actor)
        if notes:
            self.set_notes(meeting_id, notes, actor=actor)
        return meeting_id

    def set_notes(self, meeting_id: int, notes: str, *, actor: str | None = None) -> None:
        def work(session: Session):
            _meeting(session, meeting_id).notes = notes
            _audit(session, actor, "meeting_notes_changed", "meeting", meeting_id)
        self._write(work)

    def record_attendance(self, meeting_id: int, people: Iterable[Attendee], *, actor: str | None = None) -> int:
        """Replace the meeting's attendance list; return how many people it holds."""
        people = list(people)

        def work(session: Session):
            _meeting(session, meeting_id)
            for row in session.scalars(select(PanelAttendance).where(PanelAttendance.meeting_id == meeting_id)):
                session.delete(row)
            for person in people:
                if not person.name.strip():
                    raise ValueError("every attendee needs a name")
                session.add(PanelAttendance(meeting_id=meeting_id, name=person.name.strip(),
                                            email=person.email.strip().lower(),
                                            organisation=person.organisation.strip(), attended=person.attended))
            _audit(session, actor, "meeting_attendance_recorded", "meeting", meeting_id, {"count": len(people)})
            return len(people)
        return self._write(work)

    def add_attendee(self, meeting_id: int, person: Attendee, *, actor: str | None = None) -> int:
        """Add one person to the meeting's attendance list, present or with apologies; return the row's id."""
        if not person.name.strip():
            raise ValueError("every attendee needs a name")
        email_address = person.email.strip().lower()
        if email_address and "@" not in email_address:
            raise ValueError(f"attendee email {email_address!r} is not an email address")

        def work(session: Session):
            _meeting(session, meeting_id)
            row = PanelAttendance(meeting_id=meeting_id, name=person.name.strip(), email=email_address,
                                  organisation=person.organisation.strip(), attended=person.attended)
            session.add(row)
            session.flush()
            _audit(session, actor, "meeting_attendee_added", "meeting", meeting_id,
                   {"attendance_id": row.id, "attended": person.attended})
            return row.id
        return self._write(work)

    def remove_attendee(self, meeting_id: int, attendance_id: int, *, actor: str | None = None) -> None:
        """Remove one person from the meeting's attendance list."""
        def work(session: Session):
            row = session.get(PanelAttendance, attendance_id)
            if row is None or row.meeting_id != meeting_id:
                raise ValueError(f"attendee {attendance_id} is not on the list of meeting {meeting_id}")
            session.delete(row)
            _audit(session, actor, "meeting_attendee_removed", "meeting", meeting_id,
                   {"attendance_id": attendance_id})
        self._write(work)

    def record_decision(self, meeting_id: int, case_id: str, kind: str, summary: str = "", *,
                        actor: str | None = None) -> None:
        """Record (or replace) the panel's decision on a case and update the case's review dates.

        The case counts as reviewed on the meeting date, and its next review falls due
        `review_interval_weeks` later. "close" closes the case. "refer_to_send" leaves the
        case status alone: the SEND team decides whether to take the case on.
        """
        if kind not in DECISION_KINDS:
            raise ValueError(f"decision {kind!r} is not one of {sorted(DECISION_KINDS)}")
        if kind in SUMMARY_REQUIRED and not summary.strip():
            raise ValueError(f"decision {kind!r} needs a summary, because its outcome email refers to it")
        interval = timedelta(weeks=self.config.panel.review_interval_weeks)

        def work(session: Session):
            meeting = _meeting(session, meeting_id)
            case = session.get(Case, case_id)
            if case is None:
                raise ValueError(f"case {case_id} not found")
            now = utcnow()
            decision = session.scalars(select(PanelDecision).where(
                PanelDecision.meeting_id == meeting_id, PanelDecision.case_id == case_id)).first()
            if decision is None:
                decision = PanelDecision(meeting_id=meeting_id, case_id=case_id, kind=kind, summary=summary,
                                         decided_at=now)
                session.add(decision)
            else:
                decision.kind, decision.summary, decision.decided_at = kind, summary, now

            case.last_reviewed = meeting.meeting_date
            if kind == "close":
                case.status = "closed"
                case.closed_on = meeting.meeting_date
                case.next_review = None
            else:
                case.next_review = meeting.meeting_date + interval
            session.add(CaseEvent(case_id=case_id, kind="panel_decision", at=now,
                                  detail={"meeting_id": meeting_id, "decision": kind}))
            _audit(session, actor, "panel_decision_recorded", "case", case_id,
                   {"meeting_id": meeting_id, "decision": kind})
        self._write(work)

    def add_action(self, meeting_id: int | None, owner_email: str, description: str, *,
                   case_id: str | None = None, due_on: date | None = None, actor: str | None = None) -> int:
        """Add an open action and return its number."""
        owner_email = owner_email.strip().lower()
        if "@" not in owner_email:
            raise ValueError(f"action owner {owner_email!r} is not an email address")
        if not description.strip():
            raise ValueError("an action needs a description")

        def work(session: Session):
            if meeting_id is not None:
                _meeting(session, meeting_id)
            if case_id is not None and session.get(Case, case_id) is None:
                raise ValueError(f"case {case_id} not found")
            now = utcnow()
            action = PanelAction(meeting_id=meeting_id, case_id=case_id, owner_email=owner_email,
                                 description=description.strip(), due_on=due_on, status="open",
                                 created_at=now, updated_at=now, updates=[])
            session.add(action)
            session.flush()
            _audit(session, actor, "action_added", "action", action.id, {"meeting_id": meeting_id, "case_id": case_id})
            return action.id
        return self._write(work)

    def update_action(self, action_id: int, *, status: str | None = None, due_on: date | None = None,
                      description: str | None = None, owner_email: str | None = None,
                      message_pk: int | None = None, by: str = "", today: date | None = None,
                      actor: str | None = None) -> ActionView:
        """Change an action; each change is added to its history with who made it and from which message."""
        if status is not None and status not in ACTION_STATUSES:
            raise ValueError(f"action status {status!r} is not one of {list(ACTION_STATUSES)}")
        today = today or date.today()

        def work(session: Session):
            action = session.get(PanelAction, action_id)
            if action is None:
                raise ValueError(f"action {action_id} not found")
            now = utcnow()
            if status is not None:
                action.status = status
                action.done_on = today if status == "done" else None
            if due_on is not None:
                action.due_on = due_on
            if description is not None:
                action.description = description.strip()
            if owner_email is not None:
                action.owner_email = owner_email.strip().lower()
            action.updated_at = now
            action.updates = [*action.updates, {"at": now.isoformat(), "message_pk": message_pk, "by": by.lower(),
                                                "status": action.status}]
            if action.case_id is not None:
                session.add(CaseEvent(case_id=action.case_id, message_pk=message_pk, kind="action_updated", at=now,
                                      detail={"action_id": action.id, "status": action.status}))
            changed = [name for name, value in (("status", status), ("due_on", due_on), ("description", description),
                                                ("owner_email", owner_email)) if value is not None]
            _audit(session, actor, "action_updated", "action", action.id, {"fields": changed, "status": action.status})
            return action_view(action, today)
        return self._write(work)

    def open_actions(self, *, case_id: str | None = None, owner_email: str | None = None,
                     today: date | None = None) -> list[ActionView]:
        today = today or date.today()

        def work(session: Session):
            query = select(PanelAction).where(PanelAction.status == "open").order_by(PanelAction.id)
            if case_id is not None:
                query = query.where(PanelAction.case_id == case_id)
            if owner_email is not None:
                query = query.where(PanelAction.owner_email == owner_email.lower())
            return [action_view(action, today) for action in session.scalars(query)]
        return self._write(work)

    def get_action(self, action_id: int, today: date | None = None) -> ActionView | None:
        def work(session: Session):
            action = session.get(PanelAction, action_id)
            return action_view(action, today or date.today()) if action else None
        return self._write(work)

    def get_meeting(self, meeting_date: date) -> MeetingView | None:
        def work(session: Session):
            meeting = session.scalars(select(PanelMeeting).where(PanelMeeting.meeting_date == meeting_date)).first()
            return _meeting_view(session, meeting) if meeting else None
        return self._write(work)

    def get_meeting_by_id(self, meeting_id: int) -> MeetingView:
        return self._write(lambda session: _meeting_view(session, _meeting(session, meeting_id)))

    def list_meetings(self, limit: int = 100) -> list[MeetingSummary]:
        """Return the recorded meetings, latest first, with how many attended, decisions and actions each has."""
        def work(session: Session):
            meetings = list(session.scalars(select(PanelMeeting).order_by(PanelMeeting.meeting_date.desc())
                                            .limit(limit)))
            ids = [meeting.id for meeting in meetings]

            def counts(column, *conditions):
                if not ids:
                    return {}
                rows = session.execute(select(column, func.count()).where(column.in_(ids), *conditions)
                                       .group_by(column))
                return {meeting_id: count for meeting_id, count in rows}
            present = counts(PanelAttendance.meeting_id, PanelAttendance.attended.is_(True))
            decisions = counts(PanelDecision.meeting_id)
            actions = counts(PanelAction.meeting_id)
            return [MeetingSummary(id=meeting.id, meeting_date=meeting.meeting_date, location=meeting.location,
                                   present=present.get(meeting.id, 0), decisions=decisions.get(meeting.id, 0),
                                   actions=actions.get(meeting.id, 0))
                    for meeting in meetings]
        return self.store._read(work)

    # Outbox drafts and reminders ---------------------------------------------------

    def queue_mail(self, mails: Iterable[QueuedMail], status: str) -> list[int]:
        """Store outgoing mail with `status` ("draft" or "pending"); return the ids of new rows.

        A mail whose key is already stored is skipped, so running a job twice sends nothing twice.
        """
        mails = list(mails)

        def work(session: Session):
            now = utcnow()
            new_ids = []
            for queued in mails:
                exists = session.scalars(select(OutboxItem.id).where(OutboxItem.dedupe_key == queued.dedupe_key)).first()
                if exists is not None:
                    continue
                row = OutboxItem(dedupe_key=queued.dedupe_key[:255], message_pk=None, case_id=queued.case_id,
                                 purpose=queued.mail.purpose, recipient=queued.mail.recipient,
                                 out_message_id=queued.mail.out_message_id, raw=queued.mail.raw,
                                 status=status, created_at=now)
                session.add(row)
                session.flush()
                new_ids.append(row.id)
            return new_ids
        return self._write(work)

    def outbox_keys(self, prefix: str) -> dict[str, str]:
        """Return the dedupe keys starting with `prefix`, each with its row's status."""
        def work(session: Session):
            rows = session.execute(select(OutboxItem.dedupe_key, OutboxItem.status).where(
                OutboxItem.dedupe_key.like(_like_prefix(prefix), escape="\\")))
            return {key: status for key, status in rows}
        return self._write(work)

    def supersede_drafts(self, prefix: str, keep: set[str]) -> int:
        """Mark drafts whose key starts with `prefix` and is not in `keep` as superseded."""
        def work(session: Session):
            count = 0
            for row in session.scalars(select(OutboxItem).where(
                    OutboxItem.status == "draft",
                    OutboxItem.dedupe_key.like(_like_prefix(prefix), escape="\\"))):
                if row.dedupe_key not in keep:
                    row.status = "superseded"
                    count += 1
            return count
        return self._write(work)

    def list_drafts(self, *, status: str = "draft", prefix: str | None = "outcome|") -> list[DraftView]:
        """Return the outbox rows with `status`, oldest first, whose key starts with `prefix`.

        The default lists outcome emails; "outcome|<meeting id>|" lists one meeting's, and
        None lists every purpose, such as held acknowledgements and reminders.
        """
        def work(session: Session):
            query = select(OutboxItem).where(OutboxItem.status == status).order_by(OutboxItem.id)
            if prefix is not None:
                query = query.where(OutboxItem.dedupe_key.like(_like_prefix(prefix), escape="\\"))
            return [_draft_view(row) for row in session.scalars(query)]
        return self._write(work)

    def get_draft(self, outbox_id: int) -> DraftView | None:
        def work(session: Session):
            row = session.get(OutboxItem, outbox_id)
            return _draft_view(row) if row is not None else None
        return self._write(work)

    def approve_draft(self, outbox_id: int, coordinator: str) -> None:
        """Let a draft be sent: its status becomes "pending", which the intake's sender sends.

        `coordinator` is the approver's email address (the commands) or username (the web
        app); it goes into the case chronology and the audit log.
        """
        self._review_draft(outbox_id, coordinator, "pending", "approved", "")

    def reject_draft(self, outbox_id: int, coordinator: str, reason: str = "") -> None:
        """Stop a draft for good; drafting the outcomes again makes a new draft for the case."""
        self._review_draft(outbox_id, coordinator, "rejected", "rejected", reason)

    def _review_draft(self, outbox_id: int, coordinator: str, status: str, verdict: str, reason: str) -> None:
        coordinator = coordinator.strip().lower()
        if not coordinator:
            raise ValueError("a draft is approved or rejected by a named coordinator")

        def work(session: Session):
            row = session.get(OutboxItem, outbox_id)
            if row is None:
                raise ValueError(f"outbox item {outbox_id} not found")
            if row.status != "draft":
                raise ValueError(f"outbox item {outbox_id} is {row.status}, not a draft")
            row.status = status
            if row.case_id is not None:
                # The case chronology keeps "outcome_approved" for outcome emails and
                # "draft_approved" for other drafts, such as a held acknowledgement.
                kind = "outcome" if row.dedupe_key.startswith("outcome|") else "draft"
                # The reason a coordinator types stays in the store, never in logs.
                session.add(CaseEvent(case_id=row.case_id, kind=f"{kind}_{verdict}", at=utcnow(),
                                      detail={"outbox_id": outbox_id, "coordinator": coordinator,
                                              "reason": reason}))
            add_audit(session, coordinator, f"draft_{verdict}", target_type="outbox", target_id=outbox_id,
                      detail={"purpose": row.purpose, "case_id": row.case_id, "message_pk": row.message_pk})
        self._write(work)

    # Clocks --------------------------------------------------------------------

    def record_clocks(self, case_id: str, entries: Iterable, message_pk: int | None = None) -> int:
        """Store clock entries (bot.clocks.ClockEntry) on a case, one per kind, replacing older ones."""
        entries = list(entries)

        def work(session: Session):
            now = utcnow()
            for entry in entries:
                row = session.scalars(select(CaseClock).where(CaseClock.case_id == case_id,
                                                              CaseClock.kind == entry.kind)).first()
                if row is None:
                    row = CaseClock(case_id=case_id, kind=entry.kind)
                    session.add(row)
                row.started_on, row.due_on = entry.started_on, entry.due_on
                row.estimated, row.flagged, row.reason = entry.estimated, entry.flagged, entry.reason
                row.message_pk, row.recorded_at = message_pk, now
            return len(entries)
        return self._write(work)

    def case_clocks(self, case_id: str) -> list[agenda_queries.ClockView]:
        return self._write(lambda session: agenda_queries.clock_views(session, {case_id}).get(case_id, []))

    # Checks --------------------------------------------------------------------

    def _check_meeting_date(self, meeting_date: date, today: date, extraordinary: bool) -> None:
        day = check_meeting_day(self.config, meeting_date, self.holidays)
        if not day.is_meeting and not extraordinary:
            upcoming = next_meeting(self.config, meeting_date, self.holidays)
            raise ValueError(f"{meeting_date.isoformat()} is not a panel meeting date ({day.detail}); "
                             f"the next one is {upcoming.isoformat()}")
        upcoming = next_meeting(self.config, today, self.holidays)
        if meeting_date > upcoming:
            raise ValueError(f"only the next meeting ({upcoming.isoformat()}) or an earlier one can be prepared, "
                             f"not {meeting_date.isoformat()}")


def _meeting(session: Session, meeting_id: int) -> PanelMeeting:
    meeting = session.get(PanelMeeting, meeting_id)
    if meeting is None:
        raise ValueError(f"meeting {meeting_id} not found")
    return meeting


def _meeting_view(session: Session, meeting: PanelMeeting) -> MeetingView:
    attendance = [Attendee(name=row.name, email=row.email, organisation=row.organisation, attended=row.attended,
                           id=row.id)
                  for row in session.scalars(select(PanelAttendance).where(
                      PanelAttendance.meeting_id == meeting.id).order_by(PanelAttendance.id))]
    decisions = []
    for row, case in session.execute(select(PanelDecision, Case).join(Case, Case.id == PanelDecision.case_id)
                                     .where(PanelDecision.meeting_id == meeting.id).order_by(PanelDecision.id)):
        decisions.append(DecisionView(case_id=row.case_id, kind=row.kind, summary=row.summary,
                                      lead_email=case.lead_email, case_status=case.status))
    actions = [action_view(row, meeting.meeting_date) for row in session.scalars(
        select(PanelAction).where(PanelAction.meeting_id == meeting.id).order_by(PanelAction.id))]
    return MeetingView(id=meeting.id, meeting_date=meeting.meeting_date, starts_at=meeting.starts_at,
                       location=meeting.location, notes=meeting.notes, attendance=attendance,
                       decisions=decisions, actions=actions)


def _audit(session: Session, actor: str | None, action: str, target_type: str, target_id: str | int,
           detail: dict | None = None) -> None:
    """Add an audit event when a person (`actor`) made the change; the commands pass no actor."""
    if actor is not None:
        add_audit(session, actor, action, target_type=target_type, target_id=target_id, detail=detail)


def _like_prefix(prefix: str) -> str:
    """Return a LIKE pattern matching text that starts with `prefix`, with its wildcards escaped."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _draft_view(row: OutboxItem) -> DraftView:
    return DraftView(id=row.id, case_id=row.case_id, purpose=row.purpose, recipient=row.recipient,
                     status=row.status, raw=row.raw, created_at=row.created_at, message_pk=row.message_pk)


__all__ = ["PanelStore", "Attendee", "DecisionView", "MeetingView", "MeetingSummary", "QueuedMail", "DraftView",
           "DECISION_KINDS", "ACTION_STATUSES", "MOVE_DIRECTIONS", "STANDING_ITEM_KEYS"]
