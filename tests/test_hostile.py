"""Hostile mail: header injection, template injection, attachment names, bombs, forged and phishing senders.

Every message goes through the whole intake (FuzzHarness: pipeline, store commit and
sending to a RecordingSender) over the demo registers, as a poll would process it.
"""

from __future__ import annotations

import base64
import dataclasses
import email
import email.policy
import io
import itertools
import re
import struct
import time
import tracemalloc
import zipfile
from datetime import date, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import fuzzmail
from bot.bench_fuzz import OUTCOMES, FuzzHarness, reply_header_problems
from parsers.mime import parse_message
from parsers.mime_decode import normalise_charset
from replies.compose import build_forward, build_reply
from replies.render import TEMPLATES, Renderer
from parsers.message import ParsedMessage

CCAS = "ccas@marlshire.gov.example"
SCHOOL = "office@oakbridge.sch.example"
LOOK_ALIKE = "marcus.adeyemi@marlshire-gov.example"
FREE_MAIL = "jo.bloggs@webmail.example"
REFERRAL = ("Please could the panel consider Noah Fairclough (DOB 05/10/2013) for support. He has not "
            "attended school since September because of anxiety.")
# Generous bounds, so that a loaded machine does not fail the suite. A hostile input
# without limits takes minutes and gigabytes, far past both.
MAX_SECONDS = 30.0
MAX_PEAK_BYTES = 512 * 1024 * 1024

