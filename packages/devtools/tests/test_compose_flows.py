"""The compose backend's decisions with a fake engine: what up, down, status and logs do in each
state (nothing up, up, half-up, up on the other backend). The real engine is in tests_docker/."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from devtools import state
from devtools.backends import Environment
from devtools.compose import backend as compose_backend
from devtools.compose import images, naming
from devtools.compose.backend import ComposeBackend
from devtools.compose.project import ComposeError, ContainerInfo
from devtools.environments import scenario as scenarios
from devtools.errors import PortInUseError, ServiceStartError, UsageError
from devtools.ports import free_port

from .conftest import REPO_ROOT

SERVICES = {
    "development": ["db", "web"],
    "testing": ["db"],
    "scenario": ["db", "web"],
    "production": ["db", "web", "nginx"],
}


class Engine:
    """What the fake projects share: containers and volumes by project, and every call."""

    def __init__(self) -> None:
        self.containers: dict[str, list[ContainerInfo]] = {}
        self.volumes: set[str] = set()
        self.calls: list[tuple[Any, ...]] = []
        self.fail_up: str | None = None

    def kinds(self, action: str) -> list[tuple[Any, ...]]:
        return [call for call in self.calls if call[0] == action]


def container(project: str, service: str, number: int, **changes: Any) -> ContainerInfo:
    values: dict[str, Any] = {
        "name": f"{project}-{service}-{number}",
        "service": service,
        "number": number,
        "status": "running",
        "health": "healthy",
        "hostname": f"{service}{number}",
        "published": (),
    }
    values.update(changes)
    return ContainerInfo(**values)


class FakeProject:
    """Stands in for ComposeProject: containers appear on up and go on down."""

    def __init__(self, engine: Engine, name: str, file: Path, variables: Mapping[str, str]):
        self.engine = engine
        self.name = name
        self.file = file
        self.variables = dict(variables)
        self.environment = file.stem

    def containers(self) -> list[ContainerInfo]:
        return list(self.engine.containers.get(self.name, []))

    def build(self, services: Sequence[str]) -> None:
        self.engine.calls.append(("build", self.name, tuple(services)))

    def up(
        self,
        services: Sequence[str] | None = None,
        *,
        scales: Mapping[str, int] | None = None,
        wait: bool = False,
        wait_timeout: int | None = None,
        recreate: bool = True,
    ) -> None:
        self.engine.calls.append(("up", self.name, tuple(services or ()), dict(scales or {})))
        if self.engine.fail_up:
            raise ComposeError(self.engine.fail_up)
        wanted = list(services or SERVICES[self.environment])
        keep = [c for c in self.containers() if c.service not in wanted]
        for service in wanted:
            count = (scales or {}).get(service, 1)
            keep += [container(self.name, service, n) for n in range(1, count + 1)]
        self.engine.containers[self.name] = keep
        if self.environment == "production":
            self.engine.volumes.add(f"{self.name}_pgdata")
        if self.environment == "development":
            self.engine.volumes.add(f"{self.name}_devdata")

    def stop(self, services: Sequence[str], timeout: int | None = None) -> None:
        self.engine.calls.append(("stop", self.name, tuple(services)))
        self.engine.containers[self.name] = [
            container(self.name, c.service, c.number, status="exited")
            if c.service in services
            else c
            for c in self.containers()
        ]

    def argv(self, *args: str) -> list[str]:
        # The "compose" command: exits with the code it is given, else at once with 0.
        self.engine.calls.append(("compose", self.name, args))
        code = args[1] if args[:1] == ("exit",) else "0"
        return [sys.executable, "-c", f"raise SystemExit({code})"]

    def command_environment(self) -> dict[str, str]:
        return dict(os.environ)

    def down(self, *, volumes: bool, timeout: int | None = None) -> None:
        self.engine.calls.append(("down", self.name, volumes))
        self.engine.containers.pop(self.name, None)
        if volumes:
            self.engine.volumes.discard(f"{self.name}_pgdata")
            self.engine.volumes.discard(f"{self.name}_devdata")

    def port(self, service: str, private_port: int, index: int = 1) -> int:
        return {"db": 40001, "web": 40002}[service]

    def logs(self, services: Sequence[str] = (), tail: int = 50) -> str:
        return f"logs of {','.join(services) or 'all'} ({tail})"

    def container_logs(self, name: str, tail: int = 50) -> str:
        return f"logs of {name} ({tail})"

    def logs_tail(self, services: Sequence[str] = (), tail: int = 30) -> str:
        return "(log tail)"

    def image_exists(self, tag: str) -> bool:
        return True

    def volume_exists(self, name: str) -> bool:
        return name in self.engine.volumes


@pytest.fixture
def engine() -> Engine:
    return Engine()


@pytest.fixture
def backend(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ComposeBackend:
    """A compose backend whose Docker is the fake engine and whose waits pass at once."""
    env = Environment(REPO_ROOT, {"PATH": "/usr/bin:/bin", "APPLICATION_PORT": str(free_port())})
    env.state_dir = tmp_path / "state"
    env.state_dir.mkdir()
    created = ComposeBackend(env)
    monkeypatch.setattr(created, "docker", lambda: "docker")
    monkeypatch.setattr(
        created,
        "project",
        lambda environment, name, variables: FakeProject(
            engine, name, REPO_ROOT / "docker" / f"{environment}.yml", variables
        ),
    )
    for wait in ("wait_database", "wait_http", "_wait_nginx_sees"):
        monkeypatch.setattr(created, wait, lambda *args: 0.0)
    return created


def lines_of(call: Any) -> list[str]:
    out: list[str] = []
    call(out.append)
    return out


# --- test databases -------------------------------------------------------------------


def test_test_database_is_brought_down_with_its_files(backend: ComposeBackend, engine: Engine):
    with backend.test_database() as url:
        (project,) = engine.containers
        assert url.startswith("postgresql://postgres:")
        assert url.endswith("@127.0.0.1:40001/postgres")
        secret = backend.workdir(project) / "secrets" / "db_password"
        assert secret.read_text() == url.split(":")[2].split("@")[0]
    assert engine.kinds("down") == [("down", project, True)]
    assert not backend.workdir(project).exists()


def test_a_failed_test_database_up_is_brought_down(backend: ComposeBackend, engine: Engine):
    engine.fail_up = "docker compose up failed"
    with pytest.raises(ComposeError), backend.test_database():
        pass
    assert len(engine.kinds("down")) == 1
    assert not list((backend.state_dir / "compose").glob("*"))


# --- scenarios ------------------------------------------------------------------------


@pytest.fixture
def scenario_tools(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The scenarios CLI and migrations replaced: records what ran, loads nothing."""
    ran: list[list[str]] = []
    monkeypatch.setattr(scenarios, "default_runner", lambda: "scenario-run")
    monkeypatch.setattr(scenarios, "known_scenarios", lambda runner: ["foo", "users"])
    monkeypatch.setattr(compose_backend.application, "migrate", lambda env: "")

    def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        ran.append(argv)
        assert kwargs["env"]["SCENARIO_DATABASE_URL"].startswith("postgresql://")
        return subprocess.CompletedProcess(argv, 3 if "--fail" in argv else 0)

    monkeypatch.setattr(compose_backend.subprocess, "run", run)
    return ran


