"""The panel agenda and its exports, meeting records, outcome drafts, reminders and action replies."""

from __future__ import annotations

import csv
import email
import email.policy
import io
import json
from datetime import date, datetime, timezone
from pathlib import Path

import icalendar
import pytest
from docx import Document

from bot.agenda_export import render_csv, render_docx, render_html, render_ics
from bot.cli import main
from bot.config import config_from_mapping
from bot.outcomes import OUTCOME_TEMPLATES, draft_outcomes, record_action_reply, send_action_reminders
from bot.pipeline import identify_raw
from replies.render import Renderer
from store.agenda import STANDING_ITEMS
from store.db import create_store_engine, upgrade_schema
from store.panel import DECISION_KINDS, Attendee, PanelStore
from store.records import Store, TriageRecord

MEETING = date(2025, 1, 8)  # a Wednesday; the meeting before it is 18 December 2024
TODAY = date(2025, 1, 6)
QUEUED_AT = datetime(2025, 1, 2, 9, 0, tzinfo=timezone.utc)
LEAD = "lead.nurse@health.example"
OWNER = "panel.member@school.example"
COUNCIL = {"la_name": "Testshire County Council", "ccas_inbox": "ccas@testshire.gov.example",
           "send_inbox": "send@testshire.gov.example", "panel_members": [OWNER, "chair@testshire.gov.example"]}


def make_config(tmp_path: Path, **panel):
    return config_from_mapping({"council": COUNCIL, "panel": panel}, base_dir=tmp_path)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    upgrade_schema(engine)
    return Store(engine)


@pytest.fixture
def config(tmp_path: Path):
    return make_config(tmp_path)


@pytest.fixture
def panel(store, config) -> PanelStore:
    return PanelStore(store, config)


def add_case(store: Store, case_id: str, **fields) -> None:
    row = {"id": case_id, "first_name": "Sam", "last_name": "Taylor", "status": "open", "lead_email": LEAD}
    row.update(fields)
    store.upsert_cases([row])


def queue_message(store: Store, number: int, case_id: str | None, item: str, at: datetime = QUEUED_AT,
                  category: str = "support_request") -> int:
    raw = f"From: a@school.example\r\nMessage-ID: <m{number}@school.example>\r\nSubject: x\r\n\r\nbody\r\n".encode()
    message_id, synthesised, digest = identify_raw(raw)
    stored = store.record_triage(TriageRecord(
        message_id=message_id, message_id_synthesised=synthesised, sha256=digest, raw=raw, source="folder",
        folder="inbox", uidvalidity=None, uid=str(number), outcome="handled", reasons=[], category=category,
        case_id=case_id, agenda_items=[item], at=at))
    return stored.pk


# Agenda ------------------------------------------------------------------------


def test_agenda_standing_items_in_order(panel):
    agenda = panel.list_agenda(MEETING)

    assert [section.title for section in agenda.sections] == [
        "Welcomes and introductions",
        "Review of actions from previous meeting",
        "Review new referrals",
        "Review existing placements / advice for ongoing placements",
        "AOB",
    ]


def test_agenda_links_case_and_messages(store, panel):
    add_case(store, "CCAS-2025-0001")
    first = queue_message(store, 1, "CCAS-2025-0001", "new_referrals")
    second = queue_message(store, 2, "CCAS-2025-0001", "new_referrals")

    entries = panel.list_agenda(MEETING).section("new_referrals").entries

    assert len(entries) == 1
    assert entries[0].case_id == "CCAS-2025-0001"
    assert [message.pk for message in entries[0].messages] == [first, second]
    assert entries[0].child_label == "Sam T."


def test_item_after_meeting_start_waits(store, panel):
    add_case(store, "CCAS-2025-0001")
    queue_message(store, 1, "CCAS-2025-0001", "new_referrals", at=datetime(2025, 1, 8, 11, 0, tzinfo=timezone.utc))

    assert panel.list_agenda(MEETING).section("new_referrals").entries == []
    assert len(panel.list_agenda(date(2025, 1, 15)).section("new_referrals").entries) == 1


