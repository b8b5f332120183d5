"""EWS backend for on-premises Exchange Server, on exchangelib.

exchangelib is an optional extra (`pip install 'ccas-bot[exchange]'`), imported only
when this backend is built. Exchange Online is switching EWS off, so there the Graph
backend, or IMAP with XOAUTH2, is the way in.

Every poll lists all items in the folder, oldest first by DateTimeReceived. That needs
no saved position: processed items are moved out after the store commit, an item that
waits for a retry is finished from the store, and the store's dedupe recognises any
item it has seen. EWS gives a moved item a new id, so an id that is not found any more
means the item has left the folder.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import requests

from bot.config import EwsMailboxConfig
from bot.errors import ConfigError, MessageError, RemoteError
from bot.mailboxes.base import MailRef

log = logging.getLogger(__name__)

# Item-level EWS response codes that mean "try again later" rather than "this item is bad".
_TRANSIENT_CODES = {"ErrorServerBusy", "ErrorTimeoutExpired", "ErrorInternalServerTransientError",
                    "ErrorMailboxStoreUnavailable", "ErrorConnectionFailedTransientError",
                    "ErrorMailboxMoveInProgress"}
# Response codes that mean the account or its rights are wrong, which only an operator can fix.
_CONFIG_CODES = {"ErrorAccessDenied", "ErrorNonExistentMailbox", "ErrorImpersonateUserDenied",
                 "ErrorImpersonationDenied"}
_SETUP_LOCK = threading.Lock()


def import_exchangelib():
    """Import exchangelib, or raise ConfigError with the command that installs it."""
    try:
        import exchangelib
    except ImportError:
        raise ConfigError("mailbox.backend", "the EWS backend needs exchangelib, which is not installed",
                          "install it with: pip install 'ccas-bot[exchange]'") from None
    return exchangelib


def connect_account(config: EwsMailboxConfig, password: str, mailbox: str):
    """Build an exchangelib Account for `mailbox` at the configured endpoint; no request is sent yet."""
    exchangelib = import_exchangelib()
    from exchangelib.protocol import BaseProtocol

    with _SETUP_LOCK:
        # NOTE: exchangelib keeps the HTTP adapter class and timeout on BaseProtocol, so
        # they apply to every EWS connection in the process, not to this account alone.
        BaseProtocol.TIMEOUT = config.timeout_seconds
        if config.ca_file:
            BaseProtocol.HTTP_ADAPTER_CLS = _ca_file_adapter(config.ca_file)
    # NOTE: the tests sign in with Basic only, because the EWS stand-in has no NTLM
    # handshake; the NTLM path (requests_ntlm, through exchangelib) has not been run here.
    auth_type = exchangelib.NTLM if config.auth == "ntlm" else exchangelib.BASIC
    configuration = exchangelib.Configuration(
        service_endpoint=config.service_endpoint,
        credentials=exchangelib.Credentials(config.username, password),
        auth_type=auth_type, retry_policy=exchangelib.FailFast(), max_connections=1)
    access_type = exchangelib.IMPERSONATION if config.access_type == "impersonation" else exchangelib.DELEGATE
    return exchangelib.Account(primary_smtp_address=mailbox, config=configuration, autodiscover=False,
                               access_type=access_type, default_timezone=exchangelib.UTC)


def _ca_file_adapter(ca_file: str):
    """Return an HTTPAdapter class that verifies servers against `ca_file` only.

    The adapter replaces whatever `verify` requests hands it, which may come from
    REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE, because exchangelib sets no per-request value.
    """

    class CaFileAdapter(requests.adapters.HTTPAdapter):
        def cert_verify(self, conn, url, verify, cert):
            super().cert_verify(conn=conn, url=url, verify=ca_file, cert=cert)

        def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
            return super().get_connection_with_tls_context(
                request=request, verify=ca_file, proxies=proxies, cert=cert)

    return CaFileAdapter


def ews_errors(operation: str):
    """Return a context manager that turns exchangelib and network errors into the bot's errors."""
    return _EwsErrors(operation)


class _EwsErrors:
    def __init__(self, operation: str) -> None:
        self.operation = operation

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, traceback) -> bool:
        if error is None or isinstance(error, (ConfigError, MessageError, RemoteError)):
            return False
        if not isinstance(error, (requests.RequestException, OSError)) and not _is_ews_error(error):
            return False
        name = type(error).__name__
        if name == "UnauthorizedError":
            raise ConfigError("mailbox.ews.username", "Exchange rejected the login",
                              "check the username, the password in the environment and mailbox.ews.auth") from None
        if name in _CONFIG_CODES:
            raise ConfigError("mailbox.ews.mailbox", f"Exchange denied {self.operation} ({name})",
                              "give the account full access to the mailbox, or set access_type") from None
        raise RemoteError(f"ews {self.operation} failed: {name}") from error


def _is_ews_error(error: BaseException) -> bool:
    return any(cls.__module__.startswith("exchangelib") for cls in type(error).__mro__)


