"""Extraction of the child's details from fictional messages."""

from datetime import date

import pytest

from parsers.extract import ChildDetails, extract_child
from parsers.schools import School, SchoolIndex

TODAY = date(2026, 10, 5)


@pytest.fixture
def schools():
    return SchoolIndex(
        [
            School("900201", "Oakfield Primary School", "8852041", domains=("oakfield.sch.example",)),
            School("900202", "St Mary's CE Primary School", "8853012", domains=("stmarys-ce.sch.example",)),
            School(
                "900203", "St Mary's Catholic Primary School", "8853461", domains=("stmarysrc.sch.example",)
            ),
            School("900204", "Riverbank Academy", "8854010", domains=("valleytrust.org.example",)),
            School("900205", "Hillcrest Primary Academy", "8852150", domains=("valleytrust.org.example",)),
            School("900206", "Northgate High School", "8854003", domains=("northgate.sch.example",)),
        ]
    )


def extract(schools, subject, text, domain="health.nhs.example", **options):
    return extract_child(subject, text, domain, schools, TODAY, **options)


REFERRAL = """Dear CCAS panel,

I am writing to refer Daisy Whitfield (DOB 14/03/2013, NHS number 943 476 5919), who is in
Year 9 at Northgate High School.

Daisy has been open to CAMHS since February with anxiety and has not attended since June.
Daisy does not have an EHCP.

Kind regards

Hollie Brennan
CAMHS Clinician
Tel: 01632 960480
"""


@pytest.fixture
def referral(schools):
    return extract(schools, "Referral - Daisy Whitfield", REFERRAL)


def test_referral_first_name(referral):
    assert referral.first_name == "Daisy"


def test_referral_last_name(referral):
    assert referral.last_name == "Whitfield"


def test_referral_dob(referral):
    assert referral.dob == date(2013, 3, 14)


def test_referral_nhs_number(referral):
    assert referral.nhs_number == "9434765919"


def test_referral_school(referral):
    assert referral.school_urn == "900206"


def test_referral_year_group(referral):
    assert referral.year_group == 9


def test_referral_reason(referral):
    assert referral.reason == "illness"


def test_referral_ehcp_negated(referral):
    assert referral.ehcp == "none"


def test_referral_one_child(referral):
    assert referral.children_count == 1


def test_referral_evidence_dob(referral):
    assert referral.evidence["dob"] == "labelled"


def test_signatory_not_child(schools):
    details = extract(
        schools,
        "Question about the panel",
        "Could you send the dates?\n\nKind regards\n\nHollie Brennan\nCAMHS Clinician",
    )
    assert details.first_name is None


def test_signatory_not_child_with_sentence_cue(schools):
    text = "Hi,\n\nWe are worried about Tom.\n\nThanks\nTom Reid\nSENCo"
    assert extract(schools, "Worried", text).first_name is None


def test_sender_name_not_child(schools):
    details = extract(schools, "Update", "Please consider Karen Lowe for support.", sender_name="Karen Lowe")
    assert details.first_name is None


def test_parent_name_not_child(schools):
    text = "My daughter Isla is in year 9 and is at home.\n\nThank you\nKaren McKenzie\n(Isla's mum)"
    details = extract(schools, "Isla McKenzie", text, domain="gmail.example")
    assert details.first_name == "Isla"
    assert details.last_name == "McKenzie"


def test_titled_staff_not_child(schools):
    text = "I have spoken to Mrs Cross about Ellie Parkes (Y6). Ellie is managing mornings only."
    assert extract(schools, "Ellie", text).other_children == []


def test_subject_initial_only(schools):
    details = extract(schools, "Re: Ellie P", "Update on Ellie: she managed two mornings this week.")
    assert details.first_name == "Ellie"
    assert details.last_name is None
    assert details.last_initial == "P"


def test_subject_initial_in_evidence(schools):
    details = extract(schools, "Re: Ellie P", "Update on Ellie: she managed two mornings this week.")
    assert "last_initial" in details.evidence


def test_subject_request_with_year(schools):
    details = extract(
        schools, "Request for support: Amber Lee (Y9)", "Please see the attached assessment for Amber."
    )
    assert details.first_name == "Amber"
    assert details.last_name == "Lee"
    assert details.year_group == 9


def test_subject_name_with_form_group_only(schools):
    details = extract(
        schools, "Amber Lee 9B - CCAS", "Please see attached. The pupil has been off since September."
    )
    assert details.first_name == "Amber"
    assert details.year_group == 9


