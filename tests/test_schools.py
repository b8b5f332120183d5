"""The schools register: CSV reading, domain lookups and school names in text."""

import pytest

from parsers.schools import School, SchoolIndex

REGISTER_CSV = """URN,LAESTAB,EstablishmentName,TypeOfEstablishment,Postcode,Domain
900201,8852041,Oakfield Primary School,Community school,WR4 9QX,oakfield.sch.example
900202,8853012,St Mary's CE Primary School,Voluntary aided school,WR2 5LT,stmarys-ce.sch.example
900203,8853461,St Mary's Catholic Primary School,Voluntary aided school,WR14 2DJ,stmarysrc.sch.example
900204,8854010,Riverbank Academy,Academy converter,WR3 8NJ,valleytrust.org.example
900205,8852150,Hillcrest Primary Academy,Academy sponsor led,WR8 0QU,valleytrust.org.example
900206,8851101,The Lantern Centre,Pupil referral unit,WR1 3ZT,lantern-pru.sch.example
"""


@pytest.fixture
def index(tmp_path):
    path = tmp_path / "schools.csv"
    path.write_text(REGISTER_CSV, encoding="utf-8")
    return SchoolIndex.from_csv(path)


def urns_in(index, text):
    return [mention.urns for mention in index.find_in_text(text)]


def test_from_csv_reads_rows(index):
    assert len(index) == 6


def test_from_csv_keeps_laestab(index):
    assert index.by_urn("900202").laestab == "8853012"


def test_from_csv_gias_columns(tmp_path):
    path = tmp_path / "gias.csv"
    path.write_text(
        "URN,LA (code),EstablishmentNumber,EstablishmentName,EstablishmentStatus (name)\n"
        "900301,885,2041,Oakfield Primary School,Closed\n",
        encoding="utf-8",
    )
    school = SchoolIndex.from_csv(path).by_urn("900301")
    assert school.laestab == "8852041"
    assert school.status == "closed"


def test_from_csv_windows_1252(tmp_path):
    path = tmp_path / "cp1252.csv"
    path.write_bytes("URN,EstablishmentName\n900302,St Mary\u2019s School\n".encode("cp1252"))
    assert SchoolIndex.from_csv(path).by_urn("900302").name == "St Mary\u2019s School"


def test_from_rows_skips_row_without_urn():
    index = SchoolIndex.from_rows([{"EstablishmentName": "Nameless School"}])
    assert len(index) == 0


def test_by_domain_shared_trust(index):
    assert sorted(school.urn for school in index.by_domain("valleytrust.org.example")) == ["900204", "900205"]


def test_by_domain_subdomain(index):
    assert [school.urn for school in index.by_domain("mail.oakfield.sch.example")] == ["900201"]


def test_by_domain_unknown(index):
    assert index.by_domain("gmail.example") == []


def test_find_urn(index):
    assert urns_in(index, "URN 900201") == [("900201",)]


def test_find_dfe_number_slashed(index):
    assert urns_in(index, "DfE number 885/2041") == [("900201",)]


def test_find_dfe_number_plain(index):
    assert urns_in(index, "LAESTAB 8853012") == [("900202",)]


def test_find_unknown_number_ignored(index):
    assert urns_in(index, "call 8859999 today") == []


def test_find_loose_name(index):
    assert urns_in(index, "Year 6 at Oakfield, DOB 1/2/15") == [("900201",)]


def test_find_name_without_apostrophe_ambiguous(index):
    assert urns_in(index, "Yr 3 at St Marys") == [("900202", "900203")]


def test_find_mention_reports_ambiguity(index):
    assert index.find_in_text("St Marys")[0].ambiguous


def test_find_name_narrowed_by_ce(index):
    assert urns_in(index, "St Mary's CE Primary") == [("900202",)]


def test_find_name_narrowed_by_c_of_e(index):
    assert urns_in(index, "St Marys C of E") == [("900202",)]


def test_find_full_name_longest_match(index):
    assert urns_in(index, "St Mary's Catholic Primary School") == [("900203",)]


def test_find_possessive_name(index):
    assert urns_in(index, "on Riverbank's roll") == [("900204",)]


def test_find_name_with_the(index):
    assert urns_in(index, "started at the Lantern on Monday") == [("900206",)]


def test_find_lower_case_common_word_ignored(index):
    assert urns_in(index, "a lantern in the window") == []


def test_find_prefers_open_school():
    index = SchoolIndex(
        [
            School("900401", "Elmwood Primary School", status="closed"),
            School("900402", "Elmwood Primary Academy"),
        ]
    )
    assert urns_in(index, "a pupil at Elmwood") == [("900402",)]
