"""Matching a message to a case: thread, case reference, identifiers, then names.

Precision first: an automatic link must be right, so anything short of agreement on
two independent details goes to a person with the candidates.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from store.models import Case
from store.records import Store

CASE_REFERENCE = re.compile(r"\bCCAS-\d{4}-\d{4,}\b", re.I)


@dataclass
class MatchResult:
    case_id: str | None = None
    method: str = "none"
    candidates: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


@dataclass
class MatchInput:
    thread_ids: list[str]
    text: str
    sender_email: str
    sender_trusted: bool
    first_name: str | None
    last_name: str | None
    last_initial: str | None
    dob: object | None
    upn: str | None
    upn_valid: bool
    nhs_number: str | None
    school_urn: str | None


def normalise_name(name: str | None) -> str:
    if not name:
        return ""
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(ch for ch in decomposed.lower() if ch.isalpha())


def match_case(facts: MatchInput, store: Store) -> MatchResult:
    for matcher in (_by_thread, _by_reference, _by_identifier, _by_details):
        result = matcher(facts, store)
        if result is not None:
            return result
    return MatchResult(reasons=["match:none"])


def _by_thread(facts: MatchInput, store: Store) -> MatchResult | None:
    case_id, own = store.find_case_by_message_ids(facts.thread_ids)
    if case_id is None:
        return None
    reason = "match:thread_own_mail" if own else "match:thread"
    return MatchResult(case_id=case_id, method="thread", reasons=[reason])


def _by_reference(facts: MatchInput, store: Store) -> MatchResult | None:
    references = {ref.upper() for ref in CASE_REFERENCE.findall(facts.text)}
    if len(references) != 1:
        return None
    case = store.get_case(references.pop())
    if case is None:
        return MatchResult(method="ambiguous", reasons=["match:reference_unknown"])

    # Anyone can type a reference, so it links only for a known party or trusted sender.
    if facts.sender_email == case.lead_email.lower() or facts.sender_trusted:
        return MatchResult(case_id=case.id, method="reference", reasons=["match:reference"])
    return MatchResult(method="ambiguous", candidates=[case.id], reasons=["match:reference_untrusted_sender"])


def _by_identifier(facts: MatchInput, store: Store) -> MatchResult | None:
    upn = facts.upn if facts.upn and facts.upn_valid else ""
    if not upn and not facts.nhs_number:
        return None
    cases = store.find_cases(upn=upn, nhs_number=facts.nhs_number or "")
    agreeing = [case for case in cases if _names_agree(facts, case) or (facts.dob and case.dob == facts.dob)]
    if len(agreeing) == 1:
        return MatchResult(case_id=agreeing[0].id, method="identifier", reasons=["match:identifier_agrees"])
    if cases:
        return MatchResult(method="ambiguous", candidates=[case.id for case in cases],
                           reasons=["match:identifier_disagrees"])
    return None


def _by_details(facts: MatchInput, store: Store) -> MatchResult | None:
    if not facts.first_name:
        return None
    last_names = [facts.last_name] if facts.last_name else []
    cases = store.find_cases(dob=facts.dob, last_names=last_names) if (facts.dob or last_names) else []
    named = [case for case in cases if _names_agree(facts, case)]
    if facts.dob:
        # The same name with a different date of birth is a different child.
        named = [case for case in named if case.dob is None or case.dob == facts.dob]
    if not named:
        return None

    if len(named) == 1:
        case = named[0]
        if facts.dob and case.dob == facts.dob and facts.last_name:
            return MatchResult(case_id=case.id, method="name_dob", reasons=["match:name_and_dob"])
        if facts.last_name and facts.school_urn and case.school_urn == facts.school_urn:
            return MatchResult(case_id=case.id, method="name_school", reasons=["match:name_and_school"])
        return MatchResult(method="ambiguous", candidates=[case.id], reasons=["match:name_only"])
    return MatchResult(method="ambiguous", candidates=[case.id for case in named],
                       reasons=["match:several_candidates"])


def _names_agree(facts: MatchInput, case: Case) -> bool:
    first = normalise_name(facts.first_name)
    first_names = {normalise_name(case.first_name), normalise_name(case.known_as)} - {""}
    if first not in first_names:
        return False
    if facts.last_name:
        return normalise_name(facts.last_name) == normalise_name(case.last_name)
    if facts.last_initial:
        return normalise_name(case.last_name).startswith(facts.last_initial.lower())
    return True
