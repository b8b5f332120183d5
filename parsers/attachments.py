"""Read the text of attachments and recognise which kind of document each one is.

PDF (pypdf), DOCX (python-docx), plain-text, HTML and RTF attachments are read within
the limits in AttachmentLimits. The kind is `ihcp` (individual healthcare plan), `eha`
(early help assessment), `medical_evidence` (letters and reports from a GP, hospital,
CAMHS or another clinic, discharge summaries, fit notes) or `other`. A document type
named in the title lines decides it first, then one named in the file name, then a
health service named in either, then the wording of the text.

Nothing here raises. Each problem becomes one reason code in the returned notes:

    attachment:too_large      over the byte limit, or a DOCX over its uncompressed limit
    attachment:page_limit     only the first `max_pages` pages of a PDF were read
    attachment:time_limit     the message's reading time ran out, so the text is partial
    attachment:text_limit     the text was cut at MAX_TEXT_CHARS characters
    attachment:encrypted      a PDF or DOCX that needs a password
    attachment:no_text_layer  a PDF with pages but no text, most likely a scan
    attachment:unreadable     the file is damaged, or its content does not match its type
    attachment:count_limit    only the first MAX_ATTACHMENTS_READ attachments were read
"""

from __future__ import annotations

import io
import logging
import re
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from parsers.html_text import html_to_text
from parsers.message import Attachment

log = logging.getLogger(__name__)
# pypdf's warnings about damaged files can quote bytes of the file, and logs never hold
# attachment content. Every failure still becomes a reason code here.
logging.getLogger("pypdf").setLevel(logging.CRITICAL)

TOO_LARGE = "attachment:too_large"
PAGE_LIMIT = "attachment:page_limit"
TIME_LIMIT = "attachment:time_limit"
TEXT_LIMIT = "attachment:text_limit"
ENCRYPTED = "attachment:encrypted"
NO_TEXT_LAYER = "attachment:no_text_layer"
UNREADABLE = "attachment:unreadable"
COUNT_LIMIT = "attachment:count_limit"


@dataclass(frozen=True)
class AttachmentLimits:
    """Bounds on reading the attachments of one message. config.example.toml explains the defaults."""

    max_bytes: int = 10 * 1024 * 1024
    max_pages: int = 20
    time_budget_ms: int = 5000


DEFAULT_LIMITS = AttachmentLimits()

# Attachments read per message. The kind of any further one comes from its name, because
# a referral carries a few documents and extraction searches each text read again.
MAX_ATTACHMENTS_READ = 20

# Text kept per attachment. Forty pages of dense text is about 150,000 characters, and
# the child's details and the document's title sit near the start.
MAX_TEXT_CHARS = 200_000

# A DOCX is a zip archive, so its parts can grow a thousandfold when unpacked. It is not
# opened when its directory lists more than this many members, or when the declared
# uncompressed sizes add up to more than this multiple of the byte limit. Images and
# embedded files are already compressed, so real documents stay close to 1x.
DOCX_MAX_MEMBERS = 1000
DOCX_MAX_EXPANSION = 4

# NOTE: a guess, not a measurement: a scanner's PDF may carry a few words of its own (a
# footer, a file name), so a PDF counts as a scan when no page it read has this many
# letters or digits.
MIN_CHARACTERS_PER_PAGE = 20

_PDF_MAGIC = b"%PDF-"
_ZIP_MAGIC = b"PK\x03\x04"
# An Office document saved with a password is an OLE compound file, not a zip archive.
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
_DOCX_TYPES = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
_TEXT_EXTENSIONS = (".txt", ".text", ".csv", ".log", ".md")
_HTML_EXTENSIONS = (".htm", ".html")
_RTF_EXTENSIONS = (".rtf",)

# Lines at the start of a document that can carry its title or letterhead.
_TITLE_LINES = 6
_SALUTATION = re.compile(r"(?i)(?:dear|to\s+whom\s+it\s+may\s+concern|hello|hi)\b")


class _OutOfTime(Exception):
    """Raised from inside a reader when the message's reading time has run out."""


class _Deadline:
    """The end of the reading time shared by all attachments of one message."""

    def __init__(self, budget_ms: int) -> None:
        self.end = time.monotonic() + budget_ms / 1000

    def expired(self) -> bool:
        return time.monotonic() >= self.end

    def check(self, *_arguments) -> None:
        """Raise _OutOfTime once the time has run out. pypdf calls it as an operator visitor."""
        if time.monotonic() >= self.end:
            raise _OutOfTime


