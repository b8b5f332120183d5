"""Subject access export and erasure of one child's case, including a message naming two children."""

from __future__ import annotations

import json
import zipfile
from datetime import date

import pytest
from sqlalchemy import func, or_, select

from bot.cli import main
from casefactory import add_case, add_message, add_panel_records, days_ago, link_message, make_store
from store.models import (AgendaItem, AuditEvent, Case, CaseClock, CaseEvent, CaseKey, CaseParty, CaseSchool,
                          Correction, Message, OutboxItem, PanelAction, PanelDecision)
from store.subject_access import UnknownCaseError, erase_case, export_case

ADA = "CCAS-2027-0001"
BEN = "CCAS-2027-0002"
# Everything that identifies the second child, none of which may appear in the first child's export.
BEN_VALUES = ["Benedict", "Quarrington", "B885211721099", "7936836799", "2014-09-30", "ben.parent@home.example"]


@pytest.fixture
def children(tmp_path):
    """Two children with their own messages, and one message that names them both."""
    store, _config = make_store(tmp_path)
    add_case(store, ADA, first_name="Adaline", last_name="Featherstone", dob=date(2015, 3, 4),
             upn="A885204118099", nhs_number="6956110399", school_urn="900101")
    add_case(store, BEN, first_name="Benedict", last_name="Quarrington", dob=date(2014, 9, 30),
             upn="B885211721099", nhs_number="7936836799", lead_email="ben.parent@home.example")
    pks = {
        "ada": add_message(store, 1, at=days_ago(30), case_id=ADA, subject="Referral for Adaline Featherstone",
                           body="Adaline has been unwell since March.", mail_status="sent", agenda="new_referrals",
                           extracted={"first_name": "Adaline", "last_name": "Featherstone"}),
        "ben": add_message(store, 2, at=days_ago(20), case_id=BEN, subject="Benedict Quarrington update",
                           body="Benedict Quarrington, NHS 7936836799, is back in hospital.",
                           sender="ben.parent@home.example", mail_status="sent",
                           extracted={"first_name": "Benedict"}),
        "both": add_message(store, 3, at=days_ago(10), case_id=ADA,
                            subject="Adaline Featherstone and Benedict Quarrington",
                            body="Both children, Adaline and Benedict Quarrington (UPN B885211721099), need tuition.",
                            extracted={"first_name": "Adaline"}),
    }
    link_message(store, BEN, pks["both"], days_ago(10))
    add_panel_records(store, ADA, pks["ada"], date(2030, 5, 1))
    add_panel_records(store, BEN, pks["ben"], date(2030, 5, 1))
    return store, pks


