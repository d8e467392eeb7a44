"""initdb once per PostgreSQL build and superuser; every new cluster copies the result.

initdb costs 0.5-0.9 s here while copying its output to tmpfs costs 40-70 ms. Throwaway
clusters skip even that copy: each start takes a spare copy by renaming it (made in the
background by the start before, also by an earlier run) and leaves the next spare copying.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import threading
from pathlib import Path

from devtools import commands
from devtools.postgres.binaries import PostgresBinaries
from devtools.processes import ProcessRef
from devtools.users import ServerUser


def initdb(binaries: PostgresBinaries, data_dir: Path, superuser: str, user: ServerUser) -> None:
    """Create a cluster in ``data_dir`` (which must not exist) owned by ``user``.

    Local (unix socket) connections are trusted so devtools can set the password after start;
    TCP connections need the password (scram-sha-256). ``--locale=C`` builds indexes about
    twice as fast as C.UTF-8.
    """
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    pwfile = data_dir.parent / f".pwfile-{secrets.token_hex(4)}"
    # initdb insists on a password when host auth needs one; the real one is set at each start.
    pwfile.write_text(secrets.token_urlsafe(24))
    try:
        user.chown_tree(pwfile)
        data_dir.mkdir(mode=0o700)
        user.chown_tree(data_dir)
        commands.run(
            [
                str(binaries.path("initdb")),
                "--pgdata",
                str(data_dir),
                "--username",
                superuser,
                "--pwfile",
                str(pwfile),
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--auth-local",
                "trust",
                "--auth-host",
                "scram-sha-256",
                "--no-sync",
                "--no-instructions",
                # 1 MB WAL segments instead of 16: every new cluster copies 15 MB less.
                "--wal-segsize",
                "1",
            ],
            user=user,
            cwd=data_dir.parent,
            timeout=120,
        )
    finally:
        pwfile.unlink(missing_ok=True)


def cached_initdb(
    binaries: PostgresBinaries, superuser: str, user: ServerUser, cache: Path
) -> Path:
    """The path of an initdb'd data dir for these binaries and superuser, made on first use."""
    key = f"pgdata-{binaries.version()}-{binaries.fingerprint()}-{superuser}-{user.name}-w1"
    target = cache / key
    if (target / "data" / "PG_VERSION").is_file():
        return target / "data"
    staging = cache / f"{key}.partial-{os.getpid()}-{secrets.token_hex(3)}"
    try:
        staging.mkdir(mode=0o755)
        initdb(binaries, staging / "data", superuser, user)
        # A concurrent run may have finished first; theirs is as good as ours.
        with contextlib.suppress(OSError):
            staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target / "data"


SPARE = "spare"


def copy_template(template: Path, target: Path, *, use_spare: bool) -> bool:
    """Give ``target`` (which must not exist) a fresh copy of the data dir ``template``.

    With ``use_spare``, takes the spare copy when there is one (a rename: instant). Returns
    whether it did.
    """
    if use_spare:
        try:
            (template.parent / SPARE).rename(target)
            return True
        except OSError:  # none yet, a concurrent start took it, or another filesystem
            pass
    # cp -a keeps ownership and modes, and is the fastest copy on tmpfs.
    commands.run(["cp", "-a", str(template), str(target)])
    return False


def prepare_spare(template: Path) -> threading.Thread | None:
    """Copy ``template`` to its spare in a background thread, unless a spare is there.

    The copy goes to a partial folder named after this process and is renamed when complete,
    so a start never takes half a copy; partial folders of dead processes are removed first.
    """
    home = template.parent
    for partial in home.glob(f"{SPARE}.partial-*"):
        owner = partial.name.split("-")[1:]
        ours = len(owner) == 2 and all(part.isdigit() for part in owner)
        if ours and ProcessRef(int(owner[0]), int(owner[1])).alive():
            continue
        shutil.rmtree(partial, ignore_errors=True)  # its copier is gone (or it is not ours)
    if (home / SPARE).exists() or any(home.glob(f"{SPARE}.partial-*")):
        return None  # there, or on its way
    me = ProcessRef.of(os.getpid())
    partial = home / f"{SPARE}.partial-{me.pid}-{me.start_time}"

    def copy() -> None:
        try:
            commands.run(["cp", "-a", str(template), str(partial)])
            partial.rename(home / SPARE)  # fails when a concurrent run's spare came first
        except Exception:  # a missing spare only costs the next start a copy
            shutil.rmtree(partial, ignore_errors=True)

    thread = threading.Thread(target=copy, name="devtools-spare-data-dir", daemon=True)
    thread.start()
    return thread
