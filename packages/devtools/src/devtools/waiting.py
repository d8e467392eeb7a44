"""The single wait primitive: poll a check until it passes or a deadline expires."""

from __future__ import annotations

import time
from collections.abc import Callable

from devtools.errors import WaitTimeout


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    *,
    interval: float = 0.01,
    what: str = "condition",
    on_timeout: Callable[[], str] | None = None,
) -> float:
    """Call ``check`` until it returns true; return the seconds it took.

    Args:
        check: returns true when ready. Exceptions propagate: a check that can fail
            transiently must catch its own expected errors and return False.
        timeout: seconds before giving up.
        interval: seconds between attempts.
        what: described in the timeout message ("postgres on 127.0.0.1:5432 to accept a query").
        on_timeout: returns extra detail for the error, such as the tail of a log.

    Raises:
        WaitTimeout: the deadline passed without ``check`` returning true.
    """
    start = time.monotonic()
    deadline = start + timeout
    while True:
        if check():
            return time.monotonic() - start
        if time.monotonic() >= deadline:
            detail = on_timeout() if on_timeout else ""
            message = f"timed out after {timeout:g}s waiting for {what}"
            raise WaitTimeout(f"{message}\n{detail}".rstrip())
        time.sleep(interval)
