"""Scenario: an administrator and two users with well-known emails."""

from __future__ import annotations

from .context import ScenarioContext
from .factories import UserFactory

EMAILS = ("admin@server.com", "user1@server.com", "user2@server.com")


def run(context: ScenarioContext) -> None:
    """Create the users of :data:`EMAILS`, in that order."""
    for email in EMAILS:
        UserFactory.create(email=email)
    context.echo(f"Created {len(EMAILS)} users: {', '.join(EMAILS)}")
