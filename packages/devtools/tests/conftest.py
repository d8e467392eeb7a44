"""Shared helpers for devtools' own tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools import paths
from devtools.postgres.cluster import OWNER_FILE, THROWAWAY_PREFIX
from devtools.processes import ProcessRef
from devtools.signals import unignore_interrupts


def pytest_configure(config: pytest.Config) -> None:
    # The Ctrl-C these tests send must reach the CLIs they start, also in a background run.
    unignore_interrupts()


def cli_argv(project: Path, *args: str) -> list[str]:
    """``devtools ARGS`` on ``project`` as a real process (through main(), as nox runs it)."""
    return [
        sys.executable,
        "-c",
        "from devtools.cli import main; main()",
        "--project-root",
        str(project),
        *args,
    ]


def start_cli(project: Path, *args: str) -> subprocess.Popen[str]:
    """``devtools ARGS`` in a session of its own (a test can signal its whole group, as a
    terminal's Ctrl-C does), output captured."""
    return subprocess.Popen(
        cli_argv(project, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def finish(child: subprocess.Popen[str], timeout: float) -> str:
    """``child``'s output once it ends; when it does not, its group is SIGKILLed (the timeout
    still fails the test)."""
    try:
        return child.communicate(timeout=timeout)[0]
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def throwaway_roots() -> set[Path]:
    """Throwaway cluster folders currently on the scratch filesystem."""
    return set(paths.scratch_root().glob(f"{THROWAWAY_PREFIX}*"))


def orphaned_roots() -> set[Path]:
    """Throwaway folders whose owning process is gone (other live runs' folders are fine)."""
    orphans = set()
    for root in throwaway_roots():
        try:
            owner = json.loads((root / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if not owner["detached"] and not ProcessRef.from_json(owner["owner"]).alive():
            orphans.add(root)
    return orphans


def own_roots() -> set[Path]:
    """Throwaway folders created by this very process."""
    prefix = f"{THROWAWAY_PREFIX}{os.getpid()}-"
    return {root for root in throwaway_roots() if root.name.startswith(prefix)}


def process_uid(pid: int) -> int:
    """The real uid of a running process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


@pytest.fixture
def no_leftovers():
    """Fail the test if it leaves a new throwaway cluster folder behind."""
    before = own_roots()
    yield
    left = own_roots() - before
    assert not left, f"left behind: {left}"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty project checkout (config/ and noxfile.py) in a temp folder."""
    (tmp_path / "config").mkdir()
    (tmp_path / "noxfile.py").write_text("")
    os.chmod(tmp_path, 0o755)
    return tmp_path


REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def configured_project(project: Path) -> Iterator[Path]:
    """A temp checkout with the repository's config files; its environments are torn down after."""
    import shutil

    for path in (REPO_ROOT / "config").glob("*.json"):
        shutil.copy(path, project / "config")
    yield project
    from devtools.environments import persistent
    from devtools.environments import scenario as scenarios

    state = project / ".devtools"
    if state.exists():
        for running in scenarios.running_scenarios(state):
            scenarios.stop_scenario(running)
        for environment in ("development", "production"):
            persistent.stop_database(state, environment, volumes=True)


def distribution_postgres() -> Path:
    """The newest Debian/Ubuntu PostgreSQL bin folder (.ci/run and the workflow install one)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda path: int(path.parts[-3])
    )
    if not found:
        pytest.fail("no /usr/lib/postgresql/N/bin/postgres: install the postgresql package")
    return found[-1].parent
