"""One Compose project, driven through python-on-whales: build, up, port, containers, logs, down.

Compose reads the variables the files interpolate from its process environment, which takes
precedence over any ``--env-file``; python-on-whales always runs the CLI with this process's
``os.environ`` and has no per-call environment. So each call lays the project's variables
over ``os.environ`` for its duration (and unsets the compose settings that would pick other
files or projects), then restores it: a stray exported ``POSTGRES_PASSWORD_FILE`` or
``COMPOSE_FILE`` in the user's shell can never change what a call does.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from python_on_whales import DockerClient, DockerException

from devtools.errors import DevtoolsError

# Every variable docker/*.yml interpolates: ours when we set it, else the caller's, never
# whatever this process happened to inherit.
FILE_VARIABLES = (
    "POSTGRES_PASSWORD_FILE",
    "SECRET_KEY_FILE",
    "NGINX_CONFIG_FILE",
    "POSTGRES_IMAGE",
    "NGINX_IMAGE",
    "APP_IMAGE",
    "PYTHON_IMAGE",
    "PULL_POLICY",
    "POSTGRES_USER",
    "APPLICATION_DB",
    "APPLICATION_PORT",
    "DEV_PORT",
    "GUNICORN_WORKERS",
    "FLASK_CONFIG",
)
# Compose settings that would make it read other files, profiles or variables.
DROPPED = (
    "COMPOSE_FILE",
    "COMPOSE_PROJECT_NAME",
    "COMPOSE_PROFILES",
    "COMPOSE_ENV_FILES",
    "COMPOSE_PATH_SEPARATOR",
)
# Where the daemon is: taken from the caller's environment.
DOCKER_VARIABLES = (
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
    "DOCKER_API_VERSION",
)
# Builds go through the engine's builder; compose's bake mode needs a buildx it may lack.
FIXED = {"COMPOSE_BAKE": "false"}
SERVICE_LABEL = "com.docker.compose.service"
NUMBER_LABEL = "com.docker.compose.container-number"
PROJECT_LABEL = "com.docker.compose.project"
ERROR_LINES = 15

T = TypeVar("T")
_ENVIRON_LOCK = threading.Lock()


class ComposeError(DevtoolsError):
    """A compose command failed; the message carries the end of its output."""


def process_environment(
    variables: Mapping[str, str], environ: Mapping[str, str]
) -> dict[str, str | None]:
    """What one compose call sees of the variables compose cares about (None: unset)."""
    overlay: dict[str, str | None] = dict.fromkeys(DROPPED)
    for name in (*FILE_VARIABLES, *DOCKER_VARIABLES):
        overlay[name] = environ.get(name)
    overlay.update(variables)
    overlay.update(FIXED)
    return overlay


@contextlib.contextmanager
def overlaid_environ(overlay: Mapping[str, str | None]) -> Iterator[None]:
    """Apply ``overlay`` to ``os.environ`` for the block, then restore every touched name."""
    with _ENVIRON_LOCK:
        saved = {name: os.environ.get(name) for name in overlay}
        try:
            _apply(overlay)
            yield
        finally:
            _apply(saved)


def _apply(values: Mapping[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@dataclass(frozen=True)
class ContainerInfo:
    """One container of a project, as ``docker inspect`` saw it.

    Attributes:
        name: the container name (``<project>-web-2``).
        service: its compose service.
        number: its replica number within the service.
        status: ``running``, ``restarting``, ``exited``, ``created``...
        health: ``healthy``, ``unhealthy``, ``starting``, or None without a healthcheck.
        hostname: the container's host name (the app sends it as ``X-Replica``).
        published: ``127.0.0.1:8080->8080/tcp``-style port bindings.
        restarts: how often Docker restarted it (``restart: unless-stopped`` hides crashes).
    """

    name: str
    service: str
    number: int
    status: str
    health: str | None
    hostname: str
    published: tuple[str, ...]
    restarts: int = 0

    @property
    def crashed(self) -> bool:
        """Stopped, or restarted by Docker after its process exited."""
        return self.status in ("exited", "dead", "restarting") or self.restarts > 0

    @property
    def ready(self) -> bool:
        """Running and, when it has a healthcheck, healthy."""
        return self.status == "running" and self.health in (None, "healthy")

    def describe(self) -> str:
        """``running, healthy``-style state."""
        return self.status if self.health is None else f"{self.status}, {self.health}"


def running_services(containers: Iterable[ContainerInfo]) -> set[str]:
    """The services with at least one running container (healthy or not)."""
    return {c.service for c in containers if c.status == "running"}


class ComposeProject:
    """A compose project: a name, one compose file and the variables it is interpolated with.

    Args:
        name: the project name (unique per checkout and environment).
        file: the compose file (``docker/<environment>.yml``).
        variables: the interpolation variables (file paths and tags: no secret values).
        docker: the docker CLI to run.
        environ: the caller's environment (where the daemon is, image overrides).
    """

    def __init__(
        self,
        name: str,
        file: Path,
        variables: Mapping[str, str],
        *,
        docker: str = "docker",
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.file = file
        self.variables = dict(variables)
        self.environ = dict(environ or {})
        self.docker = docker
        # The project directory defaults to the compose file's folder, which the files'
        # relative paths (build context ``..``) are written against.
        self.client = DockerClient(
            client_call=[docker], compose_files=[file], compose_project_name=name
        )

    def argv(self, *args: str) -> list[str]:
        """``docker compose`` with this project's name and file, then ``args``: for commands
        whose output goes straight to the user (``logs --follow``, the passthrough)."""
        return [
            self.docker,
            "compose",
            "--project-name",
            self.name,
            "--file",
            str(self.file),
            *args,
        ]

    def command_environment(self) -> dict[str, str]:
        """The environment of an :meth:`argv` command: the variables laid over the caller's."""
        env = {**os.environ, **self.environ}
        for name, value in process_environment(self.variables, self.environ).items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def _call(self, action: str, call: Callable[[], T]) -> T:
        with overlaid_environ(process_environment(self.variables, self.environ)):
            try:
                return call()
            except DockerException as error:
                raise ComposeError(self._failure(action, error)) from None

    def _failure(self, action: str, error: DockerException) -> str:
        output = (error.stderr or "").strip() or (error.stdout or "").strip()
        tail = "\n".join(output.splitlines()[-ERROR_LINES:])
        return (
            f"docker compose {action} failed for project {self.name} "
            f"(exit code {error.return_code})\n{tail}"
        ).rstrip()

    def build(self, services: Sequence[str]) -> None:
        """Build the images of ``services`` (layers cached by the engine: fast when unchanged)."""
        self._call("build", lambda: self.client.compose.build(list(services), quiet=True))

    def up(
        self,
        services: Sequence[str] | None = None,
        *,
        scales: Mapping[str, int] | None = None,
        wait: bool = False,
        wait_timeout: int | None = None,
        recreate: bool = True,
    ) -> None:
        """``up --detach``: create and start ``services`` (default: all) and their dependencies.

        Compose waits for ``depends_on: service_healthy`` dependencies on its own; ``wait``
        also waits for the started services' healthchecks.

        Raises:
            ComposeError: with compose's own output and the last log lines of the services
                (an unhealthy dependency says why only in its log).
        """
        try:
            self._up(
                services, scales=scales, wait=wait, wait_timeout=wait_timeout, recreate=recreate
            )
        except ComposeError as error:
            raise ComposeError(f"{error}\n{self.logs_tail(tail=20)}") from None

    def _up(
        self,
        services: Sequence[str] | None,
        *,
        scales: Mapping[str, int] | None,
        wait: bool,
        wait_timeout: int | None,
        recreate: bool,
    ) -> None:
        self._call(
            "up",
            lambda: self.client.compose.up(
                list(services) if services is not None else None,
                detach=True,
                scales=dict(scales or {}),
                wait=wait,
                wait_timeout=wait_timeout,
                recreate=recreate,
                quiet=True,
            ),
        )

    def stop(self, services: Sequence[str], timeout: int | None = None) -> None:
        """Stop the containers of ``services`` (they stay, with their data, until ``down``)."""
        self._call("stop", lambda: self.client.compose.stop(list(services), timeout=timeout))

    def down(self, *, volumes: bool, timeout: int | None = None) -> None:
        """``down --remove-orphans``; ``volumes`` also deletes the project's named volumes.

        ``timeout`` overrides the services' ``stop_grace_period`` (seconds).
        """
        self._call(
            "down",
            lambda: self.client.compose.down(
                remove_orphans=True, volumes=volumes, timeout=timeout, quiet=True
            ),
        )

    def port(self, service: str, private_port: int, index: int = 1) -> int:
        """The host port Docker published ``service``'s ``private_port`` on.

        Raises:
            ComposeError: the service has no such container or binding.
        """
        host, port = self._call(
            "port", lambda: self.client.compose.port(service, private_port, index=index)
        )
        if host is None or port is None:
            raise ComposeError(
                f"{service} of project {self.name} publishes no port for {private_port}"
            )
        return port

    def containers(self) -> list[ContainerInfo]:
        """Every container of the project (stopped ones too), by service and number.

        Found by the project label, so it works without the compose file's variables.
        """
        label: tuple[Literal["label"], str] = ("label", f"{PROJECT_LABEL}={self.name}")
        found = self._call("ps", lambda: self.client.container.list(all=True, filters=[label]))
        infos = []
        for container in found:
            try:
                infos.append(self._call("inspect", functools.partial(_info, container)))
            except ComposeError:
                continue  # removed between the listing and the inspection
        return sorted(infos, key=lambda info: (info.service, info.number))

    def logs(self, services: Sequence[str] = (), tail: int = 50) -> str:
        """The last ``tail`` lines of each container of ``services`` (default: all)."""
        text = self._call(
            "logs",
            lambda: self.client.compose.logs(list(services), tail=str(tail)),
        )
        return str(text).rstrip()

    def container_logs(self, container: str, tail: int = 50) -> str:
        """The last ``tail`` lines of one container."""
        text = self._call("logs", lambda: self.client.container.logs(container, tail=tail))
        return str(text).rstrip()

    def logs_tail(self, services: Sequence[str] = (), tail: int = 30) -> str:
        """A log excerpt for error messages; never raises."""
        try:
            text = self.logs(services, tail)
        except DevtoolsError as error:
            return f"(no logs: {error})"
        return f"last log lines of {self.name}:\n{text}" if text else "(no log lines)"

    def image_exists(self, tag: str) -> bool:
        """Whether the engine has image ``tag``."""
        return self._call("image inspect", lambda: bool(self.client.image.exists(tag)))

    def volume_exists(self, name: str) -> bool:
        """Whether the engine has volume ``name`` (``<project>_<volume>``)."""
        return self._call("volume inspect", lambda: bool(self.client.volume.exists(name)))


def _info(container: Any) -> ContainerInfo:
    labels: dict[str, str] = container.config.labels or {}
    state = container.state
    health = state.health.status if state.health is not None else None
    return ContainerInfo(
        name=str(container.name).lstrip("/"),
        service=labels.get(SERVICE_LABEL, "?"),
        number=int(labels.get(NUMBER_LABEL, "0")),
        status=str(state.status),
        health=health,
        hostname=str(container.config.hostname or ""),
        published=_published(container.network_settings.ports or {}),
        restarts=int(container.restart_count or 0),
    )


def _published(ports: Mapping[str, Any]) -> tuple[str, ...]:
    bindings = []
    for private, hosts in sorted(ports.items()):
        for host in hosts or []:
            ip = host.get("HostIp") if isinstance(host, dict) else getattr(host, "host_ip", "")
            port = (
                host.get("HostPort") if isinstance(host, dict) else getattr(host, "host_port", "")
            )
            bindings.append(f"{ip}:{port}->{private}")
    return tuple(bindings)
