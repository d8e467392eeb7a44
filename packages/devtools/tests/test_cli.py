"""The devtools CLI: config, flask, psql, dev, status and clean, on a temp checkout."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from devtools import state
from devtools.cli import cli, main
from devtools.environments import persistent
from devtools.http import get_status
from devtools.local_backend import age
from devtools.ports import free_port
from devtools.waiting import wait_until

from .conftest import cli_argv, finish, start_cli


def invoke(project: Path, *args: str, env: dict[str, str] | None = None):
    """Run the CLI in-process on ``project``."""
    return CliRunner().invoke(cli, ["--project-root", str(project), *args], env=env)


def test_config_shows_sources_and_masks_secrets(configured_project):
    result = invoke(configured_project, "config", "production", env={"GUNICORN_WORKERS": "3"})
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split()[1:] for line in result.output.splitlines()[1:]}
    assert lines["GUNICORN_WORKERS"] == ["3", "environment"]
    assert lines["APPLICATION_PORT"] == ["8080", "file"]
    assert lines["POSTGRES_PASSWORD"][:1] == ["********"]
    assert "generated on first up" in result.output


def test_config_errors_are_one_line(configured_project):
    (configured_project / "config" / "testing.json").write_text("[")
    result = invoke(configured_project, "config", "testing")
    assert result.exit_code != 0
    assert isinstance(result.exception, Exception)
    assert "testing.json: invalid JSON" in str(result.exception)


def test_unknown_environment_is_rejected_by_click(configured_project):
    result = invoke(configured_project, "config", "staging")
    assert result.exit_code == 2
    assert "'staging' is not one of" in result.output


def test_psql_on_something_not_running_says_how_to_start_it(configured_project):
    for target, hint in [
        ("production", "nox -s prod"),
        ("development", "nox -s dev"),
        ("users", 'nox -s "scenario(users)"'),
    ]:
        result = invoke(configured_project, "psql", target)
        assert result.exit_code == 1
        assert f"{target} is not running; start it with {hint}" in str(result.exception)


def run_main(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``devtools`` as a real process (through main(), as nox does)."""
    return subprocess.run(
        cli_argv(project, *args), capture_output=True, text=True, timeout=120, check=False
    )


def test_main_prints_user_errors_as_one_line(configured_project):
    result = run_main(configured_project, "psql", "production")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: production is not running; start it with nox -s prod"
    ]
    result = run_main(configured_project, "config", "nope")
    assert result.returncode == 2


def test_flask_passthrough_keeps_quoted_arguments(configured_project, tmp_path):
    directory = tmp_path / "migrations"
    import shutil

    from application.extensions import MIGRATIONS_DIRECTORY

    shutil.copytree(MIGRATIONS_DIRECTORY, directory)
    result = run_main(
        configured_project,
        "flask",
        "--env",
        "testing",
        "db",
        "revision",
        "-d",
        str(directory),
        "-m",
        "add name; and more",
    )
    assert result.returncode == 0, result.stderr
    created = [p for p in (directory / "versions").glob("*.py") if "add_name" in p.name]
    assert len(created) == 1
    assert '"""add name; and more' in created[0].read_text()


def test_flask_exit_code_is_the_commands(configured_project):
    result = run_main(configured_project, "flask", "--env", "testing", "no-such-command")
    assert result.returncode == 2
    assert "No such command" in result.stderr


def test_sigterm_to_a_flask_command_stops_the_command_too(configured_project):
    # `flask run` stands in for any long command (a shell, a migration); SIGTERM, unlike
    # Ctrl-C in a terminal, reaches only devtools, which must pass it on.
    port = free_port()
    child = start_cli(configured_project, "flask", "--env", "testing", "run", "--port", str(port))
    try:
        wait_until(lambda: get_status("127.0.0.1", port) == 200, 60, interval=0.1, what="flask run")
    finally:
        child.terminate()
        finish(child, 30)
    assert get_status("127.0.0.1", port) is None


