"""Importing the schools and case registers, the import command and migration 0002."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, select, text

from bot.matching import MatchInput, match_case
from bot.registers import import_cases, import_schools
from store.db import MIGRATIONS, create_store_engine, upgrade_schema
from store.models import School, SchoolLink
from store.records import Store

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REPOSITORY = Path(__file__).resolve().parents[1]
CASE_HEADER = "case_id,first_name,last_name,dob,upn,nhs_number,school_urn,status,ehcp,opened,last_reviewed,lead_email"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(create_store_engine(f"sqlite:///{tmp_path / 'registers.sqlite3'}"))
    upgrade_schema(store.engine)
    return store


def schools_by_urn(store: Store) -> dict[str, School]:
    return {school.urn: school for school in store.list_schools()}


def test_gias_extract_imports_schools(store):
    summary = import_schools(store, FIXTURES / "edubasealldata20260901.csv")

    schools = schools_by_urn(store)
    assert summary.added == 4
    assert summary.rejected == [(6, "URN '' is missing or not a number")]
    assert schools["990101"].laestab == "8892001"
    assert schools["990101"].domain == "brambleway.sch.example"
    assert schools["990101"].establishment_type == "Community school"
    assert schools["990104"].name == "Ste Thérèse Catholic Primary School"


def test_gias_closed_school_marked(store):
    import_schools(store, FIXTURES / "edubasealldata20260901.csv")

    schools = schools_by_urn(store)
    assert schools["990102"].status == "closed"
    assert schools["990102"].closed_on == date(2025, 8, 31)
    assert schools["990103"].status == "open"


def test_gias_links_import_successor(store):
    import_schools(store, FIXTURES / "edubasealldata20260901.csv")
    summary = import_schools(store, FIXTURES / "links_edubasealldata20260901.csv")

    with store.engine.connect() as connection:
        links = {(row.urn, row.linked_urn, row.link_type) for row in connection.execute(select(SchoolLink))}
    assert summary.links == 2
    assert summary.rejected == []
    assert ("990102", "990103", "Successor") in links


def test_gias_links_columns_in_extract(store, tmp_path):
    extract = tmp_path / "schools.csv"
    extract.write_text("URN,EstablishmentName,EstablishmentStatus (name),Successor URN\n"
                       "990201,Old Lane School,Closed,990202\n990202,New Lane Academy,Open,\n", encoding="utf-8")

    summary = import_schools(store, extract)

    with store.engine.connect() as connection:
        links = connection.execute(select(SchoolLink.urn, SchoolLink.linked_urn, SchoolLink.link_type)).all()
    assert summary.added == 2
    assert [tuple(link) for link in links] == [("990201", "990202", "Successor")]


def test_plain_school_register_imports(store, tmp_path):
    register = tmp_path / "schools.csv"
    register.write_text("URN,LAESTAB,EstablishmentName,TypeOfEstablishment,Postcode,Domain\n"
                        "990301,8893001,Hazel Primary School,Community school,TS9 9ZZ,hazel.sch.example\n",
                        encoding="utf-8")

    first = import_schools(store, register)
    second = import_schools(store, register)

    assert (first.added, first.updated) == (1, 0)
    assert (second.added, second.updated) == (0, 1)
    assert schools_by_urn(store)["990301"].domain == "hazel.sch.example"


def test_case_import_rejects_with_reasons(store, tmp_path):
    register = tmp_path / "cases.csv"
    register.write_text("\n".join([
        CASE_HEADER,
        "CCAS-2026-0001,Poppy,Larkspur,2013-02-14,,,990101,open,none,,,lead@testshire.gov.example",
        "CCAS-2026-0002,Rowan,Ashby,2013-02-30,,,990101,open,none,,,",
        ",Nobody,Here,2013-01-01,,,,open,none,,,",
        "CCAS-2026-0004,Ivy,Thorne,2012-05-05,B123456789012,,,open,none,,,",
        "CCAS-2026-0005,Ezra,Moss,2012-05-05,,1234567890,,open,none,,,",
        "CCAS-2026-0006,Ada,Finch,14/03/2011,,,,with SEND,has_ehcp,,,",
        "CCAS-2026-0007,Leo,Marsh,2012-05-05,,,,paused,none,,,",
    ]) + "\n", encoding="utf-8")

    summary = import_cases(store, register)

    reasons = dict(summary.rejected)
    assert summary.added == 2
    assert set(reasons) == {3, 4, 5, 6, 8}
    assert "dob" in reasons[3]
    assert "case_id is missing" in reasons[4]
    assert "upn fails its check letter" in reasons[5]
    assert "nhs_number fails its check digit" in reasons[6]
    assert "status" in reasons[8]
    assert store.get_case("CCAS-2026-0006").status == "send"
    assert store.get_case("CCAS-2026-0006").dob == date(2011, 3, 14)


def test_case_import_updates_and_keeps_history(store, tmp_path):
    register = tmp_path / "cases.csv"
    register.write_text(CASE_HEADER + ",former_school_urns,known_as\n"
                        "CCAS-2026-0001,Poppy,Larkspur,2013-02-14,,,990101,open,none,,,,990104,Pops\n",
                        encoding="utf-8")
    import_cases(store, register)
    register.write_text(CASE_HEADER + "\nCCAS-2026-0001,Poppy,Larkspur-Hale,2013-02-14,,,990103,open,none,,,\n",
                        encoding="utf-8")

    summary = import_cases(store, register)

    view = store.case_views(["CCAS-2026-0001"])["CCAS-2026-0001"]
    assert (summary.added, summary.updated) == (0, 1)
    assert view.last_names == ("Larkspur-Hale",)
    assert view.school_urns[0] == "990103"
    assert set(view.school_urns) == {"990101", "990103", "990104"}


def test_import_command_prints_summary(tmp_path):
    config_file = tmp_path / "config.toml"
    config_file.write_text('[store]\nurl = "sqlite:///bot.sqlite3"\n', encoding="utf-8")

    result = subprocess.run([sys.executable, "-m", "bot.cli", "--config", str(config_file), "import", "schools",
                             str(FIXTURES / "edubasealldata20260901.csv")],
                            capture_output=True, text=True, timeout=120, cwd=REPOSITORY)

    assert result.returncode == 0, result.stderr
    assert "added 4, updated 0, rejected 1" in result.stdout.splitlines()[0]
    assert "line 6: URN '' is missing or not a number" in result.stdout
    assert "import schools" in result.stderr


@pytest.mark.sqlite_only("builds an old schema in a SQLite file with a plain engine")
def test_migration_indexes_existing_cases(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    alembic_config = AlembicConfig()
    alembic_config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        alembic_config.attributes["connection"] = connection
        command.upgrade(alembic_config, "0001")
        connection.execute(text(
            "INSERT INTO case_record (id, first_name, last_name, known_as, dob, upn, nhs_number, school_urn, "
            "status, ehcp, lead_email) VALUES ('CCAS-2025-0001', 'Alfred', 'Simmons', '', '2013-11-19', '', '', "
            "'990101', 'open', 'none', 'lead@testshire.gov.example')"))
    engine.dispose()

    store = Store(create_store_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}"))
    upgrade_schema(store.engine)
    result = match_case(MatchInput(thread_ids=[], text="", sender_email="lead@testshire.gov.example",
                                   sender_trusted=True, first_name="Alfie", last_name="Simmons", last_initial=None,
                                   dob=date(2013, 11, 19), upn=None, upn_valid=False, nhs_number=None,
                                   school_urn=None), store)

    assert result.case_id == "CCAS-2025-0001"
    assert "sender:party" in result.scored[0].reasons


def test_migration_downgrades_and_upgrades(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'round.sqlite3'}")
    alembic_config = AlembicConfig()
    alembic_config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        alembic_config.attributes["connection"] = connection
        command.upgrade(alembic_config, "head")
        command.downgrade(alembic_config, "0001")
        tables = {row[0] for row in connection.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "case_key" not in tables
        command.upgrade(alembic_config, "head")
        tables = {row[0] for row in connection.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"case_key", "case_party", "case_school", "school_link"} <= tables
