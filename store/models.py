"""Tables of the store. The schema itself is created by the Alembic migrations."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (JSON, BigInteger, Boolean, Date, DateTime, Float, ForeignKey, Index,
                        Integer, LargeBinary, String, Text, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from store.crypto import EncryptedBytes


class Base(DeclarativeBase):
    pass


class Message(Base):
    """One incoming message: its raw bytes, where it came from and how it ended."""

    __tablename__ = "message"
    __table_args__ = (UniqueConstraint("message_id", "sha256", name="uq_message_identity"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(998), index=True)
    message_id_synthesised: Mapped[bool] = mapped_column(Boolean, default=False)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    # The original bytes, encrypted when [store] encryption_key_env is set (store/crypto.py).
    # None once the retention purge removed them (raw_purged_at says when).
    raw: Mapped[bytes | None] = mapped_column(EncryptedBytes)
    size: Mapped[int] = mapped_column(Integer)
    conflicts_with_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))

    source: Mapped[str] = mapped_column(String(20))
    folder: Mapped[str] = mapped_column(String(255))
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    uid: Mapped[str] = mapped_column(String(255))
    mailbox_done: Mapped[bool] = mapped_column(Boolean, default=False)

    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str] = mapped_column(String(20), index=True)
    reasons: Mapped[list] = mapped_column(JSON, default=list)

    sender_email: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str | None] = mapped_column(String(40))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    confidence: Mapped[float | None] = mapped_column(Float)
    extracted: Mapped[dict] = mapped_column(JSON, default=dict)
    case_id: Mapped[str | None] = mapped_column(ForeignKey("case_record.id"), index=True)
    # Set by the retention purge (store/retention.py): when the raw bytes, and later the
    # sender, subject and extracted details, were removed.
    raw_purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    details_purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MailboxState(Base):
    """How far the bot has read one mailbox folder: its UIDVALIDITY and last processed UID."""

    __tablename__ = "mailbox_state"
    __table_args__ = (UniqueConstraint("source", "folder", name="uq_mailbox_state_folder"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(20))
    folder: Mapped[str] = mapped_column(String(255))
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    # Backends without UIDs keep their own position here, such as a Graph delta link.
    cursor: Mapped[str] = mapped_column(Text, default="")


class School(Base):
    __tablename__ = "school"

    urn: Mapped[str] = mapped_column(String(20), primary_key=True)
    laestab: Mapped[str] = mapped_column(String(20), default="")
    name: Mapped[str] = mapped_column(String(255))
    establishment_type: Mapped[str] = mapped_column(String(255), default="")
    postcode: Mapped[str] = mapped_column(String(20), default="")
    domain: Mapped[str] = mapped_column(String(255), default="", index=True)
    status: Mapped[str] = mapped_column(String(20), default="open")
    website: Mapped[str] = mapped_column(String(255), default="")
    closed_on: Mapped[date | None] = mapped_column(Date)


class SchoolLink(Base):
    """A predecessor or successor of a school in GIAS, such as the academy that replaced it."""

    __tablename__ = "school_link"

    urn: Mapped[str] = mapped_column(String(20), primary_key=True)
    linked_urn: Mapped[str] = mapped_column(String(20), primary_key=True, index=True)
    # GIAS link type, such as "Successor", "Predecessor" or "Successor - amalgamated".
    link_type: Mapped[str] = mapped_column(String(60), default="")
    linked_on: Mapped[date | None] = mapped_column(Date)


class Case(Base):
    """A child known to the panel, and where their case stands."""

    __tablename__ = "case_record"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="", index=True)
    known_as: Mapped[str] = mapped_column(String(100), default="")
    dob: Mapped[date | None] = mapped_column(Date, index=True)
    upn: Mapped[str] = mapped_column(String(13), default="", index=True)
    nhs_number: Mapped[str] = mapped_column(String(10), default="", index=True)
    school_urn: Mapped[str] = mapped_column(String(20), default="")
    status: Mapped[str] = mapped_column(String(20), default="open")
    ehcp: Mapped[str] = mapped_column(String(20), default="none")
    opened: Mapped[date | None] = mapped_column(Date)
    last_reviewed: Mapped[date | None] = mapped_column(Date)
    lead_email: Mapped[str] = mapped_column(String(320), default="")
    lead_professional: Mapped[str] = mapped_column(String(255), default="")
    next_review: Mapped[date | None] = mapped_column(Date)
    closed_on: Mapped[date | None] = mapped_column(Date)
    # Other first names (known-as names) and surnames the child has been known by.
    other_first_names: Mapped[list] = mapped_column(JSON, default=list)
    other_last_names: Mapped[list] = mapped_column(JSON, default=list)
    former_upns: Mapped[list] = mapped_column(JSON, default=list)


class CaseSchool(Base):
    """One school in a child's school history; `left_on` is None for the current school."""

    __tablename__ = "case_school"
    __table_args__ = (UniqueConstraint("case_id", "urn", name="uq_case_school"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("case_record.id"), index=True)
    urn: Mapped[str] = mapped_column(String(20), index=True)
    started_on: Mapped[date | None] = mapped_column(Date)
    left_on: Mapped[date | None] = mapped_column(Date)


class CaseParty(Base):
    """Someone who may write about a case: lead professional, referrer, school contact."""

    __tablename__ = "case_party"
    __table_args__ = (UniqueConstraint("case_id", "email", name="uq_case_party"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("case_record.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    role: Mapped[str] = mapped_column(String(40))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CaseKey(Base):
    """A blocking key of a case, such as a surname sound with a first name.

    Matching looks candidates up by these keys instead of reading every case;
    store/case_keys.py makes them.
    """

    __tablename__ = "case_key"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("case_record.id"), primary_key=True, index=True)


class CaseSequence(Base):
    """The last case number given out in a year, so case ids are never reused."""

    __tablename__ = "case_sequence"

    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer, default=0)


class CaseEvent(Base):
    """One line of a case's chronology: a message linked, a case opened, a decision."""

    __tablename__ = "case_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("case_record.id"), index=True)
    message_pk: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    kind: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class OutboxItem(Base):
    """A message the bot decided to send. `dedupe_key` makes a second send impossible."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    message_pk: Mapped[int | None] = mapped_column(ForeignKey("message.id"), index=True)
    case_id: Mapped[str | None] = mapped_column(ForeignKey("case_record.id"))
    purpose: Mapped[str] = mapped_column(String(80))
    recipient: Mapped[str] = mapped_column(String(320))
    out_message_id: Mapped[str] = mapped_column(String(998), index=True)
    # The message as sent, encrypted like Message.raw; None once the retention purge removed it.
    raw: Mapped[bytes | None] = mapped_column(EncryptedBytes)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    body_purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Which worker is sending it, and until when; a lapsed claim may be taken (store/claims.py).
    claimed_by: Mapped[str] = mapped_column(String(255), default="", server_default="")
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WorkItem(Base):
    """A message a worker listed in the mailbox, for one worker at a time to claim and finish.

    `uidvalidity` is 0 for a backend without one. A claim lasts until `claimed_until`;
    status "done" means the message is stored and moved (store/claims.py).
    """

    __tablename__ = "work_item"
    __table_args__ = (UniqueConstraint("source", "folder", "uidvalidity", "uid", name="uq_work_item_message"),
                      Index("ix_work_item_claimable", "status", "source", "folder", "uidvalidity"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(20))
    folder: Mapped[str] = mapped_column(String(255))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    claimed_by: Mapped[str] = mapped_column(String(255), default="")
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    listed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AgendaItem(Base):
    """A case queued under a standing item of the next panel meeting."""

    __tablename__ = "agenda_item"
    __table_args__ = (UniqueConstraint("message_pk", "standing_item", name="uq_agenda_message_item"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    standing_item: Mapped[str] = mapped_column(String(40))
    case_id: Mapped[str | None] = mapped_column(ForeignKey("case_record.id"))
    message_pk: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    meeting_date: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Why the item is on the agenda: "queued" by routing, "review_due" or "review_overdue"
    # under the review rule, or "aob" added by a coordinator (store/panel.py).
    reason: Mapped[str] = mapped_column(String(40), default="queued")
    # The order within its standing item; None sorts after numbered items, oldest first.
    position: Mapped[int | None] = mapped_column(Integer)
    # A short heading for an AOB item that has no case.
    title: Mapped[str] = mapped_column(String(200), default="")


class PanelMeeting(Base):
    """One weekly panel meeting, created when its agenda is prepared or its record written."""

    __tablename__ = "panel_meeting"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_date: Mapped[date] = mapped_column(Date, unique=True)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    location: Mapped[str] = mapped_column(String(255), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PanelAttendance(Base):
    """Someone at a panel meeting, or who sent apologies (`attended` False)."""

    __tablename__ = "panel_attendance"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("panel_meeting.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(320), default="")
    organisation: Mapped[str] = mapped_column(String(255), default="")
    attended: Mapped[bool] = mapped_column(Boolean, default=True)


class PanelDecision(Base):
    """The panel's decision on one case at one meeting; `kind` is one of store.panel.DECISION_KINDS."""

    __tablename__ = "panel_decision"
    __table_args__ = (UniqueConstraint("meeting_id", "case_id", name="uq_panel_decision_case"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("panel_meeting.id"), index=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("case_record.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    # Shown to the lead professional in the outcome email, after a coordinator approves it.
    summary: Mapped[str] = mapped_column(Text, default="")
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PanelAction(Base):
    """An action agreed at a meeting; its id is the action number people quote ("action 5")."""

    __tablename__ = "panel_action"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("panel_meeting.id"), index=True)
    case_id: Mapped[str | None] = mapped_column(ForeignKey("case_record.id"), index=True)
    owner_email: Mapped[str] = mapped_column(String(320), index=True)
    description: Mapped[str] = mapped_column(Text)
    due_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    done_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # One entry per change: {"at", "message_pk", "by", "status"}; no message text.
    updates: Mapped[list] = mapped_column(JSON, default=list)


class CaseClock(Base):
    """A statutory clock on a case, such as the sixth school day after a permanent exclusion."""

    __tablename__ = "case_clock"
    __table_args__ = (UniqueConstraint("case_id", "kind", name="uq_case_clock_kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("case_record.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    started_on: Mapped[date | None] = mapped_column(Date)
    due_on: Mapped[date | None] = mapped_column(Date)
    # True when the date was counted without the school's term dates.
    estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(String(60), default="")
    message_pk: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class UserAccount(Base):
    """Someone who signs in to the web app: a local account, an Entra ID account, or both."""

    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(255), default="")
    # One of bot.web.auth.ROLES: "coordinator", "panel_member" or "admin".
    role: Mapped[str] = mapped_column(String(20))
    # An argon2 hash; empty for an account that signs in only through OpenID Connect.
    password_hash: Mapped[str] = mapped_column(String(255), default="")
    # The OpenID Connect subject ("oid" claim of Entra ID), set at the first sign-in.
    oidc_subject: Mapped[str | None] = mapped_column(String(255), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_sign_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SignInAttempt(Base):
    """A failed sign-in, kept for the rate limit; `key` is a hash of the account name or client address."""

    __tablename__ = "sign_in_attempt"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class AuditEvent(Base):
    """Who viewed or changed what, and when. `detail` holds ids and field names, never message text."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    # A user's username, or "ccas-bot" for the bot's own jobs (purge, reminders).
    actor: Mapped[str] = mapped_column(String(320), index=True)
    action: Mapped[str] = mapped_column(String(60), index=True)
    target_type: Mapped[str] = mapped_column(String(40), default="")
    target_id: Mapped[str] = mapped_column(String(60), default="", index=True)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class Correction(Base):
    """A coordinator's change to what the bot decided, counted per category for the dashboard."""

    __tablename__ = "correction"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(320))
    message_pk: Mapped[int | None] = mapped_column(ForeignKey("message.id"), index=True)
    # The category the bot gave the message, so corrections count against the bot's decision.
    bot_category: Mapped[str] = mapped_column(String(40), default="")
    # What was corrected: "category", "child.<field>", "case_link", "draft_edit", "draft_reject".
    field: Mapped[str] = mapped_column(String(40))
