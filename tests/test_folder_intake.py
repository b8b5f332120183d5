"""The embedded default end to end: folder mailbox, SQLite, outbox folder, and the commands."""

from __future__ import annotations

import email
import email.policy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mailfactory
from bot.app import build_context, build_mailbox, build_sender, open_store
from bot.config import config_from_mapping
from bot.intake import Intake

REPOSITORY = Path(__file__).resolve().parents[1]


def folder_config(tmp_path: Path):
    data = {
        **mailfactory.council_settings(),
        "store": {"url": "sqlite:///store.sqlite3"},
        "mailbox": {"backend": "folder", "folder": {
            "inbox_path": "inbox", "processed_path": "processed", "quarantine_path": "quarantine"}},
        "sending": {"backend": "folder", "outbox_path": "outbox"},
    }
    (tmp_path / "inbox").mkdir()
    return config_from_mapping(data, base_dir=tmp_path)


def poll(config):
    store = open_store(config)
    return Intake(build_mailbox(config), build_context(config, store), build_sender(config)).poll_once()


def test_folder_of_eml_files_processed_and_moved(tmp_path):
    config = folder_config(tmp_path)
    (tmp_path / "inbox" / "a.eml").write_bytes(mailfactory.referral().as_bytes())
    (tmp_path / "inbox" / "b.eml").write_bytes(mailfactory.out_of_office().as_bytes())

    poll(config)

    assert sorted(p.name for p in (tmp_path / "processed").iterdir()) == ["a.eml", "b.eml"]
    assert list((tmp_path / "inbox").iterdir()) == []
    outbox = list((tmp_path / "outbox").iterdir())
    assert len(outbox) == 1
    reply = email.message_from_bytes(outbox[0].read_bytes(), policy=email.policy.default)
    assert reply["To"] == "nia.gwent@testhealth.nhs.example"


def test_maildir_new_and_cur_both_read(tmp_path):
    config = folder_config(tmp_path)
    for sub in ("new", "cur", "tmp"):
        (tmp_path / "inbox" / sub).mkdir()
    (tmp_path / "inbox" / "new" / "1.eml").write_bytes(mailfactory.referral().as_bytes())
    (tmp_path / "inbox" / "cur" / "2.eml").write_bytes(
        mailfactory.referral("Ivy", "Marchbank", "02/05/2014").as_bytes())
    (tmp_path / "inbox" / "tmp" / "3.eml").write_bytes(b"still being written")

    summary = poll(config)

    assert len(summary.processed) == 2
    assert (tmp_path / "inbox" / "tmp" / "3.eml").exists()


def test_folder_copy_gets_one_reply(tmp_path):
    config = folder_config(tmp_path)
    raw = mailfactory.referral().as_bytes()
    (tmp_path / "inbox" / "a.eml").write_bytes(raw)
    poll(config)
    (tmp_path / "inbox" / "a-copy.eml").write_bytes(raw)

    poll(config)

    assert len(list((tmp_path / "outbox").iterdir())) == 1
    assert sorted(p.name for p in (tmp_path / "processed").iterdir()) == ["a-copy.eml", "a.eml"]


def test_one_failing_step_does_not_block_the_rest(tmp_path, monkeypatch):
    config = folder_config(tmp_path)
    (tmp_path / "inbox" / "a.eml").write_bytes(mailfactory.referral().as_bytes())
    (tmp_path / "inbox" / "b.eml").write_bytes(mailfactory.referral("Ivy", "Marchbank", "02/05/2014").as_bytes())
    import bot.pipeline as pipeline
    real_extract = pipeline.extract_child

    def extract_failing_on_poppy(subject, *args, **kwargs):
        if "Poppy" in subject:
            raise RuntimeError("simulated bug")
        return real_extract(subject, *args, **kwargs)

    monkeypatch.setattr(pipeline, "extract_child", extract_failing_on_poppy)

    summary = poll(config)

    outcomes = {item.ref.uid: item.stored.outcome for item in summary.processed}
    assert outcomes == {"a.eml": "needs_person", "b.eml": "handled"}
    assert "bug:extract" in summary.processed[0].triage.reasons
    assert (tmp_path / "quarantine" / "a.eml").exists()


