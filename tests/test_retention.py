"""The retention purge: periods on fixed dates, oldest first, open work untouched, audited with counts."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from bot.cli import main
from bot.config import RetentionConfig
from bot.data_cli import run_daily_purge
from casefactory import NOW, add_case, add_message, add_panel_records, days_ago, make_store
from store.audit import BOT_ACTOR, add_audit
from store.models import (AgendaItem, AuditEvent, Case, CaseClock, CaseEvent, CaseKey, CaseParty, Correction,
                          Message, OutboxItem, PanelAction, PanelDecision, PanelMeeting, SignInAttempt,
                          WorkItem)
from store.records import RawPurgedError
from store.retention import purge

POLICY = RetentionConfig()


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path)[0]


def message_row(store, pk):
    return store._read(lambda session: session.get(Message, pk))


def count(store, model, *clauses):
    return store._read(lambda session: session.scalar(select(func.count()).select_from(model).where(*clauses)))


def purge_events(store):
    return store._read(lambda session: list(session.scalars(
        select(AuditEvent).where(AuditEvent.action == "retention_purge").order_by(AuditEvent.id))))


# Messages and mail ------------------------------------------------------------------------


def test_raw_bytes_go_after_their_period(store):
    old = add_message(store, 1, at=days_ago(366))
    recent = add_message(store, 2, at=days_ago(364))

    result = purge(store, POLICY, now=NOW)

    assert result.counts["raw_messages"] == 1
    assert message_row(store, old).raw is None
    assert message_row(store, old).raw_purged_at is not None
    assert message_row(store, old).subject == "Referral"
    assert message_row(store, recent).raw is not None
    with pytest.raises(RawPurgedError, match="removed by the retention purge"):
        store.load_raw(old)


def test_open_messages_never_purged(store):
    retry = add_message(store, 1, at=days_ago(5000), outcome="retry")
    waiting = add_message(store, 2, at=days_ago(5000), outcome="needs_person", reasons=["mailbox:quarantine"])

    result = purge(store, POLICY, now=NOW)

    assert sum(result.counts.values()) == 0
    for pk in (retry, waiting):
        row = message_row(store, pk)
        assert row.raw is not None
        assert row.subject == "Referral"
        assert row.details_purged_at is None


def test_quarantined_bytes_go_sooner(store):
    quarantined = add_message(store, 1, at=days_ago(91), reasons=["mailbox:quarantine", "message:too_large"])
    ordinary = add_message(store, 2, at=days_ago(91))

    result = purge(store, POLICY, now=NOW)

    assert result.counts["quarantined_messages"] == 1
    assert result.counts["raw_messages"] == 0
    assert message_row(store, quarantined).raw is None
    assert message_row(store, ordinary).raw is not None


def test_outbox_bodies_go_but_unsent_mail_stays(store):
    add_message(store, 1, at=days_ago(400), mail_status="sent")
    add_message(store, 2, at=days_ago(400), mail_status="pending")
    add_message(store, 3, at=days_ago(400), mail_status="draft")
    add_message(store, 4, at=days_ago(300), mail_status="sent")

    result = purge(store, POLICY, now=NOW)

    assert result.counts["outbox_bodies"] == 1
    rows = store._read(lambda session: {row.out_message_id: row for row in session.scalars(select(OutboxItem))})
    assert rows["reply1@council.example"].raw is None
    assert rows["reply1@council.example"].recipient == "referrer@school.example"
    assert rows["reply1@council.example"].body_purged_at is not None
    for kept in ("reply2@council.example", "reply3@council.example", "reply4@council.example"):
        assert rows[kept].raw is not None


def test_details_go_only_from_messages_without_case(store):
    add_case(store, "CCAS-2027-0001", first_name="Ada", last_name="Brook", dob=date(2016, 1, 1))
    unlinked = add_message(store, 1, at=days_ago(731), extracted={"first_name": "Ada"})
    linked = add_message(store, 2, at=days_ago(731), case_id="CCAS-2027-0001", extracted={"first_name": "Ada"})
    young = add_message(store, 3, at=days_ago(700))

    result = purge(store, POLICY, now=NOW)

    assert result.counts["message_details"] == 1
    row = message_row(store, unlinked)
    assert (row.subject, row.sender_email, row.extracted) == ("", "", {})
    assert row.details_purged_at is not None
    assert message_row(store, linked).extracted == {"first_name": "Ada"}
    assert message_row(store, young).subject == "Referral"


# Cases ---------------------------------------------------------------------------------------


def test_closed_case_goes_with_everything_linked(store):
    add_case(store, "CCAS-2020-0001", first_name="Ada", last_name="Brook", dob=date(2004, 1, 1),
             status="closed", closed_on=NOW.date() - timedelta(days=6 * 366))
    pk = add_message(store, 1, at=days_ago(7 * 365), case_id="CCAS-2020-0001", mail_status="sent",
                     agenda="new_referrals")
    add_panel_records(store, "CCAS-2020-0001", pk, date(2023, 5, 3))

    result = purge(store, POLICY, now=NOW)

    assert result.counts["closed_cases"] == 1
    assert result.counts["case_messages"] == 1
    assert count(store, Case) == 0
    assert count(store, Message) == 0
    for model in (OutboxItem, CaseEvent, CaseKey, CaseParty, AgendaItem, CaseClock, PanelDecision, PanelAction,
                  Correction):
        assert count(store, model) == 0, model.__tablename__
    assert count(store, PanelMeeting) == 1
    assert result.linked_rows["decisions"] == 1
    assert result.linked_rows["actions"] == 1


def test_cases_kept_until_both_periods_pass(store):
    six_years = NOW.date() - timedelta(days=6 * 366)
    add_case(store, "CCAS-2020-0001", first_name="Ada", last_name="Brook", dob=date(2010, 1, 1),
             status="closed", closed_on=six_years)
    add_case(store, "CCAS-2020-0002", first_name="Ben", last_name="Cole", dob=date(2000, 1, 1),
             status="closed", closed_on=NOW.date() - timedelta(days=5 * 365))
    add_case(store, "CCAS-2020-0003", first_name="Cat", last_name="Dale", dob=date(2000, 1, 1),
             status="open", closed_on=six_years)
    add_case(store, "CCAS-2020-0004", first_name="Dan", last_name="Eyre", dob=date(2000, 1, 1), status="send")

    result = purge(store, POLICY, now=NOW)

    assert result.counts["closed_cases"] == 0
    assert count(store, Case) == 4

    without_age_rule = dataclasses.replace(POLICY, closed_cases_until_age_years=0)
    assert purge(store, without_age_rule, now=NOW).counts["closed_cases"] == 1
    assert store.get_case("CCAS-2020-0001") is None


def test_closed_case_with_open_work_kept(store):
    long_ago = NOW.date() - timedelta(days=7 * 366)
    add_case(store, "CCAS-2020-0001", first_name="Ada", last_name="Brook", dob=date(2000, 1, 1),
             status="closed", closed_on=long_ago)
    add_message(store, 1, at=days_ago(3000), case_id="CCAS-2020-0001", outcome="needs_person")
    add_case(store, "CCAS-2020-0002", first_name="Ben", last_name="Cole", dob=date(2000, 1, 1), status="closed")

    result = purge(store, POLICY, now=NOW)

    assert result.counts["closed_cases"] == 0
    assert result.closed_cases_with_open_work == 1
    assert result.closed_cases_undated == 1
    assert count(store, Case) == 2


def test_open_case_keeps_details_loses_bytes(store):
    add_case(store, "CCAS-2019-0001", first_name="Ada", last_name="Brook", dob=date(2000, 1, 1))
    pk = add_message(store, 1, at=days_ago(4000), case_id="CCAS-2019-0001", extracted={"first_name": "Ada"})

    purge(store, POLICY, now=NOW)

    row = message_row(store, pk)
    assert row.raw is None
    assert row.extracted == {"first_name": "Ada"}
    assert store.get_case("CCAS-2019-0001") is not None


# Audit events, order and batches -------------------------------------------------------------


def test_old_audit_events_and_sign_ins_go(store):
    def work(session):
        add_audit(session, "someone", "case_viewed", target_type="case", target_id="X", at=days_ago(8 * 365))
        add_audit(session, "someone", "case_viewed", target_type="case", target_id="Y", at=days_ago(6 * 365))
        session.add(SignInAttempt(key="a" * 64, at=days_ago(91)))
        session.add(SignInAttempt(key="b" * 64, at=days_ago(89)))
    store._write(work)

    result = purge(store, POLICY, now=NOW)

    assert result.counts["audit_events"] == 1
    assert result.counts["sign_in_attempts"] == 1
    viewed = store._read(lambda session: list(session.scalars(
        select(AuditEvent.target_id).where(AuditEvent.action == "case_viewed"))))
    assert viewed == ["Y"]
    assert count(store, SignInAttempt) == 1


def test_finished_work_claims_go_with_raw_messages(store):
    def work(session):
        for uid, status, done_at in (("old-done.eml", "done", days_ago(400)), ("new-done.eml", "done", days_ago(10)),
                                     ("old-pending.eml", "pending", None)):
            session.add(WorkItem(source="folder", folder="inbox", uidvalidity=0, uid=uid, status=status,
                                 listed_at=days_ago(400), done_at=done_at))
    store._write(work)

    result = purge(store, POLICY, now=NOW)

    assert result.counts["work_items"] == 1
    left = store._read(lambda session: sorted(session.scalars(select(WorkItem.uid))))
    assert left == ["new-done.eml", "old-pending.eml"]


def test_purge_audited_with_counts(store):
    add_message(store, 1, at=days_ago(400), mail_status="sent")
    add_message(store, 2, at=days_ago(800))

    purge(store, POLICY, now=NOW)

    events = purge_events(store)
    assert len(events) == 1
    assert events[0].actor == BOT_ACTOR == "ccas-bot"
    assert events[0].detail["raw_messages"] == 2
    assert events[0].detail["outbox_bodies"] == 1
    assert events[0].detail["message_details"] == 1


def test_nothing_to_purge_writes_no_event(store):
    add_message(store, 1, at=days_ago(10))

    purge(store, POLICY, now=NOW)

    assert purge_events(store) == []


def test_dry_run_counts_and_changes_nothing(store):
    pk = add_message(store, 1, at=days_ago(800), mail_status="sent")
    add_case(store, "CCAS-2020-0001", first_name="Ada", last_name="Brook", dob=date(2000, 1, 1),
             status="closed", closed_on=date(2022, 1, 1))

    dry = purge(store, POLICY, now=NOW, dry_run=True)

    assert dry.counts["raw_messages"] == 1
    assert dry.counts["outbox_bodies"] == 1
    assert dry.counts["message_details"] == 1
    assert dry.counts["closed_cases"] == 1
    assert message_row(store, pk).raw is not None
    assert count(store, Case) == 1
    assert purge_events(store) == []
    real = purge(store, POLICY, now=NOW)
    assert {name: real.counts[name] for name in ("raw_messages", "outbox_bodies", "message_details",
                                                 "closed_cases")} == \
        {name: dry.counts[name] for name in ("raw_messages", "outbox_bodies", "message_details", "closed_cases")}


def test_oldest_first_batch_by_batch(store, monkeypatch):
    """A failure in the second batch leaves the oldest message purged, the newer ones intact, and the event."""
    newest = add_message(store, 1, at=days_ago(500))
    oldest = add_message(store, 2, at=days_ago(700))
    middle = add_message(store, 3, at=days_ago(600))
    writes = {"count": 0}
    original_write = store._write

    def failing_second_write(work):
        writes["count"] += 1
        if writes["count"] == 2:
            raise RuntimeError("simulated failure")
        return original_write(work)

    monkeypatch.setattr(store, "_write", failing_second_write)

    with pytest.raises(RuntimeError):
        purge(store, dataclasses.replace(POLICY, batch_size=1), now=NOW)

    assert message_row(store, oldest).raw is None
    assert message_row(store, middle).raw is not None
    assert message_row(store, newest).raw is not None
    events = purge_events(store)
    assert [event.detail["raw_messages"] for event in events] == [1]


def test_purge_before_details_and_cases(store):
    """One run takes the bytes, the details and a whole case of the same age together."""
    add_case(store, "CCAS-2020-0001", first_name="Ada", last_name="Brook", dob=date(2000, 1, 1),
             status="closed", closed_on=date(2022, 1, 1))
    add_message(store, 1, at=days_ago(3000), case_id="CCAS-2020-0001")
    add_message(store, 2, at=days_ago(3000))

    result = purge(store, POLICY, now=NOW)

    # Bytes go first (both messages), details next (the unlinked one), then the case with its message.
    assert result.counts["raw_messages"] == 2
    assert result.counts["message_details"] == 1
    assert result.counts["closed_cases"] == 1
    assert count(store, Message) == 1


# Commands --------------------------------------------------------------------------------------


def write_config(tmp_path, extra: str = "") -> str:
    path = tmp_path / "config.toml"
    path.write_text(f'[store]\nurl = "sqlite:///store.sqlite3"\n{extra}', encoding="utf-8")
    return str(path)


def test_purge_command_prints_counts(tmp_path, capsys):
    store, _config = make_store(tmp_path)
    from datetime import datetime, timezone
    add_message(store, 1, at=datetime.now(timezone.utc) - timedelta(days=400))

    assert main(["--config", write_config(tmp_path), "purge", "--dry-run"]) == 0
    dry_output = capsys.readouterr().out
    assert "raw messages: would remove 1" in dry_output

    assert main(["--config", write_config(tmp_path), "purge"]) == 0
    assert "raw messages: removed 1" in capsys.readouterr().out


def test_purge_turned_off(tmp_path, capsys):
    store, config = make_store(tmp_path)
    from datetime import datetime, timezone
    pk = add_message(store, 1, at=datetime.now(timezone.utc) - timedelta(days=400))

    assert main(["--config", write_config(tmp_path, "[retention]\nenabled = false\n"), "purge"]) == 0
    assert "turned off" in capsys.readouterr().out
    run_daily_purge(store, dataclasses.replace(config, retention=RetentionConfig(enabled=False)))
    assert message_row(store, pk).raw is not None

    run_daily_purge(store, config)
    assert message_row(store, pk).raw is None