def test_review_after_twelve_weeks(store, panel):
    add_case(store, "CCAS-2024-0001", last_reviewed=date(2024, 10, 16))  # due 8 Jan
    add_case(store, "CCAS-2024-0002", last_reviewed=date(2024, 10, 23))  # due 15 Jan

    entries = panel.list_agenda(MEETING).section("existing_placements").entries

    assert [entry.case_id for entry in entries] == ["CCAS-2024-0001"]
    assert entries[0].reason == "review_due"
    assert entries[0].review_due_on == date(2025, 1, 8)
    assert not entries[0].overdue


def test_review_overdue_highlighted(store, panel, config):
    add_case(store, "CCAS-2024-0003", last_reviewed=date(2024, 9, 18))  # due 11 Dec, before 18 Dec panel
    add_case(store, "CCAS-2024-0004", last_reviewed=date(2024, 10, 9))  # due 1 Jan, no panel since

    agenda = panel.list_agenda(MEETING)
    entries = agenda.section("existing_placements").entries

    assert [(entry.case_id, entry.overdue) for entry in entries] == [("CCAS-2024-0003", True),
                                                                    ("CCAS-2024-0004", False)]
    assert 'class="overdue"' in render_html(agenda, config)


def test_review_interval_configurable(store, tmp_path):
    add_case(store, "CCAS-2024-0001", last_reviewed=date(2024, 11, 27))
    panel = PanelStore(store, make_config(tmp_path, review_interval_weeks=6))

    entries = panel.list_agenda(MEETING).section("existing_placements").entries

    assert [entry.case_id for entry in entries] == ["CCAS-2024-0001"]


def test_next_review_date_takes_precedence(store, panel):
    add_case(store, "CCAS-2024-0001", last_reviewed=date(2024, 9, 1), next_review=date(2025, 3, 5))

    assert panel.list_agenda(MEETING).section("existing_placements").entries == []


def test_closed_case_not_reviewed(store, panel):
    add_case(store, "CCAS-2024-0001", last_reviewed=date(2024, 9, 1), status="closed")

    assert panel.list_agenda(MEETING).section("existing_placements").entries == []


def test_queued_case_not_listed_twice(store, panel):
    add_case(store, "CCAS-2024-0001", last_reviewed=date(2024, 9, 1))
    queue_message(store, 1, "CCAS-2024-0001", "existing_placements", category="change_of_circumstances")

    entries = panel.list_agenda(MEETING).section("existing_placements").entries

    assert len(entries) == 1
    assert entries[0].reason == "queued"


def test_new_referral_not_also_under_placements(store, panel):
    add_case(store, "CCAS-2025-0002")
    referral = queue_message(store, 1, "CCAS-2025-0002", "new_referrals")
    update = queue_message(store, 2, "CCAS-2025-0002", "existing_placements", category="change_of_circumstances")

    before = panel.list_agenda(MEETING)
    panel.prepare_agenda(MEETING, TODAY)
    after = panel.list_agenda(MEETING)

    for agenda in (before, after):
        assert agenda.section("existing_placements").entries == []
        (entry,) = agenda.section("new_referrals").entries
        assert entry.case_id == "CCAS-2025-0002"
        assert entry.reason != "review_due"
        assert sorted(message.pk for message in entry.messages) == [referral, update]


def test_review_item_joins_later_referral(store, panel):
    add_case(store, "CCAS-2024-0001", last_reviewed=date(2024, 9, 1))
    panel.prepare_agenda(MEETING, TODAY)
    queue_message(store, 1, "CCAS-2024-0001", "new_referrals")

    panel.prepare_agenda(MEETING, TODAY)
    agenda = panel.list_agenda(MEETING)

    assert agenda.section("existing_placements").entries == []
    assert [entry.case_id for entry in agenda.section("new_referrals").entries] == ["CCAS-2024-0001"]


