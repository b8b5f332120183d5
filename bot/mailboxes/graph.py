"""Microsoft Graph backend for Exchange Online: delta query on one folder, raw MIME, moves.

New mail is listed with a delta query on the folder. Its `@odata.deltaLink` is the
cursor that the intake loop saves in the store once every listed message has been
committed (see CursorMailbox), so the next poll requests only what changed.
Messages are read as MIME through `$value` and moved by immutable id after the
store commit. An expired delta link (HTTP 410) starts a fresh round over the whole
folder, which the store's dedupe makes safe.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import requests

from bot.config import GraphMailboxConfig
from bot.errors import ConfigError, MessageError, RemoteError
from bot.graph import GraphClient, GraphError
from bot.mailboxes.base import MailRef

log = logging.getLogger(__name__)

_CHUNK_BYTES = 64 * 1024


class GraphMailbox:
    """Reads one mail folder of one mailbox through Microsoft Graph; MailRef.uid is the immutable id."""

    source = "graph"

    def __init__(self, config: GraphMailboxConfig, client: GraphClient, max_message_bytes: int) -> None:
        self.config = config
        self.client = client
        self.max_message_bytes = max_message_bytes
        # The state key names the mailbox too, so a delta link saved for one mailbox
        # is never used to read another after the configuration changes.
        self.folder_key = f"{client.mailbox}/{config.folder}"
        self._cursor = ""
        self._next_cursor = ""
        self._folder_ids: dict[str, str] = {}
        self._watched_id = ""

    # Mailbox interface ----------------------------------------------------------

    def open(self) -> tuple[str, int | None]:
        return self.folder_key, None

    def close(self) -> None:
        self._folder_ids.clear()
        self._watched_id = ""

    def resume(self, cursor: str) -> None:
        if cursor and not self.client.is_own_link(cursor):
            log.warning("saved delta link is not on the configured Graph host; starting a fresh round")
            cursor = ""
        self._cursor = cursor

    def next_cursor(self) -> str:
        return self._next_cursor

    def list_new(self, after_uid: int) -> list[MailRef]:
        """List the messages that arrived since the saved delta link, oldest first; `after_uid` is unused."""
        start = self._cursor or self._initial_delta_url()
        try:
            items, delta_link = self._delta_round(start)
        except GraphError as error:
            if not _is_expired_delta(error) or not self._cursor:
                raise
            log.warning("delta link expired (HTTP %d %s); starting a fresh round", error.status, error.code)
            items, delta_link = self._delta_round(self._initial_delta_url())
        self._next_cursor = delta_link

        seen: set[str] = set()
        refs = []
        for item in sorted(items, key=lambda item: item.get("receivedDateTime") or ""):
            if item["id"] in seen:
                continue
            seen.add(item["id"])
            refs.append(MailRef(folder=self.folder_key, uidvalidity=None, uid=item["id"]))
        return refs

    def fetch(self, ref: MailRef) -> bytes:
        url = self.client.user_url(f"messages/{_segment(ref.uid)}/$value")
        try:
            response = self.client.request("GET", url, operation="get MIME", stream=True)
        except GraphError as error:
            if error.status == 404:
                raise MessageError("vanished") from None
            raise
        with response:
            raw = self._read_capped(response)
        if not raw:
            raise MessageError("fetch_returned_no_body")
        return raw

    def contains(self, ref: MailRef) -> bool:
        url = self.client.user_url(f"messages/{_segment(ref.uid)}")
        try:
            response = self.client.request("GET", url, operation="get message",
                                           params={"$select": "parentFolderId"})
        except GraphError as error:
            if error.status == 404:
                return False
            raise
        return response.json().get("parentFolderId") == self._watched_folder_id()

    def move_to_processed(self, ref: MailRef) -> None:
        self._move(ref, self.config.processed_folder)

    def move_to_quarantine(self, ref: MailRef) -> None:
        self._move(ref, self.config.quarantine_folder)

    # Delta query ----------------------------------------------------------------

    def _initial_delta_url(self) -> str:
        folder = _segment(self.config.folder)
        return (self.client.user_url(f"mailFolders/{folder}/messages/delta")
                + "?$select=id,internetMessageId,receivedDateTime")

    def _delta_round(self, url: str) -> tuple[list[dict], str]:
        """Follow @odata.nextLink pages to the @odata.deltaLink; return the messages and that link."""
        items: list[dict] = []
        prefer = [f"odata.maxpagesize={self.config.page_size}"]
        while True:
            page = self.client.request("GET", url, operation="delta", prefer=prefer).json()
            for item in page.get("value", []):
                # Deletions and moves out of the folder arrive as {"id": ..., "@removed": {...}}.
                if "@removed" not in item and item.get("id"):
                    items.append(item)
            if "@odata.nextLink" in page:
                url = page["@odata.nextLink"]
            elif "@odata.deltaLink" in page:
                return items, page["@odata.deltaLink"]
            else:
                raise RemoteError("graph delta page had neither @odata.nextLink nor @odata.deltaLink")

    # Reading --------------------------------------------------------------------

    def _read_capped(self, response: requests.Response) -> bytes:
        """Read the body, stopping with MessageError as soon as it passes max_message_bytes."""
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_message_bytes:
            raise MessageError("too_large")
        chunks = []
        received = 0
        try:
            for chunk in response.iter_content(_CHUNK_BYTES):
                received += len(chunk)
                if received > self.max_message_bytes:
                    raise MessageError("too_large")
                chunks.append(chunk)
        except requests.RequestException as error:
            raise RemoteError(f"graph get MIME failed: {type(error).__name__}") from error
        return b"".join(chunks)

    # Folders and moves -----------------------------------------------------------

    def _move(self, ref: MailRef, folder_path: str) -> None:
        destination = self._folder_id(folder_path)
        url = self.client.user_url(f"messages/{_segment(ref.uid)}/move")
        try:
            self.client.request("POST", url, operation="move", json={"destinationId": destination})
        except GraphError as error:
            if error.status != 404:
                raise
            # Already gone from the mailbox, so there is nothing left to move.
            log.info("message to move was not found (HTTP 404 %s); nothing to move", error.code)

    def _watched_folder_id(self) -> str:
        """Return the id of the polled folder, which `folder` may name by a well-known name."""
        if not self._watched_id:
            url = self.client.user_url(f"mailFolders/{_segment(self.config.folder)}")
            try:
                response = self.client.request("GET", url, operation="get folder", params={"$select": "id"})
            except GraphError as error:
                if error.status == 404:
                    raise ConfigError("mailbox.graph.folder", f"folder {self.config.folder!r} not found",
                                      "use a well-known folder name such as 'inbox', or a folder id") from None
                raise
            self._watched_id = response.json()["id"]
        return self._watched_id

    def _folder_id(self, path: str) -> str:
        """Return the id of the folder at `path` ('/' between levels, from the top), creating missing levels."""
        if path not in self._folder_ids:
            parent_id = ""
            for name in [part for part in path.split("/") if part]:
                parent_id = self._child_folder_id(parent_id, name)
            if not parent_id:
                raise ConfigError("mailbox.graph", f"folder path {path!r} names no folder",
                                  "set processed_folder and quarantine_folder to paths such as 'CCAS/Processed'")
            self._folder_ids[path] = parent_id
        return self._folder_ids[path]

    def _child_folder_id(self, parent_id: str, name: str) -> str:
        base = f"mailFolders/{_segment(parent_id)}/childFolders" if parent_id else "mailFolders"
        url = self.client.user_url(base)
        found = self._find_child(url, name)
        if found:
            return found
        try:
            response = self.client.request("POST", url, operation="create folder", json={"displayName": name})
        except GraphError as error:
            # 409 ErrorFolderExists: another client created it between the look-up and now.
            if error.status != 409:
                raise
            found = self._find_child(url, name)
            if not found:
                raise
            return found
        log.info("created mail folder level %r", name)
        return response.json()["id"]

    def _find_child(self, url: str, name: str) -> str:
        quoted = name.replace("'", "''")
        response = self.client.request("GET", url, operation="list folders", params={
            "$filter": f"displayName eq '{quoted}'", "$select": "id,displayName"})
        for folder in response.json().get("value", []):
            if folder.get("displayName") == name:
                return folder["id"]
        return ""


def _is_expired_delta(error: GraphError) -> bool:
    # Graph rejects an expired or unknown delta token with 410 Gone for messages, and with
    # 400 syncStateNotFound for some other resources.
    return error.status == 410 or (error.status == 400 and error.code.lower() == "syncstatenotfound")


def _segment(value: str) -> str:
    """Quote an id or folder name for use as one URL path segment."""
    return quote(value, safe="")
