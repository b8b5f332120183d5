"""Case records for matching: the child's details, school history, parties and keys.

The functions here run inside a transaction that store/records.py opens; they never
commit. Bulk writes use Core inserts (executemany), so importing or generating many
thousands of cases does not build one ORM object per row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Integer, bindparam, delete, func, insert, select
from sqlalchemy.orm import Session

from store.case_keys import keys_for_case
from store.models import Case, CaseKey, CaseParty, CaseSchool, School, SchoolLink

# Columns of case_record that an import row may set.
CASE_COLUMNS = ("id", "first_name", "last_name", "known_as", "dob", "upn", "nhs_number", "school_urn",
                "status", "ehcp", "opened", "last_reviewed", "lead_email", "lead_professional",
                "next_review", "closed_on", "other_first_names", "other_last_names", "former_upns")


@dataclass(frozen=True)
class CaseView:
    """A case's names, identifiers, schools and parties, as matching compares them.

    `school_urns` starts with the current school, and `parties` contains lower-case addresses.
    """

    id: str
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    dob: date | None
    upn: str
    former_upns: tuple[str, ...]
    nhs_number: str
    school_urns: tuple[str, ...]
    parties: frozenset[str]
    status: str
    ehcp: str


@dataclass
class MatchLookup:
    """Everything one match reads from the store, fetched in one transaction."""

    candidates: list[CaseView] = field(default_factory=list)
    named: dict[str, CaseView] = field(default_factory=dict)
    sender_school_urns: list[str] = field(default_factory=list)
    # Each requested school with its predecessors and successors.
    linked_schools: dict[str, set[str]] = field(default_factory=dict)
    blocked: int = 0


def case_key_rows(case: dict, schools: Iterable[str]) -> list[dict]:
    """Return the case_key rows of one case given as a dict of case_record columns."""
    keys = keys_for_case(
        first_names=[case.get("first_name", ""), case.get("known_as", ""), *case.get("other_first_names", [])],
        last_names=[case.get("last_name", ""), *case.get("other_last_names", [])],
        dob=case.get("dob"),
        upns=[case.get("upn", ""), *case.get("former_upns", [])],
        nhs_number=case.get("nhs_number", ""),
        school_urns=schools,
    )
    return [{"key": key, "case_id": case["id"]} for key in sorted(keys)]


def _case_dict(case: Case) -> dict:
    return {column: getattr(case, column) for column in CASE_COLUMNS}


def index_case(session: Session, case: Case, now: datetime, *, party_role: str = "lead",
               former_school_urns: Sequence[str] = ()) -> None:
    """Record a case's school history and lead party, then rebuild its blocking keys."""
    session.flush()
    existing_schools = set(session.scalars(select(CaseSchool.urn).where(CaseSchool.case_id == case.id)))
    for urn, left_on in [(case.school_urn, None), *[(urn, now.date()) for urn in former_school_urns]]:
        if urn and urn not in existing_schools:
            session.add(CaseSchool(case_id=case.id, urn=urn, left_on=left_on))
            existing_schools.add(urn)

    email = (case.lead_email or "").lower()
    if email and session.scalars(select(CaseParty.id).where(
            CaseParty.case_id == case.id, CaseParty.email == email)).first() is None:
        session.add(CaseParty(case_id=case.id, email=email, role=party_role, added_at=now))

    session.execute(delete(CaseKey).where(CaseKey.case_id == case.id))
    rows = case_key_rows(_case_dict(case), existing_schools)
    if rows:
        session.execute(insert(CaseKey), rows)


