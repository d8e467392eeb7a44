"""config/<env>.json validation, environment overrides and generated secrets."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest

from devtools.config import load_settings
from devtools.errors import ConfigError
from devtools.secrets_store import fill_secrets, forget_secrets, secrets_file

REPO_CONFIG = Path(__file__).resolve().parents[3] / "config"


def write(project: Path, environment: str, items: object) -> Path:
    """Write config/<environment>.json with ``items`` as JSON."""
    path = project / "config" / f"{environment}.json"
    path.write_text(json.dumps(items))
    return path


def base_items(**extra: object) -> list[dict[str, object]]:
    """A valid development config plus ``extra`` keys."""
    values = {
        "FLASK_CONFIG": "development",
        "POSTGRES_USER": "postgres",
        "APPLICATION_DB": "application",
        **extra,
    }
    return [{"name": key, "value": value} for key, value in values.items()]


@pytest.mark.parametrize("environment", ["development", "testing", "scenario", "production"])
def test_the_repository_configs_are_valid(environment):
    settings = load_settings(REPO_CONFIG.parent, environment, {})
    assert settings.require("APPLICATION_DB")
    assert settings.get("POSTGRES_PASSWORD") is None  # never a password in the repo
    assert settings.get("SECRET_KEY") is None


def test_values_defaults_and_sources(project):
    write(project, "development", base_items(APPLICATION_PORT=5001))
    settings = load_settings(project, "development", {})
    assert settings.get("APPLICATION_PORT") == 5001
    assert settings.get("GUNICORN_WORKERS") == 2
    assert settings.sources["APPLICATION_PORT"] == "file"
    assert settings.sources["GUNICORN_WORKERS"] == "default"
    assert settings.get("POSTGRES_PORT") is None


def test_environment_overrides_the_file(project):
    write(project, "development", base_items(APPLICATION_PORT=5001))
    settings = load_settings(
        project, "development", {"APPLICATION_PORT": "6000", "POSTGRES_USER": "me", "OTHER": "x"}
    )
    assert settings.get("APPLICATION_PORT") == 6000
    assert settings.get("POSTGRES_USER") == "me"
    assert settings.sources["POSTGRES_USER"] == "environment"


def test_describe_masks_secrets(project):
    write(project, "development", base_items())
    settings = load_settings(project, "development", {"POSTGRES_PASSWORD": "hunter2"})
    rows = {key: (value, source) for key, value, source in settings.describe()}
    assert rows["POSTGRES_PASSWORD"] == ("********", "environment")
    assert "hunter2" not in repr(settings.describe())
    with pytest.raises(KeyError):
        settings.get("NOT_A_KEY")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", r"development.json: invalid JSON at line 1 column 2"),
        ('{"FLASK_CONFIG": "development"}', r"expected a list of"),
        ('[{"name": "FLASK_CONFIG"}]', r"item 0 must be an object with exactly"),
        ("[1]", r"item 0 must be an object"),
    ],
)
def test_malformed_files_name_the_file(project, content, message):
    (project / "config" / "development.json").write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_settings(project, "development", {})


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (base_items(COLOUR="blue"), r"development.json: unknown key 'COLOUR'; known keys: "),
        (base_items()[:2], r"development.json: missing required key APPLICATION_DB"),
        (base_items(APPLICATION_PORT="80a"), r"development.json: APPLICATION_PORT must be an int"),
        (base_items(APPLICATION_PORT=True), r"APPLICATION_PORT must be an integer"),
        (base_items(APPLICATION_PORT=70000), r"APPLICATION_PORT is 70000, expected a port"),
        (base_items(GUNICORN_WORKERS=0), r"GUNICORN_WORKERS must be at least 1"),
        (base_items(POSTGRES_USER=""), r"POSTGRES_USER must be a non-empty string"),
        (base_items(POSTGRES_USER=5), r"POSTGRES_USER must be a non-empty string, got 5"),
        (
            [*base_items(), {"name": "APPLICATION_DB", "value": "x"}],
            r"key APPLICATION_DB is set twice",
        ),
    ],
)
def test_invalid_values_name_file_key_and_expectation(project, items, message):
    write(project, "development", items)
    with pytest.raises(ConfigError, match=message):
        load_settings(project, "development", {})


def test_bad_flask_config_and_bad_override(project):
    items = base_items()
    items[0]["value"] = "staging"
    write(project, "development", items)
    with pytest.raises(ConfigError, match="FLASK_CONFIG is 'staging', expected one of"):
        load_settings(project, "development", {})
    write(project, "development", base_items())
    with pytest.raises(ConfigError, match="environment variable POSTGRES_PORT must be an integer"):
        load_settings(project, "development", {"POSTGRES_PORT": "five"})


def test_missing_file_and_unknown_environment(project):
    with pytest.raises(ConfigError, match=r"config/production.json: file not found"):
        load_settings(project, "production", {})
    with pytest.raises(ConfigError, match="unknown environment 'staging'"):
        load_settings(project, "staging", {})


def test_secrets_are_generated_once_into_a_private_file(project):
    shutil.copy(REPO_CONFIG / "production.json", project / "config")
    state = project / ".devtools"
    settings = load_settings(project, "production", {})
    filled = fill_secrets(settings, state, ("POSTGRES_PASSWORD", "SECRET_KEY"))
    path = secrets_file(state, "production")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert filled.sources["SECRET_KEY"] == "generated"
    again = fill_secrets(settings, state, ("POSTGRES_PASSWORD", "SECRET_KEY"))
    assert again.get("POSTGRES_PASSWORD") == filled.get("POSTGRES_PASSWORD")
    assert len(filled.require("SECRET_KEY")) >= 32
    from_env = load_settings(project, "production", {"POSTGRES_PASSWORD": "given"})
    assert fill_secrets(from_env, state, ("POSTGRES_PASSWORD",)).get("POSTGRES_PASSWORD") == "given"
    forget_secrets(state, "production")
    assert not path.exists()
    renewed = fill_secrets(settings, state, ("POSTGRES_PASSWORD",))
    assert renewed.get("POSTGRES_PASSWORD") != filled.get("POSTGRES_PASSWORD")


def test_require_names_the_missing_key(project):
    write(project, "development", base_items())
    settings = load_settings(project, "development", {})
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        settings.require("SECRET_KEY")
