"""Alembic environment: runs migrations on the engine of the current Flask app."""

from __future__ import annotations

import logging
from logging.config import fileConfig
from typing import Any

from alembic import context
from flask import current_app
from sqlalchemy import text

config = context.config

# The ini's logging setup is for the `flask db` command line; inside a process that already
# configured logging (pytest, gunicorn, a devtools helper) it must not replace the handlers.
if config.config_file_name is not None and not logging.getLogger().handlers:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

# Any fixed 64-bit number; every process migrating this database takes the same lock, so
# replicas starting together apply each migration exactly once (the others wait, then see
# there is nothing left to do).
MIGRATION_LOCK_ID = 7_140_213_551

migrate_ext = current_app.extensions["migrate"]
target_db = migrate_ext.db
# `%` must be doubled for configparser interpolation.
config.set_main_option(
    "sqlalchemy.url",
    target_db.engine.url.render_as_string(hide_password=False).replace("%", "%%"),
)


def run_migrations_offline() -> None:
    """Emit the SQL of the migrations instead of running them (`flask db upgrade --sql`)."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_db.metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on a connection of the app's engine."""

    def process_revision_directives(_context: Any, _revision: Any, directives: Any) -> None:
        # An autogenerate run that finds no change should not write an empty revision.
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            logger.info("No changes in schema detected.")

    conf_args = dict(migrate_ext.configure_args)
    conf_args.setdefault("process_revision_directives", process_revision_directives)

    with target_db.engine.connect() as connection:
        # A transaction-level lock: released by the migration transaction's commit or rollback.
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        context.configure(connection=connection, target_metadata=target_db.metadata, **conf_args)
        with context.begin_transaction():
            context.run_migrations()
        # The lock query began the transaction, so alembic joined it instead of owning it.
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
