"""The local production simulation: persistent PostgreSQL, N gunicorn replicas, nginx in front.

Everything runs detached (``up`` returns while it keeps running) and is remembered in
``.devtools/environments/production.json``: PIDs with start times, ports, the cluster. The record
is written as each piece starts, so even a SIGKILLed ``up`` leaves nothing ``down`` cannot find;
a failed or interrupted ``up`` stops what it started itself before it raises.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devtools import state
from devtools.application import app_environment
from devtools.config import Settings
from devtools.environments import persistent
from devtools.errors import UsageError
from devtools.http import get_status
from devtools.ports import free_port, require_free_port
from devtools.postgres import ClusterInfo, PostgresBinaries
from devtools.processes import ProcessRef
from devtools.production import nginx
from devtools.production.layout import ENVIRONMENT, Layout
from devtools.production.replicas import (
    Replica,
    free_names,
    replica_index,
    start_replicas,
    stop_replicas,
)
from devtools.production.status import (
    DatabaseStatus,
    NginxStatus,
    ProductionStatus,
    ReplicaStatus,
)
from devtools.signals import termination_raises
from devtools.state import (
    delete_record,
    environment_lock,
    read_record,
    require_backend,
    write_record,
)

MIN_SCALE = 1
MAX_SCALE = 32
_INTEGER = re.compile(r"[+-]?[0-9]+")


def parse_scale(value: object) -> int:
    """The number of replicas asked for, as an int from 1 to 32.

    Raises:
        UsageError: ``value`` is not a whole number in that range.
    """
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        number = int(value.strip())
    if number is None or not MIN_SCALE <= number <= MAX_SCALE:
        raise UsageError(
            f"--scale must be a whole number of replicas from {MIN_SCALE} to {MAX_SCALE}, "
            f"got {value!r}"
        )
    return number


def up(
    project_root: Path, settings: Settings, *, scale: int | str, environ: Mapping[str, str]
) -> ProductionStatus:
    """Start the production simulation with ``scale`` replicas, or rescale the running one.

    A first ``up`` starts PostgreSQL (data in ``.devtools/production/postgres``), creates the
    application database if missing, applies the migrations, starts the replicas and then
    nginx on ``127.0.0.1:APPLICATION_PORT``, and returns once nginx answers ``/health`` with 200
    through the proxy. On a running stack a different scale (or dead replicas) rescales live;
    the same scale changes nothing.

    Args:
        project_root: the checkout (holds ``config/``, ``docker/nginx/`` and ``.devtools/``).
        settings: the production settings (``load_settings(root, "production", environ)``).
        scale: replicas wanted, 1 to 32 (a string from the command line is accepted).
        environ: the caller's environment; PATH and friends are passed to the replicas.

    Returns:
        The status after the change, with a message saying what was done.

    Raises:
        UsageError: a bad scale, or another command is working on production.
        PortInUseError: APPLICATION_PORT is taken.
        ServiceStartError: a service did not start (its log tail is in the message).
    """
    count = parse_scale(scale)
    layout = Layout.of(project_root)
    with termination_raises(), environment_lock(layout.state, ENVIRONMENT):
        record = read_record(layout.state, ENVIRONMENT)
        note = ""
        if record is not None:
            require_backend(record, "local", "production", "nox -s prod -- down")
            problem = _broken(layout, record)
            if problem is None:
                _check_same_port(record, settings)
                return _rescale(layout, record, count, settings, environ)
            _stop_recorded(layout, record)
            delete_record(layout.state, ENVIRONMENT)
            note = f"the previous stack was broken ({problem}), so it was stopped; "
        return _start(layout, count, settings, environ, note)


def status(project_root: Path) -> ProductionStatus:
    """The recorded stack with a live check of every part (``/health`` of each replica).

    Args:
        project_root: the checkout.
    """
    layout = Layout.of(project_root)
    record = read_record(layout.state, ENVIRONMENT)
    if record is None:
        return ProductionStatus(running=False, message="production is not running")
    require_backend(record, "local", "production", "nox -s prod -- status")
    message = ""
    if record.get("status") != "running":
        message = "an earlier up did not finish: run up again to repair it, or down"
    return _status(layout, record, message)


def down(project_root: Path, *, volumes: bool = False) -> str:
    """Stop nginx, the replicas and PostgreSQL; keep the data unless ``volumes``.

    Stopping when nothing runs is not an error: the message says so.

    Args:
        project_root: the checkout.
        volumes: also delete the database files and the generated secrets.

    Returns:
        One line saying what was done.
    """
    layout = Layout.of(project_root)
    with termination_raises(), environment_lock(layout.state, ENVIRONMENT):
        record = read_record(layout.state, ENVIRONMENT)
        database = persistent.running_database(layout.state, ENVIRONMENT)
        data = database.home / "data" if database else layout.postgres
        if record is not None:
            require_backend(record, "local", "production", "nox -s prod -- down")
        if record is None:
            message = "production is not running, nothing to stop"
            if database is not None:
                # Started on its own (a flask command on production): it goes with production.
                message = "production is not running; stopped its database"
            persistent.stop_database(layout.state, ENVIRONMENT, volumes=volumes)
        else:
            _stop_recorded(layout, record, volumes=volumes)
            delete_record(layout.state, ENVIRONMENT)
            replicas = _replicas(len(record.get("replicas", [])))
            message = f"production stopped (nginx, {replicas}, postgres)"
        nginx.remove_temp(layout)
        if volumes:
            message += "; deleted its database and generated secrets"
        elif record is not None and layout.postgres.exists():
            message += f"; data kept in {data} (down --volumes deletes it)"
        return message


def log_files(project_root: Path) -> dict[str, list[Path]]:
    """Every service's existing log files by name (``nginx``, ``postgres``, ``replica-N``).

    Args:
        project_root: the checkout.
    """
    layout = Layout.of(project_root)
    files: dict[str, list[Path]] = {}
    nginx_logs = [
        path for path in (layout.nginx_error_log, layout.nginx_access_log) if path.exists()
    ]
    if nginx_logs:
        files["nginx"] = nginx_logs
    if layout.postgres_log.exists():
        files["postgres"] = [layout.postgres_log]
    replica_logs = sorted(
        layout.logs.glob("replica-*.log"), key=lambda path: replica_index(path.stem)
    )
    for path in replica_logs:
        files[path.stem] = [path]
    return files


def logs(project_root: Path, service: str | None = None, lines: int = 50) -> str:
    """The last ``lines`` lines of one service's logs, or of all of them.

    Args:
        project_root: the checkout.
        service: ``nginx``, ``postgres``, ``replica-N``, or None for all.
        lines: lines per log file.

    Raises:
        UsageError: an unknown service (the message lists the known ones) or ``lines`` < 1.
    """
    if lines < 1:
        raise UsageError(f"--lines must be at least 1, got {lines}")
    files = log_files(project_root)
    if service is not None:
        if service not in files:
            known = ", ".join(files) or "none yet"
            raise UsageError(f"no logs for {service!r}; services with logs: {known}")
        files = {service: files[service]}
    if not files:
        return "production has no logs yet"
    sections = []
    for name, paths_ in files.items():
        for path in paths_:
            text = path.read_text(errors="replace").splitlines()[-lines:]
            sections.append("\n".join([f"==> {name}: {path} <==", *text]))
    return "\n\n".join(sections)


def _start(
    layout: Layout, count: int, settings: Settings, environ: Mapping[str, str], note: str
) -> ProductionStatus:
    began = time.monotonic()
    # Everything that can be checked is checked before anything starts.
    port: int = settings.get("APPLICATION_PORT") or free_port()
    require_free_port(port, what="nginx", setting="APPLICATION_PORT")
    server = nginx.Nginx(nginx.nginx_binary(settings), layout)
    template = nginx.template_path(layout.project_root)
    nginx.render(
        template, nginx.local_values(layout, port=port, upstream_ports=[1], temp_dir=layout.nginx)
    )
    PostgresBinaries.from_setting(settings.get("POSTGRES_BINARIES"))
    layout.make()
    record: dict[str, Any] = {
        "kind": "production",
        "backend": "local",
        "status": "starting",
        "created_at": time.time(),
        "application_db": settings.require("APPLICATION_DB"),
        "nginx": None,
        "replicas": [],
        "starting": [],
        "stopping": [],
    }
    notes: list[str] = []
    with contextlib.ExitStack() as undo:
        undo.callback(delete_record, layout.state, ENVIRONMENT)
        undo.callback(nginx.remove_temp, layout)
        if persistent.running_database(layout.state, ENVIRONMENT) is None:
            undo.callback(persistent.stop_database, layout.state, ENVIRONMENT)
        write_record(layout.state, ENVIRONMENT, record)
        # Starts the cluster, creates the application database if missing, migrates once.
        settings, info = persistent.ensure_database(settings, layout.state, environ, notes.append)

        # Each process is registered for cleanup the moment it exists (see deferred_interrupts).
        spawned: list[Replica] = []
        undo.callback(stop_replicas, spawned)
        names = free_names([], count)
        replicas = _start_replicas(layout, record, names, settings, info, environ, spawned)
        record["replicas"] = [replica.to_json() for replica in replicas]
        record["starting"] = []
        write_record(layout.state, ENVIRONMENT, record)

        server.write_config(_config(layout, port, replicas))

        def stop_nginx_on_failure(master: ProcessRef) -> None:
            undo.callback(nginx.stop, master)

        master, _ = server.start(port, on_spawn=stop_nginx_on_failure)
        record["nginx"] = {**nginx.record(master, port), "binary": str(server.binary)}
        record["status"] = "running"
        write_record(layout.state, ENVIRONMENT, record)
        undo.pop_all()
    elapsed = time.monotonic() - began
    # ensure_database's notes ("created database application") come first.
    notes.append(f"{note}production started with {_replicas(count)} in {elapsed:.1f}s")
    return _status(layout, record, "\n".join(notes))


def _rescale(
    layout: Layout,
    record: dict[str, Any],
    count: int,
    settings: Settings,
    environ: Mapping[str, str],
) -> ProductionStatus:
    leftovers = [Replica.from_json(data) for data in record["starting"] + record["stopping"]]
    if leftovers:
        # Replicas of an earlier command that was killed before it could finish.
        stop_replicas(leftovers)
        record["starting"], record["stopping"] = [], []
        write_record(layout.state, ENVIRONMENT, record)
    replicas = [Replica.from_json(data) for data in record["replicas"]]
    alive = sorted((r for r in replicas if r.process.alive()), key=lambda r: r.index)
    dead = [r for r in replicas if not r.process.alive()]
    if not dead and len(alive) == count:
        return _status(layout, record, f"production is already running with {_replicas(count)}")

    keep, leaving = alive[:count], alive[count:]
    # Running already: this only fills in the generated secrets and returns the cluster.
    settings, info = persistent.ensure_database(settings, layout.state, environ, lambda _: None)
    names = free_names([r.name for r in keep], count - len(keep))
    server = nginx.Nginx(Path(record["nginx"]["binary"]), layout)
    master = ProcessRef.from_json(record["nginx"]["process"])
    spawned: list[Replica] = []
    try:
        new = _start_replicas(layout, record, names, settings, info, environ, spawned)
        serving = sorted(keep + new, key=lambda r: r.index)
        server.reconfigure(master, _config(layout, record["nginx"]["port"], serving))
    except BaseException:
        # The running stack stays as it was: nginx has its previous config back.
        stop_replicas(spawned)
        record["starting"] = []
        write_record(layout.state, ENVIRONMENT, record)
        raise
    # nginx no longer sends anything to the leaving replicas: they can stop gracefully.
    record["replicas"] = [r.to_json() for r in serving]
    record["starting"] = []
    record["stopping"] = [r.to_json() for r in leaving + dead]
    write_record(layout.state, ENVIRONMENT, record)
    stop_replicas(leaving + dead)
    record["stopping"] = []
    write_record(layout.state, ENVIRONMENT, record)

    if len(replicas) == count:
        message = f"replaced dead {', '.join(r.name for r in dead)}; {_replicas(count)} running"
    else:
        message = f"rescaled from {len(replicas)} to {_replicas(count)}"
        if dead:
            message += f" (replaced dead {', '.join(r.name for r in dead)})"
    return _status(layout, record, message)


def _replicas(count: int) -> str:
    return f"{count} replica" if count == 1 else f"{count} replicas"


def _start_replicas(
    layout: Layout,
    record: dict[str, Any],
    names: list[str],
    settings: Settings,
    info: ClusterInfo,
    environ: Mapping[str, str],
    spawned: list[Replica],
) -> list[Replica]:
    """Start replicas; each is appended to ``spawned`` and the record as soon as it exists."""

    def recorded(replica: Replica) -> None:
        spawned.append(replica)
        record["starting"].append(replica.to_json())
        write_record(layout.state, ENVIRONMENT, record)

    try:
        return start_replicas(
            names,
            workers=settings.require("GUNICORN_WORKERS"),
            env_for=lambda name: app_environment(settings, info, environ, APPLICATION_REPLICA=name),
            layout=layout,
            on_spawn=recorded,
        )
    except BaseException:
        # start_replicas stopped them all.
        record["starting"] = []
        write_record(layout.state, ENVIRONMENT, record)
        raise


def _config(layout: Layout, port: int, replicas: list[Replica]) -> str:
    values = nginx.local_values(
        layout,
        port=port,
        upstream_ports=[replica.port for replica in replicas],
        temp_dir=nginx.temp_dir(layout),
    )
    return nginx.render(nginx.template_path(layout.project_root), values)


def _broken(layout: Layout, record: Mapping[str, Any]) -> str | None:
    if record.get("status") != "running":
        return "an earlier up did not finish"
    if persistent.running_database(layout.state, ENVIRONMENT) is None:
        return "postgres is not running"
    if not ProcessRef.from_json(record["nginx"]["process"]).alive():
        return "nginx is not running"
    return None


def _check_same_port(record: Mapping[str, Any], settings: Settings) -> None:
    running: int = record["nginx"]["port"]
    wanted = settings.get("APPLICATION_PORT")
    if wanted is not None and wanted != running:
        raise UsageError(
            f"production is running on port {running} but APPLICATION_PORT is now {wanted}: "
            "run down first to move it"
        )


def _stop_recorded(layout: Layout, record: Mapping[str, Any], *, volumes: bool = False) -> None:
    """Stop every process a record knows about: nginx first, so nothing new reaches the rest."""
    if record.get("nginx"):
        nginx.stop(ProcessRef.from_json(record["nginx"]["process"]))
    replicas = record.get("replicas", []) + record.get("starting", []) + record.get("stopping", [])
    stop_replicas(Replica.from_json(data) for data in replicas)
    persistent.stop_database(layout.state, ENVIRONMENT, volumes=volumes)


def _status(layout: Layout, record: Mapping[str, Any], message: str) -> ProductionStatus:
    replicas = tuple(
        _replica_status(Replica.from_json(data))
        for data in sorted(record.get("replicas", []), key=lambda data: replica_index(data["name"]))
    )
    nginx_status = None
    if record.get("nginx"):
        proxy = record["nginx"]
        nginx_status = NginxStatus(
            pid=proxy["process"]["pid"],
            port=proxy["port"],
            url=proxy["url"],
            alive=ProcessRef.from_json(proxy["process"]).alive(),
        )
    database = None
    db_record = state.read_record(layout.state, persistent.database_record_name(ENVIRONMENT))
    if db_record is not None:
        info = ClusterInfo.from_json(db_record["database"])
        database = DatabaseStatus(
            host=info.host,
            port=info.port,
            pid=info.process.pid,
            alive=info.process.alive(),
            user=info.user,
            database=record.get("application_db", ""),
        )
    return ProductionStatus(
        running=True,
        message=message,
        url=nginx_status.url if nginx_status else None,
        nginx=nginx_status,
        database=database,
        replicas=replicas,
    )


def _replica_status(replica: Replica) -> ReplicaStatus:
    alive = replica.process.alive()
    return ReplicaStatus(
        name=replica.name,
        port=replica.port,
        pid=replica.process.pid,
        alive=alive,
        http_status=get_status("127.0.0.1", replica.port, timeout=1.0) if alive else None,
    )
