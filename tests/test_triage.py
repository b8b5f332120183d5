"""Triage decisions a coordinator would check: risk, category, routing and the brakes."""

from __future__ import annotations

import dataclasses
from datetime import date
from email.message import EmailMessage
from email.utils import make_msgid

import pytest

import mailfactory
from bot.app import build_context, open_store
from bot.config import config_from_mapping
from bot.intake import Intake
from bot.evaluate import CorpusMailbox
from bot.pipeline import run_pipeline
from parsers.safeguarding import screen_for_risk
from replies.send import RecordingSender


@pytest.fixture
def context(tmp_path):
    config = config_from_mapping({**mailfactory.council_settings(),
                                  "store": {"url": f"sqlite:///{tmp_path / 's.sqlite3'}"}}, tmp_path)
    store = open_store(config)
    return build_context(config, store, today=date(2026, 11, 30))


def message(sender: str, subject: str, body: str, date_header: str = "Mon, 30 Nov 2026 09:00:00 +0000",
            in_reply_to: str | None = None) -> bytes:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = mailfactory.CCAS_INBOX
    mail["Subject"] = subject
    mail["Date"] = date_header
    mail["Message-ID"] = make_msgid(domain="test.example")
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
    mail.set_content(body)
    return mail.as_bytes()


HEALTH = f"Dr Nia Gwent <nia.gwent@{mailfactory.HEALTH_DOMAIN}>"
SCHOOL = f"Office <office@{mailfactory.SCHOOL_DOMAIN}>"


@pytest.mark.parametrize("text", [
    "On Thursday she told her tutor that her stepdad grabbed her by the neck and she is scared to go home.",
    "Tyler went out on Sunday night and hasn't come home since; police have been told.",
    "Over the weekend he said he wanted to die and tried to climb out of his bedroom window.",
    "She disclosed that she has been self-harming this week.",
])
def test_risk_sentence_flagged(text):
    assert screen_for_risk(text)


@pytest.mark.parametrize("text", [
    "There are no safeguarding concerns.",
    "She had a period of self-harm in 2023 which has not recurred.",
    "She is missing a lot of learning and mum is worried about SATs.",
    "It's not safe for her to walk to school along that road.",
    "Historic self-harm, no current concerns.",
])
def test_no_risk_signal(text):
    assert screen_for_risk(text) == []


def test_buried_risk_sentence_makes_update_urgent(context):
    raw = message(SCHOOL, "Weekly update - Poppy Larkspur",
                  "Attendance this week was 60%, up from 40%. She enjoyed art. On Tuesday she told her "
                  "form tutor that her mum's partner hit her and she does not feel safe at home. "
                  "Transport is fine. Next update next week.")

    triage = run_pipeline(raw, context)

    assert triage.urgent
    assert triage.decision.alert
    assert triage.outcome == "needs_person"
    assert mailfactory.DUTY in [mail.recipient for mail in triage.mail]


def test_risk_only_in_forwarded_part_is_urgent(context):
    raw = message(HEALTH, "FW: Poppy Larkspur",
                  "Hi CCAS, please see below and consider Poppy for support.\n\n"
                  "---------- Forwarded message ---------\nFrom: Dr Ames <ames@testhealth.nhs.example>\n"
                  "Subject: Poppy\n\nHer mother told me Poppy said she wanted to die last week.\n")

    assert run_pipeline(raw, context).urgent


def test_parent_on_school_address_is_parent_contact(context):
    raw = message(f"Laura Bracken <l.bracken@{mailfactory.SCHOOL_DOMAIN}>", "Rowan - please keep his case open",
                  "Hello, I'm writing as Rowan Bracken's mum - sorry to use my work email. His attendance "
                  "is better but things are fragile. Could the panel keep him on for one more review?")

    triage = run_pipeline(raw, context)

    assert triage.classification.category == "parent_contact"
    assert triage.mail == []
    assert triage.outcome == "needs_person"


def test_private_counsellor_on_webmail_is_support_request(context):
    raw = message("Jo Field <jofield.therapy@webmail.example>", "Rowan Bracken",
                  "Hello, I'm an independent counsellor and I have been seeing Rowan Bracken privately "
                  "since July. He has not been able to leave the house for school since September.")

    assert run_pipeline(raw, context).classification.category == "support_request"


