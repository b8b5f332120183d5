"""Replies to a message that needs a person wait as drafts; the urgent alert never waits."""

from __future__ import annotations

import email
import email.policy
from datetime import date
from pathlib import Path

import mailfactory
from bot.app import build_context, build_mailbox, open_store
from bot.config import config_from_mapping
from bot.intake import Intake
from bot.report import print_poll
from parsers.extract import extract_child
from parsers.schools import SchoolIndex
from replies.send import RecordingSender
from store.triage import TriageStore

URGENT_BODY = ("Hello,\n\nI am referring Kai Brook (DOB 05/06/2012), Year 9. Kai told his teacher "
               "this morning that he wants to die.\n\nRegards,\nSam Okafor\nSocial worker\n")


def folder_config(tmp_path: Path, **routing):
    data = {
        **mailfactory.council_settings(),
        "store": {"url": "sqlite:///store.sqlite3"},
        "mailbox": {"backend": "folder", "folder": {
            "inbox_path": "inbox", "processed_path": "processed", "quarantine_path": "quarantine"}},
        "sending": {"backend": "folder", "outbox_path": "outbox"},
        "routing": routing,
    }
    (tmp_path / "inbox").mkdir(exist_ok=True)
    return config_from_mapping(data, base_dir=tmp_path)


def poll(config, sender: RecordingSender):
    store = open_store(config)
    return store, Intake(build_mailbox(config), build_context(config, store), sender).poll_once()


def urgent_referral():
    return mailfactory._base("Sam Okafor <sam.okafor@testchildren.org.example>", "Referral - Kai Brook", URGENT_BODY)


def recipients(sender: RecordingSender) -> list[str]:
    return [recipient for recipient, _raw in sender.sent]


def test_urgent_alert_sent_acknowledgement_held(tmp_path):
    config = folder_config(tmp_path)
    (tmp_path / "inbox" / "a.eml").write_bytes(urgent_referral().as_bytes())
    sender = RecordingSender()

    store, summary = poll(config, sender)

    assert summary.processed[0].stored.outcome == "needs_person"
    assert recipients(sender) == [mailfactory.DUTY]
    statuses = {item.purpose: item.status for item in store.outbox_for_message(summary.processed[0].stored.pk)}
    assert statuses == {"duty_urgent_alert": "sent", "professional_acknowledgement": "draft"}
    assert summary.processed[0].held_purposes == ["professional_acknowledgement"]


def test_held_reply_never_sent_by_later_polls(tmp_path):
    config = folder_config(tmp_path)
    (tmp_path / "inbox" / "a.eml").write_bytes(urgent_referral().as_bytes())
    sender = RecordingSender()
    poll(config, sender)

    poll(config, sender)
    poll(config, sender)

    assert recipients(sender) == [mailfactory.DUTY]


def test_approved_reply_sent_by_next_poll(tmp_path):
    config = folder_config(tmp_path)
    (tmp_path / "inbox" / "a.eml").write_bytes(urgent_referral().as_bytes())
    sender = RecordingSender()
    store, summary = poll(config, sender)
    draft = next(item for item in store.outbox_for_message(summary.processed[0].stored.pk) if item.status == "draft")

    TriageStore(store).approve_reply(draft.id, "coordinator@testshire.gov.example")
    poll(config, sender)

    assert recipients(sender) == [mailfactory.DUTY, "sam.okafor@testchildren.org.example"]


def test_handled_message_replies_not_held(tmp_path):
    config = folder_config(tmp_path)
    (tmp_path / "inbox" / "a.eml").write_bytes(mailfactory.referral().as_bytes())
    sender = RecordingSender()

    _store, summary = poll(config, sender)

    assert summary.processed[0].stored.outcome == "handled"
    assert recipients(sender) == ["nia.gwent@testhealth.nhs.example"]
    assert summary.processed[0].held_purposes == []


def test_switch_off_sends_replies_at_once(tmp_path):
    config = folder_config(tmp_path, hold_replies_for_review=False)
    (tmp_path / "inbox" / "a.eml").write_bytes(urgent_referral().as_bytes())
    sender = RecordingSender()

    _store, summary = poll(config, sender)

    assert sorted(recipients(sender)) == sorted([mailfactory.DUTY, "sam.okafor@testchildren.org.example"])
    assert summary.processed[0].held_purposes == []


def test_parent_notice_to_lead_held(tmp_path):
    config = folder_config(tmp_path)
    store = open_store(config)
    store.upsert_cases([{"id": "CCAS-2025-0037", "first_name": "Lily", "last_name": "Marsh",
                         "dob": date(2012, 5, 4), "status": "open", "lead_email": "lead@brambleway.sch.example"}])
    parent = mailfactory._base("Jo Marsh <jo.marsh@webmail.example>", "Lily Marsh",
                               "Hello,\n\nMy daughter Lily Marsh (DOB 04/05/2012) is still not well enough for "
                               "school. Can someone call me?\n\nJo\n")
    (tmp_path / "inbox" / "a.eml").write_bytes(parent.as_bytes())
    sender = RecordingSender()

    store, summary = poll(config, sender)

    processed = summary.processed[0]
    assert processed.stored.outcome == "needs_person"
    assert processed.held_purposes == ["lead_professional_parent_notice"]
    assert sender.sent == []


def test_poll_report_lists_held_replies(tmp_path, capsys):
    config = folder_config(tmp_path)
    (tmp_path / "inbox" / "a.eml").write_bytes(urgent_referral().as_bytes())
    _store, summary = poll(config, RecordingSender())

    print_poll(summary)

    output = capsys.readouterr().out
    assert "urgent alert to duty; held for approval: acknowledgement" in output
    assert "1 reply held as drafts for a coordinator to approve" in output


def test_held_reply_keeps_threading_headers(tmp_path):
    config = folder_config(tmp_path)
    incoming = urgent_referral()
    (tmp_path / "inbox" / "a.eml").write_bytes(incoming.as_bytes())
    store, summary = poll(config, RecordingSender())
    draft = next(item for item in store.outbox_for_message(summary.processed[0].stored.pk) if item.status == "draft")

    reply = email.message_from_bytes(draft.raw, policy=email.policy.default)

    # A long Message-ID folds the header onto a second line, which leaves a leading space.
    assert reply["In-Reply-To"].strip() == incoming["Message-ID"]


def test_extract_quotes_mark_each_value():
    details = extract_child(
        "Referral - Kai Brook", "I am referring Kai Brook (DOB 05/06/2012), Year 9 at Brambleway.\n"
        "His NHS number is 943 476 5919 and his GP knows about this referral.\n",
        "testchildren.org.example", SchoolIndex(), date(2026, 12, 1))

    marked = {name: quote["line"][quote["start"]:quote["end"]] for name, quote in details.quotes.items()}

    assert marked["first_name"] == "Kai"
    assert marked["last_name"] == "Brook"
    assert marked["dob"] == "05/06/2012"
    assert marked["year_group"] == "Year 9"
    assert marked["nhs_number"] == "943 476 5919"
    assert details.quotes["dob"]["region"] == "new"
