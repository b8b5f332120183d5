"""Walk the MIME tree of a message: body text, attachments, forwards and delivery reports."""

from __future__ import annotations

import base64
import binascii
import email
import email.parser
import email.policy
import email.utils
import mimetypes
import quopri
import re
import urllib.parse
from dataclasses import dataclass, field
from email.message import Message

from parsers.html_text import html_to_text, tidy_text
from parsers.message import Address, Attachment, ParsedMessage
from parsers.mime_decode import (
    decode_bytes,
    decode_encoded_words,
    decode_header_text,
    parse_addresses,
    raw_to_text,
    raw_values,
)
from parsers.mime_tnef import read_tnef
from parsers.mime_uuencode import split_uuencoded

# Limits against hostile nesting; real mail stays far below both.
MAX_DEPTH = 40
MAX_PARTS = 5000
# Bytes of body text read from one message, over all its text parts. A person's message
# is a few kilobytes, and every later step reads the text again, at about a second per
# megabyte in all. NOTE: text past the limit is not screened for risk; the defect
# "body_truncated" marks such a message.
MAX_TEXT_BYTES = 2 * 1024 * 1024

_KNOWN_ENCODINGS = {"", "7bit", "8bit", "binary", "quoted-printable", "base64",
                    "x-uuencode", "uuencode", "x-uue", "uue"}
_BODY_TEXT_TYPES = {"text/plain", "text/html", "text/enriched", "text/richtext", "text/x-moz-deleted"}
_RETURNED_HEADER_TYPES = {"text/rfc822-headers", "message/rfc822-headers"}
_ENCLOSED_TYPES = {"message/rfc822", "message/global"}
_DELIVERY_STATUS_TYPES = {"message/delivery-status", "message/global-delivery-status"}
# Machine-readable report fields with no text for a person; automation.py reads the type.
_MACHINE_REPORT_TYPES = {"message/disposition-notification", "message/feedback-report",
                         "message/global-disposition-notification"}
_PKCS7_TYPES = {"application/pkcs7-mime", "application/x-pkcs7-mime"}
_ENCRYPTED_SMIME_TYPES = {"enveloped-data", "authenticated-enveloped-data"}
_PGP_MESSAGE = "-----BEGIN PGP MESSAGE-----"
_META_CHARSET = re.compile(rb"<meta[^>]{0,200}charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.IGNORECASE)
_DSN_FIELD = r"^[ \t]*{}[ \t]*:[ \t]*([A-Za-z0-9.-]+)"
_MIME_FIELD_START = re.compile(r"(?i)(content-type|mime-version|content-transfer-encoding)[ \t]*:")
_CID_REFERENCE = re.compile(r"cid:([^\"'\s>)]+)", re.IGNORECASE)

# Destinations of a part's text: the message itself, a forwarded message, or a returned one.
MAIN, FORWARDED, RETURNED = "main", "forwarded", "returned"


@dataclass
class _FoundAttachment:
    attachment: Attachment
    named: bool
    disposition: str
    in_related: bool


@dataclass
class _Texts:
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)

    def as_text(self) -> str:
        if self.plain:
            return "\n\n".join(text for text in self.plain if text.strip())
        return "\n\n".join(html_to_text(html) for html in self.html)


