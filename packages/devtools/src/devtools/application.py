"""How devtools talks to the application: its environment variables, database and migrations.

devtools never imports the app; it runs it (flask, gunicorn) as processes in this venv.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

import psycopg2
from psycopg2 import errors as pg_errors
from psycopg2 import sql

from devtools import commands
from devtools.config import Settings
from devtools.postgres import ClusterInfo

FLASK_APP = "application:create_app"
# Variables passed through from the caller's environment to app processes.
PASSTHROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "VIRTUAL_ENV", "PYTHONPATH", "TMPDIR")


def app_environment(
    settings: Settings, database: ClusterInfo, base: Mapping[str, str], **extra: str
) -> dict[str, str]:
    """The complete environment of an app process for ``settings`` on ``database``."""
    env = {key: base[key] for key in PASSTHROUGH if key in base}
    env.update(
        {
            "FLASK_APP": FLASK_APP,
            "FLASK_CONFIG": settings.require("FLASK_CONFIG"),
            "POSTGRES_USER": database.user,
            "POSTGRES_PASSWORD": database.password,
            "POSTGRES_HOSTNAME": database.host,
            "POSTGRES_PORT": str(database.port),
            "APPLICATION_DB": settings.require("APPLICATION_DB"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    secret = settings.get("SECRET_KEY")
    if secret:
        env["SECRET_KEY"] = secret
    env.update(extra)
    return env


def create_database(database: ClusterInfo, name: str) -> bool:
    """Create database ``name`` unless it exists; return whether it was created."""
    return create_database_at(database.dsn("postgres"), name)


def create_database_at(url: str, name: str) -> bool:
    """Create database ``name`` on the server of superuser ``url`` unless it exists."""
    conn = psycopg2.connect(url, connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except pg_errors.DuplicateDatabase:
        return False
    finally:
        conn.close()
    return True


def migrate(env: Mapping[str, str]) -> str:
    """Apply the app's migrations (``flask db upgrade``) with ``env``; return the output."""
    return commands.run(
        [sys.executable, "-m", "flask", "--app", FLASK_APP, "db", "upgrade"], env=env
    )
