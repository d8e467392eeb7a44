"""Template databases and clones on the run's server (from the devtools pytest plugin)."""

from __future__ import annotations

import threading
import uuid

import psycopg2
import pytest

from devtools.errors import ConfigError
from devtools.testing.databases import (
    DatabaseServer,
    clone_database,
    drop_database,
    ensure_template,
)


def database_names(server: DatabaseServer) -> set[str]:
    """Every database on the server."""
    conn = server.connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT datname FROM pg_database")
            return {row[0] for row in cursor.fetchall()}
    finally:
        conn.close()


def make_table(dsn: str) -> None:
    """A ``prepare`` callback: one table with one row."""
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cursor:
            cursor.execute("CREATE TABLE marker (value text)")
            cursor.execute("INSERT INTO marker VALUES ('prepared')")
    finally:
        conn.close()


@pytest.fixture
def name() -> str:
    """A unique database name for this test."""
    return f"t_{uuid.uuid4().hex[:12]}"


def test_template_is_prepared_once_even_with_concurrent_callers(postgres_server, name):
    calls: list[str] = []
    errors: list[BaseException] = []

    def prepare(dsn: str) -> None:
        calls.append(dsn)
        make_table(dsn)

    def build() -> None:
        try:
            ensure_template(postgres_server, name, prepare)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=build) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(calls) == 1
    assert name in database_names(postgres_server)
    drop_database(postgres_server, name)


def test_failed_prepare_leaves_no_template(postgres_server, name):
    def broken(dsn: str) -> None:
        raise RuntimeError("migration failed")

    with pytest.raises(RuntimeError, match="migration failed"):
        ensure_template(postgres_server, name, broken)
    assert name not in database_names(postgres_server)
    ensure_template(postgres_server, name, make_table)
    assert name in database_names(postgres_server)
    drop_database(postgres_server, name)


def test_clone_copies_the_template_and_replaces_an_old_copy(postgres_server, name):
    ensure_template(postgres_server, name, make_table)
    clone = f"{name}_clone"
    clone_database(postgres_server, name, clone)
    conn = postgres_server.connect(clone)
    with conn.cursor() as cursor:
        cursor.execute("INSERT INTO marker VALUES ('changed')")
    conn.close()
    clone_database(postgres_server, name, clone)  # fresh again, even with a session open
    conn = postgres_server.connect(clone)
    with conn.cursor() as cursor:
        cursor.execute("SELECT value FROM marker")
        assert cursor.fetchall() == [("prepared",)]
    conn.close()
    drop_database(postgres_server, clone)
    drop_database(postgres_server, name)
    drop_database(postgres_server, name)  # dropping twice is fine
    assert not {name, clone} & database_names(postgres_server)


def test_server_from_url_round_trips():
    server = DatabaseServer.from_url("postgresql://u%40x:p%3Aw@db.local:6543/ignored")
    assert server == DatabaseServer("db.local", 6543, "u@x", "p:w")
    assert DatabaseServer.from_url(server.dsn("x")) == server
    assert DatabaseServer.from_url("postgres://h").port == 5432


@pytest.mark.parametrize("url", ["mysql://h/db", "postgresql:///nohost", "nonsense"])
def test_server_from_bad_url_is_a_config_error(url):
    with pytest.raises(ConfigError, match="not a postgresql:// URL"):
        DatabaseServer.from_url(url)
