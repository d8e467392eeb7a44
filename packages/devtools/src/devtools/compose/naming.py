"""Compose project and image names: unique per checkout, per scenario and per test run.

Every name starts with ``devtools-<checkout id>-``, so two checkouts (or a test suite using its
own state folder) never touch each other's containers, and a leftover check can list
everything of ours by that prefix.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from pathlib import Path

PREFIX = "devtools"
_INVALID = re.compile(r"[^a-z0-9_-]+")


def checkout_id(state_dir: Path) -> str:
    """Eight hex digits naming the checkout, derived from its state folder's real path."""
    return hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:8]


def project_prefix(state_dir: Path) -> str:
    """The prefix of every compose project of the checkout (``devtools-1a2b3c4d-``)."""
    return f"{PREFIX}-{checkout_id(state_dir)}-"


def slug(name: str) -> str:
    """``name`` as allowed in a compose project name (lower case, digits, ``-`` and ``_``)."""
    cleaned = _INVALID.sub("-", name.lower()).strip("-_")
    if cleaned != name:
        # Different names must not map to one project: keep a trace of the original.
        cleaned = f"{cleaned}-{hashlib.sha256(name.encode()).hexdigest()[:6]}".lstrip("-")
    return cleaned


def scenario_project(state_dir: Path, scenario: str) -> str:
    """The project of scenario ``scenario`` (``devtools-1a2b3c4d-scenario-users``)."""
    return f"{project_prefix(state_dir)}scenario-{slug(scenario)}"


def production_project(state_dir: Path) -> str:
    """The production simulation's project (``devtools-1a2b3c4d-production``)."""
    return f"{project_prefix(state_dir)}production"


def development_project(state_dir: Path) -> str:
    """The development environment's project (``devtools-1a2b3c4d-development``)."""
    return f"{project_prefix(state_dir)}development"


def test_project(state_dir: Path) -> str:
    """A fresh project for one test run's database (``devtools-1a2b3c4d-test-9f8e7d``)."""
    return f"{project_prefix(state_dir)}test-{secrets.token_hex(3)}"


def app_image(state_dir: Path, environment: str) -> str:
    """The app image tag of one environment of the checkout.

    One tag per environment: a scenario's rebuild never changes the image production starts
    its next replicas from.
    """
    return f"{PREFIX}-{checkout_id(state_dir)}/app:{environment}"