def test_thank_you_note_gets_no_reply(context):
    raw = message(SCHOOL, "RE: Rowan Bracken", "Thanks for letting me know, I'll send updates to SEND from now on.\n")

    triage = run_pipeline(raw, context)

    assert triage.classification.category == "query"
    assert triage.mail == []
    assert triage.outcome == "handled"


def test_aob_request_goes_on_agenda_without_reply(context):
    raw = message(HEALTH, "AOB for Wednesday", "Could I have five minutes in AOB on Wednesday to explain the new pathway?")

    triage = run_pipeline(raw, context)

    assert triage.decision.agenda == "aob"
    assert triage.mail == []


def test_school_how_to_notify_answered_by_portal_template(context):
    raw = message(SCHOOL, "Pupils who can't attend",
                  "Could you tell me how we should let you know about pupils who can't come in because of "
                  "medical needs? Is there a form we need to fill in?")

    triage = run_pipeline(raw, context)

    assert [mail.purpose for mail in triage.mail] == ["school_portal_pointer"]
    assert triage.outcome == "handled"


def test_portal_access_problem_goes_to_person(context):
    raw = message(SCHOOL, "Portal",
                  "We have tried to log in to the portal but our account doesn't have the form. Who do we contact?")

    triage = run_pipeline(raw, context)

    assert triage.outcome == "needs_person"


def test_school_absence_notification_pointed_to_portal(context):
    raw = message(SCHOOL, "Absence - Ivy Marchbank Y3",
                  "Ivy Marchbank (Y3, DOB 02/05/2018) has been absent for eight days with flu and is "
                  "likely to be off for another week.")

    triage = run_pipeline(raw, context)

    assert triage.classification.category == "school_notification"
    assert [mail.purpose for mail in triage.mail] == ["school_portal_pointer"]


def test_auto_reply_not_linked_to_case(context):
    triage = run_pipeline(mailfactory.out_of_office().as_bytes(), context)

    assert triage.match.case_id is None
    assert triage.mail == []


def replay(context, raws: list[bytes], tmp_path):
    tmp_path.mkdir(parents=True, exist_ok=True)
    for index, raw in enumerate(raws):
        (tmp_path / f"{index:03d}.eml").write_bytes(raw)
    files = sorted(tmp_path.glob("*.eml"))
    replayed = dataclasses.replace(context, replay_clock=True)
    intake = Intake(CorpusMailbox(tmp_path, files), replayed, RecordingSender())
    return [intake.process_ref(ref) for ref in intake.mailbox.list_new(0)]


def test_follow_up_within_grace_period_not_acknowledged_again(context, tmp_path):
    first = message(HEALTH, "Referral - Poppy Larkspur",
                    "I am writing to refer Poppy Larkspur (DOB 14/02/2013) for support; anxiety, off since September.")
    follow_up = message(HEALTH, "Referral - Poppy Larkspur",
                        "I am writing to refer Poppy Larkspur (DOB 14/02/2013); here is the IHCP I forgot.",
                        date_header="Mon, 30 Nov 2026 09:20:00 +0000")

    results = replay(context, [first, follow_up], tmp_path)

    assert results[0].replies == ["nia.gwent@testhealth.nhs.example"]
    assert results[1].replies == []
    assert "brake:acknowledged_recently" in results[1].triage.reasons


def test_update_weeks_later_acknowledged_again(context, tmp_path):
    first = message(HEALTH, "Referral - Poppy Larkspur",
                    "I am writing to refer Poppy Larkspur (DOB 14/02/2013) for support; anxiety, off since September.")
    later = message(HEALTH, "Referral - Poppy Larkspur",
                    "I am writing to refer Poppy Larkspur (DOB 14/02/2013) again: an update on her support.",
                    date_header="Mon, 28 Dec 2026 09:20:00 +0000")

    results = replay(context, [first, later], tmp_path)

    assert results[1].replies == ["nia.gwent@testhealth.nhs.example"]


