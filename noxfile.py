"""Every developer command of this repository. Sessions stay thin; the logic lives in devtools.

Run ``nox -l`` for the list. Sessions use the Python running nox unless ``--force-python`` says
otherwise; each installs exactly what ``pdm.lock`` pins for its groups.
"""

from __future__ import annotations

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


def install(session: nox.Session, *groups: str) -> None:
    """Install the locked dependency groups into the session's venv (skipped by ``nox -R``)."""
    args = ["pdm", "sync", "--clean", "--no-self"]
    for group in groups:
        args += ["-G", group]
    session.run_install(*args, external=True, env=PDM_ENV)


@nox.session(python=None)
@nox.parametrize("package", list(PACKAGES))
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