@dataclass
class _Reading:
    """The text of one attachment, its heading lines and the reason codes of its reading."""

    text: str = ""
    headings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def note(self, code: str) -> None:
        if code not in self.notes:
            self.notes.append(code)


def read_attachments(attachments: Iterable[Attachment], limits: AttachmentLimits = DEFAULT_LIMITS) -> list[str]:
    """Fill in `text` and `kind` of every attachment that is not an inline image.

    Returns the reason codes of all attachments, each code once, in the order found.
    """
    deadline = _Deadline(limits.time_budget_ms)
    notes: list[str] = []
    files = [attachment for attachment in attachments if not attachment.inline]
    for attachment in files[:MAX_ATTACHMENTS_READ]:
        for code in read_attachment(attachment, limits, deadline):
            if code not in notes:
                notes.append(code)
    for attachment in files[MAX_ATTACHMENTS_READ:]:
        attachment.kind = attachment_kind(attachment.filename)
    if len(files) > MAX_ATTACHMENTS_READ:
        notes.append(COUNT_LIMIT)
    return notes


def read_attachment(attachment: Attachment, limits: AttachmentLimits = DEFAULT_LIMITS,
                    deadline: _Deadline | None = None) -> list[str]:
    """Fill in `text` and `kind` of one attachment and return its reason codes."""
    deadline = deadline or _Deadline(limits.time_budget_ms)
    reading = _Reading()
    if len(attachment.payload) > limits.max_bytes:
        reading.note(TOO_LARGE)
    elif deadline.expired():
        reading.note(TIME_LIMIT)
    else:
        reading = _read_by_format(attachment, limits, deadline)

    if len(reading.text) > MAX_TEXT_CHARS:
        reading.text = reading.text[:MAX_TEXT_CHARS]
        reading.note(TEXT_LIMIT)
    attachment.text = reading.text
    attachment.kind = attachment_kind(attachment.filename, reading.text, reading.headings)
    return reading.notes


def _read_by_format(attachment: Attachment, limits: AttachmentLimits, deadline: _Deadline) -> _Reading:
    """Pick the reader from the file's first bytes, then from its type and name."""
    payload = attachment.payload
    name = attachment.filename.lower()
    content_type = attachment.content_type.lower()
    head = payload[:1024]
    try:
        if _PDF_MAGIC in head:
            return _read_pdf(payload, limits, deadline)
        if name.endswith(".docx") or content_type in _DOCX_TYPES:
            return _read_docx(payload, limits, deadline)
        # NOTE: HTML, RTF and plain text are each read in one call, so the time budget is
        # checked only before them. The byte limit is what bounds their reading time.
        if name.endswith(_HTML_EXTENSIONS) or content_type == "text/html":
            return _Reading(text=html_to_text(_decode_text(payload)))
        if name.endswith(_RTF_EXTENSIONS) or content_type in ("application/rtf", "text/rtf"):
            return _read_rtf(payload)
        if name.endswith(_TEXT_EXTENSIONS) or content_type in ("text/plain", "text/csv"):
            return _Reading(text=_decode_text(payload))
        if name.endswith(".pdf") or content_type == "application/pdf":
            # Named a PDF, but without the PDF header near the start.
            return _Reading(notes=[UNREADABLE])
    except _OutOfTime:
        return _Reading(notes=[TIME_LIMIT])
    except Exception as error:  # noqa: BLE001 - a damaged file becomes a reason code, never a crash
        log.warning("attachment reader failed: %s", type(error).__name__)
        return _Reading(notes=[UNREADABLE])
    return _Reading()


# PDF


def _read_pdf(payload: bytes, limits: AttachmentLimits, deadline: _Deadline) -> _Reading:
    """Read the text layer of the first `max_pages` pages.

    The deadline is checked before each page and, through pypdf's operator visitor, at
    every drawing operator inside a page, so one huge page cannot run on. From version
    6.6 on, pypdf also stops decompressing any one stream at 75 MB by default, as its
    security documentation states.
    """
    import pypdf

    reading = _Reading()
    try:
        reader = pypdf.PdfReader(io.BytesIO(payload), strict=False)
    except pypdf.errors.DependencyError:
        # The file's cipher needs the `cryptography` package, which is not installed.
        reading.note(ENCRYPTED)
        return reading
    # pypdf tries the empty user password itself, which opens files that are only
    # protected against editing or printing.
    if reader.is_encrypted and not _decrypted(reader):
        reading.note(ENCRYPTED)
        return reading

    pages = reader.pages
    page_count = len(pages)
    texts: list[str] = []
    pages_read = 0
    for index in range(min(page_count, limits.max_pages)):
        if deadline.expired():
            reading.note(TIME_LIMIT)
            break
        try:
            texts.append(pages[index].extract_text(visitor_operand_before=deadline.check) or "")
        except _OutOfTime:
            reading.note(TIME_LIMIT)
            break
        except Exception as error:  # noqa: BLE001 - one broken page does not lose the others
            log.warning("PDF page %d unreadable: %s", index + 1, type(error).__name__)
            reading.note(UNREADABLE)
        pages_read += 1
    if page_count > limits.max_pages:
        reading.note(PAGE_LIMIT)

    reading.text = "\n\n".join(text.strip() for text in texts if text.strip())
    has_text_page = any(sum(character.isalnum() for character in text) >= MIN_CHARACTERS_PER_PAGE
                        for text in texts)
    if pages_read and not has_text_page and UNREADABLE not in reading.notes:
        reading.note(NO_TEXT_LAYER)
    return reading


