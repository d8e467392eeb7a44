"""Scenarios on a real engine: data loaded from the host, the app in a container, all removed."""

from __future__ import annotations

import re
import time

import psycopg2
import pytest

from devtools import state
from devtools.compose.backend import ComposeBackend
from devtools.environments.scenario import ScenarioFailed
from devtools.errors import UsageError
from devtools.http import get_status

from .conftest import leftovers

USERS = ["admin@server.com", "user1@server.com", "user2@server.com"]


def field(lines: list[str], name: str) -> str:
    """The value of a ``  name:  value`` line printed by up."""
    for line in lines:
        match = re.fullmatch(rf"\s+{name}:\s+(.*)", line)
        if match:
            return match.group(1)
    raise AssertionError(f"no {name} line in {lines}")


def test_users_up_already_up_list_and_down(backend: ComposeBackend, prefix: str):
    lines: list[str] = []
    started = time.monotonic()
    backend.scenario_up("users", [], lines.append)
    print(f"compose scenario users up in {time.monotonic() - started:.2f}s")
    try:
        assert lines[-5].startswith("scenario users is up")
        dsn, app = field(lines, "dsn"), field(lines, "app")
        assert field(lines, "psql").endswith(dsn)
        assert field(lines, "down") == 'nox -s "scenario(users)" -- down'
        with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT email FROM users ORDER BY email")
            assert [row[0] for row in cursor.fetchall()] == USERS
        host, port = app.removeprefix("http://").split(":")
        assert get_status(host, int(port), "/health") == 200
        record = state.read_record(backend.state_dir, "scenario-users")
        assert record is not None
        assert (record["backend"], record["status"]) == ("compose", "running")

        again: list[str] = []
        backend.scenario_up("users", [], again.append)
        assert again[0].startswith("scenario users is already up")
        assert again[1:] == lines[-4:]

        listed: list[str] = []
        backend.scenario_list(listed.append)
        assert listed[1].split()[0] == "users"
        assert listed[1].split()[-1] == "running"
    finally:
        said: list[str] = []
        assert backend.scenario_down("users", said.append) is True
    assert said == ["scenario users is down; its database was deleted"]
    assert leftovers(prefix + "scenario-users") == []
    assert state.read_record(backend.state_dir, "scenario-users") is None

    said.clear()
    assert backend.scenario_down("users", said.append) is False
    assert said == ["scenario users is not up; nothing to do"]


def test_an_unknown_scenario_starts_nothing(backend: ComposeBackend, prefix: str):
    with pytest.raises(UsageError, match=r"unknown scenario 'nosuch'; known scenarios: .*users"):
        backend.scenario_up("nosuch", [], print)
    assert leftovers(prefix + "scenario-") == []


def test_a_failing_scenario_is_torn_down(backend: ComposeBackend, prefix: str):
    # bulk refuses a count that is not a number: the scenario exits non-zero.
    with pytest.raises(ScenarioFailed, match="scenario bulk failed"):
        backend.scenario_up("bulk", ["--count", "many"], print)
    assert leftovers(prefix + "scenario-") == []
    assert state.read_record(backend.state_dir, "scenario-bulk") is None
    assert not list((backend.state_dir / "compose").glob("*-scenario-*"))
