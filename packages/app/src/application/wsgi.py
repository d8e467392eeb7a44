"""The WSGI entry point for gunicorn: ``gunicorn application.wsgi:app``."""

from __future__ import annotations

from . import create_app

app = create_app()
