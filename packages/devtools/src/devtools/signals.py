"""SIGTERM handled like Ctrl-C, so every ``finally`` that stops a service also runs on it."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when SIGTERM (or SIGHUP) arrives."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(f"received {signal.Signals(signum).name}")


@contextlib.contextmanager
def termination_raises() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Terminated` (a KeyboardInterrupt)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    for sig in previous:
        signal.signal(sig, _raise_terminated)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def unignore_interrupts() -> None:
    """Make Ctrl-C raise KeyboardInterrupt here and reach the programs started from here.

    A program started in the background by a non-interactive shell inherits SIGINT ignored, and
    an ignored signal stays ignored across exec. A handler, unlike SIG_IGN, is reset to the
    default in every child, where Python turns it into KeyboardInterrupt again.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def install_termination_handler() -> None:
    """Make SIGTERM and SIGHUP raise :class:`Terminated` from now on (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _raise_terminated)


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then act on them as usual.

    For starting a process and recording it as one step: an interrupt that lands in between
    (even inside ``subprocess.Popen``, after the fork) would leave a process nobody stops.
    Only the handlers change, not the signal mask, so started programs see normal signals.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    watched = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.getsignal(sig) for sig in watched}

    def hold(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    for sig in watched:
        signal.signal(sig, hold)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        if received:
            # Runs the restored handler now (KeyboardInterrupt, Terminated or the default).
            signal.raise_signal(received[0])
