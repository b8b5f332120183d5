"""Generated hostile and broken mail (bot/fuzzmail.py) through the reader and the whole intake.

The examples are derandomised, so a failure repeats on every run and machine. The
profile "ci" keeps this file to about half a minute; set CCAS_FUZZ_PROFILE=long for a
run of thousands of examples, or use `ccas-bot bench fuzz --messages N --seed S`.
"""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings

from bot.bench_fuzz import OUTCOMES, FuzzHarness
from bot.fuzzmail import FuzzMessage, messages
from parsers.errors import UnreadableMessage
from parsers.mime import parse_message

_COMMON = dict(derandomize=True, deadline=None, database=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.large_base_example, HealthCheck.function_scoped_fixture])
settings.register_profile("ccas-fuzz-ci", max_examples=300, **_COMMON)
settings.register_profile("ccas-fuzz-long", max_examples=5000, **_COMMON)
PROFILE = settings.get_profile("ccas-fuzz-" + os.environ.get("CCAS_FUZZ_PROFILE", "ci"))

# Bounds for the suite. They are generous so a loaded machine does not fail the run;
# `ccas-bot bench fuzz` checks the tighter default of 10 s per message.
MAX_SECONDS = 60.0
MAX_MEMORY_BYTES = 2 * 1024**3


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    harness = FuzzHarness(tmp_path_factory.mktemp("fuzz"))
    yield harness
    harness.close()


@settings(PROFILE)
@given(messages())
def test_reader_returns_message_for_any_input(message: FuzzMessage):
    try:
        parsed = parse_message(message.raw)
    except UnreadableMessage as error:
        assert error.reason in ("no_headers", "too_large")
        return

    assert [defect for defect in parsed.defects if defect.startswith("failed:")] == []
    assert isinstance(parsed.subject, str)
    assert all(isinstance(attachment.payload, bytes) for attachment in parsed.attachments)


@settings(PROFILE)
@given(messages())
def test_intake_ends_every_message_in_one_outcome(harness, message: FuzzMessage):
    result = harness.run(message.raw)

    assert result.error is None
    assert result.outcome in OUTCOMES
    assert harness.check(result, message.automated, MAX_SECONDS, MAX_MEMORY_BYTES) == []


@settings(PROFILE)
@given(messages().filter(lambda message: message.automated))
def test_automatic_mail_never_answered(harness, message: FuzzMessage):
    result = harness.run(message.raw)

    assert result.outcome in OUTCOMES
    assert [recipient for recipient, _ in result.planned if recipient == result.sender_email] == []


def test_bench_fuzz_prints_figures(capsys):
    from bot.cli import main

    status = main(["bench", "fuzz", "--messages", "25", "--seed", "3", "--json"])

    figures = json.loads(capsys.readouterr().out)
    assert status == 0
    assert figures["messages"] == 25
    assert figures["crashes"] == 0
    assert figures["failures"] == 0
    assert sum(figures["outcomes"].values()) == 25
    assert 0 < figures["seconds_p50"] <= figures["seconds_p99"] <= figures["seconds_max"]


def test_bench_fuzz_reports_bound_failures(capsys):
    from bot.cli import main

    status = main(["bench", "fuzz", "--messages", "5", "--max-seconds", "0", "--json"])

    figures = json.loads(capsys.readouterr().out)
    assert status == 1
    assert figures["failures"] == 5
    assert figures["failure_kinds"] == {"time_limit": 5}
