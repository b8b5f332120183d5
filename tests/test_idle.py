"""IMAP IDLE: the watcher against a real Dovecot, the IDLE run loop, and `ccas-bot run` with IDLE."""

from __future__ import annotations

import dataclasses
import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from imapclient import IMAPClient

import mailfactory
from bot.app import build_mailbox
from bot.config import ConfigError, config_from_mapping
from bot.idle import IdleWatcher, backoff_seconds, poll_until_stopped
from liveconfig import make_config, server_env, settings, write_config

# Generous bounds for a loaded machine. Dovecot reports a new message about 0.5 s after
# it arrives, and `ccas-bot run` needs about a second to start.
WAKE_TIMEOUT_SECONDS = 10.0
ACK_TIMEOUT_SECONDS = 30.0
LONG_INTERVAL_SECONDS = 600


@pytest.fixture
def config(dovecot, smtp_server, tmp_path, monkeypatch):
    return make_config(dovecot, smtp_server, tmp_path, monkeypatch,
                       imap={"idle": True, "reconnect_max_seconds": 2})


class Watch:
    """An IdleWatcher on its own thread, with its wake-ups counted in an Event."""

    def __init__(self, config) -> None:
        self.woken = threading.Event()
        self.stop = threading.Event()
        self.watcher = IdleWatcher(config, lambda: build_mailbox(config), self.woken.set, self.stop)

    def __enter__(self) -> Watch:
        self.watcher.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop.set()
        self.watcher.join(WAKE_TIMEOUT_SECONDS)
        assert not self.watcher.thread.is_alive(), "the IDLE watcher did not stop"

    def wait_woken(self) -> bool:
        woken = self.woken.wait(WAKE_TIMEOUT_SECONDS)
        self.woken.clear()
        return woken


def sent_idle_commands(caplog) -> int:
    return sum(1 for record in caplog.records
               if record.name == "imapclient.imaplib" and record.getMessage().endswith(" IDLE'"))


