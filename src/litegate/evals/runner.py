"""Runs a task over labeled records and scores it; writes the HTML report."""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from litegate.errors import InvalidRequest
from litegate.evals.answers import answer_metrics, gold_answers, retrieval_metrics
from litegate.evals.datasets import OUT_OF_SCOPE
from litegate.evals.metrics import classification_metrics, extraction_metrics, field_calibration, percentile
from litegate.tasks import TASKS, TaskRunner
from litegate.tenancy import current


def _gold_data(record: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any] | None:
    return next((record[k] for k in keys if isinstance(record.get(k), dict)), None)

Progress = Callable[[int], None]


def evaluate(runner: TaskRunner, task: str, records: list[dict[str, Any]], request: dict[str, Any],
             advance: Progress = lambda _n: None) -> dict[str, Any]:
    """``request`` holds the fixed part of each task request (labels, classifier, tier...);
    what is scored, and against which field of a record, is the task's declaration."""
    spec = runner.spec(task)
    if spec.metric is None:
        scored = ", ".join(n for n, s in TASKS.items() if s.metric)
        raise InvalidRequest(f"eval scores {scored}; {task} has no metric yet")
    if not records:
        raise InvalidRequest("the eval data is empty")
    gold_key = spec.gold[0]
    latencies: list[float] = []
    tokens = {"prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0}
    outputs = []
    items = [_item(spec.metric, gold_key, rec, i) for i, rec in enumerate(records)]  # every record checked first
    started = time.perf_counter()
    for item in items:
        out = runner.run(task, {**request, **item})
        latencies.append(out["latency_ms"])
        for k in tokens:
            tokens[k] += out["usage"][k]
        outputs.append(out)
        advance(1)
    metrics: dict[str, Any]
    if spec.metric == "answer":
        metrics = answer_metrics(records, outputs)
        if request.get("collection"):
            metrics.update(retrieval_metrics([gold_answers(r) for r in records],
                                             _retrieved(runner, request, [it["query"] for it in items])))
    elif spec.metric == "classification":
        gold = [r[gold_key] for r in records]
        pred = [o.get("label") or o.get("route") or (o.get("labels") or [""])[0] for o in outputs]
        conf = [o["confidence"] for o in outputs]
        metrics = classification_metrics(gold, pred, conf,
                                         out_of_scope=OUT_OF_SCOPE if OUT_OF_SCOPE in gold else None)
        answered = [o.get("outcome", "answered") == "answered" for o in outputs]
        right = [p == g for p, g in zip(pred, gold)]
        n_answered = sum(answered)
        metrics["cascade"] = {
            "answered_rate": n_answered / len(outputs),
            "human_review_rate": 1 - n_answered / len(outputs),
            "escalation_rate": sum(bool(o.get("escalated")) for o in outputs) / len(outputs),
            "accuracy_on_answered": (sum(r for r, a in zip(right, answered) if a) / n_answered) if n_answered else None,
            "tiers": {t: sum(o["tier"] == t for o in outputs) for t in sorted({o["tier"] for o in outputs})},
            # each call was priced by the tiers that ran it (configured prices included)
            "cost_per_1000_usd": 1000 * sum(o["cost_usd"] for o in outputs) / len(outputs),
        }
    else:
        fields = list((request.get("fields") or {}).keys()) or list(
            (request.get("schema") or {}).get("properties", {}).keys())
        if not fields and request.get("extractor"):
            fields = list(runner.context.extractors.get(request["extractor"]).info.fields)
        gold = [{f: v for f, v in (_gold_data(r, spec.gold) or {}).items() if f in fields} for r in records]
        pred = [o["data"] for o in outputs]
        metrics = extraction_metrics(gold, pred, fields)
        metrics.update(field_calibration(gold, outputs, fields))
    metrics.update({
        "task": task,
        "tier": outputs[0]["tier"],
        "model": outputs[0]["model"],
        "latency_ms_p50": percentile(latencies, 50),
        "latency_ms_p95": percentile(latencies, 95),
        "tokens": tokens,
        "wall_seconds": round(time.perf_counter() - started, 2),
    })
    return metrics


def _item(metric: str, gold_key: str, rec: dict[str, Any], i: int) -> dict[str, Any]:
    """What one record puts into the task's request, or InvalidRequest naming what it lacks."""
    if not isinstance(rec, dict):
        raise InvalidRequest(f"record {i + 1} is not a JSON object")
    if metric == "answer":
        question = rec.get("question", rec.get("text"))
        if not isinstance(question, str) or not question.strip():
            raise InvalidRequest(f"record {i + 1} has no 'question' string")
        if not isinstance(rec.get("answers", []), (list, str)):
            raise InvalidRequest(f"record {i + 1}: 'answers' must be a list of strings ([] when the documents "
                                 "do not say)")
        return {"query": question, **({"context": rec["context"]} if rec.get("context") else {})}
    if not isinstance(rec.get("text"), str):
        raise InvalidRequest(f"record {i + 1} has no 'text' string")
    if metric == "classification" and not isinstance(rec.get(gold_key), str):
        raise InvalidRequest(f"record {i + 1} has no '{gold_key}' string")
    return {"text": rec["text"]}


def _retrieved(runner: TaskRunner, request: dict[str, Any], questions: list[str]) -> list[list[str]]:
    """The ten best chunks per question from the request's collection, as the caller."""
    collections = runner.context.collections
    return [[h.text for h in collections.search(current().owner, request["collection"], q, top_k=10,
                                                filters=request.get("filters"))] for q in questions]


def public_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if not k.startswith("_")}


