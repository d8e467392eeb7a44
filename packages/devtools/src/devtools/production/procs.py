"""Stopping a whole process group, including children left behind by a leader that crashed."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable
from pathlib import Path

from devtools.errors import WaitTimeout
from devtools.processes import ProcessRef, process_start_time, terminate
from devtools.waiting import wait_until


def group_members(pgid: int) -> list[int]:
    """PIDs of the live (non-zombie) processes in process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command name (which may hold spaces and parentheses).
        fields = raw[raw.rindex(")") + 2 :].split()
        if fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def stop_group(ref: ProcessRef, *, sig: signal.Signals, timeout: float) -> None:
    """Stop the process group led by ``ref`` (``sig``, then SIGKILL after ``timeout``).

    A leader killed abruptly (SIGKILL, the OOM killer) leaves its children running in its group:
    gunicorn workers still serving, nginx workers still accepting. They are stopped too, but only
    while the group is provably ours: the kernel does not reuse a PID that still names a process
    group, so if no *other* process has taken the leader's PID, the group is the one we started.
    """
    terminate(ref, sig=sig, timeout=timeout)
    if process_start_time(ref.pid) not in (None, ref.start_time):
        return
    for stage in (signal.SIGTERM, signal.SIGKILL):
        if not group_members(ref.pid):
            return
        try:
            os.killpg(ref.pid, stage)
        except ProcessLookupError:
            return
        try:
            wait_until(
                lambda: not group_members(ref.pid),
                5.0,
                interval=0.02,
                what=f"the processes left in group {ref.pid} to exit",
            )
        except WaitTimeout:
            if stage == signal.SIGKILL:
                raise


def stop_groups(refs: Iterable[ProcessRef], *, sig: signal.Signals, timeout: float) -> None:
    """Stop several process groups at once: ``sig`` to all, one shared wait, then SIGKILL."""
    refs = list(refs)
    for ref in refs:
        if ref.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(ref.pid, sig)
    with contextlib.suppress(WaitTimeout):
        wait_until(
            lambda: not any(ref.alive() for ref in refs),
            timeout,
            interval=0.02,
            what=f"processes {sorted(ref.pid for ref in refs)} to exit",
        )
    for ref in refs:
        stop_group(ref, sig=signal.SIGKILL, timeout=5.0)
