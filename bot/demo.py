"""`ccas-bot demo`: one poll over the shipped fictional mail, on the embedded default.

The demo builds its own folder (mailbox, SQLite database, outbox) from scratch, so it
can be run again and again with the same result and touches nothing else.
"""

from __future__ import annotations

import shutil
import sys
import tomllib
from importlib import resources
from pathlib import Path

from bot.app import build_context, build_mailbox, build_sender, open_store
from bot.config import config_from_mapping
from bot.evaluate import _config_from_directory
from bot.intake import Intake
from bot.registers import import_cases, import_schools
from bot.report import print_poll


def run_demo(folder: Path) -> int:
    shipped = resources.files("bot")
    mail = Path(str(shipped / "demo_mail"))
    registers = Path(str(shipped / "demo_registers"))

    marker = folder / ".ccas-demo"
    if folder.exists() and any(folder.iterdir()):
        if not marker.is_file():
            print(f"ccas-bot: {folder} is not empty and was not made by the demo; choose another --folder",
                  file=sys.stderr)
            return 2
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text("made by ccas-bot demo; the demo empties this folder on its next run\n", encoding="utf-8")
    inbox = folder / "mailbox" / "inbox"
    inbox.mkdir(parents=True)
    for message in sorted(mail.glob("*.eml")):
        shutil.copy(message, inbox / message.name)

    directory = tomllib.loads((registers / "directory.toml").read_text(encoding="utf-8"))
    settings = _config_from_directory(directory)
    settings["council"]["duty_coordinators"] = ["ccas-duty@marlshire.gov.example"]
    settings["council"]["safeguarding_contact"] = "the Marlshire Family Front Door on 01000 000000"
    data = {**settings,
            "store": {"url": "sqlite:///ccas-bot.sqlite3"},
            "mailbox": {"backend": "folder", "folder": {
                "inbox_path": "mailbox/inbox", "processed_path": "mailbox/processed",
                "quarantine_path": "mailbox/quarantine"}},
            "sending": {"backend": "folder", "outbox_path": "outbox"}}
    config = config_from_mapping(data, base_dir=folder.resolve())
    store = open_store(config)
    print("schools register: " + import_schools(store, registers / "schools.csv").lines()[0])
    print("case register:    " + import_cases(store, registers / "cases.csv").lines()[0])
    print()

    summary = Intake(build_mailbox(config), build_context(config, store), build_sender(config)).poll_once()
    print_poll(summary)
    print(f"\nReplies written to {folder / 'outbox'}; processed mail in {folder / 'mailbox'};"
          f" database {folder / 'ccas-bot.sqlite3'}.")
    return 0
