"""Name comparison levels used by matching."""

from __future__ import annotations

import pytest

from parsers.names import compare_first_name, compare_surname, phonetic_key, surname_forms


@pytest.mark.parametrize(("written", "initial", "names", "level"), [
    ("Alfred", None, ["Alfred"], "exact"),
    ("alfie", None, ["Alfred"], "nickname"),
    ("Katie", None, ["Katherine"], "nickname"),
    ("Ellie", None, ["Eleanor", ""], "nickname"),
    ("Jaydon", None, ["Jayden"], "fuzzy"),
    ("Mia", None, ["Mason"], "disagree"),
    (None, "J", ["Jayden"], "initial"),
    (None, "K", ["Jayden"], "disagree"),
    (None, None, ["Jayden"], "missing"),
])
def test_first_name_levels(written, initial, names, level):
    assert compare_first_name(written, initial, names) == level


@pytest.mark.parametrize(("written", "initial", "names", "level"), [
    ("McKenzie", None, ["McKenzie"], "exact"),
    ("Mackenzie", None, ["McKenzie"], "fuzzy"),
    ("Carter", None, ["Carter-Jones"], "part"),
    ("Jones Carter", None, ["Carter-Jones"], "part"),
    ("O'Connor", None, ["OConnor"], "exact"),
    ("Dunfieldson", None, ["Dunfield"], "disagree"),
    (None, "O", ["Osei"], "initial"),
    ("Smith", None, ["Osei"], "disagree"),
])
def test_surname_levels(written, initial, names, level):
    assert compare_surname(written, initial, names) == level


def test_surname_forms_split_parts():
    assert surname_forms("Carter-Jones") == ("carterjones", "carter", "jones")
    assert surname_forms("Mc Kenzie") == ("mckenzie",)


def test_phonetic_key_ignores_spelling():
    assert phonetic_key("mckenzie") == phonetic_key("mackenzie")
