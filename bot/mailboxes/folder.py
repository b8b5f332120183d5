"""The embedded default: a Maildir or a plain folder of .eml files on local disk."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from bot.errors import ConfigError, MessageError, RemoteError
from bot.mailboxes.base import MailRef


class FolderMailbox:
    """Reads `inbox` in file-name order; a Maildir's new/ and cur/ are read together.

    Processed and quarantined files are moved, never copied, so a file is in exactly
    one place. Files starting with a dot and Maildir's tmp/ are skipped, because a
    delivery agent may still be writing them.
    """

    source = "folder"

    def __init__(self, inbox: Path, processed: Path, quarantine: Path, max_message_bytes: int) -> None:
        self.inbox = inbox
        self.processed = processed
        self.quarantine = quarantine
        self.max_message_bytes = max_message_bytes

    def open(self) -> tuple[str, int | None]:
        if not self.inbox.is_dir():
            raise ConfigError("mailbox.folder.inbox_path", f"inbox folder {self.inbox} not found",
                              "create the folder or set inbox_path to the folder new mail arrives in")
        self.processed.mkdir(parents=True, exist_ok=True)
        self.quarantine.mkdir(parents=True, exist_ok=True)
        return str(self.inbox), None

    def close(self) -> None:
        pass

    def _is_maildir(self) -> bool:
        return (self.inbox / "new").is_dir() and (self.inbox / "cur").is_dir()

    def _files(self) -> list[Path]:
        folders = [self.inbox / "new", self.inbox / "cur"] if self._is_maildir() else [self.inbox]
        files = [path for folder in folders for path in folder.iterdir()
                 if path.is_file() and not path.name.startswith(".")]
        return sorted(files, key=lambda path: path.relative_to(self.inbox).as_posix())

    def list_new(self, after_uid: int) -> list[MailRef]:
        return [MailRef(folder=str(self.inbox), uidvalidity=None,
                        uid=path.relative_to(self.inbox).as_posix(), size=path.stat().st_size)
                for path in self._files()]

    def list_since(self, since: date) -> list[MailRef]:
        """List the files modified on or after `since` (local time), for backfill.

        A delivery agent writes each file once, so its modification time is the delivery time.
        """
        return [ref for ref in self.list_new(0)
                if datetime.fromtimestamp((self.inbox / ref.uid).stat().st_mtime).date() >= since]

    def fetch(self, ref: MailRef) -> bytes:
        path = self.inbox / ref.uid
        if ref.size is not None and ref.size > self.max_message_bytes:
            raise MessageError("too_large")
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise MessageError("vanished") from None
        except OSError as error:
            raise RemoteError(f"reading {ref.uid} failed: {error.strerror}") from error

    def contains(self, ref: MailRef) -> bool:
        return (self.inbox / ref.uid).is_file()

    def move_to_processed(self, ref: MailRef) -> None:
        self._move(ref, self.processed)

    def move_to_quarantine(self, ref: MailRef) -> None:
        self._move(ref, self.quarantine)

    def _move(self, ref: MailRef, target_folder: Path) -> None:
        source = self.inbox / ref.uid
        if not source.exists():
            return
        target = target_folder / Path(ref.uid).name
        counter = 1
        while target.exists():
            target = target_folder / f"{Path(ref.uid).stem}.{counter}{Path(ref.uid).suffix}"
            counter += 1
        source.replace(target)