class EwsMailbox:
    """Reads one folder of one mailbox through EWS; MailRef.uid is the EWS item id."""

    source = "ews"

    def __init__(self, config: EwsMailboxConfig, password: str, mailbox: str, max_message_bytes: int) -> None:
        self.config = config
        self.password = password
        self.mailbox = mailbox
        self.max_message_bytes = max_message_bytes
        self.folder_key = f"{mailbox}/{config.folder}"
        self.account: Any = None
        self._watched: Any = None
        self._folders: dict[str, Any] = {}

    def open(self) -> tuple[str, int | None]:
        self.account = connect_account(self.config, self.password, self.mailbox)
        with ews_errors("open folder"):
            self._watched = self._resolve_watched()
        return self.folder_key, None

    def close(self) -> None:
        # The account's HTTP sessions belong to exchangelib's protocol cache, which
        # reuses them at the next poll, so there is nothing to close here.
        self._folders.clear()
        self._watched = None

    def list_new(self, after_uid: int) -> list[MailRef]:
        """List every item in the folder, oldest first; `after_uid` is unused because EWS has no UIDs."""
        with ews_errors("list items"):
            items = list(self._watched.all().only("id", "datetime_received", "size").order_by("datetime_received"))
        return [MailRef(folder=self.folder_key, uidvalidity=None, uid=item.id, size=item.size) for item in items]

    def fetch(self, ref: MailRef) -> bytes:
        if ref.size is not None and ref.size > self.max_message_bytes:
            raise MessageError("too_large")
        with ews_errors("get MIME"):
            result = next(iter(self.account.fetch(ids=[(ref.uid, None)], only_fields=["mime_content"])))
        if isinstance(result, Exception):
            raise _item_error(result, "get MIME")
        raw = result.mime_content
        if not raw:
            raise MessageError("fetch_returned_no_body")
        if len(raw) > self.max_message_bytes:
            raise MessageError("too_large")
        return bytes(raw)

    def contains(self, ref: MailRef) -> bool:
        with ews_errors("get item"):
            result = next(iter(self.account.fetch(ids=[(ref.uid, None)], only_fields=["parent_folder_id"])))
        if isinstance(result, Exception):
            if type(result).__name__ in ("ErrorItemNotFound", "ErrorInvalidIdMalformed"):
                return False
            raise _item_error(result, "get item")
        parent = result.parent_folder_id
        return parent is not None and parent.id == self._watched.id

    def move_to_processed(self, ref: MailRef) -> None:
        self._move(ref, self.config.processed_folder)

    def move_to_quarantine(self, ref: MailRef) -> None:
        self._move(ref, self.config.quarantine_folder)

    def _move(self, ref: MailRef, path: str) -> None:
        with ews_errors("move item"):
            destination = self._folder(path)
            results = self.account.bulk_move(ids=[(ref.uid, None)], to_folder=destination)
        for result in results:
            if isinstance(result, Exception):
                if type(result).__name__ == "ErrorItemNotFound":
                    log.info("item to move was not found (ErrorItemNotFound); nothing to move")
                    continue
                raise RemoteError(f"ews move item failed: {type(result).__name__}")

    # Folders ------------------------------------------------------------------------

    def _resolve_watched(self):
        if self.config.folder.lower() == "inbox":
            return self.account.inbox
        folder = self._find_path(self.config.folder, create=False)
        if folder is None:
            raise ConfigError("mailbox.ews.folder", f"folder {self.config.folder!r} not found",
                              "use 'inbox' or a path below the top of the mailbox, such as 'CCAS/Incoming'")
        return folder

    def _folder(self, path: str):
        if path not in self._folders:
            self._folders[path] = self._find_path(path, create=True)
        return self._folders[path]

    def _find_path(self, path: str, create: bool):
        """Return the folder at `path`, levels separated by '/', below the top of the mailbox."""
        from exchangelib.folders import Folder, FolderCollection, SHALLOW

        folder = self.account.msg_folder_root
        for name in [part for part in path.split("/") if part]:
            children = FolderCollection(account=self.account, folders=[folder]).find_folders(depth=SHALLOW)
            match = next((child for child in children
                          if not isinstance(child, Exception) and child.name == name), None)
            if match is None:
                if not create:
                    return None
                match = Folder(parent=folder, name=name, folder_class="IPF.Note")
                match.save()
                log.info("created mail folder level %r", name)
            folder = match
        return folder


def _item_error(error: Exception, operation: str) -> Exception:
    """Map an item-level EWS error to MessageError (quarantine this item) or RemoteError (retry)."""
    name = type(error).__name__
    if name == "ErrorItemNotFound":
        return MessageError("vanished")
    if name in _TRANSIENT_CODES:
        return RemoteError(f"ews {operation} failed: {name}")
    if name in _CONFIG_CODES:
        return ConfigError("mailbox.ews.mailbox", f"Exchange denied {operation} ({name})",
                           "give the account full access to the mailbox, or set access_type")
    return MessageError(f"ews:{name}")
