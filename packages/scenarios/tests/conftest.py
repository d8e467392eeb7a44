"""Fixtures: a migrated template built once per run, a fresh clone of it for every test.

``postgres_server`` and the database helpers come from the devtools pytest plugin. A clone
costs about 10 ms, and every test gets its own, so tests may commit (the CLI does), run DDL
(bulk does) and still run in any order and under ``pytest -n``.
"""

from __future__ import annotations

import hashlib
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flask_migrate
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import scenarios
from application import create_app
from application.extensions import MIGRATIONS_DIRECTORY, db
from devtools.testing.databases import clone_database, drop_database, ensure_template

Query = Callable[..., list[tuple[Any, ...]]]


def _migrations_digest() -> str:
    # A server that outlives the run (DEVTOOLS_TEST_DATABASE_URL) must not serve a template
    # built from older migrations: the name changes with them.
    digest = hashlib.sha256()
    for path in sorted(MIGRATIONS_DIRECTORY.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


TEMPLATE_DATABASE = f"scenarios_template_{_migrations_digest()}"


def migrate_database(dsn: str) -> None:
    """Apply every migration to the database at ``dsn`` and close the connections it used."""
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": dsn})
    with app.app_context():
        try:
            flask_migrate.upgrade()
        finally:
            # A template with open connections cannot be cloned.
            db.engine.dispose()


@dataclass(frozen=True)
class ScratchDatabase:
    """One test's private database."""

    name: str
    url: str
    query: Query


@pytest.fixture(scope="session")
def template_database(postgres_server: Any) -> str:
    """The name of the migrated template, built once per server."""
    ensure_template(postgres_server, TEMPLATE_DATABASE, prepare=migrate_database)
    return TEMPLATE_DATABASE


@pytest.fixture
def database(postgres_server: Any, template_database: str) -> Iterator[ScratchDatabase]:
    """A fresh migrated database for this test, dropped afterwards."""
    name = f"scenarios_{uuid.uuid4().hex[:12]}"
    clone_database(postgres_server, template_database, name)
    conn = postgres_server.connect(name)

    def query(statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        with conn.cursor() as cursor:
            cursor.execute(statement, params)
            return list(cursor.fetchall())

    try:
        yield ScratchDatabase(name, str(postgres_server.dsn(name)), query)
    finally:
        conn.close()
        drop_database(postgres_server, name)


@pytest.fixture
def engine(database: ScratchDatabase) -> Iterator[Engine]:
    """An engine on this test's database."""
    engine = create_engine(database.url.replace("postgresql://", "postgresql+psycopg2://", 1))
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on this test's database; whatever it did not commit is rolled back."""
    with Session(engine) as session:
        yield session


@pytest.fixture
def extra_scenarios(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder whose modules count as scenarios for this test (in-process)."""
    folder = tmp_path / "extra_scenarios"
    folder.mkdir()
    monkeypatch.setattr(scenarios, "__path__", [*scenarios.__path__, str(folder)])
    yield folder
    # Forget only the modules imported from the folder: the package's own must stay the same
    # objects (the factories' session binding lives in one of them).
    for name, module in list(sys.modules.items()):
        if Path(getattr(module, "__file__", None) or "/").is_relative_to(folder):
            del sys.modules[name]
