"""The greeting, the health check and the JSON rendering of errors."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from application import create_app
from application.extensions import db


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A local TCP port that refuses connections: bound by this test, never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def unreachable_app(closed_port: int) -> Iterator[Flask]:
    """A testing app whose database URL points at a port where nothing listens."""
    app = create_app(
        "testing",
        {"SQLALCHEMY_DATABASE_URI": f"postgresql+psycopg2://u:p@127.0.0.1:{closed_port}/nowhere"},
    )
    yield app
    with app.app_context():
        db.engine.dispose()


def test_index_says_hello(client: FlaskClient) -> None:
    response = client.get("/")

    assert response.status_code == 200
    assert response.get_json() == {"message": "Hello, World!"}


def test_health_ok(client: FlaskClient) -> None:
    response = client.get("/health")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_health_is_503_when_database_unreachable(unreachable_app: Flask) -> None:
    response = unreachable_app.test_client().get("/health")

    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "reason": "database unreachable"}


def test_database_outage_on_api_is_json_503_without_details(unreachable_app: Flask) -> None:
    response = unreachable_app.test_client().get("/users")

    assert response.status_code == 503
    assert response.get_json()["error"] == "service_unavailable"
    assert "127.0.0.1" not in response.get_data(as_text=True)
    assert "psycopg2" not in response.get_data(as_text=True)


def test_unknown_route_is_json_404(client: FlaskClient) -> None:
    response = client.get("/no/such/page")

    assert response.status_code == 404
    assert response.is_json
    assert set(response.get_json()) == {"error", "message"}


def test_unexpected_exception_is_json_500_without_details() -> None:
    app = create_app(
        "testing", {"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg2://u@127.0.0.1:1/x"}
    )
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/_test/boom")
    def boom() -> str:
        raise RuntimeError("secret internal detail")

    response = app.test_client().get("/_test/boom")

    assert response.status_code == 500
    assert response.get_json()["error"] == "internal_server_error"
    assert "secret" not in response.get_data(as_text=True)
    assert "X-Replica" in response.headers


def test_every_response_has_x_replica(app: Flask, client: FlaskClient) -> None:
    replica = app.config["APPLICATION_REPLICA"]

    for response in (client.get("/"), client.get("/nope"), client.post("/users", data=b"{")):
        assert response.headers["X-Replica"] == replica
