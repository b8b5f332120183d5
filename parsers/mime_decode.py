"""Decoding helpers for the message reader: charsets, header text, addresses and message ids.

Everything here is lenient: a value that cannot be decoded as declared is decoded another
way and the repair is reported as a reason code in the caller's `defects` list.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email.policy
import re
from email.errors import HeaderParseError

from parsers.message import Address

# Labels that mail clients send but Python's codec registry lacks, or maps to a narrower
# charset than the one senders really use (the WHATWG Encoding Standard maps them the same way).
_CHARSET_ALIASES = {
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "iso-8859-8-e": "iso-8859-8",
    "unicode-1-1-utf-7": "utf-7",
    "x-unicode-2-0-utf-7": "utf-7",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cn-gb": "gb18030",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "sjis": "cp932",
    "windows-31j": "cp932",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "utf-8",
    "ascii": "utf-8",
    "ansi_x3.4-1968": "utf-8",
    "x-user-defined": "cp1252",
    "utf8": "utf-8",
}

# Labels that mean "no charset given".
_NO_CHARSET = {"", "none", "unknown", "unknown-8bit", "x-unknown", "default", "charset"}

# Charsets that senders confuse with each other: tried after the declared one fails.
_RELATED_CHARSETS = {
    "iso-2022-jp": ["iso2022_jp_2", "iso2022_jp_ext", "cp932", "euc_jp"],
    "cp932": ["euc_jp", "iso2022_jp_2"],
    "euc-jp": ["cp932", "iso2022_jp_2"],
    "gb18030": ["big5"],
    "big5": ["big5hkscs", "gb18030"],
    "koi8-r": ["koi8-u", "cp1251"],
    "cp949": ["iso2022_kr"],
}

_SINGLE_BYTE = re.compile(r"^(cp125\d|iso-8859-\d+|koi8-[ru]|mac.*|latin.*|windows-125\d)$")

# Lone surrogates (from a broken UTF-7 or UTF-16 body) cannot be stored as UTF-8.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_FOLDING = re.compile(r"\r?\n(?=[ \t])")
_MESSAGE_ID = re.compile(r"<([^<>]*)>")
# A local part with an optional domain: bare "mailer-daemon" is kept, "x:@y;" is not.
_PLAUSIBLE_ADDRESS = re.compile(r"^[^@\s<>()\[\]:;,\"]+(@[^@\s<>()\[\]:;,\"]+)?$")

# RFC 5322 dot-atoms, for the fast path in _simple_addresses. A "." in an unquoted name
# is left to the strict parser, which flags it as obsolete syntax.
_ATOM_CHARS = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~\-"
_DOT_ATOM = rf"[{_ATOM_CHARS}]+(?:\.[{_ATOM_CHARS}]+)*"
_SIMPLE_MAILBOX = re.compile(
    rf"[ \t]*(?:(?P<bare>{_DOT_ATOM}@{_DOT_ATOM})"
    rf"|(?P<name>[{_ATOM_CHARS} \t]*?)[ \t]*<(?P<angle>{_DOT_ATOM}@{_DOT_ATOM})>"
    rf"|\"(?P<quoted>[^\"\\\r\n]*)\"[ \t]*<(?P<quoted_angle>{_DOT_ATOM}@{_DOT_ATOM})>)[ \t]*"
)

_ADDRESS_LIST_SPECIAL = re.compile(r'[",;<>()]')

# Address headers longer than this skip the strict parser: it is recursive and slows down
# sharply on headers built to overflow parsers (thousands of folded encoded words).
_MAX_STRICT_HEADER = 8192


def normalise_charset(label: str | None) -> str | None:
    """Return the codec name to use for a declared charset label, or None when none is usable."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    if name in _NO_CHARSET:
        return None
    name = _CHARSET_ALIASES.get(name, name)
    try:
        codecs.lookup(name)
    except (LookupError, ValueError):  # ValueError: a label with a NUL byte in it
        return None
    return name


def decode_bytes(data: bytes, declared: str | None, defects: list[str]) -> str:
    """Decode bytes with the declared charset, then UTF-8, then windows-1252, then Latin-1.

    A declared single-byte charset is overruled when the bytes are valid UTF-8 with
    non-ASCII characters, because that is far likelier to be a wrong label than real text.
    """
    if not data:
        return ""

    if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass

    codec = normalise_charset(declared)
    if declared and codec is None and declared.strip().lower() not in _NO_CHARSET:
        defects.append("unknown_charset")

    if codec and _SINGLE_BYTE.match(codec) and _is_utf8_with_non_ascii(data):
        defects.append("charset_mislabelled")
        return data.decode("utf-8")

    candidates = [codec] if codec else []
    candidates += _RELATED_CHARSETS.get(codec or "", [])
    candidates += ["utf-8", "cp1252"]
    for position, candidate in enumerate(candidates):
        try:
            # Python's UTF-7 decoder rejects the loose padding bits many senders leave.
            text = data.decode(candidate, "replace" if candidate == "utf-7" else "strict")
        except (UnicodeDecodeError, LookupError):
            continue
        if position > 0 and codec:
            defects.append("charset_fallback")
        return _LONE_SURROGATE.sub("\ufffd", text)

    defects.append("charset_fallback")
    return data.decode("latin-1", errors="replace")


