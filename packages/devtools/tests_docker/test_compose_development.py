"""The development environment and the management commands on a real engine, through the CLI:
``dev`` (Ctrl-C keeps the database), ``flask``, ``psql``, ``compose``, ``status``, ``dev down``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from devtools import state
from devtools.compose import naming
from devtools.http import get_status
from devtools.ports import free_port
from devtools.waiting import wait_until

from .conftest import REPO_ROOT, docker_names

RECORD = "development-db"


@pytest.fixture
def cli_env(state_dir: Path) -> dict[str, str]:
    """The environment of a CLI run on this session's state folder, compose by default."""
    return {**os.environ, "DEVTOOLS_STATE_DIR": str(state_dir), "DEVTOOLS_BACKEND": "compose"}


def devtools(env: dict[str, str], *args: str, stdin: str | None = None, timeout: float = 300):
    """Run the devtools CLI to the end."""
    return subprocess.run(
        [sys.executable, "-c", "from devtools.cli import main; main()", *args],
        env=env,
        cwd=REPO_ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def services(project: str, *, running: bool) -> list[str]:
    """Services of ``project`` with a container (a running one when ``running``)."""
    command = ["ps", "--format", '{{.Label "com.docker.compose.service"}}']
    if not running:
        command.insert(1, "--all")
    return sorted(docker_names(*command, "--filter", f"label=com.docker.compose.project={project}"))


def test_dev_flask_psql_compose_status_and_down(cli_env: dict[str, str], state_dir: Path):
    project = naming.development_project(state_dir)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", "from devtools.cli import main; main()", "dev", "--port", str(port)],
        env=cli_env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_until(
            lambda: get_status("127.0.0.1", port, "/health") == 200,
            300,
            interval=0.2,
            what="the compose dev server",
        )
        assert get_status("127.0.0.1", port, "/users") == 200
        assert services(project, running=True) == ["db", "web"]
    finally:
        os.killpg(server.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        output = server.communicate(timeout=120)[0]
    assert server.returncode == 0, output
    assert f"development server:   http://127.0.0.1:{port}" in output
    assert "the database keeps running" in output
    assert get_status("127.0.0.1", port, "/health") is None
    assert services(project, running=True) == ["db"]
    record = state.read_record(state_dir, RECORD)
    assert record is not None
    assert record["backend"] == "compose"

    try:
        # The Flask CLI runs here, on the database in Docker: the routes and a user it adds.
        routes = devtools(cli_env, "flask", "routes")
        assert routes.returncode == 0, routes.stderr
        assert "/users/<int:user_id>" in routes.stdout
        # psql finds the environment's backend by its record, whatever the default.
        local_env = {**cli_env, "DEVTOOLS_BACKEND": "local"}
        query = "INSERT INTO users (email) VALUES ('dev@example.com'); SELECT count(*) FROM users;"
        psql = devtools(local_env, "psql", "development", stdin=query)
        assert psql.returncode == 0, psql.stderr
        assert "INSERT 0 1" in psql.stdout
        assert "(1 row)" in psql.stdout

        ps = devtools(cli_env, "compose", "ps", "--format", "{{.Service}} {{.State}}")
        assert ps.returncode == 0, ps.stderr
        assert ps.stdout.split() == ["db", "running"]

        status = devtools(cli_env, "status")
        row = next(line for line in status.stdout.splitlines() if line.startswith(RECORD))
        assert row.split()[1] == "running", status.stdout
        assert f"db {record['db_port']}" in row
        assert "compose: 1/1 up" in row

        kept = devtools(cli_env, "dev", "down")
        assert kept.returncode == 0, kept.stderr
        assert "is stopped (data kept in volume" in kept.stdout
        assert services(project, running=False) == []
        assert f"{project}_devdata" in docker_names("volume", "ls", "--format", "{{.Name}}")
        # The data survived: the next dev database still has the user.
        again = devtools(local_env, "psql", "development", stdin="SELECT 1;")
        assert "development is not running" in again.stderr
        count = devtools(
            cli_env, "flask", "shell", stdin="from application.models import User\n"
            "print('users:', User.query.count())\n",
        )  # fmt: skip
        assert "users: 1" in count.stdout, count.stderr
    finally:
        gone = devtools(cli_env, "dev", "down", "--volumes")
    assert gone.returncode == 0, gone.stderr
    assert "its data was deleted" in gone.stdout
    assert f"{project}_devdata" not in docker_names("volume", "ls", "--format", "{{.Name}}")
    assert state.read_record(state_dir, RECORD) is None
    twice = devtools(cli_env, "dev", "down")
    assert twice.stdout.strip() == "the development database is not running"


def test_dev_on_a_taken_port_starts_nothing(cli_env: dict[str, str], state_dir: Path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = devtools(cli_env, "dev", "--port", str(port))
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert services(naming.development_project(state_dir), running=False) == []
    assert state.read_record(state_dir, RECORD) is None


def test_flask_on_a_throwaway_compose_database(cli_env: dict[str, str], state_dir: Path):
    result = devtools({**cli_env, "APPLICATION_CONFIG": "testing"}, "flask", "db", "current")
    assert result.returncode == 0, result.stderr
    assert "(head)" in result.stdout
    assert not [name for name in docker_names("ps", "--all", "--format", "{{.Names}}")
                if name.startswith(naming.project_prefix(state_dir) + "test-")]  # fmt: skip


def test_compose_passthrough_refuses_what_it_cannot_name(cli_env: dict[str, str]):
    for environment, message in [
        ("testing", "testing projects live only as long as their test run"),
        ("staging", "unknown environment 'staging'"),
        ("scenario:nope", 'scenario nope is not up: start it with nox -s "scenario(nope)"'),
    ]:
        result = devtools(cli_env, "compose", "--env", environment, "ps")
        assert result.returncode == 1, result
        assert result.stderr.strip() == f"error: {message}" or message in result.stderr
    empty = devtools(cli_env, "compose")
    assert "give compose its arguments" in empty.stderr
