"""Store functions. Each public method is one transaction: it commits or rolls back whole."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone

from sqlalchemy import Engine, delete, func, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import RemoteError
from store import cases as case_records
from store.models import (AgendaItem, Case, CaseEvent, CaseKey, CaseParty, CaseSchool, CaseSequence,
                          MailboxState, Message, OutboxItem, School, SchoolLink)

TERMINAL_OUTCOMES = ("handled", "needs_person")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class PlannedMail:
    """An outgoing message decided by the pipeline, stored before it is sent."""

    purpose: str
    recipient: str
    out_message_id: str
    raw: bytes
    # A held reply is stored as a "draft" and leaves only after a coordinator approves it.
    held: bool = False


@dataclass
class NewCase:
    """The details of a case the pipeline decided to open."""

    first_name: str = ""
    last_name: str = ""
    dob: date | None = None
    upn: str = ""
    nhs_number: str = ""
    school_urn: str = ""
    ehcp: str = "none"
    status: str = "open"
    lead_email: str = ""


@dataclass
class TriageRecord:
    """Everything one message's triage decided, written in one transaction."""

    message_id: str
    message_id_synthesised: bool
    sha256: str
    raw: bytes
    source: str
    folder: str
    uidvalidity: int | None
    uid: str
    outcome: str
    reasons: list[str]
    sender_email: str = ""
    subject: str = ""
    category: str | None = None
    urgent: bool = False
    confidence: float | None = None
    extracted: dict = field(default_factory=dict)
    case_id: str | None = None
    new_case: NewCase | None = None
    reopen_case: bool = False
    mail: list[PlannedMail] = field(default_factory=list)
    agenda_items: list[str] = field(default_factory=list)
    last_uid: int | None = None
    # "suppressed" stores the planned mail without ever sending it (backfill).
    outbox_status: str = "pending"
    at: datetime | None = None
    bounced_out_ids: list[str] = field(default_factory=list)


class RawPurgedError(LookupError):
    """Raised when a message's original bytes were removed by the retention purge."""

    def __init__(self, pk: int, purged_at: datetime | None) -> None:
        self.pk = pk
        when = f" on {purged_at:%Y-%m-%d}" if purged_at else ""
        super().__init__(f"message {pk}: its original bytes were removed by the retention purge{when}; "
                         "its stored details and case chronology remain")


