"""litegate as a Ray Serve deployment: N replicas of the whole app behind one endpoint
(``pip install -e '.[ray]'``).

    litegate serve-ray --replicas 2 --port 8000          # a local Ray, started for it
    RAY_ADDRESS=ray://head:10001 litegate serve-ray ...   # an existing cluster

Each replica is one litegate app with its own models (loaded once, in the replica); Ray's
proxy spreads requests over them. Replicas that share a ledger and batch jobs should share a
database: set ``LITEGATE_LEDGER_URL`` to a PostgreSQL URL on every node (SQLite works on one
machine). Batch jobs are leased to one replica at a time (``litegate.jobs.batches``), so a job is
never run twice; if its replica dies, another takes it over when the lease runs out.
"""

from __future__ import annotations

import os
from typing import Any

from litegate.config import Settings
from litegate.runtime import build
from litegate.server.app import create_app

try:
    from ray import serve
except ImportError as e:  # the module is only imported for Ray Serve
    raise ImportError("Ray Serve is not installed: pip install -e '.[ray]'") from e


@serve.ingress()
class Litegate:
    """One replica: a Runtime built in the replica's process, served by the same app as
    ``litegate serve``."""

    def __init__(self, model: str = "lite", settings: dict[str, Any] | None = None):

        self.runtime = build(Settings(**(settings or {})), None, model=model)

    def __serve_build_asgi_app__(self) -> Any:

        return create_app(self.runtime)

    def pid(self) -> int:
        return os.getpid()


def deployment(replicas: int = 2, model: str = "lite", settings: dict[str, Any] | None = None,
               cpus_per_replica: float = 1.0) -> Any:
    """The bound application for ``serve.run``."""
    # Ray annotates deployment() as always returning a decorator; given the class it returns the Deployment
    return serve.deployment(Litegate, name="litegate", num_replicas=replicas,  # type: ignore[attr-defined]
                            ray_actor_options={"num_cpus": cpus_per_replica}).bind(model, settings or {})


# ``serve run litegate.deploy.ray_serve:app`` (replicas from LITEGATE_REPLICAS, default 2)
app = deployment(int(os.environ.get("LITEGATE_REPLICAS", "2")), os.environ.get("LITEGATE_MODEL", "lite"))