def test_prepare_stores_reviews_and_items(store, panel):
    add_case(store, "CCAS-2024-0001", last_reviewed=date(2024, 9, 1))
    add_case(store, "CCAS-2025-0002")
    queue_message(store, 1, "CCAS-2025-0002", "new_referrals")

    panel.prepare_agenda(MEETING, TODAY)
    panel.prepare_agenda(MEETING, TODAY)
    agenda = panel.list_agenda(MEETING)

    assert agenda.prepared
    review = agenda.section("existing_placements").entries
    assert len(review) == 1
    assert review[0].item_ids and review[0].reason == "review_overdue"
    assert agenda.section("new_referrals").entries[0].position == 1
    # Items assigned to this meeting no longer roll forward to the next one.
    assert panel.list_agenda(date(2025, 1, 15)).section("new_referrals").entries == []


def test_prepared_summer_meeting_keeps_local_time(panel, config):
    summer = date(2025, 7, 2)
    panel.prepare_agenda(summer, date(2025, 6, 30))

    agenda = panel.list_agenda(summer)

    assert agenda.starts_at.hour == 10
    assert str(agenda.starts_at.tzinfo) == "Europe/London"
    assert "10:00 to 12:00" in render_html(agenda, config)


def test_prepare_refuses_meeting_after_next(panel):
    with pytest.raises(ValueError, match="only the next meeting"):
        panel.prepare_agenda(date(2025, 1, 15), TODAY)


def test_prepare_refuses_bank_holiday(panel):
    with pytest.raises(ValueError, match="Christmas Day"):
        panel.prepare_agenda(date(2024, 12, 25), date(2024, 12, 20))


def test_reorder_agenda_items(store, panel):
    for number in (1, 2, 3):
        add_case(store, f"CCAS-2025-000{number}")
        queue_message(store, number, f"CCAS-2025-000{number}", "new_referrals")
    panel.prepare_agenda(MEETING, TODAY)
    ids = [entry.item_ids[0] for entry in panel.list_agenda(MEETING).section("new_referrals").entries]

    panel.reorder_agenda_items(MEETING, "new_referrals", [ids[2], ids[0]])
    order = [entry.case_id for entry in panel.list_agenda(MEETING).section("new_referrals").entries]

    assert order == ["CCAS-2025-0003", "CCAS-2025-0001", "CCAS-2025-0002"]


def test_reorder_rejects_unknown_item(panel):
    with pytest.raises(ValueError, match="prepare the agenda first"):
        panel.reorder_agenda_items(MEETING, "new_referrals", [999])


def test_aob_item_added_last(store, panel):
    queue_message(store, 1, None, "aob", category="query")

    panel.add_aob_item(MEETING, "Training dates for the spring term")
    entries = panel.list_agenda(MEETING).section("aob").entries

    assert len(entries) == 2
    assert entries[-1].title == "Training dates for the spring term"


def test_actions_listed_for_review(store, panel):
    add_case(store, "CCAS-2024-0001")
    earlier = date(2024, 12, 18)
    meeting_id = panel.create_meeting(earlier, earlier)
    panel.add_action(meeting_id, OWNER, "Send the tuition referral", case_id="CCAS-2024-0001",
                     due_on=date(2025, 1, 3))

    actions = panel.list_agenda(MEETING).section("actions_review").actions

    assert [(action.description, action.overdue) for action in actions] == [("Send the tuition referral", True)]


# Exports -----------------------------------------------------------------------


@pytest.fixture
def full_agenda(store, panel):
    add_case(store, "CCAS-2025-0001", first_name="Riley", last_name="Marsh-Okafor")
    queue_message(store, 1, "CCAS-2025-0001", "new_referrals")
    add_case(store, "CCAS-2024-0002", first_name="Jo", last_name="Penhaligon", last_reviewed=date(2024, 9, 1))
    return panel.list_agenda(MEETING)