@dataclass(frozen=True)
class StoredMessage:
    pk: int
    outcome: str
    mailbox_done: bool
    case_id: str | None
    source: str
    folder: str
    uidvalidity: int | None
    uid: str
    attempts: int


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(engine.execution_options(ccas_read_only=True),
                                           expire_on_commit=False)

    def _session(self) -> Session:
        return self._sessions()

    def _write(self, work):
        """Run `work(session)` in one transaction; a locked database becomes RemoteError."""
        return self._run(self._sessions, work)

    def _read(self, work):
        """Run `work(session)` in a read transaction, which on SQLite takes no write lock."""
        return self._run(self._read_sessions, work)

    @staticmethod
    def _run(sessions, work):
        try:
            with sessions() as session, session.begin():
                return work(session)
        except OperationalError as error:
            if "locked" in str(error.orig).lower() or "busy" in str(error.orig).lower():
                raise RemoteError("database locked") from error
            raise

    # Messages -----------------------------------------------------------------

    def find_message(self, message_id: str, sha256: str) -> StoredMessage | None:
        """Return the stored message with this identity, or None."""
        def work(session: Session):
            row = session.scalars(select(Message).where(
                Message.message_id == stored_message_id(message_id), Message.sha256 == sha256)).first()
            return _stored(row) if row else None
        return self._read(work)

    def record_triage(self, record: TriageRecord) -> StoredMessage:
        """Store a triaged message with its case, chronology, mail and agenda items.

        A message seen before with the same identity is updated in place (a retry);
        a known Message-ID with different bytes is kept as a new row, flagged.
        """
        return self._write(lambda session: _record_triage(session, record))

    def record_unreadable(self, *, source: str, folder: str, uidvalidity: int | None, uid: str,
                          raw: bytes, message_id: str, sha256: str, reason: str,
                          last_uid: int | None) -> StoredMessage:
        """Store a message that could not be read, as needing a person."""
        record = TriageRecord(message_id=message_id, message_id_synthesised=True, sha256=sha256,
                              raw=raw, source=source, folder=folder, uidvalidity=uidvalidity,
                              uid=uid, outcome="needs_person", reasons=[reason], last_uid=last_uid)
        return self.record_triage(record)

    def add_reason(self, pk: int, reason: str) -> None:
        """Add a reason code to a stored message without changing its outcome."""
        def work(session: Session):
            row = session.get(Message, pk)
            row.reasons = [*(row.reasons or []), reason]
        self._write(work)

    def mark_needs_person(self, pk: int, reason: str) -> StoredMessage:
        """Send a stored message to a person, adding the reason code."""
        def work(session: Session):
            row = session.get(Message, pk)
            row.outcome = "needs_person"
            row.reasons = [*(row.reasons or []), reason]
            return _stored(row)
        return self._write(work)

    def mark_mailbox_done(self, pk: int) -> None:
        self._write(lambda session: session.execute(
            update(Message).where(Message.id == pk).values(mailbox_done=True)))

    def update_location(self, pk: int, uidvalidity: int | None, uid: str) -> None:
        """Record a message's new UID after the folder's UIDVALIDITY changed."""
        self._write(lambda session: session.execute(
            update(Message).where(Message.id == pk).values(uidvalidity=uidvalidity, uid=uid)))

    def list_unfinished(self, source: str, folder: str, uidvalidity: int | None) -> list[StoredMessage]:
        """Messages committed but not yet moved in the mailbox, or waiting to be retried."""
        def work(session: Session):
            rows = session.scalars(select(Message).where(
                Message.source == source, Message.folder == folder,
                Message.uidvalidity.is_(None) if uidvalidity is None else Message.uidvalidity == uidvalidity,
                Message.mailbox_done.is_(False)).order_by(Message.id))
            return [_stored(row) for row in rows]
        return self._read(work)

    def message_reasons(self, pk: int) -> list[str]:
        return self._read(lambda session: list(session.get(Message, pk).reasons or []))

    def load_raw(self, pk: int) -> bytes:
        """Return a message's original bytes; raises RawPurgedError once the retention purge removed them."""
        def work(session: Session):
            row = session.get(Message, pk)
            if row is None:
                raise LookupError(f"message {pk} not found")
            if row.raw is None:
                raise RawPurgedError(pk, row.raw_purged_at)
            return row.raw
        return self._read(work)

    def find_case_by_message_ids(self, ids: Sequence[str]) -> tuple[str | None, bool]:
        """Return the case of a stored or sent message among `ids`, and whether one was the bot's own."""
        if not ids:
            return None, False

        def work(session: Session):
            own = session.scalars(select(OutboxItem).where(OutboxItem.out_message_id.in_(ids))).first()
            if own is not None:
                return own.case_id, True
            row = session.scalars(select(Message).where(
                Message.message_id.in_(ids), Message.case_id.is_not(None)).order_by(Message.id.desc())).first()
            return (row.case_id if row else None), False
        return self._read(work)

    def sent_by_bot(self, ids: Sequence[str]) -> bool:
        """Return whether any of these Message-IDs is mail the bot sent."""
        if not ids:
            return False
        return self._read(lambda session: session.scalars(
            select(OutboxItem.id).where(OutboxItem.out_message_id.in_(ids))).first() is not None)

    def recent_mail_count(self, *, since: datetime, case_id: str | None = None,
                          recipient: str | None = None, purpose: str | None = None) -> int:
        """Count outgoing mail created since `since`, narrowed by case, recipient and purpose."""
        def work(session: Session):
            query = select(func.count(OutboxItem.id)).where(OutboxItem.created_at >= since)
            if case_id is not None:
                query = query.where(OutboxItem.case_id == case_id)
            if recipient is not None:
                query = query.where(OutboxItem.recipient == recipient)
            if purpose is not None:
                query = query.where(OutboxItem.purpose == purpose)
            return session.scalar(query)
        return self._read(work)

    def mark_outbox_bounced(self, out_message_ids: Sequence[str]) -> list[str]:
        """Mark the bot's own sent mail named in a bounce as failed; return the purposes marked."""
        if not out_message_ids:
            return []

        def work(session: Session):
            rows = session.scalars(select(OutboxItem).where(OutboxItem.out_message_id.in_(out_message_ids))).all()
            for row in rows:
                row.status = "bounced"
            return [row.purpose for row in rows]
        return self._write(work)

    # Mailbox state -------------------------------------------------------------

    def mailbox_state(self, source: str, folder: str, uidvalidity: int | None) -> int:
        """Return the last processed UID; a new UIDVALIDITY starts the folder again from 0."""
        def work(session: Session):
            state = session.scalars(select(MailboxState).where(
                MailboxState.source == source, MailboxState.folder == folder)).first()
            if state is None:
                session.add(MailboxState(source=source, folder=folder, uidvalidity=uidvalidity, last_uid=0))
                return 0
            if state.uidvalidity != uidvalidity:
                state.uidvalidity = uidvalidity
                state.last_uid = 0
            return state.last_uid
        return self._write(work)

    def mailbox_cursor(self, source: str, folder: str) -> str:
        """Return the backend's saved position in the folder (a Graph delta link), or "" for none."""
        def work(session: Session):
            state = session.scalars(select(MailboxState).where(
                MailboxState.source == source, MailboxState.folder == folder)).first()
            return (state.cursor or "") if state is not None else ""
        return self._read(work)

    def save_mailbox_cursor(self, source: str, folder: str, cursor: str) -> None:
        """Save the backend's position in the folder, creating the folder's state row when missing."""
        def work(session: Session):
            state = session.scalars(select(MailboxState).where(
                MailboxState.source == source, MailboxState.folder == folder)).first()
            if state is None:
                session.add(MailboxState(source=source, folder=folder, uidvalidity=None, last_uid=0,
                                         cursor=cursor))
            else:
                state.cursor = cursor
        self._write(work)

    # Cases and schools -------------------------------------------------------------

    def reserve_case_id(self, year: int) -> str:
        """Give out the next case id of `year`; an id reserved but never used leaves a gap."""
        return self._write(lambda session: _reserve_case_id(session, year))

    def get_case(self, case_id: str) -> Case | None:
        return self._read(lambda session: session.get(Case, case_id))

    def find_cases(self, *, upn: str = "", nhs_number: str = "", dob: date | None = None,
                   last_names: Iterable[str] = ()) -> list[Case]:
        """Return cases sharing any of the given keys; the indexes keep this a short list."""
        clauses = []
        if upn:
            clauses.append(Case.upn == upn)
        if nhs_number:
            clauses.append(Case.nhs_number == nhs_number)
        if dob:
            clauses.append(Case.dob == dob)
        names = [name.lower() for name in last_names if name]
        if names:
            clauses.append(func.lower(Case.last_name).in_(names))
        if not clauses:
            return []
        return self._read(lambda session: list(session.scalars(select(Case).where(or_(*clauses)).limit(200))))

    def upsert_schools(self, rows: Iterable[dict]) -> tuple[int, int]:
        """Add or update schools by URN; return (added, updated)."""
        def work(session: Session):
            added = updated = 0
            for row in rows:
                existing = session.get(School, row["urn"])
                if existing is None:
                    session.add(School(**row))
                    added += 1
                else:
                    for key, value in row.items():
                        setattr(existing, key, value)
                    updated += 1
            return added, updated
        return self._write(work)

    def upsert_cases(self, rows: Iterable[dict]) -> tuple[int, int]:
        """Add or update cases by id with their schools, lead party and keys; return (added, updated).

        A row may carry `former_school_urns`, which go into the school history.
        """
        def work(session: Session):
            added = updated = 0
            now = utcnow()
            for row in rows:
                row = dict(row)
                former_schools = row.pop("former_school_urns", ())
                existing = session.get(Case, row["id"])
                if existing is None:
                    existing = Case(**row)
                    session.add(existing)
                    added += 1
                else:
                    for key, value in row.items():
                        setattr(existing, key, value)
                    updated += 1
                case_records.index_case(session, existing, now, former_school_urns=former_schools)
            return added, updated
        return self._write(work)

    def insert_cases_bulk(self, rows: Sequence[dict], former_schools: dict | None = None) -> None:
        """Insert new cases fast (executemany) with their schools, lead parties and keys."""
        self._write(lambda session: case_records.insert_cases_bulk(session, rows, utcnow(), former_schools))

    def rebuild_case_keys(self) -> int:
        """Recompute every case's blocking keys, as after a change to the name lists."""
        return self._write(case_records.rebuild_all_keys)

    def match_lookup(self, *, keys: Iterable[str] = (), case_ids: Iterable[str] = (), sender_domain: str = "",
                     school_urns: Iterable[str] = (), limit: int = 40,
                     keys_for_schools=None) -> case_records.MatchLookup:
        """Read what matching needs for one message in one transaction: see store.cases.match_lookup."""
        return self._read(lambda session: case_records.match_lookup(
            session, keys=keys, case_ids=case_ids, sender_domain=sender_domain,
            school_urns=school_urns, limit=limit, keys_for_schools=keys_for_schools))

    def case_views(self, case_ids: Sequence[str]) -> dict[str, case_records.CaseView]:
        return self._read(lambda session: case_records.load_case_views(session, case_ids))

    def add_case_party(self, case_id: str, email: str, role: str) -> bool:
        """Let `email` write about a case; return False when it already may."""
        def work(session: Session):
            email_lower = email.lower()
            exists = session.scalars(select(CaseParty.id).where(
                CaseParty.case_id == case_id, CaseParty.email == email_lower)).first()
            if exists is not None:
                return False
            session.add(CaseParty(case_id=case_id, email=email_lower, role=role, added_at=utcnow()))
            return True
        return self._write(work)

    def replace_school_links(self, links: Iterable[dict]) -> int:
        """Replace the predecessor and successor links of the schools named in `links`."""
        def work(session: Session):
            links_list = list(links)
            urns = {link["urn"] for link in links_list}
            if urns:
                session.execute(delete(SchoolLink).where(SchoolLink.urn.in_(urns)))
            unique = {(link["urn"], link["linked_urn"]): link for link in links_list}
            for link in unique.values():
                session.add(SchoolLink(**link))
            return len(unique)
        return self._write(work)

    def case_counts(self) -> dict[str, int]:
        """Return the number of cases, school history rows, parties and keys."""
        def work(session: Session):
            return {model.__tablename__: session.scalar(select(func.count()).select_from(model))
                    for model in (Case, CaseSchool, CaseParty, CaseKey)}
        return self._read(work)

    def list_schools(self) -> list[School]:
        return self._read(lambda session: list(session.scalars(select(School))))

    # Outbox ---------------------------------------------------------------------

    def pending_outbox(self, message_pk: int | None = None) -> list[OutboxItem]:
        def work(session: Session):
            query = select(OutboxItem).where(OutboxItem.status == "pending").order_by(OutboxItem.id)
            if message_pk is not None:
                query = query.where(OutboxItem.message_pk == message_pk)
            return list(session.scalars(query))
        return self._read(work)

    def mark_sent(self, outbox_id: int) -> None:
        self._write(lambda session: session.execute(update(OutboxItem).where(
            OutboxItem.id == outbox_id).values(status="sent", sent_at=utcnow())))

    def mark_send_failed(self, outbox_id: int, error_code: str, permanent: bool = False) -> None:
        """Count a failed send; a permanent failure stops further attempts ("failed")."""
        values = {"attempts": OutboxItem.attempts + 1, "last_error": error_code[:255]}
        if permanent:
            values["status"] = "failed"
        self._write(lambda session: session.execute(update(OutboxItem).where(
            OutboxItem.id == outbox_id).values(**values)))

    def outbox_for_message(self, message_pk: int) -> list[OutboxItem]:
        return self._read(lambda session: list(session.scalars(
            select(OutboxItem).where(OutboxItem.message_pk == message_pk).order_by(OutboxItem.id))))


