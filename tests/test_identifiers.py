"""UPN, NHS number, date and year-group readers. All values are fictional test values."""

from datetime import date

import pytest

from parsers.identifiers import (
    find_dates_of_birth,
    find_nhs_numbers,
    find_upns,
    find_year_group,
    is_valid_nhs_number,
    is_valid_upn,
    normalise_upn,
    parse_uk_date,
    upn_check_letter,
)

TODAY = date(2026, 10, 5)


# UPN worked examples from the DfE check-letter rule.


def test_upn_permanent_valid():
    assert is_valid_upn("B801200005001")


def test_upn_wrong_check_letter_invalid():
    assert not is_valid_upn("A801200005001")


def test_upn_temporary_valid():
    assert is_valid_upn("G80120000101A")


def test_upn_check_letter_computed():
    assert upn_check_letter("801200005001") == "B"


def test_upn_lower_case_and_spaces_valid():
    assert is_valid_upn(" b801 2000 05001 ")


@pytest.mark.parametrize("letter", ["I", "O", "S"])
def test_upn_unused_letters_invalid(letter):
    assert not is_valid_upn(f"{letter}801200005001")


def test_upn_short_invalid():
    assert not is_valid_upn("B80120000500")


def test_upn_not_a_string_invalid():
    assert not is_valid_upn(801200005001)


def test_normalise_upn():
    assert normalise_upn("b801-2000-05001") == "B801200005001"


def test_find_upns_labelled_typo_kept():
    matches = find_upns("Callum (UPN A801200005001) started on Monday.")
    assert [match.value for match in matches] == ["A801200005001"]
    assert matches[0].valid is False
    assert matches[0].labelled is True


def test_find_upns_unlabelled_valid():
    matches = find_upns("Pupil record D885200024001 attached")
    assert [match.value for match in matches] == ["D885200024001"]
    assert matches[0].valid is True


def test_find_upns_labelled_wrong_length_kept():
    matches = find_upns("UPN: B80120000500")
    assert [match.value for match in matches] == ["B80120000500"]
    assert matches[0].valid is False


def test_find_upns_labelled_first():
    matches = find_upns("Old record D885200024001. UPN: B801200005001")
    assert [match.value for match in matches] == ["B801200005001", "D885200024001"]


# NHS numbers.


def test_nhs_valid():
    assert is_valid_nhs_number("9434765919")


def test_nhs_spaced_valid():
    assert is_valid_nhs_number("943 476 5919")


def test_nhs_dashed_valid():
    assert is_valid_nhs_number("943-476-5919")


def test_nhs_one_digit_typo_invalid():
    assert not is_valid_nhs_number("9434765918")


def test_nhs_check_of_ten_invalid():
    assert not is_valid_nhs_number("9991234560")


def test_nhs_repeated_digit_invalid():
    assert not is_valid_nhs_number("0000000000")


def test_nhs_letters_invalid():
    assert not is_valid_nhs_number("943476591X")


def test_find_nhs_labelled_dashed():
    assert find_nhs_numbers("NHS No. 999-000-0018, Year 5") == ["9990000018"]


def test_find_nhs_unlabelled_valid():
    assert find_nhs_numbers("Ref 943 476 5919 on file") == ["9434765919"]


def test_find_nhs_skips_invalid():
    assert find_nhs_numbers("NHS number 943 476 5918") == []


def test_find_nhs_skips_phone_number():
    # 0163296049 passes the check digit, but a number starting 0 is a phone number.
    assert find_nhs_numbers("Please ring 016 329 6049") == []


def test_find_nhs_skips_after_mobile():
    assert find_nhs_numbers("Mobile 943 476 5919") == []


# Dates, always day first.


@pytest.mark.parametrize(
    "text",
    ["4/3/12", "04.03.2012", "04-03-2012", "4th March 2012", "4 Mar 2012", "March 4th 2012", "2012-03-04"],
)
def test_parse_uk_date_forms(text):
    assert parse_uk_date(text, TODAY) == date(2012, 3, 4)


def test_parse_uk_date_two_digit_recent_year():
    assert parse_uk_date("3/3/20", TODAY) == date(2020, 3, 3)


def test_parse_uk_date_without_year_is_past():
    assert parse_uk_date("excluded on 22nd December", TODAY) == date(2025, 12, 22)


def test_parse_uk_date_impossible_day():
    assert parse_uk_date("31/02/2012", TODAY) is None


def test_parse_uk_date_score_not_date():
    assert parse_uk_date("attended 6/10 sessions", TODAY) is None


def test_parse_uk_date_smtp_status_not_date():
    assert parse_uk_date("said: 550 5.1.10 Recipient not found", TODAY) is None


def test_dob_labelled_first():
    text = "Seen 02/01/2015 in clinic. Mia Cole, DOB: 14/03/2013."
    assert find_dates_of_birth(text, TODAY) == [date(2013, 3, 14), date(2015, 1, 2)]


def test_dob_date_of_birth_is():
    assert find_dates_of_birth("her date of birth is 23/12/12", TODAY) == [date(2012, 12, 23)]


def test_dob_unlabelled_adult_age_skipped():
    assert find_dates_of_birth("the letter of 01/05/1990", TODAY) == []


def test_dob_future_skipped():
    assert find_dates_of_birth("DOB 01/05/2027", TODAY) == []


# Year groups.


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Y8 pupil", 8),
        ("is in Year 8", 8),
        ("now in year 11", 11),
        ("Yr3 at Oakfield", 3),
        ("started in Reception in September", 0),
        ("Form: 9B", 9),
        ("tutor group 10RS", 10),
        ("Year group: 7", 7),
        ("Ava Cole 8T - update", 8),
    ],
)
def test_year_group_forms(text, expected):
    assert find_year_group(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Rob Hale, Head of Year 9",
        "special school for Years 5 and 6",
        "Flat 9B, Mill Road",
        "the school reception desk",
    ],
)
def test_year_group_not_a_year(text):
    assert find_year_group(text) is None


def test_year_group_skips_past_year():
    assert find_year_group("an EHCP since Year 4, now in Year 7") == 7