def test_csv_standing_items_in_order(full_agenda):
    rows = list(csv.DictReader(io.StringIO(render_csv(full_agenda))))

    titles = []
    for row in rows:
        if row["standing_item"] not in titles:
            titles.append(row["standing_item"])
    assert titles == [title for _key, title in STANDING_ITEMS]
    referral = next(row for row in rows if row["case_reference"] == "CCAS-2025-0001")
    assert referral["child"] == "Riley M."
    assert "Marsh-Okafor" not in render_csv(full_agenda)


def test_csv_formula_text_stays_text(store, panel):
    panel.add_aob_item(MEETING, '=HYPERLINK("https://evil.example/","Open")')
    panel.add_aob_item(MEETING, "@SUM(1+1)")

    rows = list(csv.DictReader(io.StringIO(render_csv(panel.list_agenda(MEETING)))))

    titles = [row["title"] for row in rows if row["title"]]
    assert "'=HYPERLINK(\"https://evil.example/\",\"Open\")" in titles
    assert "'@SUM(1+1)" in titles
    assert not any(title.startswith(("=", "@")) for title in titles)


def test_docx_opens_with_python_docx(full_agenda, config):
    document = Document(io.BytesIO(render_docx(full_agenda, config)))

    headings = [p.text for p in document.paragraphs if p.style.name.startswith("Heading 2")]
    cells = [cell.text for table in document.tables for row in table.rows for cell in row.cells]
    assert headings[0] == "1. Welcomes and introductions"
    assert headings[-1] == "5. AOB"
    assert "CCAS-2025-0001" in cells
    assert "Riley M." in cells
    assert not any("Penhaligon" in cell for cell in cells)


def test_ics_parses_back(full_agenda, config):
    data = render_ics(full_agenda, config, now=datetime(2025, 1, 6, 12, 0, tzinfo=timezone.utc))

    calendar = icalendar.Calendar.from_ical(data)
    event = calendar.walk("VEVENT")[0]
    start = event.decoded("dtstart")
    assert start == datetime(2025, 1, 8, 10, 0, tzinfo=start.tzinfo)
    assert str(start.tzinfo) == "Europe/London"
    assert calendar.walk("VTIMEZONE")[0]["TZID"] == "Europe/London"
    assert [str(attendee) for attendee in event["ATTENDEE"]] == [f"mailto:{OWNER}", "mailto:chair@testshire.gov.example"]
    assert b"CCAS-2025-0001" not in data
    assert b"Riley" not in data


def test_html_minimised(full_agenda, config):
    html = render_html(full_agenda, config)

    assert "Riley M." in html
    assert "Marsh-Okafor" not in html
    assert html.index("Welcomes and introductions") < html.index("Review new referrals") < html.index("AOB")


def test_html_names_hidden_when_configured(store, tmp_path):
    add_case(store, "CCAS-2025-0001", first_name="Riley", last_name="Marsh")
    queue_message(store, 1, "CCAS-2025-0001", "new_referrals")
    config = make_config(tmp_path, agenda_child_names="none")

    html = render_html(PanelStore(store, config).list_agenda(MEETING), config)

    assert "CCAS-2025-0001" in html
    assert "Riley" not in html


def test_html_escapes_aob_title(store, panel, config):
    panel.add_aob_item(MEETING, "<script>alert(1)</script>")

    html = render_html(panel.list_agenda(MEETING), config)

    assert "<script>alert" not in html


# Meetings, decisions and outcome emails -------------------------------------------------


def record_meeting(panel: PanelStore, kind: str = "provision_arranged", summary: str = "") -> int:
    meeting_id = panel.create_meeting(MEETING, TODAY)
    panel.record_attendance(meeting_id, [Attendee("A Chair", "chair@testshire.gov.example"),
                                         Attendee("B Member", OWNER, attended=False)])
    panel.record_decision(meeting_id, "CCAS-2025-0001", kind, summary)
    return meeting_id


def test_decision_sets_review_dates(store, panel):
    add_case(store, "CCAS-2025-0001")

    record_meeting(panel)
    case = store.get_case("CCAS-2025-0001")

    assert case.last_reviewed == MEETING
    assert case.next_review == date(2025, 4, 2)