class PartWalker:
    """Collect body text, attachments and report details while walking one message."""

    def __init__(self, defects: list[str], charset_hint: str | None) -> None:
        self.defects = defects
        self.charset_hint = charset_hint
        self.texts = {MAIN: _Texts(), FORWARDED: _Texts(), RETURNED: _Texts()}
        self.found: list[_FoundAttachment] = []
        self.encrypted = False
        self.forwarded_from: Address | None = None
        self.delivery_status: list[str] = []
        self.returned_headers: dict[str, list[str]] = {}
        self.part_count = 0
        self.text_bytes = 0

    def walk(self, part: Message, where: str = MAIN, depth: int = 0, in_related: bool = False) -> None:
        """Visit one part and, for containers, its children."""
        self.part_count += 1
        if depth > MAX_DEPTH or self.part_count > MAX_PARTS:
            self._note("mime_too_deep" if depth > MAX_DEPTH else "mime_too_many_parts")
            return

        content_type = part.get_content_type()
        if content_type in _ENCLOSED_TYPES:
            self._walk_enclosed(part, where, depth)
        elif content_type in _DELIVERY_STATUS_TYPES:
            # A report inside a forwarded message describes that message, not this one.
            if where == MAIN:
                self._read_delivery_status(part)
        elif content_type in _RETURNED_HEADER_TYPES:
            if where == MAIN:
                self._read_returned_headers(part)
        elif content_type in _MACHINE_REPORT_TYPES:
            return
        elif content_type == "multipart/encrypted":
            self.encrypted = True
        elif content_type == "multipart/report" and where == MAIN:
            self._walk_report(part, where, depth)
        elif part.is_multipart():
            related = in_related or content_type == "multipart/related"
            for child in _children(part):
                self.walk(child, where, depth + 1, related)
        else:
            self._read_leaf(part, where, in_related)

    def _walk_enclosed(self, part: Message, where: str, depth: int) -> None:
        """Walk a forwarded (or returned) message/rfc822 part."""
        children = _children(part)
        inner = children[0] if children else self._parse_enclosed_bytes(part)
        if inner is None or (not inner.keys() and not _has_payload(inner)):
            self._note("empty_forwarded_message")
            return
        inner = self._repair_enclosed(part, inner)

        if where == RETURNED:
            self._store_returned_headers(inner)
        elif self.forwarded_from is None:
            senders = parse_addresses("from", raw_values(inner, "from")[:1], self.charset_hint, self.defects)
            self.forwarded_from = senders[0] if senders else None

        self.walk(inner, RETURNED if where == RETURNED else FORWARDED, depth + 1)

    def _repair_enclosed(self, part: Message, inner: Message) -> Message:
        """Re-parse an enclosed message that the parser read as text.

        Two cases are repaired: a message/rfc822 part sent base64-encoded, and an enclosed
        message with a blank line inside its header block (Outlook exports do this), which
        leaves Content-Type and the MIME structure in the body.
        """
        payload = inner.get_payload()
        if inner.is_multipart() or not isinstance(payload, str):
            return inner

        encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
        if not inner.keys() and encoding in ("base64", "quoted-printable"):
            self._note("encoded_enclosed_message")
            data = _to_bytes(payload)
            try:
                data = base64.b64decode(data) if encoding == "base64" else quopri.decodestring(data)
            except (binascii.Error, ValueError):
                self._note("bad_transfer_encoding")
                return inner
            return email.message_from_bytes(data, policy=email.policy.compat32)

        body = payload.lstrip("\r\n")
        if inner.get("content-type") is None and _MIME_FIELD_START.match(body):
            self._note("split_header_block")
            fields = "".join(f"{name}: {value}\n" for name, value in inner.raw_items())
            data = _to_bytes(fields + body)
            return email.message_from_bytes(data, policy=email.policy.compat32)
        return inner

    def _parse_enclosed_bytes(self, part: Message) -> Message | None:
        """Parse an enclosed message that the parser left as text (for example base64-encoded)."""
        payload = self._payload(part)
        if not payload.strip():
            return None
        self._note("encoded_enclosed_message")
        return email.message_from_bytes(payload, policy=email.policy.compat32)

    def _walk_report(self, part: Message, where: str, depth: int) -> None:
        """Walk a multipart/report: the human part is text, the enclosed message is returned mail."""
        for child in _children(part):
            child_type = child.get_content_type()
            if child_type in _ENCLOSED_TYPES:
                self._walk_enclosed(child, RETURNED, depth + 1)
            else:
                self.walk(child, where, depth + 1)

    def _read_leaf(self, part: Message, where: str, in_related: bool) -> None:
        content_type = part.get_content_type()
        if content_type.startswith("multipart/"):
            # A multipart without parts or boundary: nothing to read.
            self._note("empty_multipart")
            return
        disposition = (part.get_content_disposition() or "").lower()
        filename = self._filename(part)

        if content_type in _PKCS7_TYPES and _is_enveloped(part, filename):
            self.encrypted = True
        if content_type == "application/pgp-encrypted":
            self.encrypted = True

        if content_type in _BODY_TEXT_TYPES and not filename and disposition != "attachment":
            self._read_text(part, where)
            return

        payload = self._payload(part)
        if content_type == "application/ms-tnef" or (filename or "").lower() == "winmail.dat":
            if self._read_tnef(payload, where):
                return
        if where == RETURNED:
            return
        self._add_attachment(part, payload, filename, disposition, in_related)

    def _read_text(self, part: Message, where: str) -> None:
        payload = self.take_text_bytes(self._payload(part))
        content_type = part.get_content_type()
        charset = _content_charset(part)
        if content_type == "text/html" and not charset:
            meta = _META_CHARSET.search(payload[:4096])
            charset = meta.group(1).decode("ascii") if meta else None

        text = decode_bytes(payload, charset, self.defects)
        if _PGP_MESSAGE in text:
            self.encrypted = True
        if content_type == "text/html":
            self.texts[where].html.append(text)
            return
        if (part.get_param("format") or "").lower() == "flowed":
            text = _unflow(text, (part.get_param("delsp") or "").lower() == "yes")
        if "begin " in text:
            text = self._take_uuencoded(text, where)
        self.texts[where].plain.append(tidy_text(text))

    def take_text_bytes(self, payload: bytes) -> bytes:
        """Return as much of `payload` as MAX_TEXT_BYTES leaves room for, noting a cut."""
        room = max(MAX_TEXT_BYTES - self.text_bytes, 0)
        if len(payload) > room:
            payload = payload[:room]
            self._note("body_truncated")
        self.text_bytes += len(payload)
        return payload

    def _take_uuencoded(self, text: str, where: str) -> str:
        """Move inline uuencoded files out of a plain-text body into the attachments."""
        text, files = split_uuencoded(text)
        if files:
            self._note("inline_uuencode")
        if where == RETURNED:
            return text  # files of a returned message are not this message's attachments
        for filename, data in files:
            filename = self._safe_filename(filename) or f"attachment-{len(self.found) + 1}.bin"
            content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
            attachment = Attachment(filename=filename, content_type=content_type, size=len(data), payload=data)
            self.found.append(_FoundAttachment(attachment, True, "attachment", False))
        return text

    def _read_tnef(self, payload: bytes, where: str) -> bool:
        """Add the body and files of a winmail.dat; return False when it could not be read."""
        result = read_tnef(payload, self.defects)
        if result is None:
            return False
        if result.text:
            self.texts[where].plain.append(tidy_text(result.text))
        if result.html:
            self.texts[where].html.append(result.html)
        if where != RETURNED:
            for attachment in result.attachments:
                self.found.append(_FoundAttachment(attachment, True, "attachment", False))
        return True

    def _payload(self, part: Message) -> bytes:
        """Return the decoded payload; an unknown transfer encoding leaves the raw bytes."""
        encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
        if encoding not in _KNOWN_ENCODINGS:
            self._note("unknown_cte")
            repaired = _guess_encoding(encoding)
            if repaired:
                del part["content-transfer-encoding"]
                part["Content-Transfer-Encoding"] = repaired
        try:
            payload = part.get_payload(decode=True)
        except Exception:  # noqa: BLE001 - a broken encoding gives the raw payload instead
            self._note("bad_transfer_encoding")
            payload = None
        if payload is None:
            raw = part.get_payload()
            payload = _to_bytes(raw) if isinstance(raw, str) else b""
        return payload

    def _filename(self, part: Message) -> str:
        """Return the decoded, path-free filename of a part, or "" when it has none."""
        for header, parameter in (("content-disposition", "filename"), ("content-type", "name")):
            try:
                value = part.get_param(parameter, header=header)
            except Exception:  # noqa: BLE001 - malformed parameters are treated as missing
                self._note(f"bad_header:{header}")
                value = None
            if not value:
                continue
            name = self._decode_parameter(value)
            if name:
                return self._safe_filename(name)
        return ""

    def _decode_parameter(self, value) -> str:
        if isinstance(value, tuple):
            # RFC 2231: the value contains the percent-decoded bytes, one character per byte.
            charset, _, text = value
            try:
                data = text.encode("latin-1", "surrogateescape")
            except UnicodeEncodeError:
                return text
            return decode_bytes(data, charset, self.defects)
        text = raw_to_text(email.utils.unquote(str(value)), self.charset_hint, self.defects)
        if "=?" in text:
            text = decode_encoded_words(text, self.defects)
        return text

    def _safe_filename(self, name: str) -> str:
        cleaned = re.sub(r"[\x00-\x1f\x7f]", "", name).replace("\\", "/")
        base = cleaned.rsplit("/", 1)[-1].strip().lstrip(".") or ""
        if base != name.strip():
            self._note("unsafe_filename")
        return base

    def _add_attachment(self, part: Message, payload: bytes, filename: str, disposition: str,
                        in_related: bool) -> None:
        content_type = part.get_content_type()
        named = bool(filename)
        if not filename:
            extension = mimetypes.guess_extension(content_type) or ".bin"
            filename = f"attachment-{len(self.found) + 1}{extension}"
        content_id = str(part.get("content-id", "")).strip().strip("<>").strip() or None
        attachment = Attachment(
            filename=filename,
            content_type=content_type,
            size=len(payload),
            payload=payload,
            content_id=content_id,
        )
        self.found.append(_FoundAttachment(attachment, named, disposition, in_related))

    def _read_delivery_status(self, part: Message) -> None:
        """Summarise each recipient of a delivery-status part as "<action> <status>".

        The fields are read with a pattern over the part's text, because some gateways
        write "Action : failed" with a space that the header parser rejects.
        """
        for block in re.split(r"\n[ \t]*\n", self._delivery_status_text(part)):
            action = _DSN_FIELD.format("Action")
            status = _DSN_FIELD.format("Status")
            action_match = re.search(action, block, re.IGNORECASE | re.MULTILINE)
            status_match = re.search(status, block, re.IGNORECASE | re.MULTILINE)
            words = [match.group(1).lower() for match in (action_match, status_match) if match]
            summary = " ".join(words)
            if summary and summary not in self.delivery_status:
                self.delivery_status.append(summary)

    def _delivery_status_text(self, part: Message) -> str:
        blocks = _children(part)
        if not blocks:
            return decode_bytes(self._payload(part), None, self.defects)
        texts = []
        for block in blocks:
            fields = "\n".join(f"{name}: {value}" for name, value in block.raw_items())
            body = block.get_payload()
            texts.append(fields + ("\n" + body if isinstance(body, str) else ""))
        return "\n\n".join(texts).replace("\r", "")

    def _read_returned_headers(self, part: Message) -> None:
        children = _children(part)
        if children:
            self._store_returned_headers(children[0])
            return
        text = decode_bytes(self._payload(part), _content_charset(part), self.defects)
        headers = email.parser.Parser(policy=email.policy.compat32).parsestr(text.lstrip(), headersonly=True)
        self._store_returned_headers(headers)

    def _store_returned_headers(self, message: Message) -> None:
        for name, value in message.raw_items():
            key = name.strip().lower()
            decoded = decode_header_text(key, str(value), self.charset_hint, self.defects)
            self.returned_headers.setdefault(key, []).append(decoded)

    def _note(self, defect: str) -> None:
        if defect not in self.defects:
            self.defects.append(defect)

    def finish(self, parsed: ParsedMessage) -> None:
        """Copy what the walk collected into the parsed message."""
        main = self.texts[MAIN]
        parsed.text = "\n\n".join(text for text in main.plain if text.strip())
        parsed.html_text = "\n\n".join(text for text in map(html_to_text, main.html) if text.strip())
        parsed.forwarded_text = self.texts[FORWARDED].as_text()
        parsed.returned_text = self.texts[RETURNED].as_text()
        parsed.forwarded_from = self.forwarded_from
        parsed.encrypted = self.encrypted
        parsed.delivery_status = "; ".join(self.delivery_status) or None
        parsed.returned_headers = self.returned_headers
        parsed.attachments = self._mark_inline_images()

    def _mark_inline_images(self) -> list[Attachment]:
        """Mark images shown inside the HTML body: they are layout, not files for the case."""
        referenced = set()
        for texts in self.texts.values():
            for html in texts.html:
                referenced.update(urllib.parse.unquote(match).strip("<>").lower()
                                  for match in _CID_REFERENCE.findall(html))
        attachments = []
        for found in self.found:
            attachment = found.attachment
            cid = (attachment.content_id or "").lower()
            if cid and attachment.content_type.startswith("image/"):
                attachment.inline = (
                    not found.named
                    or cid in referenced
                    or (found.in_related and found.disposition != "attachment")
                )
            attachments.append(attachment)
        return attachments