def test_flask_on_development_starts_the_database_and_keeps_it(configured_project):
    result = run_main(configured_project, "flask", "routes")
    assert result.returncode == 0, result.stderr
    assert "/users/<int:user_id>" in result.stdout
    state_dir = configured_project / ".devtools"
    info = persistent.running_database(state_dir, "development")
    assert info is not None
    status = invoke(configured_project, "status")
    assert "development-db" in status.output
    assert "running" in status.output
    down = invoke(configured_project, "dev", "down")
    assert "is stopped" in down.output
    assert not info.process.alive()
    assert "development data kept" in invoke(configured_project, "status").output
    again = invoke(configured_project, "dev", "down", "--volumes")
    assert "not running; data deleted" in again.output
    assert not (state_dir / "development" / "postgres").exists()


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_dev_serves_until_ctrl_c_and_keeps_the_database(configured_project, stop: str):
    port = free_port()
    child = start_cli(configured_project, "dev", "--port", str(port))
    try:
        wait_until(
            lambda: get_status("127.0.0.1", port) == 200, 60, interval=0.1, what="dev server"
        )
        assert get_status("127.0.0.1", port, "/users") == 200
    finally:
        if stop == "ctrl-c":
            os.killpg(child.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        else:
            child.terminate()  # reaches devtools only, not the server it started
        output = finish(child, 30)
    assert child.returncode == 0, output
    assert f"http://127.0.0.1:{port}" in output
    assert get_status("127.0.0.1", port) is None
    state_dir = configured_project / ".devtools"
    info = persistent.running_database(state_dir, "development")
    assert info is not None, output
    assert info.process.alive()


def test_dev_on_a_taken_port_is_a_clear_error_and_starts_nothing(configured_project):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run_main(configured_project, "dev", "--port", str(port))
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert state.all_records(configured_project / ".devtools") == {}


def test_clean_removes_dead_records_and_is_safe_twice(configured_project):
    state_dir = configured_project / ".devtools"
    result = run_main(configured_project, "flask", "routes")
    assert result.returncode == 0, result.stderr
    info = persistent.running_database(state_dir, "development")
    assert info is not None
    os.kill(info.process.pid, signal.SIGKILL)
    wait_until(lambda: not info.process.alive(), 10, what="postgres to die")
    assert "dead" in invoke(configured_project, "status").output
    first = invoke(configured_project, "clean")
    assert "forgot dead database record development-db" in first.output
    second = invoke(configured_project, "clean")
    assert second.output.strip() == "nothing to clean"


def test_age_formats():
    assert age(5) == "5s"
    assert age(125) == "2m05s"
    assert age(7300) == "2h01m"


def test_no_project_root_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 1
    assert "no project root" in result.output


def test_main_exit_codes(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["devtools", "--help"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0
    assert "Throwaway databases" in capsys.readouterr().out


def test_scenario_commands_through_the_cli(configured_project):
    up = invoke(configured_project, "scenario", "up", "users")
    assert up.exit_code == 0, up.output
    assert "scenario users is up" in up.output
    try:
        listed = invoke(configured_project, "scenario", "list")
        assert listed.output.splitlines()[0].split() == [
            "NAME",
            "APP",
            "DB",
            "PORT",
            "AGE",
            "STATE",
        ]
        assert listed.output.splitlines()[1].split()[0] == "users"
        assert "running" in listed.output
        assert "scenario-users" in invoke(configured_project, "status").output
    finally:
        down = invoke(configured_project, "scenario", "down", "users")
    assert "scenario users is down" in down.output
    assert invoke(configured_project, "scenario", "list").output.strip() == "no scenario is up"


@pytest.mark.parametrize("scale", ["0", "-1", "abc", "33"])
def test_prod_rejects_bad_scales_and_changes_nothing(configured_project, scale):
    result = run_main(configured_project, "prod", "up", "--scale", scale)
    assert result.returncode == 1
    assert "--scale" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert state.all_records(configured_project / ".devtools") == {}


def test_prod_status_logs_and_down_when_nothing_is_up(configured_project):
    assert "production is not running" in invoke(configured_project, "prod", "status").output
    assert "no logs yet" in invoke(configured_project, "prod", "logs").output
    down = invoke(configured_project, "prod", "down")
    assert down.exit_code == 0
    assert "nothing to stop" in down.output


def test_a_compose_environment_is_not_touched_by_the_local_backend(configured_project):
    state_dir = configured_project / ".devtools"
    state.write_record(state_dir, "scenario-users", {"kind": "scenario", "backend": "compose"})
    state.write_record(state_dir, "production", {"kind": "production", "backend": "compose"})
    from devtools.environments import scenario as scenarios
    from devtools.errors import UsageError

    assert scenarios.running_scenarios(state_dir) == []
    with pytest.raises(UsageError, match="running on the compose backend"):
        scenarios.down(name="users", state_dir=state_dir)
    from devtools import production

    with pytest.raises(UsageError, match="production is running on the compose backend"):
        production.status(configured_project)
    assert "compose" in invoke(configured_project, "status").output
    assert invoke(configured_project, "clean").output.strip() == "nothing to clean"
