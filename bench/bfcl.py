"""Function calling on the Berkeley Function Calling Leaderboard's public (non-live) data,
scored with an AST check written here after BFCL's own rules, against running servers.

    python bench/bfcl.py --data DIR [--start] [--pro N] [--raw-limit N] [--litegate URL] [--raw URL]
                         [--categories simple multiple parallel parallel_multiple irrelevance]
                         [--split untouched|tuning|all] [--limit N] [--dump FILE]
    python bench/bfcl.py --summarize DUMP [DUMP ...]

``DIR`` holds BFCL's question files ``BFCL_v4_<category>.json`` and ``possible_answer/``
(from the gorilla repository, berkeley-function-call-leaderboard/bfcl_eval/data; Apache-2.0;
not copied into this repository). Only the non-live categories are read: the live ones are
held out for checks this project never tunes on, and the script refuses them.

Each item is split in two by a hash of its id: ``tuning`` (what the tool decision may be
fitted and tuned on) and ``untouched`` (never tuned on; the figures to quote). Every request
goes to each peer in turn, ``tool_choice: "auto"``, greedy:

- ``litegate`` (the lite model) and, with ``--pro N``, ``litegate-pro`` (model ``pro`` on the
  same server, on the first N items of each category: it is about three times slower);
- ``llama.cpp``: llama.cpp's own server on the same GGUF (started as bench/serve.py does),
  scored on its ``tool_calls`` (BFCL's function-calling mode) and, as ``text_calls``, also on
  calls written as JSON in its text, which is the fairer view of the model itself.

With ``--start`` the script starts both servers on free ports and stops them at the end;
otherwise give their URLs. Prints one JSON object: per peer, category and split, the AST
accuracy, the share with any call, latency p50/p90, and the load average over the run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve import free_port, wait_ready  # noqa: E402

CATEGORIES = {"simple": "simple_python", "multiple": "multiple", "parallel": "parallel",
              "parallel_multiple": "parallel_multiple", "irrelevance": "irrelevance",
              "java": "simple_java", "javascript": "simple_javascript"}
# BFCL's parameter types as JSON Schema types
JSON_TYPES = {"dict": "object", "float": "number", "tuple": "array", "any": "string", "integer": "integer",
              "string": "string", "boolean": "boolean", "array": "array", "object": "object", "number": "number"}
PY_TYPES: dict[str, type | tuple[type, ...]] = {"string": str, "integer": int, "float": float, "boolean": bool,
                                                 "array": list, "tuple": list, "dict": dict, "any": str}


# -- data -----------------------------------------------------------------------------------------

def split_of(item_id: str) -> str:
    """A fixed half of every category: never changes with the order or the sample drawn."""
    return "tuning" if hashlib.sha256(item_id.encode()).digest()[0] % 2 == 0 else "untouched"


def load(data: Path, category: str) -> list[dict[str, Any]]:
    if category.startswith("live") or "live" in CATEGORIES.get(category, category):
        raise SystemExit(f"{category}: BFCL's live categories are held out; this bench does not read them")
    stem = f"BFCL_v4_{CATEGORIES[category]}.json"
    questions = [json.loads(line) for line in (data / stem).read_text().splitlines() if line.strip()]
    answers_file = data / "possible_answer" / stem
    truth = {}
    if answers_file.exists():
        for line in answers_file.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                truth[row["id"]] = row["ground_truth"]
    for q in questions:
        q["truth"] = truth.get(q["id"])
        q["split"] = split_of(q["id"])
    return questions


# what JSON Schema keeps of BFCL's specs: its own extras ("optional": true, formats such as
# "date-time" written for humans) are left out, as an OpenAI client would have to
KEPT = {"type", "description", "properties", "required", "items", "enum", "default", "additionalProperties",
        "minimum", "maximum", "minItems", "maxItems"}


def schema(spec: Any) -> Any:
    """A BFCL parameter spec as JSON Schema (its 'dict', 'float', 'tuple', 'any' types)."""
    if isinstance(spec, list):
        return [schema(s) for s in spec]
    if not isinstance(spec, dict):
        return spec
    out = {}
    for key, value in spec.items():
        if key not in KEPT or (key == "required" and not isinstance(value, list)):
            continue
        if key == "type" and isinstance(value, str):
            out[key] = JSON_TYPES.get(value, "string")
        elif key == "properties" and isinstance(value, dict):
            out[key] = {k: schema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = schema(value)
        else:
            out[key] = value
    return out


def openai_tools(functions: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """OpenAI function tools, and each tool name back to BFCL's (dots are not allowed in names)."""
    tools, names = [], {}
    for f in functions:
        name = re.sub(r"[^A-Za-z0-9_-]", "_", f["name"])[:64]
        names[name] = f["name"]
        tools.append({"type": "function", "function": {
            "name": name, "description": f.get("description", ""), "parameters": schema(f["parameters"])}})
    return tools, names


