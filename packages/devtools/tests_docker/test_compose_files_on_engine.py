"""The compose files on a real Docker engine with the offline stand-in images.

Opt-in (``DEVTOOLS_DOCKER_TESTS=1``): it needs a running dockerd, the Compose CLI plugin and
root (debootstrap), and a cold run builds images for about two minutes.
"""

from __future__ import annotations

import os
import secrets
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from devtools import commands
from devtools.compose.certs import stage_ca_certificates
from devtools.compose.nginx import write_compose_config
from devtools.compose.offline import build_offline_images, default_sources
from devtools.ports import free_port
from devtools.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    """The offline stand-ins (built once, reused while their inputs do not change)."""
    return build_offline_images(default_sources(REPO_ROOT))


@pytest.fixture
def variables(images: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """Compose variables: the stand-in images, secret files and the rendered nginx config."""
    folder = tmp_path / "secrets"
    folder.mkdir(mode=0o700)
    for name in ("db_password", "secret_key"):
        (folder / name).write_text(secrets.token_urlsafe(24) + "\n")
        (folder / name).chmod(0o644)
    return {
        **images,
        "APP_IMAGE": f"devtools-test/app:{uuid.uuid4().hex[:8]}",
        "POSTGRES_PASSWORD_FILE": str(folder / "db_password"),
        "SECRET_KEY_FILE": str(folder / "secret_key"),
        "NGINX_CONFIG_FILE": str(write_compose_config(REPO_ROOT, tmp_path / "nginx.conf")),
        "APPLICATION_PORT": str(free_port()),
        "COMPOSE_BAKE": "false",
        "PULL_POLICY": "never",
    }


class Project:
    """One compose project with a unique name; ``down -v`` always runs."""

    def __init__(self, environment: str, variables: dict[str, str]) -> None:
        self.name = f"devtools-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.file = REPO_ROOT / "docker" / f"{environment}.yml"
        self.env = {**os.environ, **variables}

    def compose(self, *args: str, timeout: float = 600) -> str:
        argv = ["docker", "compose", "-p", self.name, "-f", str(self.file), *args]
        return commands.run(argv, env=self.env, timeout=timeout)

    def port(self, service: str, port: int) -> tuple[str, int]:
        host, _, number = self.compose("port", service, str(port)).strip().rpartition(":")
        return host, int(number)

    def leftovers(self) -> str:
        """IDs of this project's containers, volumes and networks still present."""
        label = f"label=com.docker.compose.project={self.name}"
        return "".join(
            commands.run(["docker", *kind, "--quiet", "--filter", label])
            for kind in (["ps", "--all"], ["volume", "ls"], ["network", "ls"])
        )


@pytest.fixture
def project(variables: dict[str, str], request: pytest.FixtureRequest) -> Iterator[Project]:
    """A compose project of the environment the test is parametrized with; removed after."""
    created = Project(request.param, variables)
    try:
        yield created
    finally:
        created.compose("down", "--volumes", "--remove-orphans", "--timeout", "10")
        assert not created.leftovers().strip()


def get(port: int, path: str = "/") -> tuple[int, str | None]:
    """Status and X-Replica of one request to 127.0.0.1:port (0 when nothing answers)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return response.status, response.headers.get("X-Replica")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("X-Replica")
    except OSError:
        return 0, None


@pytest.mark.parametrize("project", ["testing"], indirect=True)
def test_testing_database_answers_on_a_loopback_port(project: Project) -> None:
    project.compose("up", "--detach", "--wait")
    host, port = project.port("db", 5432)
    assert host == "127.0.0.1"
    password = Path(project.env["POSTGRES_PASSWORD_FILE"]).read_text().strip()
    with (
        psycopg2.connect(
            host=host, port=port, user="postgres", password=password, dbname="test"
        ) as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute("SHOW fsync")
        assert cursor.fetchone() == ("off",)
        cursor.execute("SELECT current_setting('server_version_num')::int / 10000")
        assert cursor.fetchone() == (18,)


@pytest.mark.parametrize("project", ["production"], indirect=True)
def test_production_scales_behind_nginx(project: Project) -> None:
    stage_ca_certificates(REPO_ROOT / "docker" / "certs")
    project.compose("build", "web", timeout=900)
    try:
        project.compose("up", "--detach", "--wait", "--scale", "web=3")
        port = int(project.env["APPLICATION_PORT"])
        replicas = {get(port)[1] for _ in range(30)}
        assert len(replicas) == 3, replicas

        project.compose("up", "--detach", "--wait", "--scale", "web=1", "--no-recreate")
        # nginx re-resolves `web` every 2 s; give it time to drop the removed replicas.
        wait_until(
            lambda: len({get(port)[1] for _ in range(10)}) == 1,
            15,
            interval=0.5,
            what="nginx to see one replica",
        )
        assert get(port, "/health")[0] == 200
    finally:
        project.compose("down", "--volumes", "--timeout", "10")
        commands.run(["docker", "image", "rm", project.env["APP_IMAGE"]])