def insert_cases_bulk(session: Session, cases: Sequence[dict], now: datetime,
                      former_schools: dict[str, Sequence[str]] | None = None) -> None:
    """Insert new cases with their schools, lead parties and keys by executemany.

    Every case id must be new; the caller checks that.
    """
    former_schools = former_schools or {}
    case_rows, school_rows, party_rows, key_rows = [], [], [], []
    for case in cases:
        row = {column: case.get(column) for column in CASE_COLUMNS if column in case}
        for column in ("other_first_names", "other_last_names", "former_upns"):
            row.setdefault(column, [])
        for column in ("first_name", "last_name", "known_as", "upn", "nhs_number", "school_urn",
                       "lead_email", "lead_professional"):
            row[column] = row.get(column) or ""
        row["status"] = row.get("status") or "open"
        row["ehcp"] = row.get("ehcp") or "none"
        case_rows.append(row)

        schools = [urn for urn in [row["school_urn"], *former_schools.get(row["id"], ())] if urn]
        for urn in dict.fromkeys(schools):
            school_rows.append({"case_id": row["id"], "urn": urn,
                                "left_on": None if urn == row["school_urn"] else now.date()})
        if row["lead_email"]:
            party_rows.append({"case_id": row["id"], "email": row["lead_email"].lower(), "role": "lead",
                               "added_at": now})
        key_rows.extend(case_key_rows(row, schools))

    # Core inserts on the connection: the ORM's bulk path builds a command per row first.
    connection = session.connection()
    for model, rows in ((Case, case_rows), (CaseSchool, school_rows), (CaseParty, party_rows),
                        (CaseKey, key_rows)):
        if rows:
            connection.execute(insert(model.__table__), rows)


_CASE_COLUMNS = [getattr(Case, column) for column in CASE_COLUMNS]

# Statements for the matching path, built once: an expanding IN parameter keeps one
# compiled form in SQLAlchemy's cache whatever the number of values.
_SCHOOLS_BY_DOMAIN = select(School.urn).where(School.domain.in_(bindparam("domains", expanding=True)))
_CANDIDATES = (select(CaseKey.case_id, func.count().label("shared"))
               .where(CaseKey.key.in_(bindparam("keys", expanding=True)))
               .group_by(CaseKey.case_id).order_by(func.count().desc(), CaseKey.case_id)
               .limit(bindparam("limit", type_=Integer)))
_CASES = select(*_CASE_COLUMNS).where(Case.id.in_(bindparam("ids", expanding=True)))
_CASE_SCHOOLS = (select(CaseSchool.case_id, CaseSchool.urn, CaseSchool.left_on)
                 .where(CaseSchool.case_id.in_(bindparam("ids", expanding=True))))
_CASE_PARTIES = (select(CaseParty.case_id, CaseParty.email)
                 .where(CaseParty.case_id.in_(bindparam("ids", expanding=True))))
_SCHOOL_LINKS = (select(SchoolLink.urn, SchoolLink.linked_urn)
                 .where(SchoolLink.urn.in_(bindparam("urns", expanding=True))
                        | SchoolLink.linked_urn.in_(bindparam("urns", expanding=True))))


def match_lookup(session: Session, *, keys: Iterable[str], case_ids: Iterable[str],
                 sender_domain: str, school_urns: Iterable[str], limit: int,
                 keys_for_schools: Callable[[list[str]], set[str]] | None = None) -> MatchLookup:
    """Fetch the candidates sharing the most keys, the named cases and the sender's schools.

    `keys_for_schools` turns the schools of the sender's domain into more keys. The
    key lookup reads only the case_key index, so its cost grows with the number of
    cases that share a key, not with the size of the register.
    """
    connection = session.connection()
    lookup = MatchLookup()
    if sender_domain:
        labels = sender_domain.lower().split(".")
        domains = [".".join(labels[index:]) for index in range(len(labels) - 1)]
        if domains:
            lookup.sender_school_urns = sorted(connection.execute(_SCHOOLS_BY_DOMAIN, {"domains": domains}).scalars())
    keys = set(keys)
    if keys_for_schools is not None and lookup.sender_school_urns:
        keys |= keys_for_schools(lookup.sender_school_urns)

    ranked: list[str] = []
    if keys:
        rows = connection.execute(_CANDIDATES, {"keys": sorted(keys), "limit": limit + 1}).all()
        lookup.blocked = len(rows)
        # A case sharing two keys fewer than the best rarely scores near it, because
        # a case with the same names or date of birth shares those keys too.
        floor = max(1, rows[0].shared - 2) if rows else 1
        ranked = [row.case_id for row in rows[:limit] if row.shared >= floor]

    named = [case_id for case_id in dict.fromkeys(case_ids) if case_id]
    views = load_case_views(session, [*ranked, *named])
    lookup.candidates = [views[case_id] for case_id in ranked if case_id in views]
    lookup.named = {case_id: views[case_id] for case_id in named if case_id in views}

    asked = {urn for urn in [*school_urns, *lookup.sender_school_urns] if urn}
    for view in views.values():
        asked.update(view.school_urns)
    lookup.linked_schools = linked_schools(session, asked)
    return lookup


