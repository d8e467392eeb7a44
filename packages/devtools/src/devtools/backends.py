"""The one interface both backends implement; callers never ask which backend they have."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from devtools import paths
from devtools.config import Settings, load_settings

Echo = Callable[[str], None]
BACKENDS = ("local", "compose")


class Backend(Protocol):
    """Environments of one checkout, run as local processes or as Compose projects."""

    name: str

    def scenario_up(self, name: str, args: Sequence[str], echo: Echo) -> None:
        """Start scenario ``name`` (or report it already up) and print its connection lines."""

    def scenario_down(self, name: str, echo: Echo) -> bool:
        """Stop a scenario and delete its data; False (and a message) when it was not up."""

    def scenario_list(self, echo: Echo) -> None:
        """Print the running scenarios: name, ports, age."""

    def prod_up(self, scale: int, echo: Echo) -> None:
        """Start or rescale the production simulation and print its URL and replicas."""

    def prod_status(self, echo: Echo) -> None:
        """Print replicas, ports, PIDs or containers, health."""

    def prod_logs(self, service: str | None, lines: int, echo: Echo) -> None:
        """Print the last lines of one service's log, or of all."""

    def prod_down(self, volumes: bool, echo: Echo) -> None:
        """Stop production; ``volumes`` also deletes its data and generated secrets."""

    def test_database(self) -> contextlib.AbstractContextManager[str]:
        """A throwaway server for a test run: yields a superuser ``postgresql://`` URL."""

    def dev_serve(self, port: int | None, echo: Echo) -> int:
        """Run the development server in the foreground until Ctrl-C; return its exit code.

        The development database keeps running (and its data stays) afterwards.
        """

    def dev_down(self, volumes: bool, echo: Echo) -> None:
        """Stop the development database; ``volumes`` also deletes its data."""

    def app_environment(
        self, environment: str, echo: Echo
    ) -> contextlib.AbstractContextManager[dict[str, str]]:
        """The environment of an app command (``flask ...``) run on the host against
        ``environment``'s database (testing: a throwaway one for the block's duration)."""

    def database_url(self, target: str) -> str | None:
        """The app database URL of a running environment (development, production or a
        scenario's name), or None when it is not running on this backend."""


class Environment:
    """What a backend needs from the caller: the checkout, its state folder, the environment."""

    def __init__(
        self, project_root: Path, environ: Mapping[str, str], state_dir: Path | None = None
    ) -> None:
        self.project_root = project_root
        self.environ = environ
        # Another state folder is another set of environments (the bench uses a scratch one).
        self.state_dir = state_dir or paths.state_dir(project_root)

    def settings(self, environment: str) -> Settings:
        """Validated settings of an environment with the environment variables applied."""
        return load_settings(self.project_root, environment, self.environ)


def get_backend(
    name: str,
    project_root: Path,
    environ: Mapping[str, str] | None = None,
    state_dir: Path | None = None,
) -> Backend:
    """The backend called ``name`` for this checkout (and ``state_dir``, default its own)."""
    env = Environment(project_root, dict(os.environ if environ is None else environ), state_dir)
    if name == "compose":
        from devtools.compose.backend import ComposeBackend

        return ComposeBackend(env)
    from devtools.local_backend import LocalBackend

    return LocalBackend(env)
