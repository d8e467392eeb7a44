"""The ``devtools`` command line: what the nox sessions call. Every user error is one line."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from devtools import application, paths, state
from devtools.backends import BACKENDS, Backend, get_backend
from devtools.config import ENVIRONMENTS, Settings, load_settings
from devtools.environments import persistent
from devtools.errors import DevtoolsError, UsageError
from devtools.processes import run_foreground
from devtools.signals import install_termination_handler

F = TypeVar("F", bound=Callable[..., Any])
# The state record of the development database, whichever backend runs it.
DEVELOPMENT_RECORD = persistent.database_record_name("development")


class Context:
    """What every command needs: the checkout, its state folder and the chosen backend."""

    def __init__(self, project_root: Path, backend_name: str) -> None:
        self.project_root = project_root
        self.state_dir = paths.state_dir(project_root)
        self.backend_name = backend_name

    def settings(self, environment: str) -> Settings:
        """Validated settings of an environment, environment variables applied."""
        return load_settings(self.project_root, environment, os.environ)

    def backend(self, record: str | None = None) -> Backend:
        """The chosen backend; for an environment that is up (its ``record``), the one running it.

        So the ``down`` command printed by ``up`` works without repeating ``--backend``.
        """
        name = self.backend_name
        if record is not None:
            found = state.read_record(self.state_dir, record)
            if found is not None:
                name = str(found.get("backend", "local"))
        return get_backend(name, self.project_root, os.environ)


pass_context = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--project-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The checkout (default: found from the current folder).",
)
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    envvar="DEVTOOLS_BACKEND",
    default="local",
    show_default=True,
    help="Run environments as local processes or as Docker Compose projects.",
)
@click.pass_context
def cli(ctx: click.Context, project_root: Path | None, backend: str) -> None:
    """Throwaway databases, scenarios, a production simulation and a dev server."""
    try:
        root = project_root.resolve() if project_root else paths.find_project_root()
    except FileNotFoundError as error:
        raise click.ClickException(str(error)) from None
    ctx.obj = Context(root, backend)


def echo(line: str) -> None:
    """Print a line of output."""
    click.echo(line)


# --- scenarios ---------------------------------------------------------------------------


@cli.group()
def scenario() -> None:
    """Named data scenarios on throwaway databases."""


@scenario.command(
    "up", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.argument("name")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@pass_context
def scenario_up(context: Context, name: str, args: tuple[str, ...]) -> None:
    """Start scenario NAME; ARGS go to the scenario (e.g. bulk --count 5000)."""
    context.backend().scenario_up(name, args, echo)


@scenario.command("down")
@click.argument("name")
@pass_context
def scenario_down(context: Context, name: str) -> None:
    """Stop scenario NAME and delete its database."""
    context.backend(f"scenario-{name}").scenario_down(name, echo)


@scenario.command("list")
@pass_context
def scenario_list(context: Context) -> None:
    """Running scenarios: name, ports, age."""
    context.backend().scenario_list(echo)


# --- production --------------------------------------------------------------------------


@cli.group()
def prod() -> None:
    """The production simulation: gunicorn replicas behind nginx on a persistent database."""


@prod.command("up")
@click.option(
    "--scale",
    default="1",
    show_default=True,
    help="Number of app replicas (1-32); again on a running stack rescales it live.",
)
@pass_context
def prod_up(context: Context, scale: str) -> None:
    """Start production (or rescale it) and return while it keeps running."""
    from devtools.production import parse_scale

    context.backend().prod_up(parse_scale(scale), echo)


@prod.command("status")
@pass_context
def prod_status(context: Context) -> None:
    """Replicas, ports, PIDs and health."""
    context.backend("production").prod_status(echo)


@prod.command("logs")
@click.argument("service", required=False)
@click.option(
    "--lines",
    "-n",
    type=click.IntRange(1, 100_000),
    default=50,
    show_default=True,
    help="How many lines per log.",
)
@pass_context
def prod_logs(context: Context, service: str | None, lines: int) -> None:
    """The last lines of SERVICE's log (nginx, postgres, replica-N), or of all."""
    context.backend("production").prod_logs(service, lines, echo)