def _svg_reliability(bins: list[dict[str, float]], size: int = 320) -> str:
    pad, inner = 36, size - 48
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" role="img" '
             'aria-label="reliability diagram">',
             f'<rect x="{pad}" y="12" width="{inner}" height="{inner}" fill="#fafafa" stroke="#999"/>',
             f'<line x1="{pad}" y1="{12 + inner}" x2="{pad + inner}" y2="12" stroke="#bbb" stroke-dasharray="4"/>']
    for b in bins:
        x = pad + b["lo"] * inner
        w = (b["hi"] - b["lo"]) * inner - 2
        h = b["accuracy"] * inner
        parts.append(f'<rect x="{x + 1:.1f}" y="{12 + inner - h:.1f}" width="{w:.1f}" height="{h:.1f}" '
                     f'fill="#4a7bd0" opacity="0.8"><title>confidence {b["lo"]:.1f}-{b["hi"]:.1f}: '
                     f'accuracy {b["accuracy"]:.2f} over {b["count"]} items</title></rect>')
    parts.append(f'<text x="{pad + inner / 2}" y="{size - 4}" font-size="11" text-anchor="middle">confidence</text>')
    parts.append(f'<text x="10" y="{12 + inner / 2}" font-size="11" transform="rotate(-90 10 {12 + inner / 2})" '
                 'text-anchor="middle">accuracy</text></svg>')
    return "".join(parts)


def _svg_coverage(curve: list[dict[str, float]], size: int = 320) -> str:
    pad, inner = 36, size - 48
    lo = min([p["accuracy"] for p in curve] + [0.5])
    def y(acc: float) -> float:
        return 12 + inner - (acc - lo) / (1 - lo + 1e-9) * inner
    points = " ".join(f'{pad + p["coverage"] * inner:.1f},{y(p["accuracy"]):.1f}' for p in curve)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" role="img" '
            'aria-label="coverage-accuracy curve">'
            f'<rect x="{pad}" y="12" width="{inner}" height="{inner}" fill="#fafafa" stroke="#999"/>'
            f'<polyline points="{points}" fill="none" stroke="#d0643a" stroke-width="2"/>'
            f'<text x="{pad + inner / 2}" y="{size - 4}" font-size="11" text-anchor="middle">coverage '
            f'(most confident first)</text>'
            f'<text x="{pad}" y="{12 + inner + 12}" font-size="10">0</text>'
            f'<text x="4" y="20" font-size="10">1.0</text><text x="4" y="{12 + inner}" font-size="10">{lo:.2f}</text>'
            "</svg>")


def _svg_field_f1(per_field: dict[str, dict[str, Any]], width: int = 520) -> str:
    row, label_w = 22, 170
    items = list(per_field.items())
    height = 16 + row * len(items)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             'aria-label="slot F1 per field">']
    for i, (name, c) in enumerate(items):
        y = 8 + i * row
        f1 = c.get("f1") or 0.0
        w = f1 * (width - label_w - 120)
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" font-size="11" text-anchor="end">'
                     f'{html.escape(name)}</text>'
                     f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="#4a7bd0">'
                     f'<title>{html.escape(name)}: F1 {f1:.2f}</title></rect>'
                     f'<text x="{label_w + w + 6:.1f}" y="{y + 14}" font-size="10">'
                     f'{f1:.2f} ({c["tp"]}/{c["fp"]}/{c["fn"]})</text>')
    parts.append("</svg>")
    return "".join(parts)


def _items_table(items: list[dict[str, Any]]) -> str:
    """Each question with its gold answers and what came back, wrong ones first."""
    rows = "".join(
        f"<tr><td>{'' if it['right'] else '✗'}</td><td>{html.escape(str(it['question']))}</td>"
        f"<td>{html.escape(' | '.join(it['gold']) or '(not in the documents)')}</td>"
        f"<td>{html.escape(str(it['answer']))}</td><td>{it['confidence']:.2f}</td></tr>"
        for it in sorted(items, key=lambda it: it["right"]))
    return ("<h2>Items</h2><table><tr><th></th><th>question</th><th>gold</th><th>answer</th><th>confidence</th>"
            f"</tr>{rows}</table>")


def write_report(metrics: dict[str, Any], path: Path, title: str) -> None:
    rows = "".join(f"<tr><th>{html.escape(k)}</th>"
                   f"<td>{html.escape(json.dumps(v) if not isinstance(v, float) else f'{v:.4f}')}</td></tr>"
                   for k, v in public_metrics(metrics).items() if k != "per_field")
    charts = ""
    if "per_field" in metrics:
        charts += (f"<figure>{_svg_field_f1(metrics['per_field'])}<figcaption>Slot F1 per field (bar), with "
                   "true positives / false positives / misses.</figcaption></figure>")
    if "_reliability" in metrics and "_coverage_curve" not in metrics:
        charts += (f"<figure>{_svg_reliability(metrics['_reliability'])}<figcaption>Reliability of field "
                   "confidence: share of fields right (stated or null) per confidence bin; the dashed diagonal "
                   "is perfect calibration.</figcaption></figure>")
    if "_coverage_curve" in metrics:
        charts = (f"<figure>{_svg_reliability(metrics['_reliability'])}<figcaption>Reliability: accuracy per "
                  "confidence bin; the dashed diagonal is perfect calibration.</figcaption></figure>"
                  f"<figure>{_svg_coverage(metrics['_coverage_curve'])}<figcaption>Accuracy when answering only "
                  "the most confident fraction of items.</figcaption></figure>")
    if "_items" in metrics:
        charts += _items_table(metrics["_items"])
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;color:#222}}table{{border-collapse:collapse}}
th,td{{text-align:left;padding:2px 12px;border-bottom:1px solid #eee}}figure{{display:inline-block;margin:1rem}}
</style></head><body><h1>{html.escape(title)}</h1>{charts}<table>{rows}</table></body></html>"""
    path.write_text(page, encoding="utf-8")
