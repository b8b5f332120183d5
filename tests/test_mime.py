"""Tests for the message reader, one per kind of trouble found in real mail.

Every message here is fictional and built as bytes in this file.
"""

from __future__ import annotations

import base64
import struct

import pytest

from parsers.errors import UnreadableMessage
from parsers.message import Address
from parsers.mime import parse_message

SCHOOL = "Jo Hartley <j.hartley@oakfield.sch.example>"
INBOX = "CCAS <ccas@testshire.gov.example>"


def build(body: str, *, headers: str = "", sender: str = SCHOOL, subject: str = "Amelia Hartley",
          content_type: str = "text/plain; charset=utf-8") -> bytes:
    """Return a simple message; `headers` adds or overrides header lines."""
    lines = [
        f"From: {sender}",
        f"To: {INBOX}",
        f"Subject: {subject}",
        "Date: Wed, 02 Sep 2026 08:47:12 +0100",
        "Message-ID: <test-1@oakfield.sch.example>",
        "MIME-Version: 1.0",
    ]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    text = "\n".join(lines) + "\n" + headers + "\n" + body
    return text.encode("utf-8")


def multipart(parts: list[str], *, subtype: str = "mixed", headers: str = "", subject: str = "Amelia Hartley") -> bytes:
    """Return a multipart message from ready-made parts (each with its own header lines)."""
    boundary = "=_part_boundary_1"
    body = "".join(f"--{boundary}\n{part}\n" for part in parts) + f"--{boundary}--\n"
    return build(
        body,
        headers=headers,
        subject=subject,
        content_type=f'multipart/{subtype}; boundary="{boundary}"',
    )


def minimal_tnef(body: bytes, attachment_name: bytes, attachment_data: bytes) -> bytes:
    """Build a small TNEF stream: a plain body and one attached file.

    Each TNEF attribute is level (1 byte), id and type (2 bytes each), length (4 bytes),
    the data, and a 16-bit checksum, all little-endian (MS-OXTNEF section 2.1.3).
    """

    def attribute(level: int, attribute_id: int, attribute_type: int, data: bytes) -> bytes:
        header = struct.pack("<BHHI", level, attribute_id, attribute_type, len(data))
        return header + data + struct.pack("<H", sum(data) & 0xFFFF)

    stream = struct.pack("<IH", 0x223E9F78, 0x0001)
    stream += attribute(1, 0x9006, 0x0008, struct.pack("<I", 0x00010000))  # TNEF version
    stream += attribute(1, 0x800C, 0x0002, body)  # attBody
    stream += attribute(2, 0x9002, 0x0006, b"\x01\x00\xff\xff\xff\xff" + b"\x00" * 8)  # attAttachRendData
    stream += attribute(2, 0x8010, 0x0001, attachment_name + b"\x00")  # attAttachTitle
    stream += attribute(2, 0x800F, 0x0006, attachment_data)  # attAttachData
    return stream


# Header trouble


def test_cc_header_ending_in_comma():
    raw = build("Hello", headers="Cc: Sam Patel <s.patel@oakfield.sch.example>,\n l.green@oakfield.sch.example,\n")

    message = parse_message(raw)

    assert message.cc == [
        Address("Sam Patel", "s.patel@oakfield.sch.example"),
        Address("", "l.green@oakfield.sch.example"),
    ]


def test_message_id_with_square_brackets():
    raw = build(
        "Hello",
        headers=(
            "In-Reply-To: <[abc123]@mail.testshire.gov.example>\n"
            "References: <first@oakfield.sch.example>\n <[abc123]@mail.testshire.gov.example>\n"
        ),
    ).replace(b"<test-1@oakfield.sch.example>", b"< [9f2e-77]@[192.0.2.10] >")

    message = parse_message(raw)

    assert message.message_id == "[9f2e-77]@[192.0.2.10]"
    assert message.in_reply_to == ["[abc123]@mail.testshire.gov.example"]
    assert message.references == ["first@oakfield.sch.example", "[abc123]@mail.testshire.gov.example"]


def test_from_display_name_is_an_address():
    quoted = parse_message(build("Hello", sender='"head@oakfield.sch.example" <someone@elsewhere.example>'))
    unquoted = parse_message(build("Hello", sender="head@oakfield.sch.example <someone@elsewhere.example>"))

    assert quoted.sender == Address("head@oakfield.sch.example", "someone@elsewhere.example")
    assert unquoted.sender is not None
    assert unquoted.sender.email == "someone@elsewhere.example"