def test_close_decision_closes_case(store, panel):
    add_case(store, "CCAS-2025-0001")

    record_meeting(panel, "close")
    case = store.get_case("CCAS-2025-0001")

    assert case.status == "closed"
    assert case.closed_on == MEETING


def test_advice_needs_summary(store, panel):
    add_case(store, "CCAS-2025-0001")

    with pytest.raises(ValueError, match="needs a summary"):
        record_meeting(panel, "advice_and_guidance")


def test_attendance_recorded(store, panel):
    add_case(store, "CCAS-2025-0001")

    record_meeting(panel)
    meeting = panel.get_meeting(MEETING)

    assert [(person.name, person.attended) for person in meeting.attendance] == [("A Chair", True),
                                                                                 ("B Member", False)]


def test_outcome_drafted_not_sent(store, panel, config):
    add_case(store, "CCAS-2025-0001")
    meeting_id = record_meeting(panel)

    summary = draft_outcomes(store, config, meeting_id)
    draft = panel.get_draft(summary.drafted[0])
    message = email.message_from_bytes(draft.raw, policy=email.policy.default)

    assert len(summary.drafted) == 1
    assert draft.status == "draft"
    assert message["To"] == LEAD
    assert "[CCAS-2025-0001]" in message["Subject"]
    assert "Taylor" not in draft.raw.decode()
    assert "Sam" not in draft.raw.decode()
    assert store.pending_outbox() == []


def test_approved_draft_becomes_pending(store, panel, config):
    add_case(store, "CCAS-2025-0001")
    draft_id = draft_outcomes(store, config, record_meeting(panel)).drafted[0]

    panel.approve_draft(draft_id, "coordinator@testshire.gov.example")

    assert [item.id for item in store.pending_outbox()] == [draft_id]
    with pytest.raises(ValueError, match="not a draft"):
        panel.reject_draft(draft_id, "coordinator@testshire.gov.example")


def test_rejected_draft_never_pending(store, panel, config):
    add_case(store, "CCAS-2025-0001")
    meeting_id = record_meeting(panel)
    draft_id = draft_outcomes(store, config, meeting_id).drafted[0]

    panel.reject_draft(draft_id, "coordinator@testshire.gov.example", "wrong decision")
    again = draft_outcomes(store, config, meeting_id)

    assert store.pending_outbox() == []
    assert len(again.drafted) == 1
    assert again.drafted[0] != draft_id


def test_changed_decision_supersedes_draft(store, panel, config):
    add_case(store, "CCAS-2025-0001")
    meeting_id = record_meeting(panel)
    first = draft_outcomes(store, config, meeting_id).drafted[0]

    panel.record_decision(meeting_id, "CCAS-2025-0001", "school_to_school_support")
    second = draft_outcomes(store, config, meeting_id)

    assert second.superseded == 1
    assert panel.get_draft(first).status == "superseded"
    assert [draft.purpose for draft in panel.list_drafts()] == ["professional_outcome_school_to_school_support"]


def test_drafting_twice_adds_nothing(store, panel, config):
    add_case(store, "CCAS-2025-0001")
    meeting_id = record_meeting(panel)
    draft_outcomes(store, config, meeting_id)

    again = draft_outcomes(store, config, meeting_id)

    assert again.drafted == []
    assert again.skipped == {"CCAS-2025-0001": "already_drafted"}


def test_no_draft_without_lead_email(store, panel, config):
    add_case(store, "CCAS-2025-0001", lead_email="")

    summary = draft_outcomes(store, config, record_meeting(panel))

    assert summary.drafted == []
    assert summary.skipped == {"CCAS-2025-0001": "no_lead_email"}


def test_outcome_masks_name_and_nhs_number(store, panel, config):
    add_case(store, "CCAS-2025-0001")
    meeting_id = record_meeting(panel, "more_information",
                                "Please send Sam Taylor's attendance record; NHS number 943 476 5919.")

    draft = panel.get_draft(draft_outcomes(store, config, meeting_id).drafted[0])
    body = email.message_from_bytes(draft.raw, policy=email.policy.default).get_content()

    assert "the child the child's attendance record" in body
    assert "943 476 5919" not in body
    assert "[identifier removed]" in body


