"""The one-create-per-row baseline the bench prints beside the bulk scenario."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from scenarios._per_row import create_per_row, main


def test_create_per_row_commits_every_row(session, database):
    seconds = create_per_row(session, 25)
    assert seconds > 0
    assert database.query("SELECT count(*) FROM users") == [(25,)]


def test_command_prints_rows_per_second(database):
    result = CliRunner().invoke(main, ["--database-url", database.url, "--count", "10"])
    assert result.exit_code == 0, result.output
    assert float(result.output) > 0
    assert database.query("SELECT count(*) FROM users") == [(10,)]


def test_runs_as_a_module(database):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "scenarios._per_row",
            "--database-url",
            database.url,
            "--count",
            "3",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) > 0


def test_bad_count_is_a_usage_error(database):
    result = CliRunner().invoke(main, ["--database-url", database.url, "--count", "0"])
    assert result.exit_code == 2
