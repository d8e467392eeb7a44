"""Test support: load a named scenario into a test's own (rolled-back) session.

In a test::

    from scenarios.testing import load_scenario

    def test_lists_users(client, db_session):
        load_scenario(db_session, "users")
        ...

or as a fixture, in a test module or conftest::

    users = scenario_fixture("users", session="db_session")
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, cast

import click
from sqlalchemy.orm import Session

from . import registry

if TYPE_CHECKING:
    import pytest


def load_scenario(
    session: Session,
    name: str,
    *,
    args: Sequence[str] = (),
    echo: Callable[[str], None] = click.echo,
) -> None:
    """Run scenario ``name`` in ``session`` and flush; nothing is committed.

    Rows are visible to everything using the same connection (a test's client whose app is
    bound to the test's connection, for example) and vanish when the test rolls back.

    Args:
        session: The test's session.
        name: The scenario, as ``scenario-run`` would take it.
        args: The scenario's command-line words, for example ``["--count", "100"]``.
        echo: Where the scenario's output goes (stdout, which pytest captures).

    Raises:
        UnknownScenario: No scenario has that name.
        ScenarioUsageError: The scenario refused ``args``.
    """
    registry.run_scenario(name, session, args=args, echo=echo)


def scenario_fixture(
    name: str, *, session: str = "db_session", args: Sequence[str] = ()
) -> Callable[..., Session]:
    """A pytest fixture that loads scenario ``name`` into the session fixture named ``session``.

    The fixture's value is that session. Assign it to a module or conftest attribute; the
    attribute's name is the fixture's name.
    """
    import pytest

    arguments = list(args)

    @pytest.fixture
    def load(request: pytest.FixtureRequest) -> Session:
        target = cast(Session, request.getfixturevalue(session))
        load_scenario(target, name, args=arguments)
        return target

    load.__doc__ = f"The {session!r} session with scenario {name!r} loaded."
    return load
