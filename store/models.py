"""Tables of the store. The schema itself is created by the Alembic migrations."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (JSON, BigInteger, Boolean, Date, DateTime, Float, ForeignKey,
                        Integer, LargeBinary, String, Text, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


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
    raw: Mapped[bytes] = mapped_column(LargeBinary)
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
    purpose: Mapped[str] = mapped_column(String(40))
    recipient: Mapped[str] = mapped_column(String(320))
    out_message_id: Mapped[str] = mapped_column(String(998), index=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


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
