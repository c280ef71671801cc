"""classify and route: pick among named options, with a probability for every option."""

from __future__ import annotations

from typing import Any

import numpy as np

from litegate.errors import InvalidRequest
from litegate.tasks.request import TaskRequest
from litegate.tasks.runner import TaskOutput, TaskRunner, Usage

MULTI_LABEL_THRESHOLD = 0.25  # LLM tiers: labels this likely join the top label
BUILTIN_ROUTES = {
    "use_stronger_model": "the request is too hard or too unclear for this model to handle reliably",
    "human_review": "a person must look at this request (sensitive, risky, or none of the routes fits)",
}


def _options_prompt(kind: str, options: dict[str, str], examples: list[Any] | None) -> str:
    lines = [f"{kind} the text: reply with exactly one name from this list and nothing else."]
    for name, desc in options.items():
        lines.append(f"- {name}" + (f": {desc}" if desc else ""))
    if examples:
        lines.append("Examples:")
        for ex in examples:
            lines.append(f"Text: {ex.text}\nAnswer: {ex.label}")
    return "\n".join(lines)


def _llm_choose(runner: TaskRunner, req: TaskRequest, kind: str, options: dict[str, str]) -> TaskOutput:
    text = req.require_text()
    llm = runner.llm(req.tier)
    if req.examples:
        for i, ex in enumerate(req.examples):
            if ex.label not in options:
                raise InvalidRequest(f"'examples.{i}.label' is {ex.label!r}, which is not one of the options",
                                     param=f"examples.{i}.label")
    # Instructions, options and examples come first and stay identical across calls, so
    # llama.cpp's prompt cache only has to prefill the new text.
    messages = [{"role": "system", "content": _options_prompt(kind, options, req.examples)},
                {"role": "user", "content": f"Text: {text}\nAnswer:"}]
    scores, raw = llm.label_scores(messages, list(options))
    usage = Usage()
    usage.add(raw)
    best = max(scores, key=scores.get)
    return TaskOutput(result={"scores": {k: round(v, 6) for k, v in scores.items()}, "_best": best},
                      confidence=scores[best], tier=llm.name, model=llm.model, usage=usage)


def classify(runner: TaskRunner, req: TaskRequest) -> TaskOutput:
    text = req.require_text()
    use_nano = runner.is_nano(req.tier)
    classifier = req.classifier or (runner.tier_configs[req.tier].classifier if use_nano else None)
    if use_nano:
        if not classifier:
            raise InvalidRequest("the nano tier needs 'classifier': the name of a trained classifier",
                                 param="classifier")
        clf = runner.store.get(classifier)
        probs, confidence = clf.predict([text], runner.store.encoder)
        scores = dict(zip(clf.labels, (float(p) for p in probs[0])))
        if req.labels:
            wanted = list(req.label_map(maximum=10_000))
            unknown = [label for label in wanted if label not in scores]
            if unknown:
                raise InvalidRequest(f"'labels' includes {unknown[:3]} which classifier {classifier!r} "
                                     "does not know", param="labels")
            total = sum(scores[label] for label in wanted) or 1.0
            scores = {label: scores[label] / total for label in wanted}
        best = max(scores, key=scores.get)
        # calibrated P(correct), typicality included; it equals the top score only when the
        # text looks like the training data
        full_set = not req.labels or set(scores) == set(clf.labels)
        nano_confidence = float(confidence[0]) if full_set else scores[best]
        out = TaskOutput(result={"scores": scores}, confidence=nano_confidence, tier=req.tier,
                         model=f"{clf.info.name}@v{clf.info.version}")
    else:
        if req.classifier and not req.labels:
            clf = runner.store.get(req.classifier)
            options = {label: "" for label in clf.labels}
            if len(options) > 50:
                raise InvalidRequest(f"classifier {req.classifier!r} has {len(options)} labels; LLM tiers take at "
                                     "most 50: pass 'labels' to narrow them", param="labels")
        else:
            options = req.label_map()
        out = _llm_choose(runner, req, "Classify", options)
        best = out.result.pop("_best")
        scores = out.result["scores"]
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    out.result["scores"] = {k: round(v, 6) for k, v in ranked}
    if not use_nano:
        out.confidence = scores[best]
    if req.multi_label:
        threshold = 0.5 if use_nano else MULTI_LABEL_THRESHOLD
        labels = [k for k, v in ranked if v >= threshold] or [best]
        out.result["labels"] = labels
        out.confidence = float(np.prod([scores[k] for k in labels])) if use_nano else scores[best]
    else:
        out.result["label"] = best
    return out


def route(runner: TaskRunner, req: TaskRequest) -> TaskOutput:
    routes = req.label_map("routes", req.routes, minimum=1, maximum=48)
    for name in BUILTIN_ROUTES:
        routes.setdefault(name, BUILTIN_ROUTES[name])
    out = _llm_choose(runner, req, "Route", routes)
    best = out.result.pop("_best")
    out.result = {"route": best, "scores": dict(sorted(out.result["scores"].items(), key=lambda kv: -kv[1]))}
    return out
