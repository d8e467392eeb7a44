"""Benchmarks behind ``nox -s bench``: each figure printed beside its target and a baseline.

Nothing here asserts a time: the machine is shared and noisy, so figures are printed for humans
and the closing notes, as medians over repeated runs.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from psycopg2 import sql

from devtools import application, commands, paths
from devtools.backends import Backend, get_backend
from devtools.compose import naming
from devtools.compose.engine import require_docker
from devtools.compose.images import images_file
from devtools.config import load_settings
from devtools.http import get_status
from devtools.loadgen import run_load
from devtools.ports import free_port
from devtools.postgres import ClusterInfo, PostgresBinaries, PostgresCluster
from devtools.postgres.binaries import reachable_binaries
from devtools.postgres.initdb_cache import initdb
from devtools.users import server_user
from devtools.waiting import wait_until


@dataclass(frozen=True)
class Figure:
    """One printed line: a measured value beside its target and its baseline."""

    name: str
    value: str
    target: str
    baseline: str

    def line(self) -> str:
        """Human-readable form."""
        return (
            f"{self.name:<44} {self.value:>14}   target {self.target:<12} baseline {self.baseline}"
        )


def timed(action: Callable[[], object]) -> float:
    """Seconds one call takes."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def median_ms(samples: list[float]) -> str:
    """``12.3 ms`` from seconds."""
    return f"{statistics.median(samples) * 1000:.1f} ms"


def cluster_start(runs: int, baseline_runs: int) -> Figure:
    """New throwaway cluster to first query, beside initdb-each-time."""
    with PostgresCluster():  # warm the initdb cache and the binaries copy
        pass
    samples = []
    for _ in range(runs):
        cluster = PostgresCluster()
        samples.append(timed(cluster.start))
        cluster.stop()
    baseline = [_initdb_then_start() for _ in range(baseline_runs)]
    return Figure(
        "throwaway cluster to first query (median)",
        median_ms(samples),
        "<= 100 ms",
        f"initdb each time: {median_ms(baseline)}",
    )


def _initdb_then_start() -> float:
    """What a launcher without the cache pays: initdb into a fresh folder, then start."""
    user = server_user()
    binaries = reachable_binaries(PostgresBinaries.embedded(), user, paths.cache_root())
    root = paths.scratch_root() / f"devtools-bench-{time.monotonic_ns()}"
    try:
        start = time.perf_counter()
        root.mkdir(mode=0o755)
        initdb(binaries, root / "data", "postgres", user)
        cluster = PostgresCluster(binaries=binaries, root=root, detached=False)
        cluster.start()
        elapsed = time.perf_counter() - start
        cluster.stop()
        return elapsed
    finally:
        from devtools.paths import server_home

        shutil.rmtree(server_home(root, user), ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


def isolation(info: ClusterInfo, runs: int, baseline_runs: int) -> Figure:
    """Per-test isolation as the app's fixtures do it (a transaction rolled back on an open
    connection, a savepoint for code that commits) beside a fresh database per test."""
    admin = info.connect()
    with admin.cursor() as cursor:
        cursor.execute("CREATE DATABASE bench_template")
    template = info.connect("bench_template")
    with template.cursor() as cursor:
        cursor.execute("CREATE TABLE users (id serial PRIMARY KEY, email text UNIQUE NOT NULL)")
    template.close()
    conn = info.connect("bench_template", autocommit=False)

    def transaction() -> None:
        with conn.cursor() as cursor:
            cursor.execute("SAVEPOINT test")
            cursor.execute("INSERT INTO users (email) VALUES ('a@b.c')")
            cursor.execute("RELEASE SAVEPOINT test")
        conn.rollback()

    samples = [timed(transaction) for _ in range(runs)]
    conn.close()

    def fresh_database() -> None:
        with admin.cursor() as cursor:
            cursor.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE bench_template").format(
                    sql.Identifier("bench_copy")
                )
            )
        info.connect("bench_copy").close()
        with admin.cursor() as cursor:
            cursor.execute("DROP DATABASE bench_copy")

    baseline = [timed(fresh_database) for _ in range(baseline_runs)]
    admin.close()
    return Figure(
        "per-test isolation cost (median)",
        median_ms(samples),
        "<= 5 ms",
        f"fresh database per test: {median_ms(baseline)}",
    )