def ordered(data: Path, categories: list[str], split: str, limit: int, interleave: bool
            ) -> list[tuple[str, int, dict[str, Any]]]:
    """The items to run, as (category, index in its category, item): the first ``limit`` of each
    category by id hash, category after category or (``interleave``) one of each in turn."""
    groups = []
    for category in categories:
        items = [q for q in load(data, category) if split == "all" or q["split"] == split]
        items.sort(key=lambda q: hashlib.sha256(q["id"].encode()).hexdigest())
        groups.append([(category, k, q) for k, q in enumerate(items[:limit or None])])
    if not interleave:
        return [row for group in groups for row in group]
    return [group[k] for k in range(max(map(len, groups), default=0)) for group in groups if k < len(group)]


# -- the AST check (BFCL's rules, written here) ----------------------------------------------------

def standard(text: str) -> str:
    """Strings compare without case, spaces and ``,./-_*^``, and with ' read as "."""
    return re.sub(r"[ ,./\-_*^]", "", text).lower().replace("'", '"')


def _same(value: Any, allowed: list[Any], spec: dict[str, Any]) -> bool:
    kind = spec.get("type", "string")
    if isinstance(value, str):
        return standard(value) in {standard(a) for a in allowed if isinstance(a, str)}
    if isinstance(value, dict):
        return any(_same_dict(value, a) for a in allowed if isinstance(a, dict))
    if isinstance(value, list):
        if (spec.get("items") or {}).get("type") == "dict":
            return any(isinstance(a, list) and len(a) == len(value)
                       and all(_same_dict(v, x) for v, x in zip(value, a)) for a in allowed)
        norm = [standard(v) if isinstance(v, str) else v for v in value]
        return any(isinstance(a, list) and [standard(x) if isinstance(x, str) else x for x in a] == norm
                   for a in allowed)
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    return value in [a for a in allowed if a != ""]


def _same_dict(value: Any, allowed: dict[str, list[Any]]) -> bool:
    if not isinstance(value, dict):
        return False
    for key, v in value.items():
        if key not in allowed:
            return False
        options = [standard(a) if isinstance(a, str) else a for a in allowed[key]]
        if (standard(v) if isinstance(v, str) else v) not in options:
            return False
    return all(key in value or "" in options for key, options in allowed.items())


def _typed(value: Any, spec: dict[str, Any], allowed: list[Any]) -> bool:
    kind = spec.get("type", "string")
    want = PY_TYPES.get(kind, str)
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return True
    if type(value) is want:
        return True
    # BFCL accepts the type the possible answers themselves have (a "variable" value)
    return any(a != "" and type(a) is type(value) for a in allowed)


def check_call(function: dict[str, Any], call: dict[str, Any], expected: dict[str, list[Any]]) -> str | None:
    """None when ``call`` ({name: args}) matches; else the reason."""
    name = function["name"]
    if name not in call:
        return "wrong_function"
    args = call[name]
    if not isinstance(args, dict):
        return "arguments_not_an_object"
    props = function["parameters"].get("properties", {})
    for required in function["parameters"].get("required", []):
        if required not in args:
            return "missing_required"
    for key, value in args.items():
        if key not in props or key not in expected:
            return "unexpected_parameter"
        if not _typed(value, props[key], expected[key]):
            return "wrong_type"
        if not _same(value, expected[key], props[key]):
            return "wrong_value"
    for key, options in expected.items():
        if key not in args and "" not in options:
            return "missing_optional"
    return None


def check(item: dict[str, Any], calls: list[dict[str, Any]], category: str) -> str | None:
    """None when the calls are right for the item; else the reason (BFCL's category rules)."""
    if category == "irrelevance":
        return "called" if calls else None
    truth = item["truth"]
    if len(calls) != len(truth):
        return "wrong_count" if calls else "no_call"
    by_name = {f["name"]: f for f in item["function"]}
    if not category.startswith("parallel"):
        expected_name = next(iter(truth[0]))
        return check_call(by_name[expected_name], calls[0], truth[0][expected_name])
    used: set[int] = set()
    for expected in truth:  # in any order, each model call used once
        expected_name = next(iter(expected))
        hit = next((i for i, c in enumerate(calls) if i not in used
                    and check_call(by_name[expected_name], c, expected[expected_name]) is None), None)
        if hit is None:
            return "no_match_for_" + expected_name
        used.add(hit)
    return None


# -- calls out of a reply --------------------------------------------------------------------------

