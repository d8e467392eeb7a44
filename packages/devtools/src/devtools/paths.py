"""Where things live: the checkout, its state folder, caches and tmpfs for throwaway data."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from devtools.users import ServerUser

STATE_DIR_NAME = ".devtools"


def find_project_root(start: Path | None = None) -> Path:
    """The checkout's root: the nearest folder at or above ``start`` with config/ and noxfile.py."""
    here = (start or Path.cwd()).resolve()
    for candidate in [here, *here.parents]:
        if (candidate / "config").is_dir() and (candidate / "noxfile.py").is_file():
            return candidate
    raise FileNotFoundError(
        f"no project root (a folder with config/ and noxfile.py) at or above {here}"
    )


def state_dir(project_root: Path) -> Path:
    """The git-ignored folder holding running environments, persistent data and secrets.

    ``DEVTOOLS_STATE_DIR`` puts it elsewhere: another state folder is another, separate set of
    environments of the same checkout (the engine tests run that way).
    """
    override = os.environ.get("DEVTOOLS_STATE_DIR")
    path = Path(override).resolve() if override else project_root / STATE_DIR_NAME
    path.mkdir(mode=0o755, parents=True, exist_ok=True)
    return path


def cache_root() -> Path:
    """Where reusable artefacts (an initdb'd cluster, copied binaries) are cached.

    As root the cache must be reachable by the unprivileged server user, so it lives in
    /var/cache rather than under /root.
    """
    if os.geteuid() == 0:
        path = Path("/var/cache/devtools")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base) / "devtools"
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        path.chmod(0o755)
    return path


def fast_cache_root() -> Path:
    """A cache on tmpfs when there is one (lost at reboot, rebuilt in a second), else the cache.

    Named per user so another account's folder is never trusted.
    """
    scratch = scratch_root()
    if scratch == Path(tempfile.gettempdir()):
        return cache_root()
    path = scratch / f"devtools-cache-{os.geteuid()}"
    path.mkdir(mode=0o755, exist_ok=True)
    info = path.stat()
    if info.st_uid != os.geteuid() or info.st_mode & 0o022:
        return cache_root()
    return path


def scratch_root() -> Path:
    """Where throwaway data goes: tmpfs (/dev/shm) when present and writable, else the temp dir."""
    shm = Path("/dev/shm")  # noqa: S108 - every folder made there has a random name
    if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return Path(tempfile.gettempdir())


def server_home(root: Path, user: ServerUser) -> Path:
    """Where a server that runs as ``user`` keeps its files for the folder ``root``.

    That is ``root`` itself when ``user`` can reach it. As root in a checkout under a private
    folder (/root, a 0700 temp dir) it cannot, so the files go to a folder under /var/lib
    named after ``root``: the same ``root`` always maps to the same place.
    """
    if user.can_traverse(root):
        return root
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
    home = Path("/var/lib/devtools") / f"{root.name}-{digest}"
    home.mkdir(parents=True, exist_ok=True)
    for folder in (home.parent, home):
        folder.chmod(0o755)
    return home
