"""IMAP backend on imapclient: TLS or STARTTLS, password or XOAUTH2, UIDs only."""

from __future__ import annotations

import imaplib
import socket
import ssl
from collections.abc import Callable
from datetime import date

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from bot.config import ImapMailboxConfig
from bot.errors import ConfigError, MessageError, RemoteError, describe_error
from bot.mailboxes.base import MailRef

_NETWORK_ERRORS = (imaplib.IMAP4.abort, imaplib.IMAP4.error, IMAPClientError, OSError,
                   socket.timeout, ssl.SSLError)
# UIDs named in one FETCH command; 1,000 UIDs of 6 digits make a line of about 7 KB.
FETCH_CHUNK_UIDS = 1000


class ImapMailbox:
    """Reads one IMAP folder by UID, resuming after the last processed UID.

    Messages are fetched with BODY.PEEK[] so reading never sets \\Seen, and moved
    with MOVE (RFC 6851) or, when the server lacks it, COPY + \\Deleted + UID EXPUNGE.
    """

    source = "imap"

    def __init__(self, config: ImapMailboxConfig, secret: str | Callable[[], str],
                 max_message_bytes: int) -> None:
        self.config = config
        # A callable secret returns a fresh OAuth 2.0 access token at each open().
        self.secret = secret
        self.max_message_bytes = max_message_bytes
        self.client: IMAPClient | None = None
        self.uidvalidity: int | None = None
        self.delimiter = "/"

    def open(self) -> tuple[str, int | None]:
        secret = self.secret() if callable(self.secret) else self.secret
        try:
            self.client = self._connect()
            self._login(secret)
            self.delimiter = self._hierarchy_delimiter()
            for folder in (self.config.processed_folder, self.config.quarantine_folder):
                if not self.client.folder_exists(self._server_name(folder)):
                    self._create_folder(self._server_name(folder))
            status = self.client.select_folder(self.config.folder)
            self.uidvalidity = int(status[b"UIDVALIDITY"])
        except LoginError:
            self.close()
            raise ConfigError("mailbox.imap.username", "the IMAP server rejected the login",
                              "check the username and the secret in the environment") from None
        except _NETWORK_ERRORS as error:
            self.close()
            raise RemoteError(f"imap open failed on {self.config.host}:{self.config.port}: {describe_error(error)}") from error
        return self.config.folder, self.uidvalidity

    def _connect(self) -> IMAPClient:
        context = ssl.create_default_context(cafile=self.config.ca_file or None)
        implicit_tls = self.config.security == "tls"
        client = IMAPClient(self.config.host, port=self.config.port, ssl=implicit_tls,
                            ssl_context=context, timeout=self.config.timeout_seconds)
        if not implicit_tls:
            client.starttls(context)
        return client

    def _create_folder(self, name: str) -> None:
        try:
            self.client.create_folder(name)
        except imaplib.IMAP4.error:
            # Another connection, such as the IDLE watcher's, may have created it meanwhile.
            if not self.client.folder_exists(name):
                raise

    def _hierarchy_delimiter(self) -> str:
        # LIST "" "" returns the hierarchy delimiter (RFC 3501 section 6.3.8); Dovecot
        # uses "." with Maildir, Exchange uses "/".
        listing = self.client.list_folders(directory="", pattern="")
        delimiter = listing[0][1] if listing and listing[0][1] else b"/"
        return delimiter.decode() if isinstance(delimiter, bytes) else delimiter

    def _server_name(self, folder: str) -> str:
        """Map a configured folder path, levels separated by '/', to the server's delimiter."""
        return folder.replace("/", self.delimiter)

    def _login(self, secret: str) -> None:
        if self.config.auth == "xoauth2":
            self.client.oauth2_login(self.config.username, secret)
        else:
            self.client.login(self.config.username, secret)

    def close(self) -> None:
        if self.client is None:
            return
        try:
            self.client.logout()
        except _NETWORK_ERRORS:
            pass
        self.client = None

    def list_new(self, after_uid: int) -> list[MailRef]:
        # "UID n:*" always matches the newest message even when its UID is below n
        # (RFC 3501 section 6.4.8), so the result is filtered again here.
        try:
            uids = self.client.search(["UID", f"{after_uid + 1}:*"])
            uids = sorted(uid for uid in uids if uid > after_uid)
            sizes = self._fetch_sizes(uids)
        except _NETWORK_ERRORS as error:
            raise RemoteError(f"imap search failed on {self.config.host}: {describe_error(error)}") from error
        return [MailRef(folder=self.config.folder, uidvalidity=self.uidvalidity, uid=str(uid),
                        size=sizes.get(uid, {}).get(b"RFC822.SIZE"))
                for uid in uids]

    def _fetch_sizes(self, uids: list[int]) -> dict:
        """Fetch RFC822.SIZE of `uids` in chunks, because a server limits the length of one command line.

        Dovecot 2.3 rejects a UID FETCH naming 20,000 UIDs with "Too long argument".
        """
        sizes: dict = {}
        for start in range(0, len(uids), FETCH_CHUNK_UIDS):
            sizes.update(self.client.fetch(uids[start:start + FETCH_CHUNK_UIDS], ["RFC822.SIZE"]))
        return sizes

    def list_since(self, since: date) -> list[MailRef]:
        """List every message in the folder that arrived on or after `since` (SEARCH SINCE), for backfill.

        SINCE compares the server's internal date, which is the delivery date, and ignores the time of day.
        """
        try:
            uids = sorted(self.client.search(["SINCE", since]))
            sizes = self._fetch_sizes(uids)
        except _NETWORK_ERRORS as error:
            raise RemoteError(f"imap search failed on {self.config.host}: {describe_error(error)}") from error
        return [MailRef(folder=self.config.folder, uidvalidity=self.uidvalidity, uid=str(uid),
                        size=sizes.get(uid, {}).get(b"RFC822.SIZE"))
                for uid in uids]

    def fetch(self, ref: MailRef) -> bytes:
        if ref.size is not None and ref.size > self.max_message_bytes:
            raise MessageError("too_large")
        uid = int(ref.uid)
        try:
            response = self.client.fetch([uid], ["BODY.PEEK[]"])
        except _NETWORK_ERRORS as error:
            raise RemoteError(f"imap fetch failed on {self.config.host}: {describe_error(error)}") from error

        # Servers may send unsolicited FETCH responses about other messages;
        # only the entry for the UID asked for is used.
        data = response.get(uid, {})
        raw = data.get(b"BODY[]")
        if raw is None:
            raise MessageError("fetch_returned_no_body")
        return bytes(raw)

    def contains(self, ref: MailRef) -> bool:
        try:
            return bool(self.client.search(["UID", ref.uid]))
        except _NETWORK_ERRORS as error:
            raise RemoteError(f"imap search failed on {self.config.host}: {describe_error(error)}") from error

    def move_to_processed(self, ref: MailRef) -> None:
        self._move(ref, self._server_name(self.config.processed_folder))

    def move_to_quarantine(self, ref: MailRef) -> None:
        self._move(ref, self._server_name(self.config.quarantine_folder))

    def _move(self, ref: MailRef, folder: str) -> None:
        uid = int(ref.uid)
        try:
            if self.client.has_capability("MOVE"):
                self.client.move([uid], folder)
                return
            self.client.copy([uid], folder)
            self.client.add_flags([uid], [b"\\Deleted"])
            self.client.uid_expunge([uid])
        except _NETWORK_ERRORS as error:
            raise RemoteError(f"imap move failed on {self.config.host}: {describe_error(error)}") from error
