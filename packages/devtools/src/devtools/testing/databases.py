"""Databases inside a test server: a template built once per run, cheap clones of it."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import psycopg2
from psycopg2 import sql

from devtools.errors import ConfigError


@dataclass(frozen=True)
class DatabaseServer:
    """Where the test databases live: a throwaway local cluster or an external server."""

    host: str
    port: int
    user: str
    password: str

    @classmethod
    def from_url(cls, url: str) -> DatabaseServer:
        """Parse ``postgresql://user:password@host:port/...``."""
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
            raise ConfigError(f"not a postgresql:// URL with a host: {url!r}")
        return cls(
            host=parts.hostname,
            port=parts.port or 5432,
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password or ""),
        )

    def dsn(self, dbname: str = "postgres") -> str:
        """A ``postgresql://`` URL for ``dbname`` on this server."""
        return (
            f"postgresql://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@{self.host}:{self.port}/{quote(dbname, safe='')}"
        )

    def connect(self, dbname: str = "postgres") -> Any:
        """An autocommit psycopg2 connection."""
        conn = psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=dbname,
            connect_timeout=5,
        )
        conn.autocommit = True
        return conn


def _exists(cursor: Any, name: str) -> bool:
    cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
    return cursor.fetchone() is not None


def ensure_template(server: DatabaseServer, name: str, prepare: Callable[[str], None]) -> None:
    """Create database ``name`` once per server, filled by ``prepare(dsn)``.

    Safe when several xdist workers call it at once: an advisory lock serialises them, and
    the database only gets its final name after ``prepare`` succeeded, so a crash halfway
    never leaves a half-built template that later runs would trust.
    """
    building = f"{name}__building"
    conn = server.connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [zlib.crc32(name.encode())])
            if _exists(cursor, name):
                return
            drop_database(server, building)
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(building)))
            prepare(server.dsn(building))
            cursor.execute(
                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                    sql.Identifier(building), sql.Identifier(name)
                )
            )
            cursor.execute(
                sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true").format(sql.Identifier(name))
            )
    finally:
        conn.close()  # also releases the advisory lock


def clone_database(server: DatabaseServer, template: str, name: str) -> None:
    """(Re)create ``name`` as a copy of ``template`` (about 10 ms on tmpfs)."""
    drop_database(server, name)
    conn = server.connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
    finally:
        conn.close()


def drop_database(server: DatabaseServer, name: str) -> None:
    """Drop ``name`` if it exists (even a template), disconnecting its sessions first."""
    conn = server.connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT datistemplate FROM pg_database WHERE datname = %s", [name])
            row = cursor.fetchone()
            if row and row[0]:
                cursor.execute(
                    sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(sql.Identifier(name))
                )
            cursor.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    finally:
        conn.close()
