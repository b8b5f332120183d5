"""`ccas-bot bench load`: messages per second with 1, 2, 4 ... workers sharing one mailbox and one database.

For each worker count the benchmark starts a fresh throw-away Dovecot and a fresh
PostgreSQL database (its own server, bot/localservers.py), appends N generated
referrals (fictional names, `.example` senders), then starts the workers as separate
processes. Each worker polls through work claims (bot/workers.py) until nothing is
left. The clock runs from the moment every worker is ready (imports and set-up done)
to the moment the last one stops.

It then counts, from the database, the mailbox and the workers' own send logs:
- duplicates: a message triaged more than once, or a reply handed to the sender twice;
- losses: a generated message that was never stored, or is still in the inbox.
Both must be zero; the command exits with 1 otherwise. Replies go to a sender that
only records them, so no mail leaves the machine.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

HEALTH_DOMAIN = "loadhealth.nhs.example"
CCAS_INBOX = "ccas@loadshire.gov.example"
IMAP_PASSWORD_ENV = "CCAS_BENCH_IMAP_PASSWORD"
# A worker gives up when the run takes longer than this per message (a stuck run ends).
SECONDS_PER_MESSAGE_LIMIT = 2.0
WORKER_START_TIMEOUT_SECONDS = 300.0

FIRST_NAMES = ["Poppy", "Ivy", "Rowan", "Hazel", "Alder", "Wren", "Linden", "Sorrel", "Briony", "Tansy",
               "Juniper", "Aspen", "Clover", "Heath", "Yarrow", "Fennel", "Laurel", "Myrtle", "Bramble",
               "Teasel", "Sedge", "Willow", "Campion", "Kestrel", "Saffron", "Bryony", "Cedar", "Daisy",
               "Ember", "Flint", "Garnet", "Heron", "Iris", "Jasper", "Kit", "Lark", "Moss", "Nettle",
               "Orrin", "Pippin"]
SURNAME_STARTS = ["Ash", "Brack", "Cald", "Dun", "Elm", "Fair", "Glen", "Hart", "Inch", "Kes", "Low",
                  "Mer", "North", "Ott", "Penn", "Rad", "Sel", "Tre", "Up", "Vell", "Wyn", "Yar", "Thorn",
                  "Oak", "Fern", "Larks", "March", "Quill", "Bram", "Hollin"]
SURNAME_ENDS = ["combe", "more", "ton", "holm", "ister", "well", "bold", "ther", "man", "ham", "ery",
                "ock", "leigh", "wood", "mayne", "cott", "acre", "by", "den", "field", "gate", "hurst",
                "ley", "mond", "ridge", "stead", "thwaite", "wick", "worth", "brook"]


@dataclass
class LoadResult:
    workers: int
    messages: int
    seconds: float
    messages_per_second: float
    stored: int
    triaged_twice: int
    replies_sent: int
    replies_sent_twice: int
    replies_waiting: int
    lost: int
    left_in_inbox: int
    workers_failed: int


def register_bench(benchmarks) -> None:
    load = benchmarks.add_parser(
        "load", help="messages per second with several workers on one mailbox and one PostgreSQL database",
        description="Start a throw-away Dovecot and PostgreSQL on 127.0.0.1, append generated referrals and "
                    "process them with each worker count; print throughput, duplicates and losses.")
    load.add_argument("--messages", type=int, default=1000, help="messages per worker count (default: 1000)")
    load.add_argument("--workers", default="1,4",
                      help="comma-separated worker counts, each run on fresh servers (default: 1,4)")
    load.add_argument("--batch-size", type=int, default=20,
                      help="messages a worker claims at once ([bot] claim_batch_size, default: 20)")
    load.add_argument("--seed", type=int, default=1, help="seed for the generated messages (default: 1)")
    load.add_argument("--json", action="store_true", help="print the figures as JSON")
    load.set_defaults(handler=run_load)


def run_load(args) -> int:
    try:
        counts = [int(part) for part in args.workers.split(",") if part.strip()]
    except ValueError:
        counts = []
    if args.messages <= 0 or not counts or min(counts) <= 0 or args.batch_size <= 0:
        print("ccas-bot: --messages and --batch-size must be greater than zero, and --workers a list of "
              "whole numbers greater than zero such as 1,4", file=sys.stderr)
        return 2
    from bot.localservers import ServerStartError, find_dovecot_binary, find_postgres_bin_dir

    missing = [name for name, found in (("dovecot", find_dovecot_binary()),
                                        ("postgresql", find_postgres_bin_dir())) if not found]
    if missing:
        print(f"ccas-bot: bench load needs {' and '.join(missing)} installed; "
              "scripts/install-test-deps.sh installs both", file=sys.stderr)
        return 2

    logging.getLogger().setLevel(logging.WARNING)
    # SIGTERM ends the run through the finally blocks, which stop the servers and remove their folders.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    _progress(f"generating {args.messages} messages")
    messages = [referral(number, random.Random(args.seed * 1_000_003 + number)) for number in range(args.messages)]
    results = []
    try:
        for count in counts:
            results.append(measure(count, messages, args.batch_size))
            _progress(f"{count} worker(s): {results[-1].messages_per_second:.1f} messages/s")
    except ServerStartError as error:
        print(f"ccas-bot: bench load could not start its servers: {error}", file=sys.stderr)
        return 2

    if args.json:
        print(json.dumps([asdict(result) for result in results], indent=2))
    else:
        print_table(results)
    clean = all(result.triaged_twice == 0 and result.replies_sent_twice == 0 and result.lost == 0
                and result.left_in_inbox == 0 and result.workers_failed == 0 for result in results)
    return 0 if clean else 1


def measure(workers: int, messages: list[bytes], batch_size: int) -> LoadResult:
    """Process `messages` with `workers` worker processes on fresh servers and count what happened."""
    from bot.localservers import DovecotServer, PostgresServer, generate_tls_material
    from store.db import create_store_engine, upgrade_schema

    directory = Path(tempfile.mkdtemp(prefix="ccas-bench-load-"))
    try:
        tls = generate_tls_material(directory / "tls")
        with DovecotServer(tls) as dovecot, PostgresServer() as postgres:
            url = postgres.create_database("ccas_bench")
            engine = create_store_engine(url)
            upgrade_schema(engine)
            engine.dispose()
            _progress(f"appending {len(messages)} messages to a new Dovecot mailbox")
            _append_all(dovecot, messages)
            settings = _settings(dovecot, url, batch_size)
            os.environ[IMAP_PASSWORD_ENV] = dovecot.password
            logs = [directory / f"sent-{number}.log" for number in range(workers)]
            _progress(f"running {workers} worker(s)")
            seconds, failed = _run_workers(settings, str(directory), logs, len(messages))
            left_in_inbox = len(_inbox_uids(dovecot))
            return _count(workers, messages, seconds, url, logs, left_in_inbox, failed)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _append_all(dovecot, messages: list[bytes]) -> None:
    with dovecot.connect() as client:
        for raw in messages:
            client.append("INBOX", raw)


def _inbox_uids(dovecot) -> list[int]:
    with dovecot.connect() as client:
        client.select_folder("INBOX", readonly=True)
        return list(client.search(["ALL"]))


def _settings(dovecot, url: str, batch_size: int) -> dict:
    return {
        "bot": {"log_level": "WARNING", "claim_batch_size": batch_size, "claim_timeout_seconds": 600},
        "store": {"url": url},
        "council": {"la_name": "Loadshire County Council", "ccas_inbox": CCAS_INBOX,
                    "send_inbox": "send@loadshire.gov.example",
                    "duty_coordinators": ["duty@loadshire.gov.example"]},
        "trusted_domains": {"health": [HEALTH_DOMAIN], "la": ["loadshire.gov.example"]},
        "mailbox": {"backend": "imap", "imap": {
            "host": dovecot.host, "port": dovecot.port, "security": "starttls",
            "username": dovecot.username, "password_env": IMAP_PASSWORD_ENV,
            "ca_file": str(dovecot.ca_file), "timeout_seconds": 30}},
    }


def _progress(line: str) -> None:
    print(f"bench load: {line}", file=sys.stderr, flush=True)


def _run_workers(settings: dict, base_dir: str, logs: list[Path], message_count: int) -> tuple[float, int]:
    """Run one worker process per log file; return the seconds from all ready to all stopped, and the failures."""
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(len(logs) + 1)
    # Daemon processes end with the benchmark, so stopping it (SIGTERM, Ctrl-C) leaves no worker behind.
    processes = [context.Process(target=_worker, args=(settings, base_dir, f"bench-worker-{number}", str(log),
                                                       ready, message_count), daemon=True)
                 for number, log in enumerate(logs)]
    for process in processes:
        process.start()
    ready.wait(timeout=WORKER_START_TIMEOUT_SECONDS)
    started = time.perf_counter()
    deadline = time.monotonic() + WORKER_START_TIMEOUT_SECONDS + message_count * SECONDS_PER_MESSAGE_LIMIT
    for process in processes:
        process.join(timeout=max(1.0, deadline - time.monotonic()))
    seconds = time.perf_counter() - started
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join()
    return seconds, sum(process.exitcode != 0 for process in processes)


def _worker(settings: dict, base_dir: str, worker_id: str, log_path: str, ready, message_count: int) -> None:
    """Poll through claims in a worker process until no claimable work is left anywhere."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("imapclient").setLevel(logging.WARNING)
    from bot.app import build_context, build_mailbox, open_store
    from bot.config import config_from_mapping
    from bot.errors import RemoteError
    from bot.intake import Intake
    from store.claims import WorkClaims

    config = config_from_mapping(settings, base_dir=Path(base_dir))
    store = open_store(config)
    claims = WorkClaims(store, worker_id, claim_seconds=config.bot.claim_timeout_seconds,
                        batch_size=config.bot.claim_batch_size)
    context = build_context(config, store)
    with open(log_path, "a", encoding="utf-8") as log:
        sender = _LoggingSender(log)
        intake = Intake(build_mailbox(config), context, sender, claims=claims)
        ready.wait(timeout=WORKER_START_TIMEOUT_SECONDS)
        deadline = time.monotonic() + message_count * SECONDS_PER_MESSAGE_LIMIT
        failures = 0
        while time.monotonic() < deadline:
            try:
                summary = intake.poll_once()
            except RemoteError as error:
                # As the scheduler does: log it and poll again, but a worker that keeps failing stops.
                failures += 1
                logging.getLogger(__name__).warning("%s: poll failed (%d in a row): %s", worker_id, failures, error)
                if failures >= 5:
                    raise
                time.sleep(1)
                continue
            failures = 0
            if summary.processed or summary.sent:
                continue
            if claims.counts().get("pending", 0) == 0:
                break
            time.sleep(0.2)  # another worker has claimed the last items