@prod.command("down")
@click.option("--volumes", is_flag=True, help="Also delete the data and generated secrets.")
@pass_context
def prod_down(context: Context, volumes: bool) -> None:
    """Stop production; the data stays unless --volumes."""
    context.backend("production").prod_down(volumes, echo)


@cli.command(
    "with-test-database",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@pass_context
def with_test_database(context: Context, command: tuple[str, ...]) -> None:
    """Run COMMAND (e.g. pytest) with a throwaway server of the backend in
    DEVTOOLS_TEST_DATABASE_URL; exit with COMMAND's exit code."""
    with context.backend().test_database() as url:
        env = {**os.environ, "DEVTOOLS_TEST_DATABASE_URL": url}
        code = run_foreground(list(command), env)
    sys.exit(code)


# --- development -------------------------------------------------------------------------


@cli.group(invoke_without_command=True)
@click.option("--port", type=int, default=None, help="Port of the dev server (default: config).")
@click.pass_context
def dev(ctx: click.Context, port: int | None) -> None:
    """The Flask development server (debug, reload) on the persistent development database."""
    if ctx.invoked_subcommand is not None:
        return
    context = ctx.find_object(Context)
    assert context is not None
    sys.exit(context.backend(DEVELOPMENT_RECORD).dev_serve(port, echo))


@dev.command("down")
@click.option("--volumes", is_flag=True, help="Also delete the development data.")
@pass_context
def dev_down(context: Context, volumes: bool) -> None:
    """Stop the development database (its data stays unless --volumes)."""
    context.backend(DEVELOPMENT_RECORD).dev_down(volumes, echo)


# --- flask, psql, compose, config --------------------------------------------------------


@cli.command(
    "flask", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.option(
    "--env",
    "environment",
    envvar="APPLICATION_CONFIG",
    default="development",
    show_default=True,
    type=click.Choice(["development", "testing", "production"]),
    help="Whose configuration and database (env APPLICATION_CONFIG).",
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@pass_context
def flask_command(context: Context, environment: str, args: tuple[str, ...]) -> None:
    """The Flask CLI with an environment's configuration, e.g. ``db migrate -m "add name"``.

    Runs on this machine (so ``db migrate`` writes into packages/app), against the database
    of the backend running the environment; testing gets a throwaway one.
    """
    record = {"development": DEVELOPMENT_RECORD, "production": "production"}.get(environment)
    argv = [sys.executable, "-m", "flask", "--app", application.FLASK_APP, *args]
    with context.backend(record).app_environment(environment, echo) as env:
        code = run_foreground(argv, env)
    sys.exit(code)


@cli.command("psql")
@click.argument("target", default="development")
@pass_context
def psql_command(context: Context, target: str) -> None:
    """A psql shell on a running database: development, production or a scenario name."""
    import shutil

    from devtools.environments import scenario as scenarios
    from devtools.postgres import PostgresBinaries

    if target == "development":
        record, start = DEVELOPMENT_RECORD, "nox -s dev"
    elif target == "production":
        record, start = "production", "nox -s prod"
    else:
        record, start = scenarios.record_name(target), f'nox -s "scenario({target})"'
    url = context.backend(record).database_url(target)
    if url is None:
        raise UsageError(f"{target} is not running; start it with {start}")
    settings = context.settings("development")
    binaries = PostgresBinaries.from_setting(settings.get("POSTGRES_BINARIES"))
    psql = shutil.which("psql") or str(binaries.path("psql"))
    env = dict(os.environ)
    if psql == str(binaries.path("psql")):
        env["LD_LIBRARY_PATH"] = str(binaries.bindir.parent / "lib")
    sys.exit(run_foreground([psql, url], env))


@cli.command(
    "compose", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.option(
    "--env",
    "environment",
    envvar="APPLICATION_CONFIG",
    default="development",
    show_default=True,
    help="development, production or scenario:NAME (env APPLICATION_CONFIG).",
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@pass_context
def compose_command(context: Context, environment: str, args: tuple[str, ...]) -> None:
    """``docker compose ARGS`` on an environment's project (its name, file and variables),
    e.g. ``ps``, ``logs -f web``, ``exec db psql -U postgres``."""
    from devtools.compose.backend import ComposeBackend

    if not args:
        raise UsageError("give compose its arguments, e.g. nox -s compose -- ps")
    backend = get_backend("compose", context.project_root, os.environ)
    assert isinstance(backend, ComposeBackend)
    sys.exit(backend.compose(environment, args))


@cli.command("config")
@click.argument("environment", type=click.Choice(ENVIRONMENTS))
@pass_context
def config_command(context: Context, environment: str) -> None:
    """Print an environment's effective settings and where each came from (secrets masked)."""
    from devtools.secrets_store import secrets_file

    settings = context.settings(environment)
    stored = secrets_file(context.state_dir, environment)
    echo(f"# {settings.path}")
    for key, value, source in settings.describe():
        echo(f"{key:<20} {value:<28} {source}")
    for key in ("POSTGRES_PASSWORD", "SECRET_KEY"):
        if settings.get(key) is None:
            where = f"generated into {stored}" if stored.exists() else "generated on first up"
            echo(f"{key:<20} {'********':<28} {where}")


# --- status and clean --------------------------------------------------------------------


@cli.command("status")
@pass_context
def status_command(context: Context) -> None:
    """Every environment this checkout has up, and leftovers of interrupted runs."""
    from devtools import inventory

    for line in inventory.status_lines(context.state_dir):
        echo(line)


@cli.command("clean")
@pass_context
def clean_command(context: Context) -> None:
    """Stop and remove leftovers of interrupted runs (safe to run twice)."""
    from devtools import inventory

    for line in inventory.clean(context.state_dir):
        echo(line)


@cli.command("images")
@click.option(
    "--offline",
    is_flag=True,
    help="Build stand-ins for the base images from Debian packages (no registry needed).",
)
@pass_context
def images_command(context: Context, offline: bool) -> None:
    """Choose the compose backend's images: upstream (default) or offline stand-ins."""
    from devtools.compose.images import prepare_images

    prepare_images(context.project_root, offline, echo)


@cli.command("loadtest")
@click.option(
    "--users",
    type=click.IntRange(1, 500),
    default=20,
    show_default=True,
    help="Concurrent locust users.",
)
@click.option(
    "--seconds",
    type=click.IntRange(1, 3600),
    default=15,
    show_default=True,
    help="How long to run.",
)
@pass_context
def loadtest_command(context: Context, users: int, seconds: int) -> None:
    """Load the running production stack with locust and print rate, latency, errors, replicas."""
    from devtools import loadtest

    url = loadtest.production_url(context.project_root)
    loadtest.run_locust(url, users=users, seconds=seconds, echo=echo)


@cli.command("bench")
@click.option(
    "--runs",
    type=click.IntRange(3, 1000),
    default=15,
    show_default=True,
    help="Repetitions per figure (medians are printed).",
)
@click.option(
    "--bulk-count",
    type=click.IntRange(1),
    default=1_000_000,
    show_default=True,
    help="Users loaded by the bulk scenario figure.",
)
@click.option(
    "--only",
    type=click.Choice(["foundation", "bulk", "prod", "compose"]),
    multiple=True,
    help="Print only these groups of figures (default: all but compose, which needs Docker: "
    "compose up times beside the local ones).",
)
@pass_context
def bench_command(context: Context, runs: int, bulk_count: int, only: tuple[str, ...]) -> None:
    """Print the speed and memory figures beside their targets and baselines."""
    from devtools import bench

    groups = set(only or ("foundation", "bulk", "prod"))
    environ = dict(os.environ)
    if "foundation" in groups:
        for figure in bench.foundation_figures(runs):
            echo(figure.line())
    if "bulk" in groups:
        echo(bench.bulk_load(bulk_count, 2000, environ).line())
    if "prod" in groups:
        for figure in bench.production_figures(context.project_root, environ):
            echo(figure.line())
    if "compose" in groups:
        for figure in bench.compose_figures(context.project_root, environ, runs):
            echo(figure.line())


def main() -> None:
    """Entry point: one line per user error, exit 130 on Ctrl-C after cleanup."""
    install_termination_handler()
    try:
        result = cli.main(standalone_mode=False)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except DevtoolsError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted; everything started by this command was stopped", err=True)
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)
