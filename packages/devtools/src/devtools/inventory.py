"""What this checkout has running, and cleaning up after interrupted runs."""

from __future__ import annotations

import time
from pathlib import Path

from devtools import production, state
from devtools.environments import persistent
from devtools.environments import scenario as scenarios
from devtools.local_backend import age
from devtools.postgres import ClusterInfo
from devtools.postgres.cluster import sweep_stale_clusters


def _age(created: float | None) -> str:
    return "-" if created is None else age(time.time() - created)


def status_lines(state_dir: Path) -> list[str]:
    """A table of every recorded environment plus orphaned throwaway clusters."""
    rows: list[tuple[str, str, str, str, str]] = []
    for name, record in state.all_records(state_dir).items():
        kind = record.get("kind")
        if record.get("backend", "local") != "local":
            rows.append((name, f"{record['backend']}", "see prod/scenario list", "-", "-"))
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
    lines = [f"{'ENVIRONMENT':<22} {'STATE':<8} {'PORTS':<24} {'PIDS':<16} AGE"]
    lines += [f"{n:<22} {s:<8} {p:<24} {i:<16} {a}" for n, s, p, i, a in rows]
    if not rows:
        lines = ["nothing is up"]
    for environment in ("development", "production"):
        root = persistent.data_root(state_dir, environment)
        if root.exists() and persistent.running_database(state_dir, environment) is None:
            lines.append(f"{environment} data kept (stopped) in {root}")
    return lines


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
