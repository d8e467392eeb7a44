"""Fixtures: a migrated database per xdist worker, the app on it, a transaction per test.

``postgres_server`` and the database helpers come from the devtools pytest plugin. The migrations
build a template database once per server (named after a hash of the migrations); each xdist
worker clones it (about 10 ms), and each test runs inside an outer transaction that is rolled
back afterwards, so tests see an empty ``users`` table in any order and under ``pytest -n``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any, cast

import flask_migrate
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import Connection

from application import create_app
from application.extensions import MIGRATIONS_DIRECTORY, db
from application.models import User
from devtools.testing.databases import clone_database, drop_database, ensure_template

# Every variable the app reads.
APP_ENVIRONMENT = (
    "FLASK_CONFIG",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_PASSWORD_FILE",
    "POSTGRES_HOSTNAME",
    "POSTGRES_PORT",
    "APPLICATION_DB",
    "SECRET_KEY",
    "SECRET_KEY_FILE",
    "APPLICATION_REPLICA",
    "TRUST_PROXY_HEADERS",
)


def template_name() -> str:
    """``app_template_<hash of the migrations>``.

    ensure_template builds a template once per server: with a long-lived server (for example
    ``--postgres-url``) a changed migration must get a new template, not reuse a stale one.
    """
    digest = hashlib.sha256()
    for path in sorted(MIGRATIONS_DIRECTORY.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(MIGRATIONS_DIRECTORY).as_posix().encode())
            digest.update(path.read_bytes())
    return f"app_template_{digest.hexdigest()[:12]}"


def migrate_database(dsn: str) -> None:
    """Apply every migration to the database at ``dsn`` and close the connections it used."""
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": dsn})
    with app.app_context():
        try:
            flask_migrate.upgrade()
        finally:
            # A template with open connections cannot be cloned, and a database cannot be dropped.
            db.engine.dispose()


@pytest.fixture(scope="session")
def template_database(postgres_server: Any) -> str:
    """The name of the migrated template database, built once for all workers."""
    name = template_name()
    ensure_template(postgres_server, name, prepare=migrate_database)
    return name


@pytest.fixture(scope="session")
def database_name(postgres_server: Any, template_database: str, worker_id: str) -> Iterator[str]:
    """The name of this worker's migrated database, cloned from the template."""
    name = f"app_{worker_id}"
    clone_database(postgres_server, template_database, name)
    yield name
    drop_database(postgres_server, name)


@pytest.fixture(scope="session")
def database_uri(postgres_server: Any, database_name: str) -> str:
    """The SQLAlchemy URL of this worker's database."""
    return str(postgres_server.dsn(database_name))


@pytest.fixture(scope="session")
def app(database_uri: str) -> Iterator[Flask]:
    """The testing app bound to this worker's database, shared by the whole session."""
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": database_uri})
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def db_connection(app: Flask) -> Iterator[Connection]:
    """The connection of this test's outer transaction, which is rolled back afterwards."""
    with app.app_context():
        # Flask-SQLAlchemy's Session.get_bind picks its bind from this live mapping.
        engines = cast(dict[str | None, Any], db.engines)
        engine = engines[None]
    connection = engine.connect()
    transaction = connection.begin()
    saved_engines = dict(engines)
    saved_options = dict(db.session.session_factory.kw)
    engines[None] = connection
    # Each session opens a SAVEPOINT on the outer transaction: the app's commit releases it and
    # its rollback after an IntegrityError returns to it, while the outer transaction survives.
    db.session.session_factory.configure(join_transaction_mode="create_savepoint")
    yield connection
    with app.app_context():
        db.session.remove()
    db.session.session_factory.kw.clear()
    db.session.session_factory.kw.update(saved_options)
    engines.clear()
    engines.update(saved_engines)
    transaction.rollback()
    connection.close()


@pytest.fixture
def client(app: Flask, db_connection: Connection) -> FlaskClient:
    """A test client whose requests all run inside this test's rolled-back transaction."""
    return app.test_client()


@pytest.fixture
def make_users(app: Flask, db_connection: Connection) -> Callable[..., list[int]]:
    """A function that inserts users straight into the database and returns their ids."""

    def make(*emails: str) -> list[int]:
        with app.app_context():
            users = [User(email=email) for email in emails]
            db.session.add_all(users)
            db.session.commit()
            return [user.id for user in users]

    return make


@pytest.fixture
def scratch_app(
    postgres_server: Any, template_database: str, database_name: str
) -> Iterator[Flask]:
    """A testing app on a private copy of the migrated template, for tests that run DDL."""
    name = f"{database_name}_scratch"
    clone_database(postgres_server, template_database, name)
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": postgres_server.dsn(name)})
    yield app
    with app.app_context():
        db.engine.dispose()
    drop_database(postgres_server, name)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every variable the app reads, so a test sets exactly the ones it needs."""
    for name in APP_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