def _to_bytes(text: str) -> bytes:
    """Return the original bytes of parser text (8-bit bytes are kept as surrogate escapes)."""
    try:
        return text.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")


def _children(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [child for child in payload if isinstance(child, Message)]
    return []


def _has_payload(part: Message) -> bool:
    payload = part.get_payload()
    if isinstance(payload, list):
        return bool(payload)
    return bool(payload and str(payload).strip())


def _content_charset(part: Message) -> str | None:
    try:
        return part.get_content_charset()
    except Exception:  # noqa: BLE001 - an unreadable charset parameter counts as none
        return None


def _is_enveloped(part: Message, filename: str) -> bool:
    smime_type = str(part.get_param("smime-type") or "").lower()
    if smime_type:
        return smime_type in _ENCRYPTED_SMIME_TYPES
    return filename.lower().endswith(".p7m") or not filename


def _guess_encoding(encoding: str) -> str | None:
    """Map a misspelt transfer encoding such as "base-64" to the one the sender meant."""
    squashed = re.sub(r"[^a-z0-9]", "", encoding)
    if "base64" in squashed:
        return "base64"
    if "quotedprintable" in squashed or squashed == "qp":
        return "quoted-printable"
    return None


def _unflow(text: str, delete_space: bool) -> str:
    """Join the soft line breaks of a format=flowed body (RFC 3676).

    A line ending in a space continues on the next line only when both have the same
    quote depth, so a reply typed under a quoted line is not glued to it.
    """
    output: list[str] = []
    carry: str | None = None
    carry_depth = 0
    for line in text.replace("\r\n", "\n").split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]  # space-stuffing
        if carry is not None:
            if depth == carry_depth:
                content = carry + content
            else:
                output.append(_quote_prefix(carry_depth) + carry)
            carry = None
        if content.endswith(" ") and content != "-- ":
            carry = content[:-1] if delete_space else content
            carry_depth = depth
            continue
        output.append(_quote_prefix(depth) + content)
    if carry is not None:
        output.append(_quote_prefix(carry_depth) + carry)
    return "\n".join(output)


def _quote_prefix(depth: int) -> str:
    return ">" * depth + " " if depth else ""
