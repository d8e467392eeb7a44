"""A small closed-loop HTTP load generator for the bench (stdlib only).

Several processes, each with keep-alive connections in threads, hammer one URL path for a fixed
time; the result is requests per second, latency percentiles, errors and the ``X-Replica`` of
every answer. Only ever pointed at 127.0.0.1.
"""

from __future__ import annotations

import http.client
import multiprocessing
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    """What one load run measured."""

    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    replicas: Counter[str] = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        """Successful (2xx) responses."""
        return len(self.latencies)

    @property
    def rate(self) -> float:
        """Successful requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        """A latency percentile in seconds (0 when nothing was measured)."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    def merge(self, other: LoadResult) -> None:
        """Add another worker's counts to this one."""
        self.latencies += other.latencies
        self.errors += other.errors
        self.replicas.update(other.replicas)

    def summary(self) -> str:
        """One line: rate, p50/p99, errors."""
        p50 = statistics.median(self.latencies) * 1000 if self.latencies else 0.0
        return (
            f"{self.rate:,.0f} requests/s, p50 {p50:.1f} ms, "
            f"p99 {self.percentile(0.99) * 1000:.1f} ms, {self.errors} errors"
        )


def _connection_loop(
    port: int, path: str, deadline: float, result: LoadResult, lock: threading.Lock
) -> None:
    local = LoadResult(0.0)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            local.errors += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            continue
        if 200 <= response.status < 300:
            local.latencies.append(time.perf_counter() - start)
            local.replicas[response.getheader("X-Replica", "?")] += 1
        else:
            local.errors += 1
        if response.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.close()
    with lock:
        result.merge(local)


def _process(port: int, path: str, seconds: float, connections: int) -> LoadResult:
    result = LoadResult(seconds)
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    threads = [
        threading.Thread(target=_connection_loop, args=(port, path, deadline, result, lock))
        for _ in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return result


def run_load(
    port: int, path: str, *, seconds: float = 5.0, processes: int = 2, connections: int = 4
) -> LoadResult:
    """Load ``http://127.0.0.1:port/path`` for ``seconds`` and return what was measured."""
    total = LoadResult(seconds)
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        parts = pool.starmap(_process, [(port, path, seconds, connections)] * processes)
    for part in parts:
        total.merge(part)
    return total
