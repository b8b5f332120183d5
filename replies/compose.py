"""Building outgoing messages: threaded, marked as automatic, never a loop."""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
from email.message import EmailMessage

from parsers.message import ParsedMessage

# Policy for outgoing mail: CRLF line ends and strict header folding.
POLICY = email.policy.SMTP.clone(max_line_length=78)


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
    # attached as a parsed message (re-serialised byte for byte where the library can)
    # rather than as base64 bytes.
    attached = email.message_from_bytes(original_raw, policy=email.policy.compat32)
    message.add_attachment(attached, filename="original-message.eml")
    return message


def subject_prefixed(prefix: str, subject: str) -> str:
    """Prefix a subject once ('Re: Re: ...' is never produced)."""
    stripped = subject.strip()
    if stripped.lower().startswith(prefix.lower()):
        return stripped
    return f"{prefix} {stripped}".strip()