class _LoggingSender:
    """Records each reply it is handed (one line per send, flushed at once) and sends nothing."""

    def __init__(self, log) -> None:
        self.log = log

    def send(self, raw: bytes, recipient: str, envelope_from: str, message_id: str) -> None:
        self.log.write(message_id + "\n")
        self.log.flush()


def _count(workers: int, messages: list[bytes], seconds: float, url: str, logs: list[Path],
           left_in_inbox: int, workers_failed: int) -> LoadResult:
    from sqlalchemy import func, select

    from bot.pipeline import identify_raw
    from store.db import create_store_engine
    from store.models import Message, OutboxItem

    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            stored = connection.execute(select(Message.message_id, Message.sha256, Message.attempts)).all()
            waiting = connection.scalar(select(func.count()).select_from(OutboxItem).where(
                OutboxItem.status.in_(["pending", "draft"])))
    finally:
        engine.dispose()
    identities = Counter((row.message_id, row.sha256) for row in stored)
    triaged_twice = sum(row.attempts - 1 for row in stored) + sum(count - 1 for count in identities.values())
    # By Message-ID: the mail server stores the bytes with CRLF line ends, so their hash differs.
    expected = {identify_raw(raw)[0] for raw in messages}
    lost = len(expected - {message_id for message_id, _ in identities})
    sends = Counter(line.strip() for log in logs if log.exists()
                    for line in log.read_text(encoding="utf-8").splitlines() if line.strip())
    return LoadResult(
        workers=workers, messages=len(messages), seconds=round(seconds, 2),
        messages_per_second=round(len(messages) / seconds, 2) if seconds else 0.0,
        stored=len(stored), triaged_twice=triaged_twice, replies_sent=sum(sends.values()),
        replies_sent_twice=sum(count - 1 for count in sends.values() if count > 1),
        replies_waiting=waiting or 0, lost=lost, left_in_inbox=left_in_inbox, workers_failed=workers_failed)


