"""gunicorn replicas of the app: each in its own process group on its own random local port."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from devtools.errors import ServiceStartError, WaitTimeout
from devtools.http import get_status
from devtools.ports import free_port
from devtools.processes import ProcessRef, spawn, tail
from devtools.production.layout import Layout, log_size, read_from
from devtools.production.procs import stop_groups
from devtools.signals import deferred_interrupts
from devtools.waiting import wait_until

WSGI_APP = "application.wsgi:app"
# gthread keeps connections alive, so nginx's upstream keepalive saves a TCP handshake per
# request (gunicorn's sync worker closes every connection).
WORKER_CLASS = "gthread"
THREADS = 4
# Longer than nginx's upstream keepalive_timeout (30s): nginx closes idle connections first,
# so it never sends a request on a connection gunicorn is closing.
KEEP_ALIVE = 75
GRACEFUL_TIMEOUT = 20
START_TIMEOUT = 30.0
STOP_TIMEOUT = GRACEFUL_TIMEOUT + 5.0
_PORT_ATTEMPTS = 3
_PORT_TAKEN = ("Connection in use", "Address already in use")


@dataclass(frozen=True)
class Replica:
    """One running gunicorn replica."""

    name: str
    port: int
    process: ProcessRef
    workers: int

    @property
    def index(self) -> int:
        """The N of ``replica-N``."""
        return replica_index(self.name)

    def to_json(self) -> dict[str, Any]:
        """The form stored in the state file."""
        return {
            "name": self.name,
            "port": self.port,
            "process": self.process.to_json(),
            "workers": self.workers,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Replica:
        """Inverse of :meth:`to_json`."""
        return cls(
            str(data["name"]),
            int(data["port"]),
            ProcessRef.from_json(data["process"]),
            int(data["workers"]),
        )


def replica_name(index: int) -> str:
    """``replica-<index>``, the value of ``APPLICATION_REPLICA`` and ``X-Replica``."""
    return f"replica-{index}"


def replica_index(name: str) -> int:
    """Inverse of :func:`replica_name`."""
    return int(name.rpartition("-")[2])


def free_names(taken: Iterable[str], count: int) -> list[str]:
    """The ``count`` lowest replica names not in ``taken``."""
    used = {replica_index(name) for name in taken}
    names: list[str] = []
    index = 1
    while len(names) < count:
        if index not in used:
            names.append(replica_name(index))
        index += 1
    return names


def gunicorn_argv(port: int, workers: int) -> list[str]:
    """The command of one replica bound to ``127.0.0.1:port``."""
    argv = [
        sys.executable, "-m", "gunicorn",
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers),
        "--worker-class", WORKER_CLASS,
        "--threads", str(THREADS),
        "--keep-alive", str(KEEP_ALIVE),
        "--graceful-timeout", str(GRACEFUL_TIMEOUT),
        # The app is imported once per replica and its workers forked from it: on 2 cores a
        # replica is ready in about half the time, and copy-on-write saves memory. Safe because
        # create_app opens no database connection (each worker connects on its first request).
        "--preload",
    ]  # fmt: skip
    if _has_control_socket():
        # Its default path is per user, not per process: replicas would fight over it.
        argv.append("--no-control-socket")
    argv.append(WSGI_APP)
    return argv


def _has_control_socket() -> bool:
    try:
        version = metadata.version("gunicorn")
    except metadata.PackageNotFoundError:
        return False
    parts = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    return parts >= (25, 1)


@dataclass
class _Launch:
    replica: Replica
    popen: subprocess.Popen[bytes]
    log: Path
    offset: int


class _PortTaken(Exception):
    """Another process bound the free port between our check and gunicorn's bind."""


def start_replicas(
    names: Iterable[str],
    *,
    workers: int,
    env_for: Callable[[str], Mapping[str, str]],
    layout: Layout,
    on_spawn: Callable[[Replica], None] | None = None,
    timeout: float = START_TIMEOUT,
) -> list[Replica]:
    """Start one replica per name in parallel; return once each answers ``/health`` with 200.

    Args:
        names: ``replica-N`` names.
        workers: gunicorn workers per replica.
        env_for: the complete environment of the named replica.
        layout: where logs go.
        on_spawn: called with each replica as soon as its process exists, before an interrupt
            can land (to record it, so it is stopped whatever happens next).
        timeout: seconds each replica has to become healthy.

    Raises:
        ServiceStartError: a replica exited or stayed unhealthy (with its log tail); every
            replica started here is stopped first.
    """
    started: list[Replica] = []

    def launch(name: str) -> _Launch:
        log = layout.replica_log(name)
        offset = log_size(log)
        port = free_port()
        argv = gunicorn_argv(port, workers)
        # Started and recorded as one step, so an interrupt cannot leave it running unknown.
        with deferred_interrupts():
            popen = spawn(argv, log_path=log, env=env_for(name), cwd=layout.root)
            try:
                ref = ProcessRef.of(popen.pid)
            except ProcessLookupError:
                popen.wait()
                raise ServiceStartError(f"{name} (gunicorn) exited at once\n{tail(log)}") from None
            replica = Replica(name, port, ref, workers)
            started.append(replica)
            if on_spawn is not None:
                on_spawn(replica)
        return _Launch(replica, popen, log, offset)

    def ready(current: _Launch) -> Replica:
        for attempt in range(_PORT_ATTEMPTS):
            try:
                _wait_healthy(current, timeout)
                return current.replica
            except _PortTaken:
                if attempt + 1 == _PORT_ATTEMPTS:
                    raise ServiceStartError(
                        f"{current.replica.name} could not bind a free port "
                        f"{_PORT_ATTEMPTS} times\n{tail(current.log)}"
                    ) from None
                started.remove(current.replica)
                current = launch(current.replica.name)
        raise AssertionError("unreachable")

    try:
        # All processes first, then the waits: the replicas boot in parallel.
        launches = [launch(name) for name in names]
        return [ready(current) for current in launches]
    except BaseException:
        stop_replicas(started)
        raise


def _wait_healthy(launch: _Launch, timeout: float) -> None:
    replica = launch.replica

    def healthy() -> bool:
        if launch.popen.poll() is not None:
            output = read_from(launch.log, launch.offset)
            if any(marker in output for marker in _PORT_TAKEN):
                raise _PortTaken
            raise ServiceStartError(
                f"{replica.name} (gunicorn) exited with code {launch.popen.returncode} "
                f"during start\n{tail(launch.log)}"
            )
        return get_status("127.0.0.1", replica.port) == 200

    try:
        wait_until(
            healthy,
            timeout,
            interval=0.05,
            what=f"{replica.name} on 127.0.0.1:{replica.port} to answer GET /health with 200",
            on_timeout=lambda: tail(launch.log),
        )
    except WaitTimeout as error:
        raise ServiceStartError(str(error)) from None


def stop_replicas(replicas: Iterable[Replica], timeout: float = STOP_TIMEOUT) -> None:
    """Stop replicas gracefully (SIGTERM: gunicorn finishes in-flight requests), all at once."""
    stop_groups([replica.process for replica in replicas], sig=signal.SIGTERM, timeout=timeout)
