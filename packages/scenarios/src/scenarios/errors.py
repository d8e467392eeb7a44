"""The package's exceptions: one base class, so callers can catch everything scenarios raise."""

from __future__ import annotations


class ScenarioError(Exception):
    """Base class of every error this package raises on purpose."""


class UnknownScenario(ScenarioError, LookupError):
    """No scenario has the requested name; the message lists the known ones."""


class ScenarioUsageError(ScenarioError, ValueError):
    """A scenario was given command-line words it cannot use (for example a bad ``--count``)."""


class FactoryNotBound(ScenarioError, RuntimeError):
    """A factory was asked to save an object outside any bound session."""
