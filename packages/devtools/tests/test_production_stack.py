"""The local production simulation with real PostgreSQL, gunicorn and nginx (small scales)."""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from devtools import production, state
from devtools.config import load_settings
from devtools.errors import CommandError, ServiceStartError, UsageError
from devtools.ports import accepts_connections, free_port
from devtools.production import nginx, replicas
from devtools.production.procs import group_members
from devtools.secrets_store import secrets_file
from devtools.waiting import wait_until

from .conftest import REPO_ROOT


@dataclass
class Prod:
    """A temp checkout's production simulation, remembering every process and port it saw."""

    root: Path
    environ: dict[str, str]
    seen_groups: set[int] = field(default_factory=set)
    seen_ports: set[int] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.environ['APPLICATION_PORT']}"

    def up(self, scale: int) -> production.ProductionStatus:
        settings = load_settings(self.root, "production", self.environ)
        return self.remember(production.up(self.root, settings, scale=scale, environ=self.environ))

    def status(self) -> production.ProductionStatus:
        return self.remember(production.status(self.root))

    def remember(self, status: production.ProductionStatus) -> production.ProductionStatus:
        parts = [*status.replicas, status.nginx, status.database]
        for part in parts:
            if part is not None:
                self.seen_groups.add(part.pid)
                self.seen_ports.add(part.port)
        return status


def our_processes(root: Path, groups: set[int]) -> list[str]:
    """Live processes in a group we saw, or working or logging inside the checkout.

    Every service logs under the checkout's .devtools, so its stdout says whose it is (PostgreSQL's
    children run in groups of their own but inherit the postmaster's stdout).
    """
    found = []
    for pgid in groups:
        found += [f"{pid} (group {pgid})" for pid in group_members(pgid)]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            places = [os.readlink(entry / "cwd"), os.readlink(entry / "fd" / "1")]
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] != "Z" and any(p.startswith(str(root)) for p in places):
            found.append(f"{entry.name} {cmdline[:120]}")
    return found


@pytest.fixture
def prod(project: Path) -> Iterator[Prod]:
    """A temp checkout (production.json, nginx template, own random port); always down after."""
    shutil.copy(REPO_ROOT / "config" / "production.json", project / "config")
    (project / "docker" / "nginx").mkdir(parents=True)
    shutil.copy(
        REPO_ROOT / "docker" / "nginx" / "nginx.conf.template", project / "docker" / "nginx"
    )
    # One worker per replica keeps a 2-core CI machine responsive.
    environ = {**os.environ, "APPLICATION_PORT": str(free_port()), "GUNICORN_WORKERS": "1"}
    handle = Prod(project, environ)
    yield handle
    production.down(project, volumes=True)
    wait_until(
        lambda: not our_processes(project, handle.seen_groups),
        10,
        what="every process of the test to exit",
        on_timeout=lambda: "\n".join(our_processes(project, handle.seen_groups)),
    )
    busy = sorted(port for port in handle.seen_ports if accepts_connections(port))
    assert not busy, f"still listening: {busy}"


class Load:
    """A couple of threads sending GETs through nginx, bounded in count and time."""

    def __init__(self, url: str, threads: int = 2, seconds: float = 60, requests_max: int = 4000):
        self.url = url
        self.deadline = time.monotonic() + seconds
        self.remaining = requests_max
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.failures: list[str] = []
        self.replicas: collections.Counter[str] = collections.Counter()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(30)

    def _run(self) -> None:
        while not self.stopping.is_set() and time.monotonic() < self.deadline:
            with self.lock:
                if self.remaining <= 0:
                    return
                self.remaining -= 1
            try:
                # A new connection per request, as a browser opening the page would.
                response = requests.get(self.url, timeout=10)
                outcome = None if response.status_code == 200 else str(response.status_code)
            except requests.RequestException as error:
                outcome, response = repr(error), None
            with self.lock:
                if outcome is None and response is not None:
                    self.ok += 1
                    self.replicas[response.headers["X-Replica"]] += 1
                else:
                    self.failures.append(f"{outcome}")
            time.sleep(0.005)

    def settle(self, requests_more: int) -> None:
        """Wait until ``requests_more`` more requests succeeded."""
        target = self.ok + requests_more
        wait_until(lambda: self.ok >= target or bool(self.failures), 30, what="more requests")