def is_single_byte(codec: str) -> bool:
    return bool(_SINGLE_BYTE.match(codec))


def _is_utf8_with_non_ascii(data: bytes) -> bool:
    if data.isascii():
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def raw_to_text(value: str, hint: str | None, defects: list[str]) -> str:
    """Turn a raw header value from the compat32 parser into text.

    The parser keeps raw 8-bit header bytes as surrogate escapes. Those bytes are decoded
    with the message's own charset as a hint (headers carry no charset of their own).
    """
    if value.isascii():
        return value
    try:
        data = value.encode("ascii", errors="surrogateescape")
    except UnicodeEncodeError:
        # Already real text (for example from a header block parsed as str).
        return value
    defects.append("raw_8bit_header")
    # UTF-8 first (RFC 6532 allows it in headers); the body's charset is only a guess.
    if _is_utf8_with_non_ascii(data):
        return data.decode("utf-8")
    return decode_bytes(data, hint, defects)


def raw_values(message, name: str) -> list[str]:
    """Return every raw value of one header, as stored (compat32 wraps 8-bit ones otherwise)."""
    target = name.lower()
    return [str(value) for key, value in message.raw_items() if key.strip().lower() == target]


def unfold(value: str) -> str:
    return _FOLDING.sub("", value).replace("\r", "").replace("\n", " ")


def decode_encoded_words(text: str, defects: list[str]) -> str:
    """Decode RFC 2047 encoded words, joining adjacent words before decoding.

    Joining the bytes of adjacent words with the same charset first repairs multibyte
    characters that a sender split across two words.
    """
    pieces: list[tuple[str | None, bytes | str]] = []
    position = 0
    for match in _ENCODED_WORD.finditer(text):
        between = text[position:match.start()]
        after_word = bool(pieces) and pieces[-1][0] is not None
        if between and not (between.isspace() and after_word):
            pieces.append((None, between))
            after_word = False

        charset = match.group(1).split("*", 1)[0]
        data = _decode_word_payload(match.group(2), match.group(3), defects)
        previous_charset = pieces[-1][0] if after_word else None
        if previous_charset is not None and previous_charset.lower() == charset.lower():
            pieces[-1] = (previous_charset, pieces[-1][1] + data)
        else:
            pieces.append((charset, data))
        position = match.end()
    pieces.append((None, text[position:]))

    parts = []
    for charset, value in pieces:
        if charset is None:
            parts.append(value)
        else:
            parts.append(decode_bytes(value, charset, defects))
    return "".join(parts)


def _decode_word_payload(encoding: str, payload: str, defects: list[str]) -> bytes:
    if encoding.lower() == "q":
        data = payload.replace("_", " ").encode("ascii", "replace")
        return binascii.a2b_qp(data)
    cleaned = re.sub(r"[^A-Za-z0-9+/]", "", payload)
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned)
    except (binascii.Error, ValueError):
        defects.append("bad_encoded_word")
        return payload.encode("ascii", "replace")


def decode_header_text(name: str, raw: str, hint: str | None, defects: list[str]) -> str:
    """Decode one header value to text: strict parser first, own decoder as the fallback."""
    text = unfold(raw_to_text(raw, hint, defects))
    if "=?" not in text:
        return text.strip()

    strict = _strict_text(name, text)
    if strict is not None:
        return strict.strip()

    defects.append(f"bad_header:{name.lower()}")
    return decode_encoded_words(text, defects).strip()


def _strict_text(name: str, text: str) -> str | None:
    """Return the header decoded by the standard-library parser, or None when it struggled."""
    if len(text) > _MAX_STRICT_HEADER:
        return None
    try:
        header = email.policy.default.header_factory(name, text)
        value = str(header)
    except (HeaderParseError, ValueError, IndexError, TypeError, AttributeError, LookupError):
        return None
    if header.defects or "\ufffd" in value or _has_surrogates(value):
        return None
    return value


def _has_surrogates(text: str) -> bool:
    return any("\ud800" <= char <= "\udfff" for char in text)


def parse_addresses(name: str, raw_values: list[str], hint: str | None, defects: list[str]) -> list[Address]:
    """Parse every value of an address header into Address records, skipping empty ones."""
    addresses: list[Address] = []
    for raw in raw_values:
        text = unfold(raw_to_text(raw, hint, defects)).strip()
        if not text:
            continue
        strict = _simple_addresses(text)
        if strict is None:
            strict = _strict_addresses(name, text)
        if strict is None:
            defects.append(f"bad_header:{name.lower()}")
            strict = lenient_addresses(text, defects)
        addresses.extend(strict)
    return addresses