def _stored(row: Message) -> StoredMessage:
    return StoredMessage(pk=row.id, outcome=row.outcome, mailbox_done=row.mailbox_done,
                         case_id=row.case_id, source=row.source, folder=row.folder,
                         uidvalidity=row.uidvalidity, uid=row.uid, attempts=row.attempts)


CASE_ID = re.compile(r"^CCAS-(\d{4})-(\d{4,})$")


# The advisory lock that serialises case numbering between workers on PostgreSQL.
CASE_SEQUENCE_LOCK_KEY = 0x6363617302


def _reserve_case_id(session: Session, year: int) -> str:
    if session.get_bind().dialect.name == "postgresql":
        # Two workers must never read the same last number (SQLite's BEGIN IMMEDIATE already serialises).
        session.execute(select(func.pg_advisory_xact_lock(CASE_SEQUENCE_LOCK_KEY)))
    sequence = session.get(CaseSequence, year)
    if sequence is None:
        # Start after any imported case of that year, so imported ids are never given out again.
        prefix = f"CCAS-{year}-"
        ids = session.scalars(select(Case.id).where(Case.id.like(prefix + "%"))).all()
        numbers = [int(m.group(2)) for m in map(CASE_ID.match, ids) if m]
        sequence = CaseSequence(year=year, last_number=max(numbers, default=0))
        session.add(sequence)
    sequence.last_number += 1
    return f"CCAS-{year}-{sequence.last_number:04d}"


