"""Which base images the compose files use: the upstream tags, or the offline stand-ins.

``prepare_images(root, offline=True)`` builds the stand-ins (``devtools.compose.offline``) and
records them in ``.devtools/compose/images.json`` with ``PULL_POLICY=never``; the compose backend
passes that mapping to every compose command. Without the file the compose files' upstream
tags are used and pulled when missing. From a shell:

    python -m devtools.compose.images --offline    # or --online
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from devtools import paths
from devtools.errors import ConfigError, DevtoolsError

IMAGE_VARIABLES = ("POSTGRES_IMAGE", "NGINX_IMAGE", "PYTHON_IMAGE")
ALLOWED = (*IMAGE_VARIABLES, "PULL_POLICY")
OFFLINE_COMMAND = "python -m devtools.compose.images --offline"

Echo = Callable[[str], None]


class ImageMissing(DevtoolsError):
    """An image the offline mode needs is not on this Docker engine (it is never pulled)."""


def images_file(state_dir: Path) -> Path:
    """Where the image mapping of a checkout is kept."""
    return state_dir / "compose" / "images.json"


def prepare_images(
    project_root: Path,
    offline: bool,
    echo: Echo = print,
    *,
    state_dir: Path | None = None,
) -> dict[str, str]:
    """Choose the images of the compose backend and return the compose variables chosen.

    Args:
        project_root: the checkout (its ``docker/offline`` recipes are used offline).
        offline: build the stand-ins and never pull (True), or use the upstream images (False).
        echo: progress lines.
        state_dir: the state folder (default: the checkout's ``.devtools``).

    Raises:
        OfflineImageError: a stand-in could not be built (not root, no debootstrap...).
        CommandError: a docker or debootstrap command failed.
    """
    from devtools.compose.offline import Builder, build_offline_images, default_sources

    path = images_file(state_dir or paths.state_dir(project_root))
    if not offline:
        path.unlink(missing_ok=True)
        echo("compose uses the upstream images (pulled when missing)")
        return {}
    images = build_offline_images(default_sources(project_root), builder=Builder(progress=echo))
    mapping = {**images, "PULL_POLICY": "never"}
    _write_json(path, mapping)
    echo(f"compose uses the offline images ({', '.join(images.values())}); see {path}")
    return mapping


def image_variables(state_dir: Path) -> dict[str, str]:
    """The recorded mapping (empty when compose uses the upstream images).

    Raises:
        ConfigError: the file is not a mapping of the known variables to strings.
    """
    path = images_file(state_dir)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as error:
        raise ConfigError(f"{path}: not valid JSON ({error}); run {OFFLINE_COMMAND}") from None
    if not isinstance(data, dict) or not all(
        key in ALLOWED and isinstance(value, str) and value for key, value in data.items()
    ):
        raise ConfigError(
            f"{path}: expected a mapping of {', '.join(ALLOWED)} to image tags; "
            f"run {OFFLINE_COMMAND} (or delete the file to use the upstream images)"
        )
    return dict(data)


def require_images(
    variables: Mapping[str, str], needed: Iterable[str], exists: Callable[[str], bool]
) -> None:
    """Fail fast when an image that will never be pulled is missing.

    Args:
        variables: the compose variables (images and ``PULL_POLICY``).
        needed: which image variables the command uses.
        exists: whether the engine has an image tag.

    Raises:
        ImageMissing: one line naming the images and how to build them.
    """
    if variables.get("PULL_POLICY") != "never":
        return
    missing = [
        variables[name] for name in needed if name in variables and not exists(variables[name])
    ]
    if missing:
        raise ImageMissing(
            f"the offline image{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"{'are' if len(missing) > 1 else 'is'} not on this Docker engine and offline mode "
            f"never pulls: build {'them' if len(missing) > 1 else 'it'} with {OFFLINE_COMMAND}"
        )


def _write_json(path: Path, data: Mapping[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as stream:
            json.dump(dict(data), stream, indent=2, sort_keys=True)
            stream.write("\n")
        os.chmod(staging, 0o644)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    """Select the offline stand-ins (building them) or the upstream images."""
    parser = argparse.ArgumentParser(
        prog="python -m devtools.compose.images",
        description="Choose the base images of the compose backend.",
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--offline", action="store_true", help="build and use the stand-ins")
    mode.add_argument("--online", action="store_true", help="use the upstream images")
    parser.add_argument("--project-root", type=Path, help="the checkout (default: found from .)")
    args = parser.parse_args(argv)
    try:
        root = args.project_root or paths.find_project_root()
        prepare_images(root, offline=args.offline)
    except (DevtoolsError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