def test_outcome_lists_case_actions(store, panel, config):
    add_case(store, "CCAS-2025-0001")
    meeting_id = record_meeting(panel)
    action_id = panel.add_action(meeting_id, OWNER, "Arrange a tutor", case_id="CCAS-2025-0001",
                                 due_on=date(2025, 1, 22))

    draft = panel.get_draft(draft_outcomes(store, config, meeting_id).drafted[0])
    body = email.message_from_bytes(draft.raw, policy=email.policy.default).get_content()

    assert f"Action {action_id}: Arrange a tutor (due Wednesday 22 January 2025)" in body


@pytest.mark.parametrize("kind", sorted(DECISION_KINDS))
def test_outcome_renders_per_decision(store, panel, config, kind):
    add_case(store, "CCAS-2025-0001")
    meeting_id = record_meeting(panel, kind, "Details for the lead professional.")

    draft = panel.get_draft(draft_outcomes(store, config, meeting_id).drafted[0])
    message = email.message_from_bytes(draft.raw, policy=email.policy.default)

    assert draft.purpose == OUTCOME_TEMPLATES[kind]
    assert message["Subject"].endswith("[CCAS-2025-0001]")
    assert DECISION_KINDS[kind] in message.get_content()


def test_every_decision_has_template():
    names = set(Renderer().template_names())

    assert set(OUTCOME_TEMPLATES) == set(DECISION_KINDS)
    assert all(template in names for template in OUTCOME_TEMPLATES.values())
    assert {name for name in names if name.startswith("professional_outcome_")} == set(OUTCOME_TEMPLATES.values())


# Reminders and replies about actions ---------------------------------------------------


def test_reminder_queued_once(store, panel, config):
    add_case(store, "CCAS-2025-0001")
    meeting_id = record_meeting(panel)
    soon = panel.add_action(meeting_id, OWNER, "Arrange a tutor", case_id="CCAS-2025-0001", due_on=date(2025, 1, 10))
    panel.add_action(meeting_id, OWNER, "Later task", due_on=date(2025, 1, 30))
    done = panel.add_action(meeting_id, OWNER, "Done task", due_on=date(2025, 1, 9))
    panel.update_action(done, status="done", today=TODAY)

    first = send_action_reminders(store, config, date(2025, 1, 8))
    second = send_action_reminders(store, config, date(2025, 1, 9))

    pending = store.pending_outbox()
    assert len(first) == 1
    assert second == []
    assert [item.recipient for item in pending] == [OWNER]
    message = email.message_from_bytes(pending[0].raw, policy=email.policy.default)
    assert message["Subject"] == f"CCAS panel action {soon} is due Friday 10 January 2025 [CCAS-2025-0001]"


def test_reminder_for_overdue_action(store, panel, config):
    panel_meeting = panel.create_meeting(MEETING, TODAY)
    action_id = panel.add_action(panel_meeting, OWNER, "Send the report", due_on=date(2025, 1, 3))

    queued = send_action_reminders(store, config, MEETING)

    message = email.message_from_bytes(store.pending_outbox()[0].raw, policy=email.policy.default)
    assert len(queued) == 1
    assert f"action {action_id} was due" in message["Subject"]


def test_reply_marks_numbered_action_done(store, panel, config):
    add_case(store, "CCAS-2025-0001")
    action_id = panel.add_action(record_meeting(panel), OWNER, "Arrange a tutor", case_id="CCAS-2025-0001")
    pk = queue_message(store, 9, "CCAS-2025-0001", "actions_review", category="action_update")

    result = record_action_reply(store, config, None, pk, f"Action {action_id} is now complete.",
                                 sender_email=OWNER, today=TODAY)

    action = panel.get_action(action_id)
    assert result.outcome == "marked_done"
    assert action.status == "done"
    assert action.done_on == TODAY