def read_zip(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


# Export ----------------------------------------------------------------------------------------


def test_export_holds_whole_case(children, tmp_path):
    store, pks = children
    output = tmp_path / "ada.zip"

    summary = export_case(store, ADA, "dpo@council.example", output)

    files = read_zip(output)
    document = json.loads(files["case.json"])
    assert document["case"]["first_name"] == "Adaline"
    assert document["case"]["upn"] == "A885204118099"
    assert document["merged_cases"] == []
    assert document["exported_by"] == "dpo@council.example"
    assert [row["urn"] for row in document["school_history"]] == ["900101"]
    assert document["parties"]
    assert {event["kind"] for event in document["events"]} >= {"message_linked"}
    assert [row["kind"] for row in document["clocks"]] == ["sixth_day"]
    assert [row["kind"] for row in document["decisions"]] == ["agree_provision"]
    assert document["decisions"][0]["meeting_date"] == "2030-05-01"
    assert [row["description"] for row in document["actions"]] == ["Arrange tuition."]
    assert [row["standing_item"] for row in document["agenda_items"]] == ["new_referrals"]
    assert [row["field"] for row in document["corrections"]] == ["category"]
    assert [row["action"] for row in document["audit_events"]] == ["case_viewed"]
    assert sorted(row["id"] for row in document["messages"]) == sorted([pks["ada"], pks["both"]])
    assert files[f"messages/{pks['ada']}.eml"] == store.load_raw(pks["ada"])
    sent = [row for row in document["outbox"] if row["status"] == "sent"]
    assert len(sent) == 1
    assert files[sent[0]["file"]].startswith(b"To: referrer@school.example")
    assert summary.originals == 1
    assert summary.withheld == 1


def test_export_holds_nothing_of_other_child(children, tmp_path):
    store, pks = children
    output = tmp_path / "ada.zip"

    export_case(store, ADA, "dpo@council.example", output)

    files = read_zip(output)
    assert f"messages/{pks['both']}.eml" not in files
    shared = [row for row in json.loads(files["case.json"])["messages"] if row["id"] == pks["both"]][0]
    assert shared["file"] is None
    assert shared["subject"] is None
    for name, content in files.items():
        text = content.decode("utf-8", errors="replace")
        for value in BEN_VALUES:
            assert value not in text, f"{value} found in {name}"


def test_export_audited(children, tmp_path):
    store, _pks = children

    export_case(store, ADA, "dpo@council.example", tmp_path / "ada.zip")

    events = store._read(lambda session: list(session.scalars(
        select(AuditEvent).where(AuditEvent.action == "case_exported"))))
    assert len(events) == 1
    assert (events[0].actor, events[0].target_type, events[0].target_id) == ("dpo@council.example", "case", ADA)
    assert events[0].detail["originals"] == 1


def test_export_unknown_case_leaves_no_file(children, tmp_path):
    store, _pks = children

    with pytest.raises(UnknownCaseError, match="CCAS-2027-0999 not found"):
        export_case(store, "CCAS-2027-0999", "dpo@council.example", tmp_path / "none.zip")

    assert list(tmp_path.glob("none.zip*")) == []


# Erasure ---------------------------------------------------------------------------------------


def rows_about(store, case_id, message_pks):
    """Count every row that names the case or one of the messages, table by table."""
    def work(session):
        counts = {}
        for model, clauses in (
                (Case, [Case.id == case_id]),
                (Message, [Message.id.in_(message_pks)]),
                (CaseKey, [CaseKey.case_id == case_id]),
                (CaseParty, [CaseParty.case_id == case_id]),
                (CaseSchool, [CaseSchool.case_id == case_id]),
                (CaseEvent, [CaseEvent.case_id == case_id, CaseEvent.message_pk.in_(message_pks)]),
                (AgendaItem, [AgendaItem.case_id == case_id, AgendaItem.message_pk.in_(message_pks)]),
                (CaseClock, [CaseClock.case_id == case_id, CaseClock.message_pk.in_(message_pks)]),
                (OutboxItem, [OutboxItem.case_id == case_id, OutboxItem.message_pk.in_(message_pks)]),
                (PanelDecision, [PanelDecision.case_id == case_id]),
                (PanelAction, [PanelAction.case_id == case_id]),
                (Correction, [Correction.message_pk.in_(message_pks)])):
            counts[model.__tablename__] = session.scalar(
                select(func.count()).select_from(model).where(or_(*clauses)))
        return counts
    return store._read(work)


def test_erase_removes_everything_but_audit_event(children):
    store, pks = children

    counts = erase_case(store, ADA, "dpo@council.example")

    assert counts["case"] == 1
    assert counts["messages"] == 1
    assert counts["messages_unlinked"] == 1
    assert all(value == 0 for value in rows_about(store, ADA, [pks["ada"]]).values()), rows_about(
        store, ADA, [pks["ada"]])
    erased = store._read(lambda session: list(session.scalars(
        select(AuditEvent).where(AuditEvent.action == "case_erased"))))
    assert len(erased) == 1
    assert (erased[0].actor, erased[0].target_id) == ("dpo@council.example", ADA)
    assert erased[0].detail["messages"] == 1
    assert erased[0].detail["decisions"] == 1
    assert erased[0].detail["actions"] == 1


def test_erase_keeps_message_of_two_children(children):
    store, pks = children

    erase_case(store, ADA, "dpo@council.example")

    shared = store._read(lambda session: session.get(Message, pks["both"]))
    assert shared is not None
    assert shared.case_id == BEN
    assert shared.extracted == {}
    assert b"Benedict" in store.load_raw(pks["both"])
    ben_links = store._read(lambda session: session.scalar(select(func.count()).select_from(CaseEvent).where(
        CaseEvent.case_id == BEN, CaseEvent.message_pk == pks["both"])))
    assert ben_links == 1


def test_erase_leaves_other_child_whole(children):
    store, pks = children
    before = rows_about(store, BEN, [pks["ben"]])

    erase_case(store, ADA, "dpo@council.example")

    assert rows_about(store, BEN, [pks["ben"]]) == before
    assert store.get_case(BEN).first_name == "Benedict"


def test_erase_takes_merged_case_too(children):
    store, _pks = children
    add_case(store, "CCAS-2026-0042", first_name="Addie", last_name="Featherstone", dob=date(2015, 3, 4),
             status="merged")

    def merge(session):
        session.add(CaseEvent(case_id="CCAS-2026-0042", kind="merged_into", at=days_ago(5),
                              detail={"case_id": ADA, "by": "coordinator@council.example"}))
        session.add(CaseEvent(case_id=ADA, kind="merged_from", at=days_ago(5),
                              detail={"case_id": "CCAS-2026-0042", "by": "coordinator@council.example"}))
    store._write(merge)

    counts = erase_case(store, ADA, "dpo@council.example")

    assert counts["merged_cases"] == 1
    assert store.get_case("CCAS-2026-0042") is None
    assert store.get_case(BEN) is not None


def test_erase_unknown_case_rejected(children):
    store, _pks = children

    with pytest.raises(UnknownCaseError):
        erase_case(store, "CCAS-2027-0999", "dpo@council.example")


# Commands --------------------------------------------------------------------------------------


def config_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[store]\nurl = "sqlite:///store.sqlite3"\n', encoding="utf-8")
    return str(path)


def test_commands_reject_unknown_case(children, tmp_path, capsys):
    config = config_file(tmp_path)

    assert main(["--config", config, "export", "case", "CCAS-2027-0999", "--actor", "dpo",
                 "--output", str(tmp_path / "x.zip")]) == 1
    assert "CCAS-2027-0999 not found" in capsys.readouterr().err
    assert main(["--config", config, "erase", "case", "CCAS-2027-0999", "--actor", "dpo", "--yes"]) == 1
    assert "CCAS-2027-0999 not found" in capsys.readouterr().err


def test_erase_command_needs_confirmation(children, tmp_path, capsys, monkeypatch):
    store, _pks = children
    config = config_file(tmp_path)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)

    assert main(["--config", config, "erase", "case", ADA, "--actor", "dpo"]) == 2
    assert "--yes" in capsys.readouterr().err
    assert store.get_case(ADA) is not None

    assert main(["--config", config, "erase", "case", ADA, "--actor", "dpo", "--yes"]) == 0
    assert f"case {ADA} erased" in capsys.readouterr().out
    assert store.get_case(ADA) is None


