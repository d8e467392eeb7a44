"""Every developer command of this repository. Sessions stay thin; the logic lives in devtools.

Run ``nox -l`` for the list. Sessions use the Python running nox unless ``--force-python`` says
otherwise; each installs exactly what ``pdm.lock`` pins for its groups.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_venv = "yes"

PACKAGES = {
    # package -> (import name, extra pdm groups its tests need)
    "app": ("application", ["devtools", "scenarios"]),
    "devtools": ("devtools", ["app", "scenarios", "load"]),
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


def split_backend(args: list[str]) -> tuple[list[str], list[str]]:
    """Take ``--backend NAME`` (or ``--backend=NAME``) out of a session's arguments.

    Returns the devtools global options and the remaining arguments.
    """
    rest: list[str] = []
    options: list[str] = []
    words = iter(args)
    for word in words:
        if word == "--backend":
            options += ["--backend", next(words, "")]
        elif word.startswith("--backend="):
            options.append(word)
        else:
            rest.append(word)
    return options, rest


def split_leading_backend(args: list[str]) -> tuple[list[str], list[str]]:
    """``--backend NAME`` only in front, so the arguments passed through stay untouched."""
    if args[:1] == ["--backend"]:
        return args[:2], args[2:]
    if args and args[0].startswith("--backend="):
        return args[:1], args[1:]
    return [], args


def install(session: nox.Session, *groups: str) -> None:
    """Install the locked dependency groups into the session's venv (skipped by ``nox -R``)."""
    args = ["pdm", "sync", "--clean", "--no-self"]
    for group in groups:
        args += ["-G", group]
    session.run_install(*args, external=True, env=PDM_ENV)


@nox.session(python=None)
@nox.parametrize("package", [nox.param(name, id=name) for name in PACKAGES])
def tests(session: nox.Session, package: str) -> None:
    """Run one package's test suite on a throwaway PostgreSQL; ``-- ARGS`` go to pytest.

    ``-- --backend compose`` (or DEVTOOLS_BACKEND=compose) puts that PostgreSQL in Docker.
    """
    import_name, extra_groups = PACKAGES[package]
    install(session, "test", package, *extra_groups)
    backend, args = split_backend(list(session.posargs))
    pytest = ["pytest", f"packages/{package}/tests", f"--cov={import_name}", *args]
    if args:
        # A chosen subset (-k, -x, a path...) still reports coverage; the 90% floor is checked
        # on whole runs, else `nox -s tests -- -k users` would fail with every test passing.
        pytest.append("--cov-fail-under=0")
    # Subprocesses (CLI commands, servers) write coverage data here whatever their cwd.
    env = {"COVERAGE_DATA_DIR": str(Path(__file__).parent)}
    if backend or os.environ.get("DEVTOOLS_BACKEND", "") == "compose":
        session.run("devtools", *backend, "with-test-database", *pytest, env=env)
    else:
        session.run(*pytest, env=env)


@nox.session(python=None)
def lint(session: nox.Session) -> None:
    """ruff (lint and format), actionlint and zizmor on the workflows."""
    install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("actionlint")
    session.run("zizmor", "--offline", ".github/workflows")
    session.run("hadolint", *sorted(str(path) for path in Path("docker").rglob("Dockerfile")))
    session.run("shellcheck", *sorted(str(path) for path in Path("docker").rglob("*.sh")))


@nox.session(python=None)
def typecheck(session: nox.Session) -> None:
    """mypy over every package (strict on devtools)."""
    install(session, "typecheck", "test", "load", "app", "devtools", "scenarios")
    session.run("mypy", "packages/devtools/src", "packages/app/src", "packages/scenarios/src")


def devtools(session: nox.Session, *args: str) -> None:
    """Run the devtools CLI of this checkout in the session's venv (``--backend`` honoured)."""
    backend, rest = split_backend(list(args))
    session.run("devtools", *backend, *rest)


@nox.session(python=None)
@nox.parametrize("name", [nox.param(name, id=name) for name in discover_scenarios()])
def scenario(session: nox.Session, name: str) -> None:
    """Scenario NAME on a throwaway database; ``-- down`` stops it, ``-- list`` lists them all.

    Other words after ``--`` go to the scenario (``nox -s "scenario(bulk)" -- --count 5000``).
    """
    install(session, *RUNTIME_GROUPS)
    backend, args = split_backend(list(session.posargs))
    match args:
        case ["down"]:
            devtools(session, *backend, "scenario", "down", name)
        case ["list"]:
            devtools(session, *backend, "scenario", "list")
        case _:
            devtools(session, *backend, "scenario", "up", name, *args)


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

    ``APPLICATION_CONFIG=testing`` (or production) selects another environment; a leading
    ``--backend compose`` (or DEVTOOLS_BACKEND=compose) uses the Docker databases.
    """
    install(session, *RUNTIME_GROUPS)
    backend, args = split_leading_backend(list(session.posargs))
    session.run("devtools", *backend, "flask", *args)


@nox.session(python=None)
def compose(session: nox.Session) -> None:
    """Docker Compose on an environment's project: ``nox -s compose -- ps``.

    ``APPLICATION_CONFIG=production`` (or ``scenario:NAME``) picks the environment.
    """
    install(session, *RUNTIME_GROUPS)
    session.run("devtools", "compose", *session.posargs)


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
    """Speed and memory figures beside their targets and same-run baselines (``-- --runs 30``);
    ``-- --only compose`` adds the Docker Compose figures beside the local ones."""
    install(session, *RUNTIME_GROUPS)
    devtools(session, "bench", *session.posargs)


@nox.session(python=None)
def prod(session: nox.Session) -> None:
    """Production simulation: ``-- --scale 3`` (again to rescale live), ``-- status``,
    ``-- logs [service]``, ``-- down [--volumes]``; ``-- --backend compose`` for Docker."""
    install(session, *RUNTIME_GROUPS)
    backend, args = split_backend(list(session.posargs))
    if args and args[0] in ("up", "status", "logs", "down"):
        devtools(session, *backend, "prod", *args)
    else:
        devtools(session, *backend, "prod", "up", *args)


@nox.session(python=None)
def loadtest(session: nox.Session) -> None:
    """Drive the running production stack with locust (headless) and print its figures.

    ``-- --users 20 --seconds 15`` override the defaults.
    """
    install(session, *RUNTIME_GROUPS, "load")
    devtools(session, "loadtest", *session.posargs)


@nox.session(python=None)
def images(session: nox.Session) -> None:
    """Images for the compose backend; ``-- --offline`` builds stand-ins from Debian packages."""
    install(session, *RUNTIME_GROUPS)
    devtools(session, "images", *session.posargs)


@nox.session(python=None)
def docker(session: nox.Session) -> None:
    """The compose backend against a real Docker engine (needs dockerd running)."""
    install(session, "test", *RUNTIME_GROUPS)
    session.run(
        "pytest", "packages/devtools/tests_docker", "-p", "no:cacheprovider", *session.posargs
    )
