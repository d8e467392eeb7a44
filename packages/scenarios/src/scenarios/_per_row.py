"""The slow way, measured: one factory ``create()`` and one commit per row.

``python -m scenarios._per_row --database-url URL --count 2000`` prints rows per second; the
bench prints it beside the bulk scenario's figure.
"""

from __future__ import annotations

import time

import click
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from scenarios.factories import UserFactory, bound_to


def create_per_row(session: Session, count: int) -> float:
    """Create ``count`` users one factory call and one commit at a time; return seconds."""
    start = time.perf_counter()
    with bound_to(session):
        for _ in range(count):
            UserFactory.create()
            session.commit()
    return time.perf_counter() - start


@click.command()
@click.option("--database-url", required=True, help="postgresql:// URL of a migrated database.")
@click.option(
    "--count", type=click.IntRange(1), default=2000, show_default=True, help="Rows to create."
)
def main(database_url: str, count: int) -> None:
    """Print ``ROWS_PER_SECOND`` for one-create-per-row."""
    url = database_url.replace("postgresql://", "postgresql+psycopg2://", 1)
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            seconds = create_per_row(session, count)
    finally:
        engine.dispose()
    click.echo(f"{count / seconds:.1f}")


if __name__ == "__main__":  # pragma: no cover - exercised as a subprocess
    main()