def test_encoded_display_name_surname_comma_forename():
    encoded_name = base64.b64encode("BRENNAN, Hollie (SEVERN HEALTH)".encode()).decode()
    raw = build("Hello", sender=f"=?utf-8?B?{encoded_name}?= <hollie.brennan@health.nhs.example>")

    message = parse_message(raw)

    assert message.sender == Address("BRENNAN, Hollie (SEVERN HEALTH)", "hollie.brennan@health.nhs.example")


def test_unquoted_surname_comma_forename():
    raw = build("Hello", headers="Cc: Patel, Sam <s.patel@oakfield.sch.example>; =?utf-8?q?Gr=C3=A9en?= <g@x.example>\n")

    message = parse_message(raw)

    assert message.cc == [Address("Patel, Sam", "s.patel@oakfield.sch.example"), Address("Gréen", "g@x.example")]


def test_raw_8bit_headers():
    raw = build("Hello").replace(b"Subject: Amelia Hartley", "Subject: Zoë Brontë – update".encode("utf-8"))
    raw = raw.replace(b"From: Jo Hartley", "From: Zoë Hartley".encode("latin-1"))

    message = parse_message(raw)

    assert message.subject == "Zoë Brontë – update"
    assert message.sender == Address("Zoë Hartley", "j.hartley@oakfield.sch.example")
    assert "raw_8bit_header" in message.defects


def test_headers_decoded_lower_case_keys():
    raw = build("Hello", subject="=?iso-8859-1?q?R=E9union_panel?=", headers="X-Custom: one\nX-CUSTOM: two\n")

    message = parse_message(raw)

    assert message.headers["subject"] == ["Réunion panel"]
    assert message.headers["x-custom"] == ["one", "two"]
    assert message.header("X-Custom") == "one"


def test_encoded_word_split_multibyte_character():
    # "é" is C3 A9 in UTF-8; the sender split it across two encoded words.
    raw = build("Hello", subject="=?utf-8?q?Caf=C3?= =?utf-8?q?=A9_meeting?=")

    assert parse_message(raw).subject == "Café meeting"


def test_return_path_null_and_normal():
    null = parse_message(build("Hello", headers="Return-Path: <>\n"))
    normal = parse_message(build("Hello", headers="Return-Path: <J.Hartley@Oakfield.sch.example>\n"))
    missing = parse_message(build("Hello"))

    assert null.return_path == ""
    assert normal.return_path == "j.hartley@oakfield.sch.example"
    assert missing.return_path is None


def test_space_before_colon_in_header_name():
    raw = b"From : Jo <jo@oakfield.sch.example>\nSubject : Update\n\nHello\n"

    message = parse_message(raw)

    assert message.subject == "Update"
    assert message.sender == Address("Jo", "jo@oakfield.sch.example")
    assert "bad_header_syntax" in message.defects


def test_header_continuation_without_indent():
    raw = (
        b"Received: from relay.example by mx.example;\n"
        b"this continuation lost its indent\n"
        b"From: Jo <jo@oakfield.sch.example>\n"
        b"Subject: Still readable\n\nHello\n"
    )

    message = parse_message(raw)

    assert message.subject == "Still readable"
    assert "bad_header_folding" in message.defects


# Unreadable input


@pytest.mark.parametrize(
    "raw",
    [b"", b"   \n\n", bytes(range(256)) * 4, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"just some words\nno headers here\n"],
    ids=["empty", "blank", "binary", "png", "plain_words"],
)
def test_no_header_block_raises_unreadable(raw):
    with pytest.raises(UnreadableMessage) as caught:
        parse_message(raw)

    assert caught.value.reason == "no_headers"


def test_too_large_raises_unreadable():
    with pytest.raises(UnreadableMessage) as caught:
        parse_message(build("x" * 2000), max_bytes=1000)

    assert caught.value.reason == "too_large"


def test_bom_and_junk_before_headers():
    raw = b"\xef\xbb\xbf>>> saved by a mail client\n" + build("Hello")

    message = parse_message(raw)

    assert message.subject == "Amelia Hartley"
    assert "byte_order_mark" in message.defects
    assert "junk_before_headers" in message.defects


