"""A stand-in for Microsoft Entra ID and Microsoft Graph mail, over HTTPS on 127.0.0.1.

It responds with the shapes Microsoft documents: the OpenID configuration and
token endpoint of a tenant (client secret or signed client assertion), and, for one
mailbox, mail folders (list, filter by displayName, create), a message delta query
(pages joined by @odata.nextLink, ending in @odata.deltaLink, @removed entries for
messages moved away, 410 Gone for an expired link), MIME through $value, move (201
with the moved message, which keeps its immutable id) and sendMail (202 Accepted).

Tests can make the next matching request fail once (a 429 with Retry-After, say), and
read every request it received, with its headers, from `requests`.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
import ssl
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.parser import BytesHeaderParser
from email.policy import compat32
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from servers import LOOPBACK_HOST, TlsMaterial

TENANT_ID = "00000000-0000-4000-8000-00000000c0a5"
CLIENT_ID = "11111111-1111-4111-8111-11111111c0a5"
IMMUTABLE_ID_PREFERENCE = 'IdType="ImmutableId"'


@dataclass
class ReceivedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class StoredMessage:
    id: str
    folder_id: str
    raw: bytes
    received: str
    internet_message_id: str


@dataclass
class Folder:
    id: str
    display_name: str
    parent_id: str


@dataclass
class _Failure:
    method: str
    path_pattern: str
    status: int
    headers: dict[str, str]
    body: dict
    remaining: int


@dataclass
class AppCertificate:
    """An RSA key and self-signed certificate such as an app registration holds, in PEM."""

    pem_bundle: str
    certificate: x509.Certificate

    @classmethod
    def generate(cls) -> AppCertificate:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ccas-bot test app")])
        now = datetime.now(timezone.utc)
        certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                       .public_key(key.public_key()).serial_number(x509.random_serial_number())
                       .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
                       .sign(key, hashes.SHA256()))
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        certificate_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
        return cls(pem_bundle=key_pem + certificate_pem, certificate=certificate)

    @property
    def sha256_thumbprint(self) -> str:
        digest = self.certificate.fingerprint(hashes.SHA256())
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class GraphServer:
    """Entra ID token endpoint and Graph mail for one mailbox; use as a context manager."""

    def __init__(self, tls: TlsMaterial, *, mailbox: str, client_secret: str | None = None,
                 certificate: AppCertificate | None = None) -> None:
        self.tls = tls
        self.mailbox = mailbox
        self.client_secret = client_secret if client_secret is not None else secrets.token_urlsafe(16)
        self.certificate = certificate
        self.lock = threading.Lock()
        self.requests: list[ReceivedRequest] = []
        self.token_requests: list[dict[str, str]] = []
        self.sent: list[bytes] = []
        self.moves: list[tuple[str, str]] = []
        self.on_move = None
        # Returns the access token the token endpoint issues; the IMAP test swaps in a Dovecot token.
        self.make_access_token = lambda: secrets.token_urlsafe(24)
        self.issued_tokens: set[str] = set()
        self.folders: dict[str, Folder] = {}
        self.messages: dict[str, StoredMessage] = {}
        self.inbox_id = self._add_folder("Inbox", parent_id="root")
        # The change log behind delta: (sequence, message id, "added" or "removed").
        self.changes: list[tuple[int, str, str]] = []
        self.sequence = itertools.count(1)
        self.last_sequence = 0
        # Delta tokens handed out in @odata.deltaLink, each mapped to its change-log position.
        self.delta_tokens: dict[str, int] = {}
        self.expired_tokens: set[str] = set()
        self.rounds: dict[str, list[dict]] = {}
        self.round_ends: dict[str, int] = {}
        self.failures: list[_Failure] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---

    def __enter__(self) -> GraphServer:
        handler = type("Handler", (_Handler,), {"graph": self})
        self._server = ThreadingHTTPServer((LOOPBACK_HOST, 0), handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.tls.cert_file, self.tls.key_file)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def base_url(self) -> str:
        return f"https://{LOOPBACK_HOST}:{self._server.server_address[1]}"

    @property
    def graph_url(self) -> str:
        return f"{self.base_url}/v1.0"

    @property
    def token_endpoint(self) -> str:
        return f"{self.base_url}/{TENANT_ID}/oauth2/v2.0/token"

    # --- test controls ---

    def deliver(self, raw: bytes) -> str:
        """Put a message in the inbox, as Exchange Online does on delivery; return its immutable id."""
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw, headersonly=True)
        message_id = "AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A" + secrets.token_hex(12)
        with self.lock:
            received = (datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
                        + timedelta(seconds=len(self.messages))).strftime("%Y-%m-%dT%H:%M:%SZ")
            self.messages[message_id] = StoredMessage(message_id, self.inbox_id, raw, received,
                                                      str(headers.get("Message-ID", "")))
            self._log_change(message_id, "added")
        return message_id

    def fail_next(self, method: str, path_pattern: str, status: int, *, headers: dict | None = None,
                  code: str = "", times: int = 1) -> None:
        """Fail the next `times` requests whose path matches `path_pattern` with HTTP `status`."""
        body = {"error": {"code": code or f"Http{status}", "message": "stand-in failure"}}
        with self.lock:
            self.failures.append(_Failure(method, path_pattern, status, headers or {}, body, times))

    def expire_delta_links(self) -> None:
        """Make every delta link handed out so far return 410 Gone, as after a long outage."""
        with self.lock:
            self.expired_tokens.update(self.delta_tokens)

    def folder_messages(self, path: str) -> list[StoredMessage]:
        """Return the messages in the folder at `path` ('Inbox' or 'CCAS/Processed')."""
        with self.lock:
            folder_id = self._folder_id_by_path(path)
            return [m for m in self.messages.values() if folder_id and m.folder_id == folder_id]

    def graph_requests(self) -> list[ReceivedRequest]:
        with self.lock:
            return [r for r in self.requests if r.path.startswith("/v1.0/")]

    # --- model ---

    def _add_folder(self, name: str, parent_id: str) -> str:
        folder_id = "AAMkAGFolder" + secrets.token_hex(8)
        self.folders[folder_id] = Folder(folder_id, name, parent_id)
        return folder_id

    def _folder_id_by_path(self, path: str) -> str:
        parent = "root"
        found = ""
        for name in path.split("/"):
            found = next((f.id for f in self.folders.values()
                          if f.parent_id == parent and f.display_name == name), "")
            if not found:
                return ""
            parent = found
        return found

    def _log_change(self, message_id: str, kind: str) -> None:
        number = next(self.sequence)
        self.last_sequence = number
        self.changes.append((number, message_id, kind))

    def _delta_items(self, since: int) -> list[dict]:
        """Return the inbox's changes after `since`: its messages now, and the ones moved away."""
        latest: dict[str, str] = {}
        for number, message_id, kind in self.changes:
            if number > since:
                latest[message_id] = kind
        items = []
        for message_id, kind in latest.items():
            message = self.messages[message_id]
            if kind == "added" and message.folder_id == self.inbox_id:
                items.append({"@odata.type": "#microsoft.graph.message", "id": message_id,
                              "receivedDateTime": message.received,
                              "internetMessageId": message.internet_message_id})
            elif since > 0:
                items.append({"id": message_id, "@removed": {"reason": "deleted"}})
        return items


