"""Generated secrets: made once per environment into a git-ignored 0600 file and reused."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from devtools.config import Settings


def secrets_file(state: Path, environment: str) -> Path:
    """The secrets file of an environment inside the state folder."""
    return state / "secrets" / f"{environment}.json"


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    return {str(key): str(value) for key, value in data.items()}


def _write(path: Path, data: Mapping[str, str]) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    staging = path.with_suffix(".tmp")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(dict(data), out, indent=2, sort_keys=True)
    staging.replace(path)


def fill_secrets(settings: Settings, state: Path, keys: tuple[str, ...]) -> Settings:
    """Settings with every key in ``keys`` set: from the config/environment, else generated.

    A generated value is written to ``.devtools/secrets/<env>.json`` (mode 0600) on first use
    and read back afterwards, so a persistent database keeps working across runs.
    """
    missing = [key for key in keys if settings.get(key) is None]
    if not missing:
        return settings
    path = secrets_file(state, settings.environment)
    stored = _read(path)
    generated = {key: secrets.token_urlsafe(24) for key in missing if key not in stored}
    if generated:
        _write(path, {**stored, **generated})
    values = {key: stored.get(key) or generated[key] for key in missing}
    return settings.with_values("generated", **values)


def forget_secrets(state: Path, environment: str) -> None:
    """Delete an environment's generated secrets (with its data, on ``down --volumes``)."""
    secrets_file(state, environment).unlink(missing_ok=True)