def linked_schools(session: Session, urns: Iterable[str]) -> dict[str, set[str]]:
    """Return each URN with the URNs GIAS links to it in either direction."""
    urns = sorted(set(urns))
    linked: dict[str, set[str]] = {urn: {urn} for urn in urns}
    if not urns:
        return linked
    for row in session.connection().execute(_SCHOOL_LINKS, {"urns": urns}):
        for urn, other in ((row.urn, row.linked_urn), (row.linked_urn, row.urn)):
            if urn in linked:
                linked[urn].add(other)
    return linked


def load_case_views(session: Session, case_ids: Sequence[str]) -> dict[str, CaseView]:
    """Load cases with their school history and parties, by id."""
    case_ids = list(dict.fromkeys(case_ids))
    if not case_ids:
        return {}
    connection = session.connection()
    schools: dict[str, list[tuple[bool, str]]] = defaultdict(list)
    for row in connection.execute(_CASE_SCHOOLS, {"ids": case_ids}):
        schools[row.case_id].append((row.left_on is not None, row.urn))
    parties: dict[str, set[str]] = defaultdict(set)
    for row in connection.execute(_CASE_PARTIES, {"ids": case_ids}):
        parties[row.case_id].add(row.email.lower())

    views = {}
    for row in connection.execute(_CASES, {"ids": case_ids}):
        history = [urn for _, urn in sorted(schools[row.id])]
        school_urns = tuple(dict.fromkeys([urn for urn in [row.school_urn, *history] if urn]))
        emails = parties[row.id] | ({row.lead_email.lower()} if row.lead_email else set())
        views[row.id] = CaseView(
            id=row.id,
            first_names=tuple(name for name in [row.first_name, row.known_as, *(row.other_first_names or [])]
                              if name),
            last_names=tuple(name for name in [row.last_name, *(row.other_last_names or [])] if name),
            dob=row.dob,
            upn=row.upn or "",
            former_upns=tuple(row.former_upns or ()),
            nhs_number=row.nhs_number or "",
            school_urns=school_urns,
            parties=frozenset(emails),
            status=row.status,
            ehcp=row.ehcp,
        )
    return views


def rebuild_all_keys(session: Session, batch_size: int = 5000) -> int:
    """Recompute every case's blocking keys; return the number of cases."""
    session.execute(delete(CaseKey))
    schools: dict[str, set[str]] = defaultdict(set)
    for row in session.execute(select(CaseSchool.case_id, CaseSchool.urn)).all():
        schools[row.case_id].add(row.urn)
    count = 0
    rows: list[dict] = []
    for row in session.execute(select(*_CASE_COLUMNS)).all():
        case = dict(row._mapping)
        case["other_first_names"] = case["other_first_names"] or []
        case["other_last_names"] = case["other_last_names"] or []
        case["former_upns"] = case["former_upns"] or []
        rows.extend(case_key_rows(case, schools[case["id"]] | ({case["school_urn"]} - {""})))
        count += 1
        if len(rows) >= batch_size:
            session.connection().execute(insert(CaseKey.__table__), rows)
            rows = []
    if rows:
        session.connection().execute(insert(CaseKey.__table__), rows)
    return count