PROPERTY = settings(max_examples=60, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    """A harness whose clock follows each message's Date header.

    raw_message() dates every message three days after the one before, so the brakes on
    acknowledging one sender or case twice within a day never hide a reply.
    """
    harness = FuzzHarness(tmp_path_factory.mktemp("hostile"))
    harness.intake.context = dataclasses.replace(harness.intake.context, replay_clock=True)
    yield harness
    harness.close()


_MESSAGE_DATES = itertools.count()


def next_date() -> bytes:
    sent = datetime(2020, 1, 6, 9, 0, tzinfo=timezone.utc) + timedelta(days=3 * next(_MESSAGE_DATES))
    return format_datetime(sent).encode()


def raw_message(sender: bytes | str, subject: bytes | str, body: str, *, extra: bytes = b"",
                message_id: bytes = b"<h1@oakbridge.sch.example>", parts: bytes = b"") -> bytes:
    """Build message bytes by hand, so that headers can hold what EmailMessage would refuse."""
    sender = sender.encode("utf-8", "surrogateescape") if isinstance(sender, str) else sender
    subject = subject.encode("utf-8", "surrogateescape") if isinstance(subject, str) else subject
    head = (b"From: " + sender + b"\r\nTo: " + CCAS.encode() + b"\r\nSubject: " + subject
            + b"\r\nDate: " + next_date() + b"\r\nMessage-ID: " + message_id + b"\r\n" + extra)
    if not parts:
        return head + b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + body.encode("utf-8") + b"\r\n"
    return (head + b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\n'
            b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + body.encode("utf-8") + b"\r\n" + parts + b"--B--\r\n")


def attachment_part(filename: bytes, content_type: bytes, payload: bytes) -> bytes:
    return (b"--B\r\nContent-Type: " + content_type + b'; name="' + filename + b'"\r\n'
            b'Content-Disposition: attachment; filename="' + filename + b'"\r\n'
            b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(payload) + b"\r\n")


def reply_text(raw: bytes) -> str:
    """Return the headers and every text part of an outgoing message, decoded."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    texts = [f"{name}: {value}" for name, value in message.items()]
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            texts.append(part.get_content())
    return "\n".join(texts)


def bounded_run(harness, raw: bytes, trace_memory: bool = True):
    """Run one message, timed without tracemalloc (which slows deep recursion twentyfold)."""
    started = time.perf_counter()
    result = harness.run(raw)
    seconds = time.perf_counter() - started
    peak = 0
    if trace_memory:
        tracemalloc.start()
        try:
            harness.run(raw)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    return result, seconds, peak


# CR and LF never reach an outgoing header


_LINE_BREAKING = st.lists(st.sampled_from(list("ab <>@.\"\\,;:") + [
    "\r", "\n", "\r\n", "\x00", "\x85", "\u2028", "=?utf-8?q?=0D=0ABcc:_x@evil.example?=",
    "\r\nBcc: victim@evil.example"]), max_size=8).map("".join)


@PROPERTY
@given(name=_LINE_BREAKING, subject=_LINE_BREAKING, message_id=_LINE_BREAKING, reference=_LINE_BREAKING)
def test_reply_headers_hold_no_line_breaks(harness, name, subject, message_id, reference):
    encoded_name = b"=?utf-8?b?" + base64.b64encode(name.encode("utf-8", "surrogateescape")) + b"?="
    raw = raw_message(encoded_name + b" <" + SCHOOL.encode() + b">",
                      "Referral - Noah Fairclough " + subject.replace("\r", "").replace("\n", " "),
                      REFERRAL + " He has an EHCP.",
                      message_id=b"<" + message_id.encode("utf-8", "surrogateescape").replace(b"\r\n", b" ")
                      + b".%d@x.example>" % next(_MESSAGE_DATES),
                      extra=b"References: <" + base64.b64encode(reference.encode()) + b"@x.example> =?utf-8?q?"
                            + reference.encode("utf-8").hex().encode() + b"?=\r\n")

    result = harness.run(raw)

    assert result.outcome in OUTCOMES
    if not re.search(r"[\r\n]", message_id):
        # A line break cuts the Message-ID short, so messages share it and the outbox
        # rightly answers only the first.
        assert result.planned, "the referral should be answered, or the check proves nothing"
    for recipient, reply in result.planned:
        assert reply_header_problems(reply, recipient) == []
        assert b"evil.example" not in reply.split(b"\r\n\r\n", 1)[0]


@PROPERTY
@given(message_id=st.text(max_size=40), references=st.lists(st.text(max_size=40), max_size=5))
def test_build_reply_threading_never_breaks_headers(message_id, references):
    original = ParsedMessage(message_id=message_id, references=references)

    reply = build_reply(original=original, sender=CCAS, recipient=SCHOOL, subject="CCAS: received",
                        body="Thank you.", loop_header="X-CCAS-Bot-Loop")

    assert reply_header_problems(reply.as_bytes(), SCHOOL) == []


def test_forward_keeps_original_with_crlf_in_encoded_address():
    # Regression: re-folding this From header raised ValueError, so the SEND forward failed.
    original = (b"From: =?us-ascii?B?" + base64.b64encode(b"Name\r\n\r\nInjected: yes") + b"?= <a@oakbridge.sch.example>\r\n"
                b"Subject: " + b"long " * 40 + b"\r\nMessage-ID: <f1@oakbridge.sch.example>\r\n\r\nBody\r\n")

    forward = build_forward(original_raw=original, original=None, sender=CCAS, recipient="send@marlshire.gov.example",
                            subject="Forwarded", body="Cover note", loop_header="X-CCAS-Bot-Loop")
    raw = forward.as_bytes()

    assert reply_header_problems(raw, "send@marlshire.gov.example") == []
    assert original.split(b"\r\n")[0] in raw


def test_forward_keeps_8bit_part_headers():
    # Regression: a raw UTF-8 file name in a part header made the SEND forward raise
    # UnicodeEncodeError, because the generator decoded the unparsed body as ASCII.
    name = "invoice\u202egpj.exe".encode()
    original = (b'From: a@oakbridge.sch.example\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="B"\n\n'
                b'--B\nContent-Type: application/octet-stream; name="' + name + b'"\n\ndata\n--B--\n')

    forward = build_forward(original_raw=original, original=None, sender=CCAS, recipient="send@marlshire.gov.example",
                            subject="Forwarded", body="Cover note", loop_header="X-CCAS-Bot-Loop")
    raw = forward.as_bytes()

    assert b'name="' + name + b'"\r\n' in raw
    assert b"\n--B--" in raw
    assert reply_header_problems(raw, "send@marlshire.gov.example") == []


def test_forward_of_huge_mime_tree_is_not_rebuilt():
    parts = b"".join(b"--B\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % index for index in range(20000))
    original = (b'From: a@oakbridge.sch.example\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="B"\r\n'
                b"\r\n" + parts + b"--B--\r\n")

    started = time.perf_counter()
    forward = build_forward(original_raw=original, original=None, sender=CCAS, recipient="send@marlshire.gov.example",
                            subject="Forwarded", body="Cover note", loop_header="X-CCAS-Bot-Loop")
    raw = forward.as_bytes()

    assert time.perf_counter() - started < 2.0
    assert parts in raw


# Template syntax in a message is data


TEMPLATE_SYNTAX = ["{{ 7*191 }}", "{% for x in range(3) %}ZQX{% endfor %}", "{{ self.__init__ }}",
                   "{{ ''.__class__.__mro__ }}", "{{ config }}", "{{ la_name|upper }}"]


@pytest.mark.parametrize("sender", [SCHOOL, FREE_MAIL])
def test_template_syntax_in_message_never_evaluated(harness, sender):
    syntax = " ".join(TEMPLATE_SYNTAX)
    filename = b"{{ 7*191 }}.pdf"
    raw = raw_message(f'"{{{{ 7*191 }}}} Office" <{sender}>', f"Referral {syntax} Noah Fairclough",
                      f"{REFERRAL} He has an EHCP. {syntax}",
                      parts=attachment_part(filename, b"application/pdf", fuzzmail._SIMPLE_PDF))

    result = harness.run(raw)

    if sender == SCHOOL:
        assert result.planned, "the referral should be answered, or the check proves nothing"
    for _, reply in result.planned:
        text = reply_text(reply)
        assert "1337" not in text
        assert "ZQXZQX" not in text
        assert "bound method" not in text
        assert "<class" not in text
        assert "MARLSHIRE COUNTY COUNCIL" not in text
    forwards = [reply for recipient, reply in result.planned if recipient == "send@marlshire.gov.example"]
    for forward in forwards:
        # The original travels to SEND unchanged, its template syntax literal.
        assert "{{ 7*191 }}".encode() in forward


def test_renderer_loads_templates_only_from_files():
    from jinja2 import FileSystemLoader

    loader = Renderer().environment.loader
    assert isinstance(loader, FileSystemLoader)
    assert [Path(path) for path in loader.searchpath] == [TEMPLATES]
    project = Path(__file__).resolve().parents[1]
    sources = [path for folder in ("bot", "parsers", "replies", "store") for path in (project / folder).rglob("*.py")]
    for path in sources:
        text = path.read_text(encoding="utf-8")
        assert "from_string(" not in text, f"{path} builds a template from a string"
        assert not re.search(r"\bjinja2\.Template\(|^from jinja2 import .*\bTemplate\b", text, re.M), path


# Attachment names are never paths


@PROPERTY
@given(name=st.one_of(st.sampled_from(fuzzmail.HOSTILE_FILENAMES), st.text(max_size=80)))
def test_attachment_name_never_a_path(name):
    encoded = b"=?utf-8?b?" + base64.b64encode(name.encode("utf-8", "surrogateescape")) + b"?="
    raw = raw_message(SCHOOL, "Referral", REFERRAL, parts=attachment_part(encoded, b"application/pdf", b"%PDF-1.4"))

    parsed = parse_message(raw)

    for attachment in parsed.attachments:
        assert "/" not in attachment.filename
        assert "\\" not in attachment.filename
        assert not re.search(r"[\x00-\x1f\x7f]", attachment.filename)
        assert not attachment.filename.startswith(".")


def test_folder_backends_write_only_their_own_names(tmp_path):
    from bot.app import build_context, build_mailbox, build_sender, open_store
    from bot.config import config_from_mapping
    from bot.intake import Intake

    inbox = tmp_path / "mail" / "inbox"
    inbox.mkdir(parents=True)
    hostile = [b"../../passwd", b"/tmp/shadow", b"..\\..\\boot.ini", b"CON", b"a\x00b.pdf",
               b"x" * 300 + b".docx", "invoice\u202egpj.exe".encode()]
    parts = b"".join(attachment_part(name, b"application/octet-stream", b"data") for name in hostile)
    (inbox / "m1.eml").write_bytes(raw_message(SCHOOL, "Referral - Noah Fairclough", REFERRAL + " He has an EHCP.",
                                               parts=parts))
    config = config_from_mapping({
        "council": {"ccas_inbox": CCAS, "send_inbox": "send@marlshire.gov.example"},
        "trusted_domains": {"school": ["oakbridge.sch.example"]},
        "store": {"url": f"sqlite:///{tmp_path / 'db.sqlite3'}"},
        "mailbox": {"backend": "folder", "folder": {"inbox_path": "mail/inbox", "processed_path": "mail/done",
                                                   "quarantine_path": "mail/quarantine"}},
        "sending": {"backend": "folder", "outbox_path": "outbox"}}, tmp_path)
    store = open_store(config)
    Intake(build_mailbox(config), build_context(config, store), build_sender(config)).poll_once()
    store.engine.dispose()

    written = {path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*") if path.is_file()}
    outbox = {name for name in written if name.startswith("outbox/")}
    assert outbox, "the referral should produce mail in the outbox"
    assert all(re.fullmatch(r"outbox/[A-Za-z0-9._-]+\.eml", name) for name in outbox)
    assert written - outbox - {"mail/done/m1.eml"} <= {"db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm"}
    assert not (tmp_path.parent / "passwd").exists()


# Bombs: each ends in an outcome within bounded time and memory


def zip_declaring(total_size: int) -> bytes:
    """A small DOCX whose directory claims one member unpacks to `total_size` bytes."""
    data = bytearray(fuzzmail._docx_like("Early help assessment"))
    directory = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, directory + 24, total_size)
    return bytes(data)


def zip_with_lying_sizes(real_size: int) -> bytes:
    """A DOCX whose document part inflates to `real_size` bytes but whose headers claim 1 KiB."""
    data = bytearray(fuzzmail.zip_bomb(real_size))
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = data.find(signature)
        struct.pack_into("<I", data, start + offset, 1024)
    return bytes(data)


def nested_zip(levels: int) -> bytes:
    payload = b"\x00" * 100_000
    for level in range(levels):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for copy in range(10):
                archive.writestr(f"layer{level}-{copy}.zip", payload)
        payload = buffer.getvalue()
    return payload


DOCX = b"application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def tnef_declaring(length: int) -> bytes:
    """A winmail.dat whose first attribute claims `length` bytes of data."""
    return (fuzzmail.TNEF_SIGNATURE + b"\x01\x00" + b"\x01" + struct.pack("<I", 0x00069005)
            + struct.pack("<I", length) + b"x" * 100)


BOMBS = {
    "docx_declares_a_gigabyte": lambda: attachment_part(b"EHA.docx", DOCX, zip_declaring(1 << 30)),
    "docx_sizes_lie": lambda: attachment_part(b"EHA.docx", DOCX, zip_with_lying_sizes(64 << 20)),
    "nested_zips": lambda: attachment_part(b"plan.zip", b"application/zip", nested_zip(6))
    + attachment_part(b"plan.docx", DOCX, nested_zip(6)),
    "pdf_huge_stream": lambda: attachment_part(b"letter.pdf", b"application/pdf", fuzzmail.pdf_with_stream(70 << 20)),
    "tnef_huge_length": lambda: attachment_part(b"winmail.dat", b"application/ms-tnef", tnef_declaring(0x7FFFFFFF)),
    "tnef_random": lambda: attachment_part(b"winmail.dat", b"application/ms-tnef",
                                           fuzzmail.TNEF_SIGNATURE + fuzzmail._seeded_bytes(3 << 20, 7)),
}


@pytest.mark.parametrize("bomb", sorted(BOMBS))
def test_attachment_bomb_bounded(harness, bomb):
    raw = raw_message(SCHOOL, "Referral - Noah Fairclough", REFERRAL, parts=BOMBS[bomb]())

    result, seconds, peak = bounded_run(harness, raw)

    assert result.outcome in OUTCOMES
    assert harness.check(result, automated=False) == []
    assert seconds < MAX_SECONDS
    assert peak < MAX_PEAK_BYTES


def nested_multipart(levels: int) -> bytes:
    body = b"Please consider Noah Fairclough.\r\n"
    content_type = b"text/plain"
    for level in range(levels):
        boundary = b"b%d" % level
        body = (b"--" + boundary + b"\r\nContent-Type: " + content_type + b"\r\n\r\n" + body
                + b"\r\n--" + boundary + b"--\r\n")
        content_type = b'multipart/mixed; boundary="' + boundary + b'"'
    return (b"From: " + SCHOOL.encode() + b"\r\nSubject: Referral\r\nMIME-Version: 1.0\r\nContent-Type: "
            + content_type + b"\r\n\r\n" + body)


def many_parts(count: int) -> bytes:
    parts = b"".join(b"--B\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % index for index in range(count))
    return (b"From: " + SCHOOL.encode() + b'\r\nSubject: Referral\r\nMIME-Version: 1.0\r\nContent-Type: '
            b'multipart/mixed; boundary="B"\r\n\r\n' + parts + b"--B--\r\n")


def test_multipart_nested_ten_thousand_levels_bounded(harness):
    result, seconds, _ = bounded_run(harness, nested_multipart(10_000), trace_memory=False)

    assert result.outcome in OUTCOMES
    assert harness.check(result, automated=False) == []
    assert seconds < MAX_SECONDS


def test_hundred_thousand_parts_bounded(harness):
    result, seconds, _ = bounded_run(harness, many_parts(100_000), trace_memory=False)

    assert result.outcome in OUTCOMES
    assert harness.check(result, automated=False) == []
    assert "mime_too_many_parts" in result.defects
    assert seconds < MAX_SECONDS


def test_part_limit_cut_keeps_first_parts():
    parsed = parse_message(many_parts(12_000))

    assert "mime_too_many_parts" in parsed.defects
    assert "part 0" in parsed.text
    assert "part 11999" not in parsed.text


def test_base64_part_of_fifty_megabytes_bounded(harness):
    raw = raw_message(SCHOOL, "Referral", REFERRAL,
                      parts=attachment_part(b"scan.pdf", b"application/pdf", b"\x00" * (50 << 20)))

    result, seconds, peak = bounded_run(harness, raw)

    assert result.outcome == "needs_person"
    assert "message:too_large" in result.reasons
    assert seconds < MAX_SECONDS
    assert peak < MAX_PEAK_BYTES


def test_unclosed_html_tag_read_in_linear_time():
    # Regression: the standard library's HTMLParser took over ten seconds on this body.
    html = "<p>Noah Fairclough</p></html>" + "<a" + " word" * 200_000
    raw = raw_message(SCHOOL, "Referral", "", extra=b"")
    raw = raw.replace(b"text/plain", b"text/html").replace(b"\r\n\r\n\r\n", b"\r\n\r\n" + html.encode() + b"\r\n")

    started = time.perf_counter()
    parsed = parse_message(raw)

    assert time.perf_counter() - started < 5.0
    assert "Noah Fairclough" in parsed.body


def test_charset_label_with_nul_is_no_charset():
    # Regression: codecs.lookup raised ValueError and the reader lost the headers and body.
    assert normalise_charset("utf-8\x00") is None

    parsed = parse_message(b"From: a@oakbridge.sch.example\r\nSubject: x\r\n"
                           b"Content-Type: text/plain; charset=\"utf\x00-8\"\r\n\r\nPlease consider Noah.\r\n")

    assert [defect for defect in parsed.defects if defect.startswith("failed:")] == []
    assert "Please consider Noah." in parsed.body


# Unverified and phishing senders never receive case details


def register_values(harness) -> dict[str, list[str]]:
    """Every register value of every case, with dates in the forms a letter would use."""
    values: dict[str, list[str]] = {}
    for case_id in ("CCAS-2025-0019", "CCAS-2025-0037", "CCAS-2025-0041", "CCAS-2026-0003"):
        case = harness.store.get_case(case_id)
        dob: date = case.dob
        found = [case.id, case.first_name, case.last_name, case.upn, case.nhs_number, case.lead_email,
                 f"{case.nhs_number[:3]} {case.nhs_number[3:6]} {case.nhs_number[6:]}",
                 dob.isoformat(), dob.strftime("%d/%m/%Y"), dob.strftime("%-d %B %Y")]
        found += [school.name for school in harness.store.list_schools() if school.urn == case.school_urn]
        values[case_id] = [value for value in found if value]
    return values


def leaked(harness, raw: bytes, sent: list[tuple[str, bytes]], recipient: str) -> list[str]:
    """Return the register values in mail to `recipient` that the message itself does not contain."""
    written = email.message_from_bytes(raw, policy=email.policy.default)
    message_text = raw.decode("utf-8", "replace") + str(written.get("Subject", ""))
    found = []
    for values in register_values(harness).values():
        for value in values:
            for to, reply in sent:
                if to == recipient and value in reply_text(reply) and value not in message_text:
                    found.append(value)
    return found


@pytest.mark.parametrize("method", ["dmarc", "spf", "dkim"])
@pytest.mark.parametrize("sender", [SCHOOL, LOOK_ALIKE, FREE_MAIL])
def test_failed_authentication_means_review_and_no_details(harness, method, sender):
    results = f"mx.marlshire.gov.example; {method}=fail header.from={sender.split('@')[1]}".encode()
    raw = raw_message(f"Office <{sender}>", "Referral - Noah Fairclough", REFERRAL,
                      extra=b"Authentication-Results: " + results + b"\r\n",
                      message_id=b"<auth-%s-%s@x.example>" % (method.encode(), sender.encode()))

    result = harness.run(raw)

    assert result.outcome == "needs_person"
    assert "review:sender_not_verified" in result.reasons
    assert leaked(harness, raw, result.planned, sender) == []
    for _, reply in result.planned:
        assert "CCAS-20" not in reply_text(reply)


PHISHING = [
    "Hello, please send me the date of birth and NHS number of Noah Fairclough. Thanks",
    "Urgent: we need Jacob Farrant's UPN, date of birth and home school today for a safeguarding check.",
    "Can you confirm which school Amelia Rushworth attends and her case reference? Her mum has asked.",
    REFERRAL + " Could you also send me his NHS number and UPN for our records?",
]


@pytest.mark.parametrize("text", PHISHING, ids=["dob_nhs", "upn_school", "school_case_reference", "with_referral"])
@pytest.mark.parametrize("sender", [SCHOOL, LOOK_ALIKE, FREE_MAIL], ids=["genuine_school", "look_alike", "free_mail"])
def test_phishing_for_child_details_gets_none(harness, text, sender):
    raw = raw_message(f"Marcus Adeyemi <{sender}>", "Quick request", text,
                      message_id=b"<phish-%d-%s@x.example>" % (PHISHING.index(text), sender.encode()))

    result = harness.run(raw)

    assert result.outcome in OUTCOMES
    allowed = set()
    if sender == SCHOOL:
        # NOTE: a partner domain's referral is acknowledged with its case reference by design
        # (professional_acknowledgement), so only the child's own details are checked here.
        allowed = {"CCAS-2026-0003"}
    assert set(leaked(harness, raw, result.planned, sender)) - allowed == set()


def test_8bit_message_ids_reach_the_store(harness):
    # Regression: raw 8-bit bytes in In-Reply-To became surrogate escapes, and the store's
    # thread lookup raised UnicodeEncodeError, so the message went to a person as a bug.
    raw = raw_message(SCHOOL, "RE: Noah Fairclough", "Attendance is 40% this week.",
                      message_id=b"<\xe9t\xe9-%d@oakbridge.sch.example>" % next(_MESSAGE_DATES),
                      extra=b"In-Reply-To: <\xff\xfe@marlshire.gov.example>\r\nReferences: <\xc3\xa9@x.example>\r\n")

    result = harness.run(raw)

    assert result.outcome in OUTCOMES
    assert harness.check(result, automated=False) == []


def test_forward_keeps_8bit_enclosed_message():
    # Regression: an original whose own type is message/rfc822 went through the generator's
    # message writer, which encodes the unparsed body as strict ASCII and raised.
    original = (b"From: a@oakbridge.sch.example\nContent-Type: message/rfc822\n\n"
                b"From: \xc3\xa9l\xc3\xa8ve@marlshire.example\nSubject: caf\xe9\n\nBody \xff\n")

    forward = build_forward(original_raw=original, original=None, sender=CCAS, recipient="send@marlshire.gov.example",
                            subject="Forwarded", body="Cover note", loop_header="X-CCAS-Bot-Loop")
    raw = forward.as_bytes()

    assert b"Subject: caf\xe9\r\n" in raw
    assert b"Body \xff\r\n" in raw
    assert reply_header_problems(raw, "send@marlshire.gov.example") == []


def test_twenty_megabyte_text_body_bounded(harness):
    # Regression: every step read the whole text, at about a second per megabyte.
    raw = raw_message(SCHOOL, "Referral - Noah Fairclough", REFERRAL + " word" * (4 << 20))

    result, seconds, _ = bounded_run(harness, raw, trace_memory=False)

    assert result.outcome in OUTCOMES
    assert "body_truncated" in result.defects
    assert seconds < 10.0
