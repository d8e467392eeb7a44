"""The one place that runs external commands to completion and reports their output on failure."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

from devtools.errors import CommandError
from devtools.users import ServerUser


def run(
    argv: list[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: ServerUser | None = None,
    timeout: float | None = 120,
) -> str:
    """Run ``argv`` and return its combined stdout and stderr.

    Args:
        argv: the command; never a shell string.
        env: the complete environment, or None to inherit.
        cwd: working directory.
        user: run as this unprivileged user (only meaningful when we are root).
        timeout: seconds before the command is killed.

    Raises:
        CommandError: the command exited non-zero (its output is in the message).
    """
    kwargs = user.popen_kwargs() if user else {}
    completed = subprocess.run(
        argv,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )
    if completed.returncode != 0:
        raise CommandError(argv, completed.returncode, completed.stdout)
    return str(completed.stdout)
