"""Audit events and corrections, written inside the caller's transaction.

Store functions that change something on a person's behalf call these with their own
session, so the change, its audit event and its correction commit together or not at all.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy.orm import Session

from store.models import AuditEvent, Correction

# The actor recorded for the bot's own jobs, such as the retention purge.
BOT_ACTOR = "ccas-bot"


def add_audit(session: Session, actor: str, action: str, *, target_type: str = "", target_id: str | int = "",
              detail: dict | None = None, at: datetime | None = None) -> AuditEvent:
    """Add an audit event. `detail` holds ids, codes and field names, never personal data or message text."""
    event = AuditEvent(at=at or datetime.now(timezone.utc), actor=actor, action=action, target_type=target_type,
                       target_id=str(target_id), detail=dict(detail or {}))
    session.add(event)
    return event


def add_correction(session: Session, actor: str, field: str, *, message_pk: int | None, bot_category: str | None,
                   at: datetime | None = None) -> Correction:
    """Count one correction of the bot's work against the category the bot gave the message."""
    correction = Correction(at=at or datetime.now(timezone.utc), actor=actor, field=field, message_pk=message_pk,
                            bot_category=bot_category or "")
    session.add(correction)
    return correction
