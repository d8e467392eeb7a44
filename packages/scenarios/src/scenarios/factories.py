"""factory-boy factories for the application's models.

The factories are bound to no database at import. :func:`bound_to` binds them, for a block, to
the session a scenario (or a test) runs with; a scenario run by the registry is already bound.
They only flush, so that session's owner decides whether to commit.

Emails have the shape of :mod:`scenarios.emails` (``<user name>.<number>@example.com``), so
they never collide with earlier rows, bulk-loaded ones included.
"""

from __future__ import annotations

from typing import Any, cast

from factory.alchemy import SQLAlchemyModelFactory
from factory.declarations import LazyAttributeSequence
from factory.faker import Faker

from application.models import User

from .binding import bound_session, bound_to, current_session
from .emails import claim_email_numbers, clean_user_name, email_address

__all__ = ["UserFactory", "bound_to", "current_session"]


def _email_number(sequence: int) -> int:
    session = bound_session()
    if session is None:
        # build() needs no database: the factory's own sequence is unique in this process.
        return sequence
    return claim_email_numbers(session, 1, at_least=sequence)


class UserFactory(SQLAlchemyModelFactory):
    """A :class:`~application.models.User` with a realistic, unique email.

    ``created_at`` comes from the database's default. ``create``/``build`` are redeclared only
    to give them types (factory-boy's are untyped).
    """

    class Meta:
        model = User
        sqlalchemy_session_factory = current_session
        sqlalchemy_session_persistence = "flush"

    class Params:
        user_name = Faker("user_name")  # type: ignore[no-untyped-call, unused-ignore]

    email = LazyAttributeSequence(  # type: ignore[no-untyped-call, unused-ignore]
        lambda user, n: email_address(clean_user_name(user.user_name), _email_number(n))
    )

    @classmethod
    def create(cls, **fields: Any) -> User:
        """A user added to the bound session and flushed."""
        return cast(User, super().create(**fields))

    @classmethod
    def build(cls, **fields: Any) -> User:
        """A user not added to any session."""
        return cast(User, super().build(**fields))
