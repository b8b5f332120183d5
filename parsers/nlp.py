"""The spaCy pipeline: identifier and EHCP patterns, school names and the trained classifier.

The shipped pipeline in parsers/model/ is `spacy.blank("en")` plus a sentencizer, an
EntityRuler with the patterns below and a `textcat` over the message categories. It
uses only spaCy's built-in factories, so `spacy.load(MODEL_DIR)` works without this
module and nothing is downloaded. The school matcher is added at run time from the
schools register (`add_school_patterns`).

There is no trained urgency score: the rule screen in parsers/safeguarding.py decides
urgency, with a reason code for each signal. A bag-of-words urgency classifier trained
on the generated examples was tried and found none of six urgent messages in a labelled
test corpus at a 0.5 threshold, where the rule screen found five.

Retrain with `ccas-bot train` after changing the patterns or the training data: the
EntityRuler patterns are saved with the model, and a test checks the two agree.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from pathlib import Path

import spacy
from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from parsers.identifiers import is_valid_nhs_number
from parsers.schools import GENERIC_NAME_WORDS
from parsers.training_data import CATEGORIES

MODEL_DIR = Path(__file__).resolve().parent / "model"
CLASSIFIER = "textcat"

# Hash table size of the bag-of-words classifier: the saved weights take about
# 4 bytes x labels x this many entries, so 2**16 keeps the model near 2 MB.
BOW_TABLE_SIZE = 2**16

_EMAIL = re.compile(r"\S+@\S+")
_URL = re.compile(r"\bhttps?://\S+|\bwww\.\S+", re.IGNORECASE)
_DIGIT = re.compile(r"\d")


class ModelNotFound(RuntimeError):
    """The trained pipeline folder is missing or incomplete."""


def normalise_for_classifier(text: str) -> str:
    """Lower-case the text, replace addresses by placeholders and every digit by 0.

    The bag-of-words classifier reads exact token text, so training and scoring both
    pass text through here: "Year 8" and "year 9" become the same words.
    """
    text = _EMAIL.sub(" emailaddress ", text)
    text = _URL.sub(" webaddress ", text)
    return _DIGIT.sub("0", text.lower())


# Characters of subject and new text the classifier reads.
CLASSIFIER_TEXT_LIMIT = 2000


def classifier_text(subject: str, body: str) -> str:
    """Join a subject and body the way the training examples are joined."""
    return f"{subject}\n{body}"


# ---------------------------------------------------------------------------
# Identifier, date, year group and EHCP patterns


_MONTH = (r"^(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
          r"|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?$")
_DAY = r"^(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?$"
_YEAR_WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
               "eleven", "twelve", "thirteen"]


def _regex(pattern: str, attr: str = "TEXT", op: str | None = None) -> dict:
    token: dict = {attr: {"REGEX": pattern}}
    if op:
        token["OP"] = op
    return token


def _identifier_patterns() -> list[dict]:
    digits = lambda count: _regex(rf"^\d{{{count}}}$")  # noqa: E731 - a local shorthand
    hyphen = {"ORTH": "-"}
    patterns = [
        # UPN shape: a letter (never I, O or S), 11 digits, then a digit or letter.
        ("UPN", [_regex(r"^[A-HJ-NP-RT-Za-hj-np-rt-z]\d{11}[0-9A-Za-z]$")]),
        # NHS number forms: 10 digits, 3-3-4 with spaces (three tokens) or hyphens.
        ("NHS_NUMBER", [digits(10)]),
        ("NHS_NUMBER", [digits(3), digits(3), digits(4)]),
        ("NHS_NUMBER", [digits(3), hyphen, digits(3), hyphen, digits(4)]),
        # Case references such as CCAS-2026-0001, CCAS/2026/0001 or CCAS 2026 0001.
        ("CASE_REF", [_regex(r"^ccas-\d{4}$", "LOWER"), hyphen, _regex(r"^\d{3,4}$")]),
        ("CASE_REF", [_regex(r"^ccas[/-]?\d{4}[/-]\d{3,4}$", "LOWER")]),
        ("CASE_REF", [{"LOWER": "ccas"}, digits(4), _regex(r"^\d{3,4}$")]),
        # Dates, read day first as UK writers do.
        ("DATE", [_regex(r"^\d{1,2}[/.]\d{1,2}[/.](?:\d{2}|\d{4})$")]),
        ("DATE", [_regex(r"^\d{1,2}$"), hyphen, _regex(r"^\d{1,2}$"), hyphen, _regex(r"^(?:\d{2}|\d{4})$")]),
        ("DATE", [digits(4), hyphen, digits(2), hyphen, digits(2)]),
        ("DATE", [_regex(_DAY), {"LOWER": "of", "OP": "?"}, _regex(_MONTH, "LOWER"),
                  {"ORTH": ",", "OP": "?"}, _regex(r"^\d{4}$", op="?")]),
        ("DATE", [_regex(_MONTH, "LOWER"), _regex(_DAY), {"ORTH": ",", "OP": "?"}, digits(4)]),
        # Year groups: "Year 8", "Yr 8", "Y8", "Yr10", "year-8", "Year Eight".
        ("YEAR_GROUP", [{"LOWER": {"IN": ["year", "yr", "yr."]}}, _regex(r"^(?:[1-9]|1[0-3])$")]),
        ("YEAR_GROUP", [_regex(r"^(?:y|yr\.?|year-?)(?:[1-9]|1[0-3])$", "LOWER")]),
        ("YEAR_GROUP", [{"LOWER": "year"}, {"LOWER": {"IN": _YEAR_WORDS}}]),
    ]
    return [{"label": label, "pattern": pattern} for label, pattern in patterns]


def _ehcp_terms() -> list[list[dict]]:
    """Token sequences that name an Education, Health and Care Plan."""
    return [
        [{"LOWER": {"IN": ["ehcp", "ehcps", "e.h.c.p.", "e.h.c.p"]}}],
        [{"LOWER": "ehc"}, {"LOWER": "plan"}],
        [{"LOWER": "education"}, {"ORTH": ",", "OP": "?"}, {"LOWER": "health"},
         {"LOWER": {"IN": ["and", "&"]}}, {"LOWER": "care"}, {"LOWER": "plan"}],
    ]


def _ehcp_patterns() -> list[dict]:
    """EHCP phrases by status. The EntityRuler keeps the longest match, so "does not have
    an EHCP" (EHCP_NONE) wins over the plain "EHCP" inside it."""
    article = {"LOWER": {"IN": ["an", "a", "the"]}, "OP": "?"}
    adverb = {"LOWER": {"IN": ["currently", "yet", "already", "ever", "got"]}, "OP": "?"}
    negation = {"LOWER": {"IN": ["not", "n't", "never"]}}
    verb = {"LOWER": {"IN": ["have", "has", "on", "got", "hold", "holds", "had", "with", "need", "require"]}}
    patterns: list[tuple[str, list[dict]]] = []

    for term in _ehcp_terms():
        patterns.append(("EHCP", term))
        patterns.append(("EHCP_NONE", [{"LOWER": {"IN": ["no", "without"]}}, article] + term))
        patterns.append(("EHCP_NONE", [negation, adverb, verb, article] + term))
        patterns.append(("EHCP_NONE", term + [{"ORTH": {"IN": [":", "-", "–", "?"]}, "OP": "?"},
                                              {"LOWER": {"IN": ["no", "none", "n", "n/a", "nil"]}}]))
        patterns.append(("EHCP_DRAFT", [{"LOWER": "draft"}] + term))
        patterns.append(("EHCP_ASSESSMENT", [
            {"LOWER": {"IN": ["applied", "applying", "apply", "awaiting", "waiting", "requested", "requesting"]}},
            {"LOWER": "for", "OP": "?"}, article] + term))

    draft_decision = [{"LOWER": {"IN": ["decision", "decided", "agreed", "agree", "agreement"]}},
                      {"LOWER": "to"}, {"LOWER": "issue"}, article, {"LOWER": "draft"}]
    patterns.append(("EHCP_DRAFT", draft_decision))
    patterns.append(("EHCP_DRAFT", draft_decision + [{"LOWER": {"IN": ["ehcp", "plan"]}}]))
    patterns.append(("EHCP_DRAFT", draft_decision + [{"LOWER": "ehc"}, {"LOWER": "plan"}]))

    assessment_heads = [
        [{"LOWER": {"IN": ["ehc", "ehcp"]}}, {"LOWER": "needs"}, {"LOWER": "assessment"}],
        [{"LOWER": {"IN": ["ehcna", "ehna"]}}],
        [{"LOWER": "statutory"}, {"LOWER": "assessment"}],
        [{"LOWER": "education"}, {"ORTH": ",", "OP": "?"}, {"LOWER": "health"},
         {"LOWER": {"IN": ["and", "&"]}}, {"LOWER": "care"}, {"LOWER": "needs"}, {"LOWER": "assessment"}],
    ]
    for head in assessment_heads:
        patterns.append(("EHCP_ASSESSMENT", head))
    refusal = [{"LOWER": {"IN": ["decided", "decision", "agreed", "refused"]}}, {"LOWER": "not", "OP": "?"},
               {"LOWER": "to"}, {"LOWER": {"IN": ["assess", "issue"]}}]
    patterns.append(("EHCP_NONE", refusal))
    patterns.append(("EHCP_NONE", [{"LOWER": {"IN": ["decided", "decision", "agreed"]}}, {"LOWER": "not"},
                                   {"LOWER": "to"}, {"LOWER": {"IN": ["carry", "proceed"]}},
                                   {"LOWER": {"IN": ["out", "with"]}}, article] + assessment_heads[0]))
    return [{"label": label, "pattern": pattern} for label, pattern in patterns]


