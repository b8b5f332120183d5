"""Several workers on one Dovecot mailbox and one PostgreSQL database: each message once, each reply once.

These tests use the session's PostgreSQL server on both passes of the suite, because
sharing the work between workers needs PostgreSQL; on SQLite one worker runs.
"""

from __future__ import annotations

import email
import email.policy
import threading
import time
import traceback
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

import mailfactory
from bot.app import build_context, build_mailbox, build_sender, open_store
from bot.cli import main as cli_main
from bot.config import config_from_mapping
from bot.errors import ConfigError
from bot.intake import Intake
from bot.workers import SingleRunnerLock
from liveconfig import SERVER_PROCESSED, settings
from servers import TEMPLATE_DATABASE
from store.claims import LeaderLock, WorkClaims
from store.models import Message, OutboxItem, WorkItem

MESSAGES = 24


@pytest.fixture
def database(postgres_server, request):
    """A fresh PostgreSQL database of the test's own, migrated; its URL."""
    name = f"workers_{abs(hash(request.node.nodeid)) % 10**8}_{time.monotonic_ns() % 10**6}"
    url = postgres_server.create_database(name, template=TEMPLATE_DATABASE)
    yield url
    postgres_server.drop_database(name)


@pytest.fixture
def config(dovecot, smtp_server, database, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TEST_IMAP_PASSWORD", dovecot.password)
    monkeypatch.setenv("TEST_SMTP_PASSWORD", smtp_server.password)
    data = settings(dovecot, smtp_server, tmp_path, bot={"claim_batch_size": 2})
    data["store"] = {"url": database}
    return config_from_mapping(data, base_dir=tmp_path)


FIRST_NAMES = ["Poppy", "Ivy", "Rowan", "Hazel", "Alder", "Wren", "Linden", "Sorrel", "Briony", "Tansy",
               "Juniper", "Aspen", "Clover", "Heath", "Yarrow", "Fennel", "Laurel", "Myrtle", "Bramble",
               "Teasel", "Sedge", "Willow", "Campion", "Kestrel"]
LAST_NAMES = ["Larkspur", "Marchbank", "Thistlewood", "Fernhill", "Oakridge", "Quillon", "Brackwater",
              "Ashcombe", "Dunmore", "Elverton", "Fairholm", "Glenister", "Hartwell", "Inchbold", "Lowther",
              "Merriman", "Northam", "Ottery", "Pennock", "Radleigh", "Selwood", "Tremayne", "Upcott", "Vellacott"]


def referral(number: int) -> bytes:
    """A referral about a child of its own from a sender of its own, so each gets an acknowledgement.

    Names and dates of birth differ enough that matching never sends one to a person.
    """
    first, last = FIRST_NAMES[number % 24], LAST_NAMES[number % 24]
    dob = f"{number % 28 + 1:02d}/{number % 12 + 1:02d}/{2010 + number % 6}"
    message = mailfactory.referral(first, last, dob)
    message.replace_header("From", f"Clinician {number} <clinician{number}@{mailfactory.HEALTH_DOMAIN}>")
    return message.as_bytes()


def worker_intake(config, store, worker_id: str) -> Intake:
    claims = WorkClaims(store, worker_id, claim_seconds=config.bot.claim_timeout_seconds,
                        batch_size=config.bot.claim_batch_size)
    return Intake(build_mailbox(config), build_context(config, store), build_sender(config), claims=claims)


def run_workers(config, count: int) -> tuple[list[BaseException], Counter]:
    """Run `count` workers as threads, each polling until the inbox stays empty; return errors and messages per worker."""
    errors: list[BaseException] = []
    per_worker: Counter = Counter()
    intakes = {f"worker-{n}": worker_intake(config, open_store(config), f"worker-{n}") for n in range(count)}
    start = threading.Barrier(count, timeout=60)

    def work(worker_id: str) -> None:
        intake = intakes[worker_id]
        try:
            start.wait()
            for _ in range(5):
                summary = intake.poll_once()
                per_worker[worker_id] += len(summary.processed)
                if not summary.processed:
                    break
        except BaseException as error:  # reported by the test
            traceback.print_exc()
            errors.append(error)

    threads = [threading.Thread(target=work, args=(worker_id,)) for worker_id in intakes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    return errors, per_worker


@pytest.mark.parametrize("workers", [2, 4])
def test_workers_triage_and_reply_once(config, dovecot, smtp_server, workers):
    raws = [referral(number) for number in range(MESSAGES)]
    for raw in raws:
        dovecot.append("INBOX", raw)

    errors, per_worker = run_workers(config, workers)

    assert errors == []
    store = open_store(config)
    with store.engine.connect() as connection:
        stored = connection.execute(select(Message.message_id, Message.attempts, Message.mailbox_done)).all()
        outbox = connection.execute(select(OutboxItem.status, func.count()).group_by(OutboxItem.status)).all()
        items = connection.execute(select(WorkItem.status, WorkItem.claimed_by)).all()
        outcomes = connection.execute(select(Message.outcome, Message.reasons, Message.case_id)).all()
    # Each message stored once and triaged once, and moved out of the inbox once.
    assert len(stored) == MESSAGES
    assert len({row.message_id for row in stored}) == MESSAGES
    assert all(row.attempts == 1 and row.mailbox_done for row in stored)
    assert dovecot.list_uids("INBOX") == []
    assert len(dovecot.list_uids(SERVER_PROCESSED)) == MESSAGES
    # Every referral was handled and its acknowledgement marked sent.
    assert dict(outbox) == {"sent": MESSAGES}, outcomes
    # One acknowledgement per referral reached the SMTP server, none twice.
    received = smtp_server.wait_for(MESSAGES, timeout_seconds=20)
    time.sleep(0.2)
    replied_to = Counter(email.message_from_bytes(message.data, policy=email.policy.default)["In-Reply-To"]
                         for message in smtp_server.messages)
    assert len(received) == MESSAGES
    assert len(smtp_server.messages) == MESSAGES
    assert set(replied_to.values()) == {1}
    assert [status for status, _ in items] == ["done"] * MESSAGES
    # The work was shared, and the counts add up to each message once.
    assert sum(per_worker.values()) == MESSAGES
    assert len([worker for worker, count in per_worker.items() if count]) >= 2


def test_killed_worker_claims_lapse_and_another_finishes(config, dovecot, smtp_server):
    for number in range(4):
        dovecot.append("INBOX", referral(number))
    store = open_store(config)
    # A worker lists the mailbox, claims a batch for one second, and is killed before finishing it.
    killed = WorkClaims(store, "killed-worker", claim_seconds=1, batch_size=3)
    mailbox = build_mailbox(config)
    folder, uidvalidity = mailbox.open()
    killed.add_listed(mailbox.source, folder, uidvalidity, [ref.uid for ref in mailbox.list_new(0)])
    mailbox.close()
    held = killed.claim(mailbox.source, folder, uidvalidity)
    assert len(held) == 3

    survivor = worker_intake(config, store, "survivor")
    first = survivor.poll_once()
    # While the claims live, the survivor takes only the message nobody holds.
    assert len(first.processed) == 1
    time.sleep(1.2)
    second = survivor.poll_once()

    assert sorted(item.ref.uid for item in second.processed) == sorted(item.uid for item in held)
    assert dovecot.list_uids("INBOX") == []
    assert len(smtp_server.wait_for(4, timeout_seconds=10)) == 4
    time.sleep(0.2)
    assert len(smtp_server.messages) == 4
    # The killed worker's claim is gone: renewing it fails, so it cannot finish the items twice.
    assert not any(killed.renew(item) for item in held)


def test_reply_claimed_by_a_live_worker_is_not_sent_by_another(config, dovecot, smtp_server):
    dovecot.append("INBOX", referral(1))
    store = open_store(config)
    first = worker_intake(config, store, "first")
    # The first worker stores the message but its sending is interrupted after the claim.
    from replies.send import SmtpSender

    original_send = SmtpSender.send

    def interrupted(self, *args):
        raise KeyboardInterrupt("killed after claiming the reply")

    SmtpSender.send = interrupted
    try:
        with pytest.raises(KeyboardInterrupt):
            first.poll_once()
    finally:
        SmtpSender.send = original_send

    second = worker_intake(config, store, "second")
    second.poll_once()
    # The first worker's claim on the reply still lives, so the second leaves it alone.
    assert smtp_server.messages == []
    with store.engine.connect() as connection:
        assert connection.execute(select(OutboxItem.status, OutboxItem.claimed_by)).all() == [("pending", "first")]
    # Restarted under the same worker name, the first worker takes back its own claims at once.
    worker_intake(config, store, "first").poll_once()
    assert len(smtp_server.wait_for(1)) == 1
    assert dovecot.list_uids("INBOX") == []


def test_leader_lock_gives_exactly_one_leader(database, postgres_server):
    from store.db import create_store_engine

    engines = [create_store_engine(database) for _ in range(4)]
    locks = [LeaderLock(engine) for engine in engines]
    try:
        results = [lock.is_leader() for lock in locks]
        assert results.count(True) == 1
        leader = results.index(True)
        # Asking again changes nothing while the leader lives.
        assert [lock.is_leader() for lock in locks].count(True) == 1
        # The leader's session ends, as when its process is killed: one other worker takes the lead.
        with engines[leader].connect() as connection:
            pid = locks[leader]._connection.execute(text("SELECT pg_backend_pid()")).scalar()
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        others = [lock.is_leader() for index, lock in enumerate(locks) if index != leader]
        assert others.count(True) == 1
        assert locks[leader].is_leader() is False
    finally:
        for lock in locks:
            lock.release()
        for engine in engines:
            engine.dispose()


def test_sqlite_refuses_a_second_runner(tmp_path):
    config = config_from_mapping({"store": {"url": "sqlite:///store.sqlite3"}}, base_dir=tmp_path)
    with SingleRunnerLock(config):
        with pytest.raises(ConfigError) as raised:
            SingleRunnerLock(config).acquire()
    assert "store.url" in str(raised.value) and "PostgreSQL" in str(raised.value)
    # Once the first runner has stopped, the next one starts.
    with SingleRunnerLock(config):
        pass


def test_poll_command_refuses_while_another_runner_holds_sqlite(tmp_path, capsys):
    (tmp_path / "inbox").mkdir()
    config_path = tmp_path / "config.toml"
    config_path.write_text('[store]\nurl = "sqlite:///bot.sqlite3"\n[mailbox.folder]\ninbox_path = "inbox"\n'
                           '[sending]\noutbox_path = "outbox"\n', encoding="utf-8")
    config = config_from_mapping({"store": {"url": "sqlite:///bot.sqlite3"}}, base_dir=tmp_path)
    with SingleRunnerLock(config):
        status = cli_main(["--config", str(config_path), "poll"])
    assert status == 2
    assert "another ccas-bot process is already polling this SQLite database" in capsys.readouterr().err


def test_listing_fetches_sizes_in_chunks(config, dovecot, monkeypatch):
    # A backlog of 20,000 messages made one FETCH line too long for Dovecot, so sizes come in chunks.
    import bot.mailboxes.imap as imap

    monkeypatch.setattr(imap, "FETCH_CHUNK_UIDS", 2)
    for number in range(5):
        dovecot.append("INBOX", referral(number))
    mailbox = build_mailbox(config)
    mailbox.open()
    try:
        refs = mailbox.list_new(0)
    finally:
        mailbox.close()

    assert [ref.uid for ref in refs] == [str(uid) for uid in dovecot.list_uids("INBOX")]
    assert len(refs) == 5
    assert all(ref.size and ref.size > 500 for ref in refs)
