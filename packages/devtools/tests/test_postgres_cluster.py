"""The throwaway/persistent PostgreSQL launcher, with real servers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg2
import pytest

from devtools import paths
from devtools.errors import ConfigError, ServiceStartError
from devtools.ports import accepts_connections
from devtools.postgres import ClusterInfo, PostgresBinaries, PostgresCluster, stop_cluster
from devtools.postgres.cluster import OWNER_FILE, sweep_stale_clusters
from devtools.processes import ProcessRef, process_start_time
from devtools.waiting import wait_until

from .conftest import distribution_postgres, process_uid, throwaway_roots


def query(info: ClusterInfo, statement: str) -> object:
    """Run one statement over TCP with the password and return the first value."""
    conn = info.connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement)
            return cursor.fetchone()[0]
    finally:
        conn.close()


@pytest.mark.usefixtures("no_leftovers")
def test_throwaway_cluster_answers_then_leaves_nothing():
    with PostgresCluster() as info:
        assert query(info, "SELECT 1") == 1
        assert query(info, "SHOW server_version").startswith("18.")
        assert query(info, "SHOW fsync") == "off"
        assert info.host == "127.0.0.1"
        assert info.root.parent == paths.scratch_root()
        pid, port, root = info.process.pid, info.port, info.root
    assert process_start_time(pid) is None
    assert not accepts_connections(port)
    assert not root.exists()


def test_server_runs_unprivileged_even_as_root():
    with PostgresCluster() as info:
        uid = process_uid(info.process.pid)
    if os.geteuid() == 0:
        assert uid != 0
    else:
        assert uid == os.geteuid()


def test_tcp_needs_the_password():
    with PostgresCluster() as info:
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            psycopg2.connect(
                host=info.host, port=info.port, user=info.user, password="wrong", dbname="postgres"
            )
        assert "@127.0.0.1:" in info.dsn()
        assert psycopg2.connect(info.dsn()).close() is None


def test_dsn_quotes_special_characters():
    with PostgresCluster(password="p@ss:w/rd?") as info:
        conn = psycopg2.connect(info.dsn("postgres"))
        conn.close()
        assert "p%40ss%3Aw%2Frd%3F" in info.dsn()


@pytest.mark.usefixtures("no_leftovers")
def test_readiness_timeout_names_the_service_and_shows_the_log():
    cluster = PostgresCluster(start_timeout=0)
    with pytest.raises(ServiceStartError) as raised:
        cluster.start()
    assert "timed out" in str(raised.value)
    assert "to answer a query" in str(raised.value)
    assert "postgres.log" in str(raised.value)


@pytest.mark.usefixtures("no_leftovers")
def test_failing_start_cleans_up_and_reports_the_log_tail():
    cluster = PostgresCluster(settings={"shared_buffers": "lots"})
    with pytest.raises(ServiceStartError) as raised:
        cluster.start()
    message = str(raised.value)
    assert "postgres exited" in message
    assert "shared_buffers" in message


def test_stop_is_idempotent_and_info_needs_start():
    cluster = PostgresCluster()
    with pytest.raises(RuntimeError, match="not started"):
        _ = cluster.info
    cluster.start()
    cluster.stop()
    cluster.stop()


def test_persistent_cluster_keeps_data_and_takes_a_new_password(project: Path):
    root = project / "pg"
    with PostgresCluster(root=root, password="first") as info:
        conn = info.connect()
        with conn.cursor() as cursor:
            cursor.execute("CREATE TABLE kept (x int)")
            cursor.execute("INSERT INTO kept VALUES (42)")
        conn.close()
        assert query(info, "SHOW fsync") == "on"
        home = info.home
    assert (home / "data" / "PG_VERSION").is_file()
    cluster = PostgresCluster(root=root, password="second")
    info = cluster.start()
    try:
        assert info.password == "second"
        assert query(info, "SELECT x FROM kept") == 42
    finally:
        cluster.stop()
    assert root.exists()
    assert home.exists()
    stop_cluster(info, remove=True)
    assert not home.exists()
    assert not root.exists()


def test_persistent_cluster_in_a_private_folder_lives_where_the_server_can_reach(project: Path):
    root = project / "pg"
    os.chmod(project, 0o700)
    cluster = PostgresCluster(root=root)
    info = cluster.start()
    try:
        if os.geteuid() == 0:
            assert info.home != root
            assert info.home.parent == Path("/var/lib/devtools")
        else:
            assert info.home == root
        assert (info.root / "postgres.log").is_file()
    finally:
        cluster.stop()
        stop_cluster(info, remove=True)


def test_detached_cluster_is_stopped_later_by_its_info():
    cluster = PostgresCluster(detached=True)
    info = cluster.start()
    try:
        restored = ClusterInfo.from_json(json.loads(json.dumps(info.to_json())))
        assert restored == info
        assert query(restored, "SELECT 2") == 2
    finally:
        stop_cluster(info)
    assert not info.process.alive()
    assert not info.root.exists()


def test_other_binaries_when_configured():
    bindir = distribution_postgres()
    major = bindir.parent.name
    binaries = PostgresBinaries.from_setting(str(bindir))
    assert binaries.version().startswith(major)
    with PostgresCluster(binaries=binaries) as info:
        assert query(info, "SHOW server_version").startswith(f"{major}.")


def test_bad_binaries_setting_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="has no initdb"):
        PostgresBinaries.from_setting(str(tmp_path))


def test_initdb_runs_once_per_version(tmp_path: Path):
    with PostgresCluster():
        pass
    caches = list(paths.cache_root().glob("pgdata-18*"))
    before = {path: path.stat().st_mtime for path in caches}
    with PostgresCluster():
        pass
    assert caches
    assert {path: path.stat().st_mtime for path in caches} == before


STARTER = textwrap.dedent(
    """
    import json, sys, time
    from devtools.postgres import PostgresCluster
    from devtools.signals import install_termination_handler
    install_termination_handler()
    with PostgresCluster() as info:
        print(json.dumps({"pid": info.process.pid, "root": str(info.root), "port": info.port}),
              flush=True)
        time.sleep(120)
    """
)


def start_owner_process() -> tuple[subprocess.Popen[str], dict[str, object]]:
    """A separate Python process that owns a throwaway cluster."""
    child = subprocess.Popen([sys.executable, "-c", STARTER], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    details = json.loads(child.stdout.readline())
    return child, details


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_to_the_owner_stops_the_server_and_removes_its_folder(sig: signal.Signals):
    child, details = start_owner_process()
    child.send_signal(sig)
    child.wait(timeout=30)
    assert not Path(str(details["root"])).exists()
    assert not accepts_connections(int(str(details["port"])))


def test_sigkilled_owner_takes_the_server_along_and_the_next_run_sweeps_its_folder():
    child, details = start_owner_process()
    root = Path(str(details["root"]))
    child.kill()
    child.wait(timeout=10)
    wait_until(lambda: not accepts_connections(int(str(details["port"]))), 10, what="server to die")
    assert root.exists()
    assert root in sweep_stale_clusters()
    assert not root.exists()


def test_sweep_leaves_detached_and_live_clusters_alone(tmp_path: Path):
    with PostgresCluster() as info:
        assert info.root not in sweep_stale_clusters()
        owner = json.loads((info.root / OWNER_FILE).read_text())
        assert owner["postmaster"]["pid"] == info.process.pid
    detached = PostgresCluster(detached=True)
    info = detached.start()
    try:
        assert info.root not in sweep_stale_clusters()
    finally:
        stop_cluster(info)
    assert info.root not in throwaway_roots()


def test_initdb_cache_is_built_once_into_a_fresh_cache(tmp_path: Path):
    from devtools.postgres.binaries import reachable_binaries
    from devtools.postgres.initdb_cache import cached_initdb
    from devtools.users import server_user

    user = server_user()
    cache = paths.cache_root() / f"test-{os.getpid()}"
    cache.mkdir()
    try:
        binaries = reachable_binaries(PostgresBinaries.embedded(), user, cache)
        first = cached_initdb(binaries, "someone", user, cache)
        assert (first / "PG_VERSION").read_text().strip() == "18"
        stamp = first.stat().st_mtime
        assert cached_initdb(binaries, "someone", user, cache) == first
        assert first.stat().st_mtime == stamp
        assert not list(cache.glob("*.partial*"))
    finally:
        import shutil

        shutil.rmtree(cache)


def test_binaries_in_a_private_folder_are_copied_where_the_server_user_runs_them(
    tmp_path: Path,
):
    """As root, a venv under /root or a 0700 temp dir is out of the server user's reach: the
    wheel's install tree and its vendored libraries are copied once into the shared cache."""
    import shutil
    import tempfile

    from devtools import commands
    from devtools.postgres.binaries import reachable_binaries
    from devtools.users import server_user

    embedded = PostgresBinaries.embedded()
    package = embedded.bindir.parent.parent
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    site = private / "site-packages"
    shutil.copytree(package / "pginstall", site / package.name / "pginstall", symlinks=True)
    for libs in package.parent.glob(f"{package.name}*.libs"):
        shutil.copytree(libs, site / libs.name, symlinks=True)
    hidden = PostgresBinaries(site / package.name / "pginstall" / "bin")
    user = server_user()
    cache = Path(tempfile.mkdtemp(prefix="devtools-binaries-test-"))
    try:
        reachable = reachable_binaries(hidden, user, cache)
        if os.geteuid() != 0:
            assert reachable == hidden  # everyone can run what they can see
            return
        assert reachable.bindir.is_relative_to(cache)
        assert user.can_traverse(reachable.path("postgres"))
        # Runs as the server user, finding its vendored libraries beside the copy.
        version = commands.run([str(reachable.path("postgres")), "--version"], user=user)
        assert embedded.version() in version
        assert reachable_binaries(hidden, user, cache) == reachable  # copied once
        assert [p.name for p in cache.iterdir()] == [reachable.bindir.parents[2].name]
    finally:
        shutil.rmtree(cache)


