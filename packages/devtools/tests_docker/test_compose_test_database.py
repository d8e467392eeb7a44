"""``test_database()`` on a real engine: a throwaway PostgreSQL container, always removed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import pytest

from devtools.compose import images, naming
from devtools.compose.backend import ComposeBackend

from .conftest import REPO_ROOT, leftovers, make_backend


def test_yields_a_url_psycopg2_can_query_and_leaves_nothing(backend: ComposeBackend, prefix: str):
    started = time.monotonic()
    with backend.test_database() as url:
        ready = time.monotonic() - started
        with psycopg2.connect(url) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT current_user, current_database(), current_setting('fsync')")
            assert cursor.fetchone() == ("postgres", "postgres", "off")
        assert url.startswith("postgresql://postgres:")
        assert "@127.0.0.1:" in url
        assert leftovers(prefix + "test-")
    print(f"compose test_database ready in {ready:.2f}s")
    assert leftovers(prefix + "test-") == []
    # The staged password went with it.
    assert not list((backend.state_dir / "compose").glob("*-test-*"))


def test_two_at_once_do_not_collide(backend: ComposeBackend, prefix: str):
    with backend.test_database() as first, backend.test_database() as second:
        assert first.rsplit("@", 1)[1] != second.rsplit("@", 1)[1]
        for url in (first, second):
            with psycopg2.connect(url) as connection, connection.cursor() as cursor:
                cursor.execute("SELECT 1")
    assert leftovers(prefix + "test-") == []


def test_an_error_inside_still_removes_everything(backend: ComposeBackend, prefix: str):
    with pytest.raises(RuntimeError, match="boom"), backend.test_database():
        raise RuntimeError("boom")
    assert leftovers(prefix + "test-") == []


CHILD = """
import os, sys, time
from pathlib import Path
from devtools.backends import Environment
from devtools.compose.backend import ComposeBackend
env = Environment(Path(sys.argv[1]), dict(os.environ))
env.state_dir = Path(sys.argv[2])
with ComposeBackend(env).test_database() as url:
    print(url, flush=True)
    time.sleep(120)
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_run_removes_everything(state_dir: Path, prefix: str, signum: int):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(REPO_ROOT), str(state_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().startswith("postgresql://")
        assert leftovers(prefix + "test-")
        child.send_signal(signum)
        assert child.wait(timeout=60) != 0
    finally:
        child.kill()
        child.wait()
    assert leftovers(prefix + "test-") == []


def test_a_missing_offline_image_is_a_clear_error_not_a_hang(tmp_path: Path):
    state = tmp_path / "state"
    path = images.images_file(state)
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps(
            {"POSTGRES_IMAGE": "devtools-offline/postgres:0-missing", "PULL_POLICY": "never"}
        )
    )
    backend = make_backend(state)
    started = time.monotonic()
    with (
        pytest.raises(images.ImageMissing, match=r"postgres:0-missing is not on this Docker"),
        backend.test_database(),
    ):
        pass
    assert time.monotonic() - started < 10
    assert leftovers(naming.project_prefix(state)) == []
