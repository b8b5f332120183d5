"""`ccas-bot backfill --since DATE`: a one-off intake of the mail already in the mailbox.

Each message that arrived on or after DATE (IMAP SEARCH SINCE; for the folder
backend, the file's modification date) is triaged by the same pipeline as a poll
and stored with its case, chronology and agenda items. Nothing is sent: the mail the
pipeline plans is stored with status "suppressed", so the audit shows what would have
gone out and the outbox never sends it.

Backfill does not move messages and does not advance the poll's position in the
folder. The history stays where people can read it, and a later poll of the same
folder finds each backfilled message already stored (by Message-ID and SHA-256) and
moves it to the processed folder without a second triage or a reply. For the same
reason an interrupted backfill resumes where it stopped: stored messages are skipped.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, replace
from datetime import date

from bot.errors import MessageError, RemoteError

log = logging.getLogger(__name__)


@dataclass
class BackfillSummary:
    listed: int = 0
    stored: int = 0
    skipped: int = 0
    unreadable: int = 0
    opened_cases: int = 0
    linked: int = 0

    def line(self) -> str:
        return (f"listed {self.listed}, stored {self.stored}, already stored {self.skipped}, "
                f"unreadable {self.unreadable}, cases opened {self.opened_cases}, linked to a case {self.linked}")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "backfill", help="triage and store the mail already in the mailbox since a date, sending nothing")
    parser.add_argument("--since", required=True, type=date.fromisoformat,
                        help="first delivery date to take in, as YYYY-MM-DD")
    parser.add_argument("--no-progress", action="store_true", help="do not draw a progress bar on stderr")
    parser.set_defaults(handler=_handle)


def _handle(args) -> int:
    from bot.app import build_context, build_mailbox, open_store
    from bot.cli import load

    config = load(args)
    store = open_store(config)
    mailbox = build_mailbox(config)
    if not hasattr(mailbox, "list_since"):
        print(f"ccas-bot: backfill is not available for the {config.mailbox.backend!r} mailbox backend; "
              "use imap or folder", file=sys.stderr)
        return 2
    summary = run_backfill(mailbox, build_context(config, store), args.since, progress=not args.no_progress)
    print(summary.line())
    return 0


def run_backfill(mailbox, context, since: date, progress: bool = False) -> BackfillSummary:
    """Triage and store every message since `since` without sending or moving anything.

    Raises RemoteError when the mailbox or the store fails; run it again to resume.
    """
    from tqdm import tqdm

    from bot.intake import Intake
    from bot.pipeline import identify_raw, run_pipeline

    store = context.store
    intake = Intake(mailbox, context, sender=None)
    summary = BackfillSummary()
    mailbox.open()
    try:
        refs = mailbox.list_since(since)
        summary.listed = len(refs)
        log.info("backfill started: %d messages since %s", len(refs), since.isoformat())
        for ref in tqdm(refs, desc="backfill", unit="msg", file=sys.stderr, disable=not progress):
            try:
                raw = mailbox.fetch(ref)
            except MessageError as error:
                summary.unreadable += 1
                # The folder backend's UID is a file name, which may name a child, so it is not logged.
                log.warning("backfill: a message could not be fetched (%s); left in place", error.reason)
                continue
            identity = identify_raw(raw)
            message_id, _, digest = identity
            if store.find_message(message_id, digest) is not None:
                summary.skipped += 1
                continue

            triage = run_pipeline(raw, context, identity)
            record = replace(intake._record(ref, triage), last_uid=None, outbox_status="suppressed")
            stored = store.record_triage(record)
            summary.stored += 1
            summary.opened_cases += triage.new_case_id is not None
            summary.linked += stored.case_id is not None
            log.info("backfill: message %d stored: outcome=%s case=%s", stored.pk, stored.outcome, stored.case_id)
    except RemoteError:
        log.warning("backfill stopped after %d messages; run it again to resume", summary.stored)
        raise
    finally:
        mailbox.close()
    log.info("backfill finished: %s", summary.line())
    return summary