def test_declined_erase_exits_1(children, tmp_path, capsys, monkeypatch):
    store, _pks = children
    config = config_file(tmp_path)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda _prompt: "no")

    assert main(["--config", config, "erase", "case", ADA, "--actor", "dpo"]) == 1
    assert "Nothing was erased." in capsys.readouterr().out
    assert store.get_case(ADA) is not None


def test_every_command_help_has_description():
    import argparse

    from bot.cli import _parser

    def walk(parser, name):
        yield name, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for command, subparser in action.choices.items():
                    yield from walk(subparser, f"{name} {command}")

    for name, parser in walk(_parser(), "ccas-bot"):
        assert parser.description, f"`{name} --help` has no description"
        for action in parser._actions:
            if action.option_strings and action.help is None:
                raise AssertionError(f"`{name}` option {action.option_strings[0]} has no help")


def test_export_command_writes_zip(children, tmp_path, capsys):
    config = config_file(tmp_path)
    output = tmp_path / "out" / "ada.zip"
    output.parent.mkdir()

    assert main(["--config", config, "export", "case", ADA, "--actor", "dpo", "--output", str(output)]) == 0
    assert "case.json" in read_zip(output)
    assert oct(output.stat().st_mode & 0o777) == "0o600"
    assert main(["--config", config, "export", "case", ADA, "--actor", "dpo", "--output", str(output)]) == 2
    assert "already exists" in capsys.readouterr().err