def _decrypted(reader) -> bool:
    """Return True when the empty user password opens the file."""
    from pypdf import PasswordType

    try:
        return reader.decrypt("") != PasswordType.NOT_DECRYPTED
    except Exception:  # noqa: BLE001 - an unsupported cipher (AES without `cryptography`) is not readable
        return False


# DOCX


def _read_docx(payload: bytes, limits: AttachmentLimits, deadline: _Deadline) -> _Reading:
    """Read the page header, paragraphs and tables of a DOCX, in document order."""
    reading = _Reading()
    if payload.startswith(_OLE_MAGIC):
        reading.note(ENCRYPTED if _ENCRYPTED_PACKAGE in payload else UNREADABLE)
        return reading
    if not payload.startswith(_ZIP_MAGIC):
        reading.note(UNREADABLE)
        return reading
    problem = _zip_problem(payload, limits)
    if problem:
        reading.note(problem)
        return reading

    import docx
    from docx.table import Table

    document = docx.Document(io.BytesIO(payload))
    lines: list[str] = []
    header = document.sections[0].header if document.sections else None
    if header is not None and not header.is_linked_to_previous:
        for paragraph in header.paragraphs:
            if paragraph.text.strip():
                lines.append(paragraph.text.strip())
                reading.headings.append(paragraph.text.strip())

    try:
        for block in document.iter_inner_content():
            deadline.check()
            if isinstance(block, Table):
                lines.extend(_table_lines(block, deadline))
                continue
            text = block.text.strip()
            if not text:
                continue
            lines.append(text)
            if _is_heading_style(block):
                reading.headings.append(text)
    except _OutOfTime:
        reading.note(TIME_LIMIT)
    reading.text = "\n".join(lines)
    return reading


