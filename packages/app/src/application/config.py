"""Configuration profiles and the one place that turns environment variables into Flask config.

The app reads only its own environment variables (the names of the seed tutorial):

``FLASK_CONFIG``
    ``development`` (default), ``testing`` or ``production``.
``POSTGRES_USER``, ``POSTGRES_PASSWORD``, ``POSTGRES_HOSTNAME``, ``POSTGRES_PORT``
    Where the database server is and who to log in as (``postgres`` on ``localhost:5432``
    by default).
``APPLICATION_DB``
    The database of the app (default ``application``).
``SECRET_KEY``
    Flask's secret key. Development and testing generate a random one when it is absent.
``POSTGRES_PASSWORD_FILE``, ``SECRET_KEY_FILE``
    Docker secrets: a file holding the value, read when the plain variable is absent.
``APPLICATION_REPLICA``
    The value of the ``X-Replica`` response header (default: the host name).
``TRUST_PROXY_HEADERS``
    ``1`` to honour ``X-Forwarded-*`` headers outside production (production always does).
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

from .errors import ConfigurationError, UnknownConfigError

DEFAULT_CONFIG = "development"
MAX_CONTENT_LENGTH = 1024 * 1024
# A black-holed database host must not hang /health (or a worker) for minutes.
CONNECT_TIMEOUT_SECONDS = 5
_TRUTHY = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True)
class Profile:
    """What distinguishes one configuration name from another.

    Attributes:
        name: The configuration name, as given in ``FLASK_CONFIG``.
        testing: Sets Flask's ``TESTING`` flag.
        require_secrets: Refuse to start without ``SECRET_KEY`` and a database password
            instead of generating or omitting them.
        trust_proxy_headers: Wrap the app in ``ProxyFix`` whatever ``TRUST_PROXY_HEADERS`` says.
    """

    name: str
    testing: bool = False
    require_secrets: bool = False
    trust_proxy_headers: bool = False


PROFILES: Mapping[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile("development"),
        Profile("testing", testing=True),
        Profile("production", require_secrets=True, trust_proxy_headers=True),
    )
}


def get_profile(name: str) -> Profile:
    """Return the profile called ``name``.

    Raises:
        UnknownConfigError: ``name`` is not a known configuration; the message lists them.
    """
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(PROFILES)
        raise UnknownConfigError(
            f"unknown configuration {name!r} (from the argument or FLASK_CONFIG): "
            f"use one of {known}"
        ) from None


def read_secret(environ: Mapping[str, str], name: str) -> str | None:
    """Return variable ``name``, else the stripped content of the file named by ``name_FILE``.

    Empty values count as absent.

    Raises:
        ConfigurationError: ``name_FILE`` is set but the file cannot be read.
    """
    value = environ.get(name)
    if value:
        return value
    path = environ.get(f"{name}_FILE")
    if not path:
        return None
    try:
        content = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"{name}_FILE is {path!r} but that file cannot be read ({exc}): "
            f"fix the path or set {name} directly"
        ) from exc
    return content or None


def _port(environ: Mapping[str, str]) -> int:
    raw = environ.get("POSTGRES_PORT") or "5432"
    try:
        port = int(raw)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise ConfigurationError(f"POSTGRES_PORT must be a port number (1-65535), got {raw!r}")
    return port


def database_uri(environ: Mapping[str, str], password: str | None) -> str:
    """Build the psycopg2 URL from ``POSTGRES_*`` and ``APPLICATION_DB``.

    ``URL.create`` escapes user names and passwords, so any character is safe in them.
    """
    url = URL.create(
        "postgresql+psycopg2",
        username=environ.get("POSTGRES_USER") or "postgres",
        password=password,
        host=environ.get("POSTGRES_HOSTNAME") or "localhost",
        port=_port(environ),
        database=environ.get("APPLICATION_DB") or "application",
    )
    return url.render_as_string(hide_password=False)


def normalise_database_uri(uri: str | URL) -> str:
    """Return ``uri`` with the psycopg2 driver when it names none (``postgresql://...``).

    SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3, which this package does not
    install; DSNs from tools and platforms usually come without a driver.
    """
    url = make_url(uri)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg2")
    return url.render_as_string(hide_password=False)


def build_config(
    config_name: str | None,
    environ: Mapping[str, str],
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the Flask config for ``config_name`` read from ``environ``, then ``overrides``.

    Values in ``overrides`` win and count as provided: a production app given
    ``SQLALCHEMY_DATABASE_URI`` needs no ``POSTGRES_PASSWORD``.

    Args:
        config_name: A profile name; ``None`` means ``FLASK_CONFIG``, else ``development``.
        environ: The environment variables to read (normally ``os.environ``).
        overrides: Flask config keys applied last.

    Raises:
        UnknownConfigError: The configuration name is unknown.
        ConfigurationError: Production lacks a secret, or a variable is malformed.
    """
    profile = get_profile(config_name or environ.get("FLASK_CONFIG") or DEFAULT_CONFIG)
    overrides = dict(overrides or {})

    secret_key = overrides.get("SECRET_KEY") or read_secret(environ, "SECRET_KEY")
    uri = overrides.get("SQLALCHEMY_DATABASE_URI")
    password = None if uri else read_secret(environ, "POSTGRES_PASSWORD")

    if profile.require_secrets:
        missing = []
        if not secret_key:
            missing.append("SECRET_KEY")
        if not uri and not password:
            missing.append("POSTGRES_PASSWORD")
        if missing:
            names = " and ".join(missing)
            files = " / ".join(f"{name}_FILE" for name in missing)
            raise ConfigurationError(
                f"the {profile.name} configuration refuses to start without {names}: "
                f"set {'it' if len(missing) == 1 else 'them'} in the environment "
                f"(or {files} to a file holding the value)"
            )

    config: dict[str, Any] = {
        "CONFIG_NAME": profile.name,
        "TESTING": profile.testing,
        # Development and testing sessions do not need to survive a restart.
        "SECRET_KEY": secret_key or secrets.token_urlsafe(32),
        "SQLALCHEMY_DATABASE_URI": uri or database_uri(environ, password),
        "SQLALCHEMY_ENGINE_OPTIONS": {
            "pool_pre_ping": True,
            "connect_args": {"connect_timeout": CONNECT_TIMEOUT_SECONDS},
        },
        "MAX_CONTENT_LENGTH": MAX_CONTENT_LENGTH,
        "APPLICATION_REPLICA": environ.get("APPLICATION_REPLICA") or socket.gethostname(),
        "TRUST_PROXY_HEADERS": profile.trust_proxy_headers
        or environ.get("TRUST_PROXY_HEADERS", "").strip().lower() in _TRUTHY,
    }
    config.update(overrides)
    config["SQLALCHEMY_DATABASE_URI"] = normalise_database_uri(config["SQLALCHEMY_DATABASE_URI"])
    return config
