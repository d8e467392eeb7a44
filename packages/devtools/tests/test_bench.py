"""The benchmark code runs and yields well-formed figures (no timing is asserted)."""

from __future__ import annotations

import re

from click.testing import CliRunner

from devtools.bench import Figure, foundation_figures
from devtools.cli import cli

from .conftest import orphaned_roots


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
