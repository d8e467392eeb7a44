"""Scenarios on the local backend: up, already up, down, list, bad input, Ctrl-C."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from pathlib import Path

import psycopg2
import pytest

from devtools import paths, state
from devtools.config import load_settings
from devtools.environments import scenario as scenarios
from devtools.errors import UsageError
from devtools.http import get_status
from devtools.postgres.cluster import THROWAWAY_PREFIX
from devtools.waiting import wait_until

from .conftest import finish, start_cli


def emails(dsn: str) -> list[str]:
    """The users' emails in a scenario database, straight from PostgreSQL."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT email FROM users ORDER BY id")
            return [row[0] for row in cursor.fetchall()]
    finally:
        conn.close()


def up(project: Path, name: str, *args: str, runner: str | None = None, lines=None):
    """Start a scenario on ``project``'s state folder."""
    return scenarios.up(
        name=name,
        settings=load_settings(project, "scenario", {}),
        state_dir=paths.state_dir(project),
        environ=os.environ,
        args=args,
        echo=(lines.append if lines is not None else lambda line: None),
        runner=runner,
    )


def test_users_scenario_up_prints_connection_lines_and_down_removes_everything(
    configured_project,
):
    lines: list[str] = []
    running = up(configured_project, "users", lines=lines)
    dsn = running.database.dsn(running.dbname)
    assert emails(dsn) == ["admin@server.com", "user1@server.com", "user2@server.com"]
    assert get_status("127.0.0.1", running.app.port, "/users") == 200
    text = "\n".join(lines)
    assert f"app:   http://127.0.0.1:{running.app.port}" in text
    assert f"dsn:   {dsn}" in text
    assert dsn in text.split("psql:")[1]
    assert 'down:  nox -s "scenario(users)" -- down' in text

    again: list[str] = []
    same = up(configured_project, "users", lines=again)
    assert same == running
    assert again[0] == "scenario users is already up"

    listed = scenarios.running_scenarios(paths.state_dir(configured_project))
    assert [item.name for item in listed] == ["users"]

    said: list[str] = []
    assert scenarios.down(
        name="users", state_dir=paths.state_dir(configured_project), echo=said.append
    )
    assert not running.database.process.alive()
    assert not running.app.process.alive()
    assert not running.database.root.exists()
    assert state.read_record(paths.state_dir(configured_project), "scenario-users") is None
    assert said == ["scenario users is down; its database was deleted"]


def test_down_when_not_up_says_so(configured_project):
    said: list[str] = []
    assert not scenarios.down(
        name="users", state_dir=paths.state_dir(configured_project), echo=said.append
    )
    assert said == ["scenario users is not up; nothing to do"]


def test_unknown_scenario_lists_the_known_ones_and_starts_nothing(configured_project):
    before = set(paths.scratch_root().glob(f"{THROWAWAY_PREFIX}{os.getpid()}-*"))
    with pytest.raises(UsageError, match=r"unknown scenario 'typo'; known scenarios: .*users"):
        up(configured_project, "typo")
    assert set(paths.scratch_root().glob(f"{THROWAWAY_PREFIX}{os.getpid()}-*")) == before
    assert state.all_records(paths.state_dir(configured_project)) == {}


def test_foo_prints_its_greeting(configured_project, capfd):
    up(configured_project, "foo")
    try:
        assert "HEY! This is scenario foo" in capfd.readouterr().out
    finally:
        scenarios.down(name="foo", state_dir=paths.state_dir(configured_project))


def test_bulk_takes_its_count_from_the_arguments(configured_project):
    running = up(configured_project, "bulk", "--count", "2500")
    try:
        assert len(emails(running.database.dsn(running.dbname))) == 2500
    finally:
        scenarios.down(name="bulk", state_dir=paths.state_dir(configured_project))


def test_two_scenarios_run_side_by_side(configured_project):
    first = up(configured_project, "users")
    second = up(configured_project, "foo")
    try:
        assert first.database.port != second.database.port
        assert first.app.port != second.app.port
        assert len(scenarios.running_scenarios(paths.state_dir(configured_project))) == 2
    finally:
        scenarios.down(name="users", state_dir=paths.state_dir(configured_project))
        scenarios.down(name="foo", state_dir=paths.state_dir(configured_project))


BROKEN_RUNNER = textwrap.dedent(
    """\
    #!{python}
    import sys
    if sys.argv[1:] == ["--list"]:
        print("broken")
        sys.exit(0)
    raise RuntimeError("the scenario blew up")
    """
)


def test_a_failing_scenario_is_torn_down_and_reported(configured_project, tmp_path, capfd):
    runner = tmp_path / "scenario-run"
    runner.write_text(BROKEN_RUNNER.format(python=sys.executable))
    runner.chmod(0o755)
    before = set(paths.scratch_root().glob(f"{THROWAWAY_PREFIX}{os.getpid()}-*"))
    with pytest.raises(scenarios.ScenarioFailed, match="scenario broken failed"):
        up(configured_project, "broken", runner=str(runner))
    assert "RuntimeError: the scenario blew up" in capfd.readouterr().err
    assert set(paths.scratch_root().glob(f"{THROWAWAY_PREFIX}{os.getpid()}-*")) == before
    assert state.all_records(paths.state_dir(configured_project)) == {}


def test_a_dead_scenario_is_replaced_on_up(configured_project):
    running = up(configured_project, "users")
    os.kill(running.app.process.pid, signal.SIGKILL)
    wait_until(lambda: not running.app.process.alive(), 10, what="app to die")
    lines: list[str] = []
    fresh = up(configured_project, "users", lines=lines)
    try:
        assert lines[0] == "scenario users was left half-running; cleaning it up first"
        assert fresh.app.port != running.app.port or fresh.app.process != running.app.process
        assert not running.database.process.alive()
    finally:
        scenarios.down(name="users", state_dir=paths.state_dir(configured_project))


def test_ctrl_c_during_up_leaves_nothing_behind(configured_project):
    child = start_cli(configured_project, "scenario", "up", "bulk", "--count", "3000000")
    pattern = f"{THROWAWAY_PREFIX}{child.pid}-*"
    wait_until(
        lambda: any(paths.scratch_root().glob(pattern)),
        60,
        interval=0.05,
        what="the scenario's cluster to appear",
    )
    os.killpg(child.pid, signal.SIGINT)
    output = finish(child, 60)
    assert child.returncode == 130, output
    assert not list(paths.scratch_root().glob(pattern))
    assert state.all_records(paths.state_dir(configured_project)) == {}
