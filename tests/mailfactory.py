"""Fictional test messages, built in code so every test says what it sends."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from datetime import datetime, timezone

CCAS_INBOX = "ccas@testshire.gov.example"
SEND_INBOX = "send@testshire.gov.example"
HEALTH_DOMAIN = "testhealth.nhs.example"
SCHOOL_DOMAIN = "brambleway.sch.example"
DUTY = "duty@testshire.gov.example"


def council_settings() -> dict:
    """Configuration sections that describe the fictional council used by the tests."""
    return {
        "council": {
            "la_name": "Testshire County Council",
            "ccas_inbox": CCAS_INBOX,
            "send_inbox": SEND_INBOX,
            "portal_url": "https://portal.testshire.gov.example/",
            "duty_coordinators": [DUTY],
            "panel_members": ["panel.chair@testshire.gov.example"],
        },
        "trusted_domains": {
            "school": [SCHOOL_DOMAIN],
            "health": [HEALTH_DOMAIN],
            "social_care": ["testchildren.org.example"],
            "la": ["testshire.gov.example"],
            "send": ["testshire.gov.example"],
        },
    }


def _base(sender: str, subject: str, body: str, **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = CCAS_INBOX
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime(2026, 11, 30, 9, 15, tzinfo=timezone.utc))
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].rstrip(">"))
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


def referral(first: str = "Poppy", last: str = "Larkspur", dob: str = "14/02/2013") -> EmailMessage:
    return _base(
        f"Dr Nia Gwent <nia.gwent@{HEALTH_DOMAIN}>",
        f"Referral for CCAS support - {first} {last}",
        f"Dear CCAS team,\n\nI am writing to refer {first} {last} (DOB {dob}), Year 8 at Brambleway "
        f"Primary School, for support from the CCAS panel. {first} has not attended school for six "
        "weeks because of anxiety and is under CAMHS. She does not have an EHCP. There are no "
        "safeguarding concerns.\n\nKind regards,\nDr Nia Gwent\nClinical Psychologist\n",
    )


def ehcp_update() -> EmailMessage:
    return _base(
        f"Sam Ashdown <sam.ashdown@{HEALTH_DOMAIN}>",
        "Request for support - Rowan Thistle",
        "Hello,\n\nI am requesting support for Rowan Thistle (DOB 03/09/2012), who has an EHCP "
        "naming Brambleway Primary School. Rowan has been unable to attend since half term "
        "because of chronic fatigue.\n\nThanks,\nSam Ashdown\nPaediatric nurse\n",
    )


def out_of_office() -> EmailMessage:
    return _base(
        f"Lee Mortimer <lee.mortimer@{HEALTH_DOMAIN}>",
        "Automatic reply: CCAS: we have received your message",
        "I am out of the office until Monday with no access to email. For urgent matters "
        "please contact the duty team.\n",
        Auto_Submitted="auto-replied",
    )


def bounce(original_message_id: str = "<missing-original@testshire.gov.example>") -> bytes:
    return (
        "From: MAILER-DAEMON@mx.testshire.gov.example\r\n"
        "To: ccas@testshire.gov.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Date: Mon, 30 Nov 2026 09:20:00 +0000\r\n"
        "Message-ID: <bounce-1@mx.testshire.gov.example>\r\n"
        "Return-Path: <>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n'
        "\r\n"
        "--b1\r\n"
        "Content-Type: text/plain\r\n\r\n"
        "Your message could not be delivered to one or more recipients.\r\n"
        "--b1\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.testshire.gov.example\r\n\r\n"
        "Final-Recipient: rfc822; gone.away@testhealth.nhs.example\r\n"
        "Action: failed\r\n"
        "Status: 5.1.1\r\n"
        "--b1\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n"
        "From: ccas@testshire.gov.example\r\n"
        "To: gone.away@testhealth.nhs.example\r\n"
        f"Message-ID: {original_message_id}\r\n"
        "Subject: CCAS: we have received your message\r\n"
        "--b1--\r\n"
    ).encode()


def unreadable() -> bytes:
    """Bytes with no header block at all: nothing in them can be read as a message."""
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR garbage that is not an email \xff\xfe\x00\x01\r\n"
