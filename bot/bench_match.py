"""`ccas-bot bench match`: time to match one message against a register of N cases.

The command generates N fictional cases into a throw-away SQLite database in a
temporary folder, then times match_case() on messages about them. Some name a case
with its date of birth or school (a link), and some name a child who is not there
(new). The rest give only a name, or a date of birth with day and month swapped, so a
person decides. The same messages are timed again against a database holding only the
first 1,000 cases, and `ratio_p50` compares the two medians: with indexed blocking it
stays near 1 however large N is.
"""

from __future__ import annotations

import gc
import json
import random
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

from bot.matching import MatchInput, match_case
from parsers.identifiers import upn_check_letter
from parsers.names import FORMAL_NAMES
from store.db import create_store_engine, upgrade_schema
from store.records import Store

DEFAULT_CASES = 100_000
DEFAULT_MESSAGES = 600
SMALL_REGISTER = 1_000
INSERT_BATCH = 10_000
REPEATS = 3
SEED = 20260901

# Fictional names: common first names and surnames built from English place-name parts.
FIRST_NAMES = sorted({*FORMAL_NAMES, "ava", "mia", "isla", "freya", "poppy", "ruby", "daisy", "evie", "leo",
                      "noah", "theo", "finley", "harvey", "kai", "riley", "zain", "yusuf", "amira", "aisha",
                      "jayden", "tyler", "mason", "ethan", "lucas", "logan", "archie", "hannah", "chloe",
                      "megan", "sienna", "maisie", "lily", "grace", "rosie", "ellie", "holly", "jack",
                      "harry", "oscar", "alfie", "reuben", "ibrahim", "fatima", "maryam", "kacey", "leah"})
SURNAME_STARTS = ("ash", "brad", "bram", "brook", "carl", "dun", "elm", "fair", "gold", "green", "hart", "hol",
                  "kings", "lang", "mar", "north", "oak", "pen", "red", "ship", "stan", "thorn", "wake", "west",
                  "whit", "wood", "bel", "cros", "har", "mel")
SURNAME_ENDS = ("by", "ton", "ley", "field", "ford", "wood", "well", "worth", "more", "ham", "dale", "man",
                "wick", "stone", "bury", "ridge", "shaw", "combe", "land", "gate")
SCHOOL_URNS = [str(980000 + number) for number in range(400)]


def register_bench(subparsers) -> None:
    """Add `ccas-bot bench match` to the bench group."""
    parser = subparsers.add_parser("match", help="milliseconds to match one message against N generated cases")
    parser.add_argument("--cases", type=int, default=DEFAULT_CASES,
                        help=f"number of fictional cases to generate (default {DEFAULT_CASES})")
    parser.add_argument("--messages", type=int, default=DEFAULT_MESSAGES,
                        help=f"number of messages to time (default {DEFAULT_MESSAGES})")
    parser.add_argument("--json", action="store_true",
                        help="print cases, p50_ms, p99_ms, p50_ms_1k, ratio_p50 and rss_mb as JSON")
    parser.set_defaults(handler=_handle)


def _handle(args) -> int:
    if args.cases < 1 or args.messages < 1:
        print("ccas-bot: --cases and --messages must be at least 1", file=sys.stderr)
        return 2
    figures = run_bench(args.cases, args.messages)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for key, value in figures.items():
            print(f"{key:<16} {value}")
    return 0


def run_bench(case_count: int, message_count: int) -> dict:
    """Generate the registers, time the messages against both and return the figures."""
    randomness = random.Random(SEED)
    cases = [_fictional_case(randomness, number) for number in range(case_count)]
    messages = _messages(randomness, cases[:SMALL_REGISTER], message_count)

    with tempfile.TemporaryDirectory(prefix="ccas-bench-match-") as folder:
        large, insert_seconds = _store_with(Path(folder) / "large.sqlite3", cases)
        small, _ = _store_with(Path(folder) / "small.sqlite3", cases[:SMALL_REGISTER])
        # The generated cases are dropped before timing, so that the garbage collector
        # does not walk N dictionaries that a running bot would never hold.
        del cases
        gc.collect()
        times, outcomes, wrong_links = _time_messages(large, messages)
        small_times, _, _ = _time_messages(small, messages)
        large.engine.dispose()
        small.engine.dispose()

    p50, p50_small = statistics.median(times), statistics.median(small_times)
    return {
        "cases": case_count,
        "messages": len(messages),
        "p50_ms": round(p50 * 1000, 3),
        "p99_ms": round(_percentile(times, 0.99) * 1000, 3),
        "p50_ms_1k": round(p50_small * 1000, 3),
        "ratio_p50": round(p50 / p50_small, 2),
        "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "insert_s": round(insert_seconds, 2),
        "outcomes": dict(sorted(outcomes.items())),
        "wrong_links": wrong_links,
    }