# Line endings and transfer encodings


def test_bare_cr_line_endings():
    raw = build("First line\nSecond line\n").replace(b"\n", b"\r")

    message = parse_message(raw)

    assert message.subject == "Amelia Hartley"
    assert message.text == "First line\nSecond line"


def test_crlf_line_endings():
    message = parse_message(build("First line\nSecond line\n").replace(b"\n", b"\r\n"))

    assert message.text == "First line\nSecond line"


def test_unknown_content_transfer_encoding():
    raw = build("Plain words in an odd encoding\n", headers="Content-Transfer-Encoding: x-council-7bit\n")

    message = parse_message(raw)

    assert message.text == "Plain words in an odd encoding"
    assert "unknown_cte" in message.defects


def test_misspelt_base64_transfer_encoding_is_decoded():
    encoded = base64.b64encode(b"Decoded despite the spelling").decode()
    raw = build(encoded + "\n", headers="Content-Transfer-Encoding: base-64\n")

    message = parse_message(raw)

    assert message.text == "Decoded despite the spelling"
    assert "unknown_cte" in message.defects


def test_charset_fallback_to_windows_1252():
    body = "Attendance 50% – “better” this week\n".encode("cp1252")
    raw = build("", content_type="text/plain; charset=utf-8") + body

    message = parse_message(raw)

    assert message.text == "Attendance 50% – “better” this week"
    assert "charset_fallback" in message.defects


def test_utf8_body_labelled_latin1():
    raw = build("", content_type="text/plain; charset=iso-8859-1") + "Zoë’s plan\n".encode("utf-8")

    message = parse_message(raw)

    assert message.text == "Zoë’s plan"
    assert "charset_mislabelled" in message.defects


def test_unknown_charset_label():
    raw = build("", content_type="text/plain; charset=x-made-up-charset") + "Café\n".encode("utf-8")

    message = parse_message(raw)

    assert message.text == "Café"
    assert "unknown_charset" in message.defects


# Bodies


def test_outlook_html_only_body():
    html = (
        "<html><head><style>p.MsoNormal {margin:0cm;}</style><script>alert('x')</script></head>"
        "<body><div class=WordSection1>"
        "<p class=MsoNormal>Dear CCAS panel,<o:p></o:p></p>"
        "<p class=MsoNormal>Amelia&nbsp;needs support &amp; tuition.<br>She is in Year&nbsp;8.</p>"
        "<ul><li>Reduced timetable</li><li>Home visits</li></ul>"
        "<table><tr><td>DOB</td><td>04/03/2012</td></tr><tr><td>School</td><td>Oakfield</td></tr></table>"
        "</div></body></html>"
    )
    raw = build(html, content_type='text/html; charset="us-ascii"')

    message = parse_message(raw)
    text = message.html_text

    assert "Dear CCAS panel," in text
    assert "Amelia needs support & tuition.\nShe is in Year 8." in text
    assert "* Reduced timetable" in text
    assert "* Home visits" in text
    assert "DOB" in text
    assert "04/03/2012" in text
    assert text.index("DOB") < text.index("04/03/2012") < text.index("School")
    assert "margin" not in text
    assert "alert" not in text
    assert message.body == text


def test_html_charset_from_meta_tag():
    html = '<html><head><meta charset="windows-1252"></head><body><p>Caf\xe9 meeting</p></body></html>'
    raw = build("", content_type="text/html") + html.encode("cp1252")

    assert parse_message(raw).html_text == "Café meeting"


def test_plain_and_html_both_kept():
    raw = multipart(
        [
            "Content-Type: text/plain; charset=utf-8\n\nPlain words",
            "Content-Type: text/html; charset=utf-8\n\n<p>HTML words</p>",
        ],
        subtype="alternative",
    )

    message = parse_message(raw)

    assert message.text == "Plain words"
    assert message.html_text == "HTML words"
    assert message.content_type == "multipart/alternative"


# New words only: quotes, signatures and footers


