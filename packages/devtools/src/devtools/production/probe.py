"""HTTP probes: readiness and health are a real request answered 200, never a log line."""

from __future__ import annotations

import http.client


def http_status(
    port: int, path: str = "/health", *, host: str = "127.0.0.1", timeout: float = 2.0
) -> int | None:
    """The status of ``GET path`` on ``host:port``, or None when nothing answered."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        response = connection.getresponse()
        response.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()
    return response.status
