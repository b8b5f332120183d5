"""The triage pipeline: one ordered list of steps with one contract.

Every step is `step(triage, context) -> Verdict`. A step reads what earlier steps
recorded on the Triage, records its own findings and reason codes, and returns
CONTINUE or STOP. Steps only decide; the intake loop does the writing, sending and
moving after the pipeline has finished, so the same pipeline serves polling, eval
and backfill.

A step raises RemoteError when a remote system failed (the message is retried) and
MessageError when the message itself cannot be read (a person looks at it). Any
other exception is a bug: the message goes to a person with the step's name.
"""

from __future__ import annotations

import enum
import hashlib
import logging
from email.parser import BytesHeaderParser
from email.policy import compat32
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from email.utils import parsedate_to_datetime

from bot.config import Config
from bot.errors import MessageError, RemoteError
from bot.matching import MatchInput, MatchResult, match_case
from bot.routing import Decision, decide_route
from parsers.attachments import AttachmentLimits
from parsers.automation import detect_automation, detect_secure_notice, is_bulk
from parsers.classify import AUTH_FAILED, Classification, ClassifyInput, classify
from parsers.errors import UnreadableMessage
from parsers.extract import extract_child
from parsers.message import ParsedMessage
from parsers.mime import parse_message
from parsers.nlp import category_scores, classifier_text
from parsers.safeguarding import screen_for_risk
from parsers.schools import SchoolIndex
from replies.render import Renderer
from store.records import NewCase, PlannedMail, Store

log = logging.getLogger(__name__)


class Verdict(enum.Enum):
    CONTINUE = "continue"
    STOP = "stop"


@dataclass
class Context:
    """The inputs every step may read: configuration, store, registers and the date."""

    config: Config
    store: Store
    schools: SchoolIndex
    renderer: Renderer
    today: date
    # When true the clock follows each message's Date header, so eval replays an inbox
    # as if the messages had arrived over weeks, not in one second.
    replay_clock: bool = False


@dataclass
class Triage:
    """The working record of one message, filled in step by step."""

    raw: bytes
    message_id: str = ""
    message_id_synthesised: bool = False
    sha256: str = ""
    message: ParsedMessage | None = None
    reasons: list[str] = field(default_factory=list)
    automation: str | None = None
    bulk: bool = False
    secure: bool = False
    urgent: bool = False
    urgent_reasons: list[str] = field(default_factory=list)
    child: object | None = None
    sender_email: str = ""
    sender_roles: list[str] = field(default_factory=list)
    sender_is_panel_member: bool = False
    sender_is_send_team: bool = False
    thread_ids: list[str] = field(default_factory=list)
    match: MatchResult = field(default_factory=MatchResult)
    case_ehcp: str | None = None
    case_status: str | None = None
    case_reviewed: bool = False
    ehcp: str | None = None
    bounced_out_ids: list[str] = field(default_factory=list)
    replies_to_bot: bool = False
    classification: Classification | None = None
    decision: Decision | None = None
    new_case_id: str | None = None
    new_case: NewCase | None = None
    mail: list[PlannedMail] = field(default_factory=list)
    outcome: str | None = None
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def stop(self, outcome: str, reason: str) -> Verdict:
        self.outcome = outcome
        self.reasons.append(reason)
        return Verdict.STOP


def read_message_id(raw: bytes) -> str | None:
    """Read the Message-ID from the header block alone, without decoding the body."""
    # The header parser still splits the whole body into lines, so it gets only the
    # bytes up to the first empty line.
    ends = [index for index in (raw.find(b"\n\n"), raw.find(b"\r\n\r\n")) if index >= 0]
    block = raw[:min(ends) + 2] if ends else raw
    try:
        headers = BytesHeaderParser(policy=compat32).parsebytes(block)
        value = str(headers.get("Message-ID", "") or "")
    except Exception:  # a header block that cannot be read has no usable Message-ID
        return None
    # Raw 8-bit bytes arrive as surrogate escapes, which the store cannot encode.
    value = " ".join(value.encode("utf-8", "surrogateescape").decode("utf-8", "replace").split())
    if "<" in value and ">" in value:
        value = value[value.index("<") + 1:value.rindex(">")]
    return value.strip()[:900] or None


def identify_raw(raw: bytes) -> tuple[str, bool, str]:
    """Return the message identity used for de-duplication: see identify()."""
    return identify(raw, read_message_id(raw))


