"""Reading attachments: text, kind, limits and damaged files.

Every document here is fictional and built in code by tests/documents.py.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from email.message import EmailMessage
from pathlib import Path

import pytest

from bot.config import LimitsConfig, config_from_mapping
from bot.errors import ConfigError
from bot.pipeline import attachment_limits
from documents import encrypt_pdf, make_docx, make_pdf, make_zip_bomb_docx
from parsers.attachments import (
    DEFAULT_LIMITS,
    ENCRYPTED,
    NO_TEXT_LAYER,
    PAGE_LIMIT,
    TIME_LIMIT,
    TOO_LARGE,
    UNREADABLE,
    AttachmentLimits,
    attachment_kind,
    read_attachment,
    read_attachments,
)
from parsers.message import Attachment
from parsers.mime import parse_message

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def attached(filename: str, payload: bytes, content_type: str = PDF) -> Attachment:
    return Attachment(filename=filename, content_type=content_type, size=len(payload), payload=payload)


def read(filename: str, payload: bytes, content_type: str = PDF,
         limits: AttachmentLimits = DEFAULT_LIMITS) -> tuple[Attachment, list[str]]:
    attachment = attached(filename, payload, content_type)
    notes = read_attachment(attachment, limits)
    return attachment, notes


HOSPITAL_LETTER = [
    "Riverside Children's Hospital - Paediatric Outpatients",
    "3 March 2026",
    "To whom it may concern",
    "Re: Sam Testwood   DOB 01/02/2015   Brambleway Primary School",
    "Sam was seen in clinic with his father and is not well enough to attend school.",
    "Dr P Example, Consultant Paediatrician",
]


# Reading text


def test_pdf_text_read():
    attachment, notes = read("Scan_0001.pdf", make_pdf([HOSPITAL_LETTER[:3], HOSPITAL_LETTER[3:]]))

    assert notes == []
    assert "Riverside Children's Hospital" in attachment.text
    assert "Re: Sam Testwood   DOB 01/02/2015" in attachment.text
    assert "Consultant Paediatrician" in attachment.text


def test_docx_paragraphs_and_tables_read():
    payload = make_docx(
        ["The plan was agreed with the family.", "Review in six weeks."],
        table=[["Child's name", "Sam Testwood"], ["Date of birth", "01/02/2015"], ["School", "Brambleway Primary"]],
        title="Individual Healthcare Plan",
        header="Brambleway Primary School",
    )

    attachment, notes = read("plan.docx", payload, DOCX)

    assert notes == []
    assert "The plan was agreed with the family." in attachment.text
    assert "Review in six weeks." in attachment.text
    assert "Child's name: Sam Testwood" in attachment.text
    assert "Date of birth: 01/02/2015" in attachment.text
    assert "Brambleway Primary School" in attachment.text
    assert attachment.kind == "ihcp"


def test_docx_merged_cells_read_once():
    payload = make_docx([], table=[["Early Help Assessment", "Early Help Assessment", "Early Help Assessment"]])

    attachment, _ = read("form.docx", payload, DOCX)

    assert attachment.text.count("Early Help Assessment") == 3


def test_text_attachment_read():
    payload = "Early Help Assessment\nName: Sam Testwood\n".encode("cp1252")

    attachment, notes = read("notes.txt", payload, "text/plain")

    assert notes == []
    assert attachment.text.startswith("Early Help Assessment")
    assert attachment.kind == "eha"


# Kinds


@pytest.mark.parametrize(("filename", "kind"), [
    ("IHCP - S Testwood.pdf", "ihcp"),
    ("Individual Healthcare Plan Sam.docx", "ihcp"),
    ("Asthma care plan.pdf", "ihcp"),
    ("EHA_Sam T_Mar26.docx", "eha"),
    ("Early Help Assessment - Testwood.pdf", "eha"),
    ("Clinic letter 02.03.26 - S Testwood.pdf", "medical_evidence"),
    ("CAMHS assessment letter - S T.pdf", "medical_evidence"),
    ("Discharge summary.pdf", "medical_evidence"),
    ("Fit note.jpg", "medical_evidence"),
    ("GP letter.docx", "medical_evidence"),
    ("EHCP final - S Testwood.pdf", "other"),
    ("Educational psychologist report.pdf", "other"),
    ("Consent form signed.pdf", "other"),
    ("Attendance - Sam T.pdf", "other"),
    ("Scan_20260303_101010.pdf", "other"),
])
def test_kind_from_name(filename, kind):
    assert attachment_kind(filename) == kind


@pytest.mark.parametrize(("lines", "kind"), [
    (HOSPITAL_LETTER, "medical_evidence"),
    (["The Surgery, 1 High Street, Testbury", "Dear Dr Example,", "Sam has anxiety."], "medical_evidence"),
    (["1 March 2026", "Dear Dr Example,", "Diagnosis: generalised anxiety disorder.",
      "Medication: sertraline 50 mg.", "cc: GP; parents"], "medical_evidence"),
    (["Brambleway Primary School", "Individual Healthcare Plan", "Medical condition: type 1 diabetes",
      "Consultant: Dr P Example, Riverside Children's Hospital"], "ihcp"),
    (["Pupil: Sam Testwood", "Medical condition: epilepsy", "Emergency procedure: call 999",
      "Daily care requirements: rest breaks", "Staff training: two staff by May"], "ihcp"),
    (["Early Help Assessment", "What is working well", "Sam is settled with friends."], "eha"),
    (["Education, Health and Care Plan", "Section A: views of the child"], "other"),
    (["Consent to share information - Early Help", "I give consent."], "other"),
    (["Brambleway Primary School", "Dear Mr Testwood,",
      "Thank you for telling us about Sam's hospital appointment on Friday."], "other"),
])
def test_kind_from_content(lines, kind):
    attachment, _ = read("Scan_0001.pdf", make_pdf([lines]))

    assert attachment.kind == kind


def test_kind_from_docx_title_style():
    payload = make_docx(["Completed by the family support worker."], title="Early Help Assessment")

    attachment, _ = read("document.docx", payload, DOCX)

    assert attachment.kind == "eha"


# Limits


def test_oversized_not_read():
    payload = make_pdf([HOSPITAL_LETTER])
    limits = AttachmentLimits(max_bytes=len(payload) - 1)

    attachment, notes = read("Clinic letter.pdf", payload, limits=limits)

    assert notes == [TOO_LARGE]
    assert attachment.text == ""
    assert attachment.kind == "medical_evidence"


def test_docx_zip_bomb_bounded():
    # 64 MiB of zeros packed into about 64 KiB: over four times the 10 MiB default.
    payload = make_zip_bomb_docx(64 * 1024 * 1024)
    assert len(payload) < DEFAULT_LIMITS.max_bytes

    attachment, notes = read("EHA - Sam.docx", payload, DOCX)

    assert notes == [TOO_LARGE]
    assert attachment.text == ""
    assert attachment.kind == "eha"


def test_pdf_page_limit():
    pages = [[f"Page {number} of the plan agreed with the family"] for number in range(1, 6)]

    attachment, notes = read("plan.pdf", make_pdf(pages), limits=AttachmentLimits(max_pages=2))

    assert notes == [PAGE_LIMIT]
    assert "Page 2 of the plan" in attachment.text
    assert "Page 3 of the plan" not in attachment.text


def test_time_budget_spent():
    attachment, notes = read("Clinic letter.pdf", make_pdf([HOSPITAL_LETTER]),
                             limits=AttachmentLimits(time_budget_ms=0))

    assert notes == [TIME_LIMIT]
    assert attachment.text == ""
    assert attachment.kind == "medical_evidence"


# Files that cannot be read


def test_encrypted_pdf_flagged():
    payload = encrypt_pdf(make_pdf([HOSPITAL_LETTER]), user_password="open-sesame")

    attachment, notes = read("Clinic letter.pdf", payload)

    assert notes == [ENCRYPTED]
    assert attachment.text == ""
    assert attachment.kind == "medical_evidence"


def test_pdf_with_empty_password_read():
    # Protected only against editing, so PDF readers open it without asking for a password.
    payload = encrypt_pdf(make_pdf([HOSPITAL_LETTER]), user_password="")

    attachment, notes = read("Scan_0001.pdf", payload)

    assert notes == []
    assert "Riverside Children's Hospital" in attachment.text


def test_password_docx_flagged():
    # An Office file saved with a password is an OLE container holding "EncryptedPackage".
    payload = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512) + "EncryptedPackage".encode("utf-16-le")

    _, notes = read("IHCP.docx", payload, DOCX)

    assert notes == [ENCRYPTED]


def test_scanned_pdf_flagged():
    attachment, notes = read("Scan_0001.pdf", make_pdf(scanned_pages=2))

    assert notes == [NO_TEXT_LAYER]
    assert attachment.text == ""


@pytest.mark.parametrize("payload", [
    b"%PDF-1.4\nthis is not a PDF body at all\n%%EOF",
    make_pdf([HOSPITAL_LETTER])[:300],
    make_pdf([HOSPITAL_LETTER])[:-40],
    b"\x00\x01\x02 random bytes named as a PDF",
    b"",
])
def test_broken_pdf_does_not_raise(payload):
    attachment, notes = read("Discharge summary.pdf", payload)

    assert notes == [UNREADABLE]
    assert attachment.text == ""
    assert attachment.kind == "medical_evidence"


@pytest.mark.parametrize("payload", [b"PK\x03\x04 not a zip directory", b"plain words", b""])
def test_broken_docx_does_not_raise(payload):
    attachment, notes = read("EHA.docx", payload, DOCX)

    assert notes == [UNREADABLE]
    assert attachment.kind == "eha"


# The reader


def message_with(*files: tuple[str, bytes, str], inline_image: bool = False) -> bytes:
    message = EmailMessage()
    message["From"] = "Scanner <scanner@brambleway.sch.example>"
    message["To"] = "ccas@testshire.gov.example"
    message["Subject"] = "Scanned document"
    message["Message-ID"] = "<scan-1@brambleway.sch.example>"
    message.set_content("Please find attached the scanned document.")
    if inline_image:
        message.add_alternative('<p>See below</p><img src="cid:logo@brambleway.sch.example">', subtype="html")
        html = message.get_payload()[1]
        html.add_related(base64.b64decode("R0lGODlhAQABAAAAACw="), "image", "gif", cid="<logo@brambleway.sch.example>")
    for filename, payload, content_type in files:
        maintype, subtype = content_type.split("/")
        message.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


def test_reader_fills_text_and_kind():
    raw = message_with(("Scan_0001.pdf", make_pdf([HOSPITAL_LETTER]), PDF), inline_image=True)

    message = parse_message(raw)

    files = [item for item in message.attachments if not item.inline]
    assert [item.filename for item in files] == ["Scan_0001.pdf"]
    assert files[0].kind == "medical_evidence"
    assert "Sam Testwood" in files[0].text
    assert message.attachment_notes == []


def test_inline_image_not_read():
    raw = message_with(inline_image=True)

    message = parse_message(raw)

    images = [item for item in message.attachments if item.inline]
    assert len(images) == 1
    assert images[0].text == ""
    assert read_attachments(images) == []


def test_reader_notes_reason_codes():
    raw = message_with(
        ("Clinic letter.pdf", encrypt_pdf(make_pdf([HOSPITAL_LETTER]), "open-sesame"), PDF),
        ("Scan_0002.pdf", make_pdf(scanned_pages=1), PDF),
    )

    message = parse_message(raw)

    assert message.attachment_notes == [ENCRYPTED, NO_TEXT_LAYER]
    assert [item.kind for item in message.attachments] == ["medical_evidence", "other"]


def test_reader_uses_given_limits():
    raw = message_with(("Clinic letter.pdf", make_pdf([HOSPITAL_LETTER]), PDF))

    message = parse_message(raw, attachment_limits=AttachmentLimits(max_bytes=100))

    assert message.attachment_notes == [TOO_LARGE]
    assert message.attachments[0].text == ""


def test_uuencoded_body_becomes_attachment():
    encoded = make_pdf([HOSPITAL_LETTER])
    lines = [binascii.b2a_uu(encoded[start:start + 45]).decode("ascii").rstrip("\n")
             for start in range(0, len(encoded), 45)]
    body = "Letter attached.\n\nbegin 644 clinic-letter.pdf\n" + "\n".join(lines) + "\n`\nend\n\nThanks\n"
    raw = (
        "From: Office <office@brambleway.sch.example>\nTo: ccas@testshire.gov.example\n"
        "Subject: Letter\nMessage-ID: <uu-1@brambleway.sch.example>\n\n" + body
    ).encode("ascii")

    message = parse_message(raw)

    assert "begin 644" not in message.text
    assert "Thanks" in message.text
    assert [item.filename for item in message.attachments] == ["clinic-letter.pdf"]
    assert message.attachments[0].payload == encoded
    assert message.attachments[0].kind == "medical_evidence"


# Configuration


def test_limits_config_defaults_match_reader():
    config = config_from_mapping({}, base_dir=Path("."))

    assert attachment_limits(config) == DEFAULT_LIMITS
    assert dataclasses.asdict(LimitsConfig()) == {
        "attachment_max_bytes": DEFAULT_LIMITS.max_bytes,
        "attachment_max_pages": DEFAULT_LIMITS.max_pages,
        "attachment_time_budget_ms": DEFAULT_LIMITS.time_budget_ms,
    }


def test_limits_config_read():
    config = config_from_mapping({"limits": {"attachment_max_bytes": 2048, "attachment_max_pages": 3,
                                             "attachment_time_budget_ms": 250}}, base_dir=Path("."))

    assert attachment_limits(config) == AttachmentLimits(max_bytes=2048, max_pages=3, time_budget_ms=250)


def test_limits_config_rejects_zero():
    with pytest.raises(ConfigError, match="attachment_max_pages"):
        config_from_mapping({"limits": {"attachment_max_pages": 0}}, base_dir=Path("."))
