"""Read the raw bytes of one message into a ParsedMessage.

The reader is lenient first: the standard library's compat32 parser builds the MIME tree
without rejecting anything, then single headers are read with the strict parser and fall
back to a lenient reading when that fails. Every repair is noted in `defects`.
"""

from __future__ import annotations

import email
import email.parser
import email.policy
import logging
import re
from email.message import Message

from parsers.attachments import DEFAULT_LIMITS, AttachmentLimits, read_attachments
from parsers.errors import UnreadableMessage
from parsers.message import Address, ParsedMessage
from parsers.html_text import tidy_text
from parsers.mime_decode import (
    decode_bytes,
    decode_header_text,
    is_single_byte,
    lenient_addresses,
    message_ids,
    normalise_charset,
    parse_addresses,
    raw_to_text,
    unfold,
)
from parsers.mime_parts import MAX_PARTS, MAX_TEXT_BYTES, PartWalker
from parsers.quotes import split_reply

logger = logging.getLogger(__name__)

# NOTE: Exchange Online's default message size limit is 35 MB and administrators can raise
# it to 150 MB at most, so a larger input is not mail an Exchange mailbox would accept.
# Other mail servers may allow more.
MAX_MESSAGE_BYTES = 150 * 1024 * 1024
# RFC 5322 limits a line to 998 characters. A folded subject may be longer, but one of
# many kilobytes is broken or hostile, and every later step reads the subject again.
# The full value stays in `headers`.
MAX_SUBJECT_CHARS = 2000

_FIELD_LINE = re.compile(rb"^[A-Za-z0-9][!-9;-~]*[ \t]*:")
_MBOX_FROM_LINE = re.compile(rb"^From [^\s:]")
_SPACE_BEFORE_COLON = re.compile(rb"^([A-Za-z0-9][!-9;-~]*)[ \t]+:")
_HEADER_SEARCH_BYTES = 8192
_MAX_JUNK_LINES = 3


def parse_message(raw: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES,
                  attachment_limits: AttachmentLimits = DEFAULT_LIMITS) -> ParsedMessage:
    """Parse raw message bytes; raise UnreadableMessage only when there is no header block.

    Any other trouble, including a failure inside one step, is recorded in `defects` and
    the fields that could be read are still returned. Attachments are read within
    `attachment_limits`, and their reason codes go to `attachment_notes`.
    """
    data, defects = prepare_bytes(raw, max_bytes)
    parsed = ParsedMessage(defects=defects)

    message = _parse_structure(data, parsed)
    if message is None:
        return parsed

    _run_step(parsed, "headers", _read_headers, message, parsed)
    _run_step(parsed, "body", _read_body, message, parsed)
    _run_step(parsed, "attachments", _read_attachments, parsed, attachment_limits)
    _run_step(parsed, "new_text", _read_new_text, parsed)
    return parsed


def _read_attachments(parsed: ParsedMessage, limits: AttachmentLimits) -> None:
    parsed.attachment_notes = read_attachments(parsed.attachments, limits)


def _run_step(parsed: ParsedMessage, step: str, function, *args) -> None:
    """Run one reading step, so that a bug in it cannot lose what the other steps found."""
    try:
        function(*args)
    except Exception:  # noqa: BLE001 - the reader must return a message for any input
        logger.exception("message reader step %r failed for message id %r", step, parsed.message_id)
        parsed.defects.append(f"failed:{step}")