def test_subject_sentence_not_a_name(schools):
    details = extract(
        schools, "Notifying pupils who can't attend", "How do we tell you about pupils who are off?"
    )
    assert details.first_name is None


def test_subject_single_word_not_a_child(schools):
    assert extract(schools, "Test", "Test message, please ignore.").first_name is None


def test_sentence_her_son(schools):
    details = extract(
        schools,
        "Help please",
        "Hello, her son Jack has not been in school for 3 weeks.",
        domain="gmail.example",
    )
    assert details.first_name == "Jack"


def test_sentence_parent_reference(schools):
    details = extract(
        schools, "Tyler", "Hi this is Tylers dad. Tyler went out on Sunday and has not come home."
    )
    assert details.first_name == "Tyler"


def test_labelled_block(schools):
    text = "Please see details below.\n\nName: NOAH BAXTER\nDOB: 01/02/2014\nYear: 7\nUPN: B801200005001\n"
    details = extract(schools, "New notification", text, domain="oakfield.sch.example")
    assert details.first_name == "Noah"
    assert details.last_name == "Baxter"
    assert details.year_group == 7


def test_separate_name_fields(schools):
    text = "First name: Maya\nSurname: Okafor\nDate of birth: 3rd May 2013\n"
    details = extract(schools, "Notification", text)
    assert details.first_name == "Maya"
    assert details.last_name == "Okafor"
    assert details.dob == date(2013, 5, 3)


def test_known_as_in_brackets(schools):
    details = extract(
        schools, "Referral", "Request for support for Joshua (Josh) Fenwick, DOB 01/10/2013, Year 8."
    )
    assert details.first_name == "Joshua"
    assert details.known_as == "Josh"


def test_formal_name_from_attachment(schools):
    details = extract(
        schools,
        "Alfie Grey Y8 - attendance",
        "Attendance printout attached for Alfie Grey (Y8).",
        attachment_texts=["Pupil: Alfred (Alfie) Grey   Year 8"],
    )
    assert details.first_name == "Alfred"
    assert details.known_as == "Alfie"


def test_two_children_counted(schools):
    text = "Sam Reid (Y3) and Lily Reid (Y5) have both been off since half term."
    assert extract(schools, "Reid family", text).children_count == 2


def test_siblings_by_first_name_with_family_subject(schools):
    text = "Mia has started back on mornings this week.\n\nMason is still not managing to come in at all."
    details = extract(schools, "Pritchard", text, domain="oakfield.sch.example")
    assert details.children_count == 2
    assert details.last_name == "Pritchard"


def test_named_sibling_not_counted(schools):
    text = "Referral for Megan Foster (Y11). Her younger brother Reece attends another school."
    assert extract(schools, "Referral", text).children_count == 1


def test_quoted_history_fills_dob(schools):
    text = (
        "Riley is still off.\n\nThanks\nPat\n\n"
        "From: Office <office@oakfield.sch.example>\nSent: 07 September 2026 09:15\n"
        "Subject: Pupil absence\n\nRiley Edwards (Year 4, DOB 02/05/2018) has not attended since September."
    )
    details = extract(schools, "RE: Pupil absence - Riley Edwards Y4", text, domain="oakfield.sch.example")
    assert details.first_name == "Riley"
    assert details.dob == date(2018, 5, 2)


def test_quoted_action_list_not_counted(schools):
    text = (
        "Action 3 - Mason Cole: home visit completed.\n\n"
        "-----Original Message-----\nFrom: Coordinator\n\n"
        "1. Daisy Whitfield (Y9) - held over.\n2. Mason Cole (Y5) - visit.\n"
        "3. Ellie Parkes (Y6) - accepted.\n"
    )
    details = extract(schools, "RE: panel actions", text)
    assert details.first_name == "Mason"
    assert details.children_count == 1
    assert details.year_group == 5


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("Leo does not have an EHCP.", "none"),
        ("No EHCP.", "none"),
        ("The request was refused and she is not eligible for an EHC plan.", "none"),
        ("Her EHC needs assessment was refused in May.", "none"),
        ("He has an EHCP.", "has_ehcp"),
        ("She has an EHC plan in place.", "has_ehcp"),
        ("Kingsmead is named on her EHCP.", "has_ehcp"),
        ("The SEND panel agreed to issue a draft plan.", "draft_decision"),
        ("There was a decision to issue a draft EHCP last week.", "draft_decision"),
        ("An EHC needs assessment is under way.", "assessment"),
        ("An EHCNA was requested in July.", "assessment"),
        ("He does NOT have an EHCP yet; the EHC needs assessment is still going.", "assessment"),
    ],
)
def test_ehcp_status(schools, sentence, expected):
    assert extract(schools, "Update", f"Update on Leo Hart (Y5). {sentence}").ehcp == expected


