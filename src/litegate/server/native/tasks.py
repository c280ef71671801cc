"""Task routes: POST /v1/tasks/{task}; nano classifiers under /v1/classifiers."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from litegate.documents import prebuilt
from litegate.errors import FeedbackNotFound, Forbidden, InvalidRequest
from litegate.keys import request_feature, request_fingerprint, request_tenant
from litegate.ledger.calls import OUTCOMES
from litegate.tasks import TASKS, TaskRunner, TaskSpec
from litegate.tenancy import OPERATOR, Tenant, current

router = APIRouter()


def _runner(request: Request) -> TaskRunner:
    return request.app.state.runtime.tasks


def _task_route(spec: TaskSpec) -> Any:
    async def run_task(body: Any, request: Request) -> dict[str, Any]:
        # the X-Litegate-Feature header tags a task as it tags chat (batch lines carry their
        # job's feature this way); a feature in the body wins
        feature = request_feature(request)
        if feature and getattr(body, "feature", None) is None:
            body = body.model_copy(update={"feature": feature})
        return await run_in_threadpool(_runner(request).run, spec.name, body, request_fingerprint(request))

    # the body's model is the task's own request model (set here: annotations are strings)
    run_task.__annotations__ = {"body": spec.request, "request": Request, "return": dict[str, Any]}
    run_task.__name__ = f"run_{spec.name}"
    return run_task


for _spec in TASKS.values():  # one typed route per declared task (and its schema in /openapi.json)
    router.add_api_route(f"/v1/tasks/{_spec.name}", _task_route(_spec), methods=["POST"], summary=_spec.summary)


@router.post("/v1/tasks/{task}")
async def unknown_task(task: str, request: Request) -> dict[str, Any]:
    _runner(request).spec(task)  # raises UnknownTask (404)
    raise AssertionError("declared tasks have their own routes")


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    outcome: str | None = None
    correct: Any = None


def apply_feedback(runtime: Any, call_id: str, outcome: str | None, correct: Any,
                   tenant: Tenant = OPERATOR) -> dict[str, Any]:
    """An outcome (success / failure, for cost per success) and/or a correction (the right
    answer, which a learning classifier or extractor trains on); a correction without an
    outcome sets it from whether the call's answer agreed."""
    if outcome is None and correct is None:
        raise InvalidRequest("give 'outcome' (success or failure), 'correct' (the right answer), or both",
                             param="outcome")
    if runtime.accountant is None:
        raise InvalidRequest("this server keeps no ledger, so it takes no feedback")
    if outcome is not None and outcome not in OUTCOMES:
        raise InvalidRequest(f"'outcome' must be one of {', '.join(OUTCOMES)}", param="outcome")
    if not tenant.admin:  # feedback only on the caller's own calls (another key's: as if it did not exist)
        runtime.accountant.flush()
        call = runtime.accountant.ledger.get(call_id)
        if call is not None and not tenant.sees(call.get("api_key")):
            raise FeedbackNotFound(f"no call with id {call_id[:80]!r} in the ledger", param="id")
    body: dict[str, Any] = {"id": call_id}
    if correct is not None:
        runtime.accountant.flush()  # the call may still be on its way to the ledger
        if runtime.learner is None:
            raise InvalidRequest("this server does not learn (no ledger)", param="correct")
        body.update(runtime.learner.correct(call_id, correct))
        outcome = outcome or ("success" if body["agreed"] else "failure")
    body.update(runtime.accountant.feedback(call_id, outcome))
    return body


@router.post("/v1/feedback")
async def feedback(body: FeedbackRequest, request: Request) -> dict[str, Any]:
    """Mark an earlier call's outcome, and/or correct its answer."""
    return await run_in_threadpool(apply_feedback, request.app.state.runtime, body.id, body.outcome, body.correct,
                                   request_tenant(request))


@router.get("/v1/report")
async def report(request: Request, since_hours: float | None = None) -> dict[str, Any]:
    import time

    since = time.time() - since_hours * 3600 if since_hours else None
    accountant = request.app.state.runtime.accountant
    await run_in_threadpool(accountant.flush)
    summary = await run_in_threadpool(accountant.ledger.summary, since, request_tenant(request))
    summary["alarms"] = list(accountant.alarms.values())
    return summary


class TrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    examples: list[dict[str, Any]]
    learn: bool = False
    encoder: str | None = None  # fast (default), accurate, multilingual or auto (GET /v1/encoders)
    tune: bool | dict[str, Any] = False  # tune the encoder's top layers first (nano.tuning.TuneSettings' fields)
    # train in a background job (202 and the job to poll); the default when tuning, which takes minutes
    background: bool | None = None