def entity_patterns() -> list[dict]:
    """Return every EntityRuler pattern the shipped pipeline should hold."""
    return _identifier_patterns() + _ehcp_patterns()


# ---------------------------------------------------------------------------
# Building and loading


def build_pipeline(architecture: str = "bow") -> Language:
    """Build the untrained pipeline: sentencizer, EntityRuler and the category classifier.

    `architecture` is "bow" (spaCy's TextCatBOW.v3 over word uni- and bigrams) or
    "ensemble" (TextCatEnsemble.v2: the same bag of words stacked with a small tok2vec model).
    """
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    ruler = nlp.add_pipe("entity_ruler", config={"validate": True})
    ruler.add_patterns(entity_patterns())

    nlp.add_pipe(CLASSIFIER, config={"model": _classifier_model(architecture)})
    return nlp


def _classifier_model(architecture: str) -> dict:
    bow = {"@architectures": "spacy.TextCatBOW.v3", "exclusive_classes": True,
           "ngram_size": 2, "no_output_layer": False, "length": BOW_TABLE_SIZE}
    if architecture == "bow":
        return bow
    if architecture == "ensemble":
        return {
            "@architectures": "spacy.TextCatEnsemble.v2",
            "nO": None,
            "linear_model": bow,
            "tok2vec": {
                "@architectures": "spacy.Tok2Vec.v2",
                "embed": {"@architectures": "spacy.MultiHashEmbed.v2", "width": 64,
                          "attrs": ["NORM", "PREFIX", "SUFFIX", "SHAPE"],
                          "rows": [5000, 1000, 2500, 500], "include_static_vectors": False},
                "encode": {"@architectures": "spacy.MaxoutWindowEncoder.v2", "width": 64,
                           "window_size": 1, "maxout_pieces": 3, "depth": 2},
            },
        }
    raise ValueError(f"unknown classifier architecture {architecture!r}; expected 'bow' or 'ensemble'")


