"""``scenario-run``: load a named scenario into a database, in one transaction.

The devtools package runs this as a subprocess; exit codes are the contract: 0 loaded and
committed, 1 the scenario failed (traceback shown, transaction rolled back) or the database is
unreachable, 2 bad usage (unknown scenario, bad URL, bad scenario arguments; nothing touched).
"""

from __future__ import annotations

import contextlib
import time
import traceback

import click
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from application.config import normalise_database_uri

from . import registry
from .errors import ScenarioUsageError, UnknownScenario

DATABASE_URL_VARIABLE = "SCENARIO_DATABASE_URL"
_POSTGRES_DRIVERS = ("postgresql", "postgres", "postgresql+psycopg2")


class UsageFailure(click.ClickException):
    """Bad input: one ``Error:`` line and exit code 2, like click's usage errors."""

    exit_code = 2


def _database_url(raw: str) -> URL:
    try:
        url = make_url(raw)
    except ArgumentError:
        raise UsageFailure(
            f"--database-url {raw!r} is not a database URL: use postgresql://USER:PASSWORD@HOST:PORT/DB"
        ) from None
    if url.drivername not in _POSTGRES_DRIVERS:
        raise UsageFailure(
            f"--database-url must be a postgresql:// URL, got a {url.drivername!r} one"
        )
    return make_url(normalise_database_uri(url))


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@click.command(
    context_settings={"ignore_unknown_options": True, "help_option_names": ["-h", "--help"]}
)
@click.argument("name", required=False)
@click.argument("scenario_args", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "--database-url",
    metavar="URL",
    envvar=DATABASE_URL_VARIABLE,
    show_envvar=True,
    help="The database to load, as postgresql://USER:PASSWORD@HOST:PORT/DBNAME (the environment "
    "keeps the password out of the process list).",
)
@click.option(
    "--list",
    "list_only",
    is_flag=True,
    help="Print the known scenario names, one per line, and exit.",
)
def main(
    name: str | None, scenario_args: tuple[str, ...], database_url: str | None, list_only: bool
) -> None:
    """Load scenario NAME into the database at --database-url, in one transaction.

    Words after NAME that this command does not know (put them after -- to be sure) go to the
    scenario, for example: scenario-run bulk --database-url URL --count 5000
    """
    if list_only:
        for known in registry.available():
            click.echo(known)
        return
    if name is None:
        known = ", ".join(registry.available())
        raise UsageFailure(f"missing scenario NAME: use one of {known} (or --list)")
    try:
        registry.load(name)
    except UnknownScenario as exc:
        raise UsageFailure(str(exc)) from None
    if not database_url:
        raise UsageFailure(
            f"missing --database-url (or {DATABASE_URL_VARIABLE}): give the postgresql:// URL "
            "to load into"
        )
    url = _database_url(database_url)
    shown = url.render_as_string(hide_password=True)

    started = time.perf_counter()
    engine = create_engine(url, poolclass=NullPool)
    try:
        with Session(engine) as session:
            try:
                session.connection()
            except OperationalError as exc:
                raise click.ClickException(
                    f"cannot connect to {shown}: {_first_line(exc)}"
                ) from None
            try:
                registry.run_scenario(name, session, args=scenario_args)
                session.commit()
            except ScenarioUsageError as exc:
                session.rollback()
                raise UsageFailure(str(exc)) from None
            except Exception:
                # The traceback first: a rollback on a broken connection could raise too. The
                # transaction ends either way, at the latest when the connection closes.
                click.echo(traceback.format_exc(), err=True, nl=False)
                with contextlib.suppress(Exception):
                    session.rollback()
                click.echo(
                    f"Error: scenario {name!r} failed; its transaction was rolled back, "
                    f"{shown} is unchanged",
                    err=True,
                )
                click.get_current_context().exit(1)
    finally:
        engine.dispose()
    elapsed = time.perf_counter() - started
    click.echo(f"Scenario {name!r} loaded into {shown} in {elapsed:.2f} s", err=True)
