"""The poll: read new mail, triage it, store it, send what it calls for, then move it.

Order per message, so that nothing is lost and no message gets a second reply:
1. fetch the raw bytes (BODY.PEEK[], so the mailbox is not changed);
2. run the pipeline, which only decides;
3. commit the message, its case, agenda items and outgoing mail in one transaction;
4. send the outgoing mail, marking each item sent in its own commit;
5. move the message to the processed or quarantine folder, then mark it moved.

A crash after 3 leaves a committed message that the next poll finishes (steps 4
and 5) without running the pipeline again. The one window for a duplicate is a
crash between the SMTP server accepting a message and step 4's commit, or that
commit failing (a database locked past its busy timeout). tests/test_faults.py
measures the window at about a millisecond per reply.

On PostgreSQL several workers share one mailbox: a poll claims its messages and
replies first (bot/workers.py, docs/workers.md), then handles each one as above.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date

from bot.errors import MessageError, RemoteError
from bot.mailboxes.base import CursorMailbox, Mailbox, MailRef
from bot.pipeline import Context, Triage, identify, identify_raw, run_pipeline
from bot.clocks import compute_clocks, facts_from_message
from bot.outcomes import record_action_reply
from bot.school_days import load_school_calendar
from bot.workers import claims_for, poll_claimed
from replies.send import Sender
from store.claims import WorkClaims
from store.panel import PanelStore
from store.records import StoredMessage, TriageRecord

log = logging.getLogger(__name__)


@dataclass
class Processed:
    """The result of one message in this poll, for the command line and eval."""

    ref: MailRef
    stored: StoredMessage | None
    triage: Triage | None
    replies: list[str] = field(default_factory=list)
    reply_purposes: list[str] = field(default_factory=list)
    # Replies stored as drafts, waiting for a coordinator to approve them.
    held_purposes: list[str] = field(default_factory=list)
    resumed: bool = False


@dataclass
class PollSummary:
    processed: list[Processed] = field(default_factory=list)
    sent: int = 0
    send_failures: int = 0


class Intake:
    def __init__(self, mailbox: Mailbox, context: Context, sender: Sender,
                 claims: WorkClaims | None = None) -> None:
        self.mailbox = mailbox
        self.context = context
        self.store = context.store
        self.sender = sender
        # On PostgreSQL several workers may share the mailbox, so work is claimed (bot/workers.py).
        self.claims = claims if claims is not None else claims_for(self.store, context.config)

    def poll_once(self) -> PollSummary:
        """Process everything new in the mailbox once; raises RemoteError to retry later."""
        summary = PollSummary()
        folder, uidvalidity = self.mailbox.open()
        if self.claims is not None:
            try:
                poll_claimed(self, summary, folder, uidvalidity)
                self._send_pending(summary)
            finally:
                self.mailbox.close()
            return _logged(summary)
        try:
            last_uid = self.store.mailbox_state(self.mailbox.source, folder, uidvalidity)
            finished = self._finish_unfinished(folder, uidvalidity, summary)
            uses_cursor = isinstance(self.mailbox, CursorMailbox)
            if uses_cursor:
                self.mailbox.resume(self.store.mailbox_cursor(self.mailbox.source, folder))
            for ref in self.mailbox.list_new(last_uid):
                # Backends that list the whole folder list a message retried above again.
                if ref.uid in finished:
                    continue
                summary.processed.append(self.process_ref(ref))
            if uses_cursor:
                # Saved only after every listed message is committed (see CursorMailbox).
                self.store.save_mailbox_cursor(self.mailbox.source, folder, self.mailbox.next_cursor())
            self._send_pending(summary)
        finally:
            self.mailbox.close()
        return _logged(summary)

    def process_ref(self, ref: MailRef) -> Processed:
        """Fetch, triage, store, send and move one message."""
        self.context = _with_today(self.context)
        try:
            raw = self.mailbox.fetch(ref)
        except MessageError as error:
            return self._quarantine_unfetchable(ref, error.reason)

        identity = identify_raw(raw)
        message_id, _, digest = identity
        known = self.store.find_message(message_id, digest)
        if known is not None and known.outcome != "retry":
            # Seen before: a crash between commit and move, or a re-sync after a
            # UIDVALIDITY change. Finish it without a second triage or reply.
            if (known.uidvalidity, known.uid) != (ref.uidvalidity, ref.uid):
                self.store.update_location(known.pk, ref.uidvalidity, ref.uid)
            self._send_for_message(known.pk)
            self._move(ref, known, "mailbox:quarantine" in self._stored_reasons(known))
            log.info("message %d already stored; finished without a new triage", known.pk)
            return Processed(ref=ref, stored=known, triage=None, resumed=True)

        triage = run_pipeline(raw, self.context, identity)
        stored = self.store.record_triage(self._record(ref, triage))
        log.info("message %d stored: outcome=%s category=%s case=%s reasons=%s",
                 stored.pk, stored.outcome, triage.classification.category if triage.classification else None,
                 stored.case_id, ",".join(triage.reasons))
        stored = self._record_case_follow_ups(stored, triage)
        sent = self._send_for_message(stored.pk)
        if stored.outcome != "retry":
            self._move(ref, stored, "mailbox:quarantine" in triage.reasons)
        return Processed(ref=ref, stored=stored, triage=triage, replies=[item.recipient for item in sent],
                         reply_purposes=[item.purpose for item in sent], held_purposes=self._held(triage))

    def _record_case_follow_ups(self, stored: StoredMessage, triage: Triage) -> StoredMessage:
        """Update the panel's actions and the case's statutory clocks from a stored message.

        These run after the message's own commit, so a failure here never loses the
        message: it is logged and the message goes to a person instead.
        """
        if triage.classification is None or triage.message is None:
            return stored
        text = triage.message.new_text or triage.message.body
        try:
            if triage.classification.category == "action_update":
                result = record_action_reply(self.store, self.context.config, stored.case_id, stored.pk, text,
                                             sender_email=triage.sender_email, today=self.context.today)
                # An update that names no known action still sits under the actions review
                # on the agenda, where the panel reviews it. The reason code records the result.
                self.store.add_reason(stored.pk, f"action:{result.outcome}")
            if stored.case_id and triage.child is not None:
                facts = facts_from_message(_child_as_dict(triage.child), text, self.context.today)
                case = self.store.get_case(stored.case_id)
                entries = compute_clocks(facts, load_school_calendar(self.context.config),
                                         case.school_urn if case else "")
                if entries:
                    PanelStore(self.store, self.context.config).record_clocks(stored.case_id, entries, stored.pk)
        except RemoteError:
            raise
        except Exception:
            log.exception("case follow-up for message %d failed (bug); it goes to a person", stored.pk)
            return self.store.mark_needs_person(stored.pk, "bug:case_follow_up")
        return stored

    def _record(self, ref: MailRef, triage: Triage) -> TriageRecord:
        message = triage.message
        classification = triage.classification
        decision = triage.decision
        return TriageRecord(
            message_id=triage.message_id,
            message_id_synthesised=triage.message_id_synthesised,
            sha256=triage.sha256,
            raw=triage.raw,
            source=self.mailbox.source,
            folder=ref.folder,
            uidvalidity=ref.uidvalidity,
            uid=ref.uid,
            outcome=triage.outcome or "needs_person",
            reasons=triage.reasons,
            sender_email=triage.sender_email,
            subject=message.subject if message else "",
            category=classification.category if classification else None,
            urgent=triage.urgent,
            confidence=classification.confidence if classification else None,
            extracted=_extracted(triage),
            case_id=triage.match.case_id or triage.new_case_id,
            new_case=triage.new_case,
            reopen_case=bool(decision and decision.reopen_case),
            mail=triage.mail,
            agenda_items=[decision.agenda] if decision and decision.agenda else [],
            last_uid=ref.uid_number,
            at=triage.now,
            bounced_out_ids=triage.bounced_out_ids,
        )

    def _quarantine_unfetchable(self, ref: MailRef, reason: str) -> Processed:
        message_id, _, digest = identify(f"{ref.folder}|{ref.uidvalidity}|{ref.uid}".encode(), None)
        stored = self.store.record_unreadable(
            source=self.mailbox.source, folder=ref.folder, uidvalidity=ref.uidvalidity, uid=ref.uid,
            raw=b"", message_id=message_id, sha256=digest, reason=f"message:{reason}",
            last_uid=ref.uid_number)
        log.info("message %d could not be fetched (%s); quarantined", stored.pk, reason)
        self._move(ref, stored, quarantine=True)
        return Processed(ref=ref, stored=stored, triage=None)

    def _finish_unfinished(self, folder: str, uidvalidity: int | None, summary: PollSummary) -> set[str]:
        """Finish messages a crash or a retry left behind; return their UIDs."""
        finished: set[str] = set()
        for stored in self.store.list_unfinished(self.mailbox.source, folder, uidvalidity):
            ref = MailRef(folder=folder, uidvalidity=uidvalidity, uid=stored.uid)
            finished.add(stored.uid)
            if stored.outcome == "retry":
                summary.processed.append(self._retry(ref, stored))
                continue
            self._send_for_message(stored.pk)
            quarantine = stored.outcome == "needs_person" and "mailbox:quarantine" in self._stored_reasons(stored)
            self._move(ref, stored, quarantine)
            summary.processed.append(Processed(ref=ref, stored=stored, triage=None, resumed=True))
        return finished

    def _retry(self, ref: MailRef, stored: StoredMessage) -> Processed:
        triage = run_pipeline(self.store.load_raw(stored.pk), self.context)
        if stored.attempts >= self.context.config.bot.max_attempts:
            triage.outcome = "needs_person"
            triage.reasons.append("retry:attempts_exhausted")
        updated = self.store.record_triage(self._record(ref, triage))
        sent = self._send_for_message(updated.pk)
        if updated.outcome != "retry":
            self._move(ref, updated, "mailbox:quarantine" in triage.reasons)
        return Processed(ref=ref, stored=updated, triage=triage, replies=[item.recipient for item in sent],
                         reply_purposes=[item.purpose for item in sent], held_purposes=self._held(triage))

    def _move(self, ref: MailRef, stored: StoredMessage, quarantine: bool) -> None:
        if self.mailbox.contains(ref):
            if quarantine:
                self.mailbox.move_to_quarantine(ref)
            else:
                self.mailbox.move_to_processed(ref)
        self.store.mark_mailbox_done(stored.pk)

    def _pending_outbox(self, message_pk: int | None = None) -> list:
        """Return the outgoing mail to send now, claimed first when several workers share the store."""
        if self.claims is not None:
            return self.claims.claim_outbox(message_pk)
        return self.store.pending_outbox(message_pk)

    def _send_for_message(self, message_pk: int) -> list:
        sent = []
        for item in self._pending_outbox(message_pk):
            if self._deliver(item):
                sent.append(item)
        return sent

    def _send_pending(self, summary: PollSummary) -> None:
        for item in self._pending_outbox():
            if self._deliver(item):
                summary.sent += 1
            else:
                summary.send_failures += 1

    def _deliver(self, item) -> bool:
        try:
            self.sender.send(item.raw, item.recipient, self.context.config.council.ccas_inbox, item.out_message_id)
        except RemoteError as error:
            self.store.mark_send_failed(item.id, str(error))
            if self.claims is not None:
                self.claims.release_outbox(item.id)
            log.warning("outbox item %d not sent, will retry: %s", item.id, error)
            return False
        except Exception as error:
            # A reply that can never be sent (say, an address the server cannot take)
            # must not block the outbox: it is marked failed for a person.
            log.exception("outbox item %d cannot be sent (bug or bad address); marked failed", item.id)
            self.store.mark_send_failed(item.id, f"{type(error).__name__}", permanent=True)
            return False
        self.store.mark_sent(item.id)
        log.info("outbox item %d sent (%s)", item.id, item.purpose)
        return True

    @staticmethod
    def _held(triage: Triage) -> list[str]:
        """Return the purposes of the replies this triage stored as drafts (a retry of an
        already stored reply is not stored again, so it may be listed twice over two polls)."""
        return [mail.purpose for mail in triage.mail if mail.held]

    def _stored_reasons(self, stored: StoredMessage) -> list[str]:
        return self.store.message_reasons(stored.pk)


def _logged(summary: PollSummary) -> PollSummary:
    # An idle poll every minute would fill the log, so only a poll that did something logs at INFO.
    level = logging.INFO if summary.processed or summary.sent or summary.send_failures else logging.DEBUG
    log.log(level, "poll finished: %d messages, %d earlier replies sent, %d send failures",
            len(summary.processed), summary.sent, summary.send_failures)
    return summary


def _with_today(context: Context) -> Context:
    from dataclasses import replace
    today = date.today()
    return context if context.today == today else replace(context, today=today)


def _extracted(triage: Triage) -> dict:
    """Return what Message.extracted stores for the triage queue: the child's details with
    their quotes, the attachments, and under "match" how matching chose the case, with each
    candidate's score."""
    extracted = _child_as_dict(triage.child)
    if triage.message is not None:
        extracted["attachments"] = [{"filename": attachment.filename, "kind": attachment.kind,
                                     "content_type": attachment.content_type, "size": attachment.size}
                                    for attachment in triage.message.attachments if not attachment.inline]
    match = triage.match
    if match.method != "none" or match.candidates or match.scored:
        scores = {candidate.case_id: candidate for candidate in match.scored}
        extracted["match"] = {
            "method": match.method,
            "case_id": match.case_id,
            "candidates": [{"case_id": case_id,
                            "score": scores[case_id].score if case_id in scores else None,
                            "reasons": list(scores[case_id].reasons) if case_id in scores else []}
                           for case_id in dict.fromkeys([*match.candidates, *scores])][:10],
        }
    return extracted


def _child_as_dict(child) -> dict:
    if child is None:
        return {}
    from dataclasses import asdict, is_dataclass
    data = asdict(child) if is_dataclass(child) else dict(vars(child))
    return {key: (value.isoformat() if isinstance(value, date) else value) for key, value in data.items()}
