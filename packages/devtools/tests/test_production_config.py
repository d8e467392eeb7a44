"""The production simulation's parts that need no running service: nginx config, validation."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools import production, state
from devtools.config import load_settings
from devtools.errors import ConfigError, PortInUseError, UsageError
from devtools.ports import free_port
from devtools.production import nginx
from devtools.production.layout import Layout
from devtools.production.replicas import free_names, gunicorn_argv

from .conftest import REPO_ROOT

TEMPLATE = REPO_ROOT / "docker" / "nginx" / "nginx.conf.template"


@pytest.fixture
def prod_project(project: Path) -> Path:
    """A temp checkout with config/production.json and the nginx template."""
    shutil.copy(REPO_ROOT / "config" / "production.json", project / "config")
    (project / "docker" / "nginx").mkdir(parents=True)
    shutil.copy(TEMPLATE, project / "docker" / "nginx")
    return project


@pytest.fixture
def rendered(prod_project: Path) -> Iterator[Path]:
    """The local backend's nginx config for three replicas, written where nginx will read it."""
    layout = Layout.of(prod_project)
    layout.make()
    values = nginx.local_values(
        layout, port=free_port(), upstream_ports=[8001, 8002, 8003], temp_dir=nginx.temp_dir(layout)
    )
    layout.nginx_config.write_text(nginx.render(TEMPLATE, values))
    home = nginx.temp_home(layout)
    yield layout.nginx_config
    nginx.remove_temp(layout)
    assert not (home / "temp").exists()
    assert home == layout.nginx or not home.exists()


def test_only_upper_case_placeholders_are_filled():
    template = nginx.ConfigTemplate("a ${NAME} b $host ${host} $$ $ c")
    assert template.substitute(NAME="x") == "a x b $host ${host} $$ $ c"
    assert template.get_identifiers() == ["NAME"]


def test_render_requires_exactly_the_template_placeholders(tmp_path: Path):
    template = tmp_path / "t.conf"
    template.write_text("listen ${LISTEN}; ${UPSTREAM_SERVERS}")
    assert nginx.render(template, {"LISTEN": "1", "UPSTREAM_SERVERS": "2"}) == "listen 1; 2"
    with pytest.raises(ConfigError, match=r"missing values: UPSTREAM_SERVERS; .* none"):
        nginx.render(template, {"LISTEN": "1"})
    with pytest.raises(ConfigError, match=r"missing values: none; .* EXTRA"):
        nginx.render(template, {"LISTEN": "1", "UPSTREAM_SERVERS": "2", "EXTRA": "3"})
    with pytest.raises(ConfigError, match="nginx template not found"):
        nginx.render(tmp_path / "missing.conf", {})


def test_rendered_config_lists_each_replica_and_hides_nothing_templated(rendered: Path):
    text = rendered.read_text()
    for port in (8001, 8002, 8003):
        assert f"server 127.0.0.1:{port} max_fails=2 fail_timeout=5s;" in text
    assert "${" not in text
    assert "server_tokens off;" in text
    assert "client_max_body_size 1m;" in text


def test_rendered_config_passes_nginx_t(rendered: Path, prod_project: Path):
    settings = load_settings(prod_project, "production", {})
    server = nginx.Nginx(nginx.nginx_binary(settings), Layout.of(prod_project))
    server.test(rendered)
    broken = rendered.with_name("broken.conf")
    broken.write_text(rendered.read_text().replace("server_tokens off;", "server_tokens maybe;"))
    with pytest.raises(Exception, match="does not pass nginx -t"):
        server.test(broken)


