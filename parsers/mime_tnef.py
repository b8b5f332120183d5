"""Read Outlook's TNEF container (winmail.dat): its body and the files inside it."""

from __future__ import annotations

import logging
import mimetypes
from dataclasses import dataclass, field

from parsers.message import Attachment
from parsers.mime_decode import decode_bytes

logger = logging.getLogger(__name__)

try:
    from tnefparse.tnef import TNEF
except ImportError:  # pragma: no cover - tnefparse is a declared dependency
    TNEF = None

try:
    from compressed_rtf import decompress as decompress_rtf  # noqa: F401 - used by tnefparse
    from striprtf.striprtf import rtf_to_text
except ImportError:  # pragma: no cover - without them an RTF-only body stays unread
    decompress_rtf = None
    rtf_to_text = None


@dataclass
class TnefContent:
    """The readable parts of a winmail.dat."""

    text: str = ""
    html: str = ""
    attachments: list[Attachment] = field(default_factory=list)


def read_tnef(payload: bytes, defects: list[str]) -> TnefContent | None:
    """Return the body and files of a TNEF payload, or None when it is not readable TNEF.

    The caller keeps an unreadable winmail.dat as an ordinary attachment.
    """
    if TNEF is None:
        defects.append("tnef_not_supported")
        return None
    try:
        tnef = TNEF(payload, do_checksum=False)
    except Exception as error:  # noqa: BLE001 - tnefparse raises many kinds on bad input
        logger.debug("winmail.dat is not readable TNEF: %r", error)
        defects.append("tnef_unreadable")
        return None

    content = TnefContent(
        text=_as_text(tnef.body, defects),
        html=_as_text(tnef.htmlbody, defects),
        attachments=[_attachment(item) for item in tnef.attachments if item.data],
    )
    if not content.text and not content.html:
        content.text = _rtf_text(tnef, defects)
    if not (content.text or content.html or content.attachments):
        defects.append("tnef_empty")
        return None
    return content


def _as_text(value, defects: list[str]) -> str:
    if not value:
        return ""
    if isinstance(value, bytes):
        return decode_bytes(value.rstrip(b"\x00"), None, defects)
    return str(value).rstrip("\x00")


def _rtf_text(tnef, defects: list[str]) -> str:
    """Return the text of the compressed RTF body that Outlook usually sends instead of plain text."""
    if decompress_rtf is None or rtf_to_text is None:
        defects.append("tnef_rtf_not_supported")
        return ""
    try:
        # tnefparse decompresses the RTF itself when compressed_rtf is installed.
        rtf = tnef.rtfbody
        if not rtf:
            return ""
        return rtf_to_text(rtf.decode("latin-1"), errors="ignore")
    except Exception as error:  # noqa: BLE001 - damaged RTF leaves the body empty
        logger.debug("RTF body in winmail.dat unreadable: %r", error)
        defects.append("tnef_rtf_unreadable")
        return ""


def _attachment(item) -> Attachment:
    try:
        filename = item.long_filename() or item.name
    except Exception:  # noqa: BLE001 - a name that does not decode is replaced below
        filename = ""
    filename = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip("\x00 ") or "attachment.bin"
    content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    data = bytes(item.data)
    return Attachment(filename=filename, content_type=content_type, size=len(data), payload=data)