def test_ihcp_is_not_ehcp(schools):
    text = "Please find attached the IHCP (Individual Healthcare Plan) for Leo Hart (Y5)."
    assert extract(schools, "IHCP", text).ehcp is None


def test_sen_support_is_not_ehcp(schools):
    assert extract(schools, "Update", "Leo Hart (Y5) is on SEN support.").ehcp is None


def test_reason_exclusion(schools):
    text = "Kai Robinson (Y9) was permanently excluded from Riverbank on 22nd September."
    details = extract(schools, "Referral", text)
    assert details.reason == "exclusion"
    assert details.exclusion_date == date(2026, 9, 22)


def test_reason_exclusion_after_no_education(schools):
    text = "Ben Carter (Y5) has had no education since being permanently excluded in September."
    assert extract(schools, "Concern", text).reason == "exclusion"


def test_reason_negated_illness_word(schools):
    text = "Ben Carter (Y5) isn't ill; the family have no transport since the move."
    assert extract(schools, "Concern", text).reason == "other"


def test_reason_risk_of_exclusion_is_not_exclusion(schools):
    text = "Kai Robinson (Y9) is at risk of exclusion and his anxiety is severe."
    assert extract(schools, "Referral", text).reason == "illness"


def test_reason_other_housing(schools):
    text = "Bradley Kay (Y7) is well; there are no health needs. The family are in temporary accommodation."
    assert extract(schools, "Referral", text).reason == "other"


def test_absence_weeks_as_school_days(schools):
    text = "Kieran Doyle (Y10) has not attended school for three weeks."
    assert extract(schools, "Referral", text).absence_days == 15


def test_upn_typo_flagged(schools):
    details = extract(
        schools, "Placement", "Callum Reeves (DOB 09/09/2012, UPN A801200005001) moved on Monday."
    )
    assert details.upn == "A801200005001"
    assert details.upn_valid is False


def test_school_from_domain(schools):
    details = extract(
        schools, "Ava Jones Y4 update", "Ava is recovering at home.", domain="stmarysrc.sch.example"
    )
    assert details.school_urn == "900203"


def test_school_ambiguous_name(schools):
    details = extract(
        schools, "New referral", "Please consider Sienna Ward, Yr 3 at St Marys (DOB 08/03/2019)."
    )
    assert details.school_urn is None
    assert sorted(details.school_candidates) == ["900202", "900203"]


def test_school_ambiguous_name_settled_by_domain(schools):
    details = extract(
        schools, "Update", "An update on Ava (Y4) from St Marys.", domain="stmarysrc.sch.example"
    )
    assert details.school_urn == "900203"


def test_school_trust_domain_settled_by_signature(schools):
    text = "Freya D in 8T was admitted on Sunday.\n\nThanks\nSteve\n\nSteve Thornton\nRiverbank Academy"
    details = extract(schools, "Freya D 8T - admission", text, domain="valleytrust.org.example")
    assert details.school_urn == "900204"


def test_school_in_text_beats_sender_domain(schools):
    text = "I'm writing as Alfie Grey's mum (he's in Year 8 at Northgate).\n\nLaura Grey"
    details = extract(schools, "Alfie", text, domain="oakfield.sch.example")
    assert details.school_urn == "900206"


def test_school_of_roll_beats_provider(schools):
    text = "Callum Reeves (Y9) started with the Lantern Centre tutor on Monday. He stays on Riverbank's roll."
    details = extract(schools, "Placement", text, domain="valleytrust.org.example")
    assert details.school_urn == "900204"


def test_empty_message(schools):
    assert extract(schools, "", "") == ChildDetails()


def test_failing_step_does_not_raise():
    class BrokenIndex:
        def find_in_text(self, text):
            raise RuntimeError("register unavailable")

        def by_domain(self, domain):
            raise RuntimeError("register unavailable")

    details = extract_child(
        "Referral", "Referral for Leo Hart (Y5), DOB 01/02/2016.", "x.example", BrokenIndex(), TODAY
    )
    assert details.dob == date(2016, 2, 1)
    assert details.evidence["school_urn"] == "error"
