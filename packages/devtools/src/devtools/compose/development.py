"""The development environment on Docker Compose: ``docker/development.yml``.

PostgreSQL and Flask's development server run as the project ``devtools-<checkout>-development``.
The data lives in a named volume kept across ``down``; ``down --volumes`` deletes it. ``nox -s
dev`` follows the server's log in the foreground, and Ctrl-C stops the server container and
leaves the database running, as on the local backend. The record is the local backend's
(``development-db``) with ``"backend": "compose"``, so ``down``, ``psql`` and ``status`` find it.
"""

from __future__ import annotations

import datetime
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devtools import application, state
from devtools.compose import naming
from devtools.compose.images import image_variables, require_images
from devtools.compose.project import ComposeProject, running_services
from devtools.compose.staging import remove_folder, stage_files
from devtools.config import SECRET_KEYS, Settings
from devtools.environments import persistent
from devtools.environments.development import DEFAULT_PORT
from devtools.ports import require_free_port
from devtools.secrets_store import fill_secrets, forget_secrets
from devtools.signals import deferred_interrupts, termination_raises

if TYPE_CHECKING:
    from devtools.backends import Echo
    from devtools.compose.backend import ComposeBackend

ENVIRONMENT = "development"
RECORD = persistent.database_record_name(ENVIRONMENT)
VOLUME = "devdata"
DOWN_COMMAND = "nox -s dev -- down"
# Flask's reloader restarts in well under a second; a stop never needs to wait long.
SERVER_STOP_TIMEOUT = 5


