"""Reply templates and outgoing message headers."""

from __future__ import annotations

import email
import email.policy

import pytest

from parsers.message import ParsedMessage
from replies.compose import build_forward, build_reply
from replies.render import Renderer, TemplateError, TEMPLATES

FICTIONAL_VALUES = {
    "la_name": "Testshire County Council",
    "case_reference": "CCAS-2026-0007",
    "safeguarding_contact": "the duty team on 01000 000000",
    "portal_url": "https://portal.testshire.gov.example/",
    "send_inbox": "send@testshire.gov.example",
    "marking_prefix": "",
    "urgent": True,
    "urgent_reasons": ["self-harm is mentioned"],
    "message_reference": "abc123def456",
    "message_url": "https://ccas.testshire.gov.example/queue?reference=abc123def456",
    "on_agenda": True,
    "missing_documents": ["the individual healthcare plan (IHCP), if the child has one"],
    "forward_reasons": ["ehcp:has_ehcp"],
    "meeting_date": "Wednesday 8 January 2025",
    "decision_label": "Meets the Section 19 criteria: provision arranged",
    "summary": "Home tuition for ten hours a week while the reintegration plan is agreed.",
    "actions": [{"number": 5, "description": "Arrange a tutor", "due": "Wednesday 22 January 2025"}],
    "next_review": "Wednesday 2 April 2025",
    "action_number": 5,
    "action_description": "Arrange a tutor",
    "action_due": "Wednesday 22 January 2025",
    "overdue": False,
    "ccas_inbox": "ccas@testshire.gov.example",
}


@pytest.mark.parametrize("name", Renderer().template_names())
def test_template_renders_with_fictional_values(name):
    rendered = Renderer().render(name, FICTIONAL_VALUES)

    assert rendered.subject
    assert rendered.body.strip()
    assert "{{" not in rendered.body


def test_template_missing_value_raises():
    with pytest.raises(TemplateError):
        Renderer().render("professional_acknowledgement", {"la_name": "Testshire County Council"})


def test_templates_used_by_routing_exist():
    from bot import compose, outcomes, routing
    import inspect

    source = inspect.getsource(routing) + inspect.getsource(compose) + inspect.getsource(outcomes)
    names = Renderer().template_names()
    for name in names:
        assert f'"{name}"' in source, f"template {name} is never used"


def test_message_content_is_data_not_template():
    values = {**FICTIONAL_VALUES, "case_reference": "{{ la_name }}{% for x in range(3) %}x{% endfor %}"}

    rendered = Renderer().render("professional_acknowledgement", values)

    assert "{{ la_name }}{% for x in range(3) %}" in rendered.body


def test_reply_headers_thread_and_mark_automatic():
    original = ParsedMessage(message_id="orig-1@health.example", references=["older@health.example"])

    reply = build_reply(original=original, sender="ccas@testshire.gov.example",
                        recipient="nurse@health.example", subject="CCAS: received", body="Thank you.",
                        loop_header="X-CCAS-Bot-Loop")

    assert reply["In-Reply-To"] == "<orig-1@health.example>"
    assert reply["References"] == "<older@health.example> <orig-1@health.example>"
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["X-Auto-Response-Suppress"] == "All"
    assert reply["X-CCAS-Bot-Loop"] == "ccas@testshire.gov.example"


def test_line_break_never_reaches_header():
    with pytest.raises(ValueError):
        build_reply(original=None, sender="ccas@testshire.gov.example", recipient="a@b.example",
                    subject="Hello\r\nBcc: victim@evil.example", body="x", loop_header="X-CCAS-Bot-Loop")


def test_forward_attaches_original_unchanged():
    raw = b"From: a@b.example\r\nSubject: about a child\r\nMessage-ID: <m1@b.example>\r\n\r\nBody text\r\n"

    forward = build_forward(original_raw=raw, original=None, sender="ccas@testshire.gov.example",
                            recipient="send@testshire.gov.example", subject="Fwd", body="Cover note",
                            loop_header="X-CCAS-Bot-Loop")

    parsed = email.message_from_bytes(forward.as_bytes(), policy=email.policy.default)
    parts = [part for part in parsed.walk() if part.get_content_type() == "message/rfc822"]
    assert len(parts) == 1
    assert parts[0].get_content()["Message-ID"] == "<m1@b.example>"


def test_template_folder_holds_only_text_templates():
    assert all(path.name.endswith(".txt.j2") for path in TEMPLATES.iterdir())


def test_message_id_line_break_dropped():
    original = ParsedMessage(message_id="h03\r\nBcc: x@evil.example\r\n@school.example",
                             references=["ok-1@school.example", "bad\nTo: y@evil.example"])

    reply = build_reply(original=original, sender="ccas@testshire.gov.example",
                        recipient="teacher@school.example", subject="CCAS: received", body="Thank you.",
                        loop_header="X-CCAS-Bot-Loop")

    raw = reply.as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Bcc"] is None
    assert parsed.get_all("To") == ["teacher@school.example"]
    assert parsed["In-Reply-To"] is None
    assert b"evil.example" not in raw


def test_message_id_encoded_word_dropped():
    original = ParsedMessage(message_id="p1=?utf-8?q?=0D=0ABcc:_x@evil.example?=@school.example")

    reply = build_reply(original=original, sender="ccas@testshire.gov.example",
                        recipient="teacher@school.example", subject="CCAS: received", body="Thank you.",
                        loop_header="X-CCAS-Bot-Loop")

    parsed = email.message_from_bytes(reply.as_bytes(), policy=email.policy.default)
    assert parsed["Bcc"] is None
    assert "evil.example" not in str(parsed["In-Reply-To"] or "")


@pytest.mark.parametrize("message_id", ["h17(comment)\"q\",@school.example", "\u00e9t\u00e9@school.example",
                                        "x" * 5000 + "@school.example", "a\u2028b@school.example"])
def test_malformed_message_id_left_out_of_threading(message_id):
    reply = build_reply(original=ParsedMessage(message_id=message_id), sender="ccas@testshire.gov.example",
                        recipient="teacher@school.example", subject="CCAS: received", body="Thank you.",
                        loop_header="X-CCAS-Bot-Loop")

    assert reply["In-Reply-To"] is None
