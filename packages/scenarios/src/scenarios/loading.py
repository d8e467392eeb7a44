"""Fast bulk loading: rows generated in Python, streamed with COPY, indexes built afterwards.

COPY into a table keeps every index and checks every foreign key row by row; building them once
after the load is about twice as fast. :func:`indexes_deferred` reads the table's definitions
from the catalog (nothing is hard-coded), drops them and recreates them identically, so the
schema afterwards is exactly what the migrations made. Everything runs in the caller's
transaction: DDL is transactional in PostgreSQL, so a failure anywhere rolls it all back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from psycopg2 import sql
from sqlalchemy.orm import Session

from .errors import ScenarioError

# A parallel index build gives every process at least 32MB of this: the default 64MB allows
# one worker, 256MB the two that max_parallel_maintenance_workers allows by default.
INDEX_BUILD_MEMORY = "256MB"

_TABLE_QUERY = """
SELECT c.oid, n.nspname, c.relname, c.relkind
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = %(table)s::regclass
"""
# Constraints backed by an index on the table, and foreign keys from or to it (those to it
# depend on its unique index). NOT NULL and CHECK constraints stay: they are cheap per row.
_CONSTRAINTS_QUERY = """
SELECT n.nspname, c.relname, con.conname, con.contype, pg_get_constraintdef(con.oid),
       obj_description(con.oid, 'pg_constraint')
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE con.conparentid = 0
  AND ((con.conrelid = %(table)s AND con.contype IN ('p', 'u', 'x', 'f'))
       OR (con.confrelid = %(table)s AND con.contype = 'f'))
ORDER BY n.nspname, c.relname, con.conname
"""
_INDEXES_QUERY = """
SELECT n.nspname, ic.relname, pg_get_indexdef(i.indexrelid), i.indisclustered,
       i.indisreplident, obj_description(i.indexrelid, 'pg_class'),
       EXISTS (
           SELECT 1 FROM pg_constraint con
           WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid
             AND con.contype IN ('p', 'u', 'x')
       )
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = ic.relnamespace
WHERE i.indrelid = %(table)s
ORDER BY ic.relname
"""


@contextmanager
def raw_cursor(session: Session) -> Iterator[Any]:
    """A psycopg2 cursor on ``session``'s connection, inside its current transaction."""
    connection = session.connection().connection.dbapi_connection
    if connection is None:  # pragma: no cover - session.connection() always checks one out
        raise ScenarioError("the session has no database connection")
    cursor = connection.cursor()
    try:
        yield cursor
    finally:
        cursor.close()


def scalar(cursor: Any, query: str | sql.Composable, params: Any = None) -> Any:
    """The single value ``query`` returns."""
    cursor.execute(query, params)
    row = cursor.fetchone()
    if row is None:  # pragma: no cover - every caller selects exactly one row
        raise ScenarioError(f"no row from {query!r}")
    return row[0]


@dataclass(frozen=True)
class Constraint:
    """A constraint as the catalog describes it."""

    schema: str
    table: str
    name: str
    kind: str
    definition: str
    comment: str | None

    @property
    def table_identifier(self) -> sql.Composable:
        """The schema-qualified table the constraint belongs to."""
        return sql.Identifier(self.schema, self.table)


@dataclass(frozen=True)
class Index:
    """An index of the loaded table as the catalog describes it."""

    schema: str
    name: str
    definition: str
    clustered: bool
    replica_identity: bool
    comment: str | None
    owned_by_constraint: bool


@dataclass(frozen=True)
class TableIndexes:
    """What COPY would maintain row by row on one table: its indexes and related constraints."""

    schema: str
    table: str
    constraints: tuple[Constraint, ...]
    indexes: tuple[Index, ...]

    @property
    def table_identifier(self) -> sql.Composable:
        """The schema-qualified table."""
        return sql.Identifier(self.schema, self.table)


def read_indexes(cursor: Any, table: str) -> TableIndexes:
    """Read the definitions of ``table``'s indexes and constraints from the catalog.

    Args:
        cursor: A psycopg2 cursor.
        table: The table's name, optionally schema-qualified, as in SQL.

    Raises:
        ScenarioError: ``table`` is not an ordinary table.
    """
    cursor.execute(_TABLE_QUERY, {"table": table})
    oid, schema, name, kind = cursor.fetchone()
    if kind != "r":
        raise ScenarioError(
            f"{table} is not an ordinary table (relkind {kind!r}): cannot bulk load"
        )
    cursor.execute(_CONSTRAINTS_QUERY, {"table": oid})
    constraints = tuple(Constraint(*row) for row in cursor.fetchall())
    cursor.execute(_INDEXES_QUERY, {"table": oid})
    indexes = tuple(Index(*row) for row in cursor.fetchall())
    return TableIndexes(schema, name, constraints, indexes)


