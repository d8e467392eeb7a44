"""Which session the factories write to: set for a block by :func:`bound_to`.

Kept apart from :mod:`scenarios.factories` so that running a scenario that uses no factory
(``bulk``) does not pay for importing factory-boy and Faker.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy.orm import Session

from .errors import FactoryNotBound

_session: ContextVar[Session | None] = ContextVar("scenarios_factory_session", default=None)


def bound_session() -> Session | None:
    """The session of the innermost :func:`bound_to` block, if any."""
    return _session.get()


def current_session() -> Session:
    """The session the factories are bound to.

    Raises:
        FactoryNotBound: No :func:`bound_to` block is active.
    """
    session = _session.get()
    if session is None:
        raise FactoryNotBound(
            "the factories are not bound to a session: create objects inside a scenario, "
            "or inside `with scenarios.factories.bound_to(session):`"
        )
    return session


@contextmanager
def bound_to(session: Session) -> Iterator[Session]:
    """Bind every factory to ``session`` for the block (blocks nest)."""
    token = _session.set(session)
    try:
        yield session
    finally:
        _session.reset(token)