def _zip_problem(payload: bytes, limits: AttachmentLimits) -> str | None:
    """Check the zip directory before anything is unpacked; return a reason code or None.

    Python's zipfile never inflates a member past the size its directory entry declares
    (CPython 3.11 ZipExtFile cuts the output at that size), so checking the declared
    sizes bounds the memory that python-docx can use.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return UNREADABLE
    if len(members) > DOCX_MAX_MEMBERS:
        return TOO_LARGE
    if any(member.flag_bits & 0x1 for member in members):
        return ENCRYPTED
    if any(member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) for member in members):
        # Word writes only these two; bzip2 and LZMA members could inflate in large steps.
        return UNREADABLE
    if sum(member.file_size for member in members) > limits.max_bytes * DOCX_MAX_EXPANSION:
        return TOO_LARGE
    return None


def _is_heading_style(paragraph) -> bool:
    try:
        name = (paragraph.style.name or "").lower() if paragraph.style is not None else ""
    except (KeyError, ValueError, AttributeError):
        return False
    return name == "title" or name.startswith("heading") or name == "subtitle"


def _table_lines(table, deadline: _Deadline, depth: int = 0) -> Iterator[str]:
    """Yield one line per table row; a two-cell row becomes "label: value".

    Merged cells appear once. Tables nested inside cells are read to a depth of three.
    """
    for row in table.rows:
        deadline.check()
        cells = []
        seen = set()
        for cell in row.cells:
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            text = " ".join(paragraph.text.strip() for paragraph in cell.paragraphs if paragraph.text.strip())
            if text:
                cells.append(text)
            if depth < 3:
                for inner in cell.tables:
                    yield from _table_lines(inner, deadline, depth + 1)
        if len(cells) == 2 and len(cells[0]) <= 40 and "\n" not in cells[0]:
            yield f"{cells[0].rstrip(': ')}: {cells[1]}"
        elif cells:
            yield " | ".join(cells)


# Plain text and RTF


def _decode_text(payload: bytes) -> str:
    """Decode a text attachment: a byte-order mark decides, then UTF-8, then Windows-1252."""
    if payload.startswith((b"\xff\xfe", b"\xfe\xff")):
        return payload.decode("utf-16", errors="replace")
    try:
        return payload.decode("utf-8-sig")
    except UnicodeDecodeError:
        return payload.decode("cp1252", errors="replace")


def _read_rtf(payload: bytes) -> _Reading:
    from striprtf.striprtf import rtf_to_text

    return _Reading(text=rtf_to_text(_decode_text(payload), errors="ignore"))


# Kinds

# Names of document types. An EHCP is listed as `other` so that its "Health and Care
# Plan" is not taken for a healthcare plan.
_DOCUMENT_TYPES: dict[str, list[re.Pattern[str]]] = {
    "other": [
        re.compile(r"\beducation,?\s+health,?\s+(?:and\s+|&\s*)?care\s+plans?\b", re.IGNORECASE),
        re.compile(r"\bEHCP?\b|\bEHC\s+(?:plan|needs)\b", re.IGNORECASE),
    ],
    "ihcp": [
        re.compile(r"\bindividual(?:ised)?\s+health\s*care\s+plans?\b", re.IGNORECASE),
        re.compile(r"\bindividual\s+health\s+plans?\b", re.IGNORECASE),
        re.compile(r"\b(?:school|pupil)?\s*health\s*care\s+plans?\b", re.IGNORECASE),
        re.compile(r"\b(?:asthma|epilepsy|seizure|diabetes|allergy|anaphylaxis)\s+(?:care|health|management)\s+plans?\b",
                   re.IGNORECASE),
        re.compile(r"\bI\.?H\.?C\.?P\b|\bIHP\b"),
    ],
    "eha": [
        re.compile(r"\bearly\s+help\s+(?:assessment|plan)s?\b", re.IGNORECASE),
        re.compile(r"\bcommon\s+assessment\s+framework\b", re.IGNORECASE),
        re.compile(r"\bEHAT?\b|\bCAF\b"),
    ],
    "medical_evidence": [
        re.compile(r"\bclinic(?:al)?\s+(?:letter|summary|report|note)s?\b", re.IGNORECASE),
        re.compile(r"\bdischarge\s+(?:summary|letter|notification|report)\b", re.IGNORECASE),
        re.compile(r"\boutpatients?\s+(?:letter|report)\b", re.IGNORECASE),
        re.compile(r"\b(?:fit|sick)\s+notes?\b|\bstatement\s+of\s+fitness\b|\bmed\s?3\b", re.IGNORECASE),
        re.compile(r"\bmedical\s+(?:letter|report|evidence|certificate|summary|notes?)\b", re.IGNORECASE),
        re.compile(r"(?<!educational\s)\b(?:GP|doctor'?s?|consultant'?s?|hospital|CAMHS|paediatric(?:ian)?'?s?|"
                   r"psychiatri(?:st|c)'?s?|psychologist'?s?|nurse'?s?)\s+(?:[\w-]+\s+){0,2}"
                   r"(?:letter|report|summary)\b", re.IGNORECASE),
        re.compile(r"\bletter\s+(?:of\s+support\s+)?from\s+(?:the\s+|my\s+|her\s+|his\s+)?"
                   r"(?:GP|Dr|doctor|consultant|hospital|CAMHS|clinic)\b", re.IGNORECASE),
    ],
}

# Names of health services. In a letterhead they make the document medical evidence
# unless its title names another kind.
_HEALTH_SOURCE = re.compile(
    r"\bCAMHS\b|\bchild\s+and\s+adolescent\s+mental\s+health\b|\bNHS\b(?!\s*(?:no\b|number|num\b|#|:))|"
    r"\bhospitals?\b|\binfirmary\b|\b(?:medical|health)\s+centre\b|\bsurgery\b|\bGP\s+practice\b|"
    r"\bpaediatric(?:s|\s+department|\s+outpatients?)?\b|\bclinic\b|\bmental\s+health\s+(?:service|team)\b|"
    r"\bhealth\s+(?:board|trust)\b|\bfoundation\s+trust\b|\bconsultant\b",
    re.IGNORECASE,
)

# Wording inside a document, weighed when neither its title nor its file name decides.
_BODY_CUES: dict[str, list[tuple[re.Pattern[str], int]]] = {
    "ihcp": [
        (re.compile(r"\bemergency\s+(?:procedure|plan|action|care|contacts?)\b", re.IGNORECASE), 2),
        (re.compile(r"\bdaily\s+care\b|\bcare\s+requirements\b", re.IGNORECASE), 2),
        (re.compile(r"\bstaff\s+training\b", re.IGNORECASE), 2),
        (re.compile(r"\bplan\s+(?:agreed|developed)\s+(?:by|with)\b|\breview\s+date\b", re.IGNORECASE), 1),
        (re.compile(r"\bmedical\s+condition\b", re.IGNORECASE), 1),
        (re.compile(r"\btriggers?\b|\bsigns\s+and\s+symptoms\b", re.IGNORECASE), 1),
    ],
    "eha": [
        (re.compile(r"\bwhat(?:'s|\s+is)\s+working\s+well\b", re.IGNORECASE), 2),
        (re.compile(r"\bwhat\s+are\s+we\s+worried\s+about\b", re.IGNORECASE), 2),
        (re.compile(r"\bwhat\s+needs\s+to\s+happen\b", re.IGNORECASE), 2),
        (re.compile(r"\blead\s+professional\b|\bteam\s+around\s+the\s+(?:family|child)\b|\bTAF\b", re.IGNORECASE), 2),
        (re.compile(r"\bearly\s+help\b", re.IGNORECASE), 1),
        (re.compile(r"\bfamily\s+support\s+worker\b|\bvoice\s+of\s+the\s+child\b", re.IGNORECASE), 1),
    ],
    "medical_evidence": [
        (re.compile(r"(?im)^\s*dear\s+(?:dr\b|doctor\b|colleague\b)"), 2),
        (re.compile(r"(?im)^\s*cc:?.{0,40}\bGP\b"), 2),
        (re.compile(r"\bdiagnos(?:is|ed)\b", re.IGNORECASE), 1),
        (re.compile(r"\bNHS\s*(?:no|number)\b", re.IGNORECASE), 1),
        (re.compile(r"\bconsultant\b|\bpaediatrician\b|\bpsychiatrist\b|\bclinician\b", re.IGNORECASE), 1),
        (re.compile(r"\bclinic\b|\boutpatients?\b|\bward\b", re.IGNORECASE), 1),
        (re.compile(r"\bmedication\b|\b\d+\s?mg\b|\bprescribed\b", re.IGNORECASE), 1),
        (re.compile(r"\bCAMHS\b|\bhospital\b", re.IGNORECASE), 1),
    ],
}
_BODY_THRESHOLD = 4
_BODY_SCAN_CHARS = 6000


def attachment_kind(filename: str, text: str = "", headings: Iterable[str] = ()) -> str:
    """Return the kind of one attachment from its title lines, file name and wording."""
    title_lines = [*headings, *_title_lines(text)]
    name = _filename_words(filename)

    for line in title_lines:
        kind = _document_type(line)
        if kind:
            return kind
    kind = _document_type(name)
    if kind:
        return kind
    if any(_HEALTH_SOURCE.search(line) for line in [*title_lines, name]):
        return "medical_evidence"
    return _kind_from_wording(text[:_BODY_SCAN_CHARS])


def _document_type(line: str) -> str | None:
    """Return the kind whose document name comes first in the line, if any."""
    best: tuple[int, str] | None = None
    for kind, patterns in _DOCUMENT_TYPES.items():
        for pattern in patterns:
            found = pattern.search(line)
            if found and (best is None or found.start() < best[0]):
                best = (found.start(), kind)
    return best[1] if best else None


def _kind_from_wording(text: str) -> str:
    if not text.strip():
        return "other"
    scores = {
        kind: sum(weight for pattern, weight in cues if pattern.search(text))
        for kind, cues in _BODY_CUES.items()
    }
    kind, score = max(scores.items(), key=lambda item: item[1])
    tied = [other for other, other_score in scores.items() if other_score == score]
    if score < _BODY_THRESHOLD or len(tied) > 1:
        return "other"
    return kind


def _title_lines(text: str) -> list[str]:
    """Return the first non-empty lines, up to a letter's salutation, which ends the letterhead."""
    lines = []
    for line in text[:4000].splitlines():
        line = line.strip()
        if not line:
            continue
        if _SALUTATION.match(line) or len(lines) == _TITLE_LINES:
            break
        lines.append(line[:200])
    return lines


def _filename_words(filename: str) -> str:
    """Turn "EHA_Amber-N.final.docx" into "EHA Amber N final", so word boundaries hold."""
    stem = filename.rsplit(".", 1)[0] if "." in filename else filename
    return re.sub(r"[_\W]+", " ", stem).strip()
