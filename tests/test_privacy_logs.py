"""No personal data in the logs: every corpus message through the whole intake with logging at DEBUG.

Each corpus goes through two polls (the second finishes retries and meets every message
again as already stored), the sender that writes replies to a folder, and a retention
purge. Every log line is formatted as `ccas-bot run` formats it, tracebacks included. The
scan then searches it for the values of the registers and labels (names, dates of birth in
the usual written forms, UPNs, NHS numbers, email addresses), the senders and the subjects.
"""

from __future__ import annotations

import csv
import dataclasses
import email
import email.policy
import email.utils
import json
import logging
import re
import tomllib
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.app import build_context, open_store
from bot.config import config_from_mapping
from bot.evaluate import CorpusMailbox, load_corpus
from bot.intake import Intake
from bot.registers import import_cases, import_schools
from replies.send import FolderSender
from store.retention import purge

# The format of `ccas-bot run` (bot.cli.setup_logging), so the scan reads the lines the journal gets.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Shorter subjects ("Hi", "Re:") are common words, which a log line may hold by chance.
MIN_SUBJECT_LENGTH = 5
PERSON_FIELDS = ("first_name", "last_name", "upn", "nhs_number")


def date_forms(value: str) -> set[str]:
    """Write an ISO date of birth the ways people write it in mail: 04/03/2012, 4.3.2012, 4th March 2012."""
    day = date.fromisoformat(value)
    month, short = day.strftime("%B"), day.strftime("%b")
    suffix = "th" if 11 <= day.day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day.day % 10, "th")
    forms = {value}
    for day_text in (f"{day.day:02d}", str(day.day)):
        for month_text in (f"{day.month:02d}", str(day.month)):
            for separator in "/.-":
                forms.add(f"{day_text}{separator}{month_text}{separator}{day.year}")
        forms.update({f"{day_text} {month} {day.year}", f"{day_text} {short} {day.year}"})
    forms.update({f"{day.day}{suffix} {month} {day.year}", f"{month} {day.day}, {day.year}"})
    return forms


def person_values(row: dict) -> set[str]:
    values = {str(row[key]) for key in PERSON_FIELDS if row.get(key)}
    if row.get("nhs_number") and len(str(row["nhs_number"])) == 10:
        number = str(row["nhs_number"])
        values.add(f"{number[:3]} {number[3:6]} {number[6:]}")
    if row.get("dob"):
        values |= date_forms(str(row["dob"]))
    return values


def register_values(corpus_root: Path) -> set[str]:
    """Every child in the case register and the labels, and every name and address in the directory."""
    values: set[str] = set()
    with (corpus_root / "register" / "cases.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            values |= person_values(row)
            if row.get("lead_email"):
                values.add(row["lead_email"])
    for label in sorted((corpus_root / "emails").glob("*.json")):
        child = json.loads(label.read_text(encoding="utf-8")).get("child") or {}
        values |= person_values(child)
    directory_text = (corpus_root / "register" / "directory.toml").read_text(encoding="utf-8")
    values.update(re.findall(r"[\w.+-]+@[\w.-]+\.example", directory_text))
    directory = tomllib.loads(directory_text)
    values.update(member["name"] for member in directory.get("panel_members", []) if member.get("name"))
    return {value for value in values if len(value) >= 3}


def subjects_and_senders(files: list[Path]) -> tuple[set[str], set[str]]:
    subjects: set[str] = set()
    senders: set[str] = set()
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.compat32)
        subject = " ".join(str(message.get("Subject", "")).split())
        if len(subject) >= MIN_SUBJECT_LENGTH:
            subjects.add(subject)
        sender = email.utils.parseaddr(str(message.get("From", "")))[1]
        if "@" in sender:
            senders.add(sender.lower())
    return subjects, senders


def leaks(lines: list[str], values: set[str]) -> list[tuple[str, str]]:
    found = []
    for value in sorted(values):
        pattern = re.compile(rf"(?<![\w@.]){re.escape(value)}(?![\w@])", re.IGNORECASE if "@" in value else 0)
        for line in lines:
            if pattern.search(line):
                found.append((value, line[:160]))
    return found


def run_intake(corpus, workdir: Path) -> None:
    """Two polls of the corpus with a folder sender, then a retention purge ten years on."""
    data = {**corpus.config_data, "store": {"url": f"sqlite:///{workdir / 'scan.sqlite3'}"},
            "sending": {"backend": "folder", "outbox_path": str(workdir / "outbox")}}
    config = config_from_mapping(data, base_dir=workdir)
    store = open_store(config)
    register = corpus.root.parent / "register"
    if corpus.labelled:
        import_schools(store, register / "schools.csv")
        import_cases(store, register / "cases.csv")
    context = dataclasses.replace(build_context(config, store), replay_clock=True)
    sender = FolderSender(workdir / "outbox")
    for _poll in range(2):
        Intake(CorpusMailbox(corpus.root, corpus.files), context, sender).poll_once()
    purge(store, config.retention, now=datetime.now(timezone.utc) + timedelta(days=3660))


@pytest.mark.parametrize("corpus_name", ["ccas", "real"])
def test_debug_logs_hold_no_personal_data(corpus_name, shared_corpus, tmp_path, caplog, capsys):
    corpus = load_corpus(shared_corpus(corpus_name))
    if corpus.labelled and not (corpus.root.parent / "register" / "cases.csv").is_file():
        pytest.skip(f"the {corpus_name} corpus has no register/cases.csv to take values from")
    subjects, senders = subjects_and_senders(corpus.files)
    registers = register_values(corpus.root.parent) if corpus.labelled else set()
    values = subjects | senders | registers

    with caplog.at_level(logging.DEBUG):
        run_intake(corpus, tmp_path)

    formatter = logging.Formatter(LOG_FORMAT)
    lines = [line for record in caplog.records for line in formatter.format(record).splitlines()]
    hits = leaks(lines, values)
    send_lines = sum(" sent (" in line for line in lines)
    with capsys.disabled():
        print(f"\nlog scan of the {corpus_name} corpus: {len(corpus.files)} messages scanned, {len(lines)} log "
              f"lines ({send_lines} about sent replies), {len(values)} values checked ({len(registers)} from the registers and labels, "
              f"{len(senders)} senders, {len(subjects)} subjects), hits = {len(hits)}")
    assert len(corpus.files) > 0
    assert len(lines) >= len(corpus.files), "fewer log lines than messages, so the scan proves little"
    assert any(" stored: outcome=" in line for line in lines), "no store log line was scanned"
    outbox = tmp_path / "outbox"
    if outbox.is_dir() and any(outbox.iterdir()):
        assert send_lines > 0, "replies were sent but no send log line was scanned"
    assert hits == []


def test_scan_finds_planted_values():
    values = date_forms("2012-03-04") | {"Adaline", "ada.parent@home.example", "Referral for Adaline"}
    lines = [
        "2026-01-01 09:00:00 INFO bot.intake: message 3 stored: outcome=handled",
        "2026-01-01 09:00:00 INFO bot.intake: child born 4th March 2012",
        "2026-01-01 09:00:00 INFO bot.intake: reply to ADA.PARENT@home.example",
        "2026-01-01 09:00:00 INFO bot.intake: subject Referral for Adaline",
    ]

    found = leaks(lines, values)

    assert ("4th March 2012", lines[1][:160]) in found
    assert ("ada.parent@home.example", lines[2][:160]) in found
    assert ("Referral for Adaline", lines[3][:160]) in found
    assert not [line for _value, line in found if line == lines[0]]
