"""The one exception hierarchy of devtools; every message says what failed and what to try."""

from __future__ import annotations


class DevtoolsError(Exception):
    """Base class: a failure the user can act on, shown as one line by the CLI."""


class ConfigError(DevtoolsError):
    """A config file or environment override is missing, malformed or invalid."""


class CommandError(DevtoolsError):
    """An external command exited non-zero."""

    def __init__(self, argv: list[str], returncode: int, output: str) -> None:
        self.argv = argv
        self.returncode = returncode
        self.output = output
        tail = "\n".join(output.strip().splitlines()[-20:])
        super().__init__(f"{argv[0]} exited with {returncode}: {' '.join(argv)}\n{tail}".rstrip())


class WaitTimeout(DevtoolsError):
    """Something did not become ready in time."""


class ServiceStartError(DevtoolsError):
    """A service (postgres, gunicorn, nginx) failed to start; the message carries its log tail."""


class PortInUseError(DevtoolsError):
    """A fixed port the user asked for is already taken."""


class UsageError(DevtoolsError):
    """The user asked for something that cannot be done as asked (bad scale, unknown name)."""