def identify(raw: bytes, header_message_id: str | None) -> tuple[str, bool, str]:
    """Return (Message-ID, whether it was made up, SHA-256 of the raw bytes).

    A message without a Message-ID gets one made from its hash, so the same bytes
    always get the same identity.
    """
    digest = hashlib.sha256(raw).hexdigest()
    if header_message_id:
        return header_message_id, False, digest
    return f"sha256-{digest[:32]}@ccas-bot.invalid", True, digest


def step_parse(triage: Triage, context: Context) -> Verdict:
    if len(triage.raw) > context.config.bot.max_message_bytes:
        raise MessageError("too_large")
    try:
        triage.message = parse_message(triage.raw, attachment_limits=attachment_limits(context.config))
    except UnreadableMessage as error:
        raise MessageError(f"unreadable:{error.reason}") from None

    message = triage.message
    if context.replay_clock and message.date:
        triage.now = _message_time(message.date, triage.now)
    triage.sender_email = message.sender.email if message.sender else ""
    triage.thread_ids = [*message.in_reply_to, *reversed(message.references)]
    triage.reasons.extend(f"defect:{code}" for code in message.defects[:5])
    triage.reasons.extend(message.attachment_notes)
    if not triage.sender_email:
        triage.reasons.append("sender:missing")
    return Verdict.CONTINUE


def attachment_limits(config: Config) -> AttachmentLimits:
    """Return the [limits] section as the reader's AttachmentLimits."""
    limits = config.limits
    return AttachmentLimits(max_bytes=limits.attachment_max_bytes, max_pages=limits.attachment_max_pages,
                            time_budget_ms=limits.attachment_time_budget_ms)


def _message_time(header: str, fallback: datetime) -> datetime:
    try:
        value = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return fallback
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def step_screen_automation(triage: Triage, context: Context) -> Verdict:
    message = triage.message
    loop_header = context.config.sending.loop_header
    if message.header(loop_header):
        triage.automation = "auto_reply"
        triage.reasons.append("automation:own_loop_header")
    else:
        verdict = detect_automation(message)
        triage.automation = verdict.kind
        triage.reasons.extend(verdict.reasons)

    bulk_reasons = is_bulk(message)
    triage.bulk = bool(bulk_reasons) and triage.automation is None
    if triage.bulk:
        triage.reasons.extend(bulk_reasons)

    secure_reasons = detect_secure_notice(message)
    triage.secure = bool(secure_reasons) and triage.automation is None
    if triage.secure:
        triage.reasons.extend(secure_reasons)

    if triage.automation == "bounce":
        # A bounce is threaded by the headers of the message it returns.
        returned = message.returned_headers.get("message-id", [])
        triage.thread_ids = [value.strip().strip("<>") for value in returned] + triage.thread_ids
    return Verdict.CONTINUE


def step_screen_safeguarding(triage: Triage, context: Context) -> Verdict:
    # Machines repeat boilerplate ("if a child is at risk, call ..."); only people signal risk.
    if triage.automation or triage.bulk:
        return Verdict.CONTINUE
    message = triage.message
    text = "\n".join([message.subject, message.new_text or message.body,
                      getattr(message, "forwarded_text", "")])
    triage.urgent_reasons = screen_for_risk(text)
    triage.urgent = bool(triage.urgent_reasons)
    triage.reasons.extend(triage.urgent_reasons)
    return Verdict.CONTINUE


def step_sender(triage: Triage, context: Context) -> Verdict:
    council = context.config.council
    domain = triage.sender_email.rpartition("@")[2]
    triage.sender_roles = context.config.trusted_domains.roles_of(domain) if domain else []
    triage.sender_is_panel_member = triage.sender_email in council.panel_members
    triage.sender_is_send_team = triage.sender_email == council.send_inbox.lower()
    triage.reasons.append("sender:" + ("+".join(triage.sender_roles) or "untrusted"))
    if triage.sender_is_panel_member:
        triage.reasons.append("sender:panel_member")

    authentication = " ".join(triage.message.headers.get("authentication-results", []))
    if AUTH_FAILED.search(authentication):
        triage.reasons.append("sender:authentication_failed")
    return Verdict.CONTINUE


def step_extract(triage: Triage, context: Context) -> Verdict:
    if triage.automation or triage.bulk or triage.secure:
        return Verdict.CONTINUE
    message = triage.message
    forwarded = getattr(message, "forwarded_text", "")
    text = message.body if not forwarded else f"{message.body}\n\n{forwarded}"
    new_text = message.new_text if not forwarded else f"{message.new_text}\n\n{forwarded}"
    domain = triage.sender_email.rpartition("@")[2]
    triage.child = extract_child(
        message.subject, text, domain, context.schools, context.today,
        new_text=new_text or None,
        sender_name=message.sender.name if message.sender else "",
        attachment_texts=[a.text for a in message.attachments if a.text],
    )
    for key, code in triage.child.evidence.items():
        triage.reasons.append(f"extract:{key}:{_evidence_kind(code)}")
    return Verdict.CONTINUE


