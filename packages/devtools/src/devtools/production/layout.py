"""Where the production simulation keeps its files inside the state folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devtools.environments.persistent import data_root
from devtools.paths import state_dir

ENVIRONMENT = "production"


@dataclass(frozen=True)
class Layout:
    """The files of one checkout's production simulation (all under ``.devtools/production``)."""

    project_root: Path
    root: Path

    @classmethod
    def of(cls, project_root: Path) -> Layout:
        """The layout of ``project_root`` (creates nothing but the state folder itself)."""
        return cls(project_root, state_dir(project_root) / ENVIRONMENT)

    @property
    def state(self) -> Path:
        """The checkout's state folder (``.devtools``)."""
        return self.root.parent

    @property
    def postgres(self) -> Path:
        """The persistent cluster's folder (its log is ``postgres.log`` in there)."""
        return data_root(self.state, ENVIRONMENT)

    @property
    def postgres_log(self) -> Path:
        """The PostgreSQL server log."""
        return self.postgres / "postgres.log"

    @property
    def logs(self) -> Path:
        """Replica and nginx logs."""
        return self.root / "logs"

    @property
    def nginx(self) -> Path:
        """nginx's prefix: its generated config and PID file."""
        return self.root / "nginx"

    @property
    def nginx_config(self) -> Path:
        """The config nginx runs with (regenerated on every rescale)."""
        return self.nginx / "nginx.conf"

    @property
    def nginx_pid(self) -> Path:
        """nginx's PID file (we track the master by PID and start time, not by this file)."""
        return self.nginx / "nginx.pid"

    @property
    def nginx_error_log(self) -> Path:
        """nginx's error log, also its stdout/stderr."""
        return self.logs / "nginx-error.log"

    @property
    def nginx_access_log(self) -> Path:
        """nginx's access log: one line per request with the replica that answered."""
        return self.logs / "nginx-access.log"

    def replica_log(self, name: str) -> Path:
        """The combined stdout/stderr of one gunicorn replica."""
        return self.logs / f"{name}.log"

    def make(self) -> None:
        """Create the folders that processes write into."""
        for folder in (self.root, self.logs, self.nginx):
            folder.mkdir(mode=0o755, parents=True, exist_ok=True)


def log_size(path: Path) -> int:
    """The current size of a log (0 when it does not exist yet): where new output will start."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def read_from(path: Path, offset: int) -> str:
    """What a log received after ``offset``."""
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