def test_outlook_reply_chain_without_quote_marks():
    body = (
        "Thanks, she is now attending mornings only.\n"
        "\n"
        "Kind regards\n"
        "\n"
        "Jo Hartley\n"
        "SENCo, Oakfield Primary\n"
        "\n"
        "________________________________\n"
        "From: CCAS <ccas@testshire.gov.example>\n"
        "Sent: 01 September 2026 16:02\n"
        "To: Jo Hartley <j.hartley@oakfield.sch.example>\n"
        "Subject: RE: Amelia Hartley\n"
        "\n"
        "Can you confirm her current attendance?\n"
        "\n"
        "From: Jo Hartley <j.hartley@oakfield.sch.example>\n"
        "Sent: 31 August 2026 09:15\n"
        "To: CCAS <ccas@testshire.gov.example>\n"
        "Subject: Amelia Hartley\n"
        "\n"
        "Amelia has not attended since July.\n"
    )

    message = parse_message(build(body, subject="RE: Amelia Hartley"))

    assert message.new_text == "Thanks, she is now attending mornings only."
    assert "Amelia has not attended since July." in message.text
    assert message.forwarded_text == ""


def test_gmail_on_wrote_quote_removed():
    body = (
        "Yes, the appointment is on Friday.\n"
        "\n"
        "On Tue, 1 Sept 2026 at 10:04, CCAS <ccas@testshire.gov.example>\n"
        "wrote:\n"
        "\n"
        "> When is the CAMHS appointment?\n"
    )

    assert parse_message(build(body)).new_text == "Yes, the appointment is on Friday."


def test_interleaved_reply_keeps_unquoted_lines():
    body = (
        "On 01/09/2026 10:04, CCAS wrote:\n"
        "> What is her date of birth?\n"
        "04/03/2012\n"
        "> Which school?\n"
        "Oakfield Primary\n"
    )

    assert parse_message(build(body)).new_text == "04/03/2012\nOakfield Primary"


def test_original_message_separator():
    body = "See below.\n\n-----Original Message-----\nFrom: someone@x.example\nSent: Monday\n\nOld text\n"

    assert parse_message(build(body)).new_text == "See below."


def test_signature_delimiter_and_mobile_sign_off():
    delimited = parse_message(build("Short update.\n-- \nJo Hartley\nOakfield\n"))
    mobile = parse_message(build("Short update from my phone.\n\nSent from my iPhone\n"))

    assert delimited.new_text == "Short update."
    assert mobile.new_text == "Short update from my phone."


def test_closing_with_short_name_block_removed():
    body = (
        "Please see the attached plan.\n"
        "\n"
        "Many thanks,\n"
        "\n"
        "Jo\n"
        "\n"
        "Jo Hartley\n"
        "SENCo\n"
        "Oakfield Primary School\n"
        "Tel: 01632 960000\n"
    )

    assert parse_message(build(body)).new_text == "Please see the attached plan."


def test_thank_you_only_message_kept():
    message = parse_message(build("Many thanks!\n\nAlan Fisher\nSENCo, Northwick Park School\n"))

    assert message.new_text == "Many thanks!"


def test_confidentiality_footer_removed():
    body = (
        "Amelia was admitted to hospital on Monday.\n"
        "\n"
        "Bethan\n"
        "\n"
        "*****************************************\n"
        "\n"
        "This email and any attachments are confidential and intended solely for the addressee. If you\n"
        "have received it in error please notify the sender and delete it.\n"
        "\n"
        "Emails sent to and from this organisation may be monitored for compliance with the law.\n"
    )

    message = parse_message(build(body))

    assert message.new_text == "Amelia was admitted to hospital on Monday.\n\nBethan"


def test_external_sender_banner_removed():
    body = (
        "CAUTION: This email originated from outside of the organisation. Do not click links unless you\n"
        "recognise the sender.\n"
        "\n"
        "Amelia is back in school.\n"
    )

    assert parse_message(build(body)).new_text == "Amelia is back in school."


def test_person_writing_confidential_in_body_is_kept():
    body = "Amelia's mum has asked that her diagnosis is kept confidential from her classmates.\n"

    assert parse_message(build(body)).new_text == body.strip()


# Forwards


