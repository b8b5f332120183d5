"""The retention purge: remove personal data older than its `[retention]` period, oldest first.

The steps run in this order, so the most detailed data goes first:

1. the original bytes of finished messages (quarantined ones after their own, shorter period);
2. the bodies of outgoing mail that has left or never will (not "pending" or "draft");
3. the sender, subject and extracted details of finished messages linked to no case;
4. closed cases past both their closure and age periods, with everything linked to them;
5. audit events, then failed sign-ins, past their periods.

Each step works in batches of `[retention] batch_size` rows (cases: see
CASES_PER_BATCH_DIVISOR), each batch in its own transaction. One audit event (actor
BOT_ACTOR, action "retention_purge") records the counts per record type at the end of a run.

Never purged: a message that is still open (outcome "retry", or "needs_person" that no
person has dealt with), mail that is pending or a draft, and a case that is not closed.
A closed case that still has an open message or unsent mail is kept too.

When a whole case is purged, its agenda items, panel decisions and actions are deleted
with it (store.subject_access.delete_case). The panel meeting and its attendance stay, so
the meeting's record shows one decision fewer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import delete, exists, func, not_, select, update
from sqlalchemy.orm import Session

from bot.config import RetentionConfig
from store.audit import BOT_ACTOR, add_audit
from store.models import AuditEvent, Case, CaseEvent, Message, OutboxItem, SignInAttempt, WorkItem
from store.records import Store
from store.subject_access import delete_case

log = logging.getLogger(__name__)

# Outcomes of a message that is not finished: the bot retries it, or a person has not dealt with it yet.
OPEN_OUTCOMES = ("retry", "needs_person")
# Outgoing mail that may still leave, so its body is kept.
UNSENT_STATUSES = ("pending", "draft")
QUARANTINE_REASON = "mailbox:quarantine"
# A case brings its messages, chronology and mail, so fewer cases than rows go in one transaction.
CASES_PER_BATCH_DIVISOR = 50

RECORD_TYPES = ("raw_messages", "quarantined_messages", "outbox_bodies", "message_details", "closed_cases",
                "case_messages", "audit_events", "sign_in_attempts", "work_items")


@dataclass
class PurgeResult:
    """Counts of what one purge run removed (or, in a dry run, would remove), per record type."""

    dry_run: bool = False
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RECORD_TYPES, 0))
    # Rows linked to the purged cases (outbox rows, events, agenda items, decisions and so on).
    linked_rows: dict[str, int] = field(default_factory=dict)
    # Closed cases kept because they have no closing date, or still have open work.
    closed_cases_undated: int = 0
    closed_cases_with_open_work: int = 0

    def lines(self) -> list[str]:
        verb = "would remove" if self.dry_run else "removed"
        lines = [f"{name.replace('_', ' ')}: {verb} {self.counts[name]}" for name in RECORD_TYPES]
        if self.linked_rows:
            linked = ", ".join(f"{name} {count}" for name, count in sorted(self.linked_rows.items()) if count)
            lines.append(f"rows linked to the purged cases: {linked or 'none'}")
        if self.closed_cases_undated:
            lines.append(f"closed cases kept because they have no closing date: {self.closed_cases_undated}")
        if self.closed_cases_with_open_work:
            lines.append(f"closed cases kept because a message or mail of theirs is still open: "
                         f"{self.closed_cases_with_open_work}")
        return lines

    def audit_detail(self) -> dict:
        return {**self.counts, "linked_rows": dict(self.linked_rows),
                "closed_cases_undated": self.closed_cases_undated,
                "closed_cases_with_open_work": self.closed_cases_with_open_work}


def purge(store: Store, policy: RetentionConfig, now: datetime | None = None, dry_run: bool = False) -> PurgeResult:
    """Remove the personal data that `policy` no longer allows, oldest first; see the module docstring."""
    now = now or datetime.now(timezone.utc)
    result = PurgeResult(dry_run=dry_run)
    batch = policy.batch_size
    try:
        _purge_raw(store, policy, now, dry_run, result, batch)
        _purge_outbox_bodies(store, policy, now, dry_run, result, batch)
        _purge_details(store, policy, now, dry_run, result, batch)
        _purge_closed_cases(store, policy, now, dry_run, result, max(1, batch // CASES_PER_BATCH_DIVISOR))
        _purge_older(store, AuditEvent, _years_before(now, policy.audit_events_years), "audit_events",
                     dry_run, result, batch)
        _purge_older(store, SignInAttempt, now - timedelta(days=policy.sign_in_attempts_days), "sign_in_attempts",
                     dry_run, result, batch)
        _purge_done_work_items(store, now - timedelta(days=policy.raw_messages_days), dry_run, result, batch)
    finally:
        # A run that fails half-way still records what its committed batches removed.
        if not dry_run and (any(result.counts.values()) or result.closed_cases_undated):
            store._write(lambda session: add_audit(session, BOT_ACTOR, "retention_purge", target_type="store",
                                                   detail=result.audit_detail(), at=now))
    log.info("retention purge %s: %s", "dry run" if dry_run else "finished",
             ", ".join(f"{name}={count}" for name, count in result.counts.items()))
    return result


# Messages and mail ---------------------------------------------------------------------


def _finished() -> object:
    return Message.outcome.not_in(OPEN_OUTCOMES)


def _message_time():
    return func.coalesce(Message.processed_at, Message.received_at)


def _purge_raw(store: Store, policy: RetentionConfig, now: datetime, dry_run: bool, result: PurgeResult,
               batch: int) -> None:
    raw_cutoff = now - timedelta(days=policy.raw_messages_days)
    quarantine_cutoff = now - timedelta(days=policy.quarantined_messages_days)
    later_cutoff = max(raw_cutoff, quarantine_cutoff)
    candidates = store._read(lambda session: session.execute(
        select(Message.id, Message.reasons, _message_time()).where(
            Message.raw.is_not(None), _finished(), _message_time() < later_cutoff)
        .order_by(_message_time(), Message.id)).all())

    # One list, oldest first, with the record type each message counts under.
    due = []
    for pk, reasons, at in candidates:
        quarantined = QUARANTINE_REASON in (reasons or [])
        if quarantined and _aware(at) < quarantine_cutoff:
            due.append((pk, "quarantined_messages"))
        elif not quarantined and _aware(at) < raw_cutoff:
            due.append((pk, "raw_messages"))
    if dry_run:
        for _pk, name in due:
            result.counts[name] += 1
        return
    for chunk in _chunks(due, batch):
        removed = store._write(lambda session, chunk=chunk: _remove_raw(session, chunk, now))
        for name, count in removed.items():
            result.counts[name] += count


def _remove_raw(session: Session, due: list[tuple[int, str]], now: datetime) -> dict[str, int]:
    removed = {}
    for name in ("raw_messages", "quarantined_messages"):
        pks = [pk for pk, record_type in due if record_type == name]
        if pks:
            removed[name] = _rowcount(session.execute(
                update(Message).where(Message.id.in_(pks), Message.raw.is_not(None), _finished())
                .values(raw=None, raw_purged_at=now)))
    return removed


def _purge_outbox_bodies(store: Store, policy: RetentionConfig, now: datetime, dry_run: bool, result: PurgeResult,
                         batch: int) -> None:
    cutoff = now - timedelta(days=policy.outbox_bodies_days)
    pks = store._read(lambda session: list(session.scalars(
        select(OutboxItem.id).where(OutboxItem.raw.is_not(None), OutboxItem.status.not_in(UNSENT_STATUSES),
                                    OutboxItem.created_at < cutoff)
        .order_by(OutboxItem.created_at, OutboxItem.id))))
    if dry_run:
        result.counts["outbox_bodies"] += len(pks)
        return
    for chunk in _chunks(pks, batch):
        result.counts["outbox_bodies"] += store._write(lambda session, chunk=chunk: _rowcount(session.execute(
            update(OutboxItem).where(OutboxItem.id.in_(chunk), OutboxItem.status.not_in(UNSENT_STATUSES))
            .values(raw=None, body_purged_at=now))))


def _purge_details(store: Store, policy: RetentionConfig, now: datetime, dry_run: bool, result: PurgeResult,
                   batch: int) -> None:
    cutoff = now - timedelta(days=policy.message_details_days)
    linked_by_event = exists().where(CaseEvent.message_pk == Message.id)
    pks = store._read(lambda session: list(session.scalars(
        select(Message.id).where(Message.details_purged_at.is_(None), Message.case_id.is_(None), _finished(),
                                 not_(linked_by_event), _message_time() < cutoff)
        .order_by(_message_time(), Message.id))))
    if dry_run:
        result.counts["message_details"] += len(pks)
        return
    for chunk in _chunks(pks, batch):
        # The original bytes go too, in case raw_messages_days is set longer than this period.
        result.counts["message_details"] += store._write(lambda session, chunk=chunk: _rowcount(session.execute(
            update(Message).where(Message.id.in_(chunk), Message.case_id.is_(None), _finished())
            .values(sender_email="", subject="", extracted={}, raw=None, details_purged_at=now,
                    raw_purged_at=func.coalesce(Message.raw_purged_at, now)))))


# Cases -------------------------------------------------------------------------------------


def _purge_closed_cases(store: Store, policy: RetentionConfig, now: datetime, dry_run: bool, result: PurgeResult,
                        cases_per_batch: int) -> None:
    today = now.date()
    closed_before = _add_years(today, -policy.closed_cases_years)
    born_before = _add_years(today, -policy.closed_cases_until_age_years)

    def select_cases(session: Session):
        undated = session.scalar(select(func.count()).select_from(Case).where(
            Case.status == "closed", Case.closed_on.is_(None)))
        rows = session.execute(select(Case.id, Case.dob).where(
            Case.status == "closed", Case.closed_on.is_not(None), Case.closed_on <= closed_before)
            .order_by(Case.closed_on, Case.id)).all()
        due = [case_id for case_id, dob in rows
               if policy.closed_cases_until_age_years == 0 or dob is None or dob <= born_before]
        busy = set()
        for chunk in _chunks(due, 500):
            busy.update(session.scalars(select(Message.case_id).where(
                Message.case_id.in_(chunk), Message.outcome.in_(OPEN_OUTCOMES))))
            busy.update(session.scalars(select(OutboxItem.case_id).where(
                OutboxItem.case_id.in_(chunk), OutboxItem.status.in_(UNSENT_STATUSES))))
        return undated, [case_id for case_id in due if case_id not in busy], len(busy)

    undated, case_ids, busy = store._read(select_cases)
    result.closed_cases_undated = undated
    result.closed_cases_with_open_work = busy
    if dry_run:
        result.counts["closed_cases"] += len(case_ids)
        return
    for chunk in _chunks(case_ids, cases_per_batch):
        linked = store._write(lambda session, chunk=chunk: _delete_cases(session, chunk))
        # Counted only once the batch is committed.
        result.counts["closed_cases"] += linked.pop("case", 0)
        result.counts["case_messages"] += linked.pop("messages", 0)
        for name, count in linked.items():
            result.linked_rows[name] = result.linked_rows.get(name, 0) + count


def _delete_cases(session: Session, case_ids: list[str]) -> dict[str, int]:
    linked: dict[str, int] = {}
    for case_id in case_ids:
        # Checked again inside the write, in case a message reopened the case since the selection.
        case = session.get(Case, case_id)
        if case is None or case.status != "closed":
            continue
        for name, count in delete_case(session, case_id).items():
            linked[name] = linked.get(name, 0) + count
    return linked


# Audit events and sign-in attempts -----------------------------------------------------------


def _purge_older(store: Store, model, cutoff: datetime, name: str, dry_run: bool, result: PurgeResult,
                 batch: int) -> None:
    pks = store._read(lambda session: list(session.scalars(
        select(model.id).where(model.at < cutoff).order_by(model.at, model.id))))
    if dry_run:
        result.counts[name] += len(pks)
        return
    for chunk in _chunks(pks, batch):
        result.counts[name] += store._write(lambda session, chunk=chunk: _rowcount(
            session.execute(delete(model).where(model.id.in_(chunk)))))


def _purge_done_work_items(store: Store, cutoff: datetime, dry_run: bool, result: PurgeResult, batch: int) -> None:
    """Remove finished work claims with the raw messages: a folder backend's uid is a file name,
    which may name a child. Claims still pending or claimed are never removed."""
    pks = store._read(lambda session: list(session.scalars(
        select(WorkItem.id).where(WorkItem.status == "done", WorkItem.done_at < cutoff).order_by(WorkItem.id))))
    if dry_run:
        result.counts["work_items"] += len(pks)
        return
    for chunk in _chunks(pks, batch):
        result.counts["work_items"] += store._write(lambda session, chunk=chunk: _rowcount(
            session.execute(delete(WorkItem).where(WorkItem.id.in_(chunk)))))


# Helpers ------------------------------------------------------------------------------------


def _years_before(now: datetime, years: int) -> datetime:
    return datetime.combine(_add_years(now.date(), -years), now.timetz())


def _add_years(day: date, years: int) -> date:
    """Return the same day `years` later (or earlier); 29 February becomes 28 February."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def _rowcount(result) -> int:
    return max(result.rowcount or 0, 0)


def _aware(value: datetime) -> datetime:
    # SQLite returns naive datetimes; the store writes every timestamp in UTC.
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _chunks(values: list, size: int):
    for start in range(0, len(values), size):
        yield values[start:start + size]


__all__ = ["purge", "PurgeResult", "OPEN_OUTCOMES", "RECORD_TYPES"]
