"""Each test runs in its own rolled-back transaction: nothing leaks between tests."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.engine import Connection

EMAIL = "same-in-every-test@example.com"


@pytest.mark.parametrize("attempt", range(3))
def test_same_email_can_be_created_in_every_test(client: FlaskClient, attempt: int) -> None:
    response = client.post("/users", json={"email": EMAIL})

    assert response.status_code == 201, f"attempt {attempt} saw data from another test"
    assert client.get("/users").get_json()["total"] == 1


def test_commits_in_requests_are_visible_to_later_requests_and_the_test(
    client: FlaskClient, db_connection: Connection
) -> None:
    user_id = client.post("/users", json={"email": EMAIL}).get_json()["id"]

    assert client.get(f"/users/{user_id}").status_code == 200
    count = db_connection.execute(sa.text("SELECT count(*) FROM users")).scalar_one()
    assert count == 1
