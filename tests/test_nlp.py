"""The spaCy pipeline: shipped model, categories, identifier and school matchers, training."""

from __future__ import annotations

import json
import re
import socket
import time

import pytest
import spacy

from bot.cli import main
from bot.train import train_pipeline
from parsers.nlp import (
    MODEL_DIR,
    add_school_patterns,
    category_scores,
    classifier_text,
    entity_patterns,
    find_entities,
    find_schools,
    load_pipeline,
)
from parsers.training_data import CATEGORIES, generate_examples

# Written for these tests, not taken from the generator's templates.
CLEAR_MESSAGES = {
    "support_request": (
        "Referral: Poppy Greatorex",
        "Hello, I am Poppy's consultant paediatrician. She has juvenile arthritis and has been too unwell "
        "to attend Foxley Academy since January. I am referring her to the panel and asking for tuition "
        "to be arranged. Her parents consent to the referral. Medical letter attached.",
    ),
    "school_notification": (
        "Absence notification",
        "Dear CCAS, this is to notify you that Reuben Mossop in Year 9 has been absent from our school for "
        "22 days in a row with a medical note from his GP. His attendance is 41%. "
        "Attendance Officer, Greenacre High School",
    ),
    "change_of_circumstances": (
        "Update: Esme Varley CCAS-2026-0031",
        "Just to update you on Esme, who is currently receiving tuition through CCAS. She was discharged "
        "from hospital last week and is now on a reduced timetable at school, two hours each morning.",
    ),
    "query": (
        "Question",
        "Hi, could you tell me how often the panel meets and whether there is a deadline for submitting "
        "referral paperwork before each meeting? Thanks",
    ),
    "ehcp": (
        "Isla Rowntree",
        "Isla has an EHCP and her placement at Larkrise School has broken down; she has not attended for "
        "six weeks. Could SEND pick this up please?",
    ),
    "action_update": (
        "Panel action",
        "My action from panel was to arrange a home visit for Kai Dunmore. I visited on Tuesday, "
        "so this action is complete and can come off the action log.",
    ),
    "parent_contact": (
        "my son",
        "hello my son Tyler has not been able to go to school for months because of his anxiety and "
        "nobody has helped us. please can somebody phone me",
    ),
    "unrelated": (
        "Spring sale",
        "Huge discounts on school uniforms and PE kits this week only! Order online today. "
        "To stop receiving these emails, unsubscribe here.",
    ),
}


@pytest.fixture
def fresh_pipeline():
    """A pipeline loaded on its own, so school patterns added in a test stay out of the cache."""
    return spacy.load(MODEL_DIR)