def test_scenario_up_records_it_and_prints_the_lines(
    backend: ComposeBackend, engine: Engine, scenario_tools: list[list[str]]
):
    lines = lines_of(lambda echo: backend.scenario_up("users", ["-n", "3"], echo))
    assert scenario_tools == [["scenario-run", "users", "-n", "3"]]
    assert lines[1].startswith("scenario users is up (compose project devtools-")
    assert lines[2] == "  app:   http://127.0.0.1:40002"
    assert lines[3].startswith("  dsn:   postgresql://postgres:")
    assert lines[5] == '  down:  nox -s "scenario(users)" -- down'
    record = state.read_record(backend.state_dir, "scenario-users")
    assert record is not None
    assert (record["backend"], record["status"], record["app_port"]) == (
        "compose",
        "running",
        40002,
    )
    ups = [call[2] for call in engine.kinds("up")]
    assert ups == [("db",), ("web",)]

    again = lines_of(lambda echo: backend.scenario_up("users", [], echo))
    assert again[0].startswith("scenario users is already up")
    assert again[1:] == lines[2:]
    assert len(scenario_tools) == 1

    listed = lines_of(backend.scenario_list)
    assert listed[1].split()[:3] == ["users", "http://127.0.0.1:40002", "40001"]
    assert listed[1].endswith("running")


