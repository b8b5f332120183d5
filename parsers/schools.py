"""The schools register: lookups by URN, DfE number, sender domain and name in text."""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

# Words that describe the kind of school rather than which one. Matching ignores them,
# so "Oakfield" finds "Oakfield Primary School" and "St Marys" finds "St Mary's CE Primary
# School". When the text does use one, it narrows the candidates.
GENERIC_NAME_WORDS = frozenset(
    {
        "the",
        "and",
        "school",
        "schools",
        "primary",
        "secondary",
        "high",
        "academy",
        "academies",
        "infant",
        "infants",
        "junior",
        "juniors",
        "nursery",
        "college",
        "centre",
        "center",
        "community",
        "foundation",
        "voluntary",
        "aided",
        "controlled",
        "va",
        "vc",
        "ce",
        "cofe",
        "rc",
        "catholic",
        "roman",
        "church",
        "england",
        "methodist",
        "special",
        "free",
        "trust",
        "federation",
        "first",
        "middle",
        "upper",
        "lower",
        "grammar",
        "pru",
        "pupil",
        "referral",
        "unit",
        "studio",
        "endowed",
        "all",
        "through",
    }
)
_DENOMINATION_WORDS = {
    "ce": "ce",
    "cofe": "ce",
    "england": "ce",
    "church": "ce",
    "rc": "rc",
    "catholic": "rc",
    "roman": "rc",
}

_COLUMN_ALIASES = {
    "urn": ("urn", "uniquereferencenumber"),
    "laestab": ("laestab", "dfenumber", "dfeno", "dfe", "laestabnumber", "dfenum"),
    "la_code": ("lacode", "la", "localauthoritycode"),
    "establishment_number": ("establishmentnumber", "estab", "establishmentno"),
    "name": ("establishmentname", "schoolname", "name", "school"),
    "type": ("typeofestablishment", "typeofestablishmentname", "type", "establishmenttype"),
    "postcode": ("postcode", "postalcode"),
    "domain": ("domain", "domains", "emaildomain", "senderdomain", "maildomain"),
    "status": ("status", "establishmentstatus", "establishmentstatusname", "openorclosed"),
}

_URN_IN_TEXT = re.compile(r"\bURN\b\s*(?:no\.?|number)?[\s:#.]*(\d{6})(?!\d)", re.IGNORECASE)
_LAESTAB_SLASHED = re.compile(r"(?<![\d/])(\d{3})\s?/\s?(\d{4})(?![\d/])")
_LAESTAB_PLAIN = re.compile(r"(?<![\d/])(\d{7})(?![\d/])")
_C_OF_E = re.compile(r"\bC\.?\s?of\s?E\b\.?", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)?")


@dataclass(frozen=True)
class School:
    """One establishment. `laestab` is the 7-digit DfE number, "" when unknown."""

    urn: str
    name: str
    laestab: str = ""
    type: str = ""
    postcode: str = ""
    domains: tuple[str, ...] = ()
    status: str = "open"

    @property
    def is_open(self) -> bool:
        return self.status != "closed"


@dataclass(frozen=True)
class SchoolMention:
    """A place in text that names a school. `urns` lists every school that fits, so more
    than one means the text is ambiguous and a person must choose."""

    text: str
    start: int
    end: int
    kind: str  # "urn" | "laestab" | "name"
    urns: tuple[str, ...]

    @property
    def ambiguous(self) -> bool:
        return len(self.urns) > 1


class _Token(NamedTuple):
    # A tuple, not a frozen dataclass, because a long text has thousands of tokens and a
    # tuple is more than twice as fast to create (CPython 3.11).
    forms: frozenset[str]
    start: int
    end: int
    capitalised: bool


@dataclass(frozen=True)
class _NameKey:
    words: tuple[str, ...]
    urn: str
    is_full_name: bool


def _normalise_name(name: str) -> str:
    """Lower-case a school name with "Saint"/"St." as "st" and "C of E" as one word."""
    text = name.lower().replace("’", "'").replace("&", " and ")
    text = re.sub(r"\bc\.?\s*of\s*e\.?(?![a-z])", " cofe ", text)
    text = re.sub(r"\bchurch of england\b", " cofe ", text)
    text = re.sub(r"\bsaint\b|\bst\.", "st", text)
    text = text.replace("'", "")
    return re.sub(r"[^a-z0-9]+", " ", text).strip()