def _simple_addresses(text: str) -> list[Address] | None:
    """Read the common address shapes with one pattern, or return None for the strict parser.

    Handles an ASCII list of bare addresses and "Name <address>" mailboxes, or one
    '"Quoted Name" <address>'. The results equal the strict parser's, which took about
    ten times as long on such headers (CPython 3.11), and a test compares the two.
    """
    if not text.isascii() or "=?" in text:
        return None
    pieces = [text] if '"' in text else text.split(",")
    addresses = []
    for piece in pieces:
        found = _SIMPLE_MAILBOX.fullmatch(piece)
        if found is None:
            return None
        if found.group("bare"):
            display_name, addr_spec = "", found.group("bare")
        elif found.group("angle"):
            # The strict parser joins the words of an unquoted name with single spaces.
            display_name, addr_spec = " ".join(found.group("name").split()), found.group("angle")
        else:
            display_name, addr_spec = found.group("quoted").strip(), found.group("quoted_angle")
        email_address = _clean_email(addr_spec)
        if email_address:
            addresses.append(Address(name=display_name, email=email_address))
    return addresses


def _strict_addresses(name: str, text: str) -> list[Address] | None:
    if len(text) > _MAX_STRICT_HEADER:
        return None
    try:
        header = email.policy.default.header_factory(name, text)
        found = [(item.display_name, item.addr_spec) for item in header.addresses]
    except (HeaderParseError, ValueError, IndexError, TypeError, AttributeError, LookupError):
        return None
    if header.defects:
        return None
    addresses = []
    for display_name, addr_spec in found:
        if _has_surrogates(display_name) or "\ufffd" in display_name:
            return None
        email_address = _clean_email(addr_spec)
        if email_address:
            addresses.append(Address(name=display_name.strip(), email=email_address))
    return addresses


def lenient_addresses(text: str, defects: list[str]) -> list[Address]:
    """Parse an address list that the strict parser rejected.

    An angle address always wins over an address-like display name, and a piece without
    any address is taken as the first half of an unquoted "Surname, Forename" name.
    """
    addresses: list[Address] = []
    pending_name = ""
    for piece in _split_address_list(text):
        name, email_address = _split_mailbox(piece)
        if not email_address:
            pending_name = f"{pending_name}, {name}" if pending_name else name
            continue
        if pending_name:
            name = f"{pending_name}, {name}" if name else pending_name
            pending_name = ""
        addresses.append(Address(name=decode_encoded_words(name, defects).strip(), email=email_address))
    return addresses


def _split_address_list(text: str) -> list[str]:
    # Only the special characters are visited, so a header of many kilobytes is split
    # without a Python step per character.
    pieces: list[str] = []
    start = 0
    depth = {"quote": False, "angle": 0, "comment": 0}
    for found in _ADDRESS_LIST_SPECIAL.finditer(text):
        char = found.group(0)
        if char == '"' and not depth["angle"]:
            depth["quote"] = not depth["quote"]
        elif not depth["quote"]:
            if char == "<":
                depth["angle"] += 1
            elif char == ">" and depth["angle"]:
                depth["angle"] -= 1
            elif char == "(":
                depth["comment"] += 1
            elif char == ")" and depth["comment"]:
                depth["comment"] -= 1
            elif char in ",;" and not depth["angle"] and not depth["comment"]:
                pieces.append(text[start:found.start()])
                start = found.end()
    pieces.append(text[start:])
    return [piece.strip() for piece in pieces if piece.strip()]


def _split_mailbox(piece: str) -> tuple[str, str]:
    angle = re.search(r"<([^<>]*)>", piece)
    if angle:
        email_address = _clean_email(angle.group(1))
        name = piece[:angle.start()]
    else:
        bare = re.search(r"[^\s<>\"(),;:\[\]]+@[^\s<>\"(),;:\[\]]+", piece)
        email_address = _clean_email(bare.group(0)) if bare else ""
        name = piece.replace(bare.group(0), " ") if bare else piece
        name = re.sub(r"\[\s*mailto:\s*\]|\[\s*\]|\(\s*\)", " ", name)
    name = name.strip().strip('"').strip()
    comment = re.fullmatch(r"\((.*)\)", name)
    if comment:
        name = comment.group(1).strip()
    return name, email_address


def _clean_email(value: str) -> str:
    """Return the lower-cased address, or "" when it is not a plausible address."""
    value = value.strip().strip("\"'").strip()
    if value.lower().startswith("mailto:"):
        value = value[len("mailto:"):]
    value = value.strip().rstrip(".").lower()
    return value if _PLAUSIBLE_ADDRESS.match(value) else ""


def message_ids(raw: str) -> list[str]:
    """Return the message ids in a Message-ID, In-Reply-To or References value, in order.

    Ids are read with a pattern, not the strict parser, because the strict parser cuts ids
    that contain square brackets. Angle brackets and whitespace are removed.
    """
    # Raw 8-bit bytes arrive as surrogate escapes, which no database driver can store.
    # RFC 6532 allows UTF-8 in ids, so they are decoded as UTF-8, anything else replaced.
    text = unfold(raw).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    found = _MESSAGE_ID.findall(text)
    if not found:
        found = [token for token in re.split(r"[\s,]+", text) if token]
    ids: list[str] = []
    for item in found:
        cleaned = re.sub(r"\s+", "", item).strip("<>")
        if cleaned and cleaned not in ids:
            ids.append(cleaned)
    return ids
