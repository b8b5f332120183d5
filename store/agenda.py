"""Reading and preparing a panel meeting's agenda, inside a transaction store/panel.py opens.

An agenda holds, per standing item:
- agenda items routing queued (`reason` "queued"). Preparing a meeting assigns them to
  its date. Until then an unassigned item rolls forward to every meeting that starts
  after it was created;
- open cases whose panel review has fallen due ("review_due", or "review_overdue" when it
  fell due on or before the previous meeting), shown under existing placements;
- AOB items a coordinator added ("aob");
- under the review of actions, the open actions and those done since the previous meeting.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from store.models import AgendaItem, Case, CaseClock, Message, PanelAction, PanelMeeting

# The standing items in the order the panel takes them.
STANDING_ITEMS: tuple[tuple[str, str], ...] = (
    ("welcomes", "Welcomes and introductions"),
    ("actions_review", "Review of actions from previous meeting"),
    ("new_referrals", "Review new referrals"),
    ("existing_placements", "Review existing placements / advice for ongoing placements"),
    ("aob", "AOB"),
)
STANDING_ITEM_KEYS = tuple(key for key, _title in STANDING_ITEMS)
# Routing queues messages under these; "welcomes" has no items.
QUEUED_ITEMS = frozenset(STANDING_ITEM_KEYS) - {"welcomes"}
REVIEW_STATUSES = ("open",)


@dataclass(frozen=True)
class MessageRef:
    """A message linked to an agenda entry: its store id, day received and category."""

    pk: int
    received_on: date
    category: str


@dataclass(frozen=True)
class ClockView:
    kind: str
    flagged: bool
    reason: str
    started_on: date | None
    due_on: date | None
    estimated: bool


@dataclass
class AgendaEntry:
    """One case (or one AOB heading) under a standing item, with its messages and clocks.

    `item_ids` are the stored agenda items behind the entry; a review that fell due but
    was not yet stored by `prepare_agenda` has none.
    """

    standing_item: str
    case_id: str | None
    reason: str
    item_ids: list[int] = field(default_factory=list)
    child_label: str = ""
    title: str = ""
    position: int | None = None
    review_due_on: date | None = None
    overdue: bool = False
    messages: list[MessageRef] = field(default_factory=list)
    clocks: list[ClockView] = field(default_factory=list)
    first_created: datetime | None = None


@dataclass(frozen=True)
class ActionView:
    id: int
    case_id: str | None
    owner_email: str
    description: str
    due_on: date | None
    status: str
    done_on: date | None
    overdue: bool


@dataclass
class AgendaSection:
    key: str
    title: str
    entries: list[AgendaEntry] = field(default_factory=list)
    actions: list[ActionView] = field(default_factory=list)


@dataclass
class Agenda:
    """A meeting's agenda: when and where, the standing items in order, and notices."""

    meeting_date: date
    starts_at: datetime
    ends_at: datetime
    location: str
    sections: list[AgendaSection]
    prepared: bool
    notices: list[str] = field(default_factory=list)

    def section(self, key: str) -> AgendaSection:
        return next(section for section in self.sections if section.key == key)


@dataclass(frozen=True)
class AgendaRules:
    """Configuration and calendar values that building an agenda needs."""

    meeting_date: date
    starts_at: datetime
    ends_at: datetime
    location: str
    previous_meeting: date | None
    review_interval_weeks: int
    child_names: str  # "first_name_initial" or "none"


def as_utc(value: datetime) -> datetime:
    """Return an aware datetime in UTC; a naive value read back from SQLite is UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def child_label(case: Case | None, style: str) -> str:
    """Return "Sam T." (first name and last initial) or "" under style "none"."""
    if case is None or style == "none":
        return ""
    first = (case.known_as or case.first_name or "").strip()
    last = (case.last_name or "").strip()
    if not first:
        return ""
    return f"{first} {last[0].upper()}." if last else first


def review_due_on(case: Case, interval_weeks: int) -> date | None:
    """Return when a case's next panel review falls due: next_review, else last review plus the interval."""
    if case.next_review is not None:
        return case.next_review
    if case.last_reviewed is not None:
        return case.last_reviewed + timedelta(weeks=interval_weeks)
    return None


