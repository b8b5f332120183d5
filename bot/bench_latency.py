"""`ccas-bot bench latency`: seconds from a message's arrival to its acknowledgement.

The benchmark starts a throw-away Dovecot IMAP server and an SMTP server on
127.0.0.1, starts `ccas-bot run` against them as a separate process, appends
fictional referrals at random gaps and times each acknowledgement. Arrival is
when the IMAP APPEND completed; acknowledgement is when the SMTP server accepted
the reply. It runs once in poll mode (interval poll only) and once in IDLE mode.

The servers come from tests/servers.py, so the benchmark needs the repository
checkout, Dovecot and the test extras (`pip install -e '.[test]'`).
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from datetime import datetime, timezone
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parents[1] / "tests"
HEALTH_DOMAIN = "benchhealth.nhs.example"
CCAS_INBOX = "ccas@benchshire.gov.example"
# How long to wait for the bot's first acknowledgement, which includes its start-up.
WARM_UP_TIMEOUT_SECONDS = 60.0
# How long after the last arrival to wait for acknowledgements still missing.
DRAIN_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
IDLE_MODE_INTERVAL_SECONDS = 300

FIRST_NAMES = ["Poppy", "Ivy", "Rowan", "Hazel", "Alder", "Wren", "Linden", "Sorrel", "Briony", "Tansy"]
LAST_NAMES = ["Larkspur", "Marchbank", "Thistlewood", "Fernhill", "Oakridge", "Quillon", "Brackwater"]


@dataclass
class LatencyResult:
    mode: str
    messages: int
    acknowledged: int
    interval_s: int
    p50_s: float | None
    p95_s: float | None
    max_s: float | None


class BenchUnavailable(Exception):
    """Raised when the benchmark cannot run here; the message names what is missing."""


def register_bench(benchmarks) -> None:
    latency = benchmarks.add_parser(
        "latency", help="time arrival to acknowledgement in poll and IDLE mode against local servers")
    latency.add_argument("--messages", type=int, default=20,
                         help="referrals appended per mode (default: 20)")
    latency.add_argument("--mode", choices=["poll", "idle", "both"], default="both",
                         help="which run mode to measure (default: both)")
    latency.add_argument("--interval", type=int, default=1,
                         help="poll interval in seconds for poll mode (default: 1)")
    latency.add_argument("--gap", type=float, default=1.0,
                         help="mean seconds between arrivals, drawn uniformly from 0.5 to 1.5 times this (default: 1.0)")
    latency.add_argument("--seed", type=int, default=None, help="seed for the random gaps")
    latency.add_argument("--json", action="store_true", help="print the figures as JSON")
    latency.add_argument("--work-dir", type=Path, default=None,
                         help="keep the bot's configuration, store and log here (a new folder) "
                              "instead of a temporary folder")
    latency.set_defaults(handler=run_latency)


def run_latency(args) -> int:
    if args.messages <= 0 or args.interval <= 0 or args.gap < 0:
        print("ccas-bot: --messages and --interval must be greater than zero, --gap at least zero",
              file=sys.stderr)
        return 2
    if args.work_dir is not None and args.work_dir.exists() and any(args.work_dir.iterdir()):
        print(f"ccas-bot: --work-dir {args.work_dir} is not empty; name a new folder", file=sys.stderr)
        return 2
    try:
        servers = _import_test_servers()
    except BenchUnavailable as error:
        print(f"ccas-bot: bench latency cannot run: {error}", file=sys.stderr)
        return 2

    # aiosmtpd warns on every login that Session.login_data is deprecated.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    modes = ["poll", "idle"] if args.mode == "both" else [args.mode]
    rng = random.Random(args.seed)
    results = []
    with tempfile.TemporaryDirectory(prefix="ccas-bench-") as temporary:
        work_dir = args.work_dir or Path(temporary)
        tls = servers.generate_tls_material(work_dir / "tls")
        for mode in modes:
            results.append(measure_mode(servers, tls, work_dir / mode, mode, args, rng))

    if args.json:
        print(json.dumps([asdict(result) for result in results], indent=2))
    else:
        _print_table(results)
    return 0 if all(result.acknowledged == result.messages for result in results) else 1


def _import_test_servers():
    if not (TESTS_DIR / "servers.py").is_file():
        raise BenchUnavailable(f"it needs the repository checkout, and {TESTS_DIR / 'servers.py'} "
                               "was not found; run it from a clone installed with `pip install -e`")
    if str(TESTS_DIR) not in sys.path:
        sys.path.insert(0, str(TESTS_DIR))
    try:
        import servers
    except ImportError as error:
        raise BenchUnavailable(f"{error}; install the test extras with `pip install -e '.[test]'`") from None
    if servers.find_dovecot_binary() is None:
        raise BenchUnavailable("dovecot is not installed; `make test` installs it")
    return servers


def measure_mode(servers, tls, work_dir: Path, mode: str, args, rng: random.Random) -> LatencyResult:
    """Run the bot in one mode against fresh servers and time `args.messages` acknowledgements."""
    work_dir.mkdir(parents=True)
    interval = args.interval if mode == "poll" else IDLE_MODE_INTERVAL_SECONDS
    with servers.DovecotServer(tls) as dovecot, servers.SmtpServer(tls) as smtp:
        config_path = work_dir / "config.toml"
        config_path.write_text(config_toml(bench_settings(dovecot, smtp, work_dir, mode == "idle", interval)))
        env = dict(os.environ, CCAS_BENCH_IMAP_PASSWORD=dovecot.password,
                   CCAS_BENCH_SMTP_PASSWORD=smtp.password)
        with open(work_dir / "bot.log", "wb") as log_file:
            bot = subprocess.Popen([sys.executable, "-m", "bot.cli", "--config", str(config_path), "run"],
                                   env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file)
            try:
                return _time_acknowledgements(dovecot, smtp, mode, interval, args, rng)
            finally:
                _stop(bot)


def _time_acknowledgements(dovecot, smtp, mode: str, interval: int, args, rng: random.Random) -> LatencyResult:
    # The warm-up message shows the bot has started; a short pause then lets the
    # IDLE watcher enter IDLE after the poll that acknowledged it.
    dovecot.append("INBOX", referral(0, rng))
    smtp.wait_for(1, timeout_seconds=WARM_UP_TIMEOUT_SECONDS)
    time.sleep(1.0)

    arrivals: dict[str, float] = {}
    for number in range(1, args.messages + 1):
        time.sleep(args.gap * rng.uniform(0.5, 1.5))
        raw = referral(number, rng)
        dovecot.append("INBOX", raw)
        arrivals[_message_id(raw)] = time.time()

    deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS + (interval if mode == "poll" else 0)
    acknowledged: dict[str, float] = {}
    while time.monotonic() < deadline and len(acknowledged) < len(arrivals):
        for received in smtp.messages:
            reply = email.message_from_bytes(received.data, policy=email.policy.compat32)
            original = (reply["In-Reply-To"] or "").strip()
            if original in arrivals and original not in acknowledged:
                acknowledged[original] = received.accepted_at
        time.sleep(0.05)

    latencies = sorted(acknowledged[key] - arrivals[key] for key in acknowledged)
    return LatencyResult(mode=mode, messages=len(arrivals), acknowledged=len(acknowledged),
                         interval_s=interval, p50_s=_rounded(percentile(latencies, 50)),
                         p95_s=_rounded(percentile(latencies, 95)),
                         max_s=_rounded(latencies[-1] if latencies else None))


def percentile(values: list[float], rank: float) -> float | None:
    """Return the nearest-rank percentile of sorted `values`, or None when there are none."""
    if not values:
        return None
    index = max(math.ceil(rank / 100 * len(values)) - 1, 0)
    return values[index]


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _stop(bot: subprocess.Popen) -> None:
    bot.send_signal(signal.SIGTERM)
    try:
        bot.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        bot.kill()
        bot.wait()


def _print_table(results: list[LatencyResult]) -> None:
    print(f"{'mode':<6} {'interval_s':>10} {'messages':>9} {'acknowledged':>13} {'p50_s':>7} {'p95_s':>7} {'max_s':>7}")
    for result in results:
        figures = [_shown(result.p50_s), _shown(result.p95_s), _shown(result.max_s)]
        print(f"{result.mode:<6} {result.interval_s:>10} {result.messages:>9} {result.acknowledged:>13} "
              + " ".join(f"{figure:>7}" for figure in figures))


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def referral(number: int, rng: random.Random) -> bytes:
    """Build a fictional referral from a sender of its own, so no acknowledgement brake applies."""
    first = rng.choice(FIRST_NAMES)
    last = f"{rng.choice(LAST_NAMES)}{number}"
    dob = f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(2010, 2016)}"
    message = EmailMessage()
    message["From"] = f"Clinician {number} <clinician{number}@{HEALTH_DOMAIN}>"
    message["To"] = CCAS_INBOX
    message["Subject"] = f"Referral for CCAS support - {first} {last}"
    message["Date"] = format_datetime(datetime.now(timezone.utc))
    message["Message-ID"] = make_msgid(domain=HEALTH_DOMAIN)
    message.set_content(
        f"Dear CCAS team,\n\nI am writing to refer {first} {last} (DOB {dob}) for support from the "
        f"CCAS panel. {first} has not attended school for six weeks because of anxiety and is "
        "under CAMHS. There is no EHCP. There are no safeguarding concerns.\n\n"
        f"Kind regards,\nClinician {number}\n")
    return message.as_bytes()


def _message_id(raw: bytes) -> str:
    return email.message_from_bytes(raw, policy=email.policy.compat32)["Message-ID"].strip()


def bench_settings(dovecot, smtp, work_dir: Path, idle: bool, interval: int) -> dict:
    """Configuration for `ccas-bot run` against the benchmark's own servers."""
    return {
        "bot": {"poll_interval_seconds": interval, "log_level": "WARNING"},
        "store": {"url": f"sqlite:///{work_dir / 'store.sqlite3'}"},
        "council": {"la_name": "Benchshire County Council", "ccas_inbox": CCAS_INBOX,
                    "send_inbox": "send@benchshire.gov.example",
                    "duty_coordinators": ["duty@benchshire.gov.example"]},
        "trusted_domains": {"health": [HEALTH_DOMAIN], "la": ["benchshire.gov.example"]},
        "mailbox": {"backend": "imap", "imap": {
            "host": dovecot.host, "port": dovecot.port, "security": "starttls",
            "username": dovecot.username, "password_env": "CCAS_BENCH_IMAP_PASSWORD",
            "ca_file": str(dovecot.ca_file), "timeout_seconds": 10, "idle": idle}},
        "sending": {"backend": "smtp", "smtp": {
            "host": smtp.host, "port": smtp.port, "security": "starttls",
            "username": smtp.username, "password_env": "CCAS_BENCH_SMTP_PASSWORD",
            "ca_file": str(smtp.ca_file), "timeout_seconds": 10}},
    }


def config_toml(data: dict) -> str:
    """Write a configuration mapping as TOML: tables of strings, whole numbers, booleans and lists of strings."""
    lines: list[str] = []
    _write_table(lines, data, prefix="")
    return "\n".join(lines) + "\n"


def _write_table(lines: list[str], table: dict, prefix: str) -> None:
    for key, value in table.items():
        if not isinstance(value, dict):
            lines.append(f"{key} = {_toml_value(value)}")
    for key, value in table.items():
        if isinstance(value, dict):
            name = f"{prefix}{key}"
            lines.append(f"\n[{name}]")
            _write_table(lines, value, prefix=name + ".")


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as a TOML value")