def test_a_half_running_scenario_is_cleaned_up_first(
    backend: ComposeBackend, engine: Engine, scenario_tools: list[list[str]]
):
    backend.scenario_up("users", [], lambda line: None)
    (project,) = engine.containers
    engine.containers[project] = [container(project, "db", 1)]
    listed = lines_of(backend.scenario_list)
    assert listed[1].endswith("dead (run down)")
    lines = lines_of(lambda echo: backend.scenario_up("users", [], echo))
    assert lines[0] == "scenario users was left half-running; cleaning it up first"
    assert engine.kinds("down") == [("down", project, True)]
    assert len(scenario_tools) == 2


def test_a_failing_scenario_is_removed_with_its_record(
    backend: ComposeBackend, engine: Engine, scenario_tools: list[list[str]]
):
    with pytest.raises(scenarios.ScenarioFailed, match=r"exit code 3"):
        backend.scenario_up("users", ["--fail"], lambda line: None)
    assert engine.containers == {}
    assert state.read_record(backend.state_dir, "scenario-users") is None
    assert not list((backend.state_dir / "compose").glob("*scenario*"))


def test_scenario_down_and_down_again(
    backend: ComposeBackend, engine: Engine, scenario_tools: list[list[str]]
):
    backend.scenario_up("users", [], lambda line: None)
    said: list[str] = []
    assert backend.scenario_down("users", said.append) is True
    assert backend.scenario_down("users", said.append) is False
    assert said == [
        "scenario users is down; its database was deleted",
        "scenario users is not up; nothing to do",
    ]


def test_containers_without_a_record_are_removed(backend: ComposeBackend, engine: Engine):
    project = naming.scenario_project(backend.state_dir, "users")
    engine.containers[project] = [container(project, "db", 1)]
    said = lines_of(lambda echo: backend.scenario_down("users", echo))
    assert said == ["scenario users was not recorded as up; removed its leftover containers"]
    assert engine.containers == {}


def test_a_scenario_of_the_local_backend_is_left_alone(backend: ComposeBackend, engine: Engine):
    state.write_record(backend.state_dir, "scenario-users", {"kind": "scenario", "name": "users"})
    with pytest.raises(UsageError, match="running on the local backend"):
        backend.scenario_down("users", print)
    assert lines_of(backend.scenario_list) == [
        "no scenario is up on compose",
        "(1 more on the local backend: list them with --backend local)",
    ]
    assert engine.calls == []


# --- production -----------------------------------------------------------------------


def test_prod_up_rescale_status_logs_down(backend: ComposeBackend, engine: Engine):
    lines = lines_of(lambda echo: backend.prod_up(3, echo))
    assert lines[1].startswith("production started with 3 replicas in ")
    assert [line.split()[0] for line in lines[4:]] == ["nginx", "db", "web", "web", "web"]
    project = naming.production_project(backend.state_dir)
    workdir = backend.workdir(project)
    assert (workdir / "secrets" / "db_password").stat().st_mode & 0o777 == 0o644
    assert "resolver 127.0.0.11" in (workdir / "nginx.conf").read_text()
    assert engine.kinds("up")[-1][3] == {"web": 3}

    assert lines_of(lambda echo: backend.prod_up(1, echo))[0] == "rescaled from 3 to 1 replica"
    assert lines_of(lambda echo: backend.prod_up(1, echo))[0] == (
        "production is already running with 1 replica"
    )
    engine.containers[project] = [
        container(project, c.service, c.number, status="exited") if c.service == "web" else c
        for c in engine.containers[project]
    ]
    assert lines_of(lambda echo: backend.prod_up(1, echo))[0] == (
        "restarted stopped containers; 1 replica running"
    )

    status = lines_of(backend.prod_status)
    assert status[0].startswith("production: http://127.0.0.1:")
    assert lines_of(lambda echo: backend.prod_logs(None, 7, echo)) == ["logs of all (7)"]
    assert lines_of(lambda echo: backend.prod_logs("postgres", 7, echo)) == ["logs of db (7)"]
    assert lines_of(lambda echo: backend.prod_logs("replica-1", 7, echo)) == [
        f"logs of {project}-web-1 (7)"
    ]
    with pytest.raises(UsageError, match=r"services: db, nginx, web, web-1"):
        backend.prod_logs("web-9", 7, print)
    with pytest.raises(UsageError, match="--lines"):
        backend.prod_logs(None, 0, print)

    said = lines_of(lambda echo: backend.prod_down(False, echo))
    assert said == [
        "production stopped (nginx, 1 replica, postgres); "
        f"data kept in volume {project}_pgdata (down --volumes deletes it)"
    ]
    assert lines_of(backend.prod_status) == ["production is not running"]
    assert lines_of(lambda echo: backend.prod_logs(None, 5, echo)) == [
        "production is not running, so it has no logs"
    ]
    said = lines_of(lambda echo: backend.prod_down(True, echo))
    assert said == ["production is not running; deleted its database and generated secrets"]
    said = lines_of(lambda echo: backend.prod_down(True, echo))
    assert said == ["production is not running, nothing to stop"]


