"""``nox -s dev``: the Flask development server on the persistent development database."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from devtools import application
from devtools.config import Settings
from devtools.environments import persistent
from devtools.environments.common import flask_run_argv
from devtools.ports import require_free_port
from devtools.signals import deferred_interrupts

DEFAULT_PORT = 5000
SERVER_STOP_SECONDS = 5


def serve(
    *,
    settings: Settings,
    state_dir: Path,
    environ: Mapping[str, str],
    port: int | None = None,
    echo: Callable[[str], None] = print,
) -> int:
    """Run the dev server in the foreground until Ctrl-C; the database keeps running after.

    Returns the server's exit code (0 when Ctrl-C or SIGTERM stopped it).
    """
    port = port or settings.get("APPLICATION_PORT") or DEFAULT_PORT
    require_free_port(port, what="the development server", setting="--port or APPLICATION_PORT")
    settings, info = persistent.ensure_database(settings, state_dir, environ, echo)
    dbname = settings.require("APPLICATION_DB")
    echo(f"development database: {info.dsn(dbname)}")
    echo(f"development server:   http://127.0.0.1:{port}  (Ctrl-C stops it; the data stays)")
    echo("stop the database too with: nox -s dev -- down")
    env = application.app_environment(settings, info, environ)
    child = subprocess.Popen(flask_run_argv(port, debug=True), env=env)
    try:
        return child.wait()
    except KeyboardInterrupt:
        with deferred_interrupts():
            _stop_server(child)
        return 0


def _stop_server(child: subprocess.Popen[bytes]) -> None:
    """Wait for the server to stop, asking harder each time it does not.

    Ctrl-C in the terminal reaches the server too and it stops on its own; SIGTERM (or a Ctrl-C
    the server ignores) reaches only us. The reloader's parent kills its child when terminated.
    """
    for ask in (None, child.terminate, child.kill):
        if ask is not None:
            ask()
        try:
            child.wait(timeout=SERVER_STOP_SECONDS)
            return
        except subprocess.TimeoutExpired:
            continue
