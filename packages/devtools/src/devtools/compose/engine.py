"""Is Docker usable? One cheap check, before the compose backend touches anything.

Both commands it runs answer in well under a second when Docker works; a daemon that hangs
(a dead ``DOCKER_HOST`` over TCP) is cut off by the timeout instead of hanging the caller.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping

from devtools.errors import DevtoolsError

CHECK_TIMEOUT = 10.0
LOCAL_HINT = "use the local backend: unset DEVTOOLS_BACKEND or pass --backend local"
PLUGIN_HINT = (
    "install it with `python -m devtools.compose.binary /usr/local/lib/docker/cli-plugins`"
)


class DockerUnavailable(DevtoolsError):
    """The Docker CLI, its Compose plugin or the daemon cannot be used; nothing was started."""


def require_docker(environ: Mapping[str, str], timeout: float = CHECK_TIMEOUT) -> str:
    """Check that the Docker CLI, Compose v2 and the daemon work; return the CLI's path.

    Args:
        environ: the caller's environment (``PATH``, ``DOCKER_HOST`` and friends).
        timeout: seconds each check may take.

    Raises:
        DockerUnavailable: one line saying what is wrong and to use the local backend.
    """
    docker = shutil.which("docker", path=environ.get("PATH"))
    if docker is None:
        raise DockerUnavailable(f"the docker CLI is not installed (not on PATH); {LOCAL_HINT}")
    where = environ.get("DOCKER_HOST") or "the default socket"
    server = _run([docker, "version", "--format", "{{.Server.Version}}"], environ, timeout)
    if server is None:
        raise DockerUnavailable(
            f"the Docker daemon at {where} did not answer within {timeout:g}s; {LOCAL_HINT}"
        )
    code, output = server
    if code != 0 or not output.strip():
        raise DockerUnavailable(
            f"cannot use the Docker daemon at {where} ({_reason(output)}): start it or fix "
            f"DOCKER_HOST, or {LOCAL_HINT}"
        )
    compose = _run([docker, "compose", "version", "--short"], environ, timeout)
    if compose is None or compose[0] != 0:
        raise DockerUnavailable(
            f"the Docker Compose v2 plugin is missing ({PLUGIN_HINT}), or {LOCAL_HINT}"
        )
    return docker


def _run(argv: list[str], environ: Mapping[str, str], timeout: float) -> tuple[int, str] | None:
    """Exit code and combined output, or None on timeout."""
    try:
        done = subprocess.run(
            argv,
            env=dict(environ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    except OSError as error:
        return 127, str(error)
    return done.returncode, done.stdout


def _reason(output: str) -> str:
    """The line of Docker's output that says what failed (it may print client details first)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        lowered = line.lower()
        if any(word in lowered for word in ("cannot connect", "error", "permission denied")):
            return line
    return lines[-1] if lines else "no answer"