def print_table(results: list[LoadResult]) -> None:
    print("| workers | messages | seconds | messages/s | triaged twice | replies sent | replies sent twice "
          "| replies waiting | lost | left in inbox | workers failed |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r.workers} | {r.messages} | {r.seconds:.1f} | {r.messages_per_second:.1f} | {r.triaged_twice} "
              f"| {r.replies_sent} | {r.replies_sent_twice} | {r.replies_waiting} | {r.lost} | {r.left_in_inbox} "
              f"| {r.workers_failed} |")


def referral(number: int, rng: random.Random) -> bytes:
    """Build a fictional referral about a child of its own, from a sender of its own."""
    first = FIRST_NAMES[number % len(FIRST_NAMES)]
    rest = number // len(FIRST_NAMES)
    last = SURNAME_STARTS[rest % len(SURNAME_STARTS)] + SURNAME_ENDS[(rest // len(SURNAME_STARTS)) % len(SURNAME_ENDS)]
    dob = f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(2010, 2016)}"
    message = EmailMessage()
    message["From"] = f"Clinician {number} <clinician{number}@{HEALTH_DOMAIN}>"
    message["To"] = CCAS_INBOX
    message["Subject"] = f"Referral for CCAS support - {first} {last}"
    message["Date"] = format_datetime(datetime.now(timezone.utc))
    message["Message-ID"] = make_msgid(idstring=f"load{number}", domain=HEALTH_DOMAIN)
    message.set_content(
        f"Dear CCAS team,\n\nI am writing to refer {first} {last} (DOB {dob}) for support from the "
        f"CCAS panel. {first} has not attended school for six weeks because of anxiety and is "
        "under CAMHS. There is no EHCP. There are no safeguarding concerns.\n\n"
        f"Kind regards,\nClinician {number}\n")
    return message.as_bytes()
