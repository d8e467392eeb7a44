"""Tiny HTTP readiness checks (stdlib only: devtools must not need the app's dependencies)."""

from __future__ import annotations

import http.client


def get_status(host: str, port: int, path: str = "/health", timeout: float = 2.0) -> int | None:
    """The HTTP status of ``GET path``, or None when nothing answers."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()
