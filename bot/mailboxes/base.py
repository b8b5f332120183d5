"""The interface every mailbox backend implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class MailRef:
    """Where one message sits: folder, UIDVALIDITY (None when the backend has none) and UID.

    For the folder backend the UID is the file's name; for IMAP it is the numeric UID.
    """

    folder: str
    uidvalidity: int | None
    uid: str
    size: int | None = None

    @property
    def uid_number(self) -> int | None:
        return int(self.uid) if self.uid.isdigit() else None


class Mailbox(Protocol):
    """A mailbox the bot reads. Moves happen only after the store has committed."""

    source: str

    def open(self) -> tuple[str, int | None]:
        """Connect and select the inbox folder; return (folder, UIDVALIDITY)."""

    def close(self) -> None: ...

    def list_new(self, after_uid: int) -> list[MailRef]:
        """List messages after `after_uid` in ascending order (backends without UIDs list all)."""

    def fetch(self, ref: MailRef) -> bytes:
        """Return the raw bytes; raise MessageError for this message, RemoteError for the server."""

    def contains(self, ref: MailRef) -> bool:
        """Return whether the message is still in the inbox folder."""

    def move_to_processed(self, ref: MailRef) -> None: ...

    def move_to_quarantine(self, ref: MailRef) -> None: ...


@runtime_checkable
class CursorMailbox(Mailbox, Protocol):
    """A mailbox that resumes from a position of its own, such as a Graph delta link, not a UID.

    The intake loop passes the saved cursor to resume() before list_new(), and saves
    next_cursor() only after every listed message has been committed. A crash during
    the round therefore lists the same messages again, and the store's dedupe finishes
    the ones already committed without a second triage.
    """

    def resume(self, cursor: str) -> None:
        """Start the next list_new() from `cursor`; "" means read the folder from the start."""

    def next_cursor(self) -> str:
        """Return the position after the messages the last list_new() returned."""
