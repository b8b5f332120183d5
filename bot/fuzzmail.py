"""Hypothesis strategies that build hostile and broken mail, for the fuzz tests and `bench fuzz`.

`messages()` draws whole raw messages: random MIME trees (nested multipart of every
common subtype, message/rfc822 parts, missing, wrong or repeated boundaries, truncated
parts), random headers (RFC 2047 encoded words valid and broken, folded and unfolded,
huge, duplicated, with NUL, CR, LF and 8-bit bytes, bogus dates and addresses,
Authentication-Results, Auto-Submitted, RFC 2231 parameter continuations), real and
bogus charsets, broken transfer encodings, TNEF, HTML, attachments with hostile names
and broken content, and sizes from empty to a few megabytes.

Bulky content (padding, attachments) is built from a drawn size and seed, not drawn
byte by byte, so large messages cost the generator little. The names, domains and
children in the text come from the demo registers shipped in bot/demo_registers, so
that extraction, matching and replies run on the generated mail too.
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
import quopri
import random
import zipfile
import zlib
from dataclasses import dataclass
from email.utils import formatdate

from hypothesis import strategies as st

CCAS_INBOX = "ccas@marlshire.gov.example"
# Domains of the demo directory (trusted) and others (untrusted, look-alike, free mail).
TRUSTED_DOMAINS = ["oakbridge.sch.example", "kingsmere.sch.example", "marlshirehealth.nhs.example",
                   "marlshire.gov.example"]
OTHER_DOMAINS = ["webmail.example", "oakbridge-sch.example", "oakbr1dge.sch.example", "example"]
CHILDREN = ["Amelia Rushworth", "Jacob Farrant", "Harvey Ashdown", "Noah Fairclough", "Poppy Larkspur"]
DATES_OF_BIRTH = ["12/03/2010", "30.01.2015", "2012-06-23", "5 October 2013", "31/02/2013"]

PHRASES = [
    "Please could the panel consider {child} for support.",
    "{child} (DOB {dob}) has not attended school since September because of anxiety.",
    "UPN C886214514118, NHS number 999 608 3276.",
    "She is in Year 7 at Oakbridge Academy.",
    "He has an EHCP and the annual review is due.",
    "Last night she said she wanted to die and is scared to go home.",
    "Please send me the date of birth and NHS number of {child}.",
    "I am out of the office until Monday.",
    "Delivery has failed to these recipients or groups.",
    "Thanks, noted.",
    "{{ 7*7 }} {% for x in range(3) %}x{% endfor %} {{ self.__init__ }}",
    "Case reference CCAS-2025-0037.",
    "Dear colleague,",
    "-- \nSent from my phone",
    "> On Mon, 1 Dec 2026, someone wrote:\n> quoted history",
    "---------- Forwarded message ---------\nFrom: Dr Ames <ames@marlshirehealth.nhs.example>\n",
]

# Charset labels: real, aliases, multibyte, ones Python does not know, and broken spellings.
CHARSETS = ["utf-8", "us-ascii", "iso-8859-1", "windows-1252", "utf-7", "utf-16", "utf-16le", "utf-16be",
            "gb2312", "shift_jis", "koi8-r", "iso-2022-jp", "unknown-8bit", "x-unknown", "utf-8\"",
            "", "ascii'en", "big5-hkscs", "x-mac-roman", "cp-850", "\u00e9", "utf-32"]
ENCODINGS = ["7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode", "base-64", "x-bogus", ""]
MULTIPART_SUBTYPES = ["mixed", "alternative", "related", "digest", "signed", "report", "encrypted",
                      "x-unknown"]
HOSTILE_FILENAMES = ["../../etc/passwd", "/etc/shadow", "C:\\Windows\\system32\\cmd.exe", "CON", "nul.txt",
                     "a\x00b.pdf", "x" * 600 + ".docx", "invoice\u202egpj.exe", "..", ".", "",
                     "report.pdf", "EHA - Noah.docx", "IHCP.rtf", "winmail.dat", "letter.txt",
                     "\u00e9l\u00e8ve.pdf", "=?utf-8?q?=2E=2E=2Fpasswd?=", "a/b/../c.zip"]


@dataclass(frozen=True)
class FuzzMessage:
    """One generated message and what the generator put in it on purpose."""

    raw: bytes
    # True when the message carries an unambiguous sign of automatic mail (RFC 3834
    # Auto-Submitted, a null Return-Path, or a delivery report) as its first header or
    # as its top-level type, so no reply may go back to it.
    automated: bool


# Small pieces


def _seeded_bytes(size: int, seed: int, alphabet: bytes | None = None) -> bytes:
    """Return `size` pseudo-random bytes (from `alphabet` when given), cheap for megabytes."""
    generator = random.Random(seed)
    if alphabet is None:
        return generator.randbytes(size)
    block = bytes(generator.choice(alphabet) for _ in range(min(size, 4096)))
    return (block * (size // max(len(block), 1) + 1))[:size]


_TEXT_ALPHABET = st.characters(codec="utf-8", exclude_categories=["Cs"])
_WILD_TEXT = st.text(_TEXT_ALPHABET, max_size=30)


@st.composite
def prose(draw) -> str:
    """Sentences from PHRASES with children and dates filled in, mixed with random text."""
    pieces = []
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.booleans()):
            phrase = draw(st.sampled_from(PHRASES))
            phrase = phrase.replace("{child}", draw(st.sampled_from(CHILDREN)))
            phrase = phrase.replace("{dob}", draw(st.sampled_from(DATES_OF_BIRTH)))
            pieces.append(phrase)
        else:
            pieces.append(draw(_WILD_TEXT))
    return draw(st.sampled_from(["\n", " ", "\r\n", "\n\n"])).join(pieces)


def _encode_text(text: str, charset: str) -> bytes:
    try:
        return text.encode(charset or "utf-8", errors="replace")
    except LookupError:
        return text.encode("utf-8", errors="surrogateescape")


# Headers


@st.composite
def encoded_word(draw) -> bytes:
    """Draw an RFC 2047 encoded word: valid, or broken in one of the ways mail clients break them."""
    text = draw(prose()) or draw(_WILD_TEXT)
    charset = draw(st.sampled_from(CHARSETS))
    data = _encode_text(text[:120], charset)
    kind = draw(st.sampled_from(["b", "q", "bad_b", "bad_q", "unterminated", "crlf", "empty", "nested"]))
    label = charset.encode("ascii", "replace") or b"utf-8"
    if kind == "b":
        return b"=?" + label + b"?B?" + base64.b64encode(data) + b"?="
    if kind == "q":
        return b"=?" + label + b"?Q?" + binascii.b2a_qp(data, header=True).replace(b"?", b"=3F") + b"?="
    if kind == "bad_b":
        return b"=?" + label + b"?B?" + base64.b64encode(data)[:-1] + b"!?="
    if kind == "bad_q":
        return b"=?" + label + b"?Q?=ZZ" + data[:40].replace(b"?", b"") + b"?="
    if kind == "unterminated":
        return b"=?utf-8?q?" + data[:40]
    if kind == "crlf":
        return b"=?utf-8?q?Hello=0D=0ABcc:_victim@evil.example=0D=0A?="
    if kind == "empty":
        return b"=??B??="
    return b"=?utf-8?B?" + base64.b64encode(b"=?utf-8?q?inner?=") + b"?="


@st.composite
def header_text(draw, max_pieces: int = 4) -> bytes:
    """Draw an unstructured header value made of plain, encoded, 8-bit and control-character pieces."""
    pieces = []
    for _ in range(draw(st.integers(0, max_pieces))):
        kind = draw(st.sampled_from(["plain", "plain", "encoded", "raw8bit", "control", "huge"]))
        if kind == "plain":
            pieces.append(draw(prose()).encode("ascii", "replace").replace(b"\r", b"").replace(b"\n", b" "))
        elif kind == "encoded":
            pieces.append(draw(encoded_word()))
        elif kind == "raw8bit":
            pieces.append(_encode_text(draw(_WILD_TEXT), draw(st.sampled_from(CHARSETS))))
        elif kind == "control":
            pieces.append(draw(st.sampled_from([b"\x00", b"\r", b"\n", b"\x0b", b"\x7f", b"\x1b[31m", b"\xff\xfe"])))
        else:
            size = draw(st.sampled_from([999, 5000, 70_000]))
            pieces.append(b"word " * (size // 5))
    value = b" ".join(pieces)
    fold = draw(st.sampled_from(["none", "none", "every70", "tab", "bare_lf"]))
    if fold == "every70" and len(value) > 70:
        value = b"\r\n ".join(value[index:index + 70] for index in range(0, len(value), 70))
    elif fold == "tab":
        value = value.replace(b" ", b"\r\n\t", 3)
    elif fold == "bare_lf":
        value = value.replace(b" ", b"\n ", 2)
    return value


@st.composite
def address(draw, domains: list[str] | None = None) -> bytes:
    """Draw one mailbox (display name and addr-spec), well formed or bogus."""
    domain = draw(st.sampled_from(domains or TRUSTED_DOMAINS + OTHER_DOMAINS))
    local = draw(st.sampled_from(["office", "dr.nia.gwent", "noreply", "mailer-daemon", "a+tag", "jo.field",
                                  "\u00e9l\u00e8ve", "x" * 300, "\"quoted local\"", ""]))
    spec = f"{local}@{domain}".encode("utf-8")
    kind = draw(st.sampled_from(["plain", "named", "encoded_name", "bogus", "group", "several"]))
    if kind == "plain":
        return spec
    if kind == "named":
        name = draw(prose())[:60].replace('"', "").replace("\r", " ").replace("\n", " ")
        return b'"' + name.encode("utf-8", "replace") + b'" <' + spec + b">"
    if kind == "encoded_name":
        return draw(encoded_word()) + b" <" + spec + b">"
    if kind == "group":
        return b"undisclosed-recipients:;"
    if kind == "several":
        return spec + b", " + draw(st.sampled_from([b"", b"b@" + domain.encode(), b"<>"])) + b","
    return draw(st.sampled_from([b"", b"<>", b"a@", b"@b.example", b"a@@b.example", b"a b@c.example",
                                 b'"unclosed <x@y.example>', b"<<x@y.example>>", b"x@y.example (comment",
                                 b"Surname, Forename <f.s@oakbridge.sch.example>", b"\xff\xfe@\xc3.example",
                                 b"name <a@b.example> trailing junk", b"=?utf-8?q?a=40b.example?=",
                                 b"a@b.example\x00c@d.example"]))


@st.composite
def date_value(draw) -> bytes:
    if draw(st.booleans()):
        seconds = draw(st.integers(-2_000_000_000, 5_000_000_000))
        try:
            return formatdate(seconds, usegmt=True).encode()
        except (OverflowError, OSError, ValueError):
            return b"Thu, 01 Jan 1970 00:00:00 GMT"
    return draw(st.sampled_from([b"", b"yesterday", b"Mon, 32 Foo 99999 25:61:61 +9999", b"0",
                                 b"Tue, 1 Dec 2026 09:00:00 -2400", b"2026-12-01T09:00:00Z",
                                 b"Fri, 29 Feb 2027 10:00:00 +0000", b"\xa0\xa0", b"Mon, 1 Dec 0 0:0:0"]))


@st.composite
def message_id_value(draw) -> bytes:
    return draw(st.sampled_from([
        b"<%d@fuzz.example>" % draw(st.integers(0, 10**9)),
        b"no-brackets@fuzz.example",
        b"<with space@fuzz.example>",
        b"<=?utf-8?q?a=0D=0ABcc:_x@evil.example?=@fuzz.example>",
        b"<" + b"x" * 5000 + b"@fuzz.example>",
        b"<a@b.example> <c@d.example>",
        b"<>",
        b"<h17(comment)\"q\",@fuzz.example>",
        b"<\xe9t\xe9-%d@fuzz.example>" % draw(st.integers(0, 10**9)),
        b"<\xc3\xa9t\xc3\xa9@fuzz.example>",
        b"",
    ]))


@st.composite
def authentication_results(draw) -> bytes:
    verdicts = ["pass", "fail", "softfail", "none", "temperror", "neutral"]
    authserv = draw(st.sampled_from(["mx.marlshire.gov.example", "attacker.example", ""]))
    parts = [authserv.encode()]
    for method in draw(st.lists(st.sampled_from(["dmarc", "spf", "dkim", "arc"]), max_size=3)):
        parts.append(f"{method}={draw(st.sampled_from(verdicts))} header.from=oakbridge.sch.example".encode())
    return b"; ".join(parts)


@st.composite
def random_header(draw) -> tuple[bytes, bytes]:
    """Draw one header field: a known name with a fitting (often broken) value, or junk."""
    name = draw(st.sampled_from([
        "Subject", "From", "To", "Cc", "Reply-To", "Sender", "Date", "Message-ID", "In-Reply-To",
        "References", "Authentication-Results", "Auto-Submitted", "Precedence", "X-Auto-Response-Suppress",
        "List-Id", "Content-Type", "Content-Transfer-Encoding", "MIME-Version", "Return-Path",
        "X-Priority", "Received", "Thread-Topic", "X-Bogus\x00", "Subject ", "8bit-\xe9",
    ]))
    if name in ("From", "To", "Cc", "Reply-To", "Sender"):
        value = b", ".join(draw(st.lists(address(), min_size=0, max_size=3)))
    elif name == "Date":
        value = draw(date_value())
    elif name in ("Message-ID", "In-Reply-To"):
        value = draw(message_id_value())
    elif name == "References":
        value = b" ".join(draw(st.lists(message_id_value(), max_size=30)))
    elif name == "Authentication-Results":
        value = draw(authentication_results())
    elif name == "Auto-Submitted":
        value = draw(st.sampled_from([b"no", b"auto-replied", b"auto-generated", b"No", b"bogus", b""]))
    elif name == "Content-Type":
        value = draw(content_type_value())
    else:
        value = draw(header_text())
    return name.encode("utf-8", "surrogateescape"), value


@st.composite
def content_type_value(draw) -> bytes:
    """Draw a Content-Type with RFC 2231 continuations, broken quoting or bogus parameters."""
    base = draw(st.sampled_from([b"text/plain", b"text/html", b"multipart/mixed", b"application/pdf",
                                 b"message/rfc822", b"text", b"", b"multipart/alternative; boundary="]))
    params = draw(st.sampled_from([
        b"",
        b'; charset="utf-8"',
        b"; name*0*=utf-8''%E2%80%AE%2E%2E; name*1*=%2Fpasswd",
        b"; name*0=\"EHA \"; name*2=\"gap.docx\"",
        b"; name*=unknown-8bit'en'%FF%FE",
        b'; name="unterminated',
        b"; charset=utf-8; charset=latin-1",
        b"; boundary=\"\"",
        b"; ; ;=;",
    ]))
    return base + params


# Parts


@dataclass
class _Part:
    headers: list[tuple[bytes, bytes]]
    body: bytes


@st.composite
def transfer_encoded(draw, content: bytes) -> tuple[bytes, bytes]:
    """Return (Content-Transfer-Encoding label, body) with the encoding correct or broken."""
    label = draw(st.sampled_from(ENCODINGS))
    broken = draw(st.integers(0, 3)) == 0
    if label in ("base64", "base-64"):
        body = base64.encodebytes(content)
        if broken:
            body = draw(st.sampled_from([body[:-3], body.replace(b"A", b"!", 3), body + b"===", b"not base64 at all"]))
    elif label == "quoted-printable":
        body = quopri.encodestring(content)
        if broken:
            body = body + draw(st.sampled_from([b"=ZZ", b"=", b"=\n", b"=0"]))
    elif label == "x-uuencode":
        lines = [binascii.b2a_uu(content[index:index + 45]) for index in range(0, len(content), 45)]
        body = b"begin 644 file.bin\n" + b"".join(lines) + b"`\nend\n"
        if broken:
            body = body[:len(body) // 2]
    else:
        body = content
    return label.encode(), body


_SIMPLE_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Contents 4 0 R"
    b"/Resources<</Font<</F1 5 0 R>>>>>>endobj\n"
    b"4 0 obj<</Length 60>>stream\nBT /F1 12 Tf 72 712 Td (Clinic letter for Noah Fairclough) Tj ET\n"
    b"endstream endobj\n5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


@functools.lru_cache(maxsize=8)
def pdf_with_stream(expanded_size: int) -> bytes:
    """Build a PDF whose one content stream inflates to `expanded_size` bytes of zeros."""
    packed = zlib.compress(b"\x00" * expanded_size, 9)
    length = str(len(packed)).encode()
    return (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
            b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
            b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Contents 4 0 R>>endobj\n"
            b"4 0 obj<</Length " + length + b"/Filter/FlateDecode>>stream\n"
            + packed + b"\nendstream endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")


def zip_archive(members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


@functools.lru_cache(maxsize=8)
def zip_bomb(expanded_size: int, name: str = "word/document.xml") -> bytes:
    """Build a zip archive with one member of `expanded_size` zero bytes, packed about a thousandfold."""
    return zip_archive([(name, b"\x00" * expanded_size)])


def _docx_like(text: str) -> bytes:
    """Build a minimal DOCX: the parts python-docx needs and one paragraph of `text`."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return zip_archive([
        ("[Content_Types].xml",
         b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
         b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
         b'<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument'
         b'.wordprocessingml.document.main+xml"/></Types>'),
        ("_rels/.rels",
         b'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
         b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
         b'officeDocument" Target="word/document.xml"/></Relationships>'),
        ("word/document.xml",
         ('<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
          f"<w:body><w:p><w:r><w:t>{escaped}</w:t></w:r></w:p></w:body></w:document>").encode("utf-8")),
    ])


