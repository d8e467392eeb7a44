"""The test helpers: scenarios loaded into a test's own session, never committed."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from scenarios.errors import ScenarioUsageError, UnknownScenario
from scenarios.testing import load_scenario, scenario_fixture

users_loaded = scenario_fixture("users", session="session")
few_bulk_users = scenario_fixture("bulk", session="session", args=["--count", "25"])


def count(session: Session) -> int:
    return int(session.execute(text("SELECT count(*) FROM users")).scalar_one())


def test_load_scenario_flushes_into_the_session_without_committing(
    session: Session, database: Any
) -> None:
    load_scenario(session, "users")

    assert count(session) == 3
    assert database.query("SELECT count(*) FROM users") == [(0,)]


def test_load_scenario_passes_arguments_and_output(session: Session) -> None:
    lines: list[str] = []

    load_scenario(session, "bulk", args=["--count", "40"], echo=lines.append)

    assert count(session) == 40
    assert lines[0].startswith("Loaded 40 users")


def test_load_scenario_errors(session: Session) -> None:
    with pytest.raises(UnknownScenario, match="known scenarios are bulk, foo, users"):
        load_scenario(session, "nope")
    with pytest.raises(ScenarioUsageError):
        load_scenario(session, "bulk", args=["--count", "x"])


def test_scenario_fixture_loads_into_the_named_session(users_loaded: Session) -> None:
    assert count(users_loaded) == 3


def test_scenario_fixture_with_arguments(few_bulk_users: Session) -> None:
    assert count(few_bulk_users) == 25
    # bulk holds an exclusive lock on users until the test's transaction ends.
    few_bulk_users.rollback()
    assert count(few_bulk_users) == 0