def calls_of(message: dict[str, Any], names: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        try:
            args = json.loads(fn.get("arguments") or "{}")
        except ValueError:
            args = fn.get("arguments")
        out.append({names.get(fn.get("name"), fn.get("name")): args})
    return out


def text_calls(content: str | None, names: dict[str, str]) -> list[dict[str, Any]]:
    """Calls a model wrote as JSON in its text ({"name", "arguments"|"parameters"}, alone, in a
    list, in a code fence or in <tool_call> tags)."""
    if not content:
        return []
    found: list[dict[str, Any]] = []
    decoder = json.JSONDecoder()
    i = 0
    while i < len(content):
        if content[i] not in "[{":
            i += 1
            continue
        try:
            value, end = decoder.raw_decode(content, i)
        except ValueError:
            i += 1
            continue
        for obj in value if isinstance(value, list) else [value]:
            if isinstance(obj, dict) and isinstance(obj.get("name"), str):
                args = obj.get("arguments", obj.get("parameters", {}))
                if isinstance(args, str):
                    try:
                        args = json.loads(args)
                    except ValueError:
                        pass
                found.append({names.get(obj["name"], obj["name"]): args})
        i = end
    return found


# -- running ---------------------------------------------------------------------------------------

def ask(client: httpx.Client, base: str, model: str, item: dict[str, Any], max_tokens: int
        ) -> tuple[dict[str, Any], float, dict[str, Any]]:
    tools, _ = openai_tools(item["function"])
    body = {"model": model, "messages": item["question"][0], "tools": tools, "tool_choice": "auto",
            "temperature": 0, "max_tokens": max_tokens}
    started = time.perf_counter()
    r = client.post(base + "/v1/chat/completions", json=body)
    elapsed = (time.perf_counter() - started) * 1000
    if r.status_code != 200:
        return {"role": "assistant", "content": None, "error": f"{r.status_code} {r.text[:200]}"}, elapsed, {}
    reply = r.json()
    return reply["choices"][0]["message"], elapsed, reply.get("litegate") or {}


def summarize(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    if not rows:
        return {}
    latency = sorted(r["latency_ms"] for r in rows)
    reasons: dict[str, int] = {}
    for r in rows:
        if r[key] is not None:
            reasons[r[key].split("_for_")[0]] = reasons.get(r[key].split("_for_")[0], 0) + 1
    return {"n": len(rows), "accuracy": round(sum(r[key] is None for r in rows) / len(rows), 3),
            "called": round(sum(r["n_calls"] > 0 for r in rows) / len(rows), 3),
            "latency_ms_p50": round(statistics.median(latency), 1),
            "latency_ms_p90": round(latency[min(len(latency) - 1, int(0.9 * len(latency)))], 1),
            "errors": dict(sorted(reasons.items(), key=lambda kv: -kv[1]))}


def summary(rows: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    """Per peer and category; for the raw peer also the accuracy when calls written in its text count."""
    results: dict[str, Any] = {}
    for peer, by_category in rows.items():
        results[peer] = {c: summarize(r, "verdict") for c, r in by_category.items()}
        for c, r in by_category.items():
            if all("text_verdict" in x for x in r):
                results[peer][c]["accuracy_text_calls"] = summarize(r, "text_verdict")["accuracy"]
    return results


def start_servers(threads: int | None, raw: bool = True) -> tuple[dict[str, str], list[subprocess.Popen]]:
    from litegate.config import Settings
    from litegate.engine.catalog import LITE, ModelCache

    settings = Settings()
    model = ModelCache(settings.home).ensure(LITE)
    threads = threads or settings.threads
    ctx, parallel = 8192, 1
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs, bases = [], {}
    port = free_port()
    procs.append(subprocess.Popen([sys.executable, "-m", "litegate.cli", "serve", "--port", str(port), "--threads",
                                   str(threads), "--ctx", str(ctx), "--parallel", str(parallel)], **quiet))
    bases["litegate"] = f"http://127.0.0.1:{port}"
    if raw:
        port = free_port()
        procs.append(subprocess.Popen([sys.executable, str(Path(__file__).parent / "serve.py"), "--serve-raw",
                                       str(model), str(port), str(threads), str(ctx), str(parallel), "4"], **quiet))
        bases["llama.cpp"] = f"http://127.0.0.1:{port}"
    for (name, base), proc in zip(bases.items(), procs):
        wait_ready(base, proc, name)
    return bases, procs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, help="BFCL's bfcl_eval/data folder (non-live files)")
    ap.add_argument("--categories", nargs="*", default=["simple", "multiple", "parallel", "parallel_multiple",
                                                         "irrelevance"], choices=list(CATEGORIES))
    ap.add_argument("--split", choices=["untouched", "tuning", "all"], default="untouched")
    ap.add_argument("--limit", type=int, default=0, help="at most N items per category (the first by id hash)")
    ap.add_argument("--start", action="store_true", help="start litegate and raw llama.cpp on free ports")
    ap.add_argument("--litegate", help="base URL of a running litegate server")
    ap.add_argument("--raw", help="base URL of a running raw llama.cpp server (the peer)")
    ap.add_argument("--pro", type=int, default=0, metavar="N",
                    help="also run model 'pro' on the litegate server, on the first N items of each category")
    ap.add_argument("--no-raw", action="store_true", help="with --start: litegate only (no raw llama.cpp peer)")
    ap.add_argument("--raw-limit", type=int, default=0, metavar="N",
                    help="run the raw llama.cpp peer on only the first N items of each category (0: all)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--max-tokens", type=int, default=384)
    ap.add_argument("--interleave", action="store_true",
                    help="one item of each category in turn (a run cut short still covers every category)")
    ap.add_argument("--resume", action="store_true",
                    help="append to --dump, leaving out the items it already holds (the summary covers this run)")
    ap.add_argument("--dump", type=Path, help="write every item's reply, verdict and decision signals (JSONL)")
    ap.add_argument("--summarize", type=Path, nargs="*", help="only summarize earlier --dump files (a cut-short run)")
    args = ap.parse_args()
    if args.summarize:
        dumped = [json.loads(line) for path in args.summarize for line in path.read_text().splitlines() if line]
        by_peer: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for row in dumped:
            by_peer.setdefault(row["peer"], {}).setdefault(row["category"], []).append(row)
        loads = [row["load_1m"] for row in dumped if "load_1m" in row]
        print(json.dumps({"bench": "bfcl", "from_dumps": [str(p) for p in args.summarize],
                          "splits": sorted({row["split"] for row in dumped}), "results": summary(by_peer),
                          "machine": {"cpus": os.cpu_count(),
                                      "load_1m_median_during": round(statistics.median(loads), 2) if loads else None}},
                         indent=2))
        return
    if args.data is None:
        raise SystemExit("give --data: BFCL's bfcl_eval/data folder")

    procs: list[subprocess.Popen] = []
    bases: dict[str, str] = {}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: the servers it started stop too
    if args.start:
        bases, procs = start_servers(args.threads, raw=not args.no_raw)
    if args.litegate:
        bases["litegate"] = args.litegate.rstrip("/")
    if args.raw:
        bases["llama.cpp"] = args.raw.rstrip("/")
    if not bases:
        raise SystemExit("give --start, or --litegate and/or --raw URLs")
    peers = [(name, base, "lite") for name, base in bases.items()]
    if args.pro and "litegate" in bases:
        peers.insert(1, ("litegate-pro", bases["litegate"], "pro"))
    load_start = os.getloadavg()
    loads: list[float] = []
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {p[0]: {} for p in peers}
    done = set()
    if args.resume and args.dump and args.dump.exists():  # the rows an earlier, cut-short run dumped
        done = {(row["peer"], row["id"]) for row in map(json.loads, args.dump.read_text().splitlines()) if row}
    dump = args.dump.open("a" if args.resume else "w") if args.dump else None
    try:
        with httpx.Client(timeout=900) as client:
            for category, k, item in ordered(args.data, args.categories, args.split, args.limit, args.interleave):
                _, names = openai_tools(item["function"])
                for peer, base, model in peers:
                    if model == "pro" and k >= args.pro or peer == "llama.cpp" and args.raw_limit \
                            and k >= args.raw_limit or (peer, item["id"]) in done:
                        continue
                    message, ms, meta = ask(client, base, model, item, args.max_tokens)
                    calls = calls_of(message, names)
                    row = {"id": item["id"], "split": item["split"], "latency_ms": round(ms, 1),
                           "n_calls": len(calls), "verdict": check(item, calls, category)}
                    if peer == "llama.cpp":
                        row["text_verdict"] = check(item, calls or text_calls(message.get("content"), names),
                                                    category)
                    rows[peer].setdefault(category, []).append(row)
                    loads.append(os.getloadavg()[0])
                    if dump:
                        dump.write(json.dumps({"peer": peer, "category": category, **row, "calls": calls,
                                               "load_1m": round(loads[-1], 2),
                                               "content": (message.get("content") or "")[:300],
                                               "error": message.get("error"),
                                               "decision": meta.get("tool_decision")}) + "\n")
                        dump.flush()
                print(f"{category} {item['id']} done", file=sys.stderr, flush=True)
    finally:
        if dump:
            dump.close()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()

    results = summary(rows)
    print(json.dumps({
        "bench": "bfcl", "split": args.split, "limit": args.limit, "categories": args.categories,
        "results": results,
        "machine": {"cpus": os.cpu_count(), "load_avg_start": [round(x, 2) for x in load_start],
                    "load_1m_median_during": round(statistics.median(loads), 2) if loads else None,
                    "load_avg_end": [round(x, 2) for x in os.getloadavg()]},
        "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }, indent=2))


if __name__ == "__main__":
    main()