class _Handler(BaseHTTPRequestHandler):
    graph: GraphServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes. With Nagle's algorithm on, the body
    # would wait for the client's delayed ACK (about 40 ms on Linux) on every response.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        pass

    # --- plumbing ---

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = parse_qs(parts.query)
        graph = self.graph
        with graph.lock:
            graph.requests.append(ReceivedRequest(method, path, query, dict(self.headers.items()), body))
            failure = next((f for f in graph.failures if f.method == method and f.remaining > 0
                            and re.search(f.path_pattern, path)), None)
            if failure is not None:
                failure.remaining -= 1
        if failure is not None:
            return self._json(failure.status, failure.body, failure.headers)
        try:
            if path.startswith(f"/{TENANT_ID}/"):
                return self._entra(method, path, body)
            if path.startswith("/v1.0/"):
                return self._graph(method, path, query, body)
        except _Reply as reply:
            return self._json(reply.status, reply.body)
        return self._json(404, {"error": {"code": "ResourceNotFound", "message": "no such path"}})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _json(self, status: int, body: dict | None, headers: dict | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _bytes(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    # --- Entra ID ---

    def _entra(self, method: str, path: str, body: bytes) -> None:
        graph = self.graph
        base = f"{graph.base_url}/{TENANT_ID}"
        if method == "GET" and path == f"/{TENANT_ID}/v2.0/.well-known/openid-configuration":
            return self._json(200, {
                "issuer": f"{graph.base_url}/{TENANT_ID}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
            })
        if method == "POST" and path == f"/{TENANT_ID}/oauth2/v2.0/token":
            form = {key: values[0] for key, values in parse_qs(body.decode()).items()}
            with graph.lock:
                graph.token_requests.append(form)
            problem = self._client_problem(form)
            if problem:
                return self._json(401, {"error": "invalid_client", "error_description": problem,
                                        "error_codes": [7000215]})
            token = graph.make_access_token()
            with graph.lock:
                graph.issued_tokens.add(token)
            return self._json(200, {"token_type": "Bearer", "expires_in": 3599,
                                    "ext_expires_in": 3599, "access_token": token})
        return self._json(404, {"error": "not_found"})

    def _client_problem(self, form: dict[str, str]) -> str:
        graph = self.graph
        if form.get("grant_type") != "client_credentials" or form.get("client_id") != CLIENT_ID:
            return "unknown client or grant"
        if not form.get("scope", "").endswith("/.default"):
            return "app-only requests need a /.default scope"
        if "client_secret" in form:
            return "" if form["client_secret"] == graph.client_secret else "invalid client secret"
        assertion = form.get("client_assertion", "")
        if graph.certificate is None or not assertion:
            return "no credential"
        header = jwt.get_unverified_header(assertion)
        # msal keeps base64 padding on the thumbprint, which JOSE leaves off; both are accepted.
        if str(header.get("x5t#S256", "")).rstrip("=") != graph.certificate.sha256_thumbprint:
            return "unknown certificate thumbprint"
        try:
            claims = jwt.decode(assertion, graph.certificate.certificate.public_key(),
                                algorithms=["PS256", "RS256"], audience=graph.token_endpoint)
        except jwt.InvalidTokenError as error:
            return f"bad client assertion: {error}"
        if claims.get("iss") != CLIENT_ID or claims.get("sub") != CLIENT_ID:
            return "client assertion names another client"
        return ""

    # --- Graph ---

    def _graph(self, method: str, path: str, query: dict, body: bytes) -> None:
        graph = self.graph
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        with graph.lock:
            known = token in graph.issued_tokens
        if not known:
            raise _Reply(401, {"error": {"code": "InvalidAuthenticationToken"}})
        prefix = f"/v1.0/users/{graph.mailbox}/"
        if not path.startswith(prefix):
            raise _Reply(404, {"error": {"code": "ErrorInvalidUser"}})
        rest = path[len(prefix):]

        if rest == "sendMail" and method == "POST":
            return self._send_mail(body)
        if match := re.fullmatch(r"mailFolders/([^/]+)/messages/delta", rest):
            return self._delta(match.group(1), query)
        if match := re.fullmatch(r"messages/([^/]+)/\$value", rest):
            message = self._message(match.group(1))
            return self._bytes(200, message.raw, "message/rfc822")
        if match := re.fullmatch(r"messages/([^/]+)/move", rest):
            return self._move(match.group(1), json.loads(body))
        if match := re.fullmatch(r"messages/([^/]+)", rest):
            message = self._message(match.group(1))
            return self._json(200, {"id": message.id, "parentFolderId": message.folder_id})
        if rest == "mailFolders":
            return self._folders("root", method, query, body)
        if match := re.fullmatch(r"mailFolders/([^/]+)/childFolders", rest):
            return self._folders(self._folder(match.group(1)).id, method, query, body)
        if match := re.fullmatch(r"mailFolders/([^/]+)", rest):
            folder = self._folder(match.group(1))
            return self._json(200, {"id": folder.id, "displayName": folder.display_name})
        raise _Reply(404, {"error": {"code": "ResourceNotFound"}})

    def _message(self, message_id: str) -> StoredMessage:
        with self.graph.lock:
            message = self.graph.messages.get(message_id)
        if message is None:
            raise _Reply(404, {"error": {"code": "ErrorItemNotFound"}})
        return message

    def _folder(self, folder_id: str) -> Folder:
        graph = self.graph
        if folder_id.lower() == "inbox":
            folder_id = graph.inbox_id
        with graph.lock:
            folder = graph.folders.get(folder_id)
        if folder is None:
            raise _Reply(404, {"error": {"code": "ErrorFolderNotFound"}})
        return folder

    def _folders(self, parent_id: str, method: str, query: dict, body: bytes) -> None:
        graph = self.graph
        with graph.lock:
            if method == "POST":
                name = json.loads(body)["displayName"]
                if any(f.parent_id == parent_id and f.display_name == name for f in graph.folders.values()):
                    raise _Reply(409, {"error": {"code": "ErrorFolderExists"}})
                folder_id = graph._add_folder(name, parent_id)
                return self._json(201, {"id": folder_id, "displayName": name, "parentFolderId": parent_id})
            children = [f for f in graph.folders.values() if f.parent_id == parent_id]
        wanted = query.get("$filter", [""])[0]
        if match := re.fullmatch(r"displayName eq '((?:[^']|'')*)'", wanted):
            name = match.group(1).replace("''", "'")
            children = [f for f in children if f.display_name == name]
        return self._json(200, {"value": [{"id": f.id, "displayName": f.display_name} for f in children]})

    def _move(self, message_id: str, request: dict) -> None:
        graph = self.graph
        message = self._message(message_id)
        destination = self._folder(request["destinationId"])
        if graph.on_move is not None:
            graph.on_move(message)
        with graph.lock:
            was_in_inbox = message.folder_id == graph.inbox_id
            message.folder_id = destination.id
            graph.moves.append((message_id, destination.id))
            if was_in_inbox:
                graph._log_change(message_id, "removed")
        return self._json(201, {"id": message.id, "parentFolderId": destination.id,
                                "internetMessageId": message.internet_message_id})

    def _send_mail(self, body: bytes) -> None:
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "text/plain":
            raise _Reply(400, {"error": {"code": "ErrorInvalidRequest"}})
        try:
            raw = base64.b64decode(body, validate=True)
        except ValueError:
            raise _Reply(400, {"error": {"code": "ErrorMimeContentInvalidBase64String"}}) from None
        with self.graph.lock:
            self.graph.sent.append(raw)
        return self._json(202, None)

    def _delta(self, folder: str, query: dict) -> None:
        graph = self.graph
        if self._folder(folder).id != graph.inbox_id:
            raise _Reply(400, {"error": {"code": "ErrorInvalidRequest"}})
        page_size = 10
        if match := re.search(r"odata\.maxpagesize=(\d+)", self.headers.get("Prefer", "")):
            page_size = int(match.group(1))
        with graph.lock:
            if "$skiptoken" in query:
                round_id, _, start = query["$skiptoken"][0].partition(".")
                items = graph.rounds[round_id]
                end = graph.round_ends[round_id]
                start = int(start)
            else:
                since = 0
                if "$deltatoken" in query:
                    token = query["$deltatoken"][0]
                    if token in graph.expired_tokens or token not in graph.delta_tokens:
                        raise _Reply(410, {"error": {"code": "SyncStateNotFound",
                                                     "message": "The sync state is not found."}})
                    since = graph.delta_tokens[token]
                round_id = secrets.token_hex(6)
                items = graph.rounds[round_id] = graph._delta_items(since)
                end = graph.round_ends[round_id] = graph.last_sequence
                start = 0
        link = f"{graph.graph_url}/users/{quote(graph.mailbox, safe='@')}/mailFolders/{folder}/messages/delta"
        page = {"@odata.context": f"{graph.graph_url}/$metadata#Collection(message)",
                "value": items[start:start + page_size]}
        if start + page_size < len(items):
            page["@odata.nextLink"] = f"{link}?$skiptoken={round_id}.{start + page_size}"
        else:
            token = secrets.token_hex(8)
            with graph.lock:
                graph.delta_tokens[token] = end
            page["@odata.deltaLink"] = f"{link}?$deltatoken={token}"
        return self._json(200, page)


class _Reply(Exception):
    def __init__(self, status: int, body: dict) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
