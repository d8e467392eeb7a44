"""The API over data loaded by named scenarios, inside each test's rolled-back transaction."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from scenarios.testing import load_scenario, scenario_fixture


@pytest.fixture
def scenario_session(db_connection: Connection) -> Iterator[Session]:
    """A session on this test's connection: what it writes vanishes with the test."""
    with Session(bind=db_connection, join_transaction_mode="create_savepoint") as session:
        yield session


users_scenario = scenario_fixture("users", session="scenario_session")


def test_users_scenario_is_what_the_api_lists(
    client: FlaskClient, scenario_session: Session
) -> None:
    load_scenario(scenario_session, "users")

    body = client.get("/users").get_json()

    assert [user["email"] for user in body["items"]] == [
        "admin@server.com",
        "user1@server.com",
        "user2@server.com",
    ]
    assert body["total"] == 3


def test_users_scenario_as_a_fixture(client: FlaskClient, users_scenario: Session) -> None:
    response = client.post("/users", json={"email": "admin@server.com"})

    assert response.status_code == 409


def test_bulk_scenario_pages_and_new_ids_follow(
    client: FlaskClient, scenario_session: Session
) -> None:
    load_scenario(scenario_session, "bulk", args=["--count", "250"])

    page = client.get("/users?page=3&per_page=100").get_json()
    created = client.post("/users", json={"email": "new@example.com"}).get_json()

    assert page["total"] == 250
    assert page["pages"] == 3
    assert [user["id"] for user in page["items"]] == list(range(201, 251))
    assert created["id"] == 251


def test_nothing_leaks_from_the_scenario_tests(client: FlaskClient) -> None:
    assert client.get("/users").get_json()["total"] == 0
