"""Matching a message to a case: thread, case reference, identifiers, then scoring.

Every message about a child must land in that child's case and no other, so an
automatic link needs agreement that leaves no doubt, and anything less goes to a
person with the ranked candidates (method "ambiguous"). The stages, in order:

1. thread: In-Reply-To or References name a stored message or one the bot sent,
   unless the message names a different child;
2. case reference ("CCAS-2026-0042"), accepted only from a party to that case or a
   trusted sender of the right role, because anyone can type a reference;
3. identifiers: a valid UPN or NHS number that agrees with the name or date of birth.
   A UPN alone never links, and one that fails its check letter only adds weight;
4. scoring of the candidates that share a blocking key (store/case_keys.py), with
   Fellegi-Sunter style weights over names, date of birth, school, year group and
   sender.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from email.utils import parseaddr

from parsers.names import compare_first_name, compare_surname, normalise_name
from store.case_keys import keys_for_query, swapped_day_month
from store.cases import CaseView, MatchLookup
from store.records import Store

CASE_REFERENCE = re.compile(r"\bCCAS-\d{4}-\d{4,}\b", re.I)

# Weights in bits, log2(m/u): m is the chance of the level for the right case, u for
# another case. They are estimates for one council's register, not fitted values.
FIRST_NAME_WEIGHTS = {"exact": 6.5, "nickname": 5.0, "fuzzy": 4.0, "initial": 2.0, "disagree": -6.0}
SURNAME_WEIGHTS = {"exact": 10.0, "part": 7.0, "fuzzy": 7.0, "initial": 2.5, "disagree": -7.0}
DOB_WEIGHTS = {"exact": 11.0, "swapped": 5.0, "typo": 4.0, "disagree": -10.0}
UPN_WEIGHTS = {"exact": 14.0, "typo": 3.0, "disagree": -8.0}
NHS_WEIGHTS = {"exact": 14.0, "disagree": -10.0}
SCHOOL_WEIGHTS = {"current": 4.0, "former": 2.5, "disagree": -2.0}
YEAR_GROUP_WEIGHTS = {"agree": 3.0, "disagree": -3.0}
SENDER_SCHOOL_WEIGHT = 2.0
SENDER_PARTY_WEIGHT = 6.0
SWAPPED_NAMES_PENALTY = 1.0

# An automatic link needs all of these; see _decide().
LINK_MIN_SCORE = 15.0
LINK_MIN_CORROBORATION = 4.0
LINK_MIN_MARGIN = 7.0
# A candidate below this, or one that a date of birth or identifier rules out, is
# not offered to a person: the message is about a new child.
CANDIDATE_MIN_SCORE = 8.0
MAX_CANDIDATES = 5
BLOCK_LIMIT = 40

# Sender roles whose trusted domain may link by a case reference for any case. A school
# may do so only for a case at that school.
REFERENCE_ROLES = {"health", "social_care", "la", "send"}


@dataclass
class Candidate:
    """A case that may be the message's child, with its weight and the reasons for it."""

    case_id: str
    score: float
    reasons: list[str] = field(default_factory=list)


@dataclass
class MatchResult:
    case_id: str | None = None
    # thread | reference | identifier | score | ambiguous | none
    method: str = "none"
    candidates: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    scored: list[Candidate] = field(default_factory=list)


@dataclass
class MatchInput:
    thread_ids: list[str]
    text: str
    sender_email: str
    sender_trusted: bool
    first_name: str | None
    last_name: str | None
    last_initial: str | None
    dob: date | None
    upn: str | None
    upn_valid: bool
    nhs_number: str | None
    school_urn: str | None
    first_initial: str | None = None
    year_group: int | None = None
    message_date: date | None = None
    sender_roles: list[str] = field(default_factory=list)
    # For a delivery report: the sender and subject of the message it returns, and the
    # panel inbox, so a reference in mail the panel itself sent can be trusted.
    returned_from: str = ""
    returned_subject: str = ""
    council_inbox: str = ""


