"""Shared pytest fixtures: TLS material, real Dovecot and SMTP servers, and the shared test corpus."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from servers import (DovecotServer, PostgresServer, SmtpServer, StoreRouter, TlsMaterial, generate_tls_material,
                     require_dovecot_binary, start_postgres_with_template, selected_test_database)

# CCAS_TEST_DATABASE=postgresql runs the suite with every store on PostgreSQL (`make test` runs
# both passes); tests about SQLite itself carry @pytest.mark.sqlite_only and are skipped there.
TEST_DATABASE = selected_test_database()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only(reason): the test is about SQLite itself, "
                            "so the PostgreSQL pass skips it")
    config.addinivalue_line("markers", "postgresql: the test needs a PostgreSQL server (postgres_server)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if TEST_DATABASE != "postgresql":
        return
    for item in items:
        marker = item.get_closest_marker("sqlite_only")
        if marker is not None:
            reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "about SQLite itself")
            item.add_marker(pytest.mark.skip(reason=f"SQLite only: {reason}"))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session, holding a migrated template database."""
    server = start_postgres_with_template()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def _store_router(request: pytest.FixtureRequest) -> StoreRouter | None:
    if TEST_DATABASE != "postgresql":
        return None
    router = StoreRouter(request.getfixturevalue("postgres_server"))
    router.install()
    return router


@pytest.fixture(autouse=True)
def _store_database(_store_router: StoreRouter | None) -> Iterator[None]:
    """On the PostgreSQL pass, give each test fresh databases in place of its SQLite files."""
    if _store_router is None:
        yield
        return
    _store_router.begin_test()
    try:
        yield
    finally:
        _store_router.end_test()


def shared_corpus_dir() -> Path:
    """Return the shared corpus folder, which lies beside the repository as shared/corpus."""
    return Path(__file__).resolve().parents[2] / "shared" / "corpus"


@pytest.fixture
def shared_corpus() -> Callable[[str], Path]:
    """Return a function that maps a corpus file or folder name to its path.

    The function skips the calling test when the corpus, or that name in it, is absent.
    """

    def corpus_path(name: str) -> Path:
        path = shared_corpus_dir() / name
        if not path.exists():
            pytest.skip(f"shared corpus item {name!r} not found at {path}")
        return path

    return corpus_path


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    """A self-signed test CA and a server certificate for localhost, shared by the session."""
    return generate_tls_material(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def dovecot_binary() -> str:
    """Path of the dovecot binary. The fixture fails the test when Dovecot is missing, see require_dovecot_binary()."""
    return require_dovecot_binary()


@pytest.fixture
def dovecot(tls_material: TlsMaterial, dovecot_binary: str) -> Iterator[DovecotServer]:
    """A running Dovecot server of the test's own, so every test starts with an empty mailbox.

    With Dovecot 2.3.19 on a 2-core machine, starting one took about 0.1 s and closing it
    a few milliseconds, so a server per test costs little.
    """
    server = DovecotServer(tls_material)
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def smtp_server(tls_material: TlsMaterial) -> Iterator[SmtpServer]:
    """A running SMTP server that offers STARTTLS and AUTH, with no message received yet."""
    with SmtpServer(tls_material) as server:
        yield server