def test_inline_gmail_forward_goes_to_forwarded_text():
    body = (
        "Please see below from Amelia's mum.\n"
        "\n"
        "---------- Forwarded message ---------\n"
        "From: Karen Hartley <karen.hartley@mail.example>\n"
        "Date: Mon, 31 Aug 2026 at 21:14\n"
        "Subject: Amelia\n"
        "To: <j.hartley@oakfield.sch.example>\n"
        "\n"
        "Amelia was sick again last night.\n"
    )

    message = parse_message(build(body, subject="Fwd: Amelia"))

    assert message.new_text == "Please see below from Amelia's mum."
    assert message.forwarded_text == "Amelia was sick again last night."
    assert message.forwarded_from == Address("Karen Hartley", "karen.hartley@mail.example")


def test_outlook_forward_block_goes_to_forwarded_text():
    body = (
        "FYI - see below.\n"
        "\n"
        "From: Hartley, Karen <karen.hartley@mail.example>\n"
        "Sent: 31 August 2026 21:14\n"
        "To: Jo Hartley <j.hartley@oakfield.sch.example>\n"
        "Subject: Amelia\n"
        "\n"
        "Amelia was sick again last night.\n"
    )

    message = parse_message(build(body, subject="FW: Amelia"))

    assert message.new_text == "FYI - see below."
    assert message.forwarded_text == "Amelia was sick again last night."
    assert message.forwarded_from == Address("Hartley, Karen", "karen.hartley@mail.example")


def test_forwarded_rfc822_part_text_and_attachments():
    enclosed = (
        "Content-Type: message/rfc822\n\n"
        "From: Dr Ana Gill <ana.gill@hospital.nhs.example>\n"
        "Subject: Clinic letter\n"
        'Content-Type: multipart/mixed; boundary="inner"\n\n'
        "--inner\nContent-Type: text/plain\n\nAmelia should not attend school for six weeks.\n"
        "--inner\nContent-Type: application/pdf; name=letter.pdf\nContent-Transfer-Encoding: base64\n\n"
        f"{base64.b64encode(b'%PDF-1.4 test').decode()}\n"
        "--inner--"
    )
    raw = multipart(["Content-Type: text/plain\n\nForwarding the clinic letter.", enclosed])

    message = parse_message(raw)

    assert message.new_text == "Forwarding the clinic letter."
    assert message.forwarded_text == "Amelia should not attend school for six weeks."
    assert message.forwarded_from == Address("Dr Ana Gill", "ana.gill@hospital.nhs.example")
    assert [item.filename for item in message.attachments] == ["letter.pdf"]
    assert message.attachments[0].payload == b"%PDF-1.4 test"


def test_empty_forwarded_message_part():
    raw = multipart(["Content-Type: text/plain\n\nSee attached.", "Content-Type: message/rfc822\n\n"])

    message = parse_message(raw)

    assert message.new_text == "See attached."
    assert message.forwarded_text == ""
    assert message.forwarded_from is None
    assert "empty_forwarded_message" in message.defects


def test_enclosed_message_split_headers():
    enclosed = (
        "Content-Type: message/rfc822\n\n"
        "From: Karen Hartley <karen.hartley@mail.example>\n"
        "Subject: Amelia\n"
        "\n"
        'Content-Type: text/plain; charset="utf-8"\n'
        "MIME-Version: 1.0\n"
        "\n"
        "Amelia is unwell today.\n"
    )
    message = parse_message(multipart(["Content-Type: text/plain\n\nBelow.", enclosed]))

    assert message.forwarded_text == "Amelia is unwell today."
    assert "split_header_block" in message.defects


# Attachments


def test_encoded_filename_with_wrong_charset_label():
    # UTF-8 bytes labelled ISO-8859-1, as some webmail clients send them.
    label = "Zoë plan.pdf".encode("utf-8")
    percent = "".join(f"%{byte:02X}" if byte > 127 or byte == 32 else chr(byte) for byte in label)
    raw = multipart(
        [
            "Content-Type: text/plain\n\nPlan attached.",
            "Content-Type: application/pdf\n"
            f"Content-Disposition: attachment; filename*=iso-8859-1''{percent}\n\n%PDF",
        ]
    )

    message = parse_message(raw)

    assert [item.filename for item in message.attachments] == ["Zoë plan.pdf"]
    assert "charset_mislabelled" in message.defects


