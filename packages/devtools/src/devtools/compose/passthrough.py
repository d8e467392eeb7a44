"""``nox -s compose -- ARGS``: Docker Compose itself on one environment's project.

The tutorial's ``./manage.py compose``: the project name, the file and the variables (staged
secret files, images, ports) are the ones devtools uses, so ``ps``, ``logs -f web``, ``exec db
psql ...`` or ``up -d`` act on exactly the containers ``nox -s dev``/``prod``/``scenario`` run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devtools import state
from devtools.compose.development import ENVIRONMENT as DEVELOPMENT
from devtools.compose.development import ComposeDevelopment
from devtools.compose.project import ComposeProject
from devtools.config import SECRET_KEYS
from devtools.environments import scenario as scenarios
from devtools.errors import UsageError
from devtools.secrets_store import fill_secrets

if TYPE_CHECKING:
    from devtools.compose.backend import ComposeBackend

SCENARIO_PREFIX = "scenario:"
CHOICES = f"development, production or {SCENARIO_PREFIX}NAME"


def environment_project(backend: ComposeBackend, environment: str) -> ComposeProject:
    """The project ``nox -s compose`` drives for ``environment``, its files staged.

    Raises:
        UsageError: an unknown environment, a scenario that is not up, testing (whose
            projects live only as long as their test run), or one run by the local backend.
    """
    backend.docker()
    if environment == DEVELOPMENT:
        return _development(backend)
    if environment == "production":
        return _production(backend)
    if environment.startswith(SCENARIO_PREFIX):
        return _scenario(backend, environment.removeprefix(SCENARIO_PREFIX))
    if environment == "testing":
        raise UsageError(
            "testing projects live only as long as their test run: "
            "use nox -s tests -- --backend compose"
        )
    raise UsageError(f"unknown environment {environment!r}: use {CHOICES}")


def _development(backend: ComposeBackend) -> ComposeProject:
    development = ComposeDevelopment(backend)
    record, project = development.recorded_project()
    if record is None:
        development.stage_password(project, development.settings())
    return project


def _production(backend: ComposeBackend) -> ComposeProject:
    record, project = backend.recorded_production()
    if record is None:
        settings = fill_secrets(backend.env.settings("production"), backend.state_dir, SECRET_KEYS)
        backend.stage_production(project, settings)
    return project


def _scenario(backend: ComposeBackend, name: str) -> ComposeProject:
    record = state.read_record(backend.state_dir, scenarios.record_name(name))
    if record is None:
        raise UsageError(
            f'scenario {name} is not up: start it with nox -s "scenario({name})" '
            "-- --backend compose"
        )
    backend.require_ours(record, f"scenario {name}", f'nox -s "scenario({name})" -- down')
    return backend.project("scenario", record["project"], record["variables"])
