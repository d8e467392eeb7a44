"""The compose backend: every environment as a Docker Compose project of ``docker/<env>.yml``.

Projects are named ``devtools-<checkout id>-<environment>`` (``-scenario-<name>``,
``-test-<random>``), so checkouts, scenarios and test runs never collide. Ports are read from
Docker, readiness is a real query or an HTTP 200 from the host, and whatever an ``up`` started
is removed again when it fails or is interrupted. Files handed to the containers (secrets, the
nginx config) are staged in ``.devtools/compose/<project>/``; running environments are recorded
in ``.devtools/environments/`` (``"backend": "compose"``) like the local backend's.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import psycopg2

from devtools import application, state
from devtools.backends import Echo, Environment
from devtools.compose import naming
from devtools.compose.development import ComposeDevelopment
from devtools.compose.engine import require_docker
from devtools.compose.images import IMAGE_VARIABLES, image_variables, require_images
from devtools.compose.nginx import write_compose_config
from devtools.compose.project import ComposeProject, ContainerInfo, running_services
from devtools.compose.staging import private_folder, remove_folder, stage_files
from devtools.config import SECRET_KEYS, Settings
from devtools.environments import scenario as scenarios
from devtools.environments.common import psql_command
from devtools.errors import ServiceStartError, UsageError
from devtools.http import get_status
from devtools.ports import free_port, require_free_port
from devtools.postgres import PostgresBinaries
from devtools.processes import run_foreground
from devtools.production import parse_scale
from devtools.secrets_store import fill_secrets, forget_secrets, secrets_file
from devtools.signals import termination_raises
from devtools.waiting import wait_until

PRODUCTION = "production"
DB_PORT = 5432
WEB_PORT = 8000
# Seconds: a cold PostgreSQL initdb in a container takes a few; a first replica a few more.
DATABASE_TIMEOUT = 60.0
HTTP_TIMEOUT = 90.0
WAIT_TIMEOUT = 180
# nginx re-resolves `web` every 2 s (devtools.compose.nginx.RESOLVE_VALID).
RESOLVE_TIMEOUT = 20.0
# Throwaway databases need no clean shutdown; production's stop_grace_period is kept.
THROWAWAY_STOP_TIMEOUT = 5
_REPLICA = re.compile(r"(?:web|replica)-([0-9]+)")
SERVICE_ALIASES = {"postgres": "db"}
SERVICE_ORDER = {"nginx": 0, "db": 1, "web": 2}


def database_url(user: str, password: str, port: int, dbname: str, host: str = "127.0.0.1") -> str:
    """A ``postgresql://`` URL with the password, for TCP connections from the host."""
    return (
        f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}"
        f"@{host}:{port}/{quote(dbname, safe='')}"
    )


def compose_variables(
    environment: str,
    settings: Settings,
    *,
    images: Mapping[str, str],
    files: Mapping[str, Path],
    app_image: str | None = None,
    port: int | None = None,
) -> dict[str, str]:
    """The variables ``docker/<environment>.yml`` is interpolated with (no secret values).

    Args:
        environment: ``development``, ``testing``, ``scenario`` or ``production``.
        settings: that environment's settings.
        images: the image mapping (``image_variables``; empty for the upstream images).
        files: staged files by name: ``db_password`` always, ``secret_key`` and ``nginx.conf``
            for production.
        app_image: the app image tag (development, scenario, production).
        port: nginx's host port (production), the dev server's (development; None: Docker's
            choice).
    """
    variables = dict(images)
    variables.update(
        POSTGRES_USER=settings.require("POSTGRES_USER"),
        APPLICATION_DB=settings.require("APPLICATION_DB"),
        POSTGRES_PASSWORD_FILE=str(files["db_password"]),
    )
    if environment in ("development", "scenario", PRODUCTION):
        if app_image is None:
            raise ValueError(f"{environment} needs an app image")
        variables["APP_IMAGE"] = app_image
    if environment in ("scenario", PRODUCTION):
        variables["GUNICORN_WORKERS"] = str(settings.get("GUNICORN_WORKERS") or 2)
    if environment == "development":
        variables["DEV_PORT"] = "" if port is None else str(port)
    if environment == "scenario":
        variables["FLASK_CONFIG"] = settings.require("FLASK_CONFIG")
    if environment == PRODUCTION:
        if port is None:
            raise ValueError("production needs nginx's port")
        variables["SECRET_KEY_FILE"] = str(files["secret_key"])
        variables["NGINX_CONFIG_FILE"] = str(files["nginx.conf"])
        variables["APPLICATION_PORT"] = str(port)
    return variables


