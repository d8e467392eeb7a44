"""Configuration: profiles, environment variables, docker secrets and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from application import ConfigurationError, UnknownConfigError, create_app
from application.config import PROFILES, build_config, read_secret

pytestmark = pytest.mark.usefixtures("clean_environment")

PRODUCTION = {"SECRET_KEY": "s3cret", "POSTGRES_PASSWORD": "pw"}


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    """A docker-secret style file whose value is surrounded by whitespace."""
    path = tmp_path / "secret"
    path.write_text("  from-a-file\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "testing", "proxy"),
    [("development", False, False), ("testing", True, False), ("production", False, True)],
)
def test_each_config_name(name: str, testing: bool, proxy: bool) -> None:
    config = build_config(name, PRODUCTION)

    assert config["CONFIG_NAME"] == name
    assert config["TESTING"] is testing
    assert config["TRUST_PROXY_HEADERS"] is proxy


def test_known_configs() -> None:
    assert set(PROFILES) == {"development", "testing", "production"}


def test_default_is_development() -> None:
    assert build_config(None, {})["CONFIG_NAME"] == "development"


def test_flask_config_variable_selects_the_config() -> None:
    assert build_config(None, {"FLASK_CONFIG": "testing"})["CONFIG_NAME"] == "testing"


def test_argument_wins_over_flask_config() -> None:
    assert build_config("testing", {"FLASK_CONFIG": "production"})["CONFIG_NAME"] == "testing"


def test_create_app_reads_flask_config_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASK_CONFIG", "testing")

    app = create_app()

    assert app.config["CONFIG_NAME"] == "testing"
    assert app.testing


@pytest.mark.parametrize("name", ["staging", "Production", " development"])
def test_unknown_config_name_is_value_error_listing_known(name: str) -> None:
    with pytest.raises(ValueError, match="development, testing, production") as excinfo:
        create_app(name)

    assert isinstance(excinfo.value, UnknownConfigError)
    assert isinstance(excinfo.value, ConfigurationError)


def test_unknown_flask_config_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASK_CONFIG", "prod")

    with pytest.raises(UnknownConfigError, match="'prod'"):
        create_app()


def test_database_uri_from_environment() -> None:
    environ = {
        "POSTGRES_USER": "app",
        "POSTGRES_PASSWORD": "pw",
        "POSTGRES_HOSTNAME": "db.internal",
        "POSTGRES_PORT": "6543",
        "APPLICATION_DB": "shop",
    }

    uri = build_config("development", environ)["SQLALCHEMY_DATABASE_URI"]

    assert uri == "postgresql+psycopg2://app:pw@db.internal:6543/shop"


def test_database_uri_defaults() -> None:
    url = make_url(build_config("development", {})["SQLALCHEMY_DATABASE_URI"])

    assert (url.drivername, url.username, url.password) == ("postgresql+psycopg2", "postgres", None)
    assert (url.host, url.port, url.database) == ("localhost", 5432, "application")


def test_password_with_special_characters_round_trips() -> None:
    password = "p@ss:w/rd?#%& é"

    uri = build_config("development", {"POSTGRES_PASSWORD": password})["SQLALCHEMY_DATABASE_URI"]

    assert make_url(uri).password == password


@pytest.mark.parametrize("port", ["abc", "0", "70000", "-5"])
def test_bad_port_is_refused_naming_the_variable(port: str) -> None:
    with pytest.raises(ConfigurationError, match="POSTGRES_PORT"):
        build_config("development", {"POSTGRES_PORT": port})


def test_password_file_is_read_and_stripped(secret_file: Path) -> None:
    environ = {"POSTGRES_PASSWORD_FILE": str(secret_file)}

    uri = build_config("development", environ)["SQLALCHEMY_DATABASE_URI"]

    assert make_url(uri).password == "from-a-file"


def test_secret_key_file_is_read_and_stripped(secret_file: Path) -> None:
    config = build_config(
        "production", {"SECRET_KEY_FILE": str(secret_file), "POSTGRES_PASSWORD": "x"}
    )

    assert config["SECRET_KEY"] == "from-a-file"


def test_plain_variable_wins_over_file(secret_file: Path) -> None:
    environ = {"SECRET_KEY": "plain", "SECRET_KEY_FILE": str(secret_file)}

    assert read_secret(environ, "SECRET_KEY") == "plain"


def test_unreadable_secret_file_is_refused(tmp_path: Path) -> None:
    environ = {"SECRET_KEY_FILE": str(tmp_path / "missing")}

    with pytest.raises(ConfigurationError, match="SECRET_KEY_FILE"):
        build_config("development", environ)


def test_empty_secret_file_counts_as_absent(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n", encoding="utf-8")

    assert read_secret({"SECRET_KEY_FILE": str(empty)}, "SECRET_KEY") is None


def test_secret_key_from_environment() -> None:
    assert build_config("development", {"SECRET_KEY": "abc"})["SECRET_KEY"] == "abc"


@pytest.mark.parametrize("name", ["development", "testing"])
def test_missing_secret_key_is_generated_outside_production(name: str) -> None:
    first = build_config(name, {})["SECRET_KEY"]
    second = build_config(name, {})["SECRET_KEY"]

    assert len(first) >= 32
    assert first != second


def test_production_starts_with_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "s3cret")
    monkeypatch.setenv("POSTGRES_PASSWORD", "pw")

    app = create_app("production")

    assert app.config["SECRET_KEY"] == "s3cret"
    assert not app.testing


def test_production_starts_with_secret_files(
    monkeypatch: pytest.MonkeyPatch, secret_file: Path
) -> None:
    monkeypatch.setenv("SECRET_KEY_FILE", str(secret_file))
    monkeypatch.setenv("POSTGRES_PASSWORD_FILE", str(secret_file))

    app = create_app("production")

    assert make_url(app.config["SQLALCHEMY_DATABASE_URI"]).password == "from-a-file"


@pytest.mark.parametrize(
    ("environ", "missing", "present"),
    [
        ({"POSTGRES_PASSWORD": "pw"}, ["SECRET_KEY"], ["POSTGRES_PASSWORD"]),
        ({"SECRET_KEY": "s3cret"}, ["POSTGRES_PASSWORD"], ["SECRET_KEY"]),
        ({}, ["SECRET_KEY", "POSTGRES_PASSWORD"], []),
        ({"SECRET_KEY": "", "POSTGRES_PASSWORD": ""}, ["SECRET_KEY", "POSTGRES_PASSWORD"], []),
    ],
)
def test_production_refuses_to_start_naming_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
    environ: dict[str, str],
    missing: list[str],
    present: list[str],
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(ConfigurationError) as excinfo:
        create_app("production")

    message = str(excinfo.value)
    assert isinstance(excinfo.value, RuntimeError)
    for name in missing:
        assert name in message
        assert f"{name}_FILE" in message
    for name in present:
        assert name not in message


def test_production_accepts_overrides_as_provided() -> None:
    overrides = {"SECRET_KEY": "s3cret", "SQLALCHEMY_DATABASE_URI": "postgresql://u@h/d"}

    config = build_config("production", {}, overrides)

    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg2://u@h/d"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("postgresql://u:p%40ss@h:5/d", "postgresql+psycopg2://u:p%40ss@h:5/d"),
        ("postgres://u@h/d", "postgresql+psycopg2://u@h/d"),
        ("postgresql+psycopg2://u@h/d", "postgresql+psycopg2://u@h/d"),
        ("sqlite://", "sqlite://"),
    ],
)
def test_driverless_database_uri_gets_psycopg2(uri: str, expected: str) -> None:
    config = build_config("testing", {}, {"SQLALCHEMY_DATABASE_URI": uri})

    assert config["SQLALCHEMY_DATABASE_URI"] == expected


def test_overrides_win_over_environment() -> None:
    config = build_config("testing", {"APPLICATION_REPLICA": "env"}, {"APPLICATION_REPLICA": "x"})

    assert config["APPLICATION_REPLICA"] == "x"


@pytest.mark.parametrize(
    ("value", "trusted"), [("1", True), ("true", True), ("0", False), ("", False)]
)
def test_trust_proxy_headers_variable(value: str, trusted: bool) -> None:
    assert (
        build_config("development", {"TRUST_PROXY_HEADERS": value})["TRUST_PROXY_HEADERS"]
        is trusted
    )


def test_engine_and_request_limits() -> None:
    config = build_config("testing", {})

    assert config["MAX_CONTENT_LENGTH"] == 1024 * 1024
    assert config["SQLALCHEMY_ENGINE_OPTIONS"]["pool_pre_ping"] is True