TNEF_SIGNATURE = b"\x78\x9f\x3e\x22"


@st.composite
def attachment_content(draw) -> tuple[bytes, bytes]:
    """Return (content type, payload) of an attachment, readable or broken."""
    kind = draw(st.sampled_from(["pdf", "pdf_stream", "docx", "docx_bomb", "rtf", "zip", "tnef", "text",
                                 "html", "random", "truncated"]))
    seed = draw(st.integers(0, 2**32))
    text = draw(prose())
    if kind == "pdf":
        return b"application/pdf", _SIMPLE_PDF
    if kind == "pdf_stream":
        return b"application/pdf", pdf_with_stream(draw(st.sampled_from([10_000, 1_000_000, 20_000_000])))
    if kind == "docx":
        return b"application/vnd.openxmlformats-officedocument.wordprocessingml.document", _docx_like(text)
    if kind == "docx_bomb":
        return (b"application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                zip_bomb(draw(st.sampled_from([1_000_000, 50_000_000]))))
    if kind == "rtf":
        return b"application/rtf", b"{\\rtf1\\ansi " + text.encode("ascii", "replace") + b"\\par" * 3 + b"}"
    if kind == "zip":
        name = draw(st.sampled_from(HOSTILE_FILENAMES)) or "empty"
        return b"application/zip", zip_archive([(name, text.encode("utf-8", "replace"))])
    if kind == "tnef":
        return b"application/ms-tnef", TNEF_SIGNATURE + _seeded_bytes(draw(st.integers(0, 4000)), seed)
    if kind == "text":
        return b"text/plain", _encode_text(text, draw(st.sampled_from(CHARSETS)))
    if kind == "html":
        return b"text/html", draw(html_body())
    if kind == "random":
        return b"application/octet-stream", _seeded_bytes(draw(st.integers(0, 20_000)), seed)
    whole = draw(st.sampled_from([_SIMPLE_PDF, _docx_like(text)]))
    return draw(st.sampled_from([b"application/pdf", b"application/msword"])), whole[:draw(st.integers(0, len(whole)))]


@st.composite
def html_body(draw) -> bytes:
    text = draw(prose()).replace("<", "&lt;")
    shape = draw(st.sampled_from([
        "<html><head><meta charset=\"{cs}\"><style>p{{color:red}}</style></head><body><p>{t}</p></body></html>",
        "<div>{t}<script>alert(1)</script><img src=\"cid:logo\" onerror=\"x()\"></div>",
        "<table><tr><td>Name</td><td>{t}</td></tr></table><p>unclosed",
        "{open}{t}{close}",
        "<p>{t}</p><!-- comment <p>hidden</p> --><![CDATA[ x ]]>&#0;&#xD800;&nbsp;&bogus;",
    ]))
    depth = draw(st.integers(0, 3)) * 300
    html = shape.format(cs=draw(st.sampled_from(CHARSETS)), t=text, open="<div>" * depth, close="</div>" * depth)
    return _encode_text(html, "utf-8")


@st.composite
def leaf_part(draw) -> _Part:
    """Draw a single non-multipart part: a body text or an attachment."""
    if draw(st.booleans()):
        content_type = draw(st.sampled_from([b"text/plain", b"text/html", b"text/enriched"]))
        charset = draw(st.sampled_from(CHARSETS))
        if content_type == b"text/html":
            content = draw(html_body())
        else:
            content = _encode_text(draw(prose()), draw(st.sampled_from([charset, "utf-8", "latin-1"])))
        params = b"; charset=" + charset.encode("utf-8", "replace") if charset else b""
        if draw(st.integers(0, 5)) == 0:
            params += b"; format=flowed; delsp=yes"
        headers = [(b"Content-Type", content_type + params)]
        filename = None
    else:
        content_type, content = draw(attachment_content())
        filename = draw(st.sampled_from(HOSTILE_FILENAMES)).encode("utf-8", "surrogateescape")
        headers = [(b"Content-Type", content_type + b'; name="' + filename + b'"')]
        disposition = draw(st.sampled_from([b"attachment", b"inline", b"", b"attachment; filename*=utf-8''%2E%2E%2Fx"]))
        if disposition and filename is not None:
            headers.append((b"Content-Disposition", disposition + b'; filename="' + filename + b'"'))
        if draw(st.integers(0, 4)) == 0:
            headers.append((b"Content-ID", b"<logo>"))
    label, body = draw(transfer_encoded(content))
    if label:
        headers.append((b"Content-Transfer-Encoding", label))
    return _Part(headers, body)


@st.composite
def mime_part(draw, depth: int = 3) -> _Part:
    """Draw a part that may be a multipart container or an enclosed message, down to `depth` levels."""
    kind = draw(st.sampled_from(["leaf", "leaf", "multipart", "rfc822", "report"]) if depth > 0 else st.just("leaf"))
    if kind == "leaf":
        return draw(leaf_part())
    if kind == "rfc822":
        inner = draw(whole_message(depth - 1, automated=False, pad=False))
        encoding = draw(st.sampled_from([b"", b"7bit", b"base64"]))
        body = base64.encodebytes(inner.raw) if encoding == b"base64" else inner.raw
        headers = [(b"Content-Type", b"message/rfc822")]
        if encoding:
            headers.append((b"Content-Transfer-Encoding", encoding))
        return _Part(headers, body)
    if kind == "report":
        return _delivery_report(draw(st.integers(0, 10**9)))
    subtype = draw(st.sampled_from(MULTIPART_SUBTYPES)).encode()
    children = draw(st.lists(mime_part(depth - 1), max_size=4))
    return _multipart(draw, subtype, children)


def _multipart(draw, subtype: bytes, children: list[_Part]) -> _Part:
    boundary = b"=_b%d" % draw(st.integers(0, 10**6))
    mode = draw(st.sampled_from(["correct", "correct", "correct", "missing", "wrong", "unclosed", "truncated",
                                 "inside_content"]))
    declared = b"=_other" if mode == "wrong" else boundary
    content_type = b"multipart/" + subtype
    if mode != "missing":
        content_type += b'; boundary="' + declared + b'"'
    if subtype == b"signed":
        content_type += b'; protocol="application/pkcs7-signature"; micalg=sha-256'
    body = draw(st.sampled_from([b"", b"This is a multi-part message in MIME format.\n"]))
    for child in children:
        body += b"\n--" + boundary + b"\n" + _serialise(child)
        if mode == "inside_content":
            body += b"\n--" + boundary + b"\n"
    if mode != "unclosed":
        body += b"\n--" + boundary + b"--\n" + draw(st.sampled_from([b"", b"epilogue\n"]))
    if mode == "truncated":
        body = body[:draw(st.integers(0, len(body)))]
    return _Part([(b"Content-Type", content_type)], body)


def _delivery_report(seed: int) -> _Part:
    returned = b"From: ccas@marlshire.gov.example\nMessage-ID: <sent-%d@marlshire.gov.example>\nSubject: CCAS\n" % seed
    report = _Part([(b"Content-Type", b"message/delivery-status")],
                   b"Reporting-MTA: dns; mx.example\n\nFinal-Recipient: rfc822; gone@oakbridge.sch.example\n"
                   b"Action: failed\nStatus: 5.1.1\n")
    children = [_Part([(b"Content-Type", b"text/plain")], b"Delivery has failed to these recipients.\n"),
                report, _Part([(b"Content-Type", b"text/rfc822-headers")], returned)]
    boundary = b"=_report%d" % seed
    body = b"".join(b"\n--" + boundary + b"\n" + _serialise(child) for child in children) + b"\n--" + boundary + b"--\n"
    return _Part([(b"Content-Type", b'multipart/report; report-type=delivery-status; boundary="' + boundary + b'"')],
                 body)


def _serialise(part: _Part) -> bytes:
    head = b"".join(name + b": " + value + b"\n" for name, value in part.headers)
    return head + b"\n" + part.body


# Whole messages


@st.composite
def whole_message(draw, depth: int = 3, automated: bool | None = None, pad: bool = True) -> FuzzMessage:
    """Draw a message: header block and a body part from mime_part(), with an optional marker of automation.

    `pad` allows filler text of up to 4 MB at the end of the body.
    """
    marker = draw(st.sampled_from([None, None, None, "auto-replied", "auto-generated", "null-return-path",
                                   "report"])) if automated is None else None
    headers: list[tuple[bytes, bytes]] = []
    if marker in ("auto-replied", "auto-generated"):
        headers.append((b"Auto-Submitted", marker.encode()))
    elif marker == "null-return-path":
        headers.append((b"Return-Path", b"<>"))

    # Usually a plausible core of headers, so that later steps see real senders and subjects.
    if draw(st.integers(0, 4)) > 0:
        headers.append((b"From", draw(address())))
        headers.append((b"To", CCAS_INBOX.encode()))
        headers.append((b"Subject", draw(header_text(max_pieces=3))))
        headers.append((b"Date", draw(date_value())))
        headers.append((b"Message-ID", draw(message_id_value())))
    extra = draw(st.lists(random_header(), max_size=6))
    if marker:
        # Nothing may contradict the marker: a later "Auto-Submitted: no" would be read second.
        # A second Content-Type would turn a delivery report into something else.
        contradicting = {b"auto-submitted", b"return-path", b"content-type", b"content-transfer-encoding"}
        extra = [(name, value) for name, value in extra if name.lower().strip() not in contradicting]
    headers.extend(extra)
    if draw(st.booleans()):
        headers.append((b"MIME-Version", b"1.0"))

    body = _delivery_report(draw(st.integers(0, 10**9))) if marker == "report" else draw(mime_part(depth))
    # About one message in thirty is a megabyte or more: enough to find what grows with
    # size, few enough to keep a long run's average time close to that of real mail.
    padding = draw(st.sampled_from([0] * 48 + [1_000] * 8 + [100_000] * 4 + [1_000_000, 4_000_000])) if pad else 0
    if padding:
        filler = _seeded_bytes(padding, draw(st.integers(0, 2**32)), b"abcdefghij klmnopqrstuvwxyz.\n")
        body = _Part(body.headers, body.body + filler)

    # A report's Content-Type goes first: a later header with a raw line break would end
    # the header block early and turn the report into ordinary text.
    fields = body.headers + headers if marker == "report" else headers + body.headers
    head = b"".join(name + b": " + value + b"\n" for name, value in fields)
    separator = b"\n" if marker == "report" else draw(st.sampled_from([b"\n", b"\n", b"\r\n", b""]))
    raw = head + separator + body.body
    newline = draw(st.sampled_from(["lf", "lf", "crlf", "cr"]))
    if newline == "crlf":
        raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    elif newline == "cr" and not marker:
        raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r")
    return FuzzMessage(raw=raw, automated=marker is not None)


def messages() -> st.SearchStrategy[FuzzMessage]:
    """Whole messages, plus a share of inputs that are not mail at all (empty, random bytes, cut short)."""
    garbage = st.one_of(
        st.just(b""),
        st.binary(max_size=2000),
        st.builds(lambda size, seed: _seeded_bytes(size, seed), st.integers(0, 200_000), st.integers(0, 2**32)),
    ).map(lambda raw: FuzzMessage(raw=raw, automated=False))
    cut = st.tuples(whole_message(), st.floats(0, 1)).map(
        lambda pair: FuzzMessage(raw=pair[0].raw[:int(len(pair[0].raw) * pair[1])], automated=False))
    return st.one_of(whole_message(), whole_message(), whole_message(), whole_message(), cut, garbage)
