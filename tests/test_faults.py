"""Faults against the real Dovecot and SMTP servers: SIGKILL, server restarts, SMTP down, database locked.

The one documented window for a duplicate reply is a kill between the SMTP server
accepting a reply and the outbox commit that marks it sent (see bot/intake.py).
The SIGKILL test counts duplicates, checks that each fell in that window, and
prints the count and the window's measured width.
"""

from __future__ import annotations

import bisect
import email
import email.policy
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

import mailfactory
from bot.cli import main as cli_main
from bot.errors import RemoteError
from bot.mailboxes.imap import ImapMailbox
from liveconfig import (SERVER_PROCESSED, SERVER_QUARANTINE, make_config, poll, server_env,
                        write_config)

# The runs happen in child processes that open the SQLite file their configuration names,
# and the checks read that file (and hold its locks) with sqlite3.
pytestmark = pytest.mark.sqlite_only("runs child processes on the SQLite file and reads it with sqlite3")

RUNS = 200
RUNNER = Path(__file__).resolve().parent / "fault_runner.py"
# Share of runs left to finish, so the backlog that killed runs leave behind drains.
UNKILLED_SHARE = 0.25
BUSY_TIMEOUT_MS = 200
TERMINAL = ("handled", "needs_person")


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.compat32)


# Dissimilar names, so no two generated children look alike to matching: children who
# differ by one letter and a near date of birth are rightly held for a person as ambiguous.
FIRST_NAMES = ("Amara", "Bartholomew", "Cosima", "Desmond", "Eilidh", "Florian", "Gwendolyn", "Hamish",
               "Isolde", "Jago", "Kerensa", "Lorcan", "Marisol", "Niamh", "Oswin", "Perpetua", "Quillon",
               "Rosalind", "Sebastiano", "Tamsin", "Ulrich", "Venetia", "Wilfred")
LAST_NAMES = ("Abernethy", "Blackwood", "Carmichael", "Delacroix", "Eastwick", "Fairbrother", "Greenhalgh",
              "Hollingworth", "Ironside", "Jessop", "Kettleby", "Lockhart", "Merriweather", "Nightingale",
              "Ormerod", "Pennington", "Quartermaine", "Rushworth", "Sutcliffe", "Thistlewood", "Underhill",
              "Vavasour", "Whitlock")


