"""loadtest (locust) and the bulk/production bench figures, on small real runs."""

from __future__ import annotations

import os
import re

import pytest

from devtools import production
from devtools.bench import bulk_load, production_figures
from devtools.config import load_settings
from devtools.errors import UsageError
from devtools.loadgen import run_load
from devtools.loadtest import production_url, run_locust
from devtools.ports import free_port

from .conftest import REPO_ROOT


@pytest.fixture
def running_production(configured_project):
    """Production with 2 replicas on a free port; always brought down."""
    import shutil

    shutil.copytree(REPO_ROOT / "docker" / "nginx", configured_project / "docker" / "nginx")
    env = {**os.environ, "APPLICATION_PORT": str(free_port()), "GUNICORN_WORKERS": "1"}
    settings = load_settings(configured_project, "production", env)
    try:
        yield production.up(configured_project, settings, scale=2, environ=env)
    finally:
        production.down(configured_project, volumes=True)


def test_locust_reports_rate_latency_errors_and_replicas(running_production, configured_project):
    lines: list[str] = []
    url = production_url(configured_project)
    figures = run_locust(url, users=4, seconds=3, echo=lines.append)
    assert figures["requests"] > 0
    assert figures["failures"] == 0
    assert {key for key in figures if key.startswith("replica:")} == {
        "replica:replica-1",
        "replica:replica-2",
    }
    assert re.search(r"requests/s, p50 \d+ ms, p99 \d+ ms, 0 errors", "\n".join(lines))


def test_loadtest_without_production_says_how_to_start_it(configured_project):
    with pytest.raises(UsageError, match="nox -s prod -- --scale 3"):
        production_url(configured_project)


def test_load_generator_counts_answers_per_replica(running_production):
    assert running_production.nginx is not None
    result = run_load(running_production.nginx.port, "/health", seconds=1, processes=1)
    assert result.requests > 0
    assert result.errors == 0
    assert set(result.replicas) == {"replica-1", "replica-2"}
    assert "requests/s" in result.summary()
    assert result.percentile(0.99) >= result.percentile(0.5) > 0


def test_bulk_figure_beside_the_per_row_rate():
    figure = bulk_load(5000, 50, dict(os.environ))
    assert figure.name == "bulk scenario, 5,000 users (whole process)"
    assert re.fullmatch(r"\d+\.\d\d s", figure.value)
    assert "rows/s" in figure.baseline


def test_production_figures_are_measured_on_a_scratch_copy():
    figures = production_figures(REPO_ROOT, dict(os.environ), seconds=0.5, rounds=1)
    assert [figure.target for figure in figures] == ["<= 3 s", ">= 0.9", ">= 1.5x"]