def test_parent_about_known_case_tells_lead_not_parent(context):
    context.store.upsert_cases([{"id": "CCAS-2026-0101", "first_name": "Rowan", "last_name": "Bracken",
                                 "dob": date(2013, 5, 2), "status": "open",
                                 "lead_email": "lead.worker@testchildren.org.example"}])
    raw = message("Laura Bracken <laura.bracken@webmail.example>", "Rowan Bracken",
                  "Hello, I'm Rowan Bracken's mum. Rowan (born 02/05/2013) still can't face school. "
                  "Nobody has called me back about the tutor.")

    triage = run_pipeline(raw, context)

    recipients = [mail.recipient for mail in triage.mail]
    assert triage.classification.category == "parent_contact"
    assert recipients == ["lead.worker@testchildren.org.example"]
    assert triage.mail[0].purpose == "lead_professional_parent_notice"
    assert b"tutor" not in triage.mail[0].raw
    assert triage.outcome == "needs_person"


def test_bounce_of_own_reply_marks_it_bounced(context, tmp_path):
    referral = message(HEALTH, "Referral - Poppy Larkspur",
                       "I am writing to refer Poppy Larkspur (DOB 14/02/2013) for support; anxiety, off since September.")
    first = replay(context, [referral], tmp_path / "first")[0]
    acknowledgement = context.store.outbox_for_message(first.stored.pk)[0]

    bounced = replay(context, [mailfactory.bounce(f"<{acknowledgement.out_message_id}>")], tmp_path / "second")[0]

    assert bounced.triage.classification.category == "bounce"
    assert bounced.stored.outcome == "needs_person"
    assert bounced.stored.case_id == first.stored.case_id
    assert bounced.replies == []
    assert context.store.outbox_for_message(first.stored.pk)[0].status == "bounced"


def test_non_ascii_sender_address_gets_person_not_reply(context):
    raw = ("From: Anne <\u00e4nne@brambleway.sch.example>\r\nTo: ccas@testshire.gov.example\r\n"
           "Subject: Absence - Ivy Marchbank\r\nMessage-ID: <n1@brambleway.sch.example>\r\n"
           "Date: Mon, 30 Nov 2026 09:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
           "Ivy Marchbank (Y3, DOB 02/05/2018) has been absent for eight days with flu.\r\n").encode()

    triage = run_pipeline(raw, context)

    assert [mail.purpose for mail in triage.mail if mail.purpose != "duty_urgent_alert"] == []
    assert triage.outcome == "needs_person"


@pytest.mark.parametrize("local_part", ["noreply", "no-reply+bounce", "noreply.notifications", "do-not-reply",
                                        "bounces"])
def test_no_reply_addresses_never_acknowledged(context, local_part):
    raw = message(f"Notices <{local_part}@testhealth.nhs.example>", "Referral - Poppy Larkspur",
                  "I am writing to refer Poppy Larkspur (DOB 14/02/2013) for support.")

    triage = run_pipeline(raw, context)

    assert [mail for mail in triage.mail if mail.recipient.startswith(local_part)] == []


def test_mail_from_own_inbox_opens_no_case(context):
    raw = message(mailfactory.CCAS_INBOX, "Referral - Poppy Larkspur",
                  "I am writing to refer Poppy Larkspur (DOB 14/02/2013) for support.")

    triage = run_pipeline(raw, context)

    assert triage.new_case_id is None
    assert triage.mail == []
    assert triage.outcome == "needs_person"


def test_unverified_sender_gets_no_case_details(context):
    mail = EmailMessage()
    mail["From"] = HEALTH
    mail["To"] = mailfactory.CCAS_INBOX
    mail["Subject"] = "Referral - Poppy Larkspur"
    mail["Message-ID"] = make_msgid(domain="test.example")
    mail["Authentication-Results"] = "mx.testshire.gov.example; spf=fail; dkim=fail; dmarc=fail"
    mail.set_content("I am writing to refer Poppy Larkspur (DOB 14/02/2013) for support.")

    triage = run_pipeline(mail.as_bytes(), context)

    purposes = [item.purpose for item in triage.mail]
    assert purposes == ["personal_acknowledgement"]
    assert b"CCAS-20" not in triage.mail[0].raw
    assert triage.outcome == "needs_person"