@dataclass
class _Comparison:
    """One candidate compared field by field."""

    view: CaseView
    score: float = 0.0
    corroboration: float = 0.0
    levels: dict[str, str] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    def add(self, name: str, level: str, weight: float, corroborates: bool = False) -> None:
        self.levels[name] = level
        self.score += weight
        if corroborates and weight > 0:
            self.corroboration += weight
        self.reasons.append(f"{name}:{level}")

    @property
    def ruled_out(self) -> bool:
        """Whether a date of birth, an identifier or a first name shows this is another child."""
        return any(self.levels.get(name) == "disagree" for name in ("dob", "upn", "nhs", "first"))

    @property
    def names_conflict(self) -> bool:
        return "disagree" in (self.levels.get("first"), self.levels.get("last"))

    @property
    def names_identify(self) -> bool:
        """Whether the names alone point at a child: first and surname, or a first name and
        the school or sender to place it."""
        first, last = self.levels.get("first", "missing"), self.levels.get("last", "missing")
        if first not in ("missing", "disagree") and last not in ("missing", "disagree"):
            return True
        placed = self.levels.get("school") == "current" or self.levels.get("sender") == "party"
        return first in ("exact", "nickname", "fuzzy") and placed


def match_case(facts: MatchInput, store: Store) -> MatchResult:
    """Match one message to a case, to a new child, or to a person with candidates."""
    thread_case, own = store.find_case_by_message_ids(facts.thread_ids) if facts.thread_ids else (None, False)
    references = _references(facts)
    upn = (facts.upn or "").upper() if facts.upn_valid else ""
    school_urns = [facts.school_urn] if facts.school_urn else []
    keys = keys_for_query(first_name=facts.first_name, last_name=facts.last_name,
                          first_initial=facts.first_initial, last_initial=facts.last_initial,
                          dob=facts.dob, upn=upn, nhs_number=facts.nhs_number, school_urns=school_urns)

    def keys_for_schools(urns: list[str]) -> set[str]:
        # A school writing "Ava" about its own pupil: first name with the sender's schools.
        return keys_for_query(first_name=facts.first_name, last_name=None, first_initial=None,
                              last_initial=None, dob=None, upn=None, nhs_number=None, school_urns=urns)

    lookup = store.match_lookup(keys=keys, case_ids=[case_id for case_id in [thread_case, *references] if case_id],
                                sender_domain=facts.sender_email.rpartition("@")[2],
                                school_urns=school_urns, limit=BLOCK_LIMIT, keys_for_schools=keys_for_schools)

    if thread_case is not None:
        result = _by_thread(facts, lookup, thread_case, own)
        if result is not None:
            return result
    reference = _by_reference(facts, lookup, references)
    if reference is not None and reference.case_id is not None:
        return reference

    identifier = _by_identifier(facts, lookup)
    if identifier is not None and identifier.case_id is not None:
        return _agree_with_reference(identifier, reference)

    scored = _by_score(facts, lookup)
    if reference is not None:
        return _agree_with_reference(scored, reference)
    if identifier is not None:
        identifier.scored = scored.scored
        return identifier
    if thread_case is not None and scored.case_id is None:
        # The thread named another child's case: a person decides.
        scored.method = "ambiguous"
        scored.candidates = list(dict.fromkeys([thread_case, *scored.candidates]))
        scored.reasons.append("match:thread_child_differs")
    return scored


def _references(facts: MatchInput) -> list[str]:
    text = facts.text
    if facts.returned_subject:
        text = f"{text}\n{facts.returned_subject}"
    return list(dict.fromkeys(reference.upper() for reference in CASE_REFERENCE.findall(text)))


def _by_thread(facts: MatchInput, lookup: MatchLookup, case_id: str, own: bool) -> MatchResult | None:
    view = lookup.named.get(case_id)
    reason = "match:thread_own_mail" if own else "match:thread"
    if view is not None and _names_another_child(facts, view):
        return None
    return MatchResult(case_id=case_id, method="thread", reasons=[reason])