def build_agenda(session: Session, rules: AgendaRules) -> Agenda:
    meeting = session.scalars(select(PanelMeeting).where(PanelMeeting.meeting_date == rules.meeting_date)).first()
    items = _items_for(session, rules)
    case_ids = {item.case_id for item in items if item.case_id}
    due_reviews = _due_reviews(session, rules, items)
    case_ids.update(case.id for case, _due in due_reviews)
    cases = {case.id: case for case in session.scalars(select(Case).where(Case.id.in_(case_ids)))} if case_ids else {}
    messages = _message_refs(session, [item.message_pk for item in items if item.message_pk])
    clocks = clock_views(session, case_ids)

    sections = {key: AgendaSection(key=key, title=title) for key, title in STANDING_ITEMS}
    # A case on this agenda as a new referral is discussed once, under new referrals, so later
    # messages about it (queued under existing placements) join that entry.
    new_referral_cases = {item.case_id for item in items if item.case_id and item.standing_item == "new_referrals"}
    grouped: dict[tuple[str, str | None, int | None], AgendaEntry] = {}
    for item in items:
        standing_item = item.standing_item
        if standing_item == "existing_placements" and item.case_id in new_referral_cases:
            standing_item = "new_referrals"
        # Case items group by case; an AOB heading without a case stays on its own.
        group_key = (standing_item, item.case_id, None if item.case_id else item.id)
        entry = grouped.get(group_key)
        if entry is None:
            entry = AgendaEntry(standing_item=standing_item, case_id=item.case_id, reason=item.reason,
                                title=item.title, child_label=child_label(cases.get(item.case_id), rules.child_names),
                                first_created=as_utc(item.created_at))
            grouped[group_key] = entry
        entry.item_ids.append(item.id)
        if item.position is not None and (entry.position is None or item.position < entry.position):
            entry.position = item.position
        if item.reason in ("review_due", "review_overdue") and standing_item == "existing_placements":
            entry.reason = item.reason
        if item.message_pk in messages:
            entry.messages.append(messages[item.message_pk])
    for entry in grouped.values():
        case = cases.get(entry.case_id)
        if case is not None and entry.standing_item == "existing_placements":
            entry.review_due_on = review_due_on(case, rules.review_interval_weeks)
            entry.overdue = entry.reason == "review_overdue"
        entry.clocks = clocks.get(entry.case_id, [])
        sections[entry.standing_item].entries.append(entry)

    for case, due in due_reviews:
        overdue = _is_overdue(due, rules)
        sections["existing_placements"].entries.append(AgendaEntry(
            standing_item="existing_placements", case_id=case.id,
            reason="review_overdue" if overdue else "review_due",
            child_label=child_label(case, rules.child_names), review_due_on=due, overdue=overdue,
            clocks=clocks.get(case.id, [])))

    for section in sections.values():
        section.entries.sort(key=_entry_order)
    sections["actions_review"].actions = _actions_for_review(session, rules)

    # SQLite returns the stored start without its timezone, so it is converted back to the panel's.
    starts_at = as_utc(meeting.starts_at).astimezone(rules.starts_at.tzinfo) if meeting else rules.starts_at
    return Agenda(meeting_date=rules.meeting_date, starts_at=starts_at,
                  ends_at=rules.ends_at, location=(meeting.location if meeting else "") or rules.location,
                  sections=[sections[key] for key in STANDING_ITEM_KEYS], prepared=meeting is not None)


def prepare_agenda(session: Session, rules: AgendaRules, now: datetime) -> PanelMeeting:
    """Create the meeting row, assign waiting items to it and store the reviews that fell due.

    Running it again picks up items that arrived since, and changes nothing else.
    """
    meeting = session.scalars(select(PanelMeeting).where(PanelMeeting.meeting_date == rules.meeting_date)).first()
    if meeting is None:
        # Stored in UTC, because SQLite keeps a datetime's digits and drops its timezone.
        meeting = PanelMeeting(meeting_date=rules.meeting_date, starts_at=as_utc(rules.starts_at), location=rules.location,
                               notes="", created_at=now)
        session.add(meeting)

    items = _items_for(session, rules)
    for item in items:
        item.meeting_date = rules.meeting_date
    for case, due in _due_reviews(session, rules, items):
        session.add(AgendaItem(standing_item="existing_placements", case_id=case.id, message_pk=None,
                               meeting_date=rules.meeting_date, created_at=now,
                               reason="review_overdue" if _is_overdue(due, rules) else "review_due"))
    session.flush()

    # Number every item still without a position after the numbered ones, in agenda order.
    agenda = build_agenda(session, rules)
    rows = {item.id: item for item in _items_for(session, rules)}
    for section in agenda.sections:
        next_position = max((rows[i].position or 0 for entry in section.entries for i in entry.item_ids), default=0)
        for entry in section.entries:
            for item_id in entry.item_ids:
                if rows[item_id].position is None:
                    next_position += 1
                    rows[item_id].position = next_position
    session.flush()
    return meeting


