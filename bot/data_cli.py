"""Data protection commands: `purge`, `export case`, `erase case` and `store encrypt-existing`."""

from __future__ import annotations

import logging
import sys
from datetime import date
from pathlib import Path

log = logging.getLogger(__name__)

SHARED_MESSAGE_RULE = (
    "A message that also concerns another case (one message naming two children, or the messages "
    "of merged cases) keeps its original bytes for the other child: the export leaves its original "
    "and subject out, and erasure removes only this case's links to it. A message that concerns "
    "only this case is exported in full and erased.")


def register(commands) -> None:
    purge = commands.add_parser(
        "purge", help="remove personal data older than its [retention] period, oldest first",
        description="Remove the original bytes of finished messages, the bodies of sent mail, the details of "
                    "messages linked to no case, closed cases past their period with everything linked to "
                    "them, old audit events and failed sign-ins, as [retention] sets. Open messages, unsent "
                    "mail and open cases are never touched. `ccas-bot run` does this once a day.")
    purge.add_argument("--dry-run", action="store_true", help="count what would be removed and change nothing")
    purge.set_defaults(handler=_purge)

    export = commands.add_parser("export", help="write everything held about one child to a zip file")
    export_kinds = export.add_subparsers(required=True, metavar="KIND")
    export_case = export_kinds.add_parser(
        "case", help="export one case for a subject access request",
        description="Write a zip with case.json (the case, school history, parties, chronology, messages' "
                    "stored details, outgoing mail, agenda items, decisions, actions, clocks and audit events) "
                    "and the original messages as .eml files. The export is audited. " + SHARED_MESSAGE_RULE)
    export_case.add_argument("case_id", metavar="CASE_ID", help="the case id, such as CCAS-2026-0001")
    export_case.add_argument("--output", type=Path,
                             help="the zip file to write (default: CASE_ID-export-YYYY-MM-DD.zip here); "
                                  "an existing file is never overwritten")
    export_case.add_argument("--actor", required=True,
                             help="who asked for the export, recorded in the audit log")
    export_case.set_defaults(handler=_export_case)

    erase = commands.add_parser("erase", help="delete everything held about one child")
    erase_kinds = erase.add_subparsers(required=True, metavar="KIND")
    erase_case = erase_kinds.add_parser(
        "case", help="erase one case and everything linked to it",
        description="Delete the case, its messages and their original bytes, outgoing mail, matching keys, "
                    "parties, chronology, agenda items, clocks, decisions, actions and corrections. One audit "
                    "event remains, recording the case id, who erased it, when, and the counts. "
                    + SHARED_MESSAGE_RULE)
    erase_case.add_argument("case_id", metavar="CASE_ID", help="the case id, such as CCAS-2026-0001")
    erase_case.add_argument("--actor", required=True, help="who decided the erasure, recorded in the audit log")
    erase_case.add_argument("--yes", action="store_true", help="erase without asking for confirmation")
    erase_case.set_defaults(handler=_erase_case)

    store = commands.add_parser("store", help="maintenance of the store")
    store_commands = store.add_subparsers(required=True, metavar="ACTION")
    encrypt = store_commands.add_parser(
        "encrypt-existing", help="encrypt stored message bytes with the newest key ([store] encryption_key_env)",
        description="Encrypt the plain rows written before encryption was turned on, and re-encrypt the "
                    "encrypted rows with the first (newest) key, so an old key can then be removed. Each "
                    "batch is one transaction; running it again after an interruption is safe.")
    encrypt.add_argument("--batch-size", type=int, default=200, help="rows per transaction (default 200)")
    encrypt.set_defaults(handler=_encrypt_existing)


def run_daily_purge(store, config) -> None:
    """Run the retention purge as the daily job of `ccas-bot run`, when [retention] enabled is true."""
    from store.retention import purge

    if not config.retention.enabled:
        log.info("retention purge skipped: [retention] enabled is false")
        return
    purge(store, config.retention)


def _purge(args) -> int:
    from bot.app import open_store
    from bot.cli import load
    from store.retention import purge

    config = load(args)
    if not config.retention.enabled:
        print("The retention purge is turned off ([retention] enabled = false); nothing was removed.")
        return 0
    result = purge(open_store(config), config.retention, dry_run=args.dry_run)
    for line in result.lines():
        print(line)
    return 0


def _export_case(args) -> int:
    from bot.app import open_store
    from bot.cli import load
    from store.subject_access import UnknownCaseError, export_case

    if not args.actor.strip():
        print("ccas-bot: --actor is empty; give the name of the person who asked for the export", file=sys.stderr)
        return 2
    output = args.output or Path(f"{args.case_id}-export-{date.today().isoformat()}.zip")
    if output.exists():
        print(f"ccas-bot: {output} already exists; choose another --output file", file=sys.stderr)
        return 2
    store = open_store(load(args))
    try:
        summary = export_case(store, args.case_id, args.actor, output)
    except UnknownCaseError as error:
        print(f"ccas-bot: {error}", file=sys.stderr)
        return 1
    print(summary.line())
    return 0


def _erase_case(args) -> int:
    from bot.app import open_store
    from bot.cli import load
    from store.subject_access import UnknownCaseError, count_case, erase_case

    if not args.actor.strip():
        print("ccas-bot: --actor is empty; give the name of the person who decided the erasure", file=sys.stderr)
        return 2
    store = open_store(load(args))
    try:
        planned = count_case(store, args.case_id)
        if not args.yes:
            if not sys.stdin.isatty():
                print("ccas-bot: erasure cannot be undone; add --yes to erase without a prompt", file=sys.stderr)
                return 2
            answer = input(f"Erase case {args.case_id}, {planned['messages']} messages and everything linked "
                           f"to them, and unlink {planned['messages_unlinked']} shared messages? "
                           "This cannot be undone. Type the case id to confirm: ")
            if answer.strip() != args.case_id:
                print("Nothing was erased.")
                return 1
        counts = erase_case(store, args.case_id, args.actor)
    except UnknownCaseError as error:
        print(f"ccas-bot: {error}", file=sys.stderr)
        return 1
    removed = ", ".join(f"{name.replace('_', ' ')} {count}" for name, count in counts.items())
    print(f"case {args.case_id} erased: {removed}")
    return 0


def _encrypt_existing(args) -> int:
    from bot.app import open_store
    from bot.cli import load
    from store.crypto import encrypt_existing

    if args.batch_size <= 0:
        print("ccas-bot: --batch-size must be greater than zero", file=sys.stderr)
        return 2
    store = open_store(load(args))
    summary = encrypt_existing(store.engine, batch_size=args.batch_size)
    print(summary.line())
    return 0
