"""Helpers for the web app's tests: an app on a fresh store, accounts, and signing in.

CSRF protection stays on, as in production, so `sign_in` reads the token from the form.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from bot.app import open_store
from bot.config import Config, config_from_mapping
from bot.web import create_app
from store.accounts import AccountStore, hash_password
from store.records import Store

PASSWORD = "correct horse battery staple"
SECRET_ENV = "CCAS_TEST_WEB_SECRET_KEY"

_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_web_app(tmp_path: Path, **config_overrides) -> tuple[Flask, Store, Config]:
    """Build the web app on a SQLite store, folder mailbox and folder outbox in `tmp_path`.

    Keyword arguments are configuration sections merged over the defaults, such as
    `web={"session_idle_minutes": 5}`.
    """
    os.environ.setdefault(SECRET_ENV, secrets.token_urlsafe(32))
    mapping = {
        "store": {"url": f"sqlite:///{tmp_path / 'store.sqlite3'}"},
        "mailbox": {"backend": "folder", "folder": {
            "inbox_path": str(tmp_path / "mailbox" / "inbox"),
            "processed_path": str(tmp_path / "mailbox" / "processed"),
            "quarantine_path": str(tmp_path / "mailbox" / "quarantine"),
        }},
        "sending": {"backend": "folder", "outbox_path": str(tmp_path / "outbox")},
        "web": {"secret_key_env": SECRET_ENV, "secure_cookies": False},
    }
    _merge(mapping, config_overrides)
    config = config_from_mapping(mapping, base_dir=tmp_path)
    store = open_store(config)
    app = create_app(config, store)
    app.testing = True
    return app, store, config


def add_user(store: Store, username: str, role: str, password: str = PASSWORD, *, display_name: str = "") -> int:
    """Create an active local account and return its id."""
    accounts = AccountStore(store)
    if password == PASSWORD:
        # One argon2 hash of the usual password serves every test; hashing takes a few tenths of a second.
        account = accounts.add_user("test-setup", username, role, display_name=display_name or username,
                                    password_hash=_default_password_hash())
    else:
        account = accounts.add_user("test-setup", username, role, display_name=display_name or username,
                                    password=password)
    return account.id


@functools.cache
def _default_password_hash() -> str:
    return hash_password(PASSWORD)


def csrf_token(client: FlaskClient, path: str = "/sign-in") -> str:
    """Return the CSRF token from the form on `path`."""
    page = client.get(path)
    match = _CSRF_FIELD.search(page.get_data(as_text=True))
    assert match, f"no CSRF token in {path} (status {page.status_code})"
    return match.group(1)


def sign_in(client: FlaskClient, username: str, password: str = PASSWORD):
    """Sign in through the sign-in form and return the response (a redirect when it worked)."""
    token = csrf_token(client, "/sign-in")
    return client.post("/sign-in", data={"csrf_token": token, "username": username, "password": password})


def _merge(base: dict, overrides: dict) -> None:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
