"""Database models. The schema itself comes from the migrations, never from ``create_all``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import DateTime, String, func
from sqlalchemy.orm import Mapped, mapped_column

from .extensions import Base, db

if TYPE_CHECKING:
    # mypy cannot use an attribute such as db.Model as a base class; db.Model is Base plus
    # Flask-SQLAlchemy's mixins, so Base describes it well enough.
    Model = Base
else:
    Model = db.Model

# RFC 5321 limits a forward path to 256 octets; 320 (64 + 1 + 255) is the figure most
# validators and column definitions use.
EMAIL_MAX_LENGTH = 320


class User(Model):
    """A registered user, identified by a lower-case email address."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(EMAIL_MAX_LENGTH), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    def to_dict(self) -> dict[str, Any]:
        """The user's JSON representation, ``created_at`` as ISO 8601 in UTC."""
        return {
            "id": self.id,
            "email": self.email,
            "created_at": self.created_at.astimezone(UTC).isoformat(),
        }

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email!r}>"