def test_rfc2047_and_rfc2231_filenames():
    raw = multipart(
        [
            "Content-Type: text/plain\n\nTwo files.",
            'Content-Type: application/pdf; name="=?utf-8?B?' + base64.b64encode("Évaluation.pdf".encode()).decode()
            + '?="\nContent-Disposition: attachment\n\n%PDF',
            "Content-Type: application/pdf\nContent-Disposition: attachment;\n"
            " filename*0*=utf-8''IHCP%20;\n filename*1*=%E2%80%93%20Amelia.pdf\n\n%PDF",
        ]
    )

    names = [item.filename for item in parse_message(raw).attachments]

    assert names == ["Évaluation.pdf", "IHCP – Amelia.pdf"]


def test_path_traversal_filename_reduced():
    raw = multipart(
        ["Content-Type: text/plain\n\nHi", 'Content-Type: text/plain; name="../../etc/report.txt"\n\ncontent']
    )

    message = parse_message(raw)

    assert [item.filename for item in message.attachments] == ["report.txt"]
    assert "unsafe_filename" in message.defects


def test_inline_images_without_content_disposition():
    png = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
    raw = multipart(
        [
            'Content-Type: text/html; charset="us-ascii"\n\n<p>Hello</p><img src="cid:image001.png@01DB52D1">',
            f"Content-Type: image/png\nContent-ID: <image001.png@01DB52D1>\nContent-Transfer-Encoding: base64\n\n{png}",
            f'Content-Type: image/png; name="photo.png"\nContent-ID: <photo@x>\n'
            f'Content-Disposition: attachment; filename="photo.png"\nContent-Transfer-Encoding: base64\n\n{png}',
        ],
        subtype="related",
    )

    message = parse_message(raw)
    inline = [item for item in message.attachments if item.inline]
    files = [item for item in message.attachments if not item.inline]

    assert len(inline) == 1
    assert inline[0].content_id == "image001.png@01DB52D1"
    assert inline[0].payload == b"\x89PNG\r\n\x1a\nfake"
    assert [item.filename for item in files] == ["photo.png"]


def test_cid_referenced_logo_is_inline():
    png = base64.b64encode(b"\x89PNG logo").decode()
    raw = multipart(
        [
            '<p>Hi</p><img src="cid:image001.png@01DB">'.join(["Content-Type: text/html\n\n", ""]),
            f'Content-Type: image/png; name="image001.png"\nContent-ID: <image001.png@01DB>\n'
            f'Content-Disposition: inline; filename="image001.png"\nContent-Transfer-Encoding: base64\n\n{png}',
        ],
        subtype="related",
    )

    attachment = parse_message(raw).attachments[0]

    assert attachment.filename == "image001.png"
    assert attachment.inline is True


def test_body_only_inside_winmail_dat():
    pytest.importorskip("tnefparse", reason="tnefparse is not installed, so winmail.dat stays an attachment")
    tnef = minimal_tnef(b"Amelia has been discharged from hospital.", b"discharge.txt", b"Discharge summary")
    raw = build(
        base64.b64encode(tnef).decode() + "\n",
        content_type='application/ms-tnef; name="winmail.dat"',
        headers='Content-Disposition: attachment; filename="winmail.dat"\nContent-Transfer-Encoding: base64\n',
    )

    message = parse_message(raw)

    assert message.text == "Amelia has been discharged from hospital."
    assert message.new_text == "Amelia has been discharged from hospital."
    assert [(item.filename, item.payload) for item in message.attachments] == [("discharge.txt", b"Discharge summary")]


def test_unreadable_winmail_dat_kept():
    raw = multipart(
        [
            "Content-Type: text/plain\n\nSee attached.",
            'Content-Type: application/ms-tnef; name="winmail.dat"\nContent-Transfer-Encoding: base64\n\n'
            + base64.b64encode(b"not tnef at all").decode(),
        ]
    )

    message = parse_message(raw)

    assert [item.filename for item in message.attachments] == ["winmail.dat"]
    assert "tnef_unreadable" in message.defects


def test_attachment_without_filename_gets_a_name():
    raw = multipart(["Content-Type: text/plain\n\nScan attached.", "Content-Type: application/pdf\n\n%PDF-1.4"])

    attachment = parse_message(raw).attachments[0]

    assert attachment.filename == "attachment-1.pdf"
    assert attachment.size == len(b"%PDF-1.4")
    assert attachment.text == ""


# Encryption


