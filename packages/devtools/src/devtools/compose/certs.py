"""Extra CA certificates for image builds behind a TLS-intercepting proxy.

Debian's convention: PEM files named ``*.crt`` in ``/usr/local/share/ca-certificates``, picked
up by ``update-ca-certificates``. Builds cannot see the host's files, so they are copied into
the build context first.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

HOST_CA_DIR = Path("/usr/local/share/ca-certificates")


def host_certificates(source: Path = HOST_CA_DIR) -> list[Path]:
    """The ``*.crt`` files of ``source`` (none when the folder is absent), sorted."""
    if not source.is_dir():
        return []
    return sorted(path for path in source.rglob("*.crt") if path.is_file())


def stage_ca_certificates(dest: Path, source: Path = HOST_CA_DIR) -> list[Path]:
    """Make ``dest`` hold exactly the ``*.crt`` files of ``source``; return the copies.

    Certificates left from an earlier run that ``source`` no longer has are removed. Other
    files in ``dest`` (a README) are left alone.
    """
    dest.mkdir(parents=True, exist_ok=True)
    wanted = {_flat_name(path, source): path for path in host_certificates(source)}
    for stale in dest.glob("*.crt"):
        if stale.name not in wanted:
            stale.unlink()
    copies = []
    for name, path in sorted(wanted.items()):
        target = dest / name
        shutil.copyfile(path, target)
        target.chmod(0o644)
        copies.append(target)
    return copies


def fingerprint(source: Path = HOST_CA_DIR) -> str:
    """A hash of the names and contents of the certificates in ``source`` (for cache keys)."""
    digest = hashlib.sha256()
    for path in host_certificates(source):
        digest.update(_flat_name(path, source).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _flat_name(path: Path, source: Path) -> str:
    # Subfolders are allowed by update-ca-certificates; one flat folder is simpler to copy.
    return "_".join(path.relative_to(source).parts)