def test_reply_not_done_keeps_action_open(store, panel, config):
    add_case(store, "CCAS-2025-0001")
    action_id = panel.add_action(record_meeting(panel), OWNER, "Arrange a tutor", case_id="CCAS-2025-0001")

    result = record_action_reply(store, config, "CCAS-2025-0001", None,
                                 "The tutor search is not yet complete, we have two interviews next week.")

    assert result == type(result)((action_id,), "updated")
    assert panel.get_action(action_id).status == "open"


def test_reply_by_case_ambiguous(store, panel, config):
    add_case(store, "CCAS-2025-0001")
    meeting_id = record_meeting(panel)
    panel.add_action(meeting_id, "one@school.example", "First", case_id="CCAS-2025-0001")
    panel.add_action(meeting_id, "two@school.example", "Second", case_id="CCAS-2025-0001")

    ambiguous = record_action_reply(store, config, "CCAS-2025-0001", None, "Done.", sender_email=OWNER)
    owned = record_action_reply(store, config, "CCAS-2025-0001", None, "Done.", sender_email="two@school.example")

    assert ambiguous.outcome == "ambiguous"
    assert owned.outcome == "marked_done"


# Command line ------------------------------------------------------------------


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "store.sqlite3"}"\n'
                    f'[council]\nccas_inbox = "ccas@testshire.gov.example"\npanel_members = ["{OWNER}"]\n',
                    encoding="utf-8")
    return path


def test_cli_agenda_csv(store, tmp_path, capsys):
    add_case(store, "CCAS-2025-0001")
    queue_message(store, 1, "CCAS-2025-0001", "new_referrals")
    config_path = write_config(tmp_path)
    output = tmp_path / "agenda.csv"

    status = main(["--config", str(config_path), "agenda", "--meeting", "2025-01-08", "--format", "csv",
                   "--output", str(output)])

    assert status == 0
    assert "CCAS-2025-0001" in output.read_text(encoding="utf-8")


def test_cli_agenda_rejects_bank_holiday(tmp_path, capsys):
    status = main(["--config", str(write_config(tmp_path)), "agenda", "--meeting", "2024-12-25"])

    assert status == 2
    assert "the next one is 2025-01-08" in capsys.readouterr().err


def test_cli_meeting_record_and_approve(store, tmp_path, capsys):
    add_case(store, "CCAS-2025-0001")
    record = {"attendance": [{"name": "A Chair", "email": "chair@testshire.gov.example"}],
              "decisions": [{"case": "CCAS-2025-0001", "decision": "signposting",
                             "summary": "Contact the young carers service."}],
              "actions": [{"case": "CCAS-2025-0001", "owner": OWNER, "description": "Share the leaflet",
                           "due": "2025-01-15"}]}
    record_path = tmp_path / "meeting.json"
    record_path.write_text(json.dumps(record), encoding="utf-8")
    config_path = write_config(tmp_path)

    recorded = main(["--config", str(config_path), "meeting", "record", "--date", "2024-12-18",
                     "--decisions", str(record_path)])
    draft_id = PanelStore(store, make_config(tmp_path)).list_drafts()[0].id
    approved = main(["--config", str(config_path), "meeting", "approve", str(draft_id),
                     "--coordinator", "coordinator@testshire.gov.example"])

    assert recorded == 0
    assert "1 outcome emails drafted" in capsys.readouterr().out
    assert approved == 0
    assert [item.id for item in store.pending_outbox()] == [draft_id]


def test_cli_meeting_record_rejects_unknown_decision(store, tmp_path, capsys):
    record_path = tmp_path / "meeting.json"
    record_path.write_text(json.dumps({"decisions": [{"case": "CCAS-2025-0001", "decision": "maybe"}]}),
                           encoding="utf-8")

    status = main(["--config", str(write_config(tmp_path)), "meeting", "record", "--date", "2024-12-18",
                   "--decisions", str(record_path)])

    assert status == 2
    assert "'maybe' is not one of" in capsys.readouterr().err
