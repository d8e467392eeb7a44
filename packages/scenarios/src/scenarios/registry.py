"""Finds scenarios by name: every module of the ``scenarios`` package that is not infrastructure.

Adding ``src/scenarios/<name>.py`` with a ``run(context)`` function is all it takes. Because the
package extends its ``__path__`` (``pkgutil.extend_path``), a ``scenarios/`` folder in any other
``sys.path`` entry (``PYTHONPATH``) contributes scenarios too, without editing this package.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Protocol, cast

import click
from sqlalchemy.orm import Session

import scenarios

from .binding import bound_to
from .context import ScenarioContext
from .errors import ScenarioError, UnknownScenario

# The package's own machinery: importable modules that are not scenarios.
INFRASTRUCTURE = frozenset(
    {"binding", "cli", "context", "emails", "errors", "factories", "loading", "registry", "testing"}
)


class Scenario(Protocol):
    """A loaded scenario module."""

    __name__: str

    def run(self, context: ScenarioContext) -> None:
        """Write the scenario's data through ``context.session``."""


def available() -> list[str]:
    """The names of every scenario, sorted. Nothing is imported to find them."""
    names = {
        module.name
        for module in pkgutil.iter_modules(scenarios.__path__)
        if not module.name.startswith("_") and module.name not in INFRASTRUCTURE
    }
    return sorted(names)


def load(name: str) -> Scenario:
    """Import the scenario called ``name``.

    Raises:
        UnknownScenario: No scenario has that name; the message lists the known ones.
        ScenarioError: The module exists but has no ``run`` function.
    """
    known = available()
    if name not in known:
        listing = ", ".join(known) or "none"
        raise UnknownScenario(f"unknown scenario {name!r}: known scenarios are {listing}")
    # A file created since the last import would be missed by the finders' directory caches.
    importlib.invalidate_caches()
    module: ModuleType = importlib.import_module(f"{scenarios.__name__}.{name}")
    if not callable(getattr(module, "run", None)):
        raise ScenarioError(
            f"scenario module {module.__name__} ({module.__file__}) has no run(context) function"
        )
    return cast(Scenario, module)


def run_scenario(
    name: str,
    session: Session,
    *,
    args: Sequence[str] = (),
    echo: Callable[[str], None] = click.echo,
) -> None:
    """Run scenario ``name`` in ``session`` and flush; the caller commits or rolls back.

    The factories are bound to ``session`` while the scenario runs.

    Raises:
        UnknownScenario: No scenario has that name.
        ScenarioUsageError: The scenario refused ``args``.
    """
    scenario = load(name)
    context = ScenarioContext(name=name, session=session, args=list(args), echo=echo)
    with bound_to(session):
        scenario.run(context)
    session.flush()