_LOAD_LOCK = threading.Lock()
_LOADED: dict[Path, Language] = {}


def load_pipeline(path: Path | str | None = None) -> Language:
    """Load the trained pipeline from `path` (default: the shipped parsers/model), once per path.

    The same Language object is returned on every call, so a school matcher added with
    `add_school_patterns` stays in place for later callers.
    """
    folder = Path(path) if path is not None else MODEL_DIR
    folder = folder.resolve()
    with _LOAD_LOCK:
        if folder not in _LOADED:
            if not (folder / "config.cfg").is_file():
                raise ModelNotFound(f"no trained pipeline in {folder}; run `ccas-bot train` to build it")
            _LOADED[folder] = spacy.load(folder)
        return _LOADED[folder]


def category_scores(text: str, nlp: Language | None = None) -> dict[str, float]:
    """Score `text` against every category; the scores sum to 1.

    Pass the subject and the sender's new text joined by `classifier_text`, as in training.
    """
    nlp = load_pipeline() if nlp is None else nlp
    # Only the tokenizer and the classifier run: the other components do not change the
    # scores. The opening of a long message carries its purpose, and a bag-of-words model
    # trained on short messages gains nothing from a long tail, so the text is cut there.
    doc = nlp.make_doc(normalise_for_classifier(text[:CLASSIFIER_TEXT_LIMIT]))
    doc = nlp.get_pipe(CLASSIFIER)(doc)
    return {label: float(doc.cats.get(label, 0.0)) for label in CATEGORIES}


def find_entities(text: str, nlp: Language | None = None) -> list[tuple[str, str, int, int]]:
    """Find identifiers, dates, year groups, EHCP phrases and schools in `text`.

    Returns (label, matched text, start, end) with character offsets into `text`, in text
    order. NHS numbers that fail the modulus 11 check are left out. UPN matches are only
    shape matches: check them with parsers.identifiers.is_valid_upn. A SCHOOL match only
    appears after `add_school_patterns`, and `find_schools` also returns its register name.
    """
    nlp = load_pipeline() if nlp is None else nlp
    disabled = [CLASSIFIER] if CLASSIFIER in nlp.pipe_names else []
    doc = nlp(text, disable=disabled)
    found = []
    for entity in doc.ents:
        if entity.label_ == "NHS_NUMBER" and not is_valid_nhs_number(entity.text):
            continue
        found.append((entity.label_, entity.text, entity.start_char, entity.end_char))
    return found