def test_spare_data_dir_is_taken_by_rename_and_prepared_off_the_start_path(tmp_path: Path):
    from devtools.postgres.initdb_cache import SPARE, copy_template, prepare_spare

    template = tmp_path / "key" / "data"
    (template / "base").mkdir(parents=True)
    (template / "PG_VERSION").write_text("18\n")
    (template / "base" / "1").write_bytes(b"x" * 4096)
    spare = template.parent / SPARE

    assert copy_template(template, tmp_path / "first", use_spare=True) is False  # none yet
    assert (tmp_path / "first" / "base" / "1").read_bytes() == b"x" * 4096
    thread = prepare_spare(template)
    assert thread is not None
    thread.join(30)
    assert (spare / "PG_VERSION").read_text() == "18\n"
    assert not list(template.parent.glob(f"{SPARE}.partial-*"))
    assert prepare_spare(template) is None  # one spare is enough

    inode = spare.stat().st_ino
    assert copy_template(template, tmp_path / "second", use_spare=True) is True
    assert (tmp_path / "second").stat().st_ino == inode  # a rename, not a copy
    assert not spare.exists()
    # Persistent clusters always copy, leaving a spare to the throwaway ones.
    again = prepare_spare(template)
    assert again is not None
    again.join(30)
    assert copy_template(template, tmp_path / "third", use_spare=False) is False
    assert spare.exists()