def test_requests_spread_over_every_replica_and_status_tells_all(prod: Prod):
    started = prod.up(3)
    assert "created database application" in started.message
    assert started.message.splitlines()[-1].startswith("production started with 3 replicas in ")
    assert started.healthy
    assert started.url == prod.url + "/"
    assert [r.name for r in started.replicas] == ["replica-1", "replica-2", "replica-3"]
    assert len({r.port for r in started.replicas} | {started.nginx.port}) == 4  # type: ignore[union-attr]

    seen: collections.Counter[str] = collections.Counter()
    for _ in range(30):
        response = requests.get(prod.url + "/health", timeout=10)
        assert response.status_code == 200
        assert response.headers["Server"] == "nginx"  # no version
        seen[response.headers["X-Replica"]] += 1
    assert set(seen) == {"replica-1", "replica-2", "replica-3"}

    too_big = requests.post(prod.url + "/users", data=b"x" * (1024 * 1024 + 1), timeout=10)
    assert too_big.status_code == 413
    assert too_big.json()["error"] == "request_entity_too_large"

    again = prod.up(3)
    assert again.message == "production is already running with 3 replicas"
    assert [r.pid for r in again.replicas] == [r.pid for r in started.replicas]

    moved = {**prod.environ, "APPLICATION_PORT": str(free_port())}
    with pytest.raises(UsageError, match="run down first"):
        production.up(prod.root, load_settings(prod.root, "production", moved), scale=3, environ={})

    current = prod.status()
    assert current.healthy
    assert current.database is not None
    assert current.database.alive
    assert current.database.database == "application"
    assert "replica-3" in current.describe()
    assert current.to_json()["scale"] == 3

    assert "==> replica-2:" in production.logs(prod.root, "replica-2")
    everything = production.logs(prod.root, lines=5)
    for service in ("nginx", "postgres", "replica-1", "replica-3"):
        assert f"==> {service}:" in everything
    assert "GET /health HTTP/1.1" in production.logs(prod.root, "nginx", lines=40)

    stopped = production.down(prod.root)
    assert stopped.startswith("production stopped (nginx, 3 replicas, postgres); data kept in ")
    assert not our_processes(prod.root, prod.seen_groups)
    assert production.down(prod.root) == "production is not running, nothing to stop"


def test_rescale_under_load_loses_no_request(prod: Prod):
    first = prod.up(2)
    with Load(prod.url + "/users") as load:
        load.settle(20)
        bigger = prod.up(3)
        assert bigger.message == "rescaled from 2 to 3 replicas"
        load.settle(40)
        smaller = prod.up(1)
        assert smaller.message == "rescaled from 3 to 1 replica"
        load.settle(20)
        back = prod.up(2)
        load.settle(20)
    assert load.failures == []
    assert load.ok >= 100
    # The new replica served traffic, and only the first replica survived the scale-down.
    assert load.replicas["replica-3"] > 0
    assert [r.name for r in smaller.replicas] == ["replica-1"]
    assert smaller.replicas[0].pid == first.replicas[0].pid
    leaving = {r.pid for r in bigger.replicas} - {smaller.replicas[0].pid}
    assert not any(group_members(pid) for pid in leaving)
    assert back.healthy
    assert [r.name for r in back.replicas] == ["replica-1", "replica-2"]


def test_killed_replica_costs_no_client_error_and_rescale_replaces_it(prod: Prod):
    first = prod.up(2)
    victim = first.replicas[0]
    with Load(prod.url + "/health") as load:
        load.settle(20)
        os.killpg(victim.pid, signal.SIGKILL)
        wait_until(lambda: not prod.status().replicas[0].alive, 10, what="the replica to die")
        load.settle(40)
    assert load.failures == []

    hurt = prod.status()
    assert not hurt.healthy
    assert [(r.name, r.alive) for r in hurt.replicas] == [("replica-1", False), ("replica-2", True)]
    assert "DEAD" in hurt.describe()

    repaired = prod.up(2)
    assert repaired.message == "replaced dead replica-1; 2 replicas running"
    assert repaired.healthy
    assert repaired.replicas[0].pid != victim.pid
    assert repaired.replicas[1].pid == first.replicas[1].pid