def _names_another_child(facts: MatchInput, view: CaseView) -> bool:
    """Return whether the message's child has a first name that none of the case's names fit."""
    if not facts.first_name or len(normalise_name(facts.first_name)) < 2:
        return False
    return compare_first_name(facts.first_name, None, list(view.first_names)) == "disagree"


def _by_reference(facts: MatchInput, lookup: MatchLookup, references: list[str]) -> MatchResult | None:
    if not references:
        return None
    if len(references) > 1:
        known = [reference for reference in references if reference in lookup.named]
        return MatchResult(method="ambiguous", candidates=known, reasons=["match:several_references"])
    view = lookup.named.get(references[0])
    if view is None:
        return MatchResult(method="none", reasons=["match:reference_unknown"])
    if _names_another_child(facts, view):
        return MatchResult(method="ambiguous", candidates=[view.id], reasons=["match:reference_child_differs"])

    trust = _reference_trust(facts, lookup, view)
    if trust is not None:
        return MatchResult(case_id=view.id, method="reference", reasons=[f"match:reference_{trust}"])
    return MatchResult(method="ambiguous", candidates=[view.id], reasons=["match:reference_untrusted_sender"])


def _reference_trust(facts: MatchInput, lookup: MatchLookup, view: CaseView) -> str | None:
    """Return why the sender may link by reference ("party", "role", "school", "own_mail"), or None."""
    sender = facts.sender_email.lower()
    if sender and sender in view.parties:
        return "party"
    if REFERENCE_ROLES & set(facts.sender_roles):
        return "role"
    if "school" in facts.sender_roles:
        case_schools = _expand(lookup, view.school_urns)
        if case_schools & set(lookup.sender_school_urns):
            return "school"
    returned_from = parseaddr(facts.returned_from)[1].lower()
    if returned_from and returned_from == facts.council_inbox.lower() and view.id in facts.returned_subject.upper():
        return "own_mail"
    return None


def _agree_with_reference(result: MatchResult, reference: MatchResult | None) -> MatchResult:
    """Combine an untrusted reference with what identifiers or scoring found."""
    if reference is None or not reference.candidates:
        if reference is not None:
            result.reasons = [*reference.reasons, *result.reasons]
        return result
    if result.case_id in reference.candidates:
        result.reasons = [*result.reasons, "match:reference_agrees"]
        return result
    candidates = list(dict.fromkeys([*reference.candidates, *result.candidates,
                                     *([result.case_id] if result.case_id else [])]))
    return MatchResult(method="ambiguous", candidates=candidates, scored=result.scored,
                       reasons=[*reference.reasons, *result.reasons])


def _by_identifier(facts: MatchInput, lookup: MatchLookup) -> MatchResult | None:
    upn = (facts.upn or "").upper() if facts.upn_valid else ""
    nhs_number = facts.nhs_number or ""
    if not upn and not nhs_number:
        return None
    hits = [view for view in lookup.candidates
            if (upn and upn in (view.upn, *view.former_upns)) or (nhs_number and nhs_number == view.nhs_number)]
    if not hits:
        return None
    agreeing = [view for view in hits if _identifier_agrees(facts, view)]
    if len(agreeing) == 1:
        return MatchResult(case_id=agreeing[0].id, method="identifier", reasons=["match:identifier_agrees"])
    return MatchResult(method="ambiguous", candidates=[view.id for view in hits],
                       reasons=["match:identifier_disagrees" if not agreeing else "match:identifier_several"])


def _identifier_agrees(facts: MatchInput, view: CaseView) -> bool:
    """Return whether a name or the date of birth agrees with an identifier's case and nothing disagrees."""
    first = compare_first_name(facts.first_name, facts.first_initial, list(view.first_names))
    last = compare_surname(facts.last_name, facts.last_initial, list(view.last_names))
    dob = _compare_dob(facts.dob, view.dob)
    if "disagree" in (first, last, dob):
        return False
    return dob == "exact" or first in ("exact", "nickname", "fuzzy") or last in ("exact", "part", "fuzzy")


