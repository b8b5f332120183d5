"""Blocking keys: the indexed values that find candidate cases for a message.

Matching never reads every case. A case is stored with a set of keys, and a message
is turned into keys the same way, so one indexed lookup returns the few cases that
share one. Each key is "kind:value":

- `u:` UPN (current and former), `n:` NHS number;
- `d:` date of birth, looked up only for a message that gives no name, and `fd:` and
  `sd:` first-name sound or surname sound with the date of birth;
- `sf:` surname sound and first-name sound, for a full name;
- `si:` surname sound and first initial ("J Whitmore") and `fl:` first-name sound and
  surname initial ("Freya D"), looked up only when the message gives just an initial;
- `fs:` first-name sound and school URN ("Ava" at her school).

First-name sounds cover the formal names a nickname stands for, so "Alfie" and
"Alfred" share a key. The keys depend on parsers/names.py: after changing its lists,
rebuild them with Store.rebuild_case_keys().
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from parsers.names import first_name_forms, normalise_name, phonetic_key, surname_forms


def _first_sounds(names: Iterable[str]) -> set[str]:
    sounds = set()
    for name in names:
        for form in first_name_forms(name or ""):
            sounds.add(phonetic_key(form))
    return sounds


def _surname_sounds(names: Iterable[str]) -> set[str]:
    return {phonetic_key(form) for name in names for form in surname_forms(name)}


def _initials(names: Iterable[str]) -> set[str]:
    return {normalise_name(name)[:1] for name in names if normalise_name(name)}


def swapped_day_month(value: date) -> date | None:
    """Return the date with day and month swapped, or None when that is no other date."""
    if value.day > 12 or value.day == value.month:
        return None
    try:
        return value.replace(month=value.day, day=value.month)
    except ValueError:
        return None


def keys_for_case(*, first_names: Iterable[str], last_names: Iterable[str], dob: date | None,
                  upns: Iterable[str], nhs_number: str, school_urns: Iterable[str]) -> set[str]:
    """Return the blocking keys stored for one case."""
    first_names = [name for name in first_names if normalise_name(name)]
    last_names = [name for name in last_names if normalise_name(name)]
    first_sounds = _first_sounds(first_names)
    surname_sounds = _surname_sounds(last_names)

    keys = {f"u:{upn}" for upn in upns if upn}
    if nhs_number:
        keys.add(f"n:{nhs_number}")
    if dob is not None:
        keys.add(f"d:{dob.isoformat()}")
        keys |= {f"fd:{first}|{dob.isoformat()}" for first in first_sounds}
        keys |= {f"sd:{surname}|{dob.isoformat()}" for surname in surname_sounds}
    keys |= {f"sf:{surname}|{first}" for surname in surname_sounds for first in first_sounds}
    keys |= {f"si:{surname}|{initial}" for surname in surname_sounds for initial in _initials(first_names)}
    keys |= {f"fl:{first}|{initial}" for first in first_sounds for initial in _initials(last_names)}
    keys |= {f"fs:{first}|{urn}" for first in first_sounds for urn in school_urns if urn}
    return {key[:120] for key in keys}


def keys_for_query(*, first_name: str | None, last_name: str | None, first_initial: str | None,
                   last_initial: str | None, dob: date | None, upn: str | None,
                   nhs_number: str | None, school_urns: Iterable[str]) -> set[str]:
    """Return the keys to look up for the details a message gives.

    Names are also tried the other way round, for a surname written first, and a
    date of birth also with its day and month swapped.
    """
    keys: set[str] = set()
    if upn:
        keys.add(f"u:{upn}")
    if nhs_number:
        keys.add(f"n:{nhs_number}")

    first = first_name if first_name and len(normalise_name(first_name)) > 1 else None
    last = last_name if last_name and len(normalise_name(last_name)) > 1 else None
    first_letter = normalise_name(first_initial or first_name or "")[:1]
    last_letter = normalise_name(last_initial or last_name or "")[:1]

    if dob is not None:
        swapped = swapped_day_month(dob)
        dates = [value.isoformat() for value in (dob, swapped) if value is not None]
        # Both name orders, as for the name keys below.
        given_names = [name for name in (first, last) if name]
        name_sounds = []
        if first:
            name_sounds += [f"fd:{sound}" for sound in _first_sounds(given_names)]
        if last:
            name_sounds += [f"sd:{sound}" for sound in _surname_sounds(given_names)]
        if name_sounds:
            # Another child born the same day shares only "d:", so it is not looked up.
            keys |= {f"{sound}|{value}" for sound in name_sounds for value in dates}
        else:
            keys |= {f"d:{value}" for value in dates}

    orders = [(first, last, first_letter, last_letter)]
    if first and last:
        orders.append((last, first, last_letter, first_letter))
    for order, (given, family, given_letter, family_letter) in enumerate(orders):
        first_sounds = _first_sounds([given]) if given else set()
        surname_sounds = _surname_sounds([family]) if family else set()
        keys |= {f"sf:{surname}|{sound}" for surname in surname_sounds for sound in first_sounds}
        if given_letter and not given:
            # Only for a first name given as an initial, like "fl:" below: a surname
            # with an initial also finds every brother, sister and cousin.
            keys |= {f"si:{surname}|{given_letter}" for surname in surname_sounds}
        if family_letter and not family:
            keys |= {f"fl:{sound}|{family_letter}" for sound in first_sounds}
        if order == 0:
            keys |= {f"fs:{sound}|{urn}" for sound in first_sounds for urn in school_urns if urn}
    return {key[:120] for key in keys}
