"""The app factory: replica header, proxy headers, request size, CLI and the WSGI module."""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask, request

from application import create_app

pytestmark = pytest.mark.usefixtures("clean_environment")

DUMMY_URI = "postgresql+psycopg2://user@127.0.0.1:1/none"
FORWARDED = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "shop.example.org",
}


def add_echo_route(app: Flask) -> Flask:
    """Register a test-only route that shows what the app believes about the client."""

    @app.get("/_test/client")
    def client_view() -> dict[str, str | None]:
        return {"remote_addr": request.remote_addr, "scheme": request.scheme, "host": request.host}

    return app


def test_x_replica_defaults_to_host_name() -> None:
    response = create_app("testing", {"SQLALCHEMY_DATABASE_URI": DUMMY_URI}).test_client().get("/")

    assert response.headers["X-Replica"] == socket.gethostname()


def test_x_replica_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPLICATION_REPLICA", "web-3")

    response = create_app("testing", {"SQLALCHEMY_DATABASE_URI": DUMMY_URI}).test_client().get("/")

    assert response.headers["X-Replica"] == "web-3"


def test_x_replica_is_read_once_at_creation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPLICATION_REPLICA", "web-1")
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": DUMMY_URI})
    monkeypatch.setenv("APPLICATION_REPLICA", "web-2")

    assert app.test_client().get("/").headers["X-Replica"] == "web-1"


def test_production_trusts_one_proxy_hop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "s3cret")
    monkeypatch.setenv("POSTGRES_PASSWORD", "pw")
    app = add_echo_route(create_app("production"))

    body = app.test_client().get("/_test/client", headers=FORWARDED).get_json()

    assert body == {"remote_addr": "203.0.113.7", "scheme": "https", "host": "shop.example.org"}


def test_production_ignores_spoofed_hops_beyond_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "s3cret")
    monkeypatch.setenv("POSTGRES_PASSWORD", "pw")
    app = add_echo_route(create_app("production"))
    headers = {"X-Forwarded-For": "6.6.6.6, 203.0.113.7"}

    body = app.test_client().get("/_test/client", headers=headers).get_json()

    assert body["remote_addr"] == "203.0.113.7"


@pytest.mark.parametrize("config_name", ["development", "testing"])
def test_other_configs_ignore_proxy_headers(config_name: str) -> None:
    app = add_echo_route(create_app(config_name, {"SQLALCHEMY_DATABASE_URI": DUMMY_URI}))

    body = app.test_client().get("/_test/client", headers=FORWARDED).get_json()

    assert body == {"remote_addr": "127.0.0.1", "scheme": "http", "host": "localhost"}


def test_trust_proxy_headers_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUST_PROXY_HEADERS", "1")
    app = add_echo_route(create_app("testing", {"SQLALCHEMY_DATABASE_URI": DUMMY_URI}))

    body = app.test_client().get("/_test/client", headers=FORWARDED).get_json()

    assert body["remote_addr"] == "203.0.113.7"


def test_max_content_length_is_one_mib() -> None:
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": DUMMY_URI})

    assert app.config["MAX_CONTENT_LENGTH"] == 1024 * 1024
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["pool_pre_ping"] is True


def test_flask_cli_loads_the_factory_from_any_directory(tmp_path: Path) -> None:
    environ = {**os.environ, "FLASK_CONFIG": "testing"}

    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "application:create_app", "routes"],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    for endpoint in ("api.index", "api.health", "api.list_users", "api.create_user"):
        assert endpoint in result.stdout


def test_wsgi_module_builds_the_app_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASK_CONFIG", "testing")
    monkeypatch.delitem(sys.modules, "application.wsgi", raising=False)

    module = importlib.import_module("application.wsgi")

    assert isinstance(module.app, Flask)
    assert module.app.config["CONFIG_NAME"] == "testing"
    monkeypatch.delitem(sys.modules, "application.wsgi")