def referral(number: int) -> bytes:
    """A referral about a child of its own from a sender of its own, so no acknowledgement brake applies."""
    first = FIRST_NAMES[number % len(FIRST_NAMES)]
    last = LAST_NAMES[(number // len(FIRST_NAMES)) % len(LAST_NAMES)]
    # Steps of 53 days within ten years: distinct for every number the test uses, and the
    # names differ too wherever two dates happen to look like a typo of each other.
    born = date(2008, 9, 1) + timedelta(days=(53 * number) % 3650)
    message = mailfactory.referral(first, last, born.strftime("%d/%m/%Y"))
    message.replace_header("From", f"Clinician {number} <clinician{number}@{mailfactory.HEALTH_DOMAIN}>")
    return message.as_bytes()


class PollRunner:
    """tests/fault_runner.py in a child process: forks a poll per run and kills it when asked."""

    def __init__(self, config_path: Path, log_path: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(RUNNER), str(config_path), str(log_path)], env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = self.process.stdout.readline().strip()
        assert ready == "ready", f"fault runner did not start: {ready!r}"

    def run(self, delay: float | None) -> dict:
        self.process.stdin.write(f"run {'none' if delay is None else f'{delay:.4f}'}\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, "fault runner exited"
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def stored_messages(database: Path) -> dict[str, list[tuple[str, int]]]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT message_id, outcome, mailbox_done FROM message").fetchall()
    found: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for message_id, outcome, done in rows:
        found[message_id].append((outcome, done))
    return found


def outbox_rows(database: Path) -> list[tuple[str, str, str | None]]:
    with sqlite3.connect(database) as connection:
        return connection.execute("SELECT out_message_id, status, sent_at FROM outbox").fetchall()


def as_timestamp(stored: str) -> float:
    value = datetime.fromisoformat(stored)
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()


def test_sigkill_at_random_points_loses_nothing(dovecot, smtp_server, tmp_path, capsys):
    seed = int(os.environ.get("CCAS_FAULT_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    config_path = write_config(dovecot, smtp_server, tmp_path)
    runner = PollRunner(config_path, tmp_path / "polls.log", server_env(dovecot, smtp_server))
    referrals: dict[str, str] = {}  # Message-ID -> sender address
    auto_replies: set[str] = set()

    def append_one() -> None:
        number = len(referrals) + len(auto_replies) + 1
        if rng.random() < 0.125:
            raw = mailfactory.out_of_office().as_bytes()
            auto_replies.add(parse(raw)["Message-ID"])
        else:
            raw = referral(number)
            referrals[parse(raw)["Message-ID"]] = f"clinician{number}@{mailfactory.HEALTH_DOMAIN}"
        dovecot.append("INBOX", raw)

    try:
        # Kill delays are drawn up to 1.2 times the median length of recent runs left to
        # finish, so most kills land inside a poll whatever the machine's speed. The first
        # run creates the database and is left out.
        for _ in range(2):
            append_one()
            append_one()
            calibration = runner.run(None)
            assert calibration["status"] == 0, (tmp_path / "polls.log").read_text()
        durations = [calibration["ended"] - calibration["started"]]

        runs = []
        for _ in range(RUNS):
            for _ in range(rng.choice((0, 1, 1, 2))):
                append_one()
            if rng.random() < UNKILLED_SHARE:
                runs.append(runner.run(None))
                durations.append(runs[-1]["ended"] - runs[-1]["started"])
            else:
                runs.append(runner.run(rng.uniform(0, 1.2 * statistics.median(durations[-20:]))))
        final = [runner.run(None), runner.run(None)]
    finally:
        runner.close()

    context = f"seed {seed}; poll log {tmp_path / 'polls.log'}"
    assert [result["status"] for result in final] == [0, 0], context
    killed = [result for result in runs if result["status"] == -9]
    assert len(killed) >= RUNS // 4, context

    # Every message is stored once, finished, and moved once.
    database = tmp_path / "store.sqlite3"
    stored = stored_messages(database)
    appended = set(referrals) | auto_replies
    for message_id in appended:
        rows = stored[message_id.strip("<>")]  # the store keeps a Message-ID without its brackets
        assert len(rows) == 1, f"{message_id} stored {len(rows)} times; {context}"
        outcome, done = rows[0]
        assert outcome in TERMINAL, context
        assert done == 1, context
    assert dovecot.list_uids("INBOX") == []
    processed = [parse(raw)["Message-ID"] for raw in dovecot.folder_messages(SERVER_PROCESSED)]
    assert sorted(processed) == sorted(appended)
    assert dovecot.list_uids(SERVER_QUARANTINE) == []
    outbox = outbox_rows(database)
    assert [row for row in outbox if row[1] != "sent"] == []

    # Each referral has one acknowledgement; an automatic reply has none.
    received = smtp_server.messages
    copies: dict[str, list] = defaultdict(list)
    acknowledgements: dict[str, set[str]] = defaultdict(set)
    for item in received:
        reply = parse(item.data)
        copies[reply["Message-ID"]].append(item)
        acknowledgements[reply["In-Reply-To"]].add(reply["Message-ID"])
        assert item.rcpt_tos == [referrals.get(reply["In-Reply-To"])], context
    for message_id in referrals:
        assert len(acknowledgements[message_id]) == 1, f"{message_id}: {acknowledgements[message_id]}; {context}"
    for message_id in auto_replies:
        assert message_id not in acknowledgements, context

    # A copy sent twice is the same outbox item, first accepted during a run that was killed.
    # The server may accept a reply a little after the kill, when the client had sent the
    # whole message but died before reading the 250 reply, so a run lasts until the next starts.
    starts = [run["started"] for run in runs] + [final[0]["started"]]
    duplicates = {message_id: items for message_id, items in copies.items() if len(items) > 1}
    lags = []
    for message_id, items in duplicates.items():
        assert len({item.data for item in items}) == 1, context
        first = min(item.accepted_at for item in items)
        index = bisect.bisect_right(starts, first) - 1
        assert 0 <= index < len(runs), f"duplicate {message_id} accepted outside the runs; {context}"
        assert runs[index]["status"] == -9, \
            f"duplicate {message_id} accepted during a run that was not killed: {runs[index]}; {context}"
        lags.append(first - runs[index]["killed_at"])

    # The window: from the SMTP server accepting a reply to the commit that marks it sent.
    sent_at = {f"<{out_message_id.strip('<>')}>": as_timestamp(stamp) for out_message_id, _, stamp in outbox}
    widths = sorted(sent_at[message_id] - items[0].accepted_at
                    for message_id, items in copies.items() if len(items) == 1)
    duplicate_note = "no duplicate acknowledgements"
    if duplicates:
        offsets = ", ".join(f"{lag * 1000:+.1f} ms" for lag in lags)
        duplicate_note = (f"{len(duplicates)} duplicate acknowledgements, each first accepted during "
                          f"a killed run (accepted minus killed: {offsets})")
    with capsys.disabled():
        print(f"\nSIGKILL faults: {RUNS} runs, {len(killed)} killed, {len(appended)} messages, "
              f"{duplicate_note}; window from SMTP acceptance to the sent mark: p50 "
              f"{statistics.median(widths) * 1000:.1f} ms, max {widths[-1] * 1000:.1f} ms; seed {seed}")


def acknowledged(smtp_server) -> list[str]:
    return sorted(parse(item.data)["In-Reply-To"] for item in smtp_server.messages)


def append_referrals(dovecot, count: int) -> list[str]:
    message_ids = []
    for number in range(1, count + 1):
        raw = referral(number)
        dovecot.append("INBOX", raw)
        message_ids.append(parse(raw)["Message-ID"])
    return sorted(message_ids)


def test_dovecot_restart_mid_poll_retried_next_poll(dovecot, smtp_server, tmp_path, monkeypatch):
    config = make_config(dovecot, smtp_server, tmp_path, monkeypatch)
    message_ids = append_referrals(dovecot, 3)
    real_fetch = ImapMailbox.fetch
    fetches = []

    def fetch_with_restart(self, ref):
        fetches.append(ref.uid)
        if len(fetches) == 2:
            dovecot.restart()
        return real_fetch(self, ref)

    with monkeypatch.context() as patch:
        patch.setattr(ImapMailbox, "fetch", fetch_with_restart)
        with pytest.raises(RemoteError):
            poll(config)
    assert len(smtp_server.wait_for(1)) == 1
    poll(config)
    poll(config)

    smtp_server.wait_for(3)
    assert acknowledged(smtp_server) == message_ids
    assert dovecot.list_uids("INBOX") == []
    assert len(dovecot.list_uids(SERVER_PROCESSED)) == 3


def test_smtp_down_replies_wait_then_leave_once(dovecot, smtp_server, tmp_path, monkeypatch):
    config = make_config(dovecot, smtp_server, tmp_path, monkeypatch)
    message_ids = append_referrals(dovecot, 2)
    smtp_server.stop()

    summary = poll(config)

    outbox = outbox_rows(tmp_path / "store.sqlite3")
    assert [status for _, status, _ in outbox] == ["pending", "pending"]
    assert summary.send_failures == 2
    assert dovecot.list_uids("INBOX") == []
    smtp_server.start()
    poll(config)
    poll(config)

    smtp_server.wait_for(2)
    assert acknowledged(smtp_server) == message_ids
    assert [status for _, status, _ in outbox_rows(tmp_path / "store.sqlite3")] == ["sent", "sent"]


class HeldLock:
    """Another connection holding SQLite's write lock with BEGIN IMMEDIATE until release()."""

    def __init__(self, database: Path) -> None:
        self.connection = sqlite3.connect(database, isolation_level=None)
        self.connection.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        self.connection.execute("ROLLBACK")
        self.connection.close()


@pytest.fixture
def locked_config(dovecot, smtp_server, tmp_path, monkeypatch):
    config = make_config(dovecot, smtp_server, tmp_path, monkeypatch,
                         store={"sqlite_busy_timeout_ms": BUSY_TIMEOUT_MS})
    poll(config)  # creates the database
    return config


def test_database_locked_poll_retried_later(locked_config, dovecot, smtp_server, tmp_path):
    message_ids = append_referrals(dovecot, 1)
    lock = HeldLock(tmp_path / "store.sqlite3")
    try:
        with pytest.raises(RemoteError, match="database locked"):
            poll(locked_config)
    finally:
        lock.release()
    assert smtp_server.messages == []
    assert len(dovecot.list_uids("INBOX")) == 1

    poll(locked_config)
    poll(locked_config)

    smtp_server.wait_for(1)
    assert acknowledged(smtp_server) == message_ids
    assert dovecot.list_uids("INBOX") == []


def test_database_locked_mid_poll_processes_rest_once(locked_config, dovecot, smtp_server, tmp_path,
                                                      monkeypatch):
    message_ids = append_referrals(dovecot, 2)
    real_fetch = ImapMailbox.fetch
    locks = []

    def fetch_then_lock(self, ref):
        raw = real_fetch(self, ref)
        if not locks and ref.uid == "2":
            locks.append(HeldLock(tmp_path / "store.sqlite3"))
        return raw

    with monkeypatch.context() as patch:
        patch.setattr(ImapMailbox, "fetch", fetch_then_lock)
        try:
            with pytest.raises(RemoteError, match="database locked"):
                poll(locked_config)
        finally:
            for lock in locks:
                lock.release()
    assert len(smtp_server.wait_for(1)) == 1
    poll(locked_config)
    poll(locked_config)

    smtp_server.wait_for(2)
    assert acknowledged(smtp_server) == message_ids
    assert dovecot.list_uids("INBOX") == []


def test_database_locked_cli_says_try_later(locked_config, dovecot, smtp_server, tmp_path, capsys):
    config_path = write_config(dovecot, smtp_server, tmp_path, store={"sqlite_busy_timeout_ms": BUSY_TIMEOUT_MS})
    append_referrals(dovecot, 1)
    lock = HeldLock(tmp_path / "store.sqlite3")
    try:
        status = cli_main(["--config", str(config_path), "poll", "--once"])
    finally:
        lock.release()

    assert status == 3
    assert "database locked; try again later" in capsys.readouterr().err
    assert smtp_server.messages == []