def _family(root: int) -> Iterator[int]:
    """``root`` and its children (PostgreSQL puts each child in its own session)."""
    yield root
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == root:  # field 4: parent pid
            yield int(proc.name)


def _memory_kib(pid: int, field: str) -> int:
    """``Pss`` or ``Rss`` of one process from smaps_rollup, in KiB."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cluster_memory(info: ClusterInfo) -> Figure:
    """Memory of a test cluster after some work: proportional set size summed over its
    processes (RSS would count shared buffers once per process)."""
    conn = info.connect()
    with conn.cursor() as cursor:
        cursor.execute("CREATE TABLE mem (id int PRIMARY KEY, v text)")
        cursor.execute("INSERT INTO mem SELECT g, md5(g::text) FROM generate_series(1, 50000) g")
        cursor.execute("SELECT count(*) FROM mem")
    pids = list(_family(info.process.pid))
    pss = sum(_memory_kib(pid, "Pss") for pid in pids)
    rss = sum(_memory_kib(pid, "Rss") for pid in pids)
    conn.close()
    return Figure(
        "test cluster memory (PSS, all processes)",
        f"{pss / 1024:.1f} MB",
        "<= 100 MB",
        f"RSS summed over {len(pids)} processes: {rss / 1024:.1f} MB (counts shared pages twice)",
    )


def foundation_figures(runs: int = 15) -> list[Figure]:
    """The three figures of the foundation issue."""
    figures = [cluster_start(runs, max(3, runs // 3))]
    with PostgresCluster() as info:
        figures.append(isolation(info, runs * 20, runs))
        figures.append(cluster_memory(info))
    return figures


def _scripts_dir() -> Path:
    return Path(sys.executable).parent


def _migrated_database(info: ClusterInfo, name: str, environ: dict[str, str]) -> str:
    """Create and migrate database ``name``; return its URL."""
    admin = info.connect()
    with admin.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    admin.close()
    env = {
        **environ,
        "FLASK_CONFIG": "testing",
        "POSTGRES_USER": info.user,
        "POSTGRES_PASSWORD": info.password,
        "POSTGRES_HOSTNAME": info.host,
        "POSTGRES_PORT": str(info.port),
        "APPLICATION_DB": name,
    }
    application.migrate(env)
    return info.dsn(name)


def bulk_load(count: int, per_row_count: int, environ: dict[str, str]) -> Figure:
    """The ``bulk`` scenario (whole ``scenario-run`` process) beside one create() per row."""
    with PostgresCluster() as info:
        bulk_url = _migrated_database(info, "bench_bulk", environ)
        per_row_url = _migrated_database(info, "bench_per_row", environ)
        seconds = timed(
            lambda: commands.run(
                [
                    str(_scripts_dir() / "scenario-run"),
                    "bulk",
                    "--database-url",
                    bulk_url,
                    "--count",
                    str(count),
                ],
                timeout=600,
            )
        )
        rate = float(
            commands.run(
                [
                    sys.executable,
                    "-m",
                    "scenarios._per_row",
                    "--database-url",
                    per_row_url,
                    "--count",
                    str(per_row_count),
                ],
                timeout=600,
            ).split()[-1]
        )
    return Figure(
        f"bulk scenario, {count:,} users (whole process)",
        f"{seconds:.2f} s",
        "<= 3 s" if count == 1_000_000 else "-",
        f"one create() per row: {rate:,.0f} rows/s, so {count / rate:,.0f} s",
    )


def _scratch_checkout(project_root: Path, folder: Path) -> Path:
    """A checkout the local backend can run in: the config and nginx template of
    ``project_root``, and its own (empty) state folder, so no real environment is touched."""
    shutil.copytree(project_root / "config", folder / "config")
    shutil.copytree(project_root / "docker" / "nginx", folder / "docker" / "nginx")
    (folder / "noxfile.py").write_text("")
    return folder


def _throughput(port: int, path: str, seconds: float) -> float:
    return run_load(port, path, seconds=seconds).rate


def production_figures(
    project_root: Path, environ: dict[str, str], seconds: float = 4.0, rounds: int = 3
) -> list[Figure]:
    """``prod`` up to first 200, nginx/direct throughput and the 1 -> 2 replica gain.

    Runs on a copy of the checkout's config in a temp folder, on a free port, with one gunicorn
    worker per replica (so a replica is one process and two replicas can use both cores).
    """
    from devtools import production

    scratch = Path(tempfile.mkdtemp(prefix="devtools-bench-"))
    try:
        _scratch_checkout(project_root, scratch)
        env = {**environ, "APPLICATION_PORT": str(free_port()), "GUNICORN_WORKERS": "1"}
        settings = load_settings(scratch, "production", env)
        port = settings.require("APPLICATION_PORT")
        try:
            start = time.perf_counter()
            status = production.up(scratch, settings, scale=1, environ=env)
            wait_until(lambda: get_status("127.0.0.1", port, "/") == 200, 30, what="nginx 200")
            fresh = time.perf_counter() - start
            production.down(scratch)
            start = time.perf_counter()
            status = production.up(scratch, settings, scale=1, environ=env)
            wait_until(lambda: get_status("127.0.0.1", port, "/") == 200, 30, what="nginx 200")
            kept = time.perf_counter() - start
            path = _create_user(port)
            direct_port = status.replicas[0].port
            direct, proxied = [], []
            for _ in range(rounds):
                direct.append(_throughput(direct_port, path, seconds))
                proxied.append(_throughput(port, path, seconds))
            production.up(scratch, settings, scale=2, environ=env)
            two = [_throughput(port, path, seconds) for _ in range(rounds)]
        finally:
            production.down(scratch, volumes=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    one = statistics.median(proxied)
    return [
        Figure(
            "prod up to first 200 (local, fresh data)",
            f"{fresh:.2f} s",
            "<= 3 s",
            f"data kept: {kept:.2f} s",
        ),
        Figure(
            "throughput via nginx / direct",
            f"{one / statistics.median(direct):.2f}",
            ">= 0.9",
            f"direct {statistics.median(direct):,.0f} req/s, nginx {one:,.0f} req/s",
        ),
        Figure(
            "1 -> 2 replicas (through nginx)",
            f"{statistics.median(two) / one:.2f}x",
            ">= 1.5x",
            f"{one:,.0f} -> {statistics.median(two):,.0f} req/s",
        ),
    ]


def _create_user(port: int) -> str:
    """POST one user through nginx; return the primary-key lookup path."""
    import http.client
    import json

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = json.dumps({"email": f"bench-{time.time_ns()}@example.com"})
    conn.request("POST", "/users", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    user = json.loads(response.read())
    conn.close()
    return f"/users/{user['id']}"


# --- compose beside local ---------------------------------------------------------------

# The environments whose app image the compose backend builds (one tag each).
APP_ENVIRONMENTS = ("scenario", "production")


def _quiet(line: str) -> None:
    """Backends print connection lines and progress; the bench prints figures only."""


def _seconds(value: float) -> str:
    """``1.84 s``, or ``0.071 s`` below a second (local figures are that small)."""
    return f"{value:.3f} s" if value < 1 else f"{value:.2f} s"


def _to_first_query(backend: Backend) -> float:
    """Seconds from asking for a throwaway test database until it yields (a query answered);
    its teardown is not timed."""
    start = time.perf_counter()
    with backend.test_database():
        return time.perf_counter() - start


def _scenario_up(backend: Backend, name: str) -> float:
    """Seconds ``scenario_up`` takes (it returns once the app answers); then down, untimed."""
    try:
        return timed(lambda: backend.scenario_up(name, [], _quiet))
    finally:
        backend.scenario_down(name, _quiet)


def _prod_up(backend: Backend, port: int) -> float:
    """Seconds from ``prod_up(1)`` on fresh data to ``/`` answering 200 through nginx; then
    down with its data, untimed, so that the next run starts fresh too."""
    try:
        start = time.perf_counter()
        backend.prod_up(1, _quiet)
        wait_until(
            lambda: get_status("127.0.0.1", port, "/") == 200,
            30,
            what=f"nginx on 127.0.0.1:{port} to answer / with 200",
        )
        return time.perf_counter() - start
    finally:
        backend.prod_down(True, _quiet)


def _remove_app_images(docker: str, state_dir: Path, environ: dict[str, str]) -> None:
    """Untag the app images built for ``state_dir``'s projects (the build cache keeps their
    layers, so the developer's own builds stay quick)."""
    filters = [f"--filter=reference={naming.app_image(state_dir, e)}" for e in APP_ENVIRONMENTS]
    listing = [docker, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", *filters]
    tags = commands.run(listing, env=environ).split()
    if tags:
        commands.run([docker, "image", "rm", *tags], env=environ)


def _beside_local(name: str, compose: list[float], local: list[float]) -> Figure:
    """A compose median with the local median as its baseline (there is no compose target)."""
    runs = f"median of {len(compose)} runs each" if len(compose) > 1 else "1 run each"
    return Figure(
        name,
        _seconds(statistics.median(compose)),
        "-",
        f"local: {_seconds(statistics.median(local))} ({runs})",
    )


def compose_figures(project_root: Path, environ: dict[str, str], runs: int = 3) -> list[Figure]:
    """The compose backend's start-up times beside the local backend's, measured in one run.

    A throwaway test database to its first query (``runs`` times); ``scenario up users`` until
    it returns, ready; ``prod up`` with one replica on fresh data until ``/`` answers 200
    through nginx (these two ``max(1, runs // 3)`` times, each followed by an untimed down).
    The backends take turns, so both see the same machine. Compose runs on this checkout with
    a scratch state folder (other project names, other app image tags), local on a scratch
    copy of the config: none of the developer's environments is touched, and everything
    started (app image tags included) is removed again, also on errors and Ctrl-C. The compose
    images are the checkout's choice (``.devtools/compose/images.json``), else the upstream
    ones unless ``environ`` names others (``POSTGRES_IMAGE``... ``PULL_POLICY``).

    Args:
        project_root: the checkout.
        environ: the environment (Docker's variables, image overrides, app settings).
        runs: repetitions of the quick figure; the slow ones get a third as many.

    Raises:
        DockerUnavailable: Docker cannot be used (nothing was started).
    """
    docker = require_docker(environ)
    slow_runs = max(1, runs // 3)
    scratch = Path(tempfile.mkdtemp(prefix="devtools-bench-"))
    try:
        state_dir = scratch / "state"
        chosen = images_file(project_root / paths.STATE_DIR_NAME)
        if chosen.is_file():
            # The images of the developer's own compose environments (offline or upstream).
            images_file(state_dir).parent.mkdir(parents=True)
            shutil.copy(chosen, images_file(state_dir))
        local_root = _scratch_checkout(project_root, scratch / "local")
        compose_port, local_port = free_port(), free_port()
        compose_env = {**environ, "APPLICATION_PORT": str(compose_port)}
        compose = get_backend("compose", project_root, compose_env, state_dir=state_dir)
        local = get_backend("local", local_root, {**environ, "APPLICATION_PORT": str(local_port)})
        databases: tuple[list[float], list[float]] = ([], [])
        scenarios: tuple[list[float], list[float]] = ([], [])
        productions: tuple[list[float], list[float]] = ([], [])
        try:
            for _ in range(runs):
                databases[0].append(_to_first_query(compose))
                databases[1].append(_to_first_query(local))
            for _ in range(slow_runs):
                scenarios[0].append(_scenario_up(compose, "users"))
                scenarios[1].append(_scenario_up(local, "users"))
            for _ in range(slow_runs):
                productions[0].append(_prod_up(compose, compose_port))
                productions[1].append(_prod_up(local, local_port))
        finally:
            _remove_app_images(docker, state_dir, environ)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return [
        _beside_local("compose test database to first query", *databases),
        _beside_local("compose scenario up (users) to ready", *scenarios),
        _beside_local("compose prod up to first 200 (fresh data)", *productions),
    ]
