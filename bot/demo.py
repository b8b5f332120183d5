"""`ccas-bot demo`: one poll over the shipped fictional mail, on the embedded default.

The demo builds its own folder (mailbox, SQLite database, outbox) from scratch, so it
can be run again and again with the same result and touches nothing else.
"""

from __future__ import annotations

import json
import shutil
import sys
import tomllib
from importlib import resources
from pathlib import Path

from bot.app import build_context, build_mailbox, build_sender, open_store
from bot.config import load_config
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
    config_path = folder / "config.toml"
    config_path.write_text(config_toml(demo_settings(directory)), encoding="utf-8")
    config = load_config(config_path)
    store = open_store(config)
    print("schools register: " + import_schools(store, registers / "schools.csv").lines()[0])
    print("case register:    " + import_cases(store, registers / "cases.csv").lines()[0])
    print()

    summary = Intake(build_mailbox(config), build_context(config, store), build_sender(config)).poll_once()
    print_poll(summary)
    print(f"\nReplies written to {folder / 'outbox'}; processed mail in {folder / 'mailbox'};"
          f" database {folder / 'ccas-bot.sqlite3'}; configuration {config_path}.")
    print(WEB_STEPS.format(config=config_path, env=config.web.secret_key_env, port=config.web.port))
    return 0


# Printed after the demo: how to look at its results in the web app.
WEB_STEPS = """
To look at the results in the web app:
  .venv/bin/ccas-bot --config {config} users add coordinator@marlshire.gov.example --role coordinator
  export {env}="$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
  .venv/bin/ccas-bot --config {config} web
then open http://127.0.0.1:{port}/ and sign in."""


def demo_settings(directory: dict) -> dict:
    """Return the demo's configuration: the council of the shipped registers, and paths inside the folder."""
    settings = _config_from_directory(directory)
    settings["council"]["duty_coordinators"] = ["ccas-duty@marlshire.gov.example"]
    settings["council"]["safeguarding_contact"] = "the Marlshire Family Front Door on 01000 000000"
    return {**settings,
            "store": {"url": "sqlite:///ccas-bot.sqlite3"},
            "mailbox": {"backend": "folder", "folder": {
                "inbox_path": "mailbox/inbox", "processed_path": "mailbox/processed",
                "quarantine_path": "mailbox/quarantine"}},
            "sending": {"backend": "folder", "outbox_path": "outbox"},
            # Plain http on this machine only, so the session cookie cannot be marked Secure.
            "web": {"host": "127.0.0.1", "port": DEMO_PORT, "secure_cookies": False,
                    "base_url": f"http://127.0.0.1:{DEMO_PORT}"}}


DEMO_PORT = 8080


def config_toml(settings: dict) -> str:
    """Write nested settings (tables of strings, numbers, booleans and lists of strings) as TOML.

    Relative paths in the file resolve against the folder that contains it, as in every config file.
    """
    lines = ["# Written by `ccas-bot demo` for its own folder; the next demo run replaces it.",
             "# See config.example.toml for what each key means."]
    _write_table(lines, settings, prefix="")
    return "\n".join(lines) + "\n"


def _write_table(lines: list[str], table: dict, prefix: str) -> None:
    values = {key: value for key, value in table.items() if not isinstance(value, dict)}
    if prefix and values:
        lines.extend(["", f"[{prefix}]"])
    for key, value in values.items():
        lines.append(f"{key} = {_toml_value(value)}")
    for key, value in table.items():
        if isinstance(value, dict):
            _write_table(lines, value, f"{prefix}.{key}" if prefix else key)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        # A JSON string with ensure_ascii is also a valid TOML basic string.
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as a TOML value")
