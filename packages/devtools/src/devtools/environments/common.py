"""Pieces shared by the environments: the app as a background process, connection lines."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.errors import ServiceStartError, WaitTimeout
from devtools.http import get_status
from devtools.postgres import ClusterInfo, PostgresBinaries
from devtools.processes import ProcessRef, spawn, tail, terminate
from devtools.waiting import wait_until


@dataclass(frozen=True)
class AppProcess:
    """An app server started in the background."""

    port: int
    process: ProcessRef
    log: Path

    @property
    def url(self) -> str:
        """Where it answers."""
        return f"http://127.0.0.1:{self.port}"

    def to_json(self) -> dict[str, Any]:
        """The form stored in records."""
        return {"port": self.port, "process": self.process.to_json(), "log": str(self.log)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AppProcess:
        """Inverse of :meth:`to_json`."""
        return cls(int(data["port"]), ProcessRef.from_json(data["process"]), Path(data["log"]))


def flask_run_argv(port: int, *, debug: bool) -> list[str]:
    """The Flask development server on 127.0.0.1:``port``."""
    argv = [sys.executable, "-m", "flask", "--app", "application:create_app"]
    if debug:
        argv.append("--debug")
    return [*argv, "run", "--host", "127.0.0.1", "--port", str(port)]


def start_app(
    argv: list[str], env: Mapping[str, str], port: int, log: Path, timeout: float = 30
) -> AppProcess:
    """Start an app server detached and return once ``/health`` answers 200.

    Raises:
        ServiceStartError: it exited or did not answer in time (with its log tail); it is
            stopped before the error propagates.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    popen = spawn(argv, log_path=log, env=env)
    ref = ProcessRef.of(popen.pid)

    def healthy() -> bool:
        if popen.poll() is not None:
            raise ServiceStartError(f"the app exited with code {popen.returncode}\n{tail(log)}")
        return get_status("127.0.0.1", port) == 200

    try:
        wait_until(
            healthy,
            timeout,
            interval=0.02,
            what=f"the app on 127.0.0.1:{port} to answer /health with 200",
            on_timeout=lambda: tail(log),
        )
    except BaseException as error:
        terminate(ref, popen=popen)
        if isinstance(error, WaitTimeout):
            raise ServiceStartError(str(error)) from error
        raise
    return AppProcess(port, ref, log)


def psql_command(binaries: PostgresBinaries, dsn: str) -> str:
    """A ready-to-paste psql command: the system psql when there is one, else the embedded."""
    import shutil

    system = shutil.which("psql")
    if system:
        return shlex.join([system, dsn])
    lib = binaries.bindir.parent / "lib"
    return f"LD_LIBRARY_PATH={shlex.quote(str(lib))} " + shlex.join(
        [str(binaries.path("psql")), dsn]
    )


def connection_lines(
    title: str, app: AppProcess | None, database: ClusterInfo, dbname: str, psql: str, down: str
) -> list[str]:
    """What ``up`` prints: URL, DSN, psql command, and how to tear it down."""
    lines = [title]
    if app is not None:
        lines.append(f"  app:   {app.url}")
    lines += [
        f"  dsn:   {database.dsn(dbname)}",
        f"  psql:  {psql}",
        f"  down:  {down}",
    ]
    return lines
