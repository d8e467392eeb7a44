"""Scenarios: a throwaway database filled with named data, and the app running against it.

``up`` returns while the scenario keeps running; its record in the state folder is what
``down``, ``list`` and ``status`` use later.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools import application, state
from devtools.config import Settings
from devtools.environments.common import (
    AppProcess,
    connection_lines,
    flask_run_argv,
    psql_command,
    start_app,
)
from devtools.errors import DevtoolsError, UsageError
from devtools.ports import free_port
from devtools.postgres import ClusterInfo, PostgresBinaries, PostgresCluster, stop_cluster
from devtools.processes import terminate

RUNNER = "scenario-run"


def default_runner() -> str:
    """The scenarios package's console script in this venv (devtools never imports it)."""
    script = Path(sys.executable).parent / RUNNER
    found = str(script) if script.is_file() else shutil.which(RUNNER)
    if found is None:
        raise UsageError(
            f"{RUNNER} is not installed next to {sys.executable}: install the scenarios package "
            "(nox sessions do) to run scenarios"
        )
    return found


class ScenarioFailed(DevtoolsError):
    """The scenario's own code failed; its traceback was already shown."""


@dataclass(frozen=True)
class RunningScenario:
    """A scenario that is up."""

    name: str
    database: ClusterInfo
    app: AppProcess
    dbname: str
    created_at: float

    def record(self) -> dict[str, Any]:
        """The state-folder record."""
        return {
            "kind": "scenario",
            "backend": "local",
            "name": self.name,
            "database": self.database.to_json(),
            "app": self.app.to_json(),
            "dbname": self.dbname,
            "created_at": self.created_at,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> RunningScenario:
        """Inverse of :meth:`record`."""
        return cls(
            record["name"],
            ClusterInfo.from_json(record["database"]),
            AppProcess.from_json(record["app"]),
            record["dbname"],
            float(record["created_at"]),
        )

    def alive(self) -> bool:
        """Both the database and the app still run."""
        return self.database.process.alive() and self.app.process.alive()

    def lines(self, binaries: PostgresBinaries, *, already: bool = False) -> list[str]:
        """The connection lines printed by ``up``."""
        title = f"scenario {self.name} is already up" if already else f"scenario {self.name} is up"
        return connection_lines(
            title,
            self.app,
            self.database,
            self.dbname,
            psql_command(binaries, self.database.dsn(self.dbname)),
            f'nox -s "scenario({self.name})" -- down',
        )


def record_name(name: str) -> str:
    """The state record of scenario ``name``."""
    return f"scenario-{name}"


def known_scenarios(runner: str) -> list[str]:
    """The scenarios the scenarios package offers (asked of its CLI; devtools never imports it)."""
    output = subprocess.run(
        [runner, "--list"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return [line.strip() for line in output.splitlines() if line.strip()]


def require_known(name: str, known: Sequence[str]) -> None:
    """Raise a clear error for an unknown scenario name."""
    if name not in known:
        raise UsageError(
            f"unknown scenario {name!r}; known scenarios: {', '.join(known) or '(none)'}"
        )


def up(
    *,
    name: str,
    settings: Settings,
    state_dir: Path,
    environ: Mapping[str, str],
    args: Sequence[str] = (),
    echo: Callable[[str], None] = print,
    runner: str | None = None,
) -> RunningScenario:
    """Start scenario ``name`` (or report the one already up) and return it.

    Raises:
        UsageError: unknown scenario.
        ScenarioFailed: the scenario raised; everything started was torn down.
    """
    runner = runner or default_runner()
    require_known(name, known_scenarios(runner))
    binaries = PostgresBinaries.from_setting(settings.get("POSTGRES_BINARIES"))
    with state.environment_lock(state_dir, record_name(name)):
        existing = state.read_record(state_dir, record_name(name))
        if existing is not None:
            state.require_backend(
                existing, "local", f"scenario {name}", f'nox -s "scenario({name})"'
            )
            running = RunningScenario.from_record(existing)
            if running.alive():
                for line in running.lines(binaries, already=True):
                    echo(line)
                return running
            echo(f"scenario {name} was left half-running; cleaning it up first")
            stop_scenario(running)
            state.delete_record(state_dir, record_name(name))
        running = _start(name, settings, state_dir, environ, args, binaries, runner)
        state.write_record(state_dir, record_name(name), running.record())
    for line in running.lines(binaries):
        echo(line)
    return running


def _start(
    name: str,
    settings: Settings,
    state_dir: Path,
    environ: Mapping[str, str],
    args: Sequence[str],
    binaries: PostgresBinaries,
    runner: str,
) -> RunningScenario:
    cluster = PostgresCluster(
        binaries=binaries,
        superuser=settings.require("POSTGRES_USER"),
        password=settings.get("POSTGRES_PASSWORD"),
        detached=True,
    )
    dbname = settings.require("APPLICATION_DB")
    info: ClusterInfo | None = None
    app: AppProcess | None = None
    try:
        info = cluster.start()
        application.create_database(info, dbname)
        env = application.app_environment(settings, info, environ)
        application.migrate(env)
        scenario = subprocess.run(
            [runner, name, "--database-url", info.dsn(dbname), *args], env=env, check=False
        )
        if scenario.returncode != 0:
            raise ScenarioFailed(
                f"scenario {name} failed (exit code {scenario.returncode}); "
                "its database was torn down"
            )
        port = free_port()
        log = state_dir / "scenarios" / name / "app.log"
        log.unlink(missing_ok=True)
        app = start_app(flask_run_argv(port, debug=False), env, port, log)
        return RunningScenario(name, info, app, dbname, time.time())
    except BaseException:
        if info is not None:
            stop_cluster(info)
        else:
            cluster.stop()
        raise


def stop_scenario(running: RunningScenario) -> None:
    """Stop a scenario's app and database and delete its data (alive or not)."""
    with contextlib.suppress(Exception):
        terminate(running.app.process)
    stop_cluster(running.database, remove=True)
    with contextlib.suppress(FileNotFoundError):
        running.app.log.unlink()


def down(*, name: str, state_dir: Path, echo: Callable[[str], None] = print) -> bool:
    """Stop scenario ``name`` and delete its data; return False when it was not up."""
    with state.environment_lock(state_dir, record_name(name)):
        record = state.read_record(state_dir, record_name(name))
        if record is None:
            echo(f"scenario {name} is not up; nothing to do")
            return False
        state.require_backend(
            record, "local", f"scenario {name}", f'nox -s "scenario({name})" -- down'
        )
        stop_scenario(RunningScenario.from_record(record))
        state.delete_record(state_dir, record_name(name))
    echo(f"scenario {name} is down; its database was deleted")
    return True


def running_scenarios(state_dir: Path) -> list[RunningScenario]:
    """Every scenario with a record, alive or not."""
    return [
        RunningScenario.from_record(record)
        for record in state.all_records(state_dir).values()
        if record.get("kind") == "scenario" and record.get("backend", "local") == "local"
    ]
