"""Starting and stopping server processes by PID, safely across devtools invocations.

Background services outlive the command that started them (``scenario up`` returns), so they are
identified later by PID *and* start time: a recycled PID is never signalled.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from devtools.signals import Terminated
from devtools.users import ServerUser
from devtools.waiting import wait_until

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ProcessRef:
    """A process we started: its PID and kernel start time, enough to find it again safely."""

    pid: int
    start_time: int

    @classmethod
    def of(cls, pid: int) -> ProcessRef:
        """Reference a running process by PID (reads its start time now)."""
        started = process_start_time(pid)
        if started is None:
            raise ProcessLookupError(pid)
        return cls(pid, started)

    def alive(self) -> bool:
        """True while the very process we started runs (not a zombie, not a PID reuse)."""
        return process_start_time(self.pid) == self.start_time and not _is_zombie(self.pid)

    def to_json(self) -> dict[str, int]:
        """The form stored in state files."""
        return {"pid": self.pid, "start_time": self.start_time}

    @classmethod
    def from_json(cls, data: Mapping[str, int]) -> ProcessRef:
        """Inverse of :meth:`to_json`."""
        return cls(int(data["pid"]), int(data["start_time"]))


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` in clock ticks, or None when it does not exist."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def _is_zombie(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] in ("Z", "X")


def _die_with_parent() -> None:
    # Runs in the child after the user switch (CPython drops privileges before preexec_fn), so the
    # setting survives: a throwaway server dies with the test run even when that is SIGKILLed.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn(
    argv: list[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: ServerUser | None = None,
    die_with_parent: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session (so Ctrl-C in the terminal does not reach it directly).

    Args:
        argv: the command.
        log_path: stdout and stderr are appended here.
        env: complete environment, or None to inherit.
        cwd: working directory.
        user: drop to this user first.
        die_with_parent: the kernel kills it if the starting thread dies (throwaway servers).
    """
    kwargs = user.popen_kwargs() if user else {}
    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent if die_with_parent else None,
            **kwargs,
        )


def run_foreground(argv: list[str], env: Mapping[str, str]) -> int:
    """Run an interactive command in our process group and return its exit code.

    Ctrl-C in the terminal reaches it directly (psql cancels a query, compose decides what it
    means), so we keep waiting; SIGTERM reaches only us, so we pass it on.
    """
    child = subprocess.Popen(argv, env=dict(env))
    while True:
        try:
            return child.wait()
        except Terminated:
            child.terminate()
        except KeyboardInterrupt:
            continue


def terminate(
    ref: ProcessRef,
    *,
    sig: signal.Signals = signal.SIGTERM,
    timeout: float = 10.0,
    popen: subprocess.Popen[bytes] | None = None,
) -> None:
    """Stop the process group led by ``ref``: ``sig`` first, SIGKILL after ``timeout``.

    Safe to call on a process that is already gone. ``popen`` is reaped when we are its parent.
    """

    def gone() -> bool:
        if popen is not None:
            return popen.poll() is not None
        return not ref.alive()

    if gone():
        return
    _signal_group(ref, sig)
    try:
        wait_until(gone, timeout, interval=0.01, what=f"process {ref.pid} to exit")
    except Exception:
        _signal_group(ref, signal.SIGKILL)
        wait_until(gone, 5.0, interval=0.01, what=f"process {ref.pid} to die after SIGKILL")


def _signal_group(ref: ProcessRef, sig: signal.Signals) -> None:
    if not ref.alive():
        return
    try:
        os.killpg(ref.pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(ref.pid, sig)


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    body = "\n".join(text.splitlines()[-lines:])
    return f"last lines of {path}:\n{body}"


def on_timeout_tail(path: Path, lines: int = 20) -> Callable[[], str]:
    """An ``on_timeout`` callback for :func:`devtools.waiting.wait_until` showing a log tail."""
    return lambda: tail(path, lines)
