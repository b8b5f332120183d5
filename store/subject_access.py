"""Subject access and erasure: everything the store contains about one child's case.

A message concerns a case when the message is linked to it (Message.case_id), or when one
of the case's chronology events, agenda items, clocks or outgoing mails refers to it. A
message can concern two cases: one message naming two children, or the messages of two
cases that were merged. The rule for such a message, in the export and in erasure:

- a message that concerns only this case is exported with its original (.eml) and erased
  with everything that refers to it;
- a message that also concerns another case is exported without its original and subject,
  which name the other child, and erasure removes only this case's links to it. When the
  message was linked to this case, it is linked to the other case instead and its
  extracted details, which described this child, are cleared.

A case merged into another (status "merged", with a "merged_into" chronology event) is
the same child: it is exported and erased with the case it was merged into.

Audit events about the case are kept by erasure: they hold user names, actions and ids,
and the retention purge removes them after `[retention] audit_events_years`.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session, defer

from store.audit import add_audit
from store.models import (AgendaItem, AuditEvent, Case, CaseClock, CaseEvent, CaseKey, CaseParty, CaseSchool,
                          Correction, Message, OutboxItem, PanelAction, PanelDecision, PanelMeeting)
from store.records import Store


class UnknownCaseError(LookupError):
    """Raised when no case has the given id."""

    def __init__(self, case_id: str) -> None:
        self.case_id = case_id
        super().__init__(f"case {case_id} not found; check the id (such as CCAS-2026-0001) with the case register")


# Every (table, column naming a case, column naming a message) that links a message to a case.
_MESSAGE_LINKS = (
    (Message, Message.case_id, Message.id),
    (CaseEvent, CaseEvent.case_id, CaseEvent.message_pk),
    (AgendaItem, AgendaItem.case_id, AgendaItem.message_pk),
    (CaseClock, CaseClock.case_id, CaseClock.message_pk),
    (OutboxItem, OutboxItem.case_id, OutboxItem.message_pk),
)


def case_message_links(session: Session, case_id: str) -> dict[int, set[str]]:
    """Map each message that concerns `case_id` to the ids of every case it concerns, this one included."""
    pks: set[int] = set()
    for _model, case_column, message_column in _MESSAGE_LINKS:
        pks.update(session.scalars(select(message_column).where(
            case_column == case_id, message_column.is_not(None))))
    links: dict[int, set[str]] = {pk: set() for pk in pks}
    for chunk in _chunks(sorted(pks), 500):
        for _model, case_column, message_column in _MESSAGE_LINKS:
            for pk, linked_case in session.execute(select(message_column, case_column).where(
                    message_column.in_(chunk), case_column.is_not(None))):
                links[pk].add(linked_case)
    return links


def delete_case(session: Session, case_id: str) -> dict[str, int]:
    """Delete a case and everything linked to it in the caller's transaction; return counts per record type.

    Shared messages follow the rule in the module docstring. Cases merged into this one
    (status "merged") are the same child, so they go too. Panel meetings and their
    attendance stay, because they are about the meeting, not the child.
    """
    merged_counts: dict[str, int] = {}
    merged = merged_into(session, case_id)
    for source_id in merged:
        for name, count in delete_case(session, source_id).items():
            merged_counts[name] = merged_counts.get(name, 0) + count

    links = case_message_links(session, case_id)
    only_this = sorted(pk for pk, cases in links.items() if cases <= {case_id})
    shared = {pk: sorted(cases - {case_id}) for pk, cases in links.items() if cases - {case_id}}

    for pk, other_cases in shared.items():
        session.execute(update(Message).where(Message.id == pk, Message.case_id == case_id)
                        .values(case_id=other_cases[0], extracted={}))

    counts = {"case": 0, "messages": len(only_this), "messages_unlinked": len(shared)}
    by_case_or_message = (
        ("outbox", OutboxItem, OutboxItem.case_id, OutboxItem.message_pk),
        ("events", CaseEvent, CaseEvent.case_id, CaseEvent.message_pk),
        ("agenda_items", AgendaItem, AgendaItem.case_id, AgendaItem.message_pk),
        ("clocks", CaseClock, CaseClock.case_id, CaseClock.message_pk),
    )
    for name, model, case_column, message_column in by_case_or_message:
        counts[name] = _delete(session, model, case_column == case_id, message_column, only_this)
    counts["corrections"] = _delete(session, Correction, None, Correction.message_pk, only_this)
    for name, model, column in (("decisions", PanelDecision, PanelDecision.case_id),
                                ("actions", PanelAction, PanelAction.case_id),
                                ("keys", CaseKey, CaseKey.case_id),
                                ("parties", CaseParty, CaseParty.case_id),
                                ("schools", CaseSchool, CaseSchool.case_id)):
        counts[name] = _rowcount(session.execute(delete(model).where(column == case_id)))

    for chunk in _chunks(only_this, 500):
        session.execute(update(Message).where(Message.conflicts_with_id.in_(chunk)).values(conflicts_with_id=None))
        session.execute(delete(Message).where(Message.id.in_(chunk)))
    counts["case"] = _rowcount(session.execute(delete(Case).where(Case.id == case_id)))
    for name, count in merged_counts.items():
        if name != "case":
            counts[name] = counts.get(name, 0) + count
    counts["merged_cases"] = merged_counts.get("case", 0)
    return counts


def merged_into(session: Session, case_id: str) -> list[str]:
    """Return the ids of the cases merged into `case_id` that are still kept as "merged" records."""
    events = session.execute(select(CaseEvent.case_id, CaseEvent.detail).where(CaseEvent.kind == "merged_into"))
    sources = {source for source, detail in events
               if source != case_id and (detail or {}).get("case_id") == case_id}
    if not sources:
        return []
    return sorted(session.scalars(select(Case.id).where(Case.id.in_(sources), Case.status == "merged")))


def _delete(session: Session, model, case_clause, message_column, message_pks: list[int]) -> int:
    count = 0
    if case_clause is not None:
        count += _rowcount(session.execute(delete(model).where(case_clause)))
    for chunk in _chunks(message_pks, 500):
        count += _rowcount(session.execute(delete(model).where(message_column.in_(chunk))))
    return count


def _rowcount(result) -> int:
    return max(result.rowcount or 0, 0)


def _chunks(values: list, size: int) -> Iterable[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


# Erasure ----------------------------------------------------------------------------


def erase_case(store: Store, case_id: str, actor: str) -> dict[str, int]:
    """Delete a case and everything linked to it, and audit the erasure with the counts, in one transaction."""
    actor = _check_actor(actor)

    def work(session: Session):
        if session.get(Case, case_id) is None:
            raise UnknownCaseError(case_id)
        counts = delete_case(session, case_id)
        add_audit(session, actor, "case_erased", target_type="case", target_id=case_id, detail=counts)
        return counts
    return store._write(work)


def count_case(store: Store, case_id: str) -> dict[str, int]:
    """Count what erasing a case would remove, for the confirmation prompt."""
    def work(session: Session):
        if session.get(Case, case_id) is None:
            raise UnknownCaseError(case_id)
        links = case_message_links(session, case_id)
        shared = sum(1 for cases in links.values() if cases - {case_id})
        return {"messages": len(links) - shared, "messages_unlinked": shared}
    return store._read(work)


# Export ------------------------------------------------------------------------------


@dataclass
class ExportSummary:
    case_id: str
    path: Path
    messages: int = 0
    originals: int = 0
    withheld: int = 0
    outbox: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        return (f"case {self.case_id} exported to {self.path}: {self.messages} messages "
                f"({self.originals} originals, {self.withheld} withheld because they also concern another "
                f"child), {self.outbox} outgoing mails")


def export_case(store: Store, case_id: str, actor: str, destination: Path) -> ExportSummary:
    """Write a zip of everything held about one case, then audit the export.

    The zip contains case.json and the originals as messages/<id>.eml and outbox/<id>.eml.
    It is written beside `destination` first and renamed into place once the audit
    event is committed, so a failed export leaves no file behind. Raises
    UnknownCaseError for an unknown id and FileExistsError when `destination` exists.
    """
    actor = _check_actor(actor)
    destination = Path(destination)
    if destination.exists():
        raise FileExistsError(f"{destination} already exists; choose another --output file")

    summary = ExportSummary(case_id=case_id, path=destination)
    partial = destination.with_name(destination.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
            store._read(lambda session: _write_export(session, case_id, actor, archive, summary))

        def audit(session: Session):
            add_audit(session, actor, "case_exported", target_type="case", target_id=case_id,
                      detail={"messages": summary.messages, "originals": summary.originals,
                              "withheld": summary.withheld, "outbox": summary.outbox})
        store._write(audit)
        os.replace(partial, destination)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return summary


def _write_export(session: Session, case_id: str, actor: str, archive: zipfile.ZipFile,
                  summary: ExportSummary) -> None:
    case = session.get(Case, case_id)
    if case is None:
        raise UnknownCaseError(case_id)
    links = case_message_links(session, case_id)
    message_pks = sorted(links)

    messages = []
    for chunk in _chunks(message_pks, 500):
        for row in session.scalars(select(Message).options(defer(Message.raw)).where(Message.id.in_(chunk))
                                   .order_by(Message.id)):
            messages.append(_message_entry(session, row, case_id, links[row.id], archive, summary))
    summary.messages = len(messages)

    outbox = []
    outbox_rows = session.scalars(select(OutboxItem).options(defer(OutboxItem.raw)).where(or_(
        OutboxItem.case_id == case_id,
        OutboxItem.message_pk.in_([pk for pk in message_pks if links[pk] <= {case_id}]))).order_by(OutboxItem.id))
    for row in outbox_rows:
        entry = _columns(row, exclude={"raw", "dedupe_key"})
        body = session.scalar(select(OutboxItem.raw).where(OutboxItem.id == row.id))
        if body is not None:
            entry["file"] = f"outbox/{row.id}.eml"
            archive.writestr(entry["file"], body)
        outbox.append(entry)
    summary.outbox = len(outbox)

    meetings = {meeting.id: meeting.meeting_date for meeting in session.scalars(select(PanelMeeting))}
    decisions = []
    for row in session.scalars(select(PanelDecision).where(PanelDecision.case_id == case_id).order_by(PanelDecision.id)):
        decisions.append({**_columns(row), "meeting_date": _plain(meetings.get(row.meeting_id))})
    actions = [{**_columns(row), "meeting_date": _plain(meetings.get(row.meeting_id))}
               for row in session.scalars(select(PanelAction).where(PanelAction.case_id == case_id)
                                          .order_by(PanelAction.id))]

    audit_targets = or_(
        (AuditEvent.target_type == "case") & (AuditEvent.target_id == case_id),
        (AuditEvent.target_type == "message") & AuditEvent.target_id.in_([str(pk) for pk in message_pks]))
    document = {
        "exported_at": _plain(datetime.now(timezone.utc)),
        "exported_by": actor,
        "about": "Everything ccas-bot holds about one case. Review it and redact other people's data "
                 "before disclosure.",
        "case": _columns(case),
        "merged_cases": [_columns(session.get(Case, source_id)) for source_id in merged_into(session, case_id)],
        "school_history": _rows(session, CaseSchool, CaseSchool.case_id == case_id),
        "parties": _rows(session, CaseParty, CaseParty.case_id == case_id),
        "events": _rows(session, CaseEvent, CaseEvent.case_id == case_id),
        "clocks": _rows(session, CaseClock, CaseClock.case_id == case_id),
        "agenda_items": _rows(session, AgendaItem, AgendaItem.case_id == case_id),
        "decisions": decisions,
        "actions": actions,
        "messages": messages,
        "outbox": outbox,
        "corrections": _rows(session, Correction, Correction.message_pk.in_(
            [pk for pk in message_pks if links[pk] <= {case_id}])),
        "audit_events": _rows(session, AuditEvent, audit_targets),
    }
    archive.writestr("case.json", json.dumps(document, indent=2, ensure_ascii=False))


def _message_entry(session: Session, row: Message, case_id: str, cases: set[str], archive: zipfile.ZipFile,
                   summary: ExportSummary) -> dict:
    shared = bool(cases - {case_id})
    entry = _columns(row, exclude={"raw", "conflicts_with_id", "source", "folder", "uidvalidity", "uid",
                                   "mailbox_done", "sha256"})
    if shared:
        # The original and subject name the other child too, so a person redacts them before disclosure.
        summary.withheld += 1
        entry["subject"] = None
        entry["case_id"] = case_id
        if row.case_id != case_id:
            entry["extracted"] = None
        entry["file"] = None
        entry["withheld"] = "this message also concerns another child; its original is left out of the export"
        return entry
    raw = session.scalar(select(Message.raw).where(Message.id == row.id))
    if raw:
        entry["file"] = f"messages/{row.id}.eml"
        archive.writestr(entry["file"], raw)
        summary.originals += 1
    else:
        entry["file"] = None
    return entry


def _rows(session: Session, model, clause) -> list[dict]:
    return [_columns(row) for row in session.scalars(select(model).where(clause).order_by(model.id))]


def _columns(row, exclude: Iterable[str] = ()) -> dict:
    skipped = set(exclude)
    return {column.key: _plain(getattr(row, column.key)) for column in row.__table__.columns
            if column.key not in skipped}


def _plain(value):
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def _check_actor(actor: str) -> str:
    actor = (actor or "").strip()
    if not actor:
        raise ValueError("the actor is empty; give the name of the person who asked for this")
    return actor