def _by_score(facts: MatchInput, lookup: MatchLookup) -> MatchResult:
    comparisons = [_compare(facts, lookup, view) for view in lookup.candidates]
    comparisons.sort(key=lambda comparison: (-comparison.score, comparison.view.id))
    return _decide(comparisons)


def _decide(comparisons: list[_Comparison]) -> MatchResult:
    """Link the best candidate only when it is certain, else offer candidates or report a new child.

    A link needs a score of LINK_MIN_SCORE, evidence beyond the names worth
    LINK_MIN_CORROBORATION (a date of birth in part does not count), names that
    identify a child, no field that disagrees, and a lead of LINK_MIN_MARGIN over the
    next candidate.
    """
    plausible = [comparison for comparison in comparisons
                 if not comparison.ruled_out and comparison.score >= CANDIDATE_MIN_SCORE]
    scored = [Candidate(comparison.view.id, round(comparison.score, 1), comparison.reasons)
              for comparison in plausible[:MAX_CANDIDATES]]
    if not plausible:
        ruled_out = any(comparison.ruled_out for comparison in comparisons)
        return MatchResult(reasons=["match:none", *(["match:candidates_ruled_out"] if ruled_out else [])])

    best = plausible[0]
    runner_up = next((comparison.score for comparison in comparisons[1:] if comparison is not best
                      and not comparison.ruled_out), None)
    margin = best.score - runner_up if runner_up is not None else best.score
    certain = (best.score >= LINK_MIN_SCORE and best.corroboration >= LINK_MIN_CORROBORATION
               and best.names_identify and not best.names_conflict and margin >= LINK_MIN_MARGIN)
    if certain:
        return MatchResult(case_id=best.view.id, method="score", candidates=[best.view.id], scored=scored,
                           reasons=["match:score", *(f"match:{reason}" for reason in best.reasons)])
    return MatchResult(method="ambiguous", candidates=[candidate.case_id for candidate in scored], scored=scored,
                       reasons=["match:uncertain", *(f"match:{reason}" for reason in best.reasons)])


def _compare(facts: MatchInput, lookup: MatchLookup, view: CaseView) -> _Comparison:
    comparison = _Comparison(view)
    _compare_names(facts, view, comparison)
    _compare_identifiers(facts, view, comparison)

    dob = _compare_dob(facts.dob, view.dob)
    if dob != "missing":
        comparison.add("dob", dob, DOB_WEIGHTS[dob], corroborates=dob == "exact")
    elif facts.year_group is not None and view.dob is not None:
        agrees = _year_group(view.dob, facts.message_date or date.today()) == facts.year_group
        level = "agree" if agrees else "disagree"
        comparison.add("year_group", level, YEAR_GROUP_WEIGHTS[level], corroborates=True)

    case_schools = set(view.school_urns)
    current = _expand(lookup, view.school_urns[:1])
    if facts.school_urn and case_schools:
        message_schools = _expand(lookup, [facts.school_urn])
        if message_schools & current:
            level = "current"
        elif message_schools & _expand(lookup, view.school_urns):
            level = "former"
        else:
            level = "disagree"
        comparison.add("school", level, SCHOOL_WEIGHTS[level], corroborates=True)
    if lookup.sender_school_urns and current & set(lookup.sender_school_urns):
        comparison.add("sender", "school", SENDER_SCHOOL_WEIGHT, corroborates=True)
    if facts.sender_email and facts.sender_email.lower() in view.parties:
        comparison.add("sender", "party", SENDER_PARTY_WEIGHT, corroborates=True)
    return comparison


