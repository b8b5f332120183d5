"""`ccas-bot bench fuzz`: hostile and broken mail through the whole intake, with bounds checked.

Each message comes from the Hypothesis strategies in bot/fuzzmail.py, so this command
needs the `hypothesis` package (a runtime dependency for this reason). Every message
goes through what a poll does with it: Intake.process_ref runs the pipeline, commits
the outcome to a throw-away SQLite store that contains the demo registers, and sends the
planned mail to a RecordingSender (replies held for review stay in the store).
FuzzHarness.check() then lists what went wrong with the planned mail and the outcome:

    crash           an exception escaped, or a pipeline step failed ("bug:" reason)
    reader_failure  a step of the message reader failed ("failed:" defect)
    outcome         the stored outcome is not handled, retry or needs_person
    header          a planned message has a CR or LF inside a header value, does
                    not parse back, or names another recipient
    automated_reply mail went back to the sender of automatic mail
    time_limit      one message took longer than --max-seconds
    memory_limit    one message grew memory by more than --max-memory-mb

The memory figure is how far one message raised the process's peak resident set size
(getrusage ru_maxrss), or with --tracemalloc the peak of Python allocations while
the message was processed, which is exact but slows the run about twofold.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import resource
import shutil
import sys
import tempfile
import time
import tomllib
import tracemalloc
from collections import Counter
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from importlib import resources
from pathlib import Path

from store.records import TERMINAL_OUTCOMES

log = logging.getLogger(__name__)

OUTCOMES = (*TERMINAL_OUTCOMES, "retry")
DEFAULT_MAX_SECONDS = 10.0
DEFAULT_MAX_MEMORY_MB = 1024
STORE_ROTATION = 500
# Headers the bot writes on outgoing mail (replies/compose.py, plus the MIME headers).
REPLY_HEADERS = {"from", "to", "subject", "date", "message-id", "auto-submitted", "x-auto-response-suppress",
                 "in-reply-to", "references", "content-type", "content-transfer-encoding", "mime-version"}


@dataclass
class FuzzResult:
    """The record of one processed message: stored outcome, reasons, reader defects and mail sent."""

    outcome: str | None
    reasons: list[str] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    sender_email: str = ""
    # (recipient, raw bytes) of every message the pipeline planned: sent ones, and replies
    # held as drafts for a person to approve (routing.hold_replies_for_review).
    planned: list[tuple[str, bytes]] = field(default_factory=list)
    seconds: float = 0.0
    memory_bytes: int = 0
    error: str | None = None


class _OneMessageMailbox:
    """A mailbox holding the current message only; moves are no-ops."""

    source = "fuzz"

    def __init__(self) -> None:
        self.raw = b""

    def open(self):
        return "fuzz", 1

    def close(self) -> None:
        pass

    def list_new(self, after_uid: int) -> list:
        return []

    def fetch(self, ref) -> bytes:
        return self.raw

    def contains(self, ref) -> bool:
        return False

    def move_to_processed(self, ref) -> None:
        pass

    def move_to_quarantine(self, ref) -> None:
        pass


class FuzzHarness:
    """A throw-away store and intake loop configured like the demo, for one message at a time."""

    def __init__(self, workdir: Path, loop_header: str = "X-CCAS-Bot-Loop", use_tracemalloc: bool = False) -> None:
        from bot.app import build_context, open_store
        from bot.config import config_from_mapping
        from bot.evaluate import _config_from_directory
        from bot.intake import Intake
        from bot.registers import import_cases, import_schools
        from replies.send import RecordingSender

        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        registers = Path(str(resources.files("bot") / "demo_registers"))
        directory = tomllib.loads((registers / "directory.toml").read_text(encoding="utf-8"))
        settings = _config_from_directory(directory)
        settings["council"]["duty_coordinators"] = ["ccas-duty@marlshire.gov.example"]
        data = {**settings, "store": {"url": f"sqlite:///{workdir / 'fuzz.sqlite3'}"},
                "sending": {"loop_header": loop_header}}
        self.config = config_from_mapping(data, base_dir=workdir)
        self.store = open_store(self.config)
        import_schools(self.store, registers / "schools.csv")
        import_cases(self.store, registers / "cases.csv")
        self.mailbox = _OneMessageMailbox()
        self.sender = RecordingSender()
        self.intake = Intake(self.mailbox, build_context(self.config, self.store), self.sender)
        self.use_tracemalloc = use_tracemalloc
        self.count = 0

    def close(self) -> None:
        self.store.engine.dispose()

    def run(self, raw: bytes) -> FuzzResult:
        """Process one message as a poll would; an escaping exception is caught and recorded in `error`."""
        from bot.mailboxes.base import MailRef

        self.count += 1
        self.mailbox.raw = raw
        self.sender.sent.clear()
        ref = MailRef(folder="fuzz", uidvalidity=1, uid=str(self.count))
        memory_before = _peak_rss_bytes()
        if self.use_tracemalloc:
            tracemalloc.reset_peak()
            traced_before = tracemalloc.get_traced_memory()[0]
        started = time.perf_counter()
        try:
            processed = self.intake.process_ref(ref)
        except Exception as error:  # noqa: BLE001 - an escaping exception is the finding
            log.exception("fuzz message %d raised", self.count)
            result = FuzzResult(outcome=None, error=type(error).__name__)
        else:
            triage = processed.triage
            stored = processed.stored
            result = FuzzResult(
                outcome=stored.outcome if stored else None,
                reasons=self.store.message_reasons(stored.pk) if stored else [],
                defects=list(triage.message.defects) if triage and triage.message else [],
                sender_email=triage.sender_email if triage else "",
                planned=[(item.recipient, item.raw) for item in triage.mail] if triage else list(self.sender.sent))
        result.seconds = time.perf_counter() - started
        if self.use_tracemalloc:
            result.memory_bytes = max(0, tracemalloc.get_traced_memory()[1] - traced_before)
        else:
            result.memory_bytes = _peak_rss_bytes() - memory_before
        return result

    def check(self, result: FuzzResult, automated: bool, max_seconds: float = DEFAULT_MAX_SECONDS,
              max_memory_bytes: int = DEFAULT_MAX_MEMORY_MB * 1024 * 1024) -> list[str]:
        """Return the problems of one result as "kind: detail" strings; empty when all is well."""
        problems = []
        if result.error:
            problems.append(f"crash: {result.error} escaped")
        problems += [f"crash: {reason}" for reason in result.reasons if reason.startswith("bug:")]
        problems += [f"reader_failure: {defect}" for defect in result.defects if defect.startswith("failed:")]
        if result.error is None and result.outcome not in OUTCOMES:
            problems.append(f"outcome: {result.outcome!r}")
        for recipient, raw in result.planned:
            problems += [f"header: {problem}" for problem in reply_header_problems(raw, recipient)]
        if automated and result.sender_email:
            if any(recipient == result.sender_email for recipient, _ in result.planned):
                problems.append("automated_reply: mail went back to the sender of automatic mail")
        if result.seconds > max_seconds:
            problems.append(f"time_limit: {result.seconds:.1f} s")
        if result.memory_bytes > max_memory_bytes:
            problems.append(f"memory_limit: {result.memory_bytes // 1048576} MiB")
        return problems


def reply_header_problems(raw: bytes, recipient: str) -> list[str]:
    """Check one outgoing message's header block: no line break inside a value, parses back, one recipient."""
    problems = []
    end = raw.find(b"\r\n\r\n")
    block = raw[:end] if end >= 0 else raw
    for line in block.split(b"\r\n"):
        if b"\r" in line or b"\n" in line:
            problems.append("bare CR or LF in the header block")
        if line and line[:1] not in (b" ", b"\t") and b":" not in line:
            problems.append("header line without a field name")
    strict = email.message_from_bytes(raw, policy=email.policy.default)
    for name, value in strict.items():
        if "\r" in str(value) or "\n" in str(value):
            problems.append(f"{name} value holds a line break once parsed")
        if name.lower() not in REPLY_HEADERS and not name.lower().startswith("x-ccas"):
            problems.append(f"unexpected header {name}")
    headers = BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    values = [str(value) for name in ("To", "Cc", "Bcc") for value in headers.get_all(name, [])]
    if [address.lower() for _, address in getaddresses(values)] != [recipient.lower()]:
        problems.append("recipients differ from the outbox recipient")
    return problems


