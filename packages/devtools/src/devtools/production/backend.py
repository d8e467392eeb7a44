"""The production backend interface, so callers never ask which backend they have."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from devtools.config import Settings
from devtools.production import stack
from devtools.production.status import ProductionStatus


class ProductionBackend(Protocol):
    """What ``nox -s prod`` needs from a backend (local processes or Docker Compose)."""

    def up(
        self, settings: Settings, *, scale: int | str, environ: Mapping[str, str]
    ) -> ProductionStatus:
        """Start with ``scale`` replicas, or rescale the running stack live."""
        ...

    def status(self) -> ProductionStatus:
        """What runs, with a live health check of every part."""
        ...

    def logs(self, service: str | None = None, lines: int = 50) -> str:
        """The last lines of one service's logs, or of all of them."""
        ...

    def down(self, *, volumes: bool = False) -> str:
        """Stop everything; delete the data and generated secrets too when ``volumes``."""
        ...


@dataclass(frozen=True)
class LocalProduction:
    """The local backend: native PostgreSQL, gunicorn and nginx processes.

    Args:
        project_root: the checkout.
    """

    project_root: Path

    def up(
        self, settings: Settings, *, scale: int | str, environ: Mapping[str, str]
    ) -> ProductionStatus:
        """See :func:`devtools.production.stack.up`."""
        return stack.up(self.project_root, settings, scale=scale, environ=environ)

    def status(self) -> ProductionStatus:
        """See :func:`devtools.production.stack.status`."""
        return stack.status(self.project_root)

    def logs(self, service: str | None = None, lines: int = 50) -> str:
        """See :func:`devtools.production.stack.logs`."""
        return stack.logs(self.project_root, service, lines)

    def down(self, *, volumes: bool = False) -> str:
        """See :func:`devtools.production.stack.down`."""
        return stack.down(self.project_root, volumes=volumes)