def test_model_loads_offline(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network access attempted while loading the pipeline")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)

    nlp = spacy.load(MODEL_DIR)

    assert nlp.pipe_names == ["sentencizer", "entity_ruler", "textcat"]
    assert sorted(nlp.get_pipe("textcat").labels) == sorted(CATEGORIES)


def test_model_size_under_limit():
    size = sum(path.stat().st_size for path in MODEL_DIR.rglob("*") if path.is_file())

    assert size < 4_000_000


def test_shipped_patterns_current():
    shipped = spacy.load(MODEL_DIR).get_pipe("entity_ruler").patterns

    assert _pattern_set(shipped) == _pattern_set(entity_patterns()), "patterns changed: run `ccas-bot train`"


def _pattern_set(patterns: list[dict]) -> set[str]:
    return {json.dumps(pattern, sort_keys=True) for pattern in patterns}


@pytest.mark.parametrize("category", CATEGORIES)
def test_clear_message_category(category):
    subject, body = CLEAR_MESSAGES[category]

    scores = category_scores(classifier_text(subject, body))

    assert max(scores, key=scores.get) == category, scores


def test_scores_sum_to_one():
    scores = category_scores("Hello")

    assert set(scores) == set(CATEGORIES)
    assert sum(scores.values()) == pytest.approx(1.0, abs=1e-3)


def test_identifiers_found():
    text = ("Re CCAS-2026-0042: Amber Kettlewell, DOB 04/09/2012, Yr 8, UPN A123456789012, "
            "NHS number 943 476 5919, seen on 12th March 2026.")

    found = {(label, value) for label, value, _, _ in find_entities(text)}

    assert ("CASE_REF", "CCAS-2026-0042") in found
    assert ("DATE", "04/09/2012") in found
    assert ("YEAR_GROUP", "Yr 8") in found
    assert ("UPN", "A123456789012") in found
    assert ("NHS_NUMBER", "943 476 5919") in found
    assert ("DATE", "12th March 2026") in found


def test_entity_offsets_match_text():
    text = "NHS no. 943-476-5919 and case ccas/2025/0007"

    for label, value, start, end in find_entities(text):
        assert text[start:end] == value, label


def test_invalid_nhs_number_skipped():
    labels = [label for label, _, _, _ in find_entities("Phone 1234567890 or NHS 943 476 5918")]

    assert "NHS_NUMBER" not in labels


@pytest.mark.parametrize(("text", "label"), [
    ("She does not have an EHCP.", "EHCP_NONE"),
    ("He doesn't currently have an EHC plan.", "EHCP_NONE"),
    ("EHCP: none", "EHCP_NONE"),
    ("There is no Education, Health and Care Plan.", "EHCP_NONE"),
    ("The LA made the decision to issue a draft EHCP.", "EHCP_DRAFT"),
    ("An EHC needs assessment was requested in May.", "EHCP_ASSESSMENT"),
    ("He has an EHCP naming Foxley Academy.", "EHCP"),
])
def test_ehcp_phrases(text, label):
    labels = [found_label for found_label, _, _, _ in find_entities(text)]

    assert labels == [label]


def test_school_found_by_name(fresh_pipeline):
    add_school_patterns(fresh_pipeline, ["Oakfield Primary School", "St Mary's CE Primary School",
                                         "St Mary's Catholic Primary School", "Riverbank Academy"])
    text = "She moved from st marys ce primary to Riverbank Academy; her brother is at Oakfield."

    schools = find_schools(text, fresh_pipeline)

    assert [name for name, _, _, _ in schools] == [
        "St Mary's CE Primary School", "Riverbank Academy", "Oakfield Primary School"]
    assert schools[0][1] == "st marys ce primary"


def test_ambiguous_short_name_skipped(fresh_pipeline):
    add_school_patterns(fresh_pipeline, ["St Mary's CE Primary School", "St Mary's Catholic Primary School"])

    assert find_schools("He attends St Mary's.", fresh_pipeline) == []


def test_school_patterns_replaced(fresh_pipeline):
    add_school_patterns(fresh_pipeline, ["Riverbank Academy"])
    add_school_patterns(fresh_pipeline, ["Hillcrest Primary Academy"])

    assert find_schools("Riverbank Academy", fresh_pipeline) == []
    assert fresh_pipeline.pipe_names.count("ccas_school_matcher") == 1


def test_school_keeps_identifier_entities(fresh_pipeline):
    add_school_patterns(fresh_pipeline, ["Riverbank Academy"])

    labels = [label for label, _, _, _ in find_entities("Riverbank Academy, Year 7", fresh_pipeline)]

    assert labels == ["SCHOOL", "YEAR_GROUP"]


def test_load_pipeline_cached():
    assert load_pipeline() is load_pipeline()


def test_generator_deterministic():
    first = generate_examples(400, seed=7)
    second = generate_examples(400, seed=7)
    other = generate_examples(400, seed=8)

    assert first == second
    assert first != other


def test_generator_balanced():
    examples = generate_examples(800, seed=1)

    counts = {category: sum(example.category == category for example in examples) for category in CATEGORIES}
    assert set(counts.values()) == {100}


def test_generator_addresses_fictional():
    examples = generate_examples(2000, seed=2)

    addresses = [address for example in examples for address in re.findall(r"\S+@[\w.-]+", example.text)]
    assert addresses
    assert all(address.lower().endswith(".example") for address in addresses)


def test_training_deterministic(tmp_path):
    started = time.perf_counter()
    status = main(["train", "--examples", "200", "--seed", "3", "--output", str(tmp_path / "first")])
    elapsed = time.perf_counter() - started
    train_pipeline(200, seed=3, output=tmp_path / "second")
    train_pipeline(200, seed=4, output=tmp_path / "other")

    assert status == 0
    assert elapsed < 60
    text = classifier_text("Update", "Esme is back at school full time.")
    first = category_scores(text, load_pipeline(tmp_path / "first"))
    assert first == category_scores(text, load_pipeline(tmp_path / "second"))
    assert first != category_scores(text, load_pipeline(tmp_path / "other"))
