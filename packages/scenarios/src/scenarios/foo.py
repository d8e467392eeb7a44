"""Scenario: says hello and touches nothing, to check the machinery end to end."""

from __future__ import annotations

from .context import ScenarioContext


def run(context: ScenarioContext) -> None:
    """Print a greeting naming the scenario."""
    context.echo(f"HEY! This is scenario {context.name}")