def test_backoff_doubles_up_to_maximum():
    assert [backoff_seconds(failures, 10) for failures in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert backoff_seconds(0, 10) == 0


def test_watcher_wakes_on_new_mail(config, dovecot):
    with Watch(config) as watch:
        assert watch.wait_woken()  # once on connecting, for mail that came before
        dovecot.append("INBOX", mailfactory.referral().as_bytes())

        assert watch.wait_woken()


def test_watcher_reissues_idle_before_timeout(dovecot, smtp_server, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG, logger="imapclient")
    config = make_config(dovecot, smtp_server, tmp_path, monkeypatch,
                         imap={"idle": True, "idle_timeout_seconds": 1})
    with Watch(config) as watch:
        assert watch.wait_woken()
        time.sleep(3.5)
        dovecot.append("INBOX", mailfactory.referral().as_bytes())

        assert watch.wait_woken()
    assert sent_idle_commands(caplog) >= 3


def test_watcher_reconnects_after_server_restart(config, dovecot, caplog):
    caplog.set_level(logging.INFO, logger="bot.idle")
    with Watch(config) as watch:
        assert watch.wait_woken()
        dovecot.restart()
        assert watch.wait_woken()  # woken again on reconnecting
        dovecot.append("INBOX", mailfactory.referral().as_bytes())

        assert watch.wait_woken()
    assert "IDLE connection failed" in caplog.text


def test_watcher_backs_off_while_server_down(config, dovecot, caplog):
    caplog.set_level(logging.INFO, logger="bot.idle")
    dovecot.stop()
    with Watch(config) as watch:
        deadline = time.monotonic() + WAKE_TIMEOUT_SECONDS
        while caplog.text.count("IDLE connection failed") < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        delays = [record.args[1] for record in caplog.records if "reconnecting in" in record.msg]
        dovecot.start()

        assert watch.wait_woken()
    assert delays[:3] == [1, 2, 2]  # reconnect_max_seconds = 2
    assert "IDLE connection restored after" in caplog.text


def test_watcher_without_idle_capability_stops(config, monkeypatch, caplog):
    real = IMAPClient.has_capability
    monkeypatch.setattr(IMAPClient, "has_capability",
                        lambda self, name: False if name == "IDLE" else real(self, name))
    watch = Watch(config)
    with watch:
        watch.watcher.join(WAKE_TIMEOUT_SECONDS)

        assert not watch.watcher.thread.is_alive()
    assert not watch.woken.is_set()
    assert "does not offer IDLE" in caplog.text


def run_loop(config, poll) -> tuple[threading.Event, threading.Event, threading.Thread]:
    stop = threading.Event()
    wake = threading.Event()
    thread = threading.Thread(target=poll_until_stopped,
                              args=(config, poll, lambda: build_mailbox(config), stop, wake), daemon=True)
    thread.start()
    return stop, wake, thread


def stop_loop(stop: threading.Event, wake: threading.Event, thread: threading.Thread) -> None:
    stop.set()
    wake.set()
    thread.join(WAKE_TIMEOUT_SECONDS)
    assert not thread.is_alive(), "the IDLE loop did not stop"


def test_loop_polls_again_after_wake_during_poll(config, monkeypatch):
    monkeypatch.setattr(IMAPClient, "has_capability", lambda self, name: name != "IDLE")
    long = dataclasses.replace(config, bot=dataclasses.replace(config.bot, poll_interval_seconds=LONG_INTERVAL_SECONDS))
    polls: list[float] = []
    second_poll = threading.Event()

    def poll():
        polls.append(time.monotonic())
        if len(polls) == 1:
            wake.set()  # new mail reported while this poll runs
        else:
            second_poll.set()

    stop, wake, thread = run_loop(long, poll)
    try:
        assert second_poll.wait(WAKE_TIMEOUT_SECONDS)
    finally:
        stop_loop(stop, wake, thread)
    assert len(polls) == 2


def test_loop_polls_at_interval_without_idle(config, monkeypatch):
    monkeypatch.setattr(IMAPClient, "has_capability", lambda self, name: name != "IDLE")
    short = dataclasses.replace(config, bot=dataclasses.replace(config.bot, poll_interval_seconds=1))
    polls: list[float] = []
    stop, wake, thread = run_loop(short, lambda: polls.append(time.monotonic()))
    time.sleep(3.5)
    stop_loop(stop, wake, thread)

    assert len(polls) >= 3  # at 0 s, 1 s, 2 s and 3 s on an idle machine


def test_loop_retries_failed_poll_with_backoff(config, monkeypatch, caplog):
    from bot.errors import RemoteError
    monkeypatch.setattr(IMAPClient, "has_capability", lambda self, name: name != "IDLE")
    long = dataclasses.replace(config, bot=dataclasses.replace(config.bot, poll_interval_seconds=LONG_INTERVAL_SECONDS))
    polls: list[float] = []

    def poll():
        polls.append(time.monotonic())
        if len(polls) <= 2:
            raise RemoteError("database locked")

    stop, wake, thread = run_loop(long, poll)
    deadline = time.monotonic() + WAKE_TIMEOUT_SECONDS
    while len(polls) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop_loop(stop, wake, thread)

    assert len(polls) == 3
    assert 0.9 <= polls[1] - polls[0] < 1.9  # 1 s after the first failure
    assert 1.9 <= polls[2] - polls[1] < 2.9  # 2 s after the second
    assert "poll failed 2 times in a row; next poll in 2 s" in caplog.text


def test_idle_timeout_over_29_minutes_rejected(dovecot, smtp_server, tmp_path):
    data = settings(dovecot, smtp_server, tmp_path, imap={"idle": True, "idle_timeout_seconds": 1800})

    with pytest.raises(ConfigError) as error:
        config_from_mapping(data, base_dir=tmp_path)
    assert "mailbox.imap.idle_timeout_seconds" in str(error.value)


def test_idle_must_be_boolean(dovecot, smtp_server, tmp_path):
    data = settings(dovecot, smtp_server, tmp_path, imap={"idle": "yes"})

    with pytest.raises(ConfigError) as error:
        config_from_mapping(data, base_dir=tmp_path)
    assert "true or false" in str(error.value)


class RunningBot:
    """`ccas-bot run` in a child process, logging to a file."""

    def __init__(self, config_path: Path, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.log_file = open(log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "--config", str(config_path), "run"],
            env=env, stdin=subprocess.DEVNULL, stdout=self.log_file, stderr=self.log_file)

    def wait_for_log(self, text: str, timeout: float = ACK_TIMEOUT_SECONDS) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_path.read_text(errors="replace"):
                return True
            if self.process.poll() is not None:
                return False
            time.sleep(0.1)
        return False

    def stop(self) -> int | None:
        """Send SIGTERM and return the exit status, or None when the bot had to be killed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=ACK_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None
        finally:
            self.log_file.close()


@pytest.fixture
def idle_bot(dovecot, smtp_server, tmp_path):
    config_path = write_config(dovecot, smtp_server, tmp_path,
                               imap={"idle": True, "reconnect_max_seconds": 2},
                               bot={"poll_interval_seconds": LONG_INTERVAL_SECONDS, "log_level": "INFO"})
    bot = RunningBot(config_path, server_env(dovecot, smtp_server), tmp_path / "bot.log")
    try:
        yield bot
    finally:
        bot.stop()


def test_run_acknowledges_on_idle_before_interval(idle_bot, dovecot, smtp_server):
    assert idle_bot.wait_for_log("IDLE watching the polled folder")
    dovecot.append("INBOX", mailfactory.referral().as_bytes())

    received = smtp_server.wait_for(1, timeout_seconds=ACK_TIMEOUT_SECONDS)
    assert received[0].rcpt_tos == ["nia.gwent@testhealth.nhs.example"]
    assert idle_bot.stop() == 0
    assert "IDLE mode stopped" in idle_bot.log_path.read_text()


def test_run_recovers_after_server_restart(idle_bot, dovecot, smtp_server):
    assert idle_bot.wait_for_log("IDLE watching the polled folder")
    dovecot.restart()
    assert idle_bot.wait_for_log("IDLE connection restored")
    dovecot.append("INBOX", mailfactory.referral().as_bytes())

    smtp_server.wait_for(1, timeout_seconds=ACK_TIMEOUT_SECONDS)
    assert idle_bot.stop() == 0
    assert len(smtp_server.messages) == 1