def _compare_names(facts: MatchInput, view: CaseView, comparison: _Comparison) -> None:
    first_names, last_names = list(view.first_names), list(view.last_names)
    first = compare_first_name(facts.first_name, facts.first_initial, first_names)
    last = compare_surname(facts.last_name, facts.last_initial, last_names)
    weight = FIRST_NAME_WEIGHTS.get(first, 0.0) + SURNAME_WEIGHTS.get(last, 0.0)

    if facts.first_name and facts.last_name:
        # A surname written first ("Taylor Jack") is tried the other way round.
        swapped_first = compare_first_name(facts.last_name, None, first_names)
        swapped_last = compare_surname(facts.first_name, None, last_names)
        swapped = (FIRST_NAME_WEIGHTS.get(swapped_first, 0.0) + SURNAME_WEIGHTS.get(swapped_last, 0.0)
                   - SWAPPED_NAMES_PENALTY)
        if swapped > weight:
            comparison.add("first", swapped_first, FIRST_NAME_WEIGHTS.get(swapped_first, 0.0))
            comparison.add("last", swapped_last, SURNAME_WEIGHTS.get(swapped_last, 0.0) - SWAPPED_NAMES_PENALTY)
            comparison.reasons.append("names:swapped")
            return
    if first != "missing":
        comparison.add("first", first, FIRST_NAME_WEIGHTS[first])
    if last != "missing":
        comparison.add("last", last, SURNAME_WEIGHTS[last])


def _compare_identifiers(facts: MatchInput, view: CaseView, comparison: _Comparison) -> None:
    upn = (facts.upn or "").upper()
    case_upns = [value for value in (view.upn, *view.former_upns) if value]
    if upn and case_upns:
        if facts.upn_valid and upn in case_upns:
            comparison.add("upn", "exact", UPN_WEIGHTS["exact"], corroborates=True)
        elif not facts.upn_valid and any(_one_slip(upn, value) for value in case_upns):
            # A UPN failing its check letter is a probable typo, so it adds weight but never links alone.
            comparison.add("upn", "typo", UPN_WEIGHTS["typo"])
        elif facts.upn_valid:
            comparison.add("upn", "disagree", UPN_WEIGHTS["disagree"])
    if facts.nhs_number and view.nhs_number:
        level = "exact" if facts.nhs_number == view.nhs_number else "disagree"
        comparison.add("nhs", level, NHS_WEIGHTS[level], corroborates=True)


def _compare_dob(given: date | None, known: date | None) -> str:
    """Return "exact", "swapped" (day and month), "typo" (one digit), "disagree" or "missing"."""
    if given is None or known is None:
        return "missing"
    if given == known:
        return "exact"
    if swapped_day_month(given) == known:
        return "swapped"
    if _one_slip(given.strftime("%Y%m%d"), known.strftime("%Y%m%d")):
        return "typo"
    return "disagree"


def _one_slip(first: str, second: str) -> bool:
    """Return whether two strings of one length differ in one place or by two neighbours swapped."""
    if len(first) != len(second):
        return False
    differences = [index for index, (a, b) in enumerate(zip(first, second)) if a != b]
    if len(differences) == 1:
        return True
    if len(differences) == 2 and differences[1] == differences[0] + 1:
        i, j = differences
        return first[i] == second[j] and first[j] == second[i]
    return False


def _year_group(dob: date, on: date) -> int:
    """Return the National Curriculum year group (Reception is 0) of a child born on `dob`.

    In England a school year runs from 1 September, and a child starts Reception in the
    school year that begins after their fourth birthday.
    """
    school_year = on.year if on.month >= 9 else on.year - 1
    cohort = dob.year if dob.month >= 9 else dob.year - 1
    return school_year - cohort - 5


def _expand(lookup: MatchLookup, urns) -> set[str]:
    """Return the URNs with their GIAS predecessors and successors."""
    expanded: set[str] = set()
    for urn in urns:
        expanded |= lookup.linked_schools.get(urn, {urn})
    return expanded
