"""Which OS user runs servers that refuse root (PostgreSQL), and how to hand files to it."""

from __future__ import annotations

import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ServerUser:
    """An unprivileged account that servers run as when devtools runs as root."""

    name: str
    uid: int
    gid: int

    def popen_kwargs(self) -> dict[str, Any]:
        """Arguments for subprocess that drop to this user (empty when it is us)."""
        if os.geteuid() == self.uid:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def chown_tree(self, path: Path) -> None:
        """Give ``path`` and everything below it to this user (no-op when it is us)."""
        if os.geteuid() == self.uid:
            return
        os.chown(path, self.uid, self.gid)
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                os.lchown(os.path.join(root, name), self.uid, self.gid)

    def can_traverse(self, path: Path) -> bool:
        """Whether this user can reach ``path`` (every ancestor searchable by it)."""
        if os.geteuid() == self.uid:
            return True
        for parent in [path, *path.parents]:
            if not parent.exists():
                continue
            info = parent.stat()
            if info.st_uid == self.uid:
                allowed = info.st_mode & stat.S_IXUSR
            elif info.st_gid == self.gid:
                allowed = info.st_mode & stat.S_IXGRP
            else:
                allowed = info.st_mode & stat.S_IXOTH
            if not allowed:
                return False
        return True


def server_user(preferred: tuple[str, ...] = ("postgres", "nobody")) -> ServerUser:
    """The user servers run as: ourselves unless we are root, else the first existing account.

    PostgreSQL refuses to run as root, and CI runs as root.
    """
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
    for name in preferred:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
    raise LookupError(f"none of the accounts {', '.join(preferred)} exists to run servers as")