def _store_with(path: Path, cases: list[dict]) -> tuple[Store, float]:
    store = Store(create_store_engine(f"sqlite:///{path}"))
    upgrade_schema(store.engine)
    started = time.perf_counter()
    for start in range(0, len(cases), INSERT_BATCH):
        store.insert_cases_bulk(cases[start:start + INSERT_BATCH])
    return store, time.perf_counter() - started


def _time_messages(store: Store, messages: list[tuple[MatchInput, str | None]]) -> tuple[list[float], Counter, int]:
    """Time each message REPEATS times and keep its fastest time; also count wrong links.

    The fastest of a few runs leaves out pauses caused by other processes on the
    machine, as timeit does, while a message that is slow every time stays slow. A
    wrong link is one to a case other than the one the message was made from.
    """
    for facts, _ in messages[:50]:  # warm the page cache and the name caches
        match_case(facts, store)
    times, outcomes, wrong_links = [], Counter(), 0
    for facts, source_case in messages:
        fastest = float("inf")
        for _ in range(REPEATS):
            started = time.perf_counter()
            result = match_case(facts, store)
            fastest = min(fastest, time.perf_counter() - started)
        times.append(fastest)
        outcomes[result.method] += 1
        wrong_links += result.case_id is not None and result.case_id != source_case
    return times, outcomes, wrong_links


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def _surname(randomness: random.Random) -> str:
    name = randomness.choice(SURNAME_STARTS) + randomness.choice(SURNAME_ENDS)
    if randomness.random() < 0.05:
        name += "-" + randomness.choice(SURNAME_STARTS) + randomness.choice(SURNAME_ENDS)
    return name.title()


def _upn(randomness: random.Random, number: int) -> str:
    body = f"885{randomness.randrange(1000, 9999)}{randomness.randrange(10, 22)}{number % 1000:03d}"
    return upn_check_letter(body) + body


def _nhs_number(randomness: random.Random) -> str:
    while True:
        digits = [randomness.randrange(10) for _ in range(9)]
        check = 11 - sum(digit * weight for digit, weight in zip(digits, range(10, 1, -1))) % 11
        check = 0 if check == 11 else check
        if check != 10 and len(set(digits)) > 1:
            return "".join(map(str, digits)) + str(check)


def _fictional_case(randomness: random.Random, number: int) -> dict:
    dob = date(2008, 9, 1) + timedelta(days=randomness.randrange(13 * 365))
    return {
        "id": f"CCAS-{2000 + number // 10_000:04d}-{number % 10_000:04d}",
        "first_name": randomness.choice(FIRST_NAMES).title(),
        "last_name": _surname(randomness),
        "dob": dob,
        "upn": _upn(randomness, number) if randomness.random() < 0.7 else "",
        "nhs_number": _nhs_number(randomness) if randomness.random() < 0.5 else "",
        "school_urn": randomness.choice(SCHOOL_URNS),
        "lead_email": f"lead{number % 500}@bench.example",
    }


def _messages(randomness: random.Random, cases: list[dict], count: int) -> list[tuple[MatchInput, str | None]]:
    """Build messages, each with the case it is about (None for a new child).

    A third name a case, a third a new child, and a third are uncertain.
    """
    messages = []
    for index in range(count):
        case = randomness.choice(cases)
        kind = index % 3
        first, last, dob, school = case["first_name"], case["last_name"], case["dob"], None
        if kind == 0:
            nicknames = FORMAL_NAMES.get(first.lower())
            if nicknames and randomness.random() < 0.5:
                first = randomness.choice(nicknames).title()
            if randomness.random() < 0.5:
                dob, school = None, case["school_urn"]
        elif kind == 1:
            first, last = randomness.choice(FIRST_NAMES).title(), _surname(randomness) + "son"
        elif randomness.random() < 0.5:
            dob = None
        elif dob.day <= 12 and dob.day != dob.month:
            dob = dob.replace(month=dob.day, day=dob.month)
        source_case = None if kind == 1 else case["id"]
        messages.append((MatchInput(
            thread_ids=[], text="Update on the young person", sender_email="worker@bench-health.example",
            sender_trusted=True, first_name=first, last_name=last, last_initial=None, dob=dob, upn=None,
            upn_valid=False, nhs_number=None, school_urn=school, sender_roles=["health"],
            message_date=date(2026, 10, 1)), source_case))
    return messages
