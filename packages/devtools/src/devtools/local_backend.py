"""The local backend: PostgreSQL, the app, gunicorn and nginx as native processes."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence

from devtools import application, production
from devtools.backends import Echo, Environment
from devtools.environments import persistent
from devtools.environments import scenario as scenarios
from devtools.postgres import PostgresBinaries, PostgresCluster


def age(seconds: float) -> str:
    """``3m12s``-style age."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class LocalBackend:
    """Every environment as processes on this machine, no Docker needed."""

    name = "local"

    def __init__(self, env: Environment) -> None:
        self.env = env

    def scenario_up(self, name: str, args: Sequence[str], echo: Echo) -> None:
        """See :func:`devtools.environments.scenario.up`."""
        scenarios.up(
            name=name,
            settings=self.env.settings("scenario"),
            state_dir=self.env.state_dir,
            environ=self.env.environ,
            args=args,
            echo=echo,
        )

    def scenario_down(self, name: str, echo: Echo) -> bool:
        """See :func:`devtools.environments.scenario.down`."""
        return scenarios.down(name=name, state_dir=self.env.state_dir, echo=echo)

    def scenario_list(self, echo: Echo) -> None:
        """Running scenarios of both backends' records: name, ports, age."""
        running = scenarios.running_scenarios(self.env.state_dir)
        if not running:
            echo("no scenario is up")
            return
        echo(f"{'NAME':<16} {'APP':<24} {'DB PORT':<8} {'AGE':<8} STATE")
        now = time.time()
        for item in running:
            state = "running" if item.alive() else "dead (run down)"
            echo(
                f"{item.name:<16} {item.app.url:<24} {item.database.port:<8} "
                f"{age(now - item.created_at):<8} {state}"
            )

    def prod_up(self, scale: int, echo: Echo) -> None:
        """See :func:`devtools.production.up`."""
        status = production.up(
            self.env.project_root,
            self.env.settings("production"),
            scale=scale,
            environ=self.env.environ,
        )
        echo(status.describe())

    def prod_status(self, echo: Echo) -> None:
        """See :func:`devtools.production.status`."""
        echo(production.status(self.env.project_root).describe())

    def prod_logs(self, service: str | None, lines: int, echo: Echo) -> None:
        """See :func:`devtools.production.logs`."""
        echo(production.logs(self.env.project_root, service, lines))

    def prod_down(self, volumes: bool, echo: Echo) -> None:
        """See :func:`devtools.production.down`."""
        echo(production.down(self.env.project_root, volumes=volumes))

    @contextlib.contextmanager
    def test_database(self) -> Iterator[str]:
        """A throwaway cluster on tmpfs for one test run."""
        settings = self.env.settings("testing")
        cluster = PostgresCluster(
            binaries=PostgresBinaries.from_setting(settings.get("POSTGRES_BINARIES")),
            superuser=settings.require("POSTGRES_USER"),
        )
        with cluster as info:
            yield info.dsn("postgres")

    def dev_serve(self, port: int | None, echo: Echo) -> int:
        """See :func:`devtools.environments.development.serve`."""
        from devtools.environments import development

        return development.serve(
            settings=self.env.settings("development"),
            state_dir=self.env.state_dir,
            environ=self.env.environ,
            port=port,
            echo=echo,
        )

    def dev_down(self, volumes: bool, echo: Echo) -> None:
        """Stop the development database (and delete its data with ``volumes``)."""
        if persistent.stop_database(self.env.state_dir, "development", volumes=volumes):
            echo("the development database is stopped" + (" and deleted" if volumes else ""))
        else:
            echo("the development database is not running" + ("; data deleted" if volumes else ""))

    @contextlib.contextmanager
    def app_environment(self, environment: str, echo: Echo) -> Iterator[dict[str, str]]:
        """The environment of an app command: testing on a throwaway cluster for its duration,
        development and production on their persistent databases (started unless running)."""
        settings = self.env.settings(environment)
        if environment == "testing":
            cluster = PostgresCluster(
                binaries=PostgresBinaries.from_setting(settings.get("POSTGRES_BINARIES")),
                superuser=settings.require("POSTGRES_USER"),
            )
            with cluster as info:
                application.create_database(info, settings.require("APPLICATION_DB"))
                env = application.app_environment(settings, info, self.env.environ)
                application.migrate(env)
                yield env
        else:
            settings, info = persistent.ensure_database(
                settings, self.env.state_dir, self.env.environ, echo
            )
            yield application.app_environment(settings, info, self.env.environ)

    def database_url(self, target: str) -> str | None:
        """The URL of a running environment's app database (development, production or a
        scenario's name), or None when it is not running."""
        if target in ("development", "production"):
            info = persistent.running_database(self.env.state_dir, target)
            dbname = self.env.settings(target).require("APPLICATION_DB")
            return info.dsn(dbname) if info is not None else None
        for item in scenarios.running_scenarios(self.env.state_dir):
            if item.name == target and item.alive():
                return item.database.dsn(item.dbname)
        return None
