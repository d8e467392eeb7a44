"""The production simulation on a real engine: replicas behind nginx, live rescaling, down."""

from __future__ import annotations

import http.client
import socket
import time
from pathlib import Path

import pytest

from devtools import state
from devtools.compose.backend import ComposeBackend
from devtools.errors import PortInUseError

from .conftest import leftovers, make_backend


def replica(port: int) -> str | None:
    """The X-Replica header of one request through nginx."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/health")
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        return response.getheader("X-Replica")
    finally:
        conn.close()


def port_of(backend: ComposeBackend) -> int:
    return int(backend.env.environ["APPLICATION_PORT"])


def test_scale_rescale_status_logs_and_down(backend: ComposeBackend, prefix: str):
    port = port_of(backend)
    lines: list[str] = []
    started = time.monotonic()
    try:
        backend.prod_up(3, lines.append)
        print(f"compose prod up (3 replicas) to first 200: {time.monotonic() - started:.2f}s")
        assert lines[0].startswith("building ")
        assert lines[1].startswith("production started with 3 replicas")
        assert lines[2].startswith(f"production: http://127.0.0.1:{port} (3 replicas")
        assert [line.split()[0] for line in lines[4:]] == ["nginx", "db", "web", "web", "web"]
        assert len({replica(port) for _ in range(30)}) == 3

        status: list[str] = []
        backend.prod_status(status.append)
        assert sum(" web " in f" {line} " for line in status) == 3
        # nginx answered already; Docker may not have run its healthcheck yet.
        assert all(" running" in line for line in status[2:])
        assert all("running, healthy" in line for line in status if " web " in f" {line} ")

        logs: list[str] = []
        backend.prod_logs("nginx", 5, logs.append)
        assert "GET /health" in logs[0]

        lines.clear()
        started = time.monotonic()
        backend.prod_up(1, lines.append)
        print(f"compose rescale 3 -> 1: {time.monotonic() - started:.2f}s")
        assert lines[0] == "rescaled from 3 to 1 replica"
        assert len({replica(port) for _ in range(30)}) == 1

        lines.clear()
        started = time.monotonic()
        backend.prod_up(2, lines.append)
        print(f"compose rescale 1 -> 2: {time.monotonic() - started:.2f}s")
        assert lines[0] == "rescaled from 1 to 2 replicas"
        assert len({replica(port) for _ in range(30)}) == 2

        lines.clear()
        backend.prod_up(2, lines.append)
        assert lines[0] == "production is already running with 2 replicas"
    finally:
        said: list[str] = []
        backend.prod_down(True, said.append)
    assert said[0].startswith("production stopped (nginx, 2 replicas, postgres)")
    assert said[0].endswith("deleted its database and generated secrets")
    assert leftovers(prefix + "production") == []
    assert state.read_record(backend.state_dir, "production") is None

    said.clear()
    backend.prod_down(False, said.append)
    assert said == ["production is not running, nothing to stop"]


def test_down_keeps_the_data_unless_asked(backend: ComposeBackend, prefix: str):
    try:
        backend.prod_up(1, lambda line: None)
        said: list[str] = []
        backend.prod_down(False, said.append)
        assert "data kept in volume" in said[0]
        assert leftovers(prefix + "production") == [f"volume {prefix}production_pgdata"]
        said.clear()
        backend.prod_status(said.append)
        assert said == ["production is not running"]
    finally:
        said = []
        backend.prod_down(True, said.append)
    assert said == ["production is not running; deleted its database and generated secrets"]
    assert leftovers(prefix + "production") == []


def test_a_taken_port_is_refused_before_anything_starts(state_dir: Path, prefix: str):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = make_backend(state_dir, APPLICATION_PORT=str(taken.getsockname()[1]))
        with pytest.raises(PortInUseError, match="APPLICATION_PORT"):
            busy.prod_up(1, print)
    assert leftovers(prefix + "production") == []
    assert state.read_record(state_dir, "production") is None
