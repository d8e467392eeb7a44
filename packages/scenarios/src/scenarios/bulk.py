"""Scenario: many users (a million by default) for query and load experiments.

``scenario-run bulk --database-url URL --count 5000``. Building a factory object per row would
take 16-34 s per million, so rows are generated as COPY text, with emails in the shape
:class:`~scenarios.factories.UserFactory` uses (:mod:`scenarios.emails`), and streamed with
COPY; the table's indexes and constraints are rebuilt afterwards. The table may already hold
rows: ids continue after the largest one and email numbers after the largest generated one.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import cycle, islice

import click
from psycopg2 import sql
from sqlalchemy.orm import Session

from application.models import User

from . import loading
from .context import ScenarioContext
from .emails import EMAIL_DOMAINS, claim_email_numbers, next_email_number, user_names
from .errors import ScenarioUsageError

DEFAULT_COUNT = 1_000_000
NAME_POOL_SIZE = 1_000
# Rows per COPY chunk (at least), about 400 KB of text: big enough to amortise the per-chunk
# work, small enough to keep memory flat and the progress bar moving.
CHUNK_ROWS = 10_000
TABLE = User.__tablename__


@dataclass(frozen=True)
class LoadResult:
    """What :func:`load_users` added."""

    count: int
    first_id: int
    last_id: int
    seconds: float


def _count(ctx: click.Context, param: click.Parameter, value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        count = -1
    if count < 0:
        raise click.BadParameter(f"must be a whole number >= 0, got {value!r}")
    return count


@click.command(name="bulk", help="Add many users, streamed with COPY.")
@click.option(
    "--count",
    "-n",
    default=str(DEFAULT_COUNT),
    show_default=True,
    callback=_count,
    help="How many users to add.",
)
def _options(count: int) -> None:
    """Only parses; run() does the work."""


def parse_count(args: Sequence[str]) -> int | None:
    """The ``--count`` in ``args``; ``None`` when ``--help`` was asked for (and printed).

    Raises:
        ScenarioUsageError: ``args`` are not valid options of this scenario.
    """
    try:
        ctx = _options.make_context("bulk", list(args))
    except click.exceptions.Exit:
        return None
    except click.UsageError as exc:
        raise ScenarioUsageError(f"bulk: {exc.format_message()}") from None
    return int(ctx.params["count"])


def same_width_start(lowest: int, count: int) -> int:
    """The first of ``count`` consecutive numbers, all with as many digits, from ``lowest`` up."""
    start = lowest
    while len(str(start + count - 1)) != len(str(start)):
        start = 10 ** len(str(start))
    return start


def email_rows(
    first_id: int, first_number: int, count: int, names: Sequence[str]
) -> Iterator[tuple[str, int]]:
    """COPY text for ``count`` users, a chunk at a time, with the row count of each.

    Every email is ``email_address(name, number)``, the shape
    :class:`~scenarios.factories.UserFactory` uses too, with consecutive numbers from
    ``first_number`` and ids from ``first_id``. Names are taken in sorted order, each with a
    block of numbers; with numbers of one width (:func:`same_width_start`) the rows come out
    sorted by email as well as by id, and PostgreSQL's sort detects presorted input: the
    unique index on email then builds in about half the time.
    """
    # Names hold no digits, so a name that is a prefix of another sorts (with the dot) first.
    used = sorted(names[: max(1, min(count, len(names)))], key=lambda name: f"{name}.")
    per_name, extra = divmod(count, len(used))
    domains = [f"@{domain}\n" for domain in EMAIL_DOMAINS]
    row_id, number = first_id, first_number
    pending: list[str] = []
    pending_rows = 0
    for index, name in enumerate(used):
        rows = per_name + (index < extra)
        prefix = f"{name}."
        turn = number % len(domains)
        suffixes = islice(cycle(domains[turn:] + domains[:turn]), rows)
        ids = range(row_id, row_id + rows)
        numbers = range(number, number + rows)
        # zip stops with the ids: the suffix cycle is exactly as long.
        lines = zip(ids, numbers, suffixes, strict=False)
        pending.append("".join([f"{i}\t{prefix}{n}{suffix}" for i, n, suffix in lines]))
        pending_rows += rows
        row_id += rows
        number += rows
        if pending_rows >= CHUNK_ROWS:
            yield "".join(pending), pending_rows
            pending, pending_rows = [], 0
    if pending_rows:
        yield "".join(pending), pending_rows


def load_users(
    session: Session, count: int, on_rows: Callable[[int], None] | None = None
) -> LoadResult:
    """Add ``count`` users to ``session``'s transaction with COPY; the caller commits.

    Args:
        session: Where to load; its pending changes are flushed first.
        count: How many users to add.
        on_rows: Called with the number of rows of each chunk sent (progress).
    """
    started = time.perf_counter()
    session.flush()
    with loading.raw_cursor(session) as cursor:
        # Nobody else may write (or read half-built indexes) until the transaction ends.
        table = sql.Identifier(TABLE)
        cursor.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(table))
        first_id = int(
            loading.scalar(cursor, sql.SQL("SELECT coalesce(max(id), 0) + 1 FROM {}").format(table))
        )
        lowest = same_width_start(next_email_number(session), count)
        first_number = claim_email_numbers(session, count, at_least=lowest)
        rows = email_rows(first_id, first_number, count, user_names(NAME_POOL_SIZE))
        with loading.indexes_deferred(cursor, TABLE) as found:
            loading.copy_rows(cursor, found.table_identifier, ["id", "email"], rows, on_rows)
        last_id = first_id + count - 1
        loading.advance_sequence(cursor, TABLE, "id", last_id)
    return LoadResult(count, first_id, last_id, time.perf_counter() - started)


def run(context: ScenarioContext) -> None:
    """Add ``--count`` users (default :data:`DEFAULT_COUNT`), with a progress bar on stderr."""
    count = parse_count(context.args)
    if count is None:
        return
    if count == 0:
        context.echo("bulk: --count 0, nothing to load")
        return
    with click.progressbar(
        length=count,
        label=f"Loading {count:,} users",
        file=sys.stderr,
    ) as bar:
        result = load_users(context.session, count, bar.update)
    context.echo(
        f"Loaded {result.count:,} users (ids {result.first_id}-{result.last_id}) "
        f"in {result.seconds:.2f} s"
    )