def prepare_bytes(raw: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> tuple[bytes, list[str]]:
    """Check the size, remove a byte-order mark and junk lines, and normalise line endings."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", errors="surrogateescape")
    data = bytes(raw)
    if len(data) > max_bytes:
        raise UnreadableMessage("too_large", f"{len(data)} bytes is over the {max_bytes}-byte limit")

    defects: list[str] = []
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        defects.append("byte_order_mark")

    stripped = data.lstrip(b" \t\r\n")
    if len(stripped) != len(data):
        defects.append("leading_blank_lines")
        data = stripped

    data = _normalise_line_endings(data, defects)
    data = _skip_junk_before_headers(data, defects)
    data = _repair_header_block(data, defects)
    return data, defects


def _normalise_line_endings(data: bytes, defects: list[str]) -> bytes:
    """Use LF line endings; bare CR counts as a line ending only when the headers use it."""
    data = data.replace(b"\r\n", b"\n")
    head = data[:_HEADER_SEARCH_BYTES]
    if b"\r" in head and b"\n" not in head:
        defects.append("bare_cr_line_endings")
        data = data.replace(b"\r", b"\n")
    return data


def _skip_junk_before_headers(data: bytes, defects: list[str]) -> bytes:
    """Drop up to three junk lines before the first header field, or raise if none is found."""
    lines = data[:_HEADER_SEARCH_BYTES].split(b"\n")
    first = 1 if lines and _MBOX_FROM_LINE.match(lines[0]) else 0
    for index in range(first, min(len(lines), first + _MAX_JUNK_LINES + 1)):
        line = lines[index]
        if _FIELD_LINE.match(line):
            if index == first:
                return data
            defects.append("junk_before_headers")
            junk_length = sum(len(junk) + 1 for junk in lines[first:index])
            prefix = data[:sum(len(kept) + 1 for kept in lines[:first])]
            return prefix + data[len(prefix) + junk_length:]
        if not line.strip() or b"\x00" in line:
            break
    raise UnreadableMessage("no_headers", "no header field found at the start of the input")


def _repair_header_block(data: bytes, defects: list[str]) -> bytes:
    """Repair two header-block faults that would end the block early in the parser.

    A space before the colon ("Subject :", allowed by RFC 822) is removed. A continuation
    line that lost its leading whitespace is indented again, but only when more header
    fields follow it. Otherwise the line is taken as the first body line of a message
    that has no blank line after its headers.
    """
    end = data.find(b"\n\n")
    block = data if end < 0 else data[:end]
    lines = block.split(b"\n")
    first = 1 if lines and _MBOX_FROM_LINE.match(lines[0]) else 0
    repairs = []
    for index in range(first, len(lines)):
        line = lines[index]
        if not line or line[:1] in (b" ", b"\t"):
            continue
        spaced = _SPACE_BEFORE_COLON.match(line)
        if spaced:
            lines[index] = spaced.group(1) + b":" + line[spaced.end():]
            repairs.append("bad_header_syntax")
            continue
        if _FIELD_LINE.match(line) or index == first:
            continue
        if not any(_FIELD_LINE.match(later) for later in lines[index + 1:]):
            break
        lines[index] = b" " + line
        repairs.append("bad_header_folding")
    if not repairs:
        return data
    defects.extend(sorted(set(repairs)))
    rest = b"" if end < 0 else data[end:]
    return b"\n".join(lines) + rest


def _parse_structure(data: bytes, parsed: ParsedMessage) -> Message | None:
    """Build the MIME tree, falling back to headers plus a raw body when the tree fails."""
    data = _cut_after_part_limit(data, parsed.defects)
    try:
        return email.message_from_bytes(data, policy=email.policy.compat32)
    except Exception:  # noqa: BLE001 - RecursionError and parser bugs on hostile input
        logger.warning("MIME structure unreadable, reading headers only", exc_info=True)
        parsed.defects.append("mime_structure_unreadable")
    try:
        return email.parser.BytesParser(policy=email.policy.compat32).parsebytes(data, headersonly=True)
    except Exception:  # noqa: BLE001
        logger.warning("header block unreadable", exc_info=True)
        parsed.defects.append("failed:headers")
        return None


def _cut_after_part_limit(data: bytes, defects: list[str]) -> bytes:
    """Cut the input before the line that could start part MAX_PARTS + 1.

    The walker reads only MAX_PARTS parts, but the standard library's parser builds the
    whole tree first, at about 0.1 ms per part: 100,000 tiny parts took over ten seconds.
    Any line starting with "--" counts as a possible boundary line, so plain text with
    thousands of such lines is cut too. The defect "mime_too_many_parts" records the cut.
    """
    position = 0
    for _ in range(MAX_PARTS):
        position = data.find(b"\n--", position)
        if position < 0:
            return data
        position += 3
    following = data.find(b"\n--", position)
    if following < 0:
        return data
    defects.append("mime_too_many_parts")
    return data[:following + 1]


def _read_headers(message: Message, parsed: ParsedMessage) -> None:
    hint = charset_hint(message)
    defects = parsed.defects
    raw: dict[str, list[str]] = {}
    for name, value in message.raw_items():
        raw.setdefault(name.strip().lower(), []).append(value if isinstance(value, str) else str(value))

    parsed.headers = {
        name: [decode_header_text(name, value, hint, defects) for value in values]
        for name, values in raw.items()
    }
    parsed.subject = parsed.header("subject")
    if len(parsed.subject) > MAX_SUBJECT_CHARS:
        parsed.subject = parsed.subject[:MAX_SUBJECT_CHARS]
        defects.append("subject_truncated")
    parsed.date = parsed.header("date") or None

    senders = parse_addresses("from", raw.get("from", [])[:1], hint, defects)
    if not senders:
        senders = parse_addresses("sender", raw.get("sender", [])[:1], hint, defects)
    parsed.sender = senders[0] if senders else None
    parsed.reply_to = parse_addresses("reply-to", raw.get("reply-to", []), hint, defects)
    parsed.to = parse_addresses("to", raw.get("to", []), hint, defects)
    parsed.cc = parse_addresses("cc", raw.get("cc", []), hint, defects)

    ids = message_ids(raw["message-id"][0]) if raw.get("message-id") else []
    parsed.message_id = ids[0] if ids else None
    parsed.in_reply_to = _all_ids(raw.get("in-reply-to", []))
    parsed.references = _all_ids(raw.get("references", []))
    parsed.return_path = _return_path(raw.get("return-path", []))
    parsed.content_type = message.get_content_type()


def _all_ids(values: list[str]) -> list[str]:
    ids: list[str] = []
    for value in values:
        ids.extend(item for item in message_ids(value) if item not in ids)
    return ids


def _return_path(values: list[str]) -> str | None:
    """Return the topmost Return-Path address, lower-cased; "" for the null path "<>"."""
    if not values:
        return None
    value = unfold(values[0]).strip()
    angle = re.search(r"<([^<>]*)>", value)
    address = angle.group(1) if angle else value
    return address.strip().lower()


def charset_hint(message: Message) -> str | None:
    """Return the charset to try for raw 8-bit header bytes, which carry no label of their own.

    A multibyte charset declared anywhere in the message wins over a single-byte one,
    because mail with raw GB2312 or Shift_JIS headers often has a Latin-1 part as well.
    """
    declared = []
    for count, part in enumerate(message.walk()):
        if count > 50:
            break
        try:
            charset = part.get_content_charset()
        except Exception:  # noqa: BLE001 - a malformed parameter is no hint at all
            charset = None
        codec = normalise_charset(charset)
        if codec and codec not in declared:
            declared.append(codec)
    for codec in declared:
        if codec != "utf-8" and not is_single_byte(codec):
            return codec
    return declared[0] if declared else None


def _read_body(message: Message, parsed: ParsedMessage) -> None:
    if "mime_structure_unreadable" in parsed.defects:
        # Only the header block was parsed: keep the raw body as plain text.
        payload = message.get_payload()
        raw = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
        if len(raw) > MAX_TEXT_BYTES:
            raw = raw[:MAX_TEXT_BYTES]
            parsed.defects.append("body_truncated")
        parsed.text = tidy_text(decode_bytes(raw, None, parsed.defects))
        return
    walker = PartWalker(parsed.defects, charset_hint(message))
    walker.walk(message)
    walker.finish(parsed)


def _read_new_text(parsed: ParsedMessage) -> None:
    source = parsed.text if parsed.text.strip() else parsed.html_text
    split = split_reply(source, parsed.subject)
    parsed.new_text = split.new_text

    if split.forwarded_text:
        parsed.forwarded_text = "\n\n".join(text for text in (parsed.forwarded_text, split.forwarded_text) if text)
    if split.forwarded_from and parsed.forwarded_from is None:
        parsed.forwarded_from = forwarded_sender(split.forwarded_from, parsed.defects)


def forwarded_sender(value: str, defects: list[str]) -> Address | None:
    """Read the author of an inline forwarded block from its "From:" line."""
    text = raw_to_text(value, None, defects).replace("[mailto:", "<").replace("]", ">")
    found = lenient_addresses(text, [])
    if found:
        return found[0]
    name = text.strip().strip('"')
    return Address(name=name, email="") if name else None
