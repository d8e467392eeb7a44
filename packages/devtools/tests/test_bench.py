"""The benchmark code runs and yields well-formed figures (no timing is asserted)."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from devtools import bench
from devtools.bench import Figure, foundation_figures
from devtools.cli import cli
from devtools.compose import images

from .conftest import orphaned_roots
from .test_compose_backend import DEAD_DAEMON, fake_docker


def test_foundation_figures_are_measured_with_baselines():
    figures = foundation_figures(runs=3)
    assert [figure.name for figure in figures] == [
        "throwaway cluster to first query (median)",
        "per-test isolation cost (median)",
        "test cluster memory (PSS, all processes)",
    ]
    for figure in figures:
        assert re.fullmatch(r"\d+\.\d (ms|MB)", figure.value), figure
        assert re.search(r"\d", figure.baseline), figure
    assert not orphaned_roots()


def test_bench_command_prints_one_line_per_figure(configured_project):
    result = CliRunner().invoke(
        cli,
        ["--project-root", str(configured_project), "bench", "--runs", "3", "--only", "foundation"],
    )
    assert result.exit_code == 0, result.output
    assert len(result.output.strip().splitlines()) == 3
    assert "target <= 100 ms" in result.output


def test_figure_line_layout():
    line = Figure("x", "1.0 ms", "<= 2 ms", "base").line()
    assert line.startswith("x ")
    assert "target <= 2 ms" in line
    assert line.endswith("baseline base")


def test_compose_figures_without_docker_are_one_line_and_start_nothing(
    configured_project, tmp_path
):
    environ = {**os.environ, **fake_docker(tmp_path / "bin", DEAD_DAEMON)}
    environ["PATH"] = f"{tmp_path / 'bin'}:{os.environ['PATH']}"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from devtools.cli import main; main()",
            "--project-root",
            str(configured_project),
            "bench",
            "--only",
            "compose",
        ],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: cannot use the Docker daemon"), line
    assert result.stdout == ""
    # Only the version check ran: no compose project was asked for, nothing was created.
    assert (tmp_path / "bin" / "calls").read_text().splitlines() == [
        "version --format {{.Server.Version}}"
    ]


def test_compose_figures_are_asked_for_not_default(configured_project, monkeypatch):
    called = []
    figure = Figure("x", "1.00 s", "-", "-")

    def group(name: str, result: object) -> Callable[..., object]:
        def measure(*args: object, **kwargs: object) -> object:
            called.append(name)
            return result

        return measure

    monkeypatch.setattr(bench, "foundation_figures", group("foundation", [figure]))
    monkeypatch.setattr(bench, "bulk_load", group("bulk", figure))
    monkeypatch.setattr(bench, "production_figures", group("prod", [figure]))
    monkeypatch.setattr(bench, "compose_figures", group("compose", [figure]))
    root = ["--project-root", str(configured_project), "bench"]
    result = CliRunner().invoke(cli, root)
    assert result.exit_code == 0, result.output
    assert called == ["foundation", "bulk", "prod"]  # Docker is never needed by default
    called.clear()
    result = CliRunner().invoke(cli, [*root, "--only", "compose"])
    assert result.exit_code == 0, result.output
    assert called == ["compose"]
    assert result.output.splitlines() == [figure.line()]


class FakeBackend:
    """Records what the bench asks of a backend; ``fail`` raises on that call (a Ctrl-C)."""

    def __init__(self, name: str, calls: list[str], fail: str = "") -> None:
        self.name = name
        self.calls = calls
        self.fail = fail

    def _call(self, what: str) -> None:
        self.calls.append(f"{self.name} {what}")
        if what == self.fail:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def test_database(self) -> Iterator[str]:
        self._call("database")
        yield "postgresql://postgres@127.0.0.1:1/postgres"
        self._call("database gone")

    def scenario_up(self, name: str, args: Sequence[str], echo: Callable[[str], None]) -> None:
        self._call(f"scenario up {name}")

    def scenario_down(self, name: str, echo: Callable[[str], None]) -> bool:
        self._call(f"scenario down {name}")
        return True

    def prod_up(self, scale: int, echo: Callable[[str], None]) -> None:
        self._call(f"prod up {scale}")

    def prod_down(self, volumes: bool, echo: Callable[[str], None]) -> None:
        self._call(f"prod down volumes={volumes}")


@pytest.fixture
def fake_compose(project: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """compose_figures with fake backends and a fake docker CLI; what they saw is returned."""
    (project / "docker" / "nginx").mkdir(parents=True)
    chosen = images.images_file(project / ".devtools")
    chosen.parent.mkdir(parents=True)
    chosen.write_text('{"PULL_POLICY": "never"}\n')
    seen: dict[str, Any] = {"calls": [], "docker": [], "fail": ""}

    def get_backend(
        name: str, root: Path, environ: Mapping[str, str], state_dir: Path | None = None
    ) -> FakeBackend:
        seen[name] = {"root": root, "state_dir": state_dir, "port": environ["APPLICATION_PORT"]}
        if state_dir is not None:
            seen["images"] = images.images_file(state_dir).read_text()
        return FakeBackend(name, seen["calls"], seen["fail"] if name == "compose" else "")

    def docker(argv: list[str], **kwargs: object) -> str:
        seen["docker"].append(argv[1:3])
        return f"{argv[-1].split('=')[-1]}\n" if argv[2] == "ls" else ""

    monkeypatch.setattr(bench, "require_docker", lambda environ: "docker")
    monkeypatch.setattr(bench, "get_backend", get_backend)
    monkeypatch.setattr(bench, "get_status", lambda host, port, path: 200)
    monkeypatch.setattr(bench.commands, "run", docker)
    return seen


def test_compose_figures_take_turns_and_clean_up(project, fake_compose):
    figures = bench.compose_figures(project, {}, runs=3)
    assert [figure.value.endswith(" s") for figure in figures] == [True] * 3
    assert [figure.target for figure in figures] == ["-"] * 3
    assert figures[0].baseline.endswith("(median of 3 runs each)")
    assert figures[1].baseline.endswith("(1 run each)")
    calls = fake_compose["calls"]
    one_round = [
        "compose database",
        "compose database gone",
        "local database",
        "local database gone",
    ]
    assert calls[:12] == one_round * 3
    assert calls[12:] == [
        "compose scenario up users",
        "compose scenario down users",
        "local scenario up users",
        "local scenario down users",
        "compose prod up 1",
        "compose prod down volumes=True",
        "local prod up 1",
        "local prod down volumes=True",
    ]
    compose, local = fake_compose["compose"], fake_compose["local"]
    assert compose["root"] == project
    assert local["root"] != project
    assert compose["port"] != local["port"]
    # The scratch state got the checkout's image choice, and everything scratch is gone.
    assert fake_compose["images"] == '{"PULL_POLICY": "never"}\n'
    assert not compose["state_dir"].parent.exists()
    assert not local["root"].exists()
    assert fake_compose["docker"] == [["image", "ls"], ["image", "rm"]]


def test_an_interrupted_compose_bench_still_tears_down(project, fake_compose):
    fake_compose["fail"] = "prod up 1"
    with pytest.raises(KeyboardInterrupt):
        bench.compose_figures(project, {}, runs=1)
    assert fake_compose["calls"][-2:] == ["compose prod up 1", "compose prod down volumes=True"]
    assert fake_compose["docker"] == [["image", "ls"], ["image", "rm"]]
    assert not fake_compose["compose"]["state_dir"].parent.exists()
