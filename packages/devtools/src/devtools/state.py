"""Records of running environments in the state folder, and a lock per environment."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from devtools.errors import UsageError


def environments_dir(state: Path) -> Path:
    """Where one JSON record per running environment lives."""
    path = state / "environments"
    path.mkdir(parents=True, exist_ok=True)
    return path


def record_path(state: Path, name: str) -> Path:
    """The record of environment ``name`` ("production", "scenario-users", ...)."""
    return environments_dir(state) / f"{name}.json"


def read_record(state: Path, name: str) -> dict[str, Any] | None:
    """The record of a running environment, or None."""
    try:
        data: dict[str, Any] = json.loads(record_path(state, name).read_text())
    except FileNotFoundError:
        return None
    return data


def write_record(state: Path, name: str, record: dict[str, Any]) -> None:
    """Atomically replace the record of ``name``."""
    path = record_path(state, name)
    staging = path.with_suffix(f".tmp{os.getpid()}")
    staging.write_text(json.dumps(record, indent=2, sort_keys=True))
    staging.replace(path)


def delete_record(state: Path, name: str) -> None:
    """Forget environment ``name``."""
    record_path(state, name).unlink(missing_ok=True)


def all_records(state: Path) -> dict[str, dict[str, Any]]:
    """Every recorded environment by name."""
    records = {}
    for path in sorted(environments_dir(state).glob("*.json")):
        with contextlib.suppress(FileNotFoundError, ValueError):
            records[path.stem] = json.loads(path.read_text())
    return records


@contextlib.contextmanager
def environment_lock(state: Path, name: str) -> Iterator[None]:
    """Serialise commands on one environment (two ``up`` at once would start two copies)."""
    locks = state / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with (locks / f"{name}.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f"another devtools command is working on {name} right now; wait for it to finish"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def require_backend(record: Mapping[str, Any], backend: str, what: str, command: str) -> None:
    """Refuse to touch an environment another backend started (its record says which)."""
    owner = record.get("backend", "local")
    if owner != backend:
        raise UsageError(
            f"{what} is running on the {owner} backend: run `{command}` with "
            f"--backend {owner} (or DEVTOOLS_BACKEND={owner})"
        )
