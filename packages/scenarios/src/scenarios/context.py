"""What a scenario receives when it runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import click
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class ScenarioContext:
    """The arguments of a scenario's ``run(context)``.

    Attributes:
        name: The scenario's name, as the user typed it.
        session: The SQLAlchemy session to write with. The caller owns its transaction: a
            scenario may flush but never commits or rolls back.
        args: Extra command-line words meant for the scenario (for example ``--count 5000``).
        echo: Prints one line of output for the user.
    """

    name: str
    session: Session
    args: list[str] = field(default_factory=list)
    echo: Callable[[str], None] = click.echo
