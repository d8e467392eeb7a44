"""Benchmarks behind ``nox -s bench``: each figure printed beside its target and a baseline.

Nothing here asserts a time: the machine is shared and noisy, so figures are printed for humans
and the closing notes, as medians over repeated runs.
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from psycopg2 import sql

from devtools import paths
from devtools.postgres import ClusterInfo, PostgresBinaries, PostgresCluster
from devtools.postgres.binaries import reachable_binaries
from devtools.postgres.initdb_cache import initdb
from devtools.users import server_user


@dataclass(frozen=True)
class Figure:
    """One printed line: a measured value beside its target and its baseline."""

    name: str
    value: str
    target: str
    baseline: str

    def line(self) -> str:
        """Human-readable form."""
        return f"{self.name:<44} {self.value:>14}   target {self.target:<12} baseline {self.baseline}"


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