def test_data_survives_down_and_up_and_volumes_drop_it(prod: Prod):
    prod.up(1)
    created = requests.post(prod.url + "/users", json={"email": "kept@example.com"}, timeout=10)
    assert created.status_code == 201
    user = prod.url + created.headers["Location"]

    assert "data kept" in production.down(prod.root)
    prod.up(1)
    assert requests.get(user, timeout=10).json()["email"] == "kept@example.com"

    dropped = production.down(prod.root, volumes=True)
    assert dropped.endswith("deleted its database and generated secrets")
    assert not secrets_file(prod.root / ".devtools", "production").exists()
    prod.up(1)
    assert requests.get(user, timeout=10).status_code == 404


def test_failed_migrations_leave_nothing_running(
    prod: Prod, tmp_path_factory: pytest.TempPathFactory
):
    broken = tmp_path_factory.mktemp("broken")
    (broken / "application").mkdir()
    (broken / "application" / "__init__.py").write_text("raise RuntimeError('broken app')\n")
    prod.environ["PYTHONPATH"] = str(broken)
    with pytest.raises(CommandError, match="broken app"):
        prod.up(1)
    state_dir = prod.root / ".devtools"
    assert state.read_record(state_dir, "production") is None
    assert state.read_record(state_dir, "production-db") is None
    assert not our_processes(prod.root, set())


def test_interrupted_up_stops_what_it_started(prod: Prod, monkeypatch: pytest.MonkeyPatch):
    started: list[int] = []
    original = replicas.start_replicas

    def remember_replicas(*args: object, **kwargs: object) -> list[replicas.Replica]:
        result = original(*args, **kwargs)  # type: ignore[arg-type]
        started.extend(replica.process.pid for replica in result)
        return result

    def interrupted(self: nginx.Nginx, port: int, on_spawn: object = None) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("devtools.production.stack.start_replicas", remember_replicas)
    monkeypatch.setattr(nginx.Nginx, "start", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prod.up(2)
    assert len(started) == 2
    assert not any(group_members(pid) for pid in started)
    assert state.read_record(prod.root / ".devtools", "production") is None
    assert not our_processes(prod.root, set(started))
    assert not production.status(prod.root).running


@pytest.mark.parametrize("moment", ["database", "replicas"])
def test_ctrl_c_during_up_stops_what_it_started(prod: Prod, moment: str):
    script = (
        "import os, sys; from pathlib import Path; from devtools import production; "
        "from devtools.config import load_settings; root = Path(sys.argv[1]); "
        "settings = load_settings(root, 'production', os.environ); "
        "production.up(root, settings, scale=2, environ=os.environ)"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(prod.root)],
        env=prod.environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    state_dir = prod.root / ".devtools"

    def reached() -> bool:
        # "database": up has begun (postgres starts, then migrations); "replicas": postgres
        # runs, the migrations are applied and the first replica was spawned.
        record = state.read_record(state_dir, "production")
        return record is not None and (moment == "database" or bool(record["starting"]))

    try:
        wait_until(reached, 60, interval=0.005, what=f"up to reach the {moment}")
        record = state.read_record(state_dir, "production")
        assert record is not None
        spawned = {data["process"]["pid"] for data in record["starting"]}
        child.send_signal(signal.SIGINT)
        output, _ = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode != 0
    assert b"KeyboardInterrupt" in output
    assert state.read_record(state_dir, "production") is None
    assert state.read_record(state_dir, "production-db") is None
    assert not our_processes(prod.root, spawned)


def test_failed_rescale_keeps_the_running_stack_and_a_broken_one_is_restarted(
    prod: Prod, monkeypatch: pytest.MonkeyPatch
):
    running = prod.up(1)
    failing = [sys.executable, "-c", "import sys; print('replica boom'); sys.exit(3)"]
    with monkeypatch.context() as patch:
        patch.setattr(replicas, "gunicorn_argv", lambda port, workers: failing)
        with pytest.raises(ServiceStartError, match=r"(?s)replica-2 .*exited with code 3.*boom"):
            prod.up(2)
    after = prod.status()
    assert after.healthy
    assert [(r.name, r.pid) for r in after.replicas] == [("replica-1", running.replicas[0].pid)]
    assert requests.get(prod.url + "/health", timeout=10).status_code == 200

    assert after.nginx is not None
    os.killpg(after.nginx.pid, signal.SIGKILL)
    wait_until(lambda: not prod.status().nginx.alive, 10, what="nginx to die")  # type: ignore[union-attr]
    restarted = prod.up(1)
    last = restarted.message.splitlines()[-1]
    assert last.startswith("the previous stack was broken (nginx is not running), so it was")
    assert restarted.healthy
    assert restarted.replicas[0].pid != running.replicas[0].pid
