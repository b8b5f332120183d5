"""Turning a routing Decision into outgoing mail, rendered from the reply templates."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from bot.labels import risk_label
from replies.compose import build_forward, build_reply
from store.records import PlannedMail

if TYPE_CHECKING:
    from bot.pipeline import Context, Triage

MARKING = re.compile(r"\bOFFICIAL[\s_-]*SENSITIVE\b|\[\s*OFFICIAL\s*\]|\bOFFICIAL\b", re.I)
IHCP_NAME = re.compile(r"ihcp|health\s*care\s*plan|healthcare[\s_-]*plan", re.I)
EHA_NAME = re.compile(r"\beha\b|early[\s_-]*help", re.I)
# Hex digits of the message's SHA-256 that make its reference.
REFERENCE_LENGTH = 12


def protective_marking(subject: str) -> str:
    """Return the protective marking in an incoming subject, spelt the standard way, or ''."""
    match = MARKING.search(subject)
    if not match:
        return ""
    return "OFFICIAL-SENSITIVE" if "SENSITIVE" in match.group(0).upper() else "OFFICIAL"


def message_reference(sha256: str) -> str:
    """Return the short reference the alert, the queue and the message page show for a message."""
    return sha256[:REFERENCE_LENGTH]


def message_url(base_url: str, sha256: str) -> str:
    """Return the web app's queue filtered to one message, or '' when web.base_url is not set.

    The alert is composed before the message is stored, so its page number is not known yet
    and the link finds the message by its reference instead.
    """
    if not base_url:
        return ""
    return f"{base_url.rstrip('/')}/queue?{urlencode({'reference': message_reference(sha256)})}"


def missing_documents(triage: Triage) -> list[str]:
    names = [f"{a.filename} {a.kind}" for a in triage.message.attachments if not a.inline]
    wanted = []
    if not any(IHCP_NAME.search(name) or "ihcp" in name for name in names):
        wanted.append("the individual healthcare plan (IHCP), if the child has one")
    if not any(EHA_NAME.search(name) or " eha" in name for name in names):
        wanted.append("the early help assessment (EHA), if one has been completed")
    return wanted


def forward_reasons(triage: Triage) -> list[str]:
    """Say in words why a message goes to SEND, for the cover note."""
    reasons = []
    if "ehcp:from_register" in triage.reasons:
        reasons.append("the case register shows the SEND team leads this case")
    if triage.ehcp == "draft_decision":
        reasons.append("the message says a decision to issue a draft EHCP has been made")
    elif triage.ehcp == "has_ehcp":
        reasons.append("the message says the child has an EHCP")
    elif triage.ehcp == "assessment":
        reasons.append("an EHC needs assessment is under way and the policy sends these to SEND")
    return reasons or ["the message was classified as an EHCP case"]


def compose_mail(triage: Triage, context: Context) -> list[PlannedMail]:
    """Render the mail a decision calls for. Automatic mail never gets a reply."""
    decision = triage.decision
    config = context.config
    mail: list[PlannedMail] = []
    case_reference = triage.match.case_id or getattr(triage, "new_case_id", None)
    marking = protective_marking(triage.message.subject)
    if not marking and case_reference:
        marking = config.routing.default_protective_marking
    base = {
        "la_name": config.council.la_name,
        "case_reference": case_reference,
        "safeguarding_contact": config.council.safeguarding_contact,
        "portal_url": config.council.portal_url,
        "send_inbox": config.council.send_inbox,
        "marking_prefix": f"{marking} " if marking else "",
        "urgent": triage.urgent,
        "urgent_reasons": [risk_label(code) for code in triage.urgent_reasons],
        "message_reference": message_reference(triage.sha256),
        "message_url": message_url(config.web.base_url, triage.sha256),
    }

    if decision.alert:
        for recipient in config.council.duty_coordinators:
            mail.append(_reply(triage, context, "duty_urgent_alert", recipient, base, thread=False))

    if decision.forward_to_send:
        context_send = {**base, "forward_reasons": forward_reasons(triage)}
        rendered = context.renderer.render("send_team_forward", context_send)
        message = build_forward(original_raw=triage.raw, original=triage.message,
                                sender=config.council.ccas_inbox, recipient=config.council.send_inbox,
                                subject=rendered.subject, body=rendered.body,
                                loop_header=config.sending.loop_header)
        mail.append(_planned("forward_to_send", config.council.send_inbox, message))

    if decision.tell_lead_professional and case_reference:
        case = context.store.get_case(case_reference)
        lead = case.lead_email if case is not None else ""
        if lead and lead != triage.sender_email:
            mail.append(_reply(triage, context, "lead_professional_parent_notice", lead, base, thread=False))

    if decision.acknowledge and _may_answer(triage, context) and not _braked(triage, context, decision.acknowledge):
        context_ack = {**base,
                       "on_agenda": decision.agenda in ("new_referrals", "existing_placements"),
                       "missing_documents": missing_documents(triage)
                       if triage.classification.category == "support_request" else []}
        if decision.acknowledge == "personal_acknowledgement":
            context_ack["case_reference"] = None
        mail.append(_reply(triage, context, decision.acknowledge, triage.sender_email, context_ack, thread=True))
    return mail


# Local parts of addresses that never read replies: "noreply", "no-reply+bounce",
# "noreply.notifications", "do-not-reply", "mailer-daemon", "postmaster", "bounces".
NO_REPLY_LOCAL_PART = re.compile(r"(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|mailer[-_.]?daemon|postmaster|bounces?)(?:$|[-_.+])",
                                 re.I)

# An address the bot will reply to: ASCII addr-spec without spaces or control characters.
# Internationalised addresses (SMTPUTF8) go to a person instead.
REPLYABLE_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")


def _may_answer(triage: Triage, context: Context) -> bool:
    # Never answer automation, bulk mail, the bot's own mail, or the SEND team.
    if triage.automation or triage.bulk:
        return False
    if not REPLYABLE_ADDRESS.fullmatch(triage.sender_email):
        triage.decision.review("address_not_replyable")
        return False
    if triage.sender_email in (context.config.council.ccas_inbox.lower(), context.config.council.send_inbox.lower()):
        return False
    local_part = triage.sender_email.partition("@")[0]
    return not NO_REPLY_LOCAL_PART.match(local_part)


def _braked(triage: Triage, context: Context, purpose: str) -> bool:
    """Apply the brakes: one acknowledgement of a kind per sender per case in the grace
    period, and a cap on mail about one case per hour."""
    bot = context.config.bot
    case_id = triage.match.case_id
    if case_id is None:
        return False
    now = triage.now
    grace_start = now - timedelta(hours=bot.acknowledgement_grace_hours)
    if context.store.recent_mail_count(since=grace_start, case_id=case_id, recipient=triage.sender_email,
                                       purpose=purpose):
        triage.reasons.append("brake:acknowledged_recently")
        return True
    if context.store.recent_mail_count(since=now - timedelta(hours=1), case_id=case_id) >= bot.max_mail_per_case_per_hour:
        triage.reasons.append("brake:case_mail_cap")
        return True
    return False


def _reply(triage: Triage, context: Context, template: str, recipient: str, values: dict,
           thread: bool) -> PlannedMail:
    rendered = context.renderer.render(template, values)
    message = build_reply(original=triage.message if thread else None,
                          sender=context.config.council.ccas_inbox, recipient=recipient,
                          subject=rendered.subject, body=rendered.body,
                          loop_header=context.config.sending.loop_header,
                          auto_submitted="auto-replied" if thread else "auto-generated")
    return _planned(template, recipient, message)


def _planned(purpose: str, recipient: str, message) -> PlannedMail:
    return PlannedMail(purpose=purpose, recipient=recipient,
                       out_message_id=message["Message-ID"].strip().strip("<>"),
                       raw=message.as_bytes())
