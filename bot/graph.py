"""A small Microsoft Graph client for one mailbox, on requests and an app-only token.

Every request sends `Prefer: IdType="ImmutableId"`, so a message keeps its id when the
bot moves it to another folder. Throttled requests (HTTP 429, and 503 Service
Unavailable) are retried after the wait that Retry-After requests, a bounded number of
times, and then fail with RemoteError so the next poll tries again. Graph limits each
mailbox to a few concurrent requests, so the client sends one at a time.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from urllib.parse import quote, urlsplit

import requests

from bot.errors import ConfigError, RemoteError
from bot.oauth import HttpSession, TokenSource

log = logging.getLogger(__name__)

_RETRIED_STATUSES = (429, 503)
# Waits used when a 503 carries no Retry-After: 1, 2, 4, ... seconds.
_FALLBACK_WAIT_SECONDS = 1.0


class GraphError(RemoteError):
    """An error response from Graph: its HTTP status and Graph's error code, never its text."""

    def __init__(self, operation: str, status: int, code: str) -> None:
        self.operation = operation
        self.status = status
        self.code = code
        super().__init__(f"graph {operation} failed: HTTP {status} {code}".rstrip())


class GraphClient:
    """Sends Graph requests about one mailbox, which is a user principal name or object id."""

    def __init__(self, *, base_url: str, mailbox: str, tokens: TokenSource, ca_file: str = "",
                 timeout_seconds: int = 30, max_retries: int = 3, max_retry_wait_seconds: int = 60,
                 config_prefix: str = "mailbox.graph",
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self.mailbox = mailbox
        self.tokens = tokens
        self.timeout_seconds = timeout_seconds
        self.max_retries = max_retries
        self.max_retry_wait_seconds = max_retry_wait_seconds
        self.config_prefix = config_prefix
        self.sleep = sleep
        self.session = HttpSession(ca_file, timeout_seconds)
        origin = urlsplit(self.base_url)
        self._origin = (origin.scheme, origin.netloc)

    def user_url(self, path: str) -> str:
        """Return the URL of `path` under this mailbox's user, for example 'mailFolders/inbox'."""
        return f"{self.base_url}/users/{quote(self.mailbox, safe='@')}/{path}"

    def is_own_link(self, url: str) -> bool:
        """Return whether `url` points at the configured Graph host, so the token may go there."""
        parts = urlsplit(url)
        return (parts.scheme, parts.netloc) == self._origin

    def request(self, method: str, url: str, *, operation: str, params: dict | None = None,
                json: dict | None = None, data: bytes | None = None, headers: dict | None = None,
                prefer: Iterable[str] = (), stream: bool = False) -> requests.Response:
        """Send one request, retrying throttled ones; return the response when its status is below 400.

        Raises GraphError for an error status, ConfigError for 403 (a permission the app
        lacks), and RemoteError when the network failed or throttling outlasted the retries.
        """
        if not self.is_own_link(url):
            raise RemoteError(f"graph {operation} rejected: the link is not on the graph_url host, "
                              "and the access token goes only there")
        preferences = ", ".join(['IdType="ImmutableId"', *prefer])
        for attempt in range(self.max_retries + 1):
            request_headers = {"Authorization": f"Bearer {self.tokens.token()}", "Prefer": preferences,
                               **(headers or {})}
            try:
                response = self.session.request(method, url, params=params, json=json, data=data,
                                                headers=request_headers, stream=stream)
            except requests.RequestException as error:
                raise RemoteError(f"graph {operation} failed: {type(error).__name__}") from error

            if response.status_code not in _RETRIED_STATUSES:
                break
            wait = _retry_after_seconds(response, attempt)
            response.close()
            if attempt == self.max_retries:
                raise RemoteError(f"graph {operation} still throttled (HTTP {response.status_code}) "
                                  f"after {self.max_retries} retries")
            if wait > self.max_retry_wait_seconds:
                raise RemoteError(f"graph {operation} throttled (HTTP {response.status_code}); Retry-After "
                                  f"{wait:.0f} s exceeds max_retry_wait_seconds")
            log.warning("graph %s throttled (HTTP %d); retrying in %.1f s (retry %d of %d)",
                        operation, response.status_code, wait, attempt + 1, self.max_retries)
            self.sleep(wait)

        if response.status_code < 400:
            return response
        code = _error_code(response)
        if response.status_code == 403:
            raise ConfigError(f"{self.config_prefix}.client_id",
                              f"Graph denied {operation} (HTTP 403 {code})",
                              "grant the app Mail.ReadWrite and Mail.Send with admin consent, and "
                              "allow it on this mailbox in Exchange")
        raise GraphError(operation, response.status_code, code)


def _retry_after_seconds(response: requests.Response, attempt: int) -> float:
    """Return the wait that Retry-After requests (seconds or an HTTP date), else a doubling fallback."""
    value = response.headers.get("Retry-After", "").strip()
    if value.isdigit():
        return float(value)
    if value:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
    return _FALLBACK_WAIT_SECONDS * 2 ** attempt


def _error_code(response: requests.Response) -> str:
    """Return Graph's error code from an error body; the message text is left out of logs."""
    try:
        body = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return str(code)[:80] if code else ""