class ComposeDevelopment:
    """``dev``, ``dev down`` and the development database of the compose backend."""

    def __init__(self, backend: ComposeBackend) -> None:
        self.backend = backend
        self.state_dir = backend.state_dir

    def settings(self) -> Settings:
        """Development settings with the generated password (kept in .devtools/secrets/)."""
        return fill_secrets(self.backend.env.settings(ENVIRONMENT), self.state_dir, SECRET_KEYS)

    def project(self, settings: Settings, port: int | None = None) -> ComposeProject:
        """The development project; ``port`` is the dev server's host port (None: Docker's)."""
        from devtools.compose.backend import compose_variables

        name = naming.development_project(self.state_dir)
        variables = compose_variables(
            ENVIRONMENT,
            settings,
            images=image_variables(self.state_dir),
            files={"db_password": self.backend.workdir(name) / "secrets" / "db_password"},
            app_image=naming.app_image(self.state_dir, ENVIRONMENT),
            port=port,
        )
        return self.backend.project(ENVIRONMENT, name, variables)

    def _recorded(self) -> dict[str, Any] | None:
        record = state.read_record(self.state_dir, RECORD)
        if record is not None:
            self.backend.require_ours(record, "the development database", DOWN_COMMAND)
        return record

    def recorded_project(self) -> tuple[dict[str, Any] | None, ComposeProject]:
        """The development record (None when absent) and its project: the recorded one, else
        the one ``dev`` would start (nothing generated or staged for it)."""
        record = self._recorded()
        if record is not None:
            return record, self.backend.project(ENVIRONMENT, record["project"], record["variables"])
        settings = self.backend.env.settings(ENVIRONMENT)
        return None, self.project(settings, settings.get("APPLICATION_PORT") or DEFAULT_PORT)

    def stage_password(self, project: ComposeProject, settings: Settings) -> None:
        """Write the database password file ``project``'s db service reads."""
        stage_files(
            Path(project.variables["POSTGRES_PASSWORD_FILE"]).parent,
            {"db_password": settings.require("POSTGRES_PASSWORD")},
        )

    # --- the database ---------------------------------------------------------------------

    def ensure_database(
        self, echo: Echo, port: int | None = None
    ) -> tuple[ComposeProject, str, dict[str, str]]:
        """Start the development database unless it runs, with its migrations applied.

        Returns the project (the dev server on ``port``), a URL of the app's database for the
        host and the environment of an app command run on the host against it.
        """
        from devtools.compose.backend import DB_PORT, database_url, host_app_environment

        self.backend.docker()
        settings = self.settings()
        password = settings.require("POSTGRES_PASSWORD")
        project = self.project(settings, port)

        def connection(db_port: int) -> tuple[str, dict[str, str]]:
            user, dbname = settings.require("POSTGRES_USER"), settings.require("APPLICATION_DB")
            env = host_app_environment(
                settings, self.backend.env.environ, url_port=db_port, password=password
            )
            return database_url(user, password, db_port, dbname), env

        with termination_raises(), state.environment_lock(self.state_dir, RECORD):
            if self._recorded() is not None and self._database_running(project):
                return project, *connection(project.port("db", DB_PORT))
            require_images(project.variables, ("POSTGRES_IMAGE",), project.image_exists)
            record = {
                "kind": "database",
                "backend": self.backend.name,
                "project": project.name,
                "compose_file": str(project.file),
                "variables": project.variables,
                "status": "starting",
                "created_at": time.time(),
            }
            state.write_record(self.state_dir, RECORD, record)
            try:
                self.stage_password(project, settings)
                project.up(["db"])
                db_port = project.port("db", DB_PORT)
                url, env = connection(db_port)
                self.backend.wait_database(project, url)
                application.migrate(env)
            except BaseException:
                # The data of earlier runs stays in the volume; only the containers go.
                try:
                    project.down(volumes=False)
                finally:
                    state.delete_record(self.state_dir, RECORD)
                raise
            record.update(status="running", db_port=db_port)
            state.write_record(self.state_dir, RECORD, record)
        echo(f"started the development database in {project.name} on 127.0.0.1:{db_port}")
        return project, url, env

    def _database_running(self, project: ComposeProject) -> bool:
        return "db" in running_services(project.containers())

    def database_url(self) -> str | None:
        """The app database's URL when the development database runs, else None."""
        record, project = self.recorded_project()
        if record is None or not self._database_running(project):
            return None
        return self.backend.project_database_url(project)

    # --- the server -----------------------------------------------------------------------

    def serve(self, port: int | None, echo: Echo) -> int:
        """Run the dev server until Ctrl-C, following its log; the database keeps running.

        Returns the server's exit code (0 after Ctrl-C).

        Raises:
            PortInUseError: the port is taken by something else (nothing was started).
        """
        self.backend.docker()
        settings = self.backend.env.settings(ENVIRONMENT)
        port = port or settings.get("APPLICATION_PORT") or DEFAULT_PORT
        self._stop_server_of_an_earlier_run()
        require_free_port(port, what="the development server", setting="--port or APPLICATION_PORT")
        project, url, _ = self.ensure_database(echo, port)
        require_images(project.variables, ("PYTHON_IMAGE",), project.image_exists)
        since = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        with termination_raises():
            try:
                echo(
                    f"building {project.variables['APP_IMAGE']} (quick once its layers are cached)"
                )
                project.build(["web"])
                # Only web is (re)created: the database keeps running with its data.
                project.up(["web"])
                self.backend.wait_http(project, port, "web")
            except BaseException:
                with deferred_interrupts():
                    project.stop(["web"], timeout=SERVER_STOP_TIMEOUT)
                raise
            record = state.read_record(self.state_dir, RECORD) or {}
            record.update(variables=project.variables, app_port=port)
            state.write_record(self.state_dir, RECORD, record)
        echo(f"development database: {url}")
        echo(f"development server:   http://127.0.0.1:{port}  (Ctrl-C stops it; the data stays)")
        echo(f"stop the database too with: {DOWN_COMMAND}")
        return self._follow(project, since, echo)

    def _stop_server_of_an_earlier_run(self) -> None:
        """A server left by a killed ``dev`` would hold the port: it is ours, so stop it."""
        record = state.read_record(self.state_dir, RECORD)
        if record is None or record.get("backend") != self.backend.name:
            return
        project = self.backend.project(ENVIRONMENT, record["project"], record["variables"])
        if "web" in running_services(project.containers()):
            project.stop(["web"], timeout=SERVER_STOP_TIMEOUT)

    def _follow(self, project: ComposeProject, since: str, echo: Echo) -> int:
        """Print the server's log until Ctrl-C (or SIGTERM), then stop the server."""
        argv = project.argv("logs", "--follow", "--no-log-prefix", "--since", since, "web")
        child = subprocess.Popen(argv, env=project.command_environment())
        interrupted = False
        try:
            while True:
                try:
                    child.wait()
                    break
                except KeyboardInterrupt:
                    interrupted = True
                    child.terminate()  # SIGTERM reaches only us; Ctrl-C reached both
        finally:
            with deferred_interrupts():
                server = [c for c in project.containers() if c.service == "web"]
                project.stop(["web"], timeout=SERVER_STOP_TIMEOUT)
        # A follower ended while the server ran was stopped from outside: the Ctrl-C of a
        # shell that started us with SIGINT ignored reaches only it.
        if interrupted or any(c.status == "running" for c in server):
            echo(f"development server stopped; the database keeps running ({DOWN_COMMAND})")
            return 0
        states = ", ".join(c.status for c in server) or "removed"
        echo(f"the development server stopped on its own ({states})")
        echo(project.logs_tail(["web"]))
        return 1

    # --- down -----------------------------------------------------------------------------

    def down(self, volumes: bool, echo: Echo) -> None:
        """Stop the development containers; ``volumes`` also deletes the data and password."""
        self.backend.docker()
        with termination_raises(), state.environment_lock(self.state_dir, RECORD):
            record, project = self.recorded_project()
            containers = project.containers()
            running = bool(running_services(containers))
            had_data = project.volume_exists(f"{project.name}_{VOLUME}")
            if record is not None or containers or (volumes and had_data):
                project.down(volumes=volumes)
            state.delete_record(self.state_dir, RECORD)
            if volumes:
                remove_folder(self.backend.workdir(project.name))
                # The local backend's development data shares the generated password.
                if not persistent.data_root(self.state_dir, ENVIRONMENT).exists():
                    forget_secrets(self.state_dir, ENVIRONMENT)
        if running:
            message = "the development database is stopped"
        else:
            message = "the development database is not running"
        if volumes and had_data:
            message += "; its data was deleted"
        elif had_data:
            message += f" (data kept in volume {project.name}_{VOLUME}; down --volumes deletes it)"
        echo(message)
