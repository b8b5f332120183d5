"""Errors raised by the message parsers."""

from __future__ import annotations


class UnreadableMessage(Exception):
    """Raised when the raw bytes cannot be read as a mail message at all.

    `reason` is a short code for logs and metrics: "no_headers" when the bytes hold no
    header block (empty input, binary data, no line that looks like a header field) and
    "too_large" when the input is bigger than the reader accepts.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        message = f"unreadable message ({reason})"
        if detail:
            message = f"{message}: {detail}"
        super().__init__(message)
