"""The `ccas-bot` command."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path

from bot.config import Config, load_config
from bot.errors import ConfigError, RemoteError

log = logging.getLogger("bot")

# Modules that add their own subcommands: each has register(subparsers), and its
# handlers receive the parsed arguments and return the exit status.
COMMAND_MODULES: list[str] = ["bot.bench", "bot.health", "bot.train", "bot.panel_cli", "bot.backfill", "bot.queue_cli", "bot.users_cli", "bot.web_cli",
                             "bot.data_cli"]


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as error:
        print(f"ccas-bot: {error}", file=sys.stderr)
        return 2
    except RemoteError as error:
        print(f"ccas-bot: {error}; try again later", file=sys.stderr)
        return 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ccas-bot", description=(
        "Triage bot for a council's CCAS (Children who Cannot Attend School) panel inbox."))
    parser.add_argument("--config", default=os.environ.get("CCAS_BOT_CONFIG", "config.toml"),
                        help="configuration file (default: $CCAS_BOT_CONFIG or config.toml)")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    run = commands.add_parser("run", help="poll the mailbox at the configured interval until stopped",
                              description="Poll at [bot] poll_interval_seconds until SIGTERM or SIGINT; "
                                          "a poll in progress finishes first.")
    run.set_defaults(handler=_run)

    poll = commands.add_parser("poll", help="poll the mailbox once and print what happened to each message")
    poll.add_argument("--once", action="store_true", help="poll once and exit (the default; kept for scripts)")
    poll.set_defaults(handler=_poll)

    importer = commands.add_parser(
        "import", help="import the schools or case register from a CSV file",
        description="Add or update schools (by URN) or cases (by case_id). Column names are matched "
                    "loosely; see the README for the columns and bot/demo_registers/ for examples.")
    importer.add_argument("register", choices=["schools", "cases"], help="which register to import")
    importer.add_argument("file", type=Path, nargs="?",
                          help="CSV file (default: [registers] schools_csv or cases_csv in the configuration)")
    importer.set_defaults(handler=_import)

    evaluate = commands.add_parser("eval", help="triage a labelled corpus offline and score it")
    evaluate.add_argument("corpus", type=Path,
                          help="folder with emails/*.eml, JSON labels and register/, or any folder of .eml files")
    evaluate.add_argument("--predictions", type=Path, help="write one JSON line per message here")
    evaluate.add_argument("--json", action="store_true", help="print the scores as JSON")
    evaluate.set_defaults(handler=_eval)

    demo = commands.add_parser(
        "demo", help="run one poll over the shipped fictional mail in var/demo",
        description="Build a folder mailbox of the shipped fictional mail, a SQLite database, an outbox and "
                    "a config.toml for them, run one poll and print what happened to each message, then "
                    "the steps to open the results in the web app.")
    demo.add_argument("--folder", type=Path, default=Path("var/demo"),
                      help="where the demo's mailbox, database, outbox and config.toml go (default: var/demo); "
                           "a folder from an earlier demo is emptied first, any other non-empty folder is refused")
    demo.set_defaults(handler=_demo)

    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(commands)
    _describe_from_help(parser)
    return parser


def _describe_from_help(parser: argparse.ArgumentParser) -> None:
    """Give every subcommand without a description its one-line help as the description of its --help page."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        # argparse keeps each subcommand's help text only in these pseudo-actions.
        for choice in action._choices_actions:
            subparser = action.choices[choice.dest]
            if subparser.description is None and choice.help:
                subparser.description = choice.help[0].upper() + choice.help[1:] + "."
            _describe_from_help(subparser)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ccas-bot")
    except PackageNotFoundError:
        return "unknown"


def setup_logging(config: Config | None, level: str | None = None) -> None:
    logging.basicConfig(level=level or (config.bot.log_level if config else "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # imapclient logs protocol lines at DEBUG, which carry addresses and subjects.
    logging.getLogger("imapclient").setLevel(logging.WARNING)
    # Migrations and the scheduler log every step at INFO, which buries the bot's own lines.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def load(args) -> Config:
    """Load the configuration named on the command line and set up logging from it."""
    config = load_config(args.config)
    setup_logging(config)
    return config


def _run(args) -> int:
    from bot.app import build_context, build_mailbox, build_sender, open_store
    from bot.intake import Intake
    from bot.scheduler import run_forever
    from bot.workers import SingleRunnerLock
    from store.claims import LeaderLock

    config = load(args)
    # SQLite takes one worker; on PostgreSQL any number may run (bot/workers.py).
    runner_lock = SingleRunnerLock(config)
    runner_lock.acquire()
    store = open_store(config)
    sender = build_sender(config)
    build_mailbox(config)  # fail at start-up, not at the first poll, on a missing secret
    # One worker leads the daily jobs; the others skip them, and take the lead if the leader dies.
    leader = LeaderLock(store.engine)
    leader.is_leader()

    def poll() -> None:
        Intake(build_mailbox(config), build_context(config, store), sender).poll_once()

    def remind() -> None:
        from datetime import datetime
        from zoneinfo import ZoneInfo

        from bot.outcomes import send_action_reminders
        send_action_reminders(store, config, datetime.now(ZoneInfo(config.bot.timezone)).date())

    def daily() -> None:
        from bot.data_cli import run_daily_purge
        if not leader.is_leader():
            log.info("daily jobs skipped: another worker leads them")
            return
        try:
            remind()
        finally:
            # The purge runs even when the reminders failed; its own errors reach the scheduler's log.
            run_daily_purge(store, config)

    if config.mailbox.backend == "imap" and config.mailbox.imap.idle:
        from bot.idle import run_with_idle
        # NOTE: in IDLE mode reminders and the purge are not scheduled; run `ccas-bot reminders --once`
        # and `ccas-bot purge` from a timer.
        run_with_idle(config, poll, lambda: build_mailbox(config))
    else:
        run_forever(config, poll, daily=daily)
    leader.release()
    runner_lock.release()
    return 0


def _poll(args) -> int:
    from bot.app import build_context, build_mailbox, build_sender, open_store
    from bot.intake import Intake
    from bot.report import print_poll

    from bot.workers import SingleRunnerLock

    config = load(args)
    mailbox = build_mailbox(config)
    sender = build_sender(config)
    with SingleRunnerLock(config):
        store = open_store(config)
        summary = Intake(mailbox, build_context(config, store), sender).poll_once()
    print_poll(summary)
    return 0


def _import(args) -> int:
    from bot.app import open_store
    from bot.registers import import_cases, import_schools

    config = load(args)
    path = args.file
    if path is None:
        configured = config.registers.schools_csv if args.register == "schools" else config.registers.cases_csv
        if not configured:
            print(f"ccas-bot: no file given and [registers] {args.register}_csv is empty", file=sys.stderr)
            return 2
        path = config.path(configured)
    if not path.is_file():
        print(f"ccas-bot: file {path} not found", file=sys.stderr)
        return 2
    store = open_store(config)
    from tqdm import tqdm

    importer = import_schools if args.register == "schools" else import_cases
    summary = importer(store, path, progress=lambda rows: tqdm(
        rows, desc=f"import {args.register}", unit="row", file=sys.stderr))
    for line in summary.lines():
        print(f"{args.register} register: {line}")
    return 0


def _eval(args) -> int:
    from bot.evaluate import run_eval

    setup_logging(None, level="WARNING")
    return run_eval(args.corpus, predictions=args.predictions, as_json=args.json)


def _demo(args) -> int:
    from bot.demo import run_demo

    setup_logging(None, level="WARNING")
    return run_demo(args.folder)


if __name__ == "__main__":
    sys.exit(main())
