"""Files handed to containers: secrets and the nginx config, staged in the state folder.

Compose outside swarm bind-mounts a file secret as it is on the host (its ``uid`` and
``mode`` settings are ignored), and the containers run as unprivileged users (postgres 999,
the app 10001, nginx 101). So each file is made readable by all (0644) inside a folder only
its owner can enter (0700): other users of the host cannot reach it, the containers can.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o644


def private_folder(path: Path) -> Path:
    """Create ``path`` (and its parents) and make it enterable by its owner only."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(FOLDER_MODE)
    return path


def stage_files(folder: Path, contents: Mapping[str, str]) -> dict[str, Path]:
    """Write each ``name -> text`` into ``folder`` (made private) as a 0644 file.

    Every file appears atomically: a container starting meanwhile never reads half a secret.

    Returns:
        name -> the staged file.
    """
    private_folder(folder)
    staged = {}
    for name, text in contents.items():
        target = folder / name
        fd, staging = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
        try:
            with os.fdopen(fd, "w") as stream:
                stream.write(text)
            os.chmod(staging, FILE_MODE)
            os.replace(staging, target)
        except BaseException:
            Path(staging).unlink(missing_ok=True)
            raise
        staged[name] = target
    return staged


def remove_folder(folder: Path) -> None:
    """Delete a staging folder and everything in it (absent is fine)."""
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(folder)