def _name_words(name: str) -> tuple[str, ...]:
    return tuple(_normalise_name(name).split())


def _core_words(words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(word for word in words if word not in GENERIC_NAME_WORDS)


@functools.lru_cache(maxsize=16)
def _tokenise(text: str) -> tuple[_Token, ...]:
    """Split text into words, each with the forms it may match: "Abbeyfield's" also
    matches "abbeyfield", and "St." matches "st".

    Cached, because extraction looks for schools in the same region text several times.
    """
    tokens: list[_Token] = []
    for found in _WORD.finditer(text):
        word = found.group(0).replace("’", "'")
        lowered = word.lower()
        forms = {lowered.replace("'", "")}
        if lowered.endswith("'s"):
            forms.add(lowered[:-2])
        if lowered == "saint":
            forms.add("st")
        tokens.append(_Token(frozenset(forms), found.start(), found.end(), word[0].isupper()))
    return tuple(tokens)


def _normalise_header(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def _column_value(row: Mapping[str, str], field: str) -> str:
    normalised = {_normalise_header(key): value for key, value in row.items() if key}
    for alias in _COLUMN_ALIASES[field]:
        value = normalised.get(alias)
        if value:
            return value.strip()
    return ""


def _status_of(text: str) -> str:
    return "closed" if text.strip().lower().startswith("closed") else "open"


def _laestab_of(row: Mapping[str, str]) -> str:
    laestab = re.sub(r"\D", "", _column_value(row, "laestab"))
    if len(laestab) == 7:
        return laestab

    # GIAS extracts give the LA code and the establishment number in separate columns.
    la_code = re.sub(r"\D", "", _column_value(row, "la_code"))
    number = re.sub(r"\D", "", _column_value(row, "establishment_number"))
    if len(la_code) == 3 and len(number) == 4:
        return la_code + number
    return ""


def school_from_row(row: Mapping[str, str]) -> School | None:
    """Build a School from a register row with GIAS-like column names, or None without a URN."""
    urn = _column_value(row, "urn")
    name = _column_value(row, "name")
    if not urn or not name:
        return None

    domains = tuple(
        domain.lower().lstrip("@") for domain in re.split(r"[;,\s]+", _column_value(row, "domain")) if domain
    )
    return School(
        urn=urn,
        name=name,
        laestab=_laestab_of(row),
        type=_column_value(row, "type"),
        postcode=_column_value(row, "postcode"),
        domains=domains,
        status=_status_of(_column_value(row, "status")),
    )


class SchoolIndex:
    """Schools by URN, DfE number, sender domain and name words."""

    def __init__(self, schools: Iterable[School] = ()) -> None:
        self._by_urn: dict[str, School] = {}
        self._by_laestab: dict[str, list[School]] = {}
        self._by_domain: dict[str, list[School]] = {}
        self._keys_by_first_word: dict[str, list[_NameKey]] = {}

        for school in schools:
            self._add(school)

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, str]]) -> SchoolIndex:
        schools = (school_from_row(row) for row in rows)
        return cls(school for school in schools if school is not None)

    @classmethod
    def from_csv(cls, path: str | Path) -> SchoolIndex:
        """Read a register CSV. GIAS downloads are Windows-1252, so that is the fallback
        when the file is not UTF-8."""
        raw = Path(path).read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("cp1252")
        return cls.from_rows(csv.DictReader(text.splitlines()))

    def _add(self, school: School) -> None:
        self._by_urn[school.urn] = school
        if school.laestab:
            self._by_laestab.setdefault(school.laestab, []).append(school)
        for domain in school.domains:
            self._by_domain.setdefault(domain, []).append(school)

        full = _name_words(school.name)
        core = _core_words(full)
        for words, is_full in ((full, True), (core, False)):
            if words:
                key = _NameKey(words, school.urn, is_full)
                self._keys_by_first_word.setdefault(words[0], []).append(key)

    def __len__(self) -> int:
        return len(self._by_urn)

    def __iter__(self) -> Iterator[School]:
        return iter(self._by_urn.values())

    def by_urn(self, urn: str) -> School | None:
        return self._by_urn.get(str(urn).strip())

    def by_laestab(self, laestab: str) -> list[School]:
        return list(self._by_laestab.get(re.sub(r"\D", "", laestab), []))

    def by_domain(self, domain: str) -> list[School]:
        """Find the schools that send from a domain or a subdomain of it. A trust domain
        can return several."""
        labels = domain.strip().lower().lstrip("@").rstrip(".").split(".")
        for first in range(len(labels) - 1):
            schools = self._by_domain.get(".".join(labels[first:]))
            if schools:
                return list(schools)
        return []

    def find_in_text(self, text: str) -> list[SchoolMention]:
        """Find schools named in text, in text order.

        Reads "URN 900101", DfE numbers ("885/1234", or "8851234" when it is in the
        register) and names without their generic words. Where matches overlap the
        longest wins, and a mention that fits several schools lists them all.
        """
        # "C of E" becomes one word, padded so that offsets into text stay the same.
        text = _C_OF_E.sub(lambda found: "CofE".ljust(len(found.group(0))), text)
        mentions = self._find_numbers(text) + self._find_names(text)
        mentions.sort(key=lambda mention: (mention.start, -(mention.end - mention.start)))

        kept: list[SchoolMention] = []
        for mention in mentions:
            if kept and mention.start < kept[-1].end:
                continue
            kept.append(mention)
        return kept

    def _find_numbers(self, text: str) -> list[SchoolMention]:
        if not self._by_urn:
            return []  # an empty register: no number can match
        mentions = []
        for found in _URN_IN_TEXT.finditer(text):
            if found.group(1) in self._by_urn:
                mentions.append(
                    SchoolMention(found.group(0), found.start(), found.end(), "urn", (found.group(1),))
                )

        for pattern in (_LAESTAB_SLASHED, _LAESTAB_PLAIN):
            for found in pattern.finditer(text):
                schools = self._by_laestab.get("".join(found.groups()), [])
                urns = tuple(school.urn for school in schools)
                if urns:
                    mentions.append(
                        SchoolMention(found.group(0), found.start(), found.end(), "laestab", urns)
                    )
        return mentions

    def _find_names(self, text: str) -> list[SchoolMention]:
        if not self._keys_by_first_word:
            return []  # an empty register: no name can match
        tokens = _tokenise(text)
        mentions = []
        for index, token in enumerate(tokens):
            matches = self._keys_matching_at(tokens, index)
            if not matches:
                continue

            length = max(len(key.words) for key in matches)
            longest = [key for key in matches if len(key.words) == length]
            # A one-word match must be a capitalised word ("the Beacon", not "a beacon").
            if length == 1 and not token.capitalised and not any(key.is_full_name for key in longest):
                continue

            urns = self._narrow(longest, tokens[index + length : index + length + 4])
            end = tokens[index + length - 1].end
            mentions.append(SchoolMention(text[token.start : end], token.start, end, "name", urns))
        return mentions

    def _keys_matching_at(self, tokens: tuple[_Token, ...], index: int) -> list[_NameKey]:
        matches = []
        for form in tokens[index].forms:
            for key in self._keys_by_first_word.get(form, []):
                following = tokens[index : index + len(key.words)]
                if len(following) == len(key.words) and all(
                    word in token.forms for word, token in zip(key.words, following)
                ):
                    matches.append(key)
        return matches

    def _narrow(self, keys: list[_NameKey], following: tuple[_Token, ...]) -> tuple[str, ...]:
        """Keep the schools that fit the generic words written after the name
        ("St Mary's CE" is not the Catholic St Mary's), preferring open schools."""
        urns = list(dict.fromkeys(key.urn for key in keys))

        for token in following:
            generic = sorted(token.forms & GENERIC_NAME_WORDS)
            if not generic:
                break
            required_word = _DENOMINATION_WORDS.get(generic[0], generic[0])
            fitting = [urn for urn in urns if required_word in self._name_word_set(urn)]
            if fitting:
                urns = fitting

        open_urns = [urn for urn in urns if self._by_urn[urn].is_open]
        return tuple(open_urns or urns)

    def _name_word_set(self, urn: str) -> set[str]:
        words = set(_name_words(self._by_urn[urn].name))
        return words | {_DENOMINATION_WORDS[word] for word in words if word in _DENOMINATION_WORDS}
