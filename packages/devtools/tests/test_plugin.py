"""The pytest plugin: one server per run, shared with xdist workers, gone afterwards."""

from __future__ import annotations

import pytest

from .conftest import distribution_postgres, orphaned_roots

pytest_plugins = ["pytester"]

PROBE = """
import os

def test_server(postgres_server, worker_id):
    conn = postgres_server.connect()
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
    conn.close()
    with open(os.environ["PORTS_FILE"], "a") as out:
        out.write(f"{worker_id} {postgres_server.port}\\n")
"""


@pytest.fixture
def ports_file(pytester, monkeypatch):
    """A file the inner test run appends 'worker port' lines to."""
    path = pytester.path / "ports.txt"
    monkeypatch.setenv("PORTS_FILE", str(path))
    monkeypatch.delenv("DEVTOOLS_TEST_DATABASE_URL", raising=False)
    return path


def test_one_server_shared_by_xdist_workers_and_stopped_after(pytester, ports_file):
    pytester.makepyfile(test_a=PROBE, test_b=PROBE, test_c=PROBE, test_d=PROBE)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    lines = [line.split() for line in ports_file.read_text().splitlines()]
    assert {worker for worker, _ in lines} == {"gw0", "gw1"}
    assert len({port for _, port in lines}) == 1
    assert not orphaned_roots()


def test_external_server_is_used_instead_of_starting_one(pytester, ports_file, postgres_server):
    pytester.makepyfile(test_a=PROBE)
    result = pytester.runpytest_inprocess(
        f"--postgres-url={postgres_server.dsn()}", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)
    assert ports_file.read_text().split() == ["master", str(postgres_server.port)]
    assert not orphaned_roots()


def test_configured_binaries_are_used(pytester, ports_file):
    bindir = distribution_postgres()
    pytester.makepyfile(
        test_version=f"""
def test_version(postgres_server):
    conn = postgres_server.connect()
    with conn.cursor() as cursor:
        cursor.execute("SHOW server_version")
        assert cursor.fetchone()[0].startswith("{bindir.parent.name}.")
    conn.close()
"""
    )
    result = pytester.runpytest_inprocess(f"--postgres-binaries={bindir}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert not orphaned_roots()
