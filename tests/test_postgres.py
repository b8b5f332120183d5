"""The throw-away PostgreSQL server, the suite's PostgreSQL pass, and store code that several workers run at once."""

from __future__ import annotations

import threading

from sqlalchemy import text

from servers import TEMPLATE_DATABASE, StoreRouter
from store.db import create_store_engine
from store.records import Store


def test_server_listens_on_loopback_only_and_runs_unprivileged(postgres_server):
    engine = create_store_engine(postgres_server.url())
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SHOW listen_addresses")).scalar() == "127.0.0.1"
            assert connection.execute(text("SHOW fsync")).scalar() == "off"
            data_dir = connection.execute(text("SHOW data_directory")).scalar()
    finally:
        engine.dispose()
    # PostgreSQL refuses to run as root; as root the cluster belongs to the postgres user.
    owner = (postgres_server.directory / "data").stat().st_uid
    import os
    import pwd
    assert data_dir.startswith(str(postgres_server.directory))
    assert owner != 0 or os.geteuid() != 0
    if os.geteuid() == 0:
        assert pwd.getpwuid(owner).pw_name == "postgres"


def test_router_fresh_database_per_file(postgres_server):
    router = StoreRouter(postgres_server)
    assert router.route("sqlite:///a.sqlite3") == "sqlite:///a.sqlite3"  # outside a test: unchanged

    router.begin_test()
    first = router.route("sqlite:////tmp/one/store.sqlite3")
    assert first.startswith("postgresql+psycopg://")
    assert router.route("sqlite:////tmp/one/store.sqlite3") == first
    assert router.route("sqlite:////tmp/two/store.sqlite3") != first
    assert router.route("sqlite:///:memory:") != router.route("sqlite:///:memory:")
    assert router.route(postgres_server.url("postgres")) == postgres_server.url("postgres")

    store = Store(create_store_engine(first))
    # A copy of the migrated template: the schema is there and every table is empty.
    assert store.case_counts() == {"case_record": 0, "case_school": 0, "case_party": 0, "case_key": 0}
    store.engine.dispose()
    router.end_test()

    admin = create_store_engine(postgres_server.url())
    try:
        with admin.connect() as connection:
            names = connection.execute(text("SELECT datname FROM pg_database")).scalars().all()
    finally:
        admin.dispose()
    assert TEMPLATE_DATABASE in names
    assert not [name for name in names if name.startswith(f"test_{__import__('os').getpid()}_")
                and first.endswith("/" + name)]


def test_case_ids_unique_across_workers(postgres_server):
    url = postgres_server.create_database("case_ids_at_once", template=TEMPLATE_DATABASE)
    stores = [Store(create_store_engine(url)) for _ in range(4)]
    reserved: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(stores), timeout=30)

    def reserve(store: Store) -> None:
        try:
            start.wait()
            for _ in range(25):
                reserved.append(store.reserve_case_id(2026))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=reserve, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for store in stores:
        store.engine.dispose()
    postgres_server.drop_database("case_ids_at_once")

    assert errors == []
    assert sorted(reserved) == [f"CCAS-2026-{number:04d}" for number in range(1, 101)]


def test_overlong_identifiers_stored_on_postgresql(postgres_server):
    from store.records import PlannedMail, TriageRecord

    url = postgres_server.create_database("overlong_identifiers", template=TEMPLATE_DATABASE)
    store = Store(create_store_engine(url))
    message_id = "x" * 1200 + "@fuzz.example"
    record = TriageRecord(
        message_id=message_id, message_id_synthesised=False, sha256="a" * 64, raw=b"raw", source="imap",
        folder="INBOX", uidvalidity=1, uid="1", outcome="handled", reasons=[],
        sender_email="s" * 400 + "@fuzz.example",
        mail=[PlannedMail(purpose="professional_acknowledgement", recipient="r" * 400 + "@fuzz.example",
                          out_message_id="out-1@ccas.example", raw=b"reply")])
    try:
        stored = store.record_triage(record)
        found = store.find_message(message_id, "a" * 64)
        outbox = store.outbox_for_message(stored.pk)
    finally:
        store.engine.dispose()
        postgres_server.drop_database("overlong_identifiers")

    # The same long Message-ID finds the stored row again, so the message is not triaged twice.
    assert found is not None
    assert found.pk == stored.pk
    # A reply to an address no mail server takes is kept for a person, not sent.
    assert [item.status for item in outbox] == ["failed"]
    assert outbox[0].last_error == "recipient address too long"