def _evidence_kind(code: str) -> str:
    """Keep the kind of evidence ("labelled", "keyword") and where it was found, and drop
    any words copied from the message ("keyword:anxiety"): reason codes reach the logs."""
    parts = code.split(":")
    kind = parts[0]
    if parts[-1] in ("history", "attachment") and len(parts) > 1:
        kind += ":" + parts[-1]
    return kind


def step_match(triage: Triage, context: Context) -> Verdict:
    # An auto-reply never changes a case, so it is not linked to one; a bounce is,
    # through the headers of the message it returns.
    if triage.secure or triage.bulk or triage.automation == "auto_reply":
        return Verdict.CONTINUE
    child = triage.child
    message = triage.message
    facts = MatchInput(
        thread_ids=triage.thread_ids,
        text=f"{message.subject}\n{message.new_text or message.body}",
        sender_email=triage.sender_email,
        sender_trusted=bool(triage.sender_roles),
        first_name=getattr(child, "first_name", None),
        last_name=getattr(child, "last_name", None),
        last_initial=getattr(child, "last_initial", None),
        dob=getattr(child, "dob", None),
        upn=getattr(child, "upn", None),
        upn_valid=bool(getattr(child, "upn_valid", False)),
        nhs_number=getattr(child, "nhs_number", None),
        school_urn=getattr(child, "school_urn", None),
        first_initial=getattr(child, "first_initial", None),
        year_group=getattr(child, "year_group", None),
        message_date=_message_time(message.date or "", datetime.combine(
            context.today, datetime.min.time(), timezone.utc)).date(),
        sender_roles=list(triage.sender_roles),
        returned_from=" ".join(message.returned_headers.get("from", [])),
        returned_subject=" ".join(message.returned_headers.get("subject", [])),
        council_inbox=context.config.council.ccas_inbox,
    )
    if getattr(child, "children_count", 0) >= 2 and not triage.automation:
        triage.match = MatchResult(method="ambiguous", reasons=["match:several_children"])
    else:
        triage.match = match_case(facts, context.store)
    triage.reasons.extend(triage.match.reasons)

    triage.replies_to_bot = context.store.sent_by_bot(triage.thread_ids)
    if triage.replies_to_bot:
        triage.reasons.append("thread:replies_to_bot")
        if triage.automation == "bounce":
            triage.bounced_out_ids = list(triage.thread_ids)
            triage.reasons.append("bounce:own_mail_failed")
    if triage.match.case_id:
        case = context.store.get_case(triage.match.case_id)
        if case is not None:
            triage.case_ehcp = case.ehcp
            triage.case_status = case.status
            triage.case_reviewed = case.last_reviewed is not None
    return Verdict.CONTINUE


def step_classify(triage: Triage, context: Context) -> Verdict:
    message = triage.message
    child = triage.child
    ehcp = getattr(child, "ehcp", None)
    if triage.case_status == "send" or triage.case_ehcp in ("has_ehcp", "draft_decision"):
        # SEND leads a case the register already gives to them, mentioned or not.
        ehcp = triage.case_ehcp if triage.case_ehcp in ("has_ehcp", "draft_decision") else "has_ehcp"
        triage.reasons.append("ehcp:from_register")
    triage.ehcp = ehcp
    facts = ClassifyInput(
        subject=message.subject,
        new_text=message.new_text or message.body,
        full_text=message.body,
        automation=triage.automation,
        bulk=triage.bulk,
        secure=triage.secure,
        auth_failed="sender:authentication_failed" in triage.reasons,
        sender_roles=triage.sender_roles,
        sender_is_panel_member=triage.sender_is_panel_member,
        sender_is_send_team=triage.sender_is_send_team,
        has_child=_names_a_child(child),
        ehcp=ehcp,
        case_matched=triage.match.case_id is not None,
        in_thread=bool(triage.thread_ids),
        case_status=triage.case_status,
        replies_to_bot=triage.replies_to_bot,
        has_dob=_stated_in_new_text(child, "dob"),
        sender_name=message.sender.name if message.sender else "",
    )
    triage.classification = _weigh_with_textcat(classify(facts), message)
    triage.reasons.extend(triage.classification.reasons)
    return Verdict.CONTINUE


# Rules that fire without a decisive cue; the trained classifier may overrule them.
_WEAK_RULES = {"category:fallback", "category:school_other", "category:personal_no_child"}
TEXTCAT_CATEGORIES = {"support_request", "school_notification", "change_of_circumstances", "query",
                      "ehcp", "action_update", "parent_contact", "unrelated"}


