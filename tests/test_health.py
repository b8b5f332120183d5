"""`ccas-bot health` against the real Dovecot and SMTP test servers."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from bot.cli import main as cli_main
from liveconfig import IMAP_PASSWORD_ENV, SMTP_PASSWORD_ENV, make_config, poll, server_env, write_config


@pytest.fixture
def config_path(dovecot, smtp_server, tmp_path, monkeypatch):
    make_config(dovecot, smtp_server, tmp_path, monkeypatch)  # sets the passwords in the environment
    return write_config(dovecot, smtp_server, tmp_path)


@pytest.fixture
def ready(config_path, dovecot, smtp_server, tmp_path, monkeypatch):
    """A configuration whose database exists, created by one poll."""
    poll(make_config(dovecot, smtp_server, tmp_path, monkeypatch))
    return config_path


def health(config_path, capsys) -> tuple[int, dict[str, str]]:
    """Run `ccas-bot health`; return the exit status and each check's status by name."""
    status = cli_main(["--config", str(config_path), "health"])
    lines = capsys.readouterr().out.splitlines()
    return status, {line.split()[1]: line.split()[0] for line in lines}


@pytest.mark.sqlite_only("the health check looks for the SQLite file that the configuration names")
def test_health_all_checks_pass(ready, dovecot, smtp_server):
    result = subprocess.run([sys.executable, "-m", "bot.cli", "--config", str(ready), "health"],
                            env=server_env(dovecot, smtp_server), capture_output=True, text=True, timeout=60)

    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split()[:2] for line in lines] == [
        ["ok", "config"], ["ok", "store"], ["ok", "mailbox"], ["ok", "sending"]]
    assert dovecot.password not in result.stdout
    assert smtp_server.password not in result.stdout


@pytest.mark.sqlite_only("the health check looks for the SQLite file that the configuration names")
def test_health_fails_when_smtp_down(ready, smtp_server, capsys):
    smtp_server.stop()

    status, checks = health(ready, capsys)

    assert status == 1
    assert checks == {"config": "ok", "store": "ok", "mailbox": "ok", "sending": "FAIL"}


def test_health_fails_when_imap_down(ready, dovecot, capsys):
    dovecot.stop()

    status, checks = health(ready, capsys)

    assert status == 1
    assert checks["mailbox"] == "FAIL"
    assert checks["sending"] == "ok"


def test_health_fails_on_wrong_imap_password(ready, monkeypatch, capsys):
    monkeypatch.setenv(IMAP_PASSWORD_ENV, "not-the-password")

    status, checks = health(ready, capsys)

    assert status == 1
    assert checks["mailbox"] == "FAIL"


def test_health_fails_without_database(config_path, tmp_path, capsys):
    status, checks = health(config_path, capsys)

    assert status == 1
    assert checks["store"] == "FAIL"
    assert not (tmp_path / "store.sqlite3").exists()


@pytest.mark.sqlite_only("creates an empty SQLite file with sqlite3")
def test_health_fails_below_newest_migration(config_path, tmp_path, capsys):
    sqlite3.connect(tmp_path / "store.sqlite3").close()  # an empty database: no migration applied

    status = cli_main(["--config", str(config_path), "health"])

    output = capsys.readouterr().out
    assert status == 1
    assert "at migration none, the newest is" in output


def test_health_fails_on_invalid_config(tmp_path, capsys):
    path = tmp_path / "config.toml"
    path.write_text('[mailbox]\nbackend = "carrier-pigeon"\n')

    status, checks = health(path, capsys)

    assert status == 1
    assert checks == {"config": "FAIL"}


def test_health_fails_on_missing_secret(ready, monkeypatch, capsys):
    monkeypatch.delenv(SMTP_PASSWORD_ENV)

    status, checks = health(ready, capsys)

    assert status == 1
    assert checks["sending"] == "FAIL"
