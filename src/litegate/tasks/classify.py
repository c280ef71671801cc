"""classify and route: pick among named options, with a probability for every option.

On an LLM tier the options are priced from one constrained generation (``label_scores``);
on a nano tier a trained classifier answers with a calibrated P(correct).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from litegate.errors import InvalidRequest
from litegate.ledger.pricing import Usage
from litegate.tasks.base import Example, TaskContext, TaskOutput, TaskSpec, TextRequest, label_map

MULTI_LABEL_THRESHOLD = 0.25  # LLM tiers: labels this likely join the top label
RETRIEVED = 6  # a named classifier's training examples shown to an LLM tier
BUILTIN_ROUTES = {
    "use_stronger_model": "the request is too hard or too unclear for this model to handle reliably",
    "human_review": "a person must look at this request (sensitive, risky, or none of the routes fits)",
}


class ClassifyRequest(TextRequest):
    labels: list[str] | dict[str, str] | None = Field(
        default=None, description="the labels: a list of names or {name: description}")
    multi_label: bool = Field(default=False, description="every label that applies, not only the best")
    examples: list[Example] | None = Field(default=None, description="labeled examples for LLM tiers")
    classifier: str | None = Field(default=None, description="a trained nano classifier")


class RouteRequest(TextRequest):
    routes: list[str] | dict[str, str] | None = Field(
        default=None, description="the destinations: names or {name: description}")
    examples: list[Example] | None = Field(default=None, description="labeled examples")


def _options_prompt(kind: str, options: dict[str, str], examples: list[Any] | None) -> str:
    lines = [f"{kind} the text: reply with exactly one name from this list and nothing else."]
    for name, desc in options.items():
        lines.append(f"- {name}" + (f": {desc}" if desc else ""))
    if examples:
        lines.append("Examples:")
        for ex in examples:
            lines.append(f"Text: {ex.text}\nAnswer: {ex.label}")
    return "\n".join(lines)


def choose(tier: Any, text: str, kind: str, options: dict[str, str], examples: list[Example] | None,
           similar: list[dict[str, str]] | None = None) -> tuple[dict[str, float], Usage]:
    """Every option's probability from one constrained generation on an LLM tier;
    ``similar`` (retrieved training examples) go last, next to the text."""
    for i, ex in enumerate(examples or []):
        if ex.label not in options:
            raise InvalidRequest(f"'examples.{i}.label' is {ex.label!r}, which is not one of the options",
                                 param=f"examples.{i}.label")
    # Instructions, options and examples come first and stay identical across calls, so
    # llama.cpp's prompt cache only has to prefill the new text (and the retrieved examples).
    near = "".join(f"Text: {ex['text']}\nAnswer: {ex['label']}\n\n" for ex in similar or []
                   if ex["label"] in options)
    messages = [{"role": "system", "content": _options_prompt(kind, options, examples)},
                {"role": "user", "content": (f"Similar texts:\n{near}" if near else "") + f"Text: {text}\nAnswer:"}]
    scores, raw = tier.label_scores(messages, list(options))
    usage = Usage()
    usage.add(raw)
    return scores, usage


def _ranked(scores: dict[str, float]) -> list[tuple[str, float]]:
    return sorted(scores.items(), key=lambda kv: -kv[1])


def classify_llm(ctx: TaskContext, tier: Any, req: ClassifyRequest) -> TaskOutput:
    text = req.require_text()
    similar = None
    clf = ctx.classifiers.get(req.classifier) if req.classifier else None
    if clf is not None and not req.labels:
        options = {label: "" for label in clf.labels}
        if len(options) > 50:
            raise InvalidRequest(f"classifier {req.classifier!r} has {len(options)} labels; LLM tiers take at "
                                 "most 50: pass 'labels' to narrow them", param="labels")
    else:
        options = label_map(req.labels)
    if clf is not None and not req.examples:  # the classifier's training examples teach the LLM too
        similar = clf.nearest(text, RETRIEVED, ctx.classifiers.encoder_for(clf))
    scores, usage = choose(tier, text, "Classify", options, req.examples, similar)
    ranked = _ranked(scores)
    best = ranked[0][0]
    result: dict[str, Any] = {"scores": {k: round(v, 6) for k, v in ranked}}
    if req.multi_label:
        result["labels"] = [k for k, v in ranked if v >= MULTI_LABEL_THRESHOLD] or [best]
    else:
        result["label"] = best
    return TaskOutput(result=result, confidence=scores[best], tier=tier.name, model=tier.model, usage=usage)


def classify_nano(ctx: TaskContext, tier: Any, req: ClassifyRequest) -> TaskOutput:
    import numpy as np  # here, not at the top: reading TASKS (the CLI's commands) should not load numpy

    text = req.require_text()
    clf, scores, calibrated = tier.predict(text, req.classifier)
    if req.labels:
        wanted = list(label_map(req.labels, maximum=10_000))
        unknown = [label for label in wanted if label not in scores]
        if unknown:
            raise InvalidRequest(f"'labels' includes {unknown[:3]} which classifier {clf.info.name!r} "
                                 "does not know", param="labels")
        total = sum(scores[label] for label in wanted) or 1.0
        scores = {label: scores[label] / total for label in wanted}
    ranked = _ranked(scores)
    best = ranked[0][0]
    # calibrated P(correct), typicality included; it equals the top score only when the
    # text looks like the training data
    full_set = not req.labels or set(scores) == set(clf.labels)
    confidence = calibrated if full_set else scores[best]
    result: dict[str, Any] = {"scores": {k: round(v, 6) for k, v in ranked}}
    if req.multi_label:
        labels = [k for k, v in ranked if v >= 0.5] or [best]
        result["labels"] = labels
        confidence = float(np.prod([scores[k] for k in labels]))
    else:
        result["label"] = best
    return TaskOutput(result=result, confidence=confidence, tier=tier.name,
                      model=f"{clf.info.name}@v{clf.info.version}")


def route_llm(ctx: TaskContext, tier: Any, req: RouteRequest) -> TaskOutput:
    text = req.require_text()
    routes = label_map(req.routes, "routes", minimum=1, maximum=48)
    for name in BUILTIN_ROUTES:
        routes.setdefault(name, BUILTIN_ROUTES[name])
    scores, usage = choose(tier, text, "Route", routes, req.examples)
    ranked = _ranked(scores)
    return TaskOutput(result={"route": ranked[0][0], "scores": dict(ranked)}, confidence=ranked[0][1],
                      tier=tier.name, model=tier.model, usage=usage)


CLASSIFY = TaskSpec(
    name="classify", request=ClassifyRequest, summary="Pick the label(s) for a text, with a probability per label.",
    runs={"classifier": classify_nano, "labels": classify_llm},
    answer_keys=("label", "labels"), metric="classification", gold=("label", "labels"),
    accepts=lambda tier, req: "classifier" not in tier.capabilities or tier.has_classifier(req.classifier))

ROUTE = TaskSpec(
    name="route", request=RouteRequest,
    summary="Pick a destination (use_stronger_model and human_review are always options).",
    runs={"labels": route_llm}, answer_keys=("route",), metric="classification", gold=("label", "route"))
