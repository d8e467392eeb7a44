"""Persistent databases (development, production): kept in the state folder between runs."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from devtools import application, state
from devtools.config import Settings
from devtools.postgres import ClusterInfo, PostgresBinaries, PostgresCluster, stop_cluster
from devtools.secrets_store import fill_secrets, forget_secrets


def database_record_name(environment: str) -> str:
    """The state record of an environment's persistent database."""
    return f"{environment}-db"


def data_root(state_dir: Path, environment: str) -> Path:
    """Where an environment's persistent cluster lives."""
    return state_dir / environment / "postgres"


def ensure_database(
    settings: Settings,
    state_dir: Path,
    environ: Mapping[str, str],
    echo: Callable[[str], None] = print,
) -> tuple[Settings, ClusterInfo]:
    """Start the environment's persistent database unless it runs; migrate the app's database.

    Returns the settings with generated secrets filled in, and the running cluster.
    """
    settings = fill_secrets(settings, state_dir, ("POSTGRES_PASSWORD", "SECRET_KEY"))
    name = database_record_name(settings.environment)
    record = state.read_record(state_dir, name)
    if record is not None:
        info = ClusterInfo.from_json(record["database"])
        if info.process.alive():
            return settings, info
        state.delete_record(state_dir, name)
    cluster = PostgresCluster(
        binaries=PostgresBinaries.from_setting(settings.get("POSTGRES_BINARIES")),
        root=data_root(state_dir, settings.environment),
        superuser=settings.require("POSTGRES_USER"),
        password=settings.require("POSTGRES_PASSWORD"),
        port=settings.get("POSTGRES_PORT"),
        detached=True,
    )
    info = cluster.start()
    try:
        echo(
            f"started the {settings.environment} database on {info.host}:{info.port} "
            f"(data in {info.home / 'data'})"
        )
        dbname = settings.require("APPLICATION_DB")
        if application.create_database(info, dbname):
            echo(f"created database {dbname}")
        application.migrate(application.app_environment(settings, info, environ))
        state.write_record(
            state_dir,
            name,
            {
                "kind": "database",
                "backend": "local",
                "database": info.to_json(),
                "created_at": time.time(),
            },
        )
    except BaseException:
        stop_cluster(info, remove=False)
        raise
    return settings, info


def running_database(state_dir: Path, environment: str) -> ClusterInfo | None:
    """The environment's database when it runs."""
    record = state.read_record(state_dir, database_record_name(environment))
    if record is None:
        return None
    info = ClusterInfo.from_json(record["database"])
    return info if info.process.alive() else None


def stop_database(state_dir: Path, environment: str, *, volumes: bool = False) -> bool:
    """Stop the environment's database (and delete its data with ``volumes``).

    Returns whether anything was running.
    """
    name = database_record_name(environment)
    record = state.read_record(state_dir, name)
    was_running = False
    if record is not None:
        info = ClusterInfo.from_json(record["database"])
        was_running = info.process.alive()
        stop_cluster(info, remove=volumes)
        state.delete_record(state_dir, name)
    if volumes:
        _delete_data(state_dir, environment)
    return was_running


def _delete_data(state_dir: Path, environment: str) -> None:
    from devtools.paths import server_home
    from devtools.users import server_user

    root = data_root(state_dir, environment)
    if root.exists():
        shutil.rmtree(server_home(root, server_user()), ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
    forget_secrets(state_dir, environment)


def describe(info: ClusterInfo) -> dict[str, Any]:
    """Summary for status tables."""
    return {"port": info.port, "pid": info.process.pid, "data": str(info.home / "data")}