def test_smime_enveloped_data_is_encrypted():
    raw = build(
        base64.b64encode(b"\x30\x82 ciphertext").decode() + "\n",
        content_type='application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"',
        headers="Content-Transfer-Encoding: base64\n",
    )

    assert parse_message(raw).encrypted is True


def test_p7m_without_smime_type_encrypted():
    raw = build("MIAGCSqGSIb3\n", content_type='application/x-pkcs7-mime; name="smime.p7m"',
                headers="Content-Transfer-Encoding: base64\n")

    assert parse_message(raw).encrypted is True


def test_smime_signed_message_is_not_encrypted():
    raw = multipart(
        ["Content-Type: text/plain\n\nSigned words.",
         'Content-Type: application/pkcs7-signature; name="smime.p7s"\n\nMIAGCSqGSIb3'],
        subtype='signed; protocol="application/pkcs7-signature"; micalg=sha-256',
    )

    message = parse_message(raw)

    assert message.encrypted is False
    assert message.new_text == "Signed words."


def test_pgp_mime_and_inline_pgp_are_encrypted():
    pgp_mime = multipart(
        ["Content-Type: application/pgp-encrypted\n\nVersion: 1",
         "Content-Type: application/octet-stream\n\n-----BEGIN PGP MESSAGE-----\nhQEMA\n-----END PGP MESSAGE-----"],
        subtype='encrypted; protocol="application/pgp-encrypted"',
    )
    inline = build("-----BEGIN PGP MESSAGE-----\n\nhQEMAw\n-----END PGP MESSAGE-----\n")

    assert parse_message(pgp_mime).encrypted is True
    assert parse_message(inline).encrypted is True


# Delivery reports


def test_delivery_report_status_and_returned_headers():
    raw = multipart(
        [
            "Content-Type: text/plain\n\nYour message could not be delivered: mailbox full.",
            "Content-Type: message/delivery-status\n\n"
            "Reporting-MTA: dns; mx.oakfield.sch.example\n\n"
            "Final-Recipient: rfc822; j.hartley@oakfield.sch.example\n"
            "Action: failed\nStatus: 5.2.2\n",
            "Content-Type: text/rfc822-headers\n\n"
            "From: CCAS <ccas@testshire.gov.example>\n"
            "To: j.hartley@oakfield.sch.example\n"
            "Subject: =?utf-8?q?Panel_outcome_=E2=80=93_Amelia?=\n"
            "Message-ID: <outcome-42@testshire.gov.example>\n",
        ],
        subtype="report; report-type=delivery-status",
        subject="Undeliverable: Panel outcome",
    )

    message = parse_message(raw)

    assert message.delivery_status == "failed 5.2.2"
    assert message.returned_headers["subject"] == ["Panel outcome – Amelia"]
    assert message.returned_headers["message-id"] == ["<outcome-42@testshire.gov.example>"]
    assert message.new_text == "Your message could not be delivered: mailbox full."


def test_delivery_report_with_returned_message():
    raw = multipart(
        [
            "Content-Type: text/plain\n\nDelivery failed.",
            "Content-Type: message/delivery-status\n\nFinal-Recipient: rfc822; a@x.example\n"
            "Action : failed\nStatus : 5.1.1\n",
            "Content-Type: message/rfc822\n\nFrom: CCAS <ccas@testshire.gov.example>\nSubject: Outcome CCAS-0042\n\n"
            "Case reference CCAS-0042.\n",
        ],
        subtype="report; report-type=delivery-status",
    )

    message = parse_message(raw)

    assert message.delivery_status == "failed 5.1.1"
    assert message.returned_headers["subject"] == ["Outcome CCAS-0042"]
    assert message.returned_text == "Case reference CCAS-0042."
    assert message.forwarded_text == ""


def test_long_whitespace_run_read_without_backtracking():
    # A 200 KB run of spaces and tabs ending in a word once took about a minute to read,
    # because a quoted-header pattern could split the run in many ways. The alarm turns
    # such a regression into a failure instead of a hung test run.
    import signal

    body = "Jack " + " \t" * 100_000 + "x"
    raw = ("From: a@school.example\r\nSubject: Referral\r\nMessage-ID: <ws@school.example>\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n").encode()

    def hung(signum, frame):
        raise TimeoutError("reading took longer than 10 s: catastrophic backtracking is back")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    try:
        parsed = parse_message(raw)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)

    assert parsed.body.startswith("Jack")