def drop_indexes(cursor: Any, found: TableIndexes) -> None:
    """Drop what :func:`read_indexes` found: foreign keys first, as they need the unique index."""
    for constraint in sorted(found.constraints, key=lambda c: c.kind != "f"):
        cursor.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                constraint.table_identifier, sql.Identifier(constraint.name)
            )
        )
    for index in found.indexes:
        if not index.owned_by_constraint:
            cursor.execute(
                sql.SQL("DROP INDEX {}").format(sql.Identifier(index.schema, index.name))
            )


def create_indexes(cursor: Any, found: TableIndexes) -> None:
    """Recreate what :func:`drop_indexes` dropped, with the same names and definitions."""
    cursor.execute("SET LOCAL maintenance_work_mem = %s", [INDEX_BUILD_MEMORY])
    for index in found.indexes:
        if not index.owned_by_constraint:
            # pg_get_indexdef gives a complete CREATE INDEX statement, schema-qualified.
            cursor.execute(index.definition)
    # Foreign keys last: those pointing at this table need its unique index back.
    for constraint in sorted(found.constraints, key=lambda c: c.kind == "f"):
        cursor.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                constraint.table_identifier,
                sql.Identifier(constraint.name),
                sql.SQL(constraint.definition),
            )
        )
        if constraint.comment is not None:
            cursor.execute(
                sql.SQL("COMMENT ON CONSTRAINT {} ON {} IS {}").format(
                    sql.Identifier(constraint.name),
                    constraint.table_identifier,
                    sql.Literal(constraint.comment),
                )
            )
    for index in found.indexes:
        identifier = sql.Identifier(index.schema, index.name)
        if index.comment is not None:
            cursor.execute(
                sql.SQL("COMMENT ON INDEX {} IS {}").format(identifier, sql.Literal(index.comment))
            )
        if index.clustered:
            cursor.execute(
                sql.SQL("ALTER TABLE {} CLUSTER ON {}").format(
                    found.table_identifier, sql.Identifier(index.name)
                )
            )
        if index.replica_identity:
            cursor.execute(
                sql.SQL("ALTER TABLE {} REPLICA IDENTITY USING INDEX {}").format(
                    found.table_identifier, sql.Identifier(index.name)
                )
            )


@contextmanager
def indexes_deferred(cursor: Any, table: str) -> Iterator[TableIndexes]:
    """Drop ``table``'s indexes and related constraints for the block, then recreate them.

    Nothing is recreated when the block raises: the caller must roll its transaction back,
    which restores them (and so does any error while recreating, such as a duplicate key).
    """
    found = read_indexes(cursor, table)
    drop_indexes(cursor, found)
    yield found
    create_indexes(cursor, found)


class ChunkReader:
    """A read-only file whose ``read()`` returns the next generated chunk.

    psycopg2's ``copy_expert`` pulls from it, so rows are generated while PostgreSQL parses
    the previous chunk, and no more than one chunk is in memory.

    Args:
        chunks: Pairs of COPY text (whole lines) and the number of rows in it.
        on_rows: Called with each chunk's row count as it is handed over (progress).
    """

    def __init__(
        self, chunks: Iterable[tuple[str, int]], on_rows: Callable[[int], None] | None = None
    ) -> None:
        self._chunks = iter(chunks)
        self._on_rows = on_rows

    def read(self, size: int = -1) -> str:
        """The next chunk, whatever ``size`` asks; ``""`` at the end."""
        del size  # psycopg2 accepts chunks of any length
        for data, rows in self._chunks:
            if self._on_rows is not None:
                self._on_rows(rows)
            if data:
                return data
        return ""


def copy_rows(
    cursor: Any,
    table: sql.Composable,
    columns: Sequence[str],
    chunks: Iterable[tuple[str, int]],
    on_rows: Callable[[int], None] | None = None,
) -> None:
    """Stream ``chunks`` of COPY text into ``columns`` of ``table``.

    Args:
        cursor: A psycopg2 cursor.
        table: The table, as an identifier (``TableIndexes.table_identifier`` for example).
        columns: The columns the text fills, in order; the others get their defaults.
        chunks: Pairs of COPY text and row count. The text must already be escaped for
            COPY's text format: tab-separated, one row a line.
        on_rows: Called with each chunk's row count (progress).
    """
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        table, sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    cursor.copy_expert(statement.as_string(cursor), ChunkReader(chunks, on_rows))


def advance_sequence(cursor: Any, table: str, column: str, value: int) -> None:
    """Make the sequence behind ``table.column`` hand out numbers above ``value`` next.

    A sequence that is already further ahead is left alone.

    Raises:
        ScenarioError: No sequence feeds ``table.column``.
    """
    sequence = scalar(cursor, "SELECT pg_get_serial_sequence(%s, %s)", [table, column])
    if sequence is None:
        raise ScenarioError(f"no sequence feeds {table}.{column}: cannot advance it")
    cursor.execute(
        "SELECT setval(%(seq)s::regclass, "
        "GREATEST(%(value)s, coalesce(pg_sequence_last_value(%(seq)s::regclass), 0)))",
        {"seq": sequence, "value": value},
    )