def test_a_moved_port_needs_a_down_first(backend: ComposeBackend, engine: Engine):
    backend.prod_up(1, lambda line: None)
    moved = ComposeBackend(
        Environment(REPO_ROOT, {**backend.env.environ, "APPLICATION_PORT": str(free_port())})
    )
    moved.env.state_dir = backend.state_dir
    moved.docker = backend.docker  # type: ignore[method-assign]
    moved.project = backend.project  # type: ignore[method-assign]
    with pytest.raises(UsageError, match="run down first to move it"):
        moved.prod_up(2, print)


def test_a_half_started_production_is_restarted_keeping_its_data(
    backend: ComposeBackend, engine: Engine
):
    backend.prod_up(2, lambda line: None)
    project = naming.production_project(backend.state_dir)
    engine.containers[project] = [container(project, "db", 1)]
    lines = lines_of(lambda echo: backend.prod_up(2, echo))
    assert lines[0] == "production was left half-running; restarting it (data is kept)"
    assert ("down", project, False) in engine.calls
    assert f"{project}_pgdata" in engine.volumes


def test_a_failed_first_up_removes_what_it_created(backend: ComposeBackend, engine: Engine):
    engine.fail_up = "docker compose up failed: web-1 is unhealthy"
    with pytest.raises(ComposeError, match="unhealthy"):
        backend.prod_up(2, lambda line: None)
    project = naming.production_project(backend.state_dir)
    # The volume did not exist before this up, so it goes too.
    assert engine.kinds("down") == [("down", project, True)]
    assert state.read_record(backend.state_dir, "production") is None


def test_a_taken_port_stops_prod_up_before_anything(
    backend: ComposeBackend, engine: Engine, monkeypatch: pytest.MonkeyPatch
):
    def taken(port: int, **kwargs: Any) -> None:
        raise PortInUseError(f"port {port} is already in use")

    monkeypatch.setattr(compose_backend, "require_free_port", taken)
    with pytest.raises(PortInUseError):
        backend.prod_up(1, print)
    assert engine.calls == []
    assert state.read_record(backend.state_dir, "production") is None


def test_production_of_the_local_backend_is_left_alone(backend: ComposeBackend, engine: Engine):
    state.write_record(backend.state_dir, "production", {"kind": "production", "backend": "local"})
    for command in (
        lambda: backend.prod_up(1, print),
        lambda: backend.prod_status(print),
        lambda: backend.prod_down(True, print),
    ):
        with pytest.raises(UsageError, match="local backend"):
            command()
    assert engine.calls == []


def test_a_missing_offline_image_stops_prod_up(
    backend: ComposeBackend, engine: Engine, monkeypatch: pytest.MonkeyPatch
):
    path = images.images_file(backend.state_dir)
    path.parent.mkdir(parents=True)
    path.write_text('{"NGINX_IMAGE": "devtools-offline/nginx:0", "PULL_POLICY": "never"}')
    monkeypatch.setattr(FakeProject, "image_exists", lambda self, tag: False)
    with pytest.raises(images.ImageMissing, match="nginx:0"):
        backend.prod_up(1, print)
    assert engine.calls == []


