"""Building outgoing messages: threaded, marked as automatic, never a loop."""

from __future__ import annotations

import email
import email.parser
import email.policy
import email.utils
import re
import email.message
from email.message import EmailMessage

from parsers.message import ParsedMessage

# Policy for outgoing mail: CRLF line ends and strict header folding of the headers the
# bot sets. Headers read from elsewhere (those of an original attached to a forward) are
# written as they came (refold_source="none"): refolding would parse them first, and the
# standard library raises ValueError on an address whose encoded word decodes to CR or LF.
POLICY = email.policy.SMTP.clone(max_line_length=78, refold_source="none")


# A msg-id as RFC 5322 section 3.6.4 allows it: atext, dots, "@" and a bracketed
# literal, at most 250 characters. Anything else in an incoming id (a decoded line break, say) is dropped from
# the threading headers rather than copied into an outgoing header.
SAFE_MESSAGE_ID = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.@\[\]]{1,250}")


def is_safe_message_id(value: str | None) -> bool:
    # "=?" would be read back as an RFC 2047 encoded word by the header parser, which
    # decodes it, line breaks included, when the reply is serialised.
    return bool(value) and SAFE_MESSAGE_ID.fullmatch(value) is not None and "=?" not in value


def _reject_line_breaks(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError(f"header {name} must not contain a line break")
    return value


def build_reply(*, original: ParsedMessage | None, sender: str, recipient: str, subject: str,
                body: str, loop_header: str, auto_submitted: str = "auto-replied") -> EmailMessage:
    """Build a plain-text message to `recipient`, threaded under `original` when given.

    Every message carries `Auto-Submitted` (RFC 3834), `X-Auto-Response-Suppress: All`
    so Exchange sends no out-of-office back, and the bot's own loop header, which the
    automation screen recognises on the way in.
    """
    message = EmailMessage(policy=POLICY)
    message["From"] = _reject_line_breaks("From", sender)
    message["To"] = _reject_line_breaks("To", recipient)
    message["Subject"] = _reject_line_breaks("Subject", subject)
    message["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = email.utils.make_msgid(domain=sender.rpartition("@")[2] or None)
    message["Auto-Submitted"] = auto_submitted
    message["X-Auto-Response-Suppress"] = "All"
    message[loop_header] = sender

    if original is not None and is_safe_message_id(original.message_id):
        references = [ref for ref in [*original.references, original.message_id] if is_safe_message_id(ref)]
        message["In-Reply-To"] = f"<{original.message_id}>"
        message["References"] = " ".join(f"<{ref}>" for ref in references[-20:])

    message.set_content(body, charset="utf-8")
    return message


def build_forward(*, original_raw: bytes, original: ParsedMessage | None, sender: str,
                  recipient: str, subject: str, body: str, loop_header: str) -> EmailMessage:
    """Build a cover note with the original attached whole, as message/rfc822."""
    message = build_reply(original=original, sender=sender, recipient=recipient, subject=subject,
                          body=body, loop_header=loop_header, auto_submitted="auto-generated")
    # RFC 2046 allows only 7bit, 8bit or binary for message/rfc822, so the original is
    # attached as a message rather than as base64 bytes. Only its header block is parsed:
    # the body is written back byte for byte, and a hostile MIME tree (100,000 parts, or
    # nesting deep enough to exhaust the stack) is never built a second time.
    parser = email.parser.BytesParser(_class=_VerbatimMessage, policy=email.policy.compat32)
    attached = parser.parsebytes(original_raw, headersonly=True)
    message.add_attachment(attached, filename="original-message.eml")
    return message


class _VerbatimMessage(email.message.Message):
    """A message parsed for its headers only, whose body the generator writes back byte for byte.

    The standard library's generator picks a writer by content type. The multipart and
    message writers decode, or strictly encode as ASCII, a body that was not parsed into
    parts, and both fail on 8-bit bytes. The text writer of BytesGenerator writes 8-bit
    bytes back as they came, so this class shows its body to the generator as text/plain.
    """

    def get_content_maintype(self) -> str:
        return "text"

    def get_content_subtype(self) -> str:
        return "plain"


def subject_prefixed(prefix: str, subject: str) -> str:
    """Prefix a subject once ('Re: Re: ...' is never produced)."""
    stripped = subject.strip()
    if stripped.lower().startswith(prefix.lower()):
        return stripped
    return f"{prefix} {stripped}".strip()
