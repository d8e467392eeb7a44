"""The shipped small scenarios and the factories, checked at the SQL level."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from application.models import User
from scenarios import registry
from scenarios.errors import FactoryNotBound, ScenarioError
from scenarios.factories import UserFactory, bound_to, current_session

USERS = ["admin@server.com", "user1@server.com", "user2@server.com"]
GENERATED_EMAIL = re.compile(r"[a-z0-9_.]+\.([0-9]+)@example\.(com|org|net)")


def emails(database: Any) -> list[str]:
    return [email for (email,) in database.query("SELECT email FROM users ORDER BY id")]


def test_foo_greets_and_writes_nothing(session: Session, database: Any) -> None:
    lines: list[str] = []

    registry.run_scenario("foo", session, echo=lines.append)

    assert lines == ["HEY! This is scenario foo"]
    # No transaction id was assigned: the scenario wrote nothing at all.
    assert session.execute(text("SELECT pg_current_xact_id_if_assigned()")).scalar() is None
    session.commit()
    assert emails(database) == []


def test_users_creates_exactly_the_three_users(session: Session, database: Any) -> None:
    lines: list[str] = []

    registry.run_scenario("users", session, echo=lines.append)
    session.commit()

    rows = database.query("SELECT id, email, created_at FROM users ORDER BY id")
    assert [email for _, email, _ in rows] == USERS
    assert [user_id for user_id, _, _ in rows] == [1, 2, 3]
    assert all(created_at.tzinfo is not None for _, _, created_at in rows)
    assert lines == ["Created 3 users: " + ", ".join(USERS)]


def test_users_uses_the_factory(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    original = UserFactory.create.__func__  # type: ignore[attr-defined]

    def spy(cls: type[UserFactory], /, **fields: Any) -> User:
        made.append(fields["email"])
        return original(cls, **fields)  # type: ignore[no-any-return]

    monkeypatch.setattr(UserFactory, "create", classmethod(spy))

    registry.run_scenario("users", session, echo=lambda line: None)

    assert made == USERS


def test_users_twice_is_a_unique_violation(session: Session) -> None:
    registry.run_scenario("users", session, echo=lambda line: None)

    with pytest.raises(IntegrityError, match="uq_users_email"):
        registry.run_scenario("users", session, echo=lambda line: None)


def test_run_flushes_but_does_not_commit(session: Session, database: Any) -> None:
    registry.run_scenario("users", session, echo=lambda line: None)

    assert database.query("SELECT count(*) FROM users") == [(0,)]
    session.rollback()
    assert session.execute(text("SELECT count(*) FROM users")).scalar_one() == 0


def test_factory_refuses_to_save_when_unbound() -> None:
    with pytest.raises(FactoryNotBound, match="not bound to a session"):
        UserFactory.create()
    with pytest.raises(FactoryNotBound):
        current_session()
    assert issubclass(FactoryNotBound, ScenarioError)


def test_factory_builds_without_a_database() -> None:
    user = UserFactory.build()

    assert isinstance(user, User)
    assert GENERATED_EMAIL.fullmatch(user.email)
    assert user.id is None


def test_factory_flushes_in_the_bound_session_only(session: Session, database: Any) -> None:
    with bound_to(session):
        user = UserFactory.create()

    assert user.id is not None
    assert user in session
    assert not session.new, "flushed"
    assert emails(database) == [], "not committed"


def test_factory_emails_are_realistic_unique_and_lower_case(session: Session) -> None:
    with bound_to(session):
        users = [UserFactory.create() for _ in range(200)]

    addresses = [user.email for user in users]
    assert len(set(addresses)) == 200
    for address in addresses:
        assert GENERATED_EMAIL.fullmatch(address), address
        assert address == address.lower()
        assert ".." not in address


def test_factory_numbers_start_above_existing_ones(session: Session, database: Any) -> None:
    database.query("INSERT INTO users (email) VALUES ('someone.500@example.org') RETURNING id")

    with bound_to(session):
        user = UserFactory.create()

    match = GENERATED_EMAIL.fullmatch(user.email)
    assert match
    assert int(match.group(1)) > 500


def test_factory_cannot_collide_with_an_earlier_run(engine: Any, database: Any) -> None:
    for _ in range(2):
        with Session(engine) as session, bound_to(session):
            for _ in range(5):
                UserFactory.create()
            session.commit()

    assert database.query("SELECT count(DISTINCT email) FROM users") == [(10,)]


def test_bindings_nest(session: Session, engine: Any) -> None:
    with Session(engine) as other:
        with bound_to(session):
            with bound_to(other):
                assert current_session() is other
            assert current_session() is session
        with pytest.raises(FactoryNotBound):
            current_session()
