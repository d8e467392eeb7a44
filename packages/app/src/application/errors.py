"""The package's exceptions and the handlers that render every error as JSON."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, jsonify
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse


class ApplicationError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigurationError(ApplicationError, RuntimeError):
    """The environment does not describe a configuration the app can start with."""


class UnknownConfigError(ConfigurationError, ValueError):
    """The requested configuration name is not one of the known ones."""


class ApiError(ApplicationError):
    """A client error that the API answers with a JSON body instead of a stack trace.

    Attributes:
        status_code: The HTTP status of the response.
        error: A short machine-readable code, the ``error`` key of the body.
        message: A sentence for humans, the ``message`` key of the body.
        details: Extra keys merged into the body (for example ``field``).
    """

    status_code = 400
    error = "bad_request"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of the response."""
        return {"error": self.error, "message": self.message, **self.details}


class ValidationError(ApiError):
    """A field of the request is missing, malformed or not allowed (422)."""

    status_code = 422
    error = "invalid"


class ConflictError(ApiError):
    """The request clashes with existing data, such as a duplicate email (409)."""

    status_code = 409
    error = "conflict"


def _error_code(exc: HTTPException) -> str:
    return (exc.name or "error").lower().replace(" ", "_").replace("'", "")


def handle_http_exception(exc: HTTPException) -> BaseResponse:
    """Render any HTTP error (404, 405, 413, 500, ...) as ``{"error", "message"}``.

    The original response is kept so headers such as ``Allow`` on a 405 survive; only the
    body and content type change. A 500 reaches this handler as ``InternalServerError``
    whose description is generic, so no detail of the original exception leaks.
    """
    response = exc.get_response()
    response.set_data(jsonify({"error": _error_code(exc), "message": exc.description}).get_data())
    response.content_type = "application/json"
    return response


def handle_api_error(exc: ApiError) -> tuple[Response, int]:
    """Render an :class:`ApiError` with its own status code and body."""
    return jsonify(exc.to_dict()), exc.status_code


def handle_database_unavailable(exc: OperationalError) -> tuple[Response, int]:
    """Answer 503 when the database cannot be reached (or aborted the transaction).

    Clients and nginx may retry a 503; a 500 would say the request itself was at fault. The
    session is rolled back when the app context ends.
    """
    current_app.logger.error("database unavailable: %s", exc)
    body = {"error": "service_unavailable", "message": "the database is unavailable, try again"}
    return jsonify(body), 503


def register_error_handlers(app: Flask) -> None:
    """Attach the JSON error handlers to ``app``."""
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(OperationalError, handle_database_unavailable)
