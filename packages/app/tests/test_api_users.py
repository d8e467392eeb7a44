"""The users API: CRUD, pagination and every kind of bad input."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from application.extensions import db
from application.models import User

MAX_INT4 = 2**31 - 1


def test_create_user_returns_201_with_location(client: FlaskClient) -> None:
    response = client.post("/users", json={"email": "ada@example.com"})

    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"id", "email", "created_at"}
    assert body["email"] == "ada@example.com"
    assert response.headers["Location"] == f"/users/{body['id']}"
    assert client.get(response.headers["Location"]).get_json() == body


def test_created_at_is_iso_8601_utc_and_recent(client: FlaskClient) -> None:
    body = client.post("/users", json={"email": "ada@example.com"}).get_json()

    created_at = datetime.fromisoformat(body["created_at"])
    assert created_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - created_at) < timedelta(minutes=5)


def test_email_is_stored_lower_case(client: FlaskClient) -> None:
    body = client.post("/users", json={"email": "Ada.Lovelace@Example.COM"}).get_json()

    assert body["email"] == "ada.lovelace@example.com"


def test_get_user(client: FlaskClient, make_users: Callable[..., list[int]]) -> None:
    (user_id,) = make_users("grace@example.com")

    response = client.get(f"/users/{user_id}")

    assert response.status_code == 200
    assert response.get_json()["email"] == "grace@example.com"


def test_patch_user_changes_email(
    client: FlaskClient, make_users: Callable[..., list[int]]
) -> None:
    (user_id,) = make_users("grace@example.com")

    response = client.patch(f"/users/{user_id}", json={"email": "Grace.Hopper@example.com"})

    assert response.status_code == 200
    assert response.get_json()["email"] == "grace.hopper@example.com"
    assert client.get(f"/users/{user_id}").get_json()["email"] == "grace.hopper@example.com"


def test_patch_with_empty_object_changes_nothing(
    client: FlaskClient, make_users: Callable[..., list[int]]
) -> None:
    (user_id,) = make_users("grace@example.com")

    response = client.patch(f"/users/{user_id}", json={})

    assert response.status_code == 200
    assert response.get_json()["email"] == "grace@example.com"


def test_patch_to_own_email_is_not_a_conflict(
    client: FlaskClient, make_users: Callable[..., list[int]]
) -> None:
    (user_id,) = make_users("grace@example.com")

    response = client.patch(f"/users/{user_id}", json={"email": "GRACE@example.com"})

    assert response.status_code == 200


def test_delete_user_returns_204_then_404(
    client: FlaskClient, make_users: Callable[..., list[int]]
) -> None:
    (user_id,) = make_users("grace@example.com")

    response = client.delete(f"/users/{user_id}")

    assert response.status_code == 204
    assert response.data == b""
    assert client.get(f"/users/{user_id}").status_code == 404
    assert client.delete(f"/users/{user_id}").status_code == 404


def test_list_users_empty(client: FlaskClient) -> None:
    response = client.get("/users")

    assert response.status_code == 200
    assert response.get_json() == {"items": [], "page": 1, "per_page": 20, "total": 0, "pages": 0}


def test_list_users_paginates_in_id_order(
    client: FlaskClient, make_users: Callable[..., list[int]]
) -> None:
    ids = make_users(*(f"user{n}@example.com" for n in range(25)))

    first = client.get("/users").get_json()
    second = client.get("/users?page=2&per_page=20").get_json()
    beyond = client.get("/users?page=3").get_json()

    assert [item["id"] for item in first["items"]] == ids[:20]
    assert [item["id"] for item in second["items"]] == ids[20:]
    assert (first["total"], first["pages"], second["page"]) == (25, 2, 2)
    assert beyond["items"] == []


def test_list_users_caps_per_page_at_100(
    client: FlaskClient, make_users: Callable[..., list[int]]
) -> None:
    make_users(*(f"user{n}@example.com" for n in range(101)))

    body = client.get("/users?per_page=1000").get_json()

    assert body["per_page"] == 100
    assert len(body["items"]) == 100
    assert body["pages"] == 2


def test_list_users_huge_values_do_not_overflow(client: FlaskClient) -> None:
    assert client.get("/users?per_page=" + "9" * 5000).get_json()["per_page"] == 100
    assert client.get(f"/users?page={MAX_INT4}").status_code == 200
    response = client.get(f"/users?page={MAX_INT4 + 1}")
    assert response.status_code == 422
    assert response.get_json()["field"] == "page"


@pytest.mark.parametrize("field", ["page", "per_page"])
@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5", "", " 2", "+2", "1_0", "\u0661"])
def test_list_users_rejects_bad_pagination(client: FlaskClient, field: str, value: str) -> None:
    response = client.get("/users", query_string={field: value})

    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] == "invalid"
    assert body["field"] == field
    assert field in body["message"]


def test_duplicate_email_is_409_case_insensitively(client: FlaskClient) -> None:
    assert client.post("/users", json={"email": "ada@example.com"}).status_code == 201

    response = client.post("/users", json={"email": "ADA@example.com"})

    assert response.status_code == 409
    assert response.get_json()["field"] == "email"
    # The rollback left the session usable.
    assert client.post("/users", json={"email": "bob@example.com"}).status_code == 201
    assert client.get("/users").get_json()["total"] == 2


def test_patch_to_taken_email_is_409(
    client: FlaskClient, make_users: Callable[..., list[int]]
) -> None:
    _, user_id = make_users("ada@example.com", "bob@example.com")

    response = client.patch(f"/users/{user_id}", json={"email": "ada@example.com"})

    assert response.status_code == 409
    assert client.get(f"/users/{user_id}").get_json()["email"] == "bob@example.com"


@pytest.mark.parametrize(
    "email",
    [
        "",
        "plain",
        "@example.com",
        "ada@",
        "ada@localhost",
        "ada@@example.com",
        "ada@b@example.com",
        "ada@example..com",
        "ada@.example.com",
        "ada@example.com.",
        "ada lovelace@example.com",
        " ada@example.com",
        "ada@example.com\n",
        "ada\u0000@example.com",
        "ada\ud800@example.com",
        "a" * 309 + "@example.com",
    ],
)
def test_invalid_email_is_422(client: FlaskClient, email: str) -> None:
    response = client.post("/users", json={"email": email})

    assert response.status_code == 422
    assert response.get_json()["field"] == "email"


def test_longest_valid_email_is_accepted(client: FlaskClient) -> None:
    email = "a" * 308 + "@example.com"
    assert len(email) == 320

    assert client.post("/users", json={"email": email}).status_code == 201


@pytest.mark.parametrize("email", [None, 42, ["ada@example.com"], {"a": 1}, True])
def test_non_string_email_is_422(client: FlaskClient, email: object) -> None:
    response = client.post("/users", json={"email": email})

    assert response.status_code == 422
    assert response.get_json() == {
        "error": "invalid",
        "field": "email",
        "message": "email must be a string",
    }


def test_missing_email_is_422(client: FlaskClient) -> None:
    response = client.post("/users", json={})

    assert response.status_code == 422
    assert response.get_json()["field"] == "email"
    assert "required" in response.get_json()["message"]


def test_invalid_email_in_patch_is_422(
    client: FlaskClient, make_users: Callable[..., list[int]]
) -> None:
    (user_id,) = make_users("ada@example.com")

    response = client.patch(f"/users/{user_id}", json={"email": "nope"})

    assert response.status_code == 422
    assert response.get_json()["field"] == "email"


@pytest.mark.parametrize("method", ["post", "patch"])
def test_unknown_fields_are_422_and_named(
    client: FlaskClient, make_users: Callable[..., list[int]], method: str
) -> None:
    (user_id,) = make_users("ada@example.com")
    url = "/users" if method == "post" else f"/users/{user_id}"

    response = getattr(client, method)(
        url, json={"email": "bob@example.com", "admin": True, "id": 7}
    )

    assert response.status_code == 422
    body = response.get_json()
    assert body["fields"] == ["admin", "id"]
    assert "admin" in body["message"]
    assert "id" in body["message"]


@pytest.mark.parametrize("method", ["post", "patch"])
@pytest.mark.parametrize("data", [b"{", b"", b'{"email": "a@b.c",}', b"\xff\xfe"])
def test_malformed_json_is_400(
    client: FlaskClient, make_users: Callable[..., list[int]], method: str, data: bytes
) -> None:
    (user_id,) = make_users("ada@example.com")
    url = "/users" if method == "post" else f"/users/{user_id}"

    response = getattr(client, method)(url, data=data, content_type="application/json")

    assert response.status_code == 400
    assert response.get_json() == {
        "error": "bad_request",
        "message": "the request body is not valid JSON",
    }


@pytest.mark.parametrize(
    "payload", [b"[]", b'["ada@example.com"]', b'"ada@example.com"', b"3", b"null"]
)
def test_non_object_body_is_400(client: FlaskClient, payload: bytes) -> None:
    response = client.post("/users", data=payload, content_type="application/json")

    assert response.status_code == 400
    assert response.get_json() == {
        "error": "bad_request",
        "message": "the request body must be a JSON object",
    }


def test_non_json_content_type_is_415(client: FlaskClient) -> None:
    response = client.post("/users", data={"email": "ada@example.com"})

    assert response.status_code == 415
    assert response.get_json()["error"] == "unsupported_media_type"


def test_body_over_one_mib_is_413(client: FlaskClient) -> None:
    padding = "x" * (1024 * 1024)

    response = client.post("/users", json={"email": "ada@example.com", "padding": padding})

    assert response.status_code == 413
    assert response.is_json
    assert client.get("/users").get_json()["total"] == 0


def test_chunked_body_over_one_mib_is_413(client: FlaskClient) -> None:
    body = b'{"email": "ada@example.com"}' + b" " * (1024 * 1024)

    # As gunicorn passes a chunked request: no Content-Length, a stream the server terminates.
    response = client.post(
        "/users",
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )

    assert response.status_code == 413
    assert client.get("/users").get_json()["total"] == 0


def test_small_chunked_body_is_accepted(client: FlaskClient) -> None:
    response = client.post(
        "/users",
        input_stream=io.BytesIO(b'{"email": "ada@example.com"}'),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )

    assert response.status_code == 201


@pytest.mark.parametrize(
    "path", ["/users/12345", "/users/0", "/users/-1", "/users/abc", f"/users/{MAX_INT4 + 1}"]
)
@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_unknown_or_malformed_id_is_404(client: FlaskClient, path: str, method: str) -> None:
    response = getattr(client, method)(path, json={"email": "ada@example.com"})

    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_largest_possible_id_is_a_plain_404(client: FlaskClient) -> None:
    response = client.get(f"/users/{MAX_INT4}")

    assert response.status_code == 404
    assert response.get_json()["message"] == f"no user with id {MAX_INT4}"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("put", "/users", {"GET", "POST"}),
        ("delete", "/users", {"GET", "POST"}),
        ("post", "/users/1", {"GET", "PATCH", "DELETE"}),
        ("post", "/health", {"GET"}),
    ],
)
def test_wrong_method_is_405_with_allow(
    client: FlaskClient, method: str, path: str, allowed: set[str]
) -> None:
    response = getattr(client, method)(path)

    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"
    assert allowed <= set(response.headers["Allow"].split(", "))


def test_user_repr_names_id_and_email(app: Flask, make_users: Callable[..., list[int]]) -> None:
    (user_id,) = make_users("ada@example.com")

    with app.app_context():
        user = db.session.get(User, user_id)

        assert repr(user) == f"<User {user_id} 'ada@example.com'>"