def _items_for(session: Session, rules: AgendaRules) -> list[AgendaItem]:
    """Stored items assigned to the meeting, and unassigned ones created before it starts."""
    starts_utc = as_utc(rules.starts_at)
    query = select(AgendaItem).where(
        AgendaItem.standing_item.in_(QUEUED_ITEMS),
        or_(AgendaItem.meeting_date == rules.meeting_date,
            and_(AgendaItem.meeting_date.is_(None), AgendaItem.created_at < starts_utc)),
    ).order_by(AgendaItem.id)
    return list(session.scalars(query))


def _due_reviews(session: Session, rules: AgendaRules, items: list[AgendaItem]) -> list[tuple[Case, date]]:
    """Open cases whose review falls due by the meeting date and which are not on it already."""
    on_agenda = {item.case_id for item in items
                 if item.case_id and item.standing_item in ("existing_placements", "new_referrals")}
    cutoff_reviewed = rules.meeting_date - timedelta(weeks=rules.review_interval_weeks)
    query = select(Case).where(
        Case.status.in_(REVIEW_STATUSES),
        or_(Case.next_review <= rules.meeting_date,
            and_(Case.next_review.is_(None), Case.last_reviewed <= cutoff_reviewed)),
    ).order_by(Case.id)
    due = []
    for case in session.scalars(query):
        due_on = review_due_on(case, rules.review_interval_weeks)
        if case.id in on_agenda or due_on is None:
            continue
        # A case already decided at this meeting has been reviewed.
        if case.last_reviewed is not None and case.last_reviewed >= rules.meeting_date:
            continue
        due.append((case, due_on))
    return due


def _is_overdue(due: date, rules: AgendaRules) -> bool:
    return rules.previous_meeting is not None and due <= rules.previous_meeting


def _entry_order(entry: AgendaEntry):
    # Numbered entries first; then overdue reviews, then the rest, oldest first.
    created = entry.first_created or datetime.max.replace(tzinfo=timezone.utc)
    return (entry.position is None, entry.position or 0, not entry.overdue,
            entry.review_due_on or date.max, created, entry.case_id or "")


def _message_refs(session: Session, pks: list[int]) -> dict[int, MessageRef]:
    if not pks:
        return {}
    rows = session.execute(select(Message.id, Message.received_at, Message.category).where(Message.id.in_(pks)))
    return {pk: MessageRef(pk=pk, received_on=as_utc(received).date(), category=category or "")
            for pk, received, category in rows}


def clock_views(session: Session, case_ids: set[str]) -> dict[str, list[ClockView]]:
    views: dict[str, list[ClockView]] = defaultdict(list)
    if not case_ids:
        return views
    for clock in session.scalars(select(CaseClock).where(CaseClock.case_id.in_(case_ids)).order_by(CaseClock.id)):
        views[clock.case_id].append(ClockView(kind=clock.kind, flagged=clock.flagged, reason=clock.reason,
                                              started_on=clock.started_on, due_on=clock.due_on,
                                              estimated=clock.estimated))
    return views


def _actions_for_review(session: Session, rules: AgendaRules) -> list[ActionView]:
    """Open actions agreed before this meeting, and actions done since the previous one."""
    before = as_utc(rules.starts_at)
    done_since = rules.previous_meeting or rules.meeting_date - timedelta(weeks=1)
    query = select(PanelAction).outerjoin(PanelMeeting, PanelMeeting.id == PanelAction.meeting_id).where(
        # Actions agreed at an earlier meeting, or added outside a meeting before this one starts.
        or_(PanelMeeting.meeting_date < rules.meeting_date,
            and_(PanelAction.meeting_id.is_(None), PanelAction.created_at < before)),
        or_(PanelAction.status == "open",
            and_(PanelAction.status == "done", PanelAction.done_on >= done_since)),
    ).order_by(PanelAction.id)
    return [action_view(action, rules.meeting_date) for action in session.scalars(query)]


def action_view(action: PanelAction, today: date) -> ActionView:
    overdue = action.status == "open" and action.due_on is not None and action.due_on < today
    return ActionView(id=action.id, case_id=action.case_id, owner_email=action.owner_email,
                      description=action.description, due_on=action.due_on, status=action.status,
                      done_on=action.done_on, overdue=overdue)
