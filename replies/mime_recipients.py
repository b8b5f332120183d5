"""A guard for backends that send raw MIME and take the recipients from its headers."""

from __future__ import annotations

from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

from bot.errors import RemoteError


def require_only_recipient(raw: bytes, recipient: str, operation: str) -> None:
    """Raise RemoteError unless To, Cc and Bcc together name exactly `recipient`.

    Graph sendMail and EWS CreateItem with MIME content deliver to every address in
    those headers, unlike SMTP, which delivers to the envelope recipient only. The
    outbox names one recipient per item, so any other address is rejected, not sent.
    """
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw, headersonly=True)
    values = [str(value) for name in ("To", "Cc", "Bcc") for value in headers.get_all(name, [])]
    addresses = {address.strip().lower() for _, address in getaddresses(values) if address.strip()}
    if addresses != {recipient.strip().lower()}:
        raise RemoteError(f"{operation} rejected: To, Cc and Bcc name {len(addresses)} address(es), "
                          "not only the outbox recipient")