def _peak_rss_bytes() -> int:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# The command


def register_bench(subparsers) -> None:
    """Add `ccas-bot bench fuzz` to the bench group."""
    parser = subparsers.add_parser(
        "fuzz", help="generated hostile mail through the whole intake; counts crashes and bound failures")
    parser.add_argument("--messages", type=int, default=2000, help="messages to generate (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generator; the same seed gives the same "
                                                               "messages (default 0)")
    parser.add_argument("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS,
                        help=f"time limit for one message, in seconds (default {DEFAULT_MAX_SECONDS:g})")
    parser.add_argument("--max-memory-mb", type=int, default=DEFAULT_MAX_MEMORY_MB,
                        help=f"memory growth limit for one message, in MiB (default {DEFAULT_MAX_MEMORY_MB})")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="measure memory as the peak of Python allocations per message (slower)")
    parser.add_argument("--save-failures", type=Path, metavar="FOLDER",
                        help="write each message that failed a check to FOLDER as N.eml")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.set_defaults(handler=_handle)


def _handle(args) -> int:
    logging.basicConfig(level="CRITICAL", stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.messages < 1:
        print(f"ccas-bot: --messages must be at least 1, got {args.messages}", file=sys.stderr)
        return 2
    try:
        import hypothesis  # noqa: F401
    except ImportError:
        print("ccas-bot: bench fuzz needs the hypothesis package; run `pip install hypothesis`", file=sys.stderr)
        return 2
    figures = bench_fuzz(args.messages, args.seed, max_seconds=args.max_seconds,
                         max_memory_bytes=args.max_memory_mb * 1024 * 1024, use_tracemalloc=args.tracemalloc,
                         save_failures=args.save_failures, progress=True)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for key, value in figures.items():
            print(f"{key:<22} {value}")
    return 0 if not figures["failures"] else 1


def bench_fuzz(count: int, seed: int, *, max_seconds: float = DEFAULT_MAX_SECONDS,
               max_memory_bytes: int = DEFAULT_MAX_MEMORY_MB * 1024 * 1024, use_tracemalloc: bool = False,
               save_failures: Path | None = None, progress: bool = False) -> dict:
    """Generate `count` messages from `seed`, run each through the intake and return the figures."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis.configuration import set_hypothesis_home_dir

    from bot.fuzzmail import messages

    seconds: list[float] = []
    memory: list[int] = []
    outcomes: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    examples: list[str] = []
    failed_messages: list[int] = []
    if use_tracemalloc:
        tracemalloc.start()
    started = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="ccas-fuzz-") as workdir:
        # Hypothesis keeps caches in ./.hypothesis by default; a bench leaves nothing behind.
        set_hypothesis_home_dir(Path(workdir) / "hypothesis")
        harness = FuzzHarness(Path(workdir) / "0", use_tracemalloc=use_tracemalloc)
        done = 0

        @hypothesis_seed(seed)
        @settings(max_examples=count, database=None, deadline=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(messages())
        def run_one(message) -> None:
            nonlocal harness, done
            if done >= count:
                return
            if harness.count >= STORE_ROTATION:
                # The store keeps every message's raw bytes, so a fresh one every few
                # hundred messages keeps a long run's disk use small.
                harness.close()
                shutil.rmtree(harness.workdir)
                harness = FuzzHarness(Path(workdir) / str(done), use_tracemalloc=use_tracemalloc)
            done += 1
            result = harness.run(message.raw)
            seconds.append(result.seconds)
            memory.append(result.memory_bytes)
            outcomes[result.outcome or "none"] += 1
            problems = harness.check(result, message.automated, max_seconds, max_memory_bytes)
            for kind in {problem.split(":", 1)[0] for problem in problems}:
                failures[kind] += 1
            if problems:
                failed_messages.append(done)
                if len(examples) < 10:
                    examples.append(f"message {done}: {'; '.join(sorted(set(problems)))}")
                if save_failures is not None:
                    save_failures.mkdir(parents=True, exist_ok=True)
                    (save_failures / f"{done}.eml").write_bytes(message.raw)
            if progress and done % 1000 == 0:
                print(f"{done} messages, {len(failed_messages)} failed, "
                      f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

        try:
            run_one()
        finally:
            harness.close()
            set_hypothesis_home_dir(None)
    if use_tracemalloc:
        tracemalloc.stop()

    ordered = sorted(seconds)
    return {
        "messages": len(seconds),
        "seed": seed,
        "crashes": failures.get("crash", 0),
        "failures": len(failed_messages),
        "failure_kinds": dict(sorted(failures.items())),
        # "none" counts messages whose processing raised before an outcome was stored.
        "outcomes": {name: outcomes[name] for name in (*OUTCOMES, "none") if name in OUTCOMES or outcomes[name]},
        "seconds_p50": round(_nearest_rank(ordered, 0.50), 4),
        "seconds_p99": round(_nearest_rank(ordered, 0.99), 4),
        "seconds_max": round(ordered[-1], 4) if ordered else 0.0,
        "memory_max_mb": round(max(memory, default=0) / 1048576, 1),
        "memory_measure": "tracemalloc peak" if use_tracemalloc else "peak RSS growth",
        "wall_seconds": round(time.perf_counter() - started, 1),
        "failure_examples": examples,
    }


def _nearest_rank(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return 0.0
    index = max(0, min(len(ordered) - 1, int(-(-fraction * len(ordered) // 1)) - 1))
    return ordered[index]
