"""Flask extensions, created unbound and attached to each app by ``create_app``."""

from __future__ import annotations

from pathlib import Path

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Inside the package, so `flask db upgrade` and `flask_migrate.upgrade()` find it from any cwd
# and the wheel carries it.
MIGRATIONS_DIRECTORY = Path(__file__).resolve().parent / "migrations"


# Named constraints make later migrations able to drop or alter them by a known name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """The declarative base of every model (SQLAlchemy 2.0 typed mapping)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
# PostgreSQL alters tables in place; batch mode only exists for SQLite.
migrate = Migrate(directory=str(MIGRATIONS_DIRECTORY), render_as_batch=False)
