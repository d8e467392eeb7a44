"""What ``up`` and ``status`` report: plain frozen data the CLI prints or dumps as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ReplicaStatus:
    """One gunicorn replica.

    Attributes:
        name: ``replica-N`` (also its ``X-Replica`` header).
        port: its port on 127.0.0.1.
        pid: the gunicorn master's PID.
        alive: whether that process still runs.
        http_status: what ``GET /health`` answered (None: no answer).
    """

    name: str
    port: int
    pid: int
    alive: bool
    http_status: int | None

    @property
    def healthy(self) -> bool:
        """Alive and answering ``/health`` with 200."""
        return self.alive and self.http_status == 200

    def describe(self) -> str:
        """One line for the terminal."""
        if not self.alive:
            state = "DEAD"
        elif self.http_status is None:
            state = "running, not answering /health"
        else:
            state = f"running, /health {self.http_status}"
        return f"{self.name:<11} pid {self.pid:<8} 127.0.0.1:{self.port:<6} {state}"


@dataclass(frozen=True)
class NginxStatus:
    """The nginx master in front of the replicas."""

    pid: int
    port: int
    url: str
    alive: bool

    def describe(self) -> str:
        """One line for the terminal."""
        state = "running" if self.alive else "DEAD"
        return f"{'nginx':<11} pid {self.pid:<8} 127.0.0.1:{self.port:<6} {state}  {self.url}"


@dataclass(frozen=True)
class DatabaseStatus:
    """The persistent PostgreSQL cluster."""

    host: str
    port: int
    pid: int
    alive: bool
    user: str
    database: str

    def describe(self) -> str:
        """One line for the terminal (no password: it is in .devtools/secrets/)."""
        state = "running" if self.alive else "DEAD"
        return (
            f"{'postgres':<11} pid {self.pid:<8} {self.host}:{self.port:<6} {state}  "
            f"database {self.database}, user {self.user}"
        )


@dataclass(frozen=True)
class ProductionStatus:
    """The state of the production simulation.

    Attributes:
        running: whether a stack is recorded as up (its parts may still have died).
        message: what the last command did ("started", "rescaled from 2 to 3 replicas", ...).
        url: where nginx serves the app.
        nginx: the proxy, when started.
        database: the cluster, when started.
        replicas: the app replicas, by name.
    """

    running: bool
    message: str = ""
    url: str | None = None
    nginx: NginxStatus | None = None
    database: DatabaseStatus | None = None
    replicas: tuple[ReplicaStatus, ...] = field(default_factory=tuple)

    @property
    def scale(self) -> int:
        """How many replicas are recorded (dead ones included)."""
        return len(self.replicas)

    @property
    def healthy(self) -> bool:
        """Everything runs and every replica answers ``/health`` with 200."""
        return (
            self.running
            and self.nginx is not None
            and self.nginx.alive
            and self.database is not None
            and self.database.alive
            and bool(self.replicas)
            and all(replica.healthy for replica in self.replicas)
        )

    def describe(self) -> str:
        """Several lines for the terminal."""
        if not self.running:
            return self.message or "production is not running"
        lines = [self.message] if self.message else []
        replicas = "1 replica" if self.scale == 1 else f"{self.scale} replicas"
        lines.append(f"production: {self.url} ({replicas})")
        if self.nginx is not None:
            lines.append("  " + self.nginx.describe())
        if self.database is not None:
            lines.append("  " + self.database.describe())
        lines.extend("  " + replica.describe() for replica in self.replicas)
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for ``status --json``)."""
        data = asdict(self)
        data["scale"] = self.scale
        data["healthy"] = self.healthy
        return data
