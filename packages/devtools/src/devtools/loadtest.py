"""``nox -s loadtest``: locust, headless, against the running production stack."""

from __future__ import annotations

import csv
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from devtools import commands
from devtools.errors import UsageError

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def run_locust(
    url: str, *, users: int, seconds: int, echo: Callable[[str], None]
) -> dict[str, float]:
    """Drive ``url`` for ``seconds`` with ``users`` clients; print and return the figures."""
    with tempfile.TemporaryDirectory(prefix="devtools-locust-") as scratch:
        prefix = Path(scratch) / "run"
        counts = Path(scratch) / "replicas.json"
        commands.run(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(LOCUSTFILE),
                "--headless",
                "--users",
                str(users),
                "--spawn-rate",
                str(users),
                "--run-time",
                f"{seconds}s",
                "--host",
                url,
                "--csv",
                str(prefix),
                "--only-summary",
                "--loglevel",
                "WARNING",
                "--exit-code-on-error",
                "0",
            ],
            env={**os.environ, "DEVTOOLS_REPLICA_COUNTS": str(counts)},
            timeout=seconds + 120,
        )
        with (prefix.parent / "run_stats.csv").open() as handle:
            total = next(row for row in csv.DictReader(handle) if row["Name"] == "Aggregated")
        replicas = json.loads(counts.read_text()) if counts.exists() else {}
    figures = {
        "requests": float(total["Request Count"]),
        "failures": float(total["Failure Count"]),
        "rps": float(total["Requests/s"]),
        "p50_ms": float(total["50%"]),
        "p99_ms": float(total["99%"]),
    }
    echo(f"locust: {users} users for {seconds}s against {url}")
    echo(
        f"  {figures['rps']:,.0f} requests/s, p50 {figures['p50_ms']:.0f} ms, "
        f"p99 {figures['p99_ms']:.0f} ms, {int(figures['failures'])} errors "
        f"of {int(figures['requests'])} requests"
    )
    for name, count in sorted(replicas.items()):
        echo(f"  {name:<12} {count:>8} requests")
        figures[f"replica:{name}"] = float(count)
    return figures


def production_url(project_root: Path) -> str:
    """The URL of the running production stack, or a clear error."""
    from devtools import production

    status = production.status(project_root)
    if not status.running or status.url is None:
        raise UsageError("production is not running; start it with nox -s prod -- --scale 3")
    return status.url