def host_app_environment(
    settings: Settings, environ: Mapping[str, str], *, url_port: int, password: str
) -> dict[str, str]:
    """The environment of an app command run on the host against a published database port.

    The same variables as :func:`devtools.application.app_environment`, for a server that is a
    container rather than a local cluster.
    """
    env = {key: environ[key] for key in application.PASSTHROUGH if key in environ}
    env.update(
        FLASK_APP=application.FLASK_APP,
        FLASK_CONFIG=settings.require("FLASK_CONFIG"),
        POSTGRES_USER=settings.require("POSTGRES_USER"),
        POSTGRES_PASSWORD=password,
        POSTGRES_HOSTNAME="127.0.0.1",
        POSTGRES_PORT=str(url_port),
        APPLICATION_DB=settings.require("APPLICATION_DB"),
        PYTHONUNBUFFERED="1",
    )
    secret = settings.get("SECRET_KEY")
    if secret:
        env["SECRET_KEY"] = secret
    return env


def _replicas(count: int) -> str:
    return f"{count} replica" if count == 1 else f"{count} replicas"


def age(seconds: float) -> str:
    """``3m12s``-style age."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def container_table(containers: Sequence[ContainerInfo]) -> list[str]:
    """One line per container (nginx, db, then the replicas): name, state, where it answers."""
    width = max((len(c.name) for c in containers), default=9)
    lines = [f"  {'SERVICE':<8} {'CONTAINER':<{width}} {'STATE':<18} ADDRESS"]
    ordered = sorted(containers, key=lambda c: (SERVICE_ORDER.get(c.service, 9), c.number))
    for item in ordered:
        if item.service == "web":
            where = f"X-Replica {item.hostname}"
        else:
            where = ", ".join(item.published) or "-"
        lines.append(f"  {item.service:<8} {item.name:<{width}} {item.describe():<18} {where}")
    return lines


class CrashWatch:
    """Ends a readiness wait early when a service's container stopped or crashed.

    Docker is asked at most once a second, so the wait itself can poll every few milliseconds.
    """

    def __init__(self, project: ComposeProject, services: Sequence[str]) -> None:
        self.project = project
        self.services = tuple(services)
        self.last = 0.0

    def check(self) -> None:
        """Raise ServiceStartError (with the service's log tail) if a container crashed."""
        now = time.monotonic()
        if now - self.last < 1.0:
            return
        self.last = now
        for item in self.project.containers():
            if item.service in self.services and item.crashed:
                times = "time" if item.restarts == 1 else "times"
                how = f"restarted {item.restarts} {times}" if item.restarts else item.status
                raise ServiceStartError(
                    f"{item.name} failed while starting ({how})\n"
                    f"{self.project.logs_tail([item.service])}"
                )


class ComposeBackend:
    """Every environment as a Docker Compose project on this machine's Docker engine."""

    name = "compose"

    def __init__(self, env: Environment) -> None:
        self.env = env
        self._docker: str | None = None

    # --- plumbing -------------------------------------------------------------------------

    @property
    def state_dir(self) -> Path:
        """The checkout's state folder."""
        return self.env.state_dir

    def docker(self) -> str:
        """The docker CLI, after checking once that Docker is usable.

        Raises:
            DockerUnavailable: no CLI, no Compose plugin or no daemon.
        """
        if self._docker is None:
            self._docker = require_docker(self.env.environ)
        return self._docker

    def workdir(self, project: str) -> Path:
        """Where the files staged for a project's containers live."""
        return self.state_dir / "compose" / project

    def project(self, environment: str, name: str, variables: Mapping[str, str]) -> ComposeProject:
        """A compose project of ``docker/<environment>.yml``."""
        return ComposeProject(
            name,
            self.env.project_root / "docker" / f"{environment}.yml",
            variables,
            docker=self.docker(),
            environ=self.env.environ,
        )

    def _teardown(self, project: ComposeProject, *, volumes: bool, timeout: int | None) -> None:
        """``down`` and delete the staged files (also after a failed or interrupted up)."""
        try:
            project.down(volumes=volumes, timeout=timeout)
        finally:
            remove_folder(self.workdir(project.name))

    def require_ours(self, record: Mapping[str, Any], what: str, command: str) -> None:
        backend = record.get("backend", "local")
        if backend != self.name:
            raise UsageError(
                f"{what} is running on the {backend} backend: run `{command}` with "
                f"--backend {backend} (or DEVTOOLS_BACKEND={backend}) first"
            )

    def wait_database(self, project: ComposeProject, url: str) -> float:
        """Return once PostgreSQL answers a query through the published port."""
        watch = CrashWatch(project, ("db",))

        def answers() -> bool:
            try:
                conn = psycopg2.connect(url, connect_timeout=2)
            except psycopg2.OperationalError:
                watch.check()
                return False
            try:
                with conn.cursor() as cursor:
                    cursor.execute("SELECT 1")
            finally:
                conn.close()
            return True

        return wait_until(
            answers,
            DATABASE_TIMEOUT,
            interval=0.05,
            what=f"PostgreSQL of {project.name} to answer a query",
            on_timeout=lambda: project.logs_tail(["db"]),
        )

    def wait_http(self, project: ComposeProject, port: int, service: str) -> float:
        """Return once ``GET /health`` on 127.0.0.1:``port`` answers 200."""
        watch = CrashWatch(project, (service,))

        def healthy() -> bool:
            if get_status("127.0.0.1", port, "/health") == 200:
                return True
            watch.check()
            return False

        return wait_until(
            healthy,
            HTTP_TIMEOUT,
            interval=0.05,
            what=f"{service} of {project.name} on 127.0.0.1:{port} to answer /health with 200",
            # Behind nginx the cause is usually a replica that never became healthy.
            on_timeout=lambda: project.logs_tail(sorted({service, "web"})),
        )

    def project_database_url(self, project: ComposeProject, dbname: str | None = None) -> str:
        """A host URL of a running project's database (the app's unless ``dbname``)."""
        variables = project.variables
        return database_url(
            variables["POSTGRES_USER"],
            Path(variables["POSTGRES_PASSWORD_FILE"]).read_text(),
            project.port("db", DB_PORT),
            dbname or variables["APPLICATION_DB"],
        )

    # --- development, the flask CLI, psql and compose itself ------------------------------

    def dev_serve(self, port: int | None, echo: Echo) -> int:
        """See :meth:`devtools.compose.development.ComposeDevelopment.serve`."""
        return ComposeDevelopment(self).serve(port, echo)

    def dev_down(self, volumes: bool, echo: Echo) -> None:
        """See :meth:`devtools.compose.development.ComposeDevelopment.down`."""
        ComposeDevelopment(self).down(volumes, echo)

    @contextlib.contextmanager
    def app_environment(self, environment: str, echo: Echo) -> Iterator[dict[str, str]]:
        """The environment of an app command (``flask ...``) run on the host.

        development: its database is started unless it runs; testing: a throwaway database
        for the command's duration; production: the running production's database.
        """
        if environment == "development":
            _, _, env = ComposeDevelopment(self).ensure_database(echo)
            yield env
        elif environment == PRODUCTION:
            record, project = self.recorded_production()
            if record is None or "db" not in running_services(project.containers()):
                raise UsageError(
                    "production is not running on compose; start it with "
                    "nox -s prod -- --backend compose"
                )
            settings = fill_secrets(self.env.settings(PRODUCTION), self.state_dir, SECRET_KEYS)
            yield host_app_environment(
                settings,
                self.env.environ,
                url_port=project.port("db", DB_PORT),
                password=settings.require("POSTGRES_PASSWORD"),
            )
        else:
            settings = self.env.settings(environment)
            with self.test_database() as url:
                dbname = settings.require("APPLICATION_DB")
                application.create_database_at(url, dbname)
                parts = urlsplit(url)
                env = host_app_environment(
                    settings,
                    self.env.environ,
                    url_port=int(parts.port or DB_PORT),
                    password=unquote(parts.password or ""),
                )
                application.migrate(env)
                yield env

    def database_url(self, target: str) -> str | None:
        """The URL of a running environment's app database (development, production or a
        scenario's name) on compose, or None when it is not running there."""
        self.docker()
        if target == "development":
            return ComposeDevelopment(self).database_url()
        if target == PRODUCTION:
            record, project = self.recorded_production()
            running = running_services(project.containers())
            return self.project_database_url(project) if record and "db" in running else None
        record = state.read_record(self.state_dir, scenarios.record_name(target))
        if record is None or record.get("backend") != self.name:
            return None
        project = self._scenario_project(record)
        if "db" not in running_services(project.containers()):
            return None
        return self.project_database_url(project, record["dbname"])

    def compose(self, environment: str, args: Sequence[str]) -> int:
        """Run ``docker compose ARGS`` on an environment's project, with its name, file and
        variables; returns compose's exit code.

        ``environment`` is ``development``, ``production`` or ``scenario:NAME`` (a running
        scenario: its password exists only while it is up).
        """
        from devtools.compose.passthrough import environment_project

        project = environment_project(self, environment)
        return run_foreground(project.argv(*args), project.command_environment())

    # --- test databases -------------------------------------------------------------------

    @contextlib.contextmanager
    def test_database(self) -> Iterator[str]:
        """A throwaway PostgreSQL container (``docker/testing.yml``) for one test run.

        Yields a superuser URL of its ``postgres`` database; the project (containers, network,
        volumes) and the staged password are removed afterwards, also on errors and Ctrl-C.
        """
        self.docker()
        settings = self.env.settings("testing")
        name = naming.test_project(self.state_dir)
        user = settings.require("POSTGRES_USER")
        password = secrets.token_urlsafe(24)
        secret_dir = self.workdir(name) / "secrets"
        images = image_variables(self.state_dir)
        variables = compose_variables(
            "testing", settings, images=images, files={"db_password": secret_dir / "db_password"}
        )
        project = self.project("testing", name, variables)
        require_images(variables, ("POSTGRES_IMAGE",), project.image_exists)
        with termination_raises():
            try:
                stage_files(secret_dir, {"db_password": password})
                project.up(["db"])
                port = project.port("db", DB_PORT)
                url = database_url(user, password, port, "postgres")
                self.wait_database(project, url)
                yield url
            finally:
                self._teardown(project, volumes=True, timeout=THROWAWAY_STOP_TIMEOUT)

    # --- scenarios ------------------------------------------------------------------------

    def _scenario_variables(self, name: str, settings: Settings) -> tuple[str, dict[str, str]]:
        project = naming.scenario_project(self.state_dir, name)
        files = {"db_password": self.workdir(project) / "secrets" / "db_password"}
        variables = compose_variables(
            "scenario",
            settings,
            images=image_variables(self.state_dir),
            files=files,
            app_image=naming.app_image(self.state_dir, "scenario"),
        )
        return project, variables

    def _scenario_project(self, record: Mapping[str, Any]) -> ComposeProject:
        return self.project("scenario", record["project"], record["variables"])

    def _scenario_lines(
        self, name: str, project: ComposeProject, settings: Settings, *, already: bool
    ) -> list[str]:
        password = Path(project.variables["POSTGRES_PASSWORD_FILE"]).read_text()
        db_port = project.port("db", DB_PORT)
        app_port = project.port("web", WEB_PORT)
        url = database_url(
            project.variables["POSTGRES_USER"],
            password,
            db_port,
            project.variables["APPLICATION_DB"],
        )
        binaries = PostgresBinaries.from_setting(settings.get("POSTGRES_BINARIES"))
        return [
            f"scenario {name} is {'already ' if already else ''}up "
            f"(compose project {project.name})",
            f"  app:   http://127.0.0.1:{app_port}",
            f"  dsn:   {url}",
            f"  psql:  {psql_command(binaries, url)}",
            f'  down:  nox -s "scenario({name})" -- down',
        ]

    def scenario_up(self, name: str, args: Sequence[str], echo: Echo) -> None:
        """Start scenario ``name`` (or report it already up) and print its connection lines.

        Raises:
            DockerUnavailable: Docker cannot be used (nothing was started).
            UsageError: unknown scenario, or it runs on the local backend.
            ScenarioFailed: the scenario's code failed; everything was removed again.
        """
        self.docker()
        runner = scenarios.default_runner()
        scenarios.require_known(name, scenarios.known_scenarios(runner))
        settings = self.env.settings("scenario")
        # Fails early (ConfigError) rather than after the scenario ran.
        PostgresBinaries.from_setting(settings.get("POSTGRES_BINARIES"))
        record_name = scenarios.record_name(name)
        with termination_raises(), state.environment_lock(self.state_dir, record_name):
            record = state.read_record(self.state_dir, record_name)
            project_name, variables = self._scenario_variables(name, settings)
            if record is not None:
                self.require_ours(record, f"scenario {name}", f'nox -s "scenario({name})" -- down')
                project = self._scenario_project(record)
                if self._scenario_alive(project):
                    for line in self._scenario_lines(name, project, settings, already=True):
                        echo(line)
                    return
                echo(f"scenario {name} was left half-running; cleaning it up first")
                self._teardown(project, volumes=True, timeout=THROWAWAY_STOP_TIMEOUT)
                state.delete_record(self.state_dir, record_name)
            project = self.project("scenario", project_name, variables)
            if project.containers():
                # Containers without a record: an up killed before it could record them.
                self._teardown(project, volumes=True, timeout=THROWAWAY_STOP_TIMEOUT)
            self._start_scenario(name, args, runner, settings, project, echo)
            lines = self._scenario_lines(name, project, settings, already=False)
        for line in lines:
            echo(line)

    def _scenario_alive(self, project: ComposeProject) -> bool:
        # Running is enough: a healthcheck that timed out once under load is no reason to
        # throw the scenario's data away.
        running = running_services(project.containers())
        secret = Path(project.variables["POSTGRES_PASSWORD_FILE"])
        return {"db", "web"} <= running and secret.is_file()

    def _start_scenario(
        self,
        name: str,
        args: Sequence[str],
        runner: str,
        settings: Settings,
        project: ComposeProject,
        echo: Echo,
    ) -> None:
        record_name = scenarios.record_name(name)
        variables = project.variables
        require_images(variables, ("POSTGRES_IMAGE", "PYTHON_IMAGE"), project.image_exists)
        password = settings.get("POSTGRES_PASSWORD") or secrets.token_urlsafe(24)
        record: dict[str, Any] = {
            "kind": "scenario",
            "backend": self.name,
            "name": name,
            "project": project.name,
            "compose_file": str(project.file),
            "variables": variables,
            "dbname": variables["APPLICATION_DB"],
            "status": "starting",
            "created_at": time.time(),
        }
        # Recorded before anything starts: even a killed up leaves something down can find.
        state.write_record(self.state_dir, record_name, record)
        try:
            stage_files(Path(variables["POSTGRES_PASSWORD_FILE"]).parent, {"db_password": password})
            echo(f"building {variables['APP_IMAGE']} (quick once its layers are cached)")
            project.build(["web"])
            project.up(["db"])
            db_port = project.port("db", DB_PORT)
            url = database_url(variables["POSTGRES_USER"], password, db_port, record["dbname"])
            self.wait_database(project, url)
            env = host_app_environment(
                settings, self.env.environ, url_port=db_port, password=password
            )
            application.migrate(env)
            # The URL goes through the environment: it holds the password (process lists).
            loaded = subprocess.run(
                [runner, name, *args], env={**env, "SCENARIO_DATABASE_URL": url}, check=False
            )
            if loaded.returncode != 0:
                raise scenarios.ScenarioFailed(
                    f"scenario {name} failed (exit code {loaded.returncode}); "
                    "its containers and database were removed"
                )
            project.up(["web"])
            app_port = project.port("web", WEB_PORT)
            self.wait_http(project, app_port, "web")
            record.update(status="running", db_port=db_port, app_port=app_port)
            state.write_record(self.state_dir, record_name, record)
        except BaseException:
            try:
                self._teardown(project, volumes=True, timeout=THROWAWAY_STOP_TIMEOUT)
            finally:
                state.delete_record(self.state_dir, record_name)
            raise

    def scenario_down(self, name: str, echo: Echo) -> bool:
        """Stop a scenario and delete its data; False (and a message) when it was not up."""
        self.docker()
        record_name = scenarios.record_name(name)
        with termination_raises(), state.environment_lock(self.state_dir, record_name):
            record = state.read_record(self.state_dir, record_name)
            if record is None:
                settings = self.env.settings("scenario")
                project_name, variables = self._scenario_variables(name, settings)
                project = self.project("scenario", project_name, variables)
                if not project.containers():
                    echo(f"scenario {name} is not up; nothing to do")
                    return False
                self._teardown(project, volumes=True, timeout=THROWAWAY_STOP_TIMEOUT)
                echo(f"scenario {name} was not recorded as up; removed its leftover containers")
                return True
            self.require_ours(record, f"scenario {name}", f'nox -s "scenario({name})" -- down')
            self._teardown(
                self._scenario_project(record), volumes=True, timeout=THROWAWAY_STOP_TIMEOUT
            )
            state.delete_record(self.state_dir, record_name)
        echo(f"scenario {name} is down; its database was deleted")
        return True

    def scenario_list(self, echo: Echo) -> None:
        """Print the scenarios running on compose: name, ports, age, state."""
        self.docker()
        records = [
            record
            for record in state.all_records(self.state_dir).values()
            if record.get("kind") == "scenario"
        ]
        ours = [record for record in records if record.get("backend") == self.name]
        others = len(records) - len(ours)
        if not ours:
            echo("no scenario is up on compose")
        else:
            echo(f"{'NAME':<16} {'APP':<24} {'DB PORT':<8} {'AGE':<8} STATE")
            now = time.time()
            for record in ours:
                containers = self._scenario_project(record).containers()
                running = running_services(containers)
                if record.get("status") != "running":
                    condition = "starting"
                elif not {"db", "web"} <= running:
                    condition = "dead (run down)"
                elif any(c.health == "unhealthy" for c in containers):
                    condition = "running, unhealthy"
                else:
                    condition = "running"
                app = f"http://127.0.0.1:{record.get('app_port', '-')}"
                echo(
                    f"{record['name']:<16} {app:<24} {record.get('db_port', '-')!s:<8} "
                    f"{age(now - float(record['created_at'])):<8} {condition}"
                )
        if others:
            echo(f"({others} more on the local backend: list them with --backend local)")

    # --- production -----------------------------------------------------------------------

    def _production_project(self, settings: Settings, port: int) -> ComposeProject:
        name = naming.production_project(self.state_dir)
        workdir = self.workdir(name)
        files = {
            "db_password": workdir / "secrets" / "db_password",
            "secret_key": workdir / "secrets" / "secret_key",
            "nginx.conf": workdir / "nginx.conf",
        }
        variables = compose_variables(
            PRODUCTION,
            settings,
            images=image_variables(self.state_dir),
            files=files,
            app_image=naming.app_image(self.state_dir, PRODUCTION),
            port=port,
        )
        return self.project(PRODUCTION, name, variables)

    def recorded_production(self) -> tuple[dict[str, Any] | None, ComposeProject]:
        """The production record (None when absent) and its project."""
        record = state.read_record(self.state_dir, PRODUCTION)
        if record is not None:
            self.require_ours(record, PRODUCTION, "nox -s prod -- down")
            project = self.project(PRODUCTION, record["project"], record["variables"])
            return record, project
        settings = self.env.settings(PRODUCTION)
        port = settings.get("APPLICATION_PORT") or 8080
        return None, self._production_project(settings, port)

    def stage_production(self, project: ComposeProject, settings: Settings) -> None:
        """Secrets (generated once, kept in .devtools/secrets/) and the nginx config."""
        variables = project.variables
        stage_files(
            Path(variables["POSTGRES_PASSWORD_FILE"]).parent,
            {
                "db_password": settings.require("POSTGRES_PASSWORD"),
                "secret_key": settings.require("SECRET_KEY"),
            },
        )
        private_folder(self.workdir(project.name))
        write_compose_config(self.env.project_root, Path(variables["NGINX_CONFIG_FILE"]))

    def prod_up(self, scale: int, echo: Echo) -> None:
        """Start or rescale the production simulation and print its URL and replicas.

        Raises:
            UsageError: a bad scale, another command on production, or it runs on local.
            DockerUnavailable: Docker cannot be used (nothing was started).
            PortInUseError: APPLICATION_PORT is taken (nothing was started).
        """
        count = parse_scale(scale)
        self.docker()
        settings = self.env.settings(PRODUCTION)
        with termination_raises(), state.environment_lock(self.state_dir, PRODUCTION):
            record = state.read_record(self.state_dir, PRODUCTION)
            if record is not None:
                self.require_ours(record, PRODUCTION, "nox -s prod -- down")
            settings = fill_secrets(settings, self.state_dir, SECRET_KEYS)
            wanted = settings.get("APPLICATION_PORT")
            if record is not None and record.get("status") == "running":
                running = int(record["port"])
                if wanted is not None and wanted != running:
                    raise UsageError(
                        f"production is running on port {running} but APPLICATION_PORT is now "
                        f"{wanted}: run down first to move it"
                    )
                project = self._production_project(settings, running)
                containers = project.containers()
                if {"db", "nginx"} <= running_services(containers):
                    message = self._rescale(project, settings, containers, count)
                    self._finish_up(project, record, count, message, echo)
                    return
                echo("production was left half-running; restarting it (data is kept)")
            elif record is not None:
                echo("an earlier production up did not finish; restarting it (data is kept)")
            port = wanted or free_port()
            project = self._production_project(settings, port)
            if record is not None or project.containers():
                self._teardown(project, volumes=False, timeout=None)
                state.delete_record(self.state_dir, PRODUCTION)
            record, message = self._start_production(project, settings, count, port, echo)
            self._finish_up(project, record, count, message, echo)

    def _start_production(
        self, project: ComposeProject, settings: Settings, count: int, port: int, echo: Echo
    ) -> tuple[dict[str, Any], str]:
        # Everything that can be checked is checked before anything starts.
        require_free_port(port, what="nginx", setting="APPLICATION_PORT")
        require_images(project.variables, IMAGE_VARIABLES, project.image_exists)
        # Data from earlier runs survives a failed up; a volume this up created does not.
        fresh = not project.volume_exists(f"{project.name}_pgdata")
        began = time.monotonic()
        record: dict[str, Any] = {
            "kind": PRODUCTION,
            "backend": self.name,
            "project": project.name,
            "compose_file": str(project.file),
            "variables": project.variables,
            "port": port,
            "url": f"http://127.0.0.1:{port}",
            "scale": count,
            "status": "starting",
            "created_at": time.time(),
        }
        state.write_record(self.state_dir, PRODUCTION, record)
        try:
            self.stage_production(project, settings)
            echo(f"building {project.variables['APP_IMAGE']} (quick once its layers are cached)")
            project.build(["web"])
            # Compose starts db, then the replicas once db is healthy, then nginx once they are.
            project.up(scales={"web": count})
            self.wait_http(project, port, "nginx")
            self._wait_nginx_sees(project, port)
        except BaseException:
            try:
                self._teardown(project, volumes=fresh, timeout=None)
            finally:
                state.delete_record(self.state_dir, PRODUCTION)
            raise
        record["status"] = "running"
        state.write_record(self.state_dir, PRODUCTION, record)
        elapsed = time.monotonic() - began
        return record, f"production started with {_replicas(count)} in {elapsed:.1f}s"

    def _rescale(
        self,
        project: ComposeProject,
        settings: Settings,
        containers: Sequence[ContainerInfo],
        count: int,
    ) -> str:
        web = [c for c in containers if c.service == "web"]
        if len(web) == count and all(c.ready for c in containers):
            return f"production is already running with {_replicas(count)}"
        self.stage_production(project, settings)
        # --no-recreate: nginx and db keep running; nginx finds the new set through DNS.
        project.up(scales={"web": count}, wait=True, wait_timeout=WAIT_TIMEOUT, recreate=False)
        self._wait_nginx_sees(project, int(project.variables["APPLICATION_PORT"]))
        if len(web) == count:
            return f"restarted stopped containers; {_replicas(count)} running"
        return f"rescaled from {len(web)} to {_replicas(count)}"

    def _wait_nginx_sees(self, project: ComposeProject, port: int) -> None:
        """Return once requests through nginx reach exactly the running replicas."""
        expected = {c.hostname for c in project.containers() if c.service == "web" and c.ready}

        def balanced() -> bool:
            seen = set()
            for _ in range(2 * len(expected) + 2):
                replica = _replica_of(port)
                if replica is not None:
                    seen.add(replica)
            return seen == expected

        wait_until(
            balanced,
            RESOLVE_TIMEOUT,
            interval=0.2,
            what=f"nginx on 127.0.0.1:{port} to reach all {len(expected)} replicas",
            on_timeout=lambda: project.logs_tail(["nginx"]),
        )

    def _finish_up(
        self,
        project: ComposeProject,
        record: dict[str, Any],
        count: int,
        message: str,
        echo: Echo,
    ) -> None:
        if record.get("scale") != count:
            record["scale"] = count
            state.write_record(self.state_dir, PRODUCTION, record)
        echo(message)
        for line in self._describe(record, project.containers()):
            echo(line)

    def _describe(
        self, record: Mapping[str, Any], containers: Sequence[ContainerInfo]
    ) -> list[str]:
        replicas = sum(1 for c in containers if c.service == "web")
        return [
            f"production: {record['url']} ({_replicas(replicas)}, "
            f"compose project {record['project']})",
            *container_table(containers),
        ]

    def prod_status(self, echo: Echo) -> None:
        """Print the containers of production: service, state and health, address."""
        self.docker()
        record, project = self.recorded_production()
        containers = project.containers()
        if not containers:
            echo("production is not running")
            return
        if record is None:
            echo(f"production is not recorded as up, but {project.name} has containers")
            record = {"url": "-", "project": project.name}
        elif record.get("status") != "running":
            echo("an earlier up did not finish: run up again to repair it, or down")
        for line in self._describe(record, containers):
            echo(line)

    def prod_logs(self, service: str | None, lines: int, echo: Echo) -> None:
        """Print the last ``lines`` lines of one service's log (``db``, ``web``, ``nginx``,
        ``web-N``; ``postgres`` and ``replica-N`` as for the local backend), or of all."""
        if lines < 1:
            raise UsageError(f"--lines must be at least 1, got {lines}")
        self.docker()
        _, project = self.recorded_production()
        containers = project.containers()
        if not containers:
            echo("production is not running, so it has no logs")
            return
        if service is None:
            echo(project.logs(tail=lines))
            return
        services = {c.service for c in containers}
        wanted = SERVICE_ALIASES.get(service, service)
        if wanted in services:
            echo(project.logs([wanted], tail=lines))
            return
        match = _REPLICA.fullmatch(service)
        replicas = {c.number: c for c in containers if c.service == "web"}
        if match and int(match.group(1)) in replicas:
            echo(project.container_logs(replicas[int(match.group(1))].name, tail=lines))
            return
        known = [*sorted(services), *(f"web-{n}" for n in sorted(replicas))]
        raise UsageError(f"no service {service!r} in production; services: {', '.join(known)}")

    def prod_down(self, volumes: bool, echo: Echo) -> None:
        """Stop production; ``volumes`` also deletes its database volume and generated secrets.

        Nothing running is not an error: the message says so.
        """
        self.docker()
        with termination_raises(), state.environment_lock(self.state_dir, PRODUCTION):
            record, project = self.recorded_production()
            containers = project.containers()
            volume = f"{project.name}_pgdata"
            had_data = project.volume_exists(volume)
            had_secrets = secrets_file(self.state_dir, PRODUCTION).exists()
            running = record is not None or bool(containers)
            if running:
                self._teardown(project, volumes=volumes, timeout=None)
                state.delete_record(self.state_dir, PRODUCTION)
            elif volumes and had_data:
                project.down(volumes=True)
            if volumes:
                forget_secrets(self.state_dir, PRODUCTION)
                remove_folder(self.workdir(project.name))
        replicas = sum(1 for c in containers if c.service == "web")
        if running:
            parts = [f"production stopped (nginx, {_replicas(replicas)}, postgres)"]
        elif volumes and (had_data or had_secrets):
            parts = ["production is not running"]
        else:
            parts = ["production is not running, nothing to stop"]
        if volumes and (had_data or had_secrets):
            deleted = [
                what
                for what, there in (("database", had_data), ("generated secrets", had_secrets))
                if there
            ]
            parts.append(f"deleted its {' and '.join(deleted)}")
        elif not volumes and had_data:
            parts.append(f"data kept in volume {volume} (down --volumes deletes it)")
        echo("; ".join(parts))


def _replica_of(port: int) -> str | None:
    """The ``X-Replica`` of one request through nginx (None when nothing answered)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/health")
        response = conn.getresponse()
        response.read()
        return response.getheader("X-Replica") if response.status == 200 else None
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()
