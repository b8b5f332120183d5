"""A stand-in for an on-premises Exchange Server's EWS endpoint, over HTTPS on 127.0.0.1.

It responds to the SOAP operations exchangelib sends for the bot (ConvertId for the version
guess, GetFolder, FindFolder, CreateFolder, FindItem, GetItem, MoveItem, CreateItem)
with response shapes from the EWS reference: a ServerVersionInfo header, and one
ResponseMessage per requested item or folder, ResponseClass="Success" or "Error" with
an EWS ResponseCode. Requests must carry HTTP Basic credentials. As Exchange does, a
moved item gets a new ItemId.

Unknown operations fail with ErrorInvalidRequest and are recorded in `unknown`.
"""

from __future__ import annotations

import base64
import hmac
import itertools
import secrets
import ssl
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

from servers import LOOPBACK_HOST, TlsMaterial

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
MESSAGES = "http://schemas.microsoft.com/exchange/services/2006/messages"
TYPES = "http://schemas.microsoft.com/exchange/services/2006/types"
NS = {"s": SOAP, "m": MESSAGES, "t": TYPES}
# The header of an Exchange Server 2019 build (15.2), whose newest schema is V2017_07_11.
SERVER_VERSION = ('<h:ServerVersionInfo MajorVersion="15" MinorVersion="2" MajorBuildNumber="1544" '
                  'MinorBuildNumber="4" Version="V2017_07_11" xmlns:h="%s"/>' % TYPES)


@dataclass
class Item:
    id: str
    folder_id: str
    raw: bytes
    received: datetime


@dataclass
class Folder:
    id: str
    name: str
    parent_id: str
    distinguished: str = ""


@dataclass
class ItemFailure:
    """An EWS ResponseCode that GetItem returns for one item id instead of its MIME."""

    code: str
    remaining: int = 1


class EwsServer:
    """EWS for one mailbox with Basic authentication; use as a context manager."""

    def __init__(self, tls: TlsMaterial, *, mailbox: str, username: str = "COUNCIL\\svc-ccas",
                 password: str | None = None) -> None:
        self.tls = tls
        self.mailbox = mailbox
        self.username = username
        self.password = password if password is not None else secrets.token_urlsafe(12)
        self.lock = threading.Lock()
        self.operations: list[str] = []
        self.unknown: list[str] = []
        self.bodies: list[bytes] = []
        self.sent: list[bytes] = []
        self.item_failures: dict[str, ItemFailure] = {}
        # Called with each Item about to be moved, for checks that run at that moment.
        self.on_move = None
        self.operation_failures: dict[str, list[str]] = {}
        self.folders: dict[str, Folder] = {}
        self.items: dict[str, Item] = {}
        self._received = itertools.count()
        root = self._add_folder("Root", "", "root")
        top = self._add_folder("Top of Information Store", root, "msgfolderroot")
        self.inbox_id = self._add_folder("Inbox", top, "inbox")
        self.sent_id = self._add_folder("Sent Items", top, "sentitems")
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle ---

    def __enter__(self) -> EwsServer:
        handler = type("Handler", (_Handler,), {"ews": self})
        self._server = ThreadingHTTPServer((LOOPBACK_HOST, 0), handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.tls.cert_file, self.tls.key_file)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def service_endpoint(self) -> str:
        return f"https://{LOOPBACK_HOST}:{self._server.server_address[1]}/EWS/Exchange.asmx"

    # --- test controls ---

    def deliver(self, raw: bytes) -> str:
        """Put a message in the inbox; return its ItemId."""
        with self.lock:
            received = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc) + timedelta(minutes=next(self._received))
            item_id = _new_id("AAMkItem")
            self.items[item_id] = Item(item_id, self.inbox_id, raw, received)
        return item_id

    def fail_item(self, item_id: str, code: str, times: int = 1) -> None:
        """Fail the next `times` GetItem requests for `item_id` with ResponseCode `code`."""
        with self.lock:
            self.item_failures[item_id] = ItemFailure(code, times)

    def fail_operation(self, operation: str, code: str) -> None:
        """Fail the next request for `operation` (such as 'FindItem') with ResponseCode `code`."""
        with self.lock:
            self.operation_failures.setdefault(operation, []).append(code)

    def folder_messages(self, path: str) -> list[Item]:
        """Return the items in the folder at `path` below the top of the mailbox, such as 'CCAS/Processed'."""
        with self.lock:
            parent = self._distinguished("msgfolderroot").id
            for name in path.split("/"):
                parent = next((f.id for f in self.folders.values()
                               if f.parent_id == parent and f.name == name), "")
            return sorted((i for i in self.items.values() if parent and i.folder_id == parent),
                          key=lambda item: item.received)

    # --- model ---

    def _add_folder(self, name: str, parent_id: str, distinguished: str = "") -> str:
        folder_id = _new_id("AAMkFolder")
        self.folders[folder_id] = Folder(folder_id, name, parent_id, distinguished)
        return folder_id

    def _distinguished(self, name: str) -> Folder:
        return next(f for f in self.folders.values() if f.distinguished == name)


