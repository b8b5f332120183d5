"""Matching messages to cases against a real SQLite store with a small fictional register."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.matching import MatchInput, match_case
from bot.registers import import_cases, import_schools
from parsers.identifiers import upn_check_letter
from store import cases as case_records
from store.db import create_store_engine, upgrade_schema
from store.records import Store

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SCHOOL_URN = "990101"  # Brambleway Primary School, brambleway.sch.example
OTHER_SCHOOL_URN = "990104"
LEAD = "lead.worker@testshire.gov.example"


def valid_upn(body: str) -> str:
    return upn_check_letter(body) + body


ALFRED_UPN = valid_upn("889200121001")
CASES = [
    # id, first, last, dob, upn, nhs, school, lead
    ("CCAS-2025-0101", "Alfred", "Simmons", "2013-11-19", ALFRED_UPN, "", SCHOOL_URN, LEAD),
    ("CCAS-2025-0102", "Mason", "Pritchard", "2016-10-22", "", "", SCHOOL_URN, LEAD),
    ("CCAS-2025-0103", "Mia", "Pritchard", "2019-02-09", "", "", SCHOOL_URN, LEAD),
    ("CCAS-2025-0104", "Jayden", "Whitmore", "2013-03-13", "", "", SCHOOL_URN, LEAD),
    ("CCAS-2025-0105", "Kacey", "Whitmore", "2013-03-13", "", "", SCHOOL_URN, LEAD),
    ("CCAS-2025-0106", "Jack", "Taylor", "2012-04-07", "", "", SCHOOL_URN, LEAD),
    ("CCAS-2025-0107", "Jack", "Taylor", "2016-06-14", "", "", OTHER_SCHOOL_URN, LEAD),
    ("CCAS-2025-0108", "Katherine", "Osei", "2012-12-01", "", "", "990103", "social.worker@testchildren.org.example"),
]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(create_store_engine(f"sqlite:///{tmp_path / 'match.sqlite3'}"))
    upgrade_schema(store.engine)
    import_schools(store, FIXTURES / "edubasealldata20260901.csv")
    import_schools(store, FIXTURES / "links_edubasealldata20260901.csv")
    lines = ["case_id,first_name,last_name,dob,upn,nhs_number,school_urn,status,ehcp,lead_email"]
    lines += [f"{i},{f},{l},{d},{u},{n},{s},open,none,{e}" for i, f, l, d, u, n, s, e in CASES]
    register = tmp_path / "cases.csv"
    register.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = import_cases(store, register)
    assert summary.rejected == []
    return store


def facts(**details) -> MatchInput:
    """A message from an untrusted outside address, with only the details given."""
    values = dict(thread_ids=[], text="", sender_email="someone@mail.example", sender_trusted=False,
                  first_name=None, last_name=None, last_initial=None, dob=None, upn=None, upn_valid=False,
                  nhs_number=None, school_urn=None, message_date=date(2026, 10, 5))
    values.update(details)
    return MatchInput(**values)


def from_school(**details) -> MatchInput:
    return facts(sender_email="head.of.year@brambleway.sch.example", sender_trusted=True,
                 sender_roles=["school"], **details)


def test_name_and_dob_links(store):
    result = match_case(facts(first_name="Mason", last_name="Pritchard", dob=date(2016, 10, 22)), store)

    assert result.case_id == "CCAS-2025-0102"
    assert result.method == "score"


def test_siblings_at_one_school_never_merge(store):
    mia = match_case(from_school(first_name="Mia", last_name="Pritchard", school_urn=SCHOOL_URN), store)
    new_sibling = match_case(from_school(first_name="Lily", last_name="Pritchard", school_urn=SCHOOL_URN,
                                         dob=date(2014, 5, 1)), store)

    assert mia.case_id == "CCAS-2025-0103"
    assert new_sibling.case_id is None
    assert new_sibling.method == "none"
    assert new_sibling.candidates == []


def test_same_name_other_dob_is_new_child(store):
    result = match_case(facts(first_name="Mason", last_name="Pritchard", dob=date(2015, 3, 8)), store)

    assert result.case_id is None
    assert result.method == "none"
    assert result.candidates == []


def test_swapped_dob_gives_candidate_only(store):
    # 2016-10-22 cannot swap, so the test uses Katherine Osei, born 2012-12-01.
    result = match_case(facts(first_name="Katherine", last_name="Osei", dob=date(2012, 1, 12)), store)

    assert result.case_id is None
    assert result.method == "ambiguous"
    assert result.candidates == ["CCAS-2025-0108"]
    assert "dob:swapped" in result.scored[0].reasons


def test_swapped_dob_links_with_school(store):
    result = match_case(facts(first_name="Katherine", last_name="Osei", dob=date(2012, 1, 12),
                              school_urn="990103"), store)

    assert result.case_id == "CCAS-2025-0108"


def test_upn_alone_never_links(store):
    result = match_case(facts(upn=ALFRED_UPN, upn_valid=True), store)

    assert result.case_id is None
    assert result.method == "ambiguous"
    assert result.candidates == ["CCAS-2025-0101"]


def test_upn_with_surname_links(store):
    result = match_case(facts(last_name="Simmons", first_initial="A", upn=ALFRED_UPN, upn_valid=True), store)

    assert result.case_id == "CCAS-2025-0101"
    assert result.method == "identifier"


def test_upn_with_other_name_not_linked(store):
    result = match_case(facts(first_name="Mason", last_name="Pritchard", upn=ALFRED_UPN, upn_valid=True), store)

    assert result.case_id != "CCAS-2025-0101"
    assert result.case_id is None


def test_invalid_upn_never_links_alone(store):
    typo = ALFRED_UPN[:-1] + ("1" if ALFRED_UPN[-1] != "1" else "2")
    result = match_case(facts(first_name="Alfred", last_name="Simmons", upn=typo, upn_valid=False), store)

    assert result.case_id is None
    assert result.method == "ambiguous"
    assert "upn:typo" in result.scored[0].reasons


def test_reference_from_untrusted_sender_needs_person(store):
    result = match_case(facts(text="Re: CCAS-2025-0106 please call me"), store)

    assert result.case_id is None
    assert result.method == "ambiguous"
    assert result.candidates == ["CCAS-2025-0106"]
    assert "match:reference_untrusted_sender" in result.reasons


def test_reference_from_party_links(store):
    result = match_case(facts(text="Update for CCAS-2025-0106", sender_email=LEAD.upper()), store)

    assert result.case_id == "CCAS-2025-0106"
    assert result.method == "reference"


def test_reference_from_school_of_case_links(store):
    at_school = match_case(from_school(text="Update on CCAS-2025-0106"), store)
    other_school = match_case(from_school(text="Update on CCAS-2025-0107"), store)

    assert at_school.case_id == "CCAS-2025-0106"
    assert other_school.case_id is None
    assert other_school.method == "ambiguous"


def test_reference_naming_other_child_needs_person(store):
    result = match_case(facts(text="CCAS-2025-0106", sender_email=LEAD, first_name="Mia"), store)

    assert result.case_id is None
    assert "match:reference_child_differs" in result.reasons


def test_nickname_links_with_dob(store):
    result = match_case(facts(first_name="Alfie", last_name="Simmons", dob=date(2013, 11, 19)), store)

    assert result.case_id == "CCAS-2025-0101"
    assert "first:nickname" in result.scored[0].reasons


def test_nickname_without_dob_needs_person(store):
    result = match_case(facts(first_name="Alfie", last_name="Simmons"), store)

    assert result.case_id is None
    assert result.method == "ambiguous"
    assert result.candidates == ["CCAS-2025-0101"]


def test_nickname_with_other_dob_is_new(store):
    result = match_case(facts(first_name="Alfie", last_name="Simmons", dob=date(2011, 2, 3)), store)

    assert result.case_id is None
    assert result.candidates == []


def test_initial_picks_twin_at_school(store):
    result = match_case(from_school(first_initial="J", last_name="Whitmore", school_urn=SCHOOL_URN,
                                    year_group=9), store)

    assert result.case_id == "CCAS-2025-0104"


def test_twins_by_surname_need_person(store):
    result = match_case(from_school(last_name="Whitmore", dob=date(2013, 3, 13)), store)

    assert result.case_id is None
    assert result.method == "ambiguous"
    assert set(result.candidates) == {"CCAS-2025-0104", "CCAS-2025-0105"}


def test_same_name_two_cases_need_person(store):
    result = match_case(facts(first_name="Jack", last_name="Taylor"), store)

    assert result.method == "ambiguous"
    assert set(result.candidates) == {"CCAS-2025-0106", "CCAS-2025-0107"}


def test_same_name_told_apart_by_school(store):
    result = match_case(from_school(first_name="Jack", last_name="Taylor", school_urn=SCHOOL_URN), store)

    assert result.case_id == "CCAS-2025-0106"


def test_misspelt_surname_links_with_dob(store):
    result = match_case(facts(first_name="Katherine", last_name="Ossei", dob=date(2012, 12, 1)), store)

    assert result.case_id == "CCAS-2025-0108"
    assert "last:fuzzy" in result.scored[0].reasons


def test_swapped_name_order_links(store):
    result = match_case(facts(first_name="Pritchard", last_name="Mason", dob=date(2016, 10, 22)), store)

    assert result.case_id == "CCAS-2025-0102"


def test_successor_school_counts_as_same(store):
    # Katherine's case names Fernhill Academy; the message names its predecessor.
    result = match_case(facts(first_name="Katie", last_initial="O", school_urn="990102",
                              sender_email="social.worker@testchildren.org.example"), store)

    assert result.case_id == "CCAS-2025-0108"
    assert "school:current" in result.scored[0].reasons


def test_thread_naming_other_child_not_linked(store):
    store.upsert_cases([])  # the register is already in place
    with store.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO message (message_id, message_id_synthesised, sha256, raw, size, source, folder, uid, "
            "mailbox_done, received_at, attempts, outcome, reasons, sender_email, subject, urgent, extracted, "
            "case_id) VALUES ('earlier@testshire.gov.example', :no, 'x', :raw, 0, 'folder', 'inbox', '1', :yes, "
            "'2026-10-01', 1, 'handled', '[]', '', '', :no, '{}', 'CCAS-2025-0102')"),
            {"no": False, "yes": True, "raw": b""})

    same_child = match_case(facts(thread_ids=["earlier@testshire.gov.example"], first_name="Mason"), store)
    other_child = match_case(facts(thread_ids=["earlier@testshire.gov.example"], first_name="Katie",
                                   last_initial="O", sender_email="social.worker@testchildren.org.example",
                                   school_urn="990103"), store)

    assert same_child.case_id == "CCAS-2025-0102"
    assert same_child.method == "thread"
    assert other_child.case_id == "CCAS-2025-0108"
    assert other_child.method == "score"


@pytest.mark.sqlite_only("reads the plan from SQLite's EXPLAIN QUERY PLAN")
def test_blocking_uses_index(store):
    statement = case_records._CANDIDATES.params(keys=["sf:SMNS|ALFRT", "d:2013-11-19"], limit=41)
    sql = str(statement.compile(dialect=store.engine.dialect, compile_kwargs={"literal_binds": True}))
    with store.engine.connect() as connection:
        plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}").all()

    details = " ".join(str(row[-1]) for row in plan)
    assert "case_key" in details
    assert "SCAN case_key" not in details


def test_longer_family_name_not_linked(store):
    result = match_case(facts(first_name="Mason", last_name="Pritchardson", dob=date(2016, 10, 22)), store)

    assert result.case_id is None
    assert result.method == "ambiguous"
