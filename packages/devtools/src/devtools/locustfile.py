"""The load ``nox -s loadtest`` drives through nginx: primary-key lookups and health checks.

Run by locust in its own process; it also counts the ``X-Replica`` of every answer and writes
the counts to the JSON file named by DEVTOOLS_REPLICA_COUNTS when locust quits.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from collections import Counter
from typing import Any

from locust import HttpUser, constant, events, task

REPLICAS: Counter[str] = Counter()


@events.request.add_listener
def _count_replica(response: Any = None, exception: Any = None, **_: Any) -> None:
    if exception is None and response is not None:
        REPLICAS[response.headers.get("X-Replica", "?")] += 1


@events.quitting.add_listener
def _write_counts(**_: Any) -> None:
    path = os.environ.get("DEVTOOLS_REPLICA_COUNTS")
    if path:
        with open(path, "w") as out:
            json.dump(dict(REPLICAS), out)


class AppUser(HttpUser):
    """A client that keeps reading users by id, now and then checking /health."""

    wait_time = constant(0)

    def on_start(self) -> None:
        """Find some user ids to read (create one when the database is empty)."""
        items = self.client.get("/users?per_page=50", name="/users").json().get("items", [])
        if not items:
            created = self.client.post(
                "/users", json={"email": f"load-{uuid.uuid4().hex[:10]}@example.com"}
            )
            items = [created.json()]
        self.ids = [item["id"] for item in items]

    @task(5)
    def read_user(self) -> None:
        """GET /users/<id>: a primary-key lookup."""
        self.client.get(f"/users/{random.choice(self.ids)}", name="/users/[id]")  # noqa: S311

    @task(1)
    def health(self) -> None:
        """GET /health: one query."""
        self.client.get("/health")
