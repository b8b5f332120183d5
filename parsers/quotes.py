"""Split a message body into the sender's new words and the history below them.

The rules are line patterns for the reply and forward formats of common mail clients
(Outlook, Gmail, Apple Mail, Thunderbird, Lotus Notes) in English and a few other
European languages. They are heuristics: callers keep the full text as well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADER_NAMES = {
    "from": ("from", "von", "de", "van", "da", "från", "fra", "od"),
    "date": ("sent", "date", "gesendet", "datum", "envoyé", "verzonden", "enviado",
             "inviato", "skickat", "sendt", "data", "fecha"),
    "other": ("to", "cc", "bcc", "subject", "an", "betreff", "objet", "à", "aan",
              "onderwerp", "oggetto", "asunto", "para", "till", "ämne", "til", "emne",
              "reply-to", "importance"),
}
# Each run of white space has one way to match ("\s*\*?\s*" had many, and a long run of
# spaces and tabs before a non-header word took quadratic time to reject).
_HEADER_LINE = re.compile(r"^\s*(?:\*\s*)?([\w-]+)\s*(?:\*\s*)?:\s*\*?(.*)$")
# A header line of a quoted block is short; longer lines are never read as one.
_MAX_HEADER_LINE = 1000

_QUOTE_LINE = re.compile(r"^\s*>")
_ATTRIBUTION_START = re.compile(r"^\s*(-{2,}\s*)?(On|Am|Le|El|Il|Op|Em|Den|På|W dniu)\s", re.IGNORECASE)
_ATTRIBUTION_END = re.compile(
    r"(wrote|writes|schrieb|a écrit|escribió|ha scritto|schreef|escreveu|skrev|napisał|написал|написала)\s*:\s*$",
    re.IGNORECASE,
)
# An attribution line without a leading "On" must carry an address or a date to count.
_ADDRESS_OR_DATE = re.compile(r"@|\b\d{1,4}[./-]\d{1,2}[./-]\d{2,4}\b|\b\d{4}\b")
_ORIGINAL_MESSAGE = re.compile(
    r"^\s*-{2,}\s*(original message|ursprüngliche nachricht|message d'origine|mensaje original|"
    r"messaggio originale|oorspronkelijk bericht|originalmeddelande)\s*-{2,}\s*$",
    re.IGNORECASE,
)
_FORWARD_MARKER = re.compile(
    r"^\s*(-{2,}\s*(forwarded message|forwarded e-?mail|weitergeleitete nachricht|message transféré|"
    r"mensaje reenviado|messaggio inoltrato|doorgestuurd bericht)\s*-{2,}"
    r"|begin forwarded message\s*:"
    r"|-{2,}\s*forwarded by .{1,120}-{2,})\s*$",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(r"^\s*(_{8,}|-{8,})\s*$")
_FORWARD_SUBJECT = re.compile(r"^\s*(\[[^\]]*\]\s*)*(fw|fwd|wg|tr|doorst)\s*:", re.IGNORECASE)

_SIGNATURE_DELIMITER = re.compile(r"^--\s?$")
_MOBILE_SIGN_OFF = re.compile(
    r"^\s*(sent from my \S.{0,40}|sent from (mail|outlook|yahoo mail|samsung|my mobile).{0,40}"
    r"|get outlook for (ios|android).{0,20}|sent (from|via) .{0,30}(iphone|ipad|android|mobile|blackberry|galaxy).{0,20}"
    r"|envoyé de mon .{1,30}|von meinem .{1,30} gesendet|enviado desde mi .{1,30})\s*$",
    re.IGNORECASE,
)
# The closing phrase ignores case; the optional name after it must be capitalised, so that
# "Thanks for your help" is not taken for "Thanks, Jo".
_CLOSING = re.compile(
    r"^\s*(?i:kind(est)? regards|best regards|warm(est)? regards|regards|many thanks|thanks( again| very much| so much)?"
    r"|thank you( again| very much| so much)?|best wishes|with (best|kind|many) (wishes|thanks|regards)"
    r"|all the best|yours (sincerely|faithfully)|best|cheers|take care|rgds|kr|mit freundlichen grüßen"
    r"|cordialement|saludos)\s*[,.!]*\s*([A-Z][\w.'-]*( [A-Z][\w.'-]*){0,2})?\s*$"
)
# A name block is short: a few lines, most of them short. Two longer lines are allowed for
# taglines such as office hours or a switchboard notice.
_MAX_SIGNATURE_LINES = 15
_MAX_SIGNATURE_LINE_LENGTH = 120
_MAX_LONG_SIGNATURE_LINES = 2
_MAX_LONG_SIGNATURE_LINE_LENGTH = 300
_SEPARATOR_PARAGRAPH = re.compile(r"^[\s*_=~#-]+$")

_DISCLAIMER = re.compile(
    r"this (e-?mail|message|communication)( and any (files|attachments)( transmitted with it)?| \(and any attachments\))?"
    r" (is|are|may be|may contain|contains?) .{0,40}(confidential|privileged|intended)"
    r"|(information|contents?) (contained )?(in|of|within) this (e-?mail|message|communication)( and any attachments)?"
    r" (is|are|may be|may contain)"
    r"|if you (have received|received|are not the intended recipient)"
    r"|^(disclaimer|confidentiality( notice| statement)?|legal notice|important notice)\s*:"
    r"|this (e-?mail|message) (has been|was) (scanned|checked|swept)"
    r"|(e-?mails?|messages?|communications?) (sent )?(to|from|to and from|and attachments) .{0,80}(may|will|are) (be )?monitored"
    r"|caution\s*:\s*this (e-?mail|message) originated from outside"
    r"|^(\[?external( e-?mail)?\]?\s*:|external email\b)"
    r"|please consider the environment before printing"
    r"|views (or|and) opinions (expressed|presented|contained)",
    re.IGNORECASE,
)
_LEGAL_WORDS = re.compile(
    r"confidential|intended (solely|only|recipient)|privileged|monitored|virus|liabilit|"
    r"freedom of information|data protection|disclos|unauthori[sz]ed|prohibited|notify the sender|"
    r"registered (office|in england)|company (number|no)",
    re.IGNORECASE,
)


@dataclass
class ReplySplit:
    """The parts of a body: the new words, and any forwarded message found in the text."""

    new_text: str
    forwarded_text: str = ""
    forwarded_from: str = ""  # the raw "From:" value of the forwarded block, if any


@dataclass
class _Marker:
    kind: str  # "quote" (reply history) or "forward"
    start: int  # first line of the marker
    content: int  # first line after the marker


def split_reply(text: str, subject: str = "") -> ReplySplit:
    """Split a plain-text body at the first quote or forward marker and strip the signature."""
    lines = _strip_pgp_armour(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    is_forward = bool(_FORWARD_SUBJECT.match(subject or ""))

    marker = find_first_marker(lines, is_forward)
    new_lines = lines if marker is None else lines[:marker.start]

    # Interleaved or bottom-posted replies start with quoted lines: keep the unquoted ones.
    if marker is not None and marker.kind == "quote" and not _has_words(new_lines):
        new_lines = _unquoted_lines(lines[marker.start:], is_forward)

    split = ReplySplit(new_text=_join(strip_signature(new_lines)))
    if marker is not None and marker.kind == "forward":
        split.forwarded_from, body_start = _forwarded_header(lines, marker.content)
        split.forwarded_text = _join(lines[body_start:])
    return split


def _strip_pgp_armour(lines: list[str]) -> list[str]:
    """Remove the armour of an inline PGP-signed message (RFC 4880), keeping the signed text."""
    kept: list[str] = []
    in_signature = False
    skip_hash_lines = False
    for line in lines:
        stripped = line.strip()
        if stripped == "-----BEGIN PGP SIGNED MESSAGE-----":
            skip_hash_lines = True
            continue
        if skip_hash_lines and (stripped.startswith("Hash:") or not stripped):
            continue
        skip_hash_lines = False
        if stripped == "-----BEGIN PGP SIGNATURE-----":
            in_signature = True
        if not in_signature:
            kept.append(line[2:] if line.startswith("- -") else line)
        if stripped == "-----END PGP SIGNATURE-----":
            in_signature = False
    return kept


def find_first_marker(lines: list[str], is_forward: bool, interleaved: bool = False) -> _Marker | None:
    """Return the first line where quoted history or a forwarded message begins.

    With `interleaved`, ">" lines and attributions are not markers, because the caller
    keeps the unquoted lines between them.
    """
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        if _QUOTE_LINE.match(line):
            if interleaved:
                continue
            return _Marker("quote", index, index)
        if _FORWARD_MARKER.match(line):
            return _Marker("forward", index, index + 1)
        if _ORIGINAL_MESSAGE.match(line):
            return _Marker("forward" if is_forward else "quote", index, index + 1)
        attribution_end = _attribution_end(lines, index)
        if attribution_end is not None and not interleaved:
            return _Marker("quote", index, attribution_end + 1)
        if _is_header_block(lines, index):
            start = _separator_above(lines, index)
            return _Marker("forward" if is_forward else "quote", start, start)
    return None


def _attribution_end(lines: list[str], index: int) -> int | None:
    """Return the last line of an "On <date>, <name> wrote:" attribution starting at index."""
    line = lines[index]
    if not _ATTRIBUTION_START.match(line) and not _ADDRESS_OR_DATE.search(line):
        return None
    joined = ""
    for offset in range(3):
        if index + offset >= len(lines):
            break
        joined = f"{joined} {lines[index + offset].strip()}".strip()
        if len(joined) > 400:
            break
        if _ATTRIBUTION_END.search(joined):
            return index + offset
    return None


def _header_name(line: str) -> str | None:
    if len(line) > _MAX_HEADER_LINE:
        return None
    match = _HEADER_LINE.match(line)
    if not match:
        return None
    name = match.group(1).lower()
    for group, names in _HEADER_NAMES.items():
        if name in names:
            return group
    return None


def _is_header_block(lines: list[str], index: int) -> bool:
    """Return whether an Outlook-style "From: / Sent: / To: / Subject:" block starts at index."""
    if _header_name(lines[index]) != "from" or not _HEADER_LINE.match(lines[index]).group(2).strip():
        return False
    seen = set()
    for line in lines[index + 1:index + 10]:
        if not line.strip():
            continue
        group = _header_name(line)
        if group is None:
            break
        seen.add(group)
    return "date" in seen and "other" in seen


def _separator_above(lines: list[str], index: int) -> int:
    """Return the index of an Outlook underscore or dash separator just above index, else index."""
    above = index - 1
    while above >= 0 and not lines[above].strip():
        above -= 1
    if above >= 0 and _SEPARATOR.match(lines[above]):
        return above
    return index


def _forwarded_header(lines: list[str], start: int) -> tuple[str, int]:
    """Read the header lines at the top of a forwarded block: return its From value and body start."""
    index = start
    while index < len(lines) and (not lines[index].strip() or _SEPARATOR.match(lines[index])):
        index += 1
    sender = ""
    seen_header = False
    while index < len(lines):
        line = lines[index]
        if not line.strip():
            if seen_header:
                break
            index += 1
            continue
        group = _header_name(line)
        if group is None:
            break
        seen_header = True
        if group == "from" and not sender:
            sender = _HEADER_LINE.match(line).group(2).strip().strip("*").strip()
        index += 1
    return sender, index


def _unquoted_lines(lines: list[str], is_forward: bool) -> list[str]:
    """Return the lines of an interleaved reply that are not quoted, up to any later marker."""
    marker = find_first_marker(lines, is_forward, interleaved=True)
    end = len(lines) if marker is None else marker.start
    kept = []
    index = 0
    while index < end:
        attribution_end = _attribution_end(lines, index)
        if attribution_end is not None:
            index = attribution_end + 1
            continue
        if not _QUOTE_LINE.match(lines[index]):
            kept.append(lines[index])
        index += 1
    return kept


def strip_signature(lines: list[str]) -> list[str]:
    """Remove a signature, mobile sign-off, closing with name block, and disclaimer paragraphs."""
    lines = _cut_at_delimiter(lines)
    lines = remove_disclaimers(lines)
    lines = _cut_at_closing(lines)
    return lines


def _cut_at_delimiter(lines: list[str]) -> list[str]:
    for index, line in enumerate(lines):
        if _SIGNATURE_DELIMITER.match(line) or _MOBILE_SIGN_OFF.match(line):
            return lines[:index]
    return lines


def remove_disclaimers(lines: list[str]) -> list[str]:
    """Drop confidentiality and disclaimer paragraphs, and legal paragraphs that follow them."""
    kept: list[list[str]] = []
    in_disclaimer = False
    for paragraph in _paragraphs(lines):
        joined = " ".join(line.strip() for line in paragraph)
        if _DISCLAIMER.search(joined):
            in_disclaimer = True
            # A rule of stars or underscores just above a disclaimer belongs to it.
            if kept and _SEPARATOR_PARAGRAPH.match(" ".join(kept[-1])):
                kept.pop()
            continue
        if in_disclaimer and (_LEGAL_WORDS.search(joined) or _SEPARATOR_PARAGRAPH.match(joined)):
            continue
        in_disclaimer = False
        kept.append(paragraph)
    return [line for paragraph in kept for line in paragraph]


def _paragraphs(lines: list[str]) -> list[list[str]]:
    """Group lines into paragraphs; blank lines stay attached to the paragraph before them."""
    paragraphs: list[list[str]] = [[]]
    for line in lines:
        if line.strip() and paragraphs[-1] and not paragraphs[-1][-1].strip():
            paragraphs.append([])
        paragraphs[-1].append(line)
    return [paragraph for paragraph in paragraphs if paragraph]


def _cut_at_closing(lines: list[str]) -> list[str]:
    """Cut at a closing such as "Kind regards" when only a short name block follows it."""
    for index, line in enumerate(lines):
        if not _CLOSING.match(line):
            continue
        if not _is_name_block(lines[index + 1:]):
            continue
        # A message that is only "Thanks, noted" keeps its closing as the new text.
        if not _has_words(lines[:index]):
            return lines[:index + 1]
        return lines[:index]
    return lines


def _is_name_block(lines: list[str]) -> bool:
    lengths = [len(line.strip()) for line in lines if line.strip()]
    long_lines = [length for length in lengths if length > _MAX_SIGNATURE_LINE_LENGTH]
    return (
        len(lengths) <= _MAX_SIGNATURE_LINES
        and len(long_lines) <= _MAX_LONG_SIGNATURE_LINES
        and all(length <= _MAX_LONG_SIGNATURE_LINE_LENGTH for length in long_lines)
    )


def _has_words(lines: list[str]) -> bool:
    return any(line.strip() for line in lines)


def _join(lines: list[str]) -> str:
    text = "\n".join(line.rstrip() for line in lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n").strip()
