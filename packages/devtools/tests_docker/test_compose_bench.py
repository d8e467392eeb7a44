"""``bench --only compose`` on the real engine: figures beside the local ones, nothing left."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import pytest

from devtools import bench
from devtools.backends import Backend, get_backend
from devtools.compose import images, naming

from .conftest import REPO_ROOT, docker_names, leftovers

SECONDS = r"(\d+\.\d+) s"


def test_compose_figures_beside_local_leave_nothing_behind(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    scratch_states: list[Path | None] = []

    def recording(
        name: str,
        project_root: Path,
        environ: Mapping[str, str] | None = None,
        state_dir: Path | None = None,
    ) -> Backend:
        if name == "compose":
            scratch_states.append(state_dir)
        return get_backend(name, project_root, environ, state_dir)

    monkeypatch.setattr(bench, "get_backend", recording)
    # The checkout may use the upstream images; this run's offline ones are passed as variables.
    environ = {**os.environ, **images.image_variables(state_dir)}
    figures = bench.compose_figures(REPO_ROOT, environ, runs=1)

    assert [figure.name for figure in figures] == [
        "compose test database to first query",
        "compose scenario up (users) to ready",
        "compose prod up to first 200 (fresh data)",
    ]
    for figure in figures:
        value = re.fullmatch(SECONDS, figure.value)
        local = re.fullmatch(rf"local: {SECONDS} \(1 run each\)", figure.baseline)
        assert value, figure
        assert local, figure
        assert float(value.group(1)) > 0
        assert float(local.group(1)) > 0
        assert figure.target == "-"

    [scratch] = scratch_states
    assert scratch is not None
    assert scratch != state_dir
    assert not scratch.exists()
    prefix = naming.project_prefix(scratch)
    assert leftovers(prefix) == []
    app_images = f"{naming.PREFIX}-{naming.checkout_id(scratch)}/app"
    listing = ("image", "ls", "--format", "{{.Repository}}:{{.Tag}}")
    assert docker_names(*listing, f"--filter=reference={app_images}") == []
