"""The production simulation: persistent PostgreSQL, N app replicas behind nginx.

The local backend runs them as native processes (``stack``); every function takes the
checkout's root and keeps its state in ``.devtools/``.
"""

from devtools.production.stack import (
    MAX_SCALE,
    MIN_SCALE,
    down,
    log_files,
    logs,
    parse_scale,
    status,
    up,
)
from devtools.production.status import DatabaseStatus, NginxStatus, ProductionStatus, ReplicaStatus

__all__ = [
    "MAX_SCALE",
    "MIN_SCALE",
    "DatabaseStatus",
    "NginxStatus",
    "ProductionStatus",
    "ReplicaStatus",
    "down",
    "log_files",
    "logs",
    "parse_scale",
    "status",
    "up",
]
