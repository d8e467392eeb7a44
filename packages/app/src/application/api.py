"""The JSON API: a greeting, a health check and CRUD on users."""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from psycopg2 import errorcodes
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from werkzeug.exceptions import BadRequest, NotFound, RequestEntityTooLarge

from .errors import ApiError, ConflictError, ValidationError
from .extensions import db
from .models import EMAIL_MAX_LENGTH, User

bp = Blueprint("api", __name__)

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
# Keeps OFFSET inside PostgreSQL's bigint whatever page a client asks for.
MAX_PAGE = 2**31 - 1
# `users.id` is a PostgreSQL integer: larger ids cannot exist and would make the query fail.
MAX_USER_ID = 2**31 - 1
_DIGITS = re.compile(r"[0-9]+")
USER_FIELDS = frozenset({"email"})


class BadRequestBody(ApiError):
    """The body is not JSON or not a JSON object (400)."""

    error = "bad_request"


@bp.get("/")
def index() -> dict[str, str]:
    """Greet the caller."""
    return {"message": "Hello, World!"}


@bp.get("/health")
def health() -> tuple[dict[str, str], int]:
    """Report whether the database answers a trivial query."""
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        current_app.logger.warning("health check failed: %s", exc)
        reason = "database unreachable" if isinstance(exc, OperationalError) else "database error"
        return {"status": "unavailable", "reason": reason}, 503
    return {"status": "ok", "database": "ok"}, 200


@bp.get("/users")
def list_users() -> dict[str, Any]:
    """List users by id, one page at a time (``?page=1&per_page=20``)."""
    page = _positive_int_arg("page", default=1, maximum=MAX_PAGE)
    per_page = min(_positive_int_arg("per_page", default=DEFAULT_PER_PAGE), MAX_PER_PAGE)
    total = db.session.execute(select(func.count()).select_from(User)).scalar_one()
    users = db.session.execute(
        select(User).order_by(User.id).limit(per_page).offset((page - 1) * per_page)
    ).scalars()
    return {
        "items": [user.to_dict() for user in users],
        "page": page,
        "per_page": per_page,
        "total": total,
        "pages": math.ceil(total / per_page),
    }


@bp.post("/users")
def create_user() -> tuple[Response, int, dict[str, str]]:
    """Create a user from ``{"email": ...}``."""
    body = _json_object()
    _reject_unknown_fields(body)
    if "email" not in body:
        raise ValidationError("email is required", field="email")
    user = User(email=normalise_email(body["email"]))
    db.session.add(user)
    _commit()
    location = url_for("api.get_user", user_id=user.id)
    return jsonify(user.to_dict()), 201, {"Location": location}


@bp.get("/users/<int:user_id>")
def get_user(user_id: int) -> dict[str, Any]:
    """Return one user."""
    return _get_user_or_404(user_id).to_dict()


@bp.patch("/users/<int:user_id>")
def update_user(user_id: int) -> dict[str, Any]:
    """Change the fields given in the body; absent fields stay as they are."""
    user = _get_user_or_404(user_id)
    body = _json_object()
    _reject_unknown_fields(body)
    if "email" in body:
        user.email = normalise_email(body["email"])
    _commit()
    return user.to_dict()


@bp.delete("/users/<int:user_id>")
def delete_user(user_id: int) -> tuple[str, int]:
    """Delete one user."""
    db.session.delete(_get_user_or_404(user_id))
    db.session.commit()
    return "", 204


def normalise_email(value: object) -> str:
    """Return ``value`` lower-cased if it looks like an email address.

    A pragmatic check, not RFC 5322: one ``@``, a non-empty local part, a domain with a dot
    and no empty label, no whitespace or control characters, at most 320 characters.

    Raises:
        ValidationError: ``value`` is not a string or does not look like an address.
    """
    if not isinstance(value, str):
        raise ValidationError("email must be a string", field="email")
    email = value.lower()
    if len(email) > EMAIL_MAX_LENGTH:
        raise ValidationError(f"email must be at most {EMAIL_MAX_LENGTH} characters", field="email")
    local, at, domain = email.partition("@")
    valid = (
        at == "@"
        and local
        and "@" not in domain
        and "." in domain
        and "" not in domain.split(".")
        # Also rules out NUL and lone surrogates, which PostgreSQL would refuse with a 500.
        and all(char.isprintable() and not char.isspace() for char in email)
    )
    if not valid:
        raise ValidationError(f"{value!r} is not a valid email address", field="email")
    return email


def _positive_int_arg(name: str, *, default: int, maximum: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    # int() would also accept " 7", "+7", "7_0" and non-ASCII digits.
    if not _DIGITS.fullmatch(raw):
        raise ValidationError(f"{name} must be a positive integer, got {raw!r}", field=name)
    # Past 18 digits the exact value no longer matters, and int() of thousands of digits is slow.
    value = int(raw) if len(raw) <= 18 else sys.maxsize
    if value < 1:
        raise ValidationError(f"{name} must be a positive integer, got {raw!r}", field=name)
    if maximum is not None and value > maximum:
        raise ValidationError(f"{name} must be at most {maximum}, got {raw!r}", field=name)
    return value


def _json_object() -> dict[str, Any]:
    limit = request.max_content_length
    # A body with Content-Length over the limit raised 413 already; a chunked one is cut at the
    # limit by werkzeug without an error, so a body that fills the limit was longer.
    chunked = request.content_length is None
    if chunked and limit is not None and len(request.get_data(cache=True)) >= limit:
        raise RequestEntityTooLarge()
    try:
        # A content type other than JSON raises 415 (UnsupportedMediaType, not a BadRequest).
        body = request.get_json()
    except BadRequest:
        raise BadRequestBody("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequestBody("the request body must be a JSON object")
    return body


def _reject_unknown_fields(body: Mapping[str, Any]) -> None:
    unknown = sorted(set(body) - USER_FIELDS)
    if unknown:
        raise ValidationError(
            f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(USER_FIELDS))}",
            fields=unknown,
        )


def _get_user_or_404(user_id: int) -> User:
    # Checked here rather than with int(min=, max=) in the rule: werkzeug then answers 405
    # instead of 404 for some methods.
    user = db.session.get(User, user_id) if 1 <= user_id <= MAX_USER_ID else None
    if user is None:
        raise NotFound(f"no user with id {user_id}")
    return user


def _commit() -> None:
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        if getattr(exc.orig, "pgcode", None) != errorcodes.UNIQUE_VIOLATION:
            raise
        raise ConflictError("a user with this email already exists", field="email") from None