def _learning_is_the_operators(learn: bool, kind: str) -> None:
    if learn and current().namespace is not None:
        raise Forbidden(f"'learn': true needs an admin key: reviewing and retraining a {kind} from its calls is the "
                        "operator's; train it without 'learn' (it is this key's own)", param="learn")


@router.post("/v1/classifiers", status_code=201)
async def train_classifier(body: TrainRequest, request: Request, response: Response) -> dict[str, Any]:
    """Train (or retrain, as a new version) a nano classifier; with ``tune`` (or ``background``)
    the answer is 202 and a training job to poll at GET /v1/classifiers/jobs/{id}."""
    _learning_is_the_operators(body.learn, "classifier")
    runtime = request.app.state.runtime
    background = body.background if body.background is not None else body.tune not in (False, None)
    if background:
        response.status_code = 202
        return await run_in_threadpool(runtime.training.submit, request_tenant(request), body.name, body.examples,
                                       body.learn, body.encoder, body.tune)
    info = await run_in_threadpool(runtime.classifiers.train, body.name, body.examples, body.learn,
                                   body.encoder, body.tune)
    return {"object": "classifier", **asdict(info)}


@router.get("/v1/classifiers/jobs/{job_id}")
async def get_training_job(job_id: str, request: Request) -> dict[str, Any]:
    """A background training job: ``status`` queued, in_progress, succeeded (with ``classifier``)
    or failed (with ``error``); ``progress`` while it tunes."""
    return await run_in_threadpool(request.app.state.runtime.training.get, request_tenant(request), job_id)


@router.get("/v1/encoders")
async def list_encoders(request: Request) -> dict[str, Any]:
    """The nano encoders a classifier or extractor can be trained with."""
    encoders = request.app.state.runtime.encoders
    return {"object": "list", "data": [{"object": "encoder", **e} for e in encoders.describe()]}


@router.get("/v1/classifiers")
async def list_classifiers(request: Request) -> dict[str, Any]:
    infos = await run_in_threadpool(request.app.state.runtime.classifiers.list)
    return {"object": "list", "data": [{"object": "classifier", **asdict(i)} for i in infos]}


@router.get("/v1/classifiers/{name}")
async def get_classifier(name: str, request: Request) -> dict[str, Any]:
    clf = await run_in_threadpool(request.app.state.runtime.classifiers.get, name)
    store = request.app.state.runtime.classifiers
    return {"object": "classifier", **asdict(clf.info), "versions": store.versions(name)}


class TrainExtractorRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    examples: list[dict[str, Any]]
    fields: dict[str, str] | None = None
    learn: bool = False
    encoder: str | None = None  # fast (default), accurate or auto (extractors need word vectors)


def _extractor_body(info: Any, versions: list[int] | None = None) -> dict[str, Any]:
    body = {"object": "extractor", **asdict(info)}
    if versions is not None:
        body["versions"] = versions
    return body


@router.post("/v1/extractors", status_code=201)
async def train_extractor(body: TrainExtractorRequest, request: Request) -> dict[str, Any]:
    """Train (or retrain, as a new version) a nano extractor from {"text", "data"} examples."""
    _learning_is_the_operators(body.learn, "extractor")
    store = request.app.state.runtime.extractors
    info = await run_in_threadpool(store.train, body.name, body.examples, body.fields, body.learn, body.encoder)
    return _extractor_body(info)


@router.get("/v1/extractors")
async def list_extractors(request: Request) -> dict[str, Any]:
    infos = await run_in_threadpool(request.app.state.runtime.extractors.list)
    trained = [_extractor_body(i) for i in infos]
    shadowed = {i.name for i in infos}  # a trained extractor of the same name answers instead
    extended = request.app.state.runtime.tasks.context.prebuilts
    own = await run_in_threadpool(lambda: [_extended_body(i) for i in extended.list() if i.name not in shadowed])
    return {"object": "list", "data": trained + own + [{"object": "extractor", **prebuilt.describe(n)}
                                                       for n in prebuilt.names() if n not in shadowed]}


def _extended_body(info: Any) -> dict[str, Any]:
    """A prebuilt extractor extended with the user's examples, as the listings show it."""
    return {"object": "extractor", "prebuilt": True, **asdict(info),
            "types": {f: s.type for f, s in prebuilt.SPECS[info.base].items()}}


@router.get("/v1/extractors/{name}")
async def get_extractor(name: str, request: Request) -> dict[str, Any]:
    store = request.app.state.runtime.extractors
    if name in prebuilt.names() and name not in store.names():
        return {"object": "extractor", **prebuilt.describe(name)}
    extended = request.app.state.runtime.tasks.context.prebuilts
    if name not in store.names() and name in extended.names():
        info = await run_in_threadpool(lambda: extended.get(name).info)
        return {**_extended_body(info), "versions": extended.versions(name)}
    ext = await run_in_threadpool(store.get, name)
    return _extractor_body(ext.info, store.versions(name))
