"""Several workers on one mailbox: the claimed poll, the worker's name, and the one-runner rule of SQLite.

On PostgreSQL every poll goes through work claims (store/claims.py), so any number of
`ccas-bot run` processes can share one mailbox and one database: each message is
triaged by one worker and each reply leaves once. A poll then:

1. lists the mailbox and adds a work item per new message, and per stored message
   still waiting to be moved or retried (adding twice adds nothing);
2. claims a batch of items no live claim holds, and for each item renews the claim,
   then finishes a stored message (send, move) or processes a new one as a single
   worker would (bot/intake.py);
3. marks the item done, or gives it back when the message waits for a retry (not
   retried again in the same poll) or when an error stops the poll;
4. repeats until no claimable item is left, then sends the outbox, claimed.

SQLite takes one worker: its write lock already serialises the writers, and it has no
SKIP LOCKED. `run` and `poll` hold an exclusive lock on a file beside the database, and
a second process on the same database stops with a ConfigError naming [store] url.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
from pathlib import Path

from bot.config import Config
from bot.errors import ConfigError
from bot.mailboxes.base import CursorMailbox, MailRef
from store.claims import WorkClaims, is_postgresql
from store.records import Store

log = logging.getLogger(__name__)


def worker_name(config: Config) -> str:
    """[bot] worker_id, or the host name and process id when it is empty."""
    return config.bot.worker_id or f"{socket.gethostname()}:{os.getpid()}"


def claims_for(store: Store, config: Config) -> WorkClaims | None:
    """Work claims for a PostgreSQL store; None on SQLite, where one worker runs."""
    if not is_postgresql(store.engine):
        return None
    return WorkClaims(store, worker_name(config), claim_seconds=config.bot.claim_timeout_seconds,
                      batch_size=config.bot.claim_batch_size)


def poll_claimed(intake, summary, folder: str, uidvalidity: int | None) -> None:
    """Poll once through work claims, with the mailbox already open (the module's docstring lists the steps)."""
    claims: WorkClaims = intake.claims
    mailbox = intake.mailbox
    source = mailbox.source
    claims.ensure_mailbox_state(source, folder, uidvalidity)
    last_uid = intake.store.mailbox_state(source, folder, uidvalidity)
    uses_cursor = isinstance(mailbox, CursorMailbox)
    if uses_cursor:
        mailbox.resume(intake.store.mailbox_cursor(source, folder))
    listed = {ref.uid: ref for ref in mailbox.list_new(last_uid)}
    waiting = [stored.uid for stored in intake.store.list_unfinished(source, folder, uidvalidity)]
    claims.add_listed(source, folder, uidvalidity, [*waiting, *listed])

    retried: set[int] = set()
    while True:
        items = claims.claim(source, folder, uidvalidity, exclude=retried)
        if not items:
            break
        for position, item in enumerate(items):
            if not claims.renew(item):
                continue
            ref = listed.get(item.uid) or MailRef(folder=folder, uidvalidity=uidvalidity, uid=item.uid)
            try:
                processed = _process_item(intake, ref)
            except BaseException:
                # Give back this item and the rest of the batch, so the next poll (of any worker)
                # takes them at once instead of after the claim lapses.
                for unfinished in items[position:]:
                    claims.release(unfinished)
                raise
            summary.processed.append(processed)
            if processed.stored is not None and processed.stored.outcome == "retry":
                retried.add(item.id)
                claims.release(item)
            else:
                claims.finish(item)

    if uses_cursor:
        # Saved only after the claim loop, as a single worker does (see CursorMailbox). A message
        # listed here that another worker still holds is safe anyway, because its work item stays.
        intake.store.save_mailbox_cursor(source, folder, mailbox.next_cursor())


def _process_item(intake, ref: MailRef):
    """Finish a stored message at `ref` that waits to be moved or retried, or process a new one."""
    from bot.intake import Processed

    stored = intake.claims.unfinished_at(intake.mailbox.source, ref.folder, ref.uidvalidity, ref.uid)
    if stored is None:
        return intake.process_ref(ref)
    if stored.outcome == "retry":
        return intake._retry(ref, stored)
    intake._send_for_message(stored.pk)
    quarantine = stored.outcome == "needs_person" and "mailbox:quarantine" in intake._stored_reasons(stored)
    intake._move(ref, stored, quarantine)
    return Processed(ref=ref, stored=stored, triage=None, resumed=True)


class SingleRunnerLock:
    """An exclusive lock on `<database>.runner.lock`, so one process at a time works on a SQLite store.

    The kernel frees the lock when the process ends, however it ends, so a killed
    runner never blocks the next one.
    """

    def __init__(self, config: Config) -> None:
        self.path: Path | None = None
        self._file = None
        url = config.store_url
        prefix = "sqlite:///"
        if url.startswith(prefix) and url != "sqlite:///:memory:":
            self.path = Path(url[len(prefix):] + ".runner.lock")

    def acquire(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise ConfigError(
                "store.url", "another ccas-bot process is already polling this SQLite database "
                f"(it holds {self.path})",
                "SQLite takes one worker: stop the other process, or move the store to PostgreSQL "
                "(postgresql+psycopg://...) to run several workers") from None
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> SingleRunnerLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