def _new_id(prefix: str) -> str:
    return prefix + base64.b64encode(secrets.token_bytes(24)).decode()


class _Handler(BaseHTTPRequestHandler):
    ews: EwsServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if not self._authorised():
            return self._reply(401, b"", {"WWW-Authenticate": 'Basic realm="ews.test"'})
        envelope = etree.fromstring(body)
        request = envelope.find("s:Body", NS)[0]
        operation = etree.QName(request).localname
        ews = self.ews
        with ews.lock:
            ews.operations.append(operation)
            ews.bodies.append(body)
            pending = ews.operation_failures.get(operation)
            forced = pending.pop(0) if pending else ""
        if forced:
            return self._soap(_error_response(operation, forced))
        handler = getattr(self, f"_op_{operation}", None)
        if handler is None:
            with ews.lock:
                ews.unknown.append(operation)
            return self._soap(_error_response(operation, "ErrorInvalidRequest"))
        with ews.lock:
            return self._soap(handler(request))

    def _authorised(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        expected = f"{self.ews.username}:{self.ews.password}".encode()
        return hmac.compare_digest(base64.b64decode(header[6:]), expected)

    def _reply(self, status: int, data: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _soap(self, body_xml: str) -> None:
        document = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<s:Envelope xmlns:s="{SOAP}"><s:Header>{SERVER_VERSION}</s:Header>'
            f'<s:Body>{body_xml}</s:Body></s:Envelope>'
        ).encode()
        self._reply(200, document, {"Content-Type": "text/xml; charset=utf-8"})

    # --- folders ---

    def _folder_by_reference(self, element) -> Folder | None:
        ews = self.ews
        if etree.QName(element).localname == "DistinguishedFolderId":
            return next((f for f in ews.folders.values() if f.distinguished == element.get("Id")), None)
        return ews.folders.get(element.get("Id"))

    def _folder_xml(self, folder: Folder) -> str:
        ews = self.ews
        children = sum(1 for f in ews.folders.values() if f.parent_id == folder.id)
        count = sum(1 for i in ews.items.values() if i.folder_id == folder.id)
        parent = f'<t:ParentFolderId Id={quoteattr(folder.parent_id)} ChangeKey="AQAAAA=="/>' if folder.parent_id else ""
        return (f'<t:Folder><t:FolderId Id={quoteattr(folder.id)} ChangeKey="AQAAAA=="/>{parent}'
                f'<t:FolderClass>IPF.Note</t:FolderClass><t:DisplayName>{escape(folder.name)}</t:DisplayName>'
                f'<t:TotalCount>{count}</t:TotalCount><t:ChildFolderCount>{children}</t:ChildFolderCount>'
                f'<t:UnreadCount>0</t:UnreadCount></t:Folder>')

    def _op_GetFolder(self, request) -> str:
        messages = []
        for reference in request.find("m:FolderIds", NS):
            folder = self._folder_by_reference(reference)
            if folder is None:
                messages.append(_error_message("GetFolder", "ErrorFolderNotFound", "<m:Folders/>"))
            else:
                messages.append(_success_message("GetFolder", f"<m:Folders>{self._folder_xml(folder)}</m:Folders>"))
        return _response("GetFolder", messages)

    def _op_FindFolder(self, request) -> str:
        messages = []
        for reference in request.find("m:ParentFolderIds", NS):
            parent = self._folder_by_reference(reference)
            children = [f for f in self.ews.folders.values() if parent and f.parent_id == parent.id]
            folders = "".join(self._folder_xml(child) for child in children)
            messages.append(_success_message("FindFolder", (
                f'<m:RootFolder IndexedPagingOffset="{len(children)}" TotalItemsInView="{len(children)}" '
                f'IncludesLastItemInRange="true"><t:Folders>{folders}</t:Folders></m:RootFolder>')))
        return _response("FindFolder", messages)

    def _op_CreateFolder(self, request) -> str:
        parent = self._folder_by_reference(request.find("m:ParentFolderId", NS)[0])
        messages = []
        for element in request.find("m:Folders", NS):
            name = element.findtext("t:DisplayName", namespaces=NS)
            if any(f.parent_id == parent.id and f.name == name for f in self.ews.folders.values()):
                messages.append(_error_message("CreateFolder", "ErrorFolderExists", "<m:Folders/>"))
                continue
            folder_id = self.ews._add_folder(name, parent.id)
            messages.append(_success_message("CreateFolder", (
                f'<m:Folders><t:Folder><t:FolderId Id={quoteattr(folder_id)} ChangeKey="AQAAAA=="/>'
                '</t:Folder></m:Folders>')))
        return _response("CreateFolder", messages)

    # --- items ---

    def _op_FindItem(self, request) -> str:
        view = request.find("m:IndexedPageItemView", NS)
        offset = int(view.get("Offset", "0")) if view is not None else 0
        limit = int(view.get("MaxEntriesReturned", "1000")) if view is not None else 1000
        descending = request.find(".//t:FieldOrder[@Order='Descending']", NS) is not None
        messages = []
        for reference in request.find("m:ParentFolderIds", NS):
            folder = self._folder_by_reference(reference)
            items = sorted((i for i in self.ews.items.values() if folder and i.folder_id == folder.id),
                           key=lambda item: item.received, reverse=descending)
            page = items[offset:offset + limit]
            last = offset + len(page) >= len(items)
            entries = "".join(
                f'<t:Message><t:ItemId Id={quoteattr(i.id)} ChangeKey="CQAAAA=="/>'
                f'<t:DateTimeReceived>{i.received:%Y-%m-%dT%H:%M:%SZ}</t:DateTimeReceived>'
                f'<t:Size>{len(i.raw)}</t:Size></t:Message>' for i in page)
            messages.append(_success_message("FindItem", (
                f'<m:RootFolder IndexedPagingOffset="{offset + len(page)}" TotalItemsInView="{len(items)}" '
                f'IncludesLastItemInRange="{"true" if last else "false"}"><t:Items>{entries}</t:Items>'
                '</m:RootFolder>')))
        return _response("FindItem", messages)

    def _op_GetItem(self, request) -> str:
        fields = {element.get("FieldURI") for element in request.iterfind(".//t:FieldURI", NS)}
        messages = []
        for reference in request.find("m:ItemIds", NS):
            item_id = reference.get("Id")
            item = self.ews.items.get(item_id)
            failure = self.ews.item_failures.get(item_id)
            if item is None:
                messages.append(_error_message("GetItem", "ErrorItemNotFound", "<m:Items/>"))
                continue
            if failure is not None and failure.remaining > 0 and "item:MimeContent" in fields:
                failure.remaining -= 1
                messages.append(_error_message("GetItem", failure.code, "<m:Items/>"))
                continue
            parts = [f'<t:ItemId Id={quoteattr(item.id)} ChangeKey="CQAAAA=="/>']
            if "item:ParentFolderId" in fields:
                parts.append(f'<t:ParentFolderId Id={quoteattr(item.folder_id)} ChangeKey="AQAAAA=="/>')
            if "item:MimeContent" in fields:
                mime = base64.b64encode(item.raw).decode()
                parts.append(f'<t:MimeContent CharacterSet="UTF-8">{mime}</t:MimeContent>')
            messages.append(_success_message("GetItem", f"<m:Items><t:Message>{''.join(parts)}</t:Message></m:Items>"))
        return _response("GetItem", messages)

    def _op_MoveItem(self, request) -> str:
        destination = self._folder_by_reference(request.find("m:ToFolderId", NS)[0])
        messages = []
        for reference in request.find("m:ItemIds", NS):
            item = self.ews.items.pop(reference.get("Id"), None)
            if item is not None and self.ews.on_move is not None:
                self.ews.on_move(item)
            if item is None or destination is None:
                messages.append(_error_message("MoveItem", "ErrorItemNotFound", "<m:Items/>"))
                continue
            moved = Item(_new_id("AAMkItem"), destination.id, item.raw, item.received)
            self.ews.items[moved.id] = moved
            messages.append(_success_message("MoveItem", (
                f'<m:Items><t:Message><t:ItemId Id={quoteattr(moved.id)} ChangeKey="CQAAAA=="/>'
                '</t:Message></m:Items>')))
        return _response("MoveItem", messages)

    def _op_CreateItem(self, request) -> str:
        disposition = request.get("MessageDisposition", "SaveOnly")
        saved = request.find("m:SavedItemFolderId", NS)
        messages = []
        for element in request.find("m:Items", NS):
            mime = element.findtext("t:MimeContent", namespaces=NS)
            if not mime:
                messages.append(_error_message("CreateItem", "ErrorInvalidRequest", "<m:Items/>"))
                continue
            raw = base64.b64decode(mime)
            if disposition in ("SendOnly", "SendAndSaveCopy"):
                self.ews.sent.append(raw)
            if disposition == "SendAndSaveCopy" and saved is not None:
                folder = self._folder_by_reference(saved[0])
                item_id = _new_id("AAMkItem")
                self.ews.items[item_id] = Item(item_id, folder.id, raw, datetime.now(timezone.utc))
            messages.append(_success_message("CreateItem", "<m:Items/>"))
        return _response("CreateItem", messages)

    def _op_ConvertId(self, request) -> str:
        # exchangelib's version guess converts a dummy id and reads only the header.
        return _response("ConvertId", [_error_message("ConvertId", "ErrorInvalidIdMalformed", "")])


def _response(operation: str, messages: list[str]) -> str:
    return (f'<m:{operation}Response xmlns:m="{MESSAGES}" xmlns:t="{TYPES}">'
            f'<m:ResponseMessages>{"".join(messages)}</m:ResponseMessages></m:{operation}Response>')


def _success_message(operation: str, content: str) -> str:
    return (f'<m:{operation}ResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>'
            f'{content}</m:{operation}ResponseMessage>')


def _error_message(operation: str, code: str, content: str) -> str:
    return (f'<m:{operation}ResponseMessage ResponseClass="Error"><m:MessageText>stand-in error {code}'
            f'</m:MessageText><m:ResponseCode>{code}</m:ResponseCode><m:DescriptiveLinkKey>0'
            f'</m:DescriptiveLinkKey>{content}</m:{operation}ResponseMessage>')


def _error_response(operation: str, code: str) -> str:
    return _response(operation, [_error_message(operation, code, "")])
