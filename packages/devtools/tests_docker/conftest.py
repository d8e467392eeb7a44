"""Fixtures of the real-engine tests: a running dockerd, the Compose plugin and the offline images.

This folder runs only in its own nox session, where dockerd runs; nothing here is skipped. Each
session uses its own state folder, so its compose projects (``devtools-<id>-...``) never meet a
developer's own scenarios or production, and at the end nothing with that prefix may be left.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.backends import Environment
from devtools.compose import images, naming
from devtools.compose.backend import ComposeBackend
from devtools.ports import free_port
from devtools.signals import unignore_interrupts

REPO_ROOT = Path(__file__).resolve().parents[3]


def pytest_configure(config: pytest.Config) -> None:
    # The Ctrl-C these tests send must reach the CLIs they start, also in a background run.
    unignore_interrupts()


def docker_names(*command: str) -> list[str]:
    """Names printed by a ``docker ... ls``-style command, one per line."""
    done = subprocess.run(
        ["docker", *command], capture_output=True, text=True, timeout=60, check=True
    )
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


def leftovers(prefix: str) -> list[str]:
    """Containers, volumes and networks whose name starts with ``prefix``."""
    found = []
    for kind, command in {
        "container": ("ps", "--all", "--format", "{{.Names}}"),
        "volume": ("volume", "ls", "--format", "{{.Name}}"),
        "network": ("network", "ls", "--format", "{{.Name}}"),
    }.items():
        found += [f"{kind} {name}" for name in docker_names(*command) if name.startswith(prefix)]
    return found


def make_backend(state_dir: Path, **environ: str) -> ComposeBackend:
    """A compose backend on this checkout with its own state folder."""
    env = Environment(REPO_ROOT, {**os.environ, **environ})
    env.state_dir = state_dir
    return ComposeBackend(env)


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """This run's state folder, set to the offline images (built once; cached when unchanged).

    Afterwards nothing named after it may remain: leftovers fail the run (and are removed).
    """
    state = tmp_path_factory.mktemp("devtools-state")
    images.prepare_images(REPO_ROOT, True, lambda line: None, state_dir=state)
    yield state
    prefix = naming.project_prefix(state)
    left = leftovers(prefix)
    for item in left:
        kind, name = item.split(" ", 1)
        subprocess.run(["docker", kind, "rm", "--force", name], capture_output=True, check=False)
    tags = [
        f"{naming.PREFIX}-{naming.checkout_id(state)}/app:{env}"
        for env in ("development", "scenario", "production")
    ]
    subprocess.run(["docker", "image", "rm", *tags], capture_output=True, check=False)
    assert not left, f"left behind: {left}"


@pytest.fixture(scope="session")
def backend(state_dir: Path) -> ComposeBackend:
    """The compose backend of this run (production on a free port instead of 8080)."""
    return make_backend(state_dir, APPLICATION_PORT=str(free_port()))


@pytest.fixture
def prefix(state_dir: Path) -> str:
    """The name prefix of this run's compose projects."""
    return naming.project_prefix(state_dir)