def _gixy(config: Path) -> subprocess.CompletedProcess[str]:
    import gixy  # noqa: F401 - fails loudly when the test group lacks gixy-ng

    return subprocess.run(
        [sys.executable, "-m", "gixy", "--format", "json", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_rendered_config_has_no_gixy_finding(rendered: Path):
    result = _gixy(rendered)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout or "[]") == []


def test_template_also_fits_compose_dns_resolution(prod_project: Path, tmp_path: Path):
    """The compose backend's values: one re-resolved service name, container log paths."""
    layout = Layout.of(prod_project)
    values = {
        **nginx.local_values(layout, port=8080, upstream_ports=[1], temp_dir=tmp_path),
        "RESOLVER": "resolver 127.0.0.11 valid=2s;",
        "UPSTREAM_SERVERS": "server localhost:8000 resolve max_fails=2 fail_timeout=5s;",
        "LISTEN": "8080",
    }
    config = tmp_path / "compose.conf"
    config.write_text(nginx.render(TEMPLATE, values))
    settings = load_settings(prod_project, "production", {})
    layout.make()
    nginx.Nginx(nginx.nginx_binary(settings), layout).test(config)
    assert _gixy(config).returncode == 0


@pytest.mark.parametrize(("given", "expected"), [(1, 1), ("3", 3), (" 32 ", 32), ("+2", 2)])
def test_scale_accepts_whole_numbers_from_1_to_32(given: object, expected: int):
    assert production.parse_scale(given) == expected


@pytest.mark.parametrize("given", [0, -1, 33, "0", "-1", "33", "abc", "2.5", "", True, None, 2.0])
def test_bad_scale_is_one_clear_error(given: object):
    with pytest.raises(UsageError, match=r"--scale must be a whole number .* from 1 to 32, got"):
        production.parse_scale(given)


@pytest.mark.parametrize("scale", [0, -1, "abc", 33])
def test_up_with_a_bad_scale_changes_nothing(prod_project: Path, scale: object):
    settings = load_settings(prod_project, "production", {"APPLICATION_PORT": str(free_port())})
    with pytest.raises(UsageError, match="--scale"):
        production.up(prod_project, settings, scale=scale, environ={})  # type: ignore[arg-type]
    assert not (prod_project / ".devtools" / "production").exists()
    assert not (prod_project / ".devtools" / "secrets").exists()


def test_up_on_a_taken_port_names_the_setting_and_starts_nothing(prod_project: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = load_settings(prod_project, "production", {"APPLICATION_PORT": str(port)})
        with pytest.raises(PortInUseError, match=f"port {port} .* APPLICATION_PORT"):
            production.up(prod_project, settings, scale=1, environ={})
    state_dir = prod_project / ".devtools"
    assert state.read_record(state_dir, "production") is None
    assert not (state_dir / "production").exists()


def test_up_with_a_missing_nginx_binary_says_which_setting(prod_project: Path):
    environ = {"APPLICATION_PORT": str(free_port()), "NGINX_BINARY": "/nonexistent/nginx"}
    settings = load_settings(prod_project, "production", environ)
    with pytest.raises(ConfigError, match="NGINX_BINARY=/nonexistent/nginx"):
        production.up(prod_project, settings, scale=1, environ={})
    assert not (prod_project / ".devtools" / "production").exists()


def test_down_status_and_logs_when_nothing_ever_ran(prod_project: Path):
    assert production.down(prod_project) == "production is not running, nothing to stop"
    assert "deleted" in production.down(prod_project, volumes=True)
    current = production.status(prod_project)
    assert not current.running
    assert current.describe() == "production is not running"
    assert production.logs(prod_project) == "production has no logs yet"
    with pytest.raises(UsageError, match="no logs for 'replica-1'; services with logs: none yet"):
        production.logs(prod_project, "replica-1")
    with pytest.raises(UsageError, match="--lines"):
        production.logs(prod_project, lines=0)


def test_replica_names_fill_the_lowest_gaps():
    assert free_names([], 3) == ["replica-1", "replica-2", "replica-3"]
    assert free_names(["replica-2", "replica-4"], 3) == ["replica-1", "replica-3", "replica-5"]


def test_replicas_use_threaded_workers_on_loopback():
    argv = gunicorn_argv(8123, 2)
    assert argv[argv.index("--bind") + 1] == "127.0.0.1:8123"
    assert argv[argv.index("--worker-class") + 1] == "gthread"
    assert argv[argv.index("--workers") + 1] == "2"
    assert "--preload" in argv
    assert argv[-1] == "application.wsgi:app"
