"""``litegate batch run --executor ray``: the lines of a batch answered by actors on a Ray
cluster (``pip install -e '.[ray]'``).

Each actor builds a litegate app once (its models load once, on its node) and answers blocks
of lines with the same in-process dispatch as a server's batch jobs. Blocks are handed out as
actors free up; each block's answers are written to OUT as it returns (the checkpoint a
rerun resumes from), and OUT is put in input order at the end.

With no ``--address`` (and no ``RAY_ADDRESS``) a local Ray is started for the run and stopped
after it. On a cluster, every node needs litegate installed the same way (its models are
joined there from the same packages) and a ``$LITEGATE_HOME`` holding the classifiers and
extractors the lines name.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from litegate.config import Settings
from litegate.errors import InvalidRequest
from litegate.jobs.batches import Line
from litegate.runtime import build


class LineActor:
    """One worker: a litegate app in the actor's process."""

    def __init__(self, settings: dict[str, Any], model: str, owner: dict[str, Any]):
        from litegate.deploy.batch_files import LineApp, Owner

        self.runtime = build(Settings(**settings), None, model=model)
        self.app = LineApp(self.runtime, Owner(**owner))

    def answer(self, lines: list[Line], concurrency: int) -> list[dict[str, Any]]:
        results = self.app.answer_block(lines, concurrency)
        if self.runtime.accountant is not None:
            self.runtime.accountant.flush()
        return results

    def spent(self) -> float:
        return self.runtime.accountant.metrics.total_cost_usd if self.runtime.accountant is not None else 0.0

    def pid(self) -> int:
        return os.getpid()


class RayPool:
    """Actors on a Ray cluster, ready to answer blocks of lines (models loaded once each)."""

    def __init__(self, settings: Any, model: str, owner: Any, *, address: str | None = None, workers: int = 1):
        try:
            import ray
        except ImportError:
            raise InvalidRequest("the Ray executor needs Ray: pip install -e '.[ray]'") from None
        self.ray = ray
        self.started_here = not ray.is_initialized()
        if self.started_here:
            env = {k: v for k, v in os.environ.items() if k.startswith("LITEGATE_")}
            ray.init(address=address or os.environ.get("RAY_ADDRESS") or None, include_dashboard=False,
                     log_to_driver=False, configure_logging=False, runtime_env={"env_vars": env} if env else None)
        # Ray caps an actor's BLAS/OpenMP threads at its num_cpus; the nano encoder's batched
        # matrix products want every core an actor's share of the cluster gives it
        threads = max(1, int(ray.cluster_resources().get("CPU", 1) // max(1, workers)))
        actor = ray.remote(num_cpus=1, runtime_env={"env_vars": {"OMP_NUM_THREADS": str(threads),
                                                                 "OPENBLAS_NUM_THREADS": str(threads)}})(LineActor)
        state = settings.model_dump(mode="json", exclude_none=True)
        who = {"id": owner.id, "feature": owner.feature, "api_key": owner.api_key}
        # Any: Ray's types do not see the ``.remote`` of an actor handle's methods
        self.actors: list[Any] = [actor.remote(state, model, who) for _ in range(workers)]
        self.pids = ray.get([a.pid.remote() for a in self.actors])  # every actor has built its app

    def run(self, lines: list[Line], concurrency: int, write: Callable[[dict[str, Any]], None], *, block: int = 256,
            on_cost: Callable[[float], None] | None = None) -> int:
        """Answer ``lines`` in blocks across the actors; each block's answers are written as it
        returns. Returns the number of blocks."""
        from ray.util import ActorPool

        pool = ActorPool(self.actors)
        blocks = [lines[i:i + block] for i in range(0, len(lines), block)]
        for results in pool.map_unordered(lambda a, b: a.answer.remote(b, concurrency), blocks):
            for result in results:
                write(result)
            if on_cost is not None:
                on_cost(sum(self.ray.get([a.spent.remote() for a in self.actors])))
        return len(blocks)

    def close(self) -> None:
        for a in self.actors:
            self.ray.kill(a)
        if self.started_here:
            self.ray.shutdown()


def run_on_ray(lines: list[Line], owner: Any, model: str, settings: Any, concurrency: int,
               write: Callable[[dict[str, Any]], None], *, address: str | None = None, workers: int = 1,
               block: int = 256, on_cost: Callable[[float], None] | None = None) -> dict[str, Any]:
    import time

    pool = RayPool(settings, model, owner, address=address, workers=workers)
    try:
        started = time.perf_counter()
        blocks = pool.run(lines, concurrency, write, block=block, on_cost=on_cost)
        return {"workers": len(pool.actors), "pids": pool.pids, "blocks": blocks,
                "seconds": time.perf_counter() - started}
    finally:
        pool.close()
