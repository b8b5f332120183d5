"""No personal data in the logs: every corpus message triaged with logging at DEBUG."""

from __future__ import annotations

import csv
import email
import email.policy
import logging
import re
from pathlib import Path

import pytest

from bot.evaluate import load_corpus, triage_corpus


def register_values(corpus_root: Path) -> set[str]:
    """Names, dates of birth (in ISO and UK forms), UPNs, NHS numbers and addresses."""
    values: set[str] = set()
    cases = corpus_root / "register" / "cases.csv"
    with cases.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            for key in ("first_name", "last_name", "upn", "nhs_number", "lead_email"):
                if row.get(key):
                    values.add(row[key])
            if row.get("dob"):
                year, month, day = row["dob"].split("-")
                values.update({row["dob"], f"{day}/{month}/{year}", f"{day}.{month}.{year}"})
    directory = (corpus_root / "register" / "directory.toml").read_text(encoding="utf-8")
    values.update(re.findall(r"[\w.+-]+@[\w.-]+", directory))
    return {value for value in values if len(value) >= 3}


def subjects_and_senders(files: list[Path]) -> set[str]:
    found: set[str] = set()
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.compat32)
        subject = " ".join(str(message.get("Subject", "")).split())
        if len(subject) >= 8:
            found.add(subject)
        sender = email.utils.parseaddr(str(message.get("From", "")))[1]
        if "@" in sender:
            found.add(sender.lower())
    return found


def leaks(lines: list[str], values: set[str]) -> list[tuple[str, str]]:
    found = []
    for value in values:
        pattern = re.compile(rf"(?<![\w@.]){re.escape(value)}(?![\w@])")
        for line in lines:
            if pattern.search(line):
                found.append((value, line[:120]))
    return found


@pytest.mark.parametrize("corpus_name", ["ccas", "real"])
def test_debug_logs_hold_no_personal_data(corpus_name, shared_corpus, tmp_path, caplog):
    corpus = load_corpus(shared_corpus(corpus_name))
    values = subjects_and_senders(corpus.files)
    if corpus.labelled:
        values |= register_values(corpus.root.parent)

    with caplog.at_level(logging.DEBUG):
        triage_corpus(corpus, tmp_path)

    lines = [record.getMessage() for record in caplog.records]
    lines += [record.exc_text or "" for record in caplog.records]
    assert lines, "nothing was logged, so the scan proves nothing"
    assert leaks(lines, values) == []
