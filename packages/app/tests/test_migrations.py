"""The migrations: they build the schema the models expect, from any working directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import flask_migrate
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from psycopg2 import sql
from sqlalchemy.engine import Connection

from application.extensions import MIGRATIONS_DIRECTORY, db
from devtools.testing.databases import drop_database


def head_revision() -> str:
    """The newest revision id among the committed migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIRECTORY))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def test_users_table_has_the_expected_columns(db_connection: Connection) -> None:
    inspector = sa.inspect(db_connection)

    columns = {column["name"]: column for column in inspector.get_columns("users")}

    assert set(columns) == {"id", "email", "created_at"}
    assert isinstance(columns["id"]["type"], sa.Integer)
    assert isinstance(columns["email"]["type"], sa.String)
    assert columns["email"]["type"].length == 320
    assert isinstance(columns["created_at"]["type"], sa.DateTime)
    assert columns["created_at"]["type"].timezone is True
    assert "now()" in str(columns["created_at"]["default"])
    assert not any(column["nullable"] for column in columns.values())
    assert inspector.get_pk_constraint("users")["constrained_columns"] == ["id"]
    unique = inspector.get_unique_constraints("users")
    assert [(u["name"], u["column_names"]) for u in unique] == [("uq_users_email", ["email"])]


def test_database_is_at_the_head_revision(db_connection: Connection) -> None:
    version = db_connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()

    assert version == head_revision()


def test_models_match_the_migrations(db_connection: Connection) -> None:
    context = MigrationContext.configure(db_connection)

    assert compare_metadata(context, db.metadata) == []


def test_there_is_one_initial_revision() -> None:
    revisions = sorted(p.name for p in (MIGRATIONS_DIRECTORY / "versions").glob("*.py"))

    assert len(revisions) == 1
    assert (MIGRATIONS_DIRECTORY / "alembic.ini").is_file()
    assert (MIGRATIONS_DIRECTORY / "script.py.mako").is_file()


def test_downgrade_and_upgrade_from_any_directory(
    scratch_app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    with scratch_app.app_context():
        flask_migrate.downgrade(revision="base")
        assert not sa.inspect(db.engine).has_table("users")
        flask_migrate.upgrade()
        assert sa.inspect(db.engine).has_table("users")


def test_flask_db_cli_finds_the_in_package_migrations(
    scratch_app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    result = scratch_app.test_cli_runner().invoke(args=["db", "current"])

    assert result.exit_code == 0, result.output
    assert not (tmp_path / "migrations").exists()
    with scratch_app.app_context():
        current = db.session.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    assert current == head_revision()


def test_autogenerate_finds_nothing_to_migrate(scratch_app: Flask, tmp_path: Path) -> None:
    # On a copy of the directory, so a failing run cannot leave a revision in the package.
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIRECTORY, directory)

    with scratch_app.app_context():
        flask_migrate.migrate(directory=str(directory), message="should be empty")

    assert sorted(p.name for p in (directory / "versions").glob("*.py")) == sorted(
        p.name for p in (MIGRATIONS_DIRECTORY / "versions").glob("*.py")
    )


def test_offline_sql_creates_the_users_table(
    scratch_app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    with scratch_app.app_context():
        flask_migrate.upgrade(sql=True)

    assert "CREATE TABLE users" in capsys.readouterr().out


def test_concurrent_upgrades_apply_each_migration_once(postgres_server: Any) -> None:
    """Replicas starting together each run ``flask db upgrade``: the advisory lock serialises."""
    name = f"concurrent_{uuid.uuid4().hex[:8]}"
    create = postgres_server.connect()
    with create.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    create.close()
    env = {
        **os.environ,
        "FLASK_CONFIG": "testing",
        "POSTGRES_USER": postgres_server.user,
        "POSTGRES_PASSWORD": postgres_server.password,
        "POSTGRES_HOSTNAME": postgres_server.host,
        "POSTGRES_PORT": str(postgres_server.port),
        "APPLICATION_DB": name,
    }
    argv = [sys.executable, "-m", "flask", "--app", "application:create_app", "db", "upgrade"]
    try:
        runs = [
            subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for _ in range(3)
        ]
        outputs = [run.communicate(timeout=120)[0].decode() for run in runs]
        assert [run.returncode for run in runs] == [0, 0, 0], outputs
        conn = postgres_server.connect(name)
        with conn.cursor() as cursor:
            cursor.execute("SELECT version_num FROM alembic_version")
            assert cursor.fetchall() == [(head_revision(),)]
        conn.close()
    finally:
        drop_database(postgres_server, name)
