"""The Flask application: ``create_app`` builds a configured app instance."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response
from werkzeug.middleware.proxy_fix import ProxyFix

from .api import bp
from .config import build_config
from .errors import (
    ApiError,
    ApplicationError,
    ConfigurationError,
    ConflictError,
    UnknownConfigError,
    ValidationError,
    register_error_handlers,
)
from .extensions import db, migrate

__all__ = [
    "ApiError",
    "ApplicationError",
    "ConfigurationError",
    "ConflictError",
    "UnknownConfigError",
    "ValidationError",
    "create_app",
]


def create_app(config_name: str | None = None, overrides: Mapping[str, Any] | None = None) -> Flask:
    """Create the app for a configuration read from the environment.

    Args:
        config_name: ``development``, ``testing`` or ``production``; ``None`` means the
            ``FLASK_CONFIG`` environment variable, else ``development``.
        overrides: Flask config keys that win over the environment, for example
            ``SQLALCHEMY_DATABASE_URI`` in tests.

    Raises:
        UnknownConfigError: The configuration name is unknown (also a ``ValueError``).
        ConfigurationError: Production lacks ``SECRET_KEY`` or the database password, or a
            variable is malformed (also a ``RuntimeError``).
    """
    # A JSON API: no static files to serve.
    app = Flask(__name__, static_folder=None)
    app.config.from_mapping(build_config(config_name, os.environ, overrides))

    db.init_app(app)
    migrate.init_app(app, db)
    register_error_handlers(app)
    app.register_blueprint(bp)

    replica = str(app.config["APPLICATION_REPLICA"])

    @app.after_request
    def add_replica_header(response: Response) -> Response:
        # Tells which replica answered when several run behind nginx.
        response.headers["X-Replica"] = replica
        return response

    if app.config["TRUST_PROXY_HEADERS"]:
        # One proxy (nginx) sits in front: trust exactly one hop of each header.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=1, x_proto=1, x_host=1
        )
    return app
