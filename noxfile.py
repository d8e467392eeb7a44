"""Every developer command of this repository. Sessions stay thin; the logic lives in devtools.

Run ``nox -l`` for the list. Sessions use the Python running nox unless ``--force-python`` says
otherwise; each installs exactly what ``pdm.lock`` pins for its groups.
"""

from __future__ import annotations

import re
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_venv = "yes"

PACKAGES = {
    # package -> (import name, extra pdm groups its tests need)
    "app": ("application", ["devtools"]),
    "devtools": ("devtools", ["app"]),
    "scenarios": ("scenarios", ["app", "devtools"]),
}
PDM_ENV = {"PDM_IGNORE_SAVED_PYTHON": "1", "PDM_CHECK_UPDATE": "false"}
SCENARIO_DIR = Path(__file__).parent / "packages" / "scenarios" / "src" / "scenarios"
RUNTIME_GROUPS = ("app", "devtools", "scenarios")


def discover_scenarios() -> list[str]:
    """Scenario modules: a file with a top-level ``def run(`` is all it takes to add one."""
    return sorted(
        path.stem
        for path in SCENARIO_DIR.glob("*.py")
        if not path.stem.startswith("_") and re.search(r"^def run\(", path.read_text(), re.M)
    )


def install(session: nox.Session, *groups: str) -> None:
    """Install the locked dependency groups into the session's venv (skipped by ``nox -R``)."""
    args = ["pdm", "sync", "--clean", "--no-self"]
    for group in groups:
        args += ["-G", group]
    session.run_install(*args, external=True, env=PDM_ENV)


@nox.session(python=None)
@nox.parametrize("package", [nox.param(name, id=name) for name in PACKAGES])
def tests(session: nox.Session, package: str) -> None:
    """Run one package's test suite on a throwaway PostgreSQL; ``-- ARGS`` go to pytest."""
    import_name, extra_groups = PACKAGES[package]
    install(session, "test", package, *extra_groups)
    session.run(
        "pytest",
        f"packages/{package}/tests",
        f"--cov={import_name}",
        "--cov-report=term-missing",
        *session.posargs,
    )


@nox.session(python=None)
def lint(session: nox.Session) -> None:
    """ruff (lint and format), actionlint and zizmor on the workflows."""
    install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("actionlint")
    session.run("zizmor", "--offline", ".github/workflows")


@nox.session(python=None)
def typecheck(session: nox.Session) -> None:
    """mypy over every package (strict on devtools)."""
    install(session, "typecheck", "test", "app", "devtools", "scenarios")
    session.run("mypy", "packages/devtools/src", "packages/app/src", "packages/scenarios/src")


def devtools(session: nox.Session, *args: str) -> None:
    """Run the devtools CLI of this checkout in the session's venv."""
    session.run("devtools", *args, external=False)


@nox.session(python=None)
@nox.parametrize("name", [nox.param(name, id=name) for name in discover_scenarios()])
def scenario(session: nox.Session, name: str) -> None:
    """Scenario NAME on a throwaway database; ``-- down`` stops it, ``-- list`` lists them all.

    Other words after ``--`` go to the scenario (``nox -s "scenario(bulk)" -- --count 5000``).
    """
    install(session, *RUNTIME_GROUPS)
    match session.posargs:
        case ["down"]:
            devtools(session, "scenario", "down", name)
        case ["list"]:
            devtools(session, "scenario", "list")
        case args:
            devtools(session, "scenario", "up", name, *args)


@nox.session(python=None)
def dev(session: nox.Session) -> None:
    """Flask development server (debug, reload) on the persistent development database.

    ``-- --port 5001`` picks another port; ``-- down [--volumes]`` stops the database.
    """
    install(session, *RUNTIME_GROUPS)
    devtools(session, "dev", *session.posargs)


@nox.session(python=None)
def flask(session: nox.Session) -> None:
    """The Flask CLI with the development configuration: ``nox -s flask -- db upgrade``.

    ``APPLICATION_CONFIG=testing`` (or production) selects another environment.
    """
    install(session, *RUNTIME_GROUPS)
    devtools(session, "flask", *session.posargs)


@nox.session(python=None)
def psql(session: nox.Session) -> None:
    """psql on a running database: ``-- development`` (default), ``-- production`` or a scenario."""
    install(session, *RUNTIME_GROUPS)
    devtools(session, "psql", *session.posargs)


@nox.session(python=None)
def config(session: nox.Session) -> None:
    """Effective settings of an environment and where each came from: ``-- production``."""
    install(session, "devtools")
    devtools(session, "config", *(session.posargs or ["development"]))


@nox.session(python=None)
def status(session: nox.Session) -> None:
    """Every environment this checkout has up, with ports, PIDs and age."""
    install(session, *RUNTIME_GROUPS)
    devtools(session, "status")


@nox.session(python=None)
def clean(session: nox.Session) -> None:
    """Stop and remove leftovers of interrupted runs (safe to run twice)."""
    install(session, *RUNTIME_GROUPS)
    devtools(session, "clean")


@nox.session(python=None)
def bench(session: nox.Session) -> None:
    """Speed and memory figures beside their targets and same-run baselines (``-- --runs 30``)."""
    install(session, *RUNTIME_GROUPS)
    devtools(session, "bench", *session.posargs)
