"""``scenario-run``: in-process with click's CliRunner, and as the real console script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from scenarios import cli, registry

SCRIPT = Path(sys.executable).with_name("scenario-run")
UNREACHABLE = "postgresql://postgres:secret@127.0.0.1:1/nowhere"
BOOM = """\
from sqlalchemy import text


def run(context):
    context.session.execute(text("INSERT INTO users (email) VALUES ('doomed@example.com')"))
    raise RuntimeError("boom")
"""


@pytest.fixture(autouse=True)
def no_url_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests pass the URL themselves."""
    monkeypatch.delenv(cli.DATABASE_URL_VARIABLE, raising=False)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli.main, list(args))


def count_users(database: Any) -> int:
    return int(database.query("SELECT count(*) FROM users")[0][0])


def test_list_prints_one_name_per_line() -> None:
    result = invoke("--list")

    assert result.exit_code == 0
    assert result.stdout.splitlines() == registry.available() == ["bulk", "foo", "users"]


def test_every_option_has_help() -> None:
    options = [param for param in cli.main.params if isinstance(param, click.Option)]

    shown = " ".join(invoke("--help").stdout.split())

    assert options
    for option in options:
        assert option.help
        assert option.help in shown


def test_users_is_committed(database: Any) -> None:
    result = invoke("users", "--database-url", database.url)

    assert result.exit_code == 0, result.output
    assert "Created 3 users" in result.stdout
    assert "Scenario 'users' loaded into" in result.stderr
    assert "secret" not in result.stderr
    assert [email for (email,) in database.query("SELECT email FROM users ORDER BY id")] == [
        "admin@server.com",
        "user1@server.com",
        "user2@server.com",
    ]


def test_the_url_can_come_from_the_environment(
    database: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cli.DATABASE_URL_VARIABLE, database.url)

    assert invoke("users").exit_code == 0
    assert count_users(database) == 3


def test_foo_prints_its_greeting(database: Any) -> None:
    result = invoke("foo", "--database-url", database.url)

    assert result.exit_code == 0
    assert result.stdout == "HEY! This is scenario foo\n"


@pytest.mark.parametrize(
    "args",
    [
        ["bulk", "--database-url", "{url}", "--count", "500"],
        ["--database-url", "{url}", "bulk", "-n", "500"],
        ["bulk", "--database-url", "{url}", "--", "--count=500"],
    ],
)
def test_bulk_takes_its_own_options_anywhere(database: Any, args: list[str]) -> None:
    result = invoke(*(arg.format(url=database.url) for arg in args))

    assert result.exit_code == 0, result.output
    assert "Loading 500 users" in result.stderr
    assert count_users(database) == 500


def test_unknown_scenario_is_exit_2_and_one_line_before_any_connection() -> None:
    result = invoke("nope", "--database-url", UNREACHABLE)

    assert result.exit_code == 2
    assert result.stderr == (
        "Error: unknown scenario 'nope': known scenarios are bulk, foo, users\n"
    )


def test_unknown_scenario_touches_nothing(database: Any) -> None:
    assert invoke("nope", "--database-url", database.url).exit_code == 2
    assert count_users(database) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Error: missing scenario NAME: use one of bulk, foo, users (or --list)"),
        (["users"], "Error: missing --database-url"),
        (["users", "--database-url", "not a url"], "is not a database URL"),
        (["users", "--database-url", "mysql://u:p@h/db"], "must be a postgresql:// URL"),
    ],
)
def test_usage_errors_are_exit_2_and_one_line(args: list[str], message: str) -> None:
    result = invoke(*args)

    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_bad_scenario_arguments_are_exit_2_and_touch_nothing(database: Any) -> None:
    result = invoke("bulk", "--database-url", database.url, "--count", "lots")

    assert result.exit_code == 2
    assert result.stderr == (
        "Error: bulk: Invalid value for '--count' / '-n': must be a whole number >= 0, got 'lots'\n"
    )
    assert count_users(database) == 0


def test_unreachable_database_is_exit_1_and_one_line() -> None:
    result = invoke("users", "--database-url", UNREACHABLE)

    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: cannot connect to postgresql+psycopg2://postgres:***@127.0.0.1:1/nowhere: "
    )
    assert len(result.stderr.splitlines()) == 1


def test_a_failing_scenario_shows_its_traceback_and_rolls_back(
    database: Any, extra_scenarios: Path
) -> None:
    (extra_scenarios / "zz_boom.py").write_text(BOOM)

    result = invoke("zz_boom", "--database-url", database.url)

    assert result.exit_code == 1
    assert "Traceback (most recent call last):" in result.stderr
    assert "RuntimeError: boom" in result.stderr
    assert "its transaction was rolled back" in result.stderr
    assert count_users(database) == 0


def run_script(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False, **kwargs
    )


def test_console_script_loads_users(database: Any) -> None:
    completed = run_script("users", "--database-url", database.url)

    assert completed.returncode == 0, completed.stderr
    assert count_users(database) == 3


def test_console_script_unknown_name_exits_2(database: Any) -> None:
    completed = run_script("typo", "--database-url", database.url)

    assert completed.returncode == 2
    assert completed.stderr == (
        "Error: unknown scenario 'typo': known scenarios are bulk, foo, users\n"
    )
    assert count_users(database) == 0


def test_console_script_failure_exits_1_and_rolls_back(database: Any, tmp_path: Path) -> None:
    # A `scenarios/` folder on PYTHONPATH extends the package (pkgutil.extend_path).
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "zz_boom.py").write_text(BOOM)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}

    listed = run_script("--list", env=env)
    completed = run_script("zz_boom", "--database-url", database.url, env=env)

    assert "zz_boom" in listed.stdout.splitlines()
    assert completed.returncode == 1
    assert "RuntimeError: boom" in completed.stderr
    assert "Traceback" in completed.stderr
    assert count_users(database) == 0


def test_console_script_draws_the_progress_bar_on_a_terminal(database: Any) -> None:
    controller, terminal = os.openpty()
    try:
        process = subprocess.Popen(
            [str(SCRIPT), "bulk", "--database-url", database.url, "--count", "30000"],
            stdout=subprocess.PIPE,
            stderr=terminal,
            text=True,
        )
        os.close(terminal)
        terminal = -1
        drawn = b""
        while True:
            try:
                data = os.read(controller, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            drawn += data
        stdout, _ = process.communicate(timeout=120)
    finally:
        os.close(controller)
        if terminal != -1:
            os.close(terminal)

    assert process.returncode == 0, drawn
    assert "Loaded 30,000 users" in stdout
    assert b"Loading 30,000 users" in drawn
    assert b"100%" in drawn
    assert count_users(database) == 30_000
