"""Work claiming, so that several workers share one mailbox and one PostgreSQL database safely.

Whoever lists the mailbox adds one `work_item` row per message (INSERT ... ON CONFLICT
DO NOTHING, so listing twice adds nothing). A worker then claims a batch: SELECT ...
FOR UPDATE SKIP LOCKED picks rows no other worker holds, and the claim lasts until
`claimed_until`. Before each message the worker renews its claim, which fails when the
claim lapsed and another worker took the row; after the message is stored and moved the
row is "done". A worker that is killed leaves its rows claimed until the claim lapses,
then another worker takes them, so nothing is lost. Outgoing mail is claimed the same way
(`claim_outbox`), so no reply leaves twice from two workers.

The one window for a duplicate stays the one a single worker has (bot/intake.py): a
worker killed between the SMTP server accepting a reply and the commit that marks it sent.
A worker that stalls for longer than the claim timeout may also see its message finished
by another, which then finds the message stored and only moves it.

On SQLite the same functions work without SKIP LOCKED (BEGIN IMMEDIATE serialises the
writers), but the bot runs one worker there: bot/workers.py refuses a second.

LeaderLock elects one leader for the daily jobs with pg_try_advisory_lock, held on a
connection of its own for the leader's lifetime; when the leader dies, its session ends,
the lock is free and the next worker that asks becomes the leader.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from store.models import MailboxState, Message, OutboxItem, WorkItem
from store.records import Store, StoredMessage, _stored, utcnow

log = logging.getLogger(__name__)

# The advisory lock key of the daily jobs' leader: "ccas" in ASCII, then 1.
LEADER_LOCK_KEY = 0x6363617301


@dataclass(frozen=True)
class ClaimedItem:
    id: int
    source: str
    folder: str
    uidvalidity: int | None
    uid: str
    attempts: int


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


class WorkClaims:
    """One worker's claims on mailbox work items and outgoing mail; each method is one transaction."""

    def __init__(self, store: Store, worker_id: str, claim_seconds: int = 300, batch_size: int = 20) -> None:
        self.store = store
        self.worker_id = worker_id
        self.claim_seconds = claim_seconds
        self.batch_size = batch_size
        self._skip_locked = is_postgresql(store.engine)

    def _until(self) -> datetime:
        return utcnow() + timedelta(seconds=self.claim_seconds)

    def _insert(self, table):
        dialect = postgresql if is_postgresql(self.store.engine) else sqlite
        return dialect.insert(table)

    # Mailbox work items ---------------------------------------------------------

    def ensure_mailbox_state(self, source: str, folder: str, uidvalidity: int | None) -> None:
        """Create the folder's state row if missing, without failing when another worker just did."""
        statement = self._insert(MailboxState).values(
            source=source, folder=folder, uidvalidity=uidvalidity, last_uid=0, cursor="")
        self.store._write(lambda session: session.execute(
            statement.on_conflict_do_nothing(index_elements=["source", "folder"])))

    def add_listed(self, source: str, folder: str, uidvalidity: int | None, uids: Iterable[str]) -> None:
        """Add a work item per listed UID; UIDs already listed are left as they are."""
        now = utcnow()
        rows = [{"source": source, "folder": folder, "uidvalidity": uidvalidity or 0, "uid": uid,
                 "status": "pending", "claimed_by": "", "claimed_until": None, "attempts": 0,
                 "listed_at": now} for uid in dict.fromkeys(uids)]
        if not rows:
            return
        statement = self._insert(WorkItem).on_conflict_do_nothing(
            index_elements=["source", "folder", "uidvalidity", "uid"])

        def work(session: Session) -> None:
            for start in range(0, len(rows), 1000):
                session.execute(statement, rows[start:start + 1000])
        self.store._write(work)

    def claim(self, source: str, folder: str, uidvalidity: int | None,
              exclude: Iterable[int] = ()) -> list[ClaimedItem]:
        """Claim up to batch_size pending items of the folder that no live claim holds, oldest first.

        Items this worker's name already holds count as free: they are left from an earlier run
        of this worker that was killed, because one worker works on one item at a time.
        """
        excluded = list(exclude)

        def work(session: Session) -> list[ClaimedItem]:
            now = utcnow()
            query = (select(WorkItem).where(
                WorkItem.status == "pending", WorkItem.source == source, WorkItem.folder == folder,
                WorkItem.uidvalidity == (uidvalidity or 0),
                or_(WorkItem.claimed_until.is_(None), WorkItem.claimed_until < now,
                    WorkItem.claimed_by == self.worker_id))
                .order_by(WorkItem.id).limit(self.batch_size))
            if excluded:
                query = query.where(WorkItem.id.not_in(excluded))
            if self._skip_locked:
                query = query.with_for_update(skip_locked=True)
            items = list(session.scalars(query))
            until = self._until()
            for item in items:
                item.claimed_by = self.worker_id
                item.claimed_until = until
                item.attempts += 1
            return [ClaimedItem(item.id, item.source, item.folder, uidvalidity, item.uid, item.attempts)
                    for item in items]
        return self.store._write(work)

    def renew(self, item: ClaimedItem) -> bool:
        """Extend this worker's claim before working on the item; return False when another worker has taken it."""
        def work(session: Session) -> bool:
            result = session.execute(update(WorkItem).where(
                WorkItem.id == item.id, WorkItem.status == "pending",
                WorkItem.claimed_by == self.worker_id).values(claimed_until=self._until()))
            return result.rowcount == 1
        return self.store._write(work)

    def finish(self, item: ClaimedItem) -> None:
        """Mark the item done: its message is stored and moved."""
        self.store._write(lambda session: session.execute(update(WorkItem).where(
            WorkItem.id == item.id).values(status="done", done_at=utcnow(), claimed_until=None)))

    def release(self, item: ClaimedItem) -> None:
        """Give the item back unfinished (a retry, or an error), for any worker to claim at once."""
        self.store._write(lambda session: session.execute(update(WorkItem).where(
            WorkItem.id == item.id, WorkItem.claimed_by == self.worker_id, WorkItem.status == "pending")
            .values(claimed_by="", claimed_until=None)))

    def unfinished_at(self, source: str, folder: str, uidvalidity: int | None, uid: str) -> StoredMessage | None:
        """Return the stored message at this place that is not yet moved or waits for a retry, or None."""
        def work(session: Session) -> StoredMessage | None:
            row = session.scalars(select(Message).where(
                Message.source == source, Message.folder == folder,
                Message.uidvalidity.is_(None) if uidvalidity is None else Message.uidvalidity == uidvalidity,
                Message.uid == uid, Message.mailbox_done.is_(False)).order_by(Message.id)).first()
            return _stored(row) if row else None
        return self.store._read(work)

    def counts(self) -> dict[str, int]:
        """Work items by status, for the benchmark and the tests."""
        def work(session: Session) -> dict[str, int]:
            from sqlalchemy import func
            rows = session.execute(select(WorkItem.status, func.count()).group_by(WorkItem.status))
            return {status: count for status, count in rows}
        return self.store._read(work)

    # Outgoing mail -------------------------------------------------------------

    def claim_outbox(self, message_pk: int | None = None) -> list[OutboxItem]:
        """Claim the pending outgoing mail (of one message, or all) that no other worker's live claim holds."""
        def work(session: Session) -> list[OutboxItem]:
            now = utcnow()
            query = (select(OutboxItem).where(
                OutboxItem.status == "pending",
                or_(OutboxItem.claimed_until.is_(None), OutboxItem.claimed_until < now,
                    OutboxItem.claimed_by == self.worker_id))
                .order_by(OutboxItem.id))
            if message_pk is not None:
                query = query.where(OutboxItem.message_pk == message_pk)
            if self._skip_locked:
                query = query.with_for_update(skip_locked=True)
            items = list(session.scalars(query))
            until = self._until()
            for item in items:
                item.claimed_by = self.worker_id
                item.claimed_until = until
            session.flush()
            return items
        return self.store._write(work)

    def release_outbox(self, outbox_id: int) -> None:
        """Give back a claim on outgoing mail that could not be sent, so the next poll tries again."""
        self.store._write(lambda session: session.execute(update(OutboxItem).where(
            and_(OutboxItem.id == outbox_id, OutboxItem.claimed_by == self.worker_id))
            .values(claimed_by="", claimed_until=None)))


class LeaderLock:
    """One leader among the workers for the daily jobs, through a PostgreSQL advisory lock.

    The lock belongs to the session of a connection kept open for it, so it lasts as long
    as this worker (or that connection) lives. On any other database every worker is the
    leader, because only one worker runs there.
    """

    def __init__(self, engine: Engine, key: int = LEADER_LOCK_KEY) -> None:
        self.engine = engine
        self.key = key
        self._connection = None

    def is_leader(self) -> bool:
        """Return whether this worker leads, trying to take the lead when it does not."""
        if not is_postgresql(self.engine):
            return True
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT 1"))
                return True
            except DBAPIError:
                # The session ended (the server restarted), and the lock with it.
                log.warning("leader lock connection lost; asking for the lock again")
                self._drop()
        connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            taken = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}).scalar()
        except BaseException:
            connection.close()
            raise
        if taken:
            self._connection = connection
            log.info("this worker leads the daily jobs")
            return True
        connection.close()
        return False

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.invalidate()
            except DBAPIError:
                pass

    def release(self) -> None:
        """Give up the lead (closing the lock's connection ends its session and frees the lock)."""
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
            except DBAPIError:
                pass
            self._connection.close()
            self._connection = None
