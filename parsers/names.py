"""Children's names: normalisation, nicknames, phonetic keys and comparison levels.

Matching compares a name written in a message with the names on a case. Each
comparison returns a level (exact, nickname, fuzzy, initial, disagree or missing), and
bot/matching.py turns levels into weights. Phonetic keys are Metaphone codes from
jellyfish, so "McKenzie" and "Mackenzie" share a key.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import jellyfish
from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

# Formal first names and the short forms and nicknames used for them in the UK. The
# list is curated by hand; a nickname may stand for several formal names ("Charlie").
FORMAL_NAMES: dict[str, tuple[str, ...]] = {
    "abigail": ("abbie", "abby", "abi", "gail"),
    "albert": ("bert", "bertie", "alby"),
    "alexander": ("alex", "alec", "sandy", "xander", "zander", "lex"),
    "alexandra": ("alex", "alexa", "lexi", "lexie", "sasha", "sandra", "ali"),
    "alexis": ("alex", "lexi", "lexie"),
    "alfred": ("alfie", "alf", "fred", "freddie", "freddy"),
    "amelia": ("millie", "milly"),
    "andrew": ("andy", "drew"),
    "annabel": ("annie", "bella", "belle"),
    "anthony": ("tony", "ant"),
    "archibald": ("archie", "archy"),
    "arthur": ("art", "artie"),
    "benjamin": ("ben", "benji", "benny"),
    "bradley": ("brad",),
    "callum": ("cal",),
    "cameron": ("cam",),
    "caroline": ("carrie", "caz"),
    "catherine": ("cat", "cath", "cathy", "kate", "katie", "katy", "kitty"),
    "charles": ("charlie", "chas", "chaz"),
    "charlotte": ("charlie", "lottie", "lotte"),
    "christina": ("chris", "chrissie", "tina"),
    "christopher": ("chris", "kit"),
    "daniel": ("dan", "danny"),
    "danielle": ("dani", "danni"),
    "david": ("dave", "davey", "davie"),
    "dominic": ("dom",),
    "edward": ("ed", "eddie", "ned", "ted", "teddy"),
    "eleanor": ("ellie", "nell", "nellie", "ella", "nora"),
    "elizabeth": ("liz", "lizzie", "lizzy", "beth", "betty", "libby", "eliza", "elsie", "bess"),
    "emily": ("em", "emmy", "millie"),
    "evelyn": ("evie", "eve"),
    "florence": ("flo", "florrie", "flossie"),
    "francesca": ("fran", "frankie"),
    "francis": ("frank", "frankie", "fran"),
    "frederick": ("fred", "freddie", "freddy"),
    "gabriel": ("gabe",),
    "gabriella": ("gabby", "gabi", "ella"),
    "georgina": ("georgie", "gina"),
    "harold": ("harry", "hal"),
    "harriet": ("hattie", "hatty"),
    "harrison": ("harry",),
    "helen": ("ellie", "nell"),
    "henry": ("harry", "hal", "hank"),
    "imogen": ("immy", "imi"),
    "isabella": ("izzy", "issy", "bella", "belle", "isa"),
    "isabelle": ("izzy", "issy", "bella", "belle", "isa"),
    "jacob": ("jake", "jakey"),
    "jacqueline": ("jackie",),
    "james": ("jim", "jimmy", "jamie", "jas"),
    "jennifer": ("jen", "jenny", "jenni"),
    "jessica": ("jess", "jessie"),
    "john": ("jack", "johnny", "jon"),
    "jonathan": ("jon", "jonny", "john"),
    "joseph": ("joe", "joey", "jo"),
    "josephine": ("jo", "josie"),
    "joshua": ("josh",),
    "katherine": ("kate", "katie", "katy", "kath", "kathy", "kat", "kitty"),
    "kathryn": ("kate", "katie", "katy", "kath", "kathy", "kat"),
    "laurence": ("laurie", "larry"),
    "lawrence": ("laurie", "larry"),
    "leonard": ("leo", "len", "lenny"),
    "louisa": ("lou", "lulu"),
    "louise": ("lou", "lulu"),
    "madeleine": ("maddie", "maddy"),
    "margaret": ("maggie", "meg", "peggy", "maisie"),
    "mary": ("molly", "polly", "mae"),
    "matilda": ("tilly", "tillie", "mattie"),
    "matthew": ("matt", "matty"),
    "maximilian": ("max",),
    "maxwell": ("max",),
    "michael": ("mike", "mikey", "mick", "micky", "mickey"),
    "natalie": ("nat",),
    "natasha": ("tasha", "nat"),
    "nathan": ("nate", "nat"),
    "nathaniel": ("nate", "nat"),
    "nicholas": ("nick", "nicky", "nico"),
    "oliver": ("ollie", "olly", "oli"),
    "olivia": ("liv", "livvy", "livvie", "ollie"),
    "patrick": ("pat", "paddy"),
    "penelope": ("penny",),
    "peter": ("pete",),
    "philip": ("phil", "pip"),
    "phillip": ("phil", "pip"),
    "rebecca": ("becky", "becca", "bex"),
    "reginald": ("reg", "reggie"),
    "richard": ("rich", "richie", "rick", "ricky"),
    "robert": ("rob", "robbie", "bob", "bobby"),
    "ronald": ("ron", "ronnie"),
    "samantha": ("sam", "sammie", "sammy"),
    "samuel": ("sam", "sammy"),
    "sarah": ("sally", "sal"),
    "sebastian": ("seb", "sebby"),
    "sophia": ("sophie", "soph"),
    "stephen": ("steve", "stevie"),
    "steven": ("steve", "stevie"),
    "susan": ("sue", "susie", "suzie"),
    "theodore": ("theo", "ted", "teddy"),
    "thomas": ("tom", "tommy"),
    "timothy": ("tim", "timmy"),
    "tobias": ("toby",),
    "victoria": ("vicky", "tori", "vic"),
    "william": ("will", "willy", "bill", "billy"),
    "zachary": ("zach", "zack", "zac"),
}

_FORMAL_BY_NICKNAME: dict[str, frozenset[str]] = {}
for _formal, _nicknames in FORMAL_NAMES.items():
    for _nickname in _nicknames:
        _FORMAL_BY_NICKNAME[_nickname] = _FORMAL_BY_NICKNAME.get(_nickname, frozenset()) | {_formal}

# Surname particles written with or without a space: "Mc Kenzie", "O Connor", "Van Dyke".
_JOINED_PREFIXES = re.compile(r"^(mc|mac|o|van|von|de|da|di|le|la|st)\s+(?=[a-z])")


@lru_cache(maxsize=16384)
def normalise_name(name: str | None) -> str:
    """Lower-case a name and keep only its letters, without accents, spaces or hyphens."""
    if not name:
        return ""
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(ch for ch in decomposed.lower() if ch.isalpha())


def name_parts(name: str | None) -> tuple[str, ...]:
    """Split a surname at hyphens and spaces ("Carter-Jones" gives carter and jones).

    A particle written apart ("Mc Kenzie") is joined to the word it belongs to.
    """
    if not name:
        return ()
    decomposed = unicodedata.normalize("NFKD", name).lower()
    text = "".join(ch if ch.isalpha() or ch in " -" else "" for ch in decomposed).strip()
    text = _JOINED_PREFIXES.sub(lambda found: found.group(1), text)
    return tuple(part for part in re.split(r"[\s-]+", text) if part)


@lru_cache(maxsize=8192)
def first_name_forms(name: str) -> frozenset[str]:
    """Return a normalised first name with every formal name it may be short for."""
    normalised = normalise_name(name)
    if not normalised:
        return frozenset()
    return frozenset({normalised}) | _FORMAL_BY_NICKNAME.get(normalised, frozenset())


@lru_cache(maxsize=8192)
def phonetic_key(name: str) -> str:
    """Return the Metaphone code of a normalised name, or the name itself when it has none."""
    return jellyfish.metaphone(name).upper() or name.upper()


@lru_cache(maxsize=16384)
def surname_forms(name: str | None) -> tuple[str, ...]:
    """Return the whole normalised surname followed by its hyphen or space parts."""
    parts = name_parts(name)
    whole = "".join(parts)
    return tuple(dict.fromkeys([whole, *parts])) if whole else ()


def is_spelling_variant(first: str, second: str) -> bool:
    """Return whether two normalised names differ only as a slip of spelling would.

    Accepts one edit (insert, delete, substitute or swap two neighbours) in names of
    five letters or more, or the same Metaphone code. A Jaro-Winkler similarity of at
    least 0.93 also counts when the first two letters agree and the lengths differ by
    one at most, which keeps a longer family name apart ("Dunfield", "Dunfieldson").
    """
    if not first or not second:
        return False
    if first == second:
        return True
    shorter = min(len(first), len(second))
    if shorter >= 5 and DamerauLevenshtein.distance(first, second) <= 1:
        return True
    if shorter >= 4 and phonetic_key(first) == phonetic_key(second):
        return True
    if abs(len(first) - len(second)) > 1 or first[:2] != second[:2]:
        return False
    return JaroWinkler.similarity(first, second) >= 0.93


def compare_first_name(written: str | None, initial: str | None, names: list[str]) -> str:
    """Compare the first name a message gives with a case's first and known-as names.

    Returns "exact", "nickname", "fuzzy", "initial" (only an initial was given and it
    agrees), "disagree" or "missing".
    """
    known = [normalise_name(name) for name in names if normalise_name(name)]
    if not known:
        return "missing"
    given = normalise_name(written)
    if given and len(given) > 1:
        if given in known:
            return "exact"
        forms = first_name_forms(given)
        if any(forms & first_name_forms(name) for name in known):
            return "nickname"
        if any(is_spelling_variant(given, name) for name in known):
            return "fuzzy"
        return "disagree"
    letter = normalise_name(initial or written)[:1]
    if not letter:
        return "missing"
    return "initial" if any(name.startswith(letter) for name in known) else "disagree"


def compare_surname(written: str | None, initial: str | None, names: list[str]) -> str:
    """Compare the surname a message gives with a case's surnames.

    Returns "exact", "part" (one part of a double-barrelled name, or the parts in
    another order), "fuzzy", "initial", "disagree" or "missing".
    """
    known = [surname_forms(name) for name in names if normalise_name(name)]
    if not known:
        return "missing"
    given = surname_forms(written)
    if given and len(given[0]) > 1:
        whole = given[0]
        if any(whole == forms[0] for forms in known):
            return "exact"
        if any(set(given) & set(forms) for forms in known):
            return "part"
        if any(is_spelling_variant(whole, forms[0]) for forms in known):
            return "fuzzy"
        return "disagree"
    letter = normalise_name(initial or written)[:1]
    if not letter:
        return "missing"
    return "initial" if any(forms[0].startswith(letter) for forms in known) else "disagree"
