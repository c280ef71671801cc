"""Learning routes: distill and roll back a classifier or extractor, the review queue, the
learning curve, and purging kept texts (litegate.learning.loop)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from litegate.errors import InvalidRequest

router = APIRouter()


def learner(request: Request) -> Any:
    found = request.app.state.runtime.learner
    if found is None:
        raise InvalidRequest("this server keeps no ledger, so it does not learn")
    return found


def which(classifier: str | None, extractor: str | None) -> tuple[str, str]:
    """(kind, name) from ``?classifier=`` or ``?extractor=`` (exactly one)."""
    if bool(classifier) == bool(extractor):
        raise InvalidRequest("name exactly one of 'classifier' or 'extractor'", param="classifier")
    return ("classifier", classifier) if classifier else ("extractor", extractor)  # type: ignore[return-value]


def _add(kind: str) -> None:
    async def distill(name: str, request: Request) -> dict[str, Any]:
        return await run_in_threadpool(learner(request).distill, kind, name)

    async def rollback(name: str, request: Request) -> dict[str, Any]:
        return await run_in_threadpool(learner(request).rollback, kind, name)

    distill.__doc__ = (f"Retrain {kind} NAME from its examples plus the collected labels; promoted only if not worse "
                       "on held-back labels (409 while another distill of it runs).")
    rollback.__doc__ = f"Make the version before the active one answer again ({kind}s)."
    router.add_api_route(f"/v1/{kind}s/{{name}}/distill", distill, methods=["POST"], summary=f"Distill a {kind}")
    router.add_api_route(f"/v1/{kind}s/{{name}}/rollback", rollback, methods=["POST"], summary=f"Roll back a {kind}")


for _kind in ("classifier", "extractor"):
    _add(_kind)


@router.get("/v1/review")
async def review(request: Request, classifier: str | None = None, extractor: str | None = None, limit: int = 50,
                 below: float = 0.5) -> dict[str, Any]:
    """Calls to label, most informative first: unlabeled, sent to human review or under ``below``."""
    kind, name = which(classifier, extractor)
    return await run_in_threadpool(learner(request).review, kind, name, limit, below)


@router.get("/v1/learning")
async def learning_curve(request: Request, classifier: str | None = None, extractor: str | None = None,
                         below: float = 0.5) -> dict[str, Any]:
    """Held-back score per version; per day the share of calls unsure, escalated, reviewed."""
    kind, name = which(classifier, extractor)
    if not 0 < below <= 1:
        raise InvalidRequest("'below' must be in (0, 1]", param="below")
    return await run_in_threadpool(learner(request).curve, kind, name, below)


@router.delete("/v1/examples")
async def purge(request: Request, classifier: str | None = None, extractor: str | None = None) -> dict[str, Any]:
    """Delete the texts kept for learning by one classifier or extractor."""
    kind, name = which(classifier, extractor)
    deleted = await run_in_threadpool(learner(request).purge, kind, name)
    return {"object": "examples.deleted", kind: name, "deleted": deleted}
