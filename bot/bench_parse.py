"""`ccas-bot bench parse`: reading speed of the triage, next to the bare standard-library parser.

"Triage" here is the reading done by the pipeline steps up to and including
classification: reading the message and its attachments, the automation and safeguarding
screens, the sender, extraction and classification. Matching is left out: it is a store
lookup whose cost depends on the register, and `ccas-bot bench match` measures it.
Routing and composing are left out because they reserve case ids, which is a store
write. The context reads a throw-away SQLite store, which contains the corpus's
register/schools.csv when the corpus has one, so extraction knows the schools.

The bare figure is `email.message_from_bytes(raw, policy=email.policy.default)` over the
same messages. Both are timed in the same run, message by message in alternating order,
over several rounds. Each figure is the median of its rounds, and `ratio` is
triage_per_s / bare_parse_per_s.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bot.errors import MessageError

log = logging.getLogger(__name__)

DEFAULT_ROUNDS = 5
LAST_STEP = "classify"
SKIPPED_STEPS = {"match"}


def register_bench(subparsers) -> None:
    """Add `ccas-bot bench parse` to the bench group."""
    parser = subparsers.add_parser(
        "parse", help="messages per second of triage up to classification, next to the bare parser")
    parser.add_argument("corpus", type=Path, help="folder read recursively for *.eml files")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS,
                        help=f"timed passes over the corpus for each side; the median is shown "
                             f"(default {DEFAULT_ROUNDS})")
    parser.add_argument("--json", action="store_true",
                        help="print messages, triage_per_s, bare_parse_per_s and ratio as JSON")
    parser.set_defaults(handler=_handle)


def _handle(args) -> int:
    logging.basicConfig(level="WARNING", stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.corpus.is_dir():
        print(f"ccas-bot: corpus folder {args.corpus} not found", file=sys.stderr)
        return 2
    if args.rounds < 1:
        print(f"ccas-bot: --rounds must be at least 1, got {args.rounds}", file=sys.stderr)
        return 2
    messages = load_messages(args.corpus)
    if not messages:
        print(f"ccas-bot: no .eml files found under {args.corpus}", file=sys.stderr)
        return 2

    figures = bench_parse(messages, args.corpus, rounds=args.rounds)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for key, value in figures.items():
            print(f"{key:<18} {value}")
    return 0


def load_messages(corpus: Path) -> list[bytes]:
    """Return the bytes of every .eml file under `corpus`, in path order."""
    paths = sorted(corpus.rglob("*.eml"), key=lambda path: path.relative_to(corpus).as_posix())
    return [path.read_bytes() for path in paths]


def bench_parse(messages: list[bytes], corpus: Path, rounds: int = DEFAULT_ROUNDS) -> dict:
    """Time triage and the bare parser over `messages`; return the four figures."""
    with tempfile.TemporaryDirectory(prefix="ccas-bench-") as workdir:
        context = _context(corpus, Path(workdir))
        steps = _steps_to_classify()
        # One untimed pass warms imports, compiled patterns and the SQLite cache.
        _timed_round(messages, context, steps)

        triage_rates = []
        bare_rates = []
        for _ in range(rounds):
            triage_seconds, bare_seconds = _timed_round(messages, context, steps)
            triage_rates.append(len(messages) / triage_seconds)
            bare_rates.append(len(messages) / bare_seconds)
        context.store.engine.dispose()

    triage_per_s = statistics.median(triage_rates)
    bare_parse_per_s = statistics.median(bare_rates)
    return {
        "messages": len(messages),
        "triage_per_s": round(triage_per_s, 1),
        "bare_parse_per_s": round(bare_parse_per_s, 1),
        "ratio": round(triage_per_s / bare_parse_per_s, 3),
    }


def _timed_round(messages: list[bytes], context, steps: list) -> tuple[float, float]:
    """Return the seconds spent on triage and on the bare parser over all messages.

    The two are timed message by message, in alternating order, so that a change in
    the machine's load during the run affects both sides alike.
    """
    triage_seconds = 0.0
    bare_seconds = 0.0
    for index, raw in enumerate(messages):
        if index % 2 == 0:
            triage_seconds += _seconds(_triage_one, raw, context, steps)
            bare_seconds += _seconds(_bare_parse_one, raw)
        else:
            bare_seconds += _seconds(_bare_parse_one, raw)
            triage_seconds += _seconds(_triage_one, raw, context, steps)
    return triage_seconds, bare_seconds


def _seconds(function, *arguments) -> float:
    started = time.perf_counter()
    function(*arguments)
    return time.perf_counter() - started


def _context(corpus: Path, workdir: Path):
    from bot.app import build_context, open_store
    from bot.config import config_from_mapping
    from bot.registers import import_cases, import_schools

    config = config_from_mapping({"store": {"url": f"sqlite:///{workdir / 'bench.sqlite3'}"}}, base_dir=workdir)
    store = open_store(config)
    register = corpus / "register"
    if (register / "schools.csv").is_file():
        import_schools(store, register / "schools.csv")
    if (register / "cases.csv").is_file():
        import_cases(store, register / "cases.csv")
    return build_context(config, store)


def _steps_to_classify() -> list:
    from bot.pipeline import STEPS

    names = [step.name for step in STEPS]
    # Reading is parsing, extraction and classification. Matching is a store lookup whose
    # cost depends on the register, not the message, and `bench match` measures it.
    return [step for step in STEPS[:names.index(LAST_STEP) + 1] if step.name not in SKIPPED_STEPS]


def _triage_one(raw: bytes, context, steps: list) -> None:
    """Run the steps over one message as run_pipeline does, without its outcome records."""
    from bot.pipeline import Triage, Verdict, identify_raw  # imported by the CLI only when a bench runs

    triage = Triage(raw=raw)
    triage.message_id, triage.message_id_synthesised, triage.sha256 = identify_raw(raw)
    for step in steps:
        try:
            verdict = step.run(triage, context)
        except MessageError:
            return  # the pipeline sends such a message to a person, so it stops here too
        except Exception:  # noqa: BLE001 - a bug in one step must not stop the measurement
            log.exception("bench: pipeline step %s failed on message sha256 %s; measurement goes on",
                          step.name, triage.sha256[:12])
            return
        if verdict is Verdict.STOP:
            return


def _bare_parse_one(raw: bytes) -> None:
    email.message_from_bytes(raw, policy=email.policy.default)
