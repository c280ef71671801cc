"""doctor: what this process may use and how litegate splits it (litegate.compute), the load
now, a short decode and encoder probe against their quiet speed, and what to change."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

from litegate.cli.common import fail, out, settings
from litegate.compute import ComputeBudget, advice, survey
from litegate.ledger.pricing import QUIET

# The probe's own decode speed on a quiet machine (this prompt, counted from the first token, the
# embedded lite model, 2 cores; load 0.5-2, 2026-12-05): 14.3-15.3 tok/s with one llama.cpp
# thread (the default on 2 CPUs), 26.4-28.0 with two. A second thread bought 1.75x, so each
# thread beyond the first is counted at 0.75 of one. Other models scale with their weights.
PROBE_TOK_S_ONE_THREAD = 15.0
EXTRA_THREAD_SHARE = 0.75


def expected_decode_tok_s(threads: int, weights: int | None = None) -> float:
    """What the decode probe reads on a quiet machine with ``threads`` llama.cpp threads."""
    scale = QUIET.weights_bytes / weights if weights else 1.0
    return PROBE_TOK_S_ONE_THREAD * (1 + EXTRA_THREAD_SHARE * (max(1, threads) - 1)) * scale


ENCODER_TEXTS = [f"how do I reset the pin of card number {i} before my trip" for i in range(32)]


def decode_probe(budget: ComputeBudget, seconds: float, model: str = "lite") -> dict[str, Any]:
    """Stream from the lite model for ``seconds``: tokens per second against its quiet speed."""
    from litegate.config import Settings
    from litegate.engine.catalog import CATALOG, ModelCache, weights_bytes
    from litegate.engine.llama import EngineOptions, LlamaEngine

    s = Settings()
    if not CATALOG[model].installed():
        return {"skipped": f"the {model} model is not installed"}
    path = ModelCache(s.home, s.models_dir).ensure(CATALOG[model])
    options = EngineOptions(threads=budget.llama_threads, ctx=1024, parallel=1, poll=budget.llama_poll)
    with LlamaEngine(path, options) as engine:
        engine.run("chat", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})  # warm
        times: list[float] = []
        give_up = time.perf_counter() + seconds + 120  # prompt processing on a very busy machine

        def on_chunk(chunk: dict[str, Any]) -> bool:
            now = time.perf_counter()
            if any((c.get("delta") or {}).get("content") for c in chunk.get("choices") or []):
                times.append(now)
            # the window opens at the first token: decode speed, not prompt processing
            return (bool(times) and now - times[0] > seconds) or now > give_up

        engine.stream("chat", {"messages": [{"role": "user", "content": "Count from one to five hundred in words."}],
                               "max_tokens": 4096, "temperature": 0}, on_chunk)
    speed = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 2 else 0.0
    expected = expected_decode_tok_s(budget.llama_threads, weights_bytes(model))
    return {"tokens": len(times), "tok_s": round(speed, 1), "expected_tok_s": round(expected, 1),
            "ratio": round(speed / expected, 2)}


def encoder_probe(seconds: float) -> dict[str, Any]:
    """Encode short sentences for ``seconds``: sentences per second (wall and per CPU-second)."""
    from litegate.nano.encoder import MiniLMEncoder

    encoder = MiniLMEncoder()
    encoder.encode(ENCODER_TEXTS)
    wall, cpu, n = time.perf_counter(), time.process_time(), 0
    while time.perf_counter() - wall < seconds:
        encoder.encode(ENCODER_TEXTS)
        n += len(ENCODER_TEXTS)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"sentences_s": round(n / wall, 1), "sentences_per_cpu_s": round(n / max(cpu, 1e-9), 1),
            "expected_sentences_s": QUIET.encoder_sentences_s, "ratio": round(n / wall / QUIET.encoder_sentences_s, 2),
            "cpu_share": round(cpu / wall, 2)}


def diagnose(seconds: float, probe: bool) -> dict[str, Any]:
    budget = ComputeBudget.from_settings(settings())
    report = survey(budget)
    report["blas"] = budget.apply_blas()
    if probe:
        report["decode"] = decode_probe(budget, seconds)
        report["encoder"] = encoder_probe(min(seconds, 3.0))
    report["advice"] = advice(report)
    return report


def show(report: dict[str, Any]) -> None:
    b = report["budget"]
    quota = report["cgroup_quota_cpus"]
    lines = [
        f"CPUs: {report['cpus_online']} online, {report['affinity_cpus']} in this process's affinity, cgroup quota "
        f"{quota if quota is not None else 'none'} -> {report['available_cpus']} usable",
        f"budget (LITEGATE_THREADS): {b['cpus']}",
        f"  llama.cpp: {b['llama_threads']} threads per model, poll {b['llama_poll']}",
        f"  OCR (onnxruntime): {b['ocr_threads']} intra-op threads; speech (CTranslate2): {b['speech_threads']}",
        f"  encoder (BLAS {', '.join(report['blas']['libraries']) or 'none found'}): {b['blas_threads']} threads",
        f"  documents: {b['document_workers']} worker(s), queue {b['document_queue']}, nice +{b['document_nice']}",
        f"load: {' / '.join(f'{x:g}' for x in report['load_average'])} (1/5/15 min) on {report['cpus_online']} CPUs "
        f"= {report['load_per_cpu']:g} per CPU",
    ]
    for name, unit in (("decode", "tok_s"), ("encoder", "sentences_s")):
        p = report.get(name)
        if p is None:
            continue
        if "skipped" in p:
            lines.append(f"{name} probe: skipped ({p['skipped']})")
        else:
            expected = p[f"expected_{unit}"]
            lines.append(f"{name} probe: {p[unit]:g} {unit.replace('_', '/')} against {expected:g} quiet "
                         f"({p['ratio']:.0%})")
    lines.append("what to change:")
    lines += [f"  - {tip}" for tip in report["advice"]]
    out.print("\n".join(lines), highlight=False, soft_wrap=True)


app = typer.Typer()  # this module's commands; cli/__init__ adds them to the litegate command

@app.command()
def doctor(as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of text")] = False,
           seconds: Annotated[float, typer.Option(help="how long the decode probe runs")] = 5.0,
           probe: Annotated[bool, typer.Option(help="run the decode and encoder probes (--no-probe: only "
                                                    "what the process may use and the load)")] = True) -> None:
    """CPUs this process may use, threads per engine, the load, a decode and an encoder probe
    against their quiet speed, and what to change."""
    if not 0.5 <= seconds <= 120:
        fail("--seconds must be between 0.5 and 120")
    report = diagnose(seconds, probe)
    if as_json:
        print(json.dumps(report, indent=1))
    else:
        show(report)
