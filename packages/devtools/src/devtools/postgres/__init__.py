"""PostgreSQL as a native process: binaries, a cached initdb, and the cluster lifecycle."""

from devtools.postgres.binaries import PostgresBinaries
from devtools.postgres.cluster import (
    ClusterInfo,
    PostgresCluster,
    stop_cluster,
    sweep_stale_clusters,
)

__all__ = [
    "ClusterInfo",
    "PostgresBinaries",
    "PostgresCluster",
    "stop_cluster",
    "sweep_stale_clusters",
]