def test_spare_copies_in_progress_are_waited_for_and_dead_ones_removed(tmp_path: Path):
    from devtools.postgres.initdb_cache import SPARE, prepare_spare

    template = tmp_path / "key" / "data"
    template.mkdir(parents=True)
    (template / "PG_VERSION").write_text("18\n")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    dead = ProcessRef.of(child.pid)
    child.wait()
    stale = template.parent / f"{SPARE}.partial-{dead.pid}-{dead.start_time}"
    stale.mkdir()
    me = ProcessRef.of(os.getpid())
    running = template.parent / f"{SPARE}.partial-{me.pid}-{me.start_time}"
    running.mkdir()
    foreign = template.parent / f"{SPARE}.partial-not-ours"
    foreign.mkdir()

    assert prepare_spare(template) is None  # a live process is copying one
    assert not stale.exists()
    assert not foreign.exists()
    assert running.exists()
    running.rmdir()
    thread = prepare_spare(template)
    assert thread is not None
    thread.join(30)
    assert (template.parent / SPARE / "PG_VERSION").is_file()


def test_each_throwaway_cluster_leaves_a_spare_for_the_next(tmp_path: Path):
    from devtools.postgres.initdb_cache import SPARE

    with PostgresCluster() as info:
        pattern = f"pgdata-{info.version}-*-{info.user}-*/{SPARE}"
        wait_until(
            lambda: any(paths.fast_cache_root().glob(pattern)), 30, what="the spare data dir"
        )
        assert (info.home / "data" / "PG_VERSION").is_file()