def _weigh_with_textcat(result: Classification, message: ParsedMessage) -> Classification:
    """Combine the rules with the trained text classifier.

    The rules decide, because they read the register, the sender and the thread, which the
    classifier cannot see. The classifier's view moves the confidence: agreement raises it,
    and a confident disagreement lowers it so that a coordinator checks the category. A
    rule that fired without a decisive cue gives way to a confident classifier.
    """
    if result.category not in TEXTCAT_CATEGORIES:
        return result
    scores = category_scores(classifier_text(message.subject, message.new_text or message.body))
    top, top_score = max(scores.items(), key=lambda item: item[1])
    reasons = [*result.reasons, f"textcat:{top}:{round(top_score * 100)}"]

    if top == result.category:
        return Classification(result.category, min(1.0, result.confidence + 0.1), reasons)
    if any(reason in _WEAK_RULES for reason in result.reasons) and top_score >= 0.6:
        return Classification(top, top_score * 0.8, [*reasons, "category:textcat_overrules_weak_rule"])
    if top_score >= 0.8:
        return Classification(result.category, max(0.0, result.confidence - 0.15), reasons)
    return Classification(result.category, result.confidence, reasons)


def _stated_in_new_text(child, field_name: str) -> bool:
    """Return whether the child's detail was written in the new words, not quoted history."""
    if child is None or getattr(child, field_name, None) is None:
        return False
    return not child.evidence.get(field_name, "").endswith(":history")


def _names_a_child(child) -> bool:
    if child is None:
        return False
    if child.first_name or child.last_name:
        return True
    return bool(child.first_initial and child.last_name)


def step_route(triage: Triage, context: Context) -> Verdict:
    triage.decision = decide_route(triage, context)
    triage.reasons.extend(triage.decision.reasons)
    child = triage.child
    if triage.decision.open_case and getattr(child, "first_name", None):
        triage.new_case_id = context.store.reserve_case_id(context.today.year)
        triage.new_case = NewCase(
            first_name=child.first_name or "", last_name=child.last_name or "", dob=child.dob,
            upn=(child.upn or "") if child.upn_valid else "", nhs_number=child.nhs_number or "",
            school_urn=child.school_urn or "", ehcp=child.ehcp or "none",
            status="send" if triage.decision.forward_to_send else "open",
            lead_email=triage.sender_email)
        triage.reasons.append("case:opened")
    return Verdict.CONTINUE


def step_compose(triage: Triage, context: Context) -> Verdict:
    from bot.compose import compose_mail

    triage.mail = compose_mail(triage, context)
    triage.outcome = "needs_person" if triage.decision.needs_person else "handled"
    if triage.decision.needs_person and context.config.routing.hold_replies_for_review:
        # A person decides before anything goes out, except the urgent alert, which must not wait.
        for mail in triage.mail:
            mail.held = mail.purpose != "duty_urgent_alert"
    return Verdict.CONTINUE


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Triage, Context], Verdict]


STEPS: list[Step] = [
    Step("parse", step_parse),
    Step("screen_automation", step_screen_automation),
    Step("screen_safeguarding", step_screen_safeguarding),
    Step("sender", step_sender),
    Step("extract", step_extract),
    Step("match", step_match),
    Step("classify", step_classify),
    Step("route", step_route),
    Step("compose", step_compose),
]


def run_pipeline(raw: bytes, context: Context, identity: tuple[str, bool, str] | None = None) -> Triage:
    """Run every step over one message; raises RemoteError only (retry later).

    `identity` is identify_raw(raw) when the caller has already computed it.
    """
    triage = Triage(raw=raw)
    triage.message_id, triage.message_id_synthesised, triage.sha256 = identity or identify_raw(raw)
    for step in STEPS:
        try:
            verdict = step.run(triage, context)
        except RemoteError:
            raise
        except MessageError as error:
            triage.mail = []
            return _stopped(triage, "needs_person", f"message:{error.reason}", quarantine=True)
        except Exception:
            log.exception("pipeline step %s failed (bug); message %s goes to a person",
                          step.name, triage.sha256[:12])
            triage.mail = []
            return _stopped(triage, "needs_person", f"bug:{step.name}", quarantine=True)
        if verdict is Verdict.STOP:
            break
    return triage


def _stopped(triage: Triage, outcome: str, reason: str, quarantine: bool) -> Triage:
    triage.stop(outcome, reason)
    if quarantine:
        triage.reasons.append("mailbox:quarantine")
    return triage