# ---------------------------------------------------------------------------
# School names from the register

SCHOOL_MATCHER = "ccas_school_matcher"


@Language.factory(SCHOOL_MATCHER, default_config={"names": []})
def _make_school_matcher(nlp: Language, name: str, names: list[str]) -> "SchoolMatcher":
    return SchoolMatcher(nlp, names)


class SchoolMatcher:
    """Mark school names from the register as SCHOOL entities, with the register name as kb_id.

    Full names and their common variants ("St"/"Saint", with or without the apostrophe,
    without a final "School") match in any case. The distinctive part alone ("Oakfield"
    for "Oakfield Primary School") matches only as written in the register, capitals
    included, and only when no other school in the register shares it.
    """

    def __init__(self, nlp: Language, names: Iterable[str]) -> None:
        self.names = list(dict.fromkeys(name.strip() for name in names if name and name.strip()))
        self.any_case = PhraseMatcher(nlp.vocab, attr="LOWER")
        self.exact_case = PhraseMatcher(nlp.vocab, attr="ORTH")

        short_forms: dict[str, set[str]] = {}
        for school in self.names:
            variants = _name_variants(school)
            self.any_case.add(school, [nlp.make_doc(variant) for variant in variants])
            for short in _distinctive_forms(school):
                short_forms.setdefault(short, set()).add(school)
        for short, schools in short_forms.items():
            if len(schools) == 1:
                self.exact_case.add(next(iter(schools)), [nlp.make_doc(short)])

    def __call__(self, doc: Doc) -> Doc:
        spans = []
        for matcher in (self.any_case, self.exact_case):
            for match_id, start, end in matcher(doc):
                school = doc.vocab.strings[match_id]
                spans.append(Span(doc, start, end, label="SCHOOL", kb_id=school))
        # Keep earlier entities (identifiers, dates) and add schools only where they do not overlap.
        taken = {index for entity in doc.ents for index in range(entity.start, entity.end)}
        schools = [span for span in filter_spans(spans) if not taken.intersection(range(span.start, span.end))]
        doc.ents = sorted(list(doc.ents) + schools, key=lambda span: span.start)
        return doc


def _name_variants(name: str) -> list[str]:
    variants = {name}
    for variant in list(variants):
        variants.add(re.sub(r"\bSt\.? ", "Saint ", variant))
        variants.add(re.sub(r"\bSaint ", "St ", variant))
        variants.add(re.sub(r"\bSt ", "St. ", variant))
    for variant in list(variants):
        variants.add(variant.replace("'", "").replace("’", ""))
        variants.add(re.sub(r"\bC(?:hurch)? ?of ?E(?:ngland)?\b", "CE", variant))
    for variant in list(variants):
        trimmed = re.sub(r"\s+School$", "", variant)
        if trimmed != variant and len(trimmed.split()) > 1:
            variants.add(trimmed)
    return sorted(variants)


def _distinctive_forms(name: str) -> list[str]:
    """Return the name without a leading "The" and without the generic words after its core."""
    words = name.replace("’", "'").split()
    if words and words[0].lower() == "the":
        words = words[1:]
    core: list[str] = []
    for word in words:
        if word.lower().strip(".'") in GENERIC_NAME_WORDS:
            break
        core.append(word)
    if not core or core == words or (len(core) == 1 and core[0].rstrip(".") in ("St", "Saint")):
        return []
    text = " ".join(core)
    return sorted({text, text.replace("'", "")})


def add_school_patterns(nlp: Language, names: Iterable[str]) -> None:
    """Add (or replace) the SCHOOL matcher, built from the register's school names."""
    with _LOAD_LOCK:
        if SCHOOL_MATCHER in nlp.pipe_names:
            nlp.remove_pipe(SCHOOL_MATCHER)
        after = "entity_ruler" if "entity_ruler" in nlp.pipe_names else None
        nlp.add_pipe(SCHOOL_MATCHER, config={"names": list(names)}, after=after)


def find_schools(text: str, nlp: Language | None = None) -> list[tuple[str, str, int, int]]:
    """Find school names from the register in `text`: (register name, matched text, start, end).

    Returns an empty list until `add_school_patterns` has been called on the pipeline.
    """
    nlp = load_pipeline() if nlp is None else nlp
    disabled = [CLASSIFIER] if CLASSIFIER in nlp.pipe_names else []
    doc = nlp(text, disable=disabled)
    return [(entity.kb_id_, entity.text, entity.start_char, entity.end_char)
            for entity in doc.ents if entity.label_ == "SCHOOL"]
