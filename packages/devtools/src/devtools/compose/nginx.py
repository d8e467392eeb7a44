"""The compose side of the shared nginx template (``docker/nginx/nginx.conf.template``).

In a container nginx cannot list the replicas itself: the upstream names the ``web`` service
once and ``resolve`` makes nginx re-query Docker's DNS (127.0.0.11) as the record's validity
runs out, so ``--scale web=N`` takes effect without restarting nginx.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from devtools.production.nginx import FAIL_TIMEOUT, MAX_FAILS, render, template_path

# Docker's embedded DNS server, present in every user-defined network.
DOCKER_DNS = "127.0.0.11"
# How long nginx trusts an answer: the delay before new or removed replicas are seen.
RESOLVE_VALID = "2s"
WEB_SERVICE = "web"
WEB_PORT = 8000
LISTEN_PORT = 8080


def compose_values() -> dict[str, str]:
    """The template values of the compose backend (paths are inside the nginx container)."""
    return {
        "WORKER_PROCESSES": "auto",
        # /tmp is the container's only writable place (a private tmpfs; the root filesystem
        # is read-only), not the host's shared /tmp.
        "PID_FILE": "/tmp/nginx.pid",  # noqa: S108
        "ERROR_LOG": "stderr",
        "ACCESS_LOG": "/dev/stdout",
        "TEMP_DIR": "/tmp",  # noqa: S108
        "RESOLVER": f"resolver {DOCKER_DNS} valid={RESOLVE_VALID} ipv6=off;",
        "UPSTREAM_SERVERS": (
            f"server {WEB_SERVICE}:{WEB_PORT} resolve "
            f"max_fails={MAX_FAILS} fail_timeout={FAIL_TIMEOUT};"
        ),
        "LISTEN": str(LISTEN_PORT),
    }


def write_compose_config(project_root: Path, target: Path) -> Path:
    """Render the shared template for compose into ``target`` (the ``NGINX_CONFIG_FILE``).

    The file is replaced atomically and left readable by the container's unprivileged nginx.

    Raises:
        ConfigError: the template is missing or its placeholders do not match the values.
    """
    text = render(template_path(project_root), compose_values())
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w") as stream:
            stream.write(text)
        os.chmod(staging, 0o644)
        os.replace(staging, target)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return target