# Column lengths that PostgreSQL enforces and SQLite does not. A longer Message-ID is stored
# as a prefix with the hash of the whole. A longer sender or recipient address is cut, and
# RFC 5321 already forbids one (a path holds 256 characters at most).
MESSAGE_ID_LENGTH = 998
ADDRESS_LENGTH = 320


def stored_message_id(message_id: str) -> str:
    """Return the Message-ID as the store keeps it: unchanged up to 998 characters, else prefix and SHA-256."""
    if len(message_id) <= MESSAGE_ID_LENGTH:
        return message_id
    digest = hashlib.sha256(message_id.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{message_id[:MESSAGE_ID_LENGTH - len(digest) - 1]}#{digest}"


def _record_triage(session: Session, record: TriageRecord) -> StoredMessage:
    now = record.at or utcnow()
    record = replace(record, message_id=stored_message_id(record.message_id),
                     sender_email=record.sender_email[:ADDRESS_LENGTH])
    row = session.scalars(select(Message).where(
        Message.message_id == record.message_id, Message.sha256 == record.sha256)).first()
    if row is None:
        conflict = session.scalars(select(Message.id).where(Message.message_id == record.message_id)).first()
        row = Message(message_id=record.message_id, message_id_synthesised=record.message_id_synthesised,
                      sha256=record.sha256, raw=record.raw, size=len(record.raw), conflicts_with_id=conflict,
                      source=record.source, folder=record.folder, uidvalidity=record.uidvalidity,
                      uid=record.uid, received_at=now, attempts=0, outcome=record.outcome)
        session.add(row)

    case_id = record.case_id
    if record.new_case is not None and case_id is not None and session.get(Case, case_id) is None:
        case = Case(id=case_id, opened=now.date(), **record.new_case.__dict__)
        session.add(case)
        case_records.index_case(session, case, now, party_role="referrer")
        session.add(CaseEvent(case_id=case_id, kind="case_opened", at=now, detail={}))
    elif record.reopen_case and case_id is not None:
        case = session.get(Case, case_id)
        if case is not None and case.status == "closed":
            case.status = "open"
            session.add(CaseEvent(case_id=case_id, kind="case_reopened", at=now, detail={}))

    row.attempts += 1
    row.outcome = record.outcome
    row.reasons = list(record.reasons)
    row.processed_at = now
    row.sender_email = record.sender_email
    row.subject = record.subject
    row.category = record.category
    row.urgent = record.urgent
    row.confidence = record.confidence
    row.extracted = record.extracted
    row.case_id = case_id
    session.flush()

    if case_id is not None:
        session.add(CaseEvent(case_id=case_id, message_pk=row.id, kind="message_linked", at=now,
                              detail={"category": record.category, "outcome": record.outcome}))

    for mail in record.mail:
        _add_outbox(session, row, case_id, mail, now, record.outbox_status)

    if record.bounced_out_ids:
        # A bounce of the bot's own mail marks that mail failed, for a person to follow up.
        for item in session.scalars(select(OutboxItem).where(OutboxItem.out_message_id.in_(record.bounced_out_ids))):
            item.status = "bounced"

    for item in record.agenda_items:
        exists = session.scalars(select(AgendaItem.id).where(
            AgendaItem.message_pk == row.id, AgendaItem.standing_item == item)).first()
        if exists is None:
            session.add(AgendaItem(standing_item=item, case_id=case_id, message_pk=row.id, created_at=now))

    if record.last_uid is not None:
        # One statement, so that workers storing messages at once never move it backwards.
        session.execute(update(MailboxState).where(
            MailboxState.source == record.source, MailboxState.folder == record.folder,
            MailboxState.last_uid < record.last_uid).values(last_uid=record.last_uid))

    session.flush()
    return _stored(row)


def _add_outbox(session: Session, row: Message, case_id: str | None, mail: PlannedMail, now: datetime,
                status: str = "pending") -> None:
    # The key is the incoming Message-ID, not the stored row, so a copy of the same
    # message arriving again (or re-synced after a UIDVALIDITY change) never gets a second reply.
    key = f"{row.message_id}|{mail.purpose}|{mail.recipient}"[:255]
    if session.scalars(select(OutboxItem.id).where(OutboxItem.dedupe_key == key)).first() is not None:
        return
    if mail.held and status == "pending":
        status = "draft"
    last_error = ""
    if len(mail.recipient) > ADDRESS_LENGTH:
        # No mail server takes such an address, so the reply waits for a person as a failed send.
        status, last_error = "failed", "recipient address too long"
    session.add(OutboxItem(dedupe_key=key, message_pk=row.id, case_id=case_id, purpose=mail.purpose,
                           recipient=mail.recipient[:ADDRESS_LENGTH], out_message_id=mail.out_message_id,
                           raw=mail.raw, status=status, last_error=last_error, created_at=now))
