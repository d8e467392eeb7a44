"""What this checkout has running, and cleaning up after interrupted runs."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devtools import production, state
from devtools.environments import persistent
from devtools.environments import scenario as scenarios
from devtools.local_backend import age
from devtools.postgres import ClusterInfo
from devtools.postgres.cluster import sweep_stale_clusters

if TYPE_CHECKING:
    from devtools.compose.backend import ComposeBackend


def _age(created: float | None) -> str:
    return "-" if created is None else age(time.time() - created)


def status_lines(state_dir: Path, compose: ComposeBackend | None = None) -> list[str]:
    """A table of every recorded environment plus orphaned throwaway clusters.

    Compose environments are asked about through ``compose`` (by default a compose backend on
    this checkout, created only when there is a compose record).
    """
    rows: list[tuple[str, str, str, str, str]] = []
    for name, record in state.all_records(state_dir).items():
        kind = record.get("kind")
        if record.get("backend", "local") == "compose":
            if compose is None:
                compose = _compose_backend(state_dir)
            rows.append(_compose_row(compose, name, record))
        elif kind == "scenario":
            item = scenarios.RunningScenario.from_record(record)
            alive = "running" if item.alive() else "dead"
            ports = f"app {item.app.port}, db {item.database.port}"
            pids = f"{item.app.process.pid}, {item.database.process.pid}"
            rows.append((name, alive, ports, pids, _age(item.created_at)))
        elif kind == "database":
            info = ClusterInfo.from_json(record["database"])
            alive = "running" if info.process.alive() else "dead"
            rows.append(
                (
                    name,
                    alive,
                    f"db {info.port}",
                    str(info.process.pid),
                    _age(record.get("created_at")),
                )
            )
        elif kind == "production" and record.get("backend", "local") == "local":
            status = production.status(state_dir.parent)
            alive = "running" if status.healthy else "degraded"
            port = status.nginx.port if status.nginx else "-"
            pids = ", ".join(str(replica.pid) for replica in status.replicas)
            rows.append((name, alive, f"nginx {port}, {status.scale} replicas", pids, "-"))
        else:
            rows.append((name, str(record.get("status", "recorded")), "-", "-", "-"))
    lines = _table(("ENVIRONMENT", "STATE", "PORTS", "PIDS OR CONTAINERS", "AGE"), rows)
    if not rows:
        lines = ["nothing is up"]
    for environment in ("development", "production"):
        root = persistent.data_root(state_dir, environment)
        if root.exists() and persistent.running_database(state_dir, environment) is None:
            lines.append(f"{environment} data kept (stopped) in {root}")
    return lines


def _table(header: tuple[str, ...], rows: list[tuple[str, str, str, str, str]]) -> list[str]:
    """Left-aligned columns at least two spaces apart, as wide as their widest cell."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


def _compose_backend(state_dir: Path) -> ComposeBackend:
    from devtools.backends import Environment
    from devtools.compose.backend import ComposeBackend

    return ComposeBackend(Environment(state_dir.parent, os.environ, state_dir))


def _compose_row(
    backend: ComposeBackend, name: str, record: dict[str, Any]
) -> tuple[str, str, str, str, str]:
    """A compose environment's row: its ports from the record, its containers from Docker."""
    from devtools.compose.engine import DockerUnavailable
    from devtools.errors import DevtoolsError

    ports = ", ".join(
        f"{label} {record[key]}"
        for key, label in (("port", "nginx"), ("app_port", "app"), ("db_port", "db"))
        if key in record
    )
    created = _age(record.get("created_at"))
    if "project" not in record:
        return (name, "unknown", ports or "-", "compose: no project", created)
    try:
        backend.docker()
        environment = Path(record.get("compose_file", "testing.yml")).stem
        containers = backend.project(
            environment, record["project"], record.get("variables", {})
        ).containers()
    except DockerUnavailable:
        return (name, "unknown", ports or "-", "compose: no docker", created)
    except DevtoolsError:  # Docker answered, but compose failed on this project
        return (name, "unknown", ports or "-", "compose: error", created)
    if record.get("kind") == "database":
        # The development server's container runs only while `nox -s dev` does.
        containers = [c for c in containers if c.service == "db"]
    running = sum(1 for c in containers if c.status == "running")
    if record.get("status") not in (None, "running"):
        condition = str(record["status"])
    elif containers and running == len(containers):
        condition = "running"
    else:
        condition = "degraded" if running else "stopped"
    where = f"compose: {running}/{len(containers)} up"
    return (name, condition, ports or "-", where, created)


def clean(state_dir: Path) -> list[str]:
    """Remove records of dead environments and orphaned throwaway clusters."""
    lines = []
    for name, record in state.all_records(state_dir).items():
        if record.get("backend", "local") != "local":
            continue  # the compose backend's environments are cleaned by its own down
        if record.get("kind") == "scenario":
            item = scenarios.RunningScenario.from_record(record)
            if not item.alive():
                scenarios.stop_scenario(item)
                state.delete_record(state_dir, name)
                lines.append(f"removed dead scenario {item.name}")
        elif record.get("kind") == "database":
            info = ClusterInfo.from_json(record["database"])
            if not info.process.alive():
                state.delete_record(state_dir, name)
                lines.append(f"forgot dead database record {name}")
    for root in sweep_stale_clusters(grace_seconds=60):
        lines.append(f"removed leftover throwaway cluster {root}")
    return lines or ["nothing to clean"]
