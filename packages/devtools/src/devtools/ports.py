"""Ports are asked of the OS, never hard-coded; a fixed port the user asked for is checked first."""

from __future__ import annotations

import socket

from devtools.errors import PortInUseError


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free on ``host`` a moment ago (the caller retries if it loses a race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether binding ``host:port`` would succeed now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def require_free_port(port: int, host: str = "127.0.0.1", *, what: str, setting: str) -> None:
    """Raise a clear error when a configured port is taken.

    Args:
        port: the port to check.
        host: the address it will be bound on.
        what: who wants it ("nginx", "the development server").
        setting: the config key or option that chooses it, named in the hint.
    """
    if not port_is_free(port, host):
        raise PortInUseError(
            f"port {port} on {host} is already in use, so {what} cannot listen there: "
            f"stop whatever uses it or choose another port with {setting}"
        )


def accepts_connections(port: int, host: str = "127.0.0.1", timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