# --- the crash watch --------------------------------------------------------------------


def test_a_crashed_container_ends_the_wait_with_its_log(engine: Engine, tmp_path: Path):
    project = FakeProject(engine, "p", REPO_ROOT / "docker" / "production.yml", {})
    engine.containers["p"] = [container("p", "nginx", 1, restarts=2)]
    watch = compose_backend.CrashWatch(project, ["nginx"])  # type: ignore[arg-type]
    with pytest.raises(ServiceStartError, match=r"p-nginx-1 failed while starting \(restarted 2"):
        watch.check()
    engine.containers["p"] = [container("p", "nginx", 1, status="exited")]
    watch.last = 0.0
    with pytest.raises(ServiceStartError, match=r"\(exited\)"):
        watch.check()
    engine.containers["p"] = [container("p", "nginx", 1)]
    watch.last = 0.0
    watch.check()


# --- development, flask, psql and the compose passthrough ----------------------------------


@pytest.fixture
def migrations(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    """The migrations devtools would run from the host, recorded instead of run."""
    done: list[dict[str, str]] = []
    monkeypatch.setattr(compose_backend.application, "migrate", lambda env: done.append(env))
    return done


def test_dev_serves_then_stops_only_the_server(
    backend: ComposeBackend, engine: Engine, migrations: list[dict[str, str]]
):
    port = free_port()
    lines: list[str] = []
    assert backend.dev_serve(port, lines.append) == 0
    project = naming.development_project(backend.state_dir)
    assert [call[:3] for call in engine.calls if call[0] in ("up", "build", "stop")] == [
        ("up", project, ("db",)),
        ("build", project, ("web",)),
        ("up", project, ("web",)),
        ("stop", project, ("web",)),
    ]
    assert (
        f"development server:   http://127.0.0.1:{port}  (Ctrl-C stops it; the data stays)" in lines
    )
    assert lines[-1].startswith("development server stopped; the database keeps running")
    assert migrations[0]["POSTGRES_PORT"] == "40001"
    record = state.read_record(backend.state_dir, "development-db")
    assert record is not None
    assert (record["backend"], record["status"], record["app_port"]) == ("compose", "running", port)
    assert record["variables"]["DEV_PORT"] == str(port)
    # A second run finds the database up: no second start, no second migration.
    backend.dev_serve(port, lambda line: None)
    assert [call for call in engine.kinds("up") if call[2] == ("db",)] == engine.kinds("up")[:1]
    assert len(migrations) == 1


def test_dev_down_keeps_the_data_unless_volumes(
    backend: ComposeBackend, engine: Engine, migrations: list[dict[str, str]]
):
    with backend.app_environment("development", lambda line: None) as env:
        assert (env["POSTGRES_HOSTNAME"], env["POSTGRES_PORT"]) == ("127.0.0.1", "40001")
    assert backend.database_url("development") is not None
    project = naming.development_project(backend.state_dir)
    kept = lines_of(lambda echo: backend.dev_down(False, echo))
    assert kept == [
        f"the development database is stopped (data kept in volume {project}_devdata; "
        "down --volumes deletes it)"
    ]
    assert backend.database_url("development") is None
    gone = lines_of(lambda echo: backend.dev_down(True, echo))
    assert gone == ["the development database is not running; its data was deleted"]
    assert engine.volumes == set()
    again = lines_of(lambda echo: backend.dev_down(False, echo))
    assert again == ["the development database is not running"]


def test_a_local_development_database_is_left_alone(backend: ComposeBackend, engine: Engine):
    state.write_record(
        backend.state_dir, "development-db", {"kind": "database", "backend": "local"}
    )
    with pytest.raises(UsageError, match="running on the local backend"):
        backend.dev_down(False, lambda line: None)
    assert engine.calls == []


def test_flask_on_production_needs_it_running(backend: ComposeBackend):
    with (
        pytest.raises(UsageError, match="production is not running on compose"),
        backend.app_environment("production", lambda line: None),
    ):
        pass
    assert backend.database_url("production") is None
    assert backend.database_url("users") is None


def test_compose_passthrough_runs_on_the_environment_project(
    backend: ComposeBackend, engine: Engine
):
    assert backend.compose("development", ["exit", "3"]) == 3
    project = naming.development_project(backend.state_dir)
    assert engine.kinds("compose") == [("compose", project, ("exit", "3"))]
    # Not up yet: the password file compose's `up` needs is staged.
    assert (backend.workdir(project) / "secrets" / "db_password").is_file()
    assert backend.compose("production", ["ps"]) == 0
    production = naming.production_project(backend.state_dir)
    assert (backend.workdir(production) / "nginx.conf").is_file()
    for environment, message in [
        ("testing", "testing projects live only as long as their test run"),
        ("staging", "unknown environment 'staging'"),
        ("scenario:users", r'scenario users is not up: start it with nox -s "scenario\(users\)"'),
    ]:
        with pytest.raises(UsageError, match=message):
            backend.compose(environment, ["ps"])


def test_compose_passthrough_and_psql_on_a_running_scenario(
    backend: ComposeBackend, engine: Engine, scenario_tools: list[list[str]]
):
    backend.scenario_up("users", [], lambda line: None)
    assert backend.compose("scenario:users", ["logs"]) == 0
    project = naming.scenario_project(backend.state_dir, "users")
    assert engine.kinds("compose")[-1] == ("compose", project, ("logs",))
    url = backend.database_url("users")
    assert url is not None
    assert url.startswith("postgresql://postgres:")
    assert url.endswith("@127.0.0.1:40001/application")


# --- status rows --------------------------------------------------------------------


def status_row(backend: ComposeBackend, name: str) -> list[str]:
    """The status table's row of ``name``, split on runs of two or more spaces."""
    import re

    from devtools import inventory

    (line,) = [
        line
        for line in inventory.status_lines(backend.state_dir, backend)
        if line.startswith(name + " ")
    ]
    return re.split(r"\s{2,}", line.strip())


def test_status_rows_follow_the_containers(
    backend: ComposeBackend, engine: Engine, migrations: list[dict[str, str]]
):
    port = free_port()
    backend.dev_serve(port, lambda line: None)
    # The dev server has stopped with `nox -s dev`: only the database counts.
    _, condition, ports, where, _age = status_row(backend, "development-db")
    assert (condition, where) == ("running", "compose: 1/1 up")
    assert ports == f"app {port}, db 40001"

    backend.prod_up(2, lambda line: None)
    production = naming.production_project(backend.state_dir)
    assert status_row(backend, "production")[1:4] == [
        "running",
        f"nginx {backend.env.settings('production').get('APPLICATION_PORT')}",
        "compose: 4/4 up",
    ]
    engine.containers[production][-1] = container(production, "web", 2, status="exited")
    assert status_row(backend, "production")[1::2] == ["degraded", "compose: 3/4 up"]
    engine.containers[production] = [
        container(production, c.service, c.number, status="exited")
        for c in engine.containers[production]
    ]
    assert status_row(backend, "production")[1::2] == ["stopped", "compose: 0/4 up"]


def test_status_rows_without_docker_or_project(
    backend: ComposeBackend, monkeypatch: pytest.MonkeyPatch
):
    from devtools.compose.engine import DockerUnavailable

    state.write_record(
        backend.state_dir, "scenario-users", {"kind": "scenario", "backend": "compose"}
    )
    assert status_row(backend, "scenario-users")[1:4] == ["unknown", "-", "compose: no project"]

    def no_docker() -> str:
        raise DockerUnavailable("Docker is not installed")

    record = {"kind": "production", "backend": "compose", "project": "p", "port": 8080}
    state.write_record(backend.state_dir, "production", record)

    def failing_project(*args: Any) -> FakeProject:
        raise ComposeError("docker compose ps failed")

    monkeypatch.setattr(backend, "project", failing_project)
    assert status_row(backend, "production")[1:4] == ["unknown", "nginx 8080", "compose: error"]
    monkeypatch.setattr(backend, "docker", no_docker)
    assert status_row(backend, "production")[1:4] == ["unknown", "nginx 8080", "compose: no docker"]