def test_poll_once_command_prints_each_message(tmp_path):
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "a.eml").write_bytes(mailfactory.referral().as_bytes())
    config_file = tmp_path / "config.toml"
    config_file.write_text(
        '[mailbox.folder]\ninbox_path = "inbox"\nprocessed_path = "done"\nquarantine_path = "bad"\n'
        '[store]\nurl = "sqlite:///bot.sqlite3"\n[sending]\noutbox_path = "outbox"\n'
        '[trusted_domains]\nhealth = ["testhealth.nhs.example"]\n', encoding="utf-8")

    result = subprocess.run([sys.executable, "-m", "bot.cli", "--config", str(config_file), "poll", "--once"],
                            capture_output=True, text=True, timeout=120, cwd=REPOSITORY)

    assert result.returncode == 0, result.stderr
    assert "a.eml" in result.stdout
    assert "support_request" in result.stdout
    assert "acknowledgement" in result.stdout
    assert "nia.gwent@testhealth.nhs.example" not in result.stdout


def test_bad_config_stops_with_key_named(tmp_path):
    config_file = tmp_path / "config.toml"
    config_file.write_text('[bot]\nmax_attempts = "many"\n', encoding="utf-8")

    result = subprocess.run([sys.executable, "-m", "bot.cli", "--config", str(config_file), "poll", "--once"],
                            capture_output=True, text=True, timeout=60, cwd=REPOSITORY)

    assert result.returncode == 2
    assert "bot.max_attempts" in result.stderr


def test_run_polls_then_stops_cleanly_on_sigterm(tmp_path):
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "a.eml").write_bytes(mailfactory.referral().as_bytes())
    config_file = tmp_path / "config.toml"
    config_file.write_text(
        '[bot]\npoll_interval_seconds = 1\n[mailbox.folder]\ninbox_path = "inbox"\n'
        'processed_path = "done"\nquarantine_path = "bad"\n[store]\nurl = "sqlite:///bot.sqlite3"\n'
        '[sending]\noutbox_path = "outbox"\n', encoding="utf-8")

    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "--config", str(config_file), "run"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPOSITORY)
    deadline = time.monotonic() + 60
    while not (tmp_path / "done" / "a.eml").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)

    assert (tmp_path / "done" / "a.eml").exists()
    assert process.returncode == 0, stderr
    assert "scheduler stopped" in stderr


def test_demo_prints_outcome_category_case_and_replies(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bot.cli", "demo", "--folder", str(tmp_path / "demo")],
                            capture_output=True, text=True, timeout=120, cwd=REPOSITORY)

    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.endswith(".eml") or ".eml " in line]
    assert len(lines) == len(list((REPOSITORY / "bot" / "demo_mail").glob("*.eml")))
    assert "needs_person" in result.stdout
    assert "auto_reply" in result.stdout
    assert list((tmp_path / "demo" / "outbox").glob("*.eml"))


def test_message_retried_once_per_poll(tmp_path, monkeypatch):
    config = folder_config(tmp_path)
    (tmp_path / "inbox" / "a.eml").write_bytes(mailfactory.referral().as_bytes())
    import bot.intake as intake
    real_pipeline = intake.run_pipeline
    calls = []

    def pipeline_asking_for_retry(raw, context, identity=None):
        calls.append(1)
        triage = real_pipeline(raw, context, identity)
        triage.outcome = "retry"
        triage.mail = []
        return triage

    monkeypatch.setattr(intake, "run_pipeline", pipeline_asking_for_retry)
    poll(config)
    calls.clear()

    poll(config)

    assert len(calls) == 1
    assert (tmp_path / "inbox" / "a.eml").exists()


def test_unsendable_reply_does_not_block_outbox(tmp_path, monkeypatch):
    config = folder_config(tmp_path)
    (tmp_path / "inbox" / "a.eml").write_bytes(mailfactory.referral().as_bytes())
    (tmp_path / "inbox" / "b.eml").write_bytes(mailfactory.referral("Ivy", "Marchbank", "02/05/2014").as_bytes())
    from replies.send import FolderSender
    real_send = FolderSender.send

    def send_failing_for_first(self, raw, recipient, envelope_from, message_id):
        if b"Poppy" in raw or not getattr(self, "_failed_once", False):
            self._failed_once = True
            raise UnicodeEncodeError("ascii", "\u00e4", 0, 1, "simulated address the library cannot encode")
        return real_send(self, raw, recipient, envelope_from, message_id)

    monkeypatch.setattr(FolderSender, "send", send_failing_for_first)
    poll(config)
    summary = poll(config)

    store = open_store(config)
    statuses = sorted(item.status for pk in (1, 2) for item in store.outbox_for_message(pk))
    assert statuses == ["failed", "sent"]
    assert summary.send_failures == 0
