"""How often `tool_choice: "auto"` makes the right decision: call a tool (and the right one)
or answer in text, on the labeled sets in litegate/chat/tool_cases.py: the tuning set (36
prompts, 8 tools; the decision's thresholds were chosen on it), a held-out set (30 prompts,
8 other tools, written before any change was measured on it) and a second held-out set (30
prompts, 8 more tools, written before the argument-grounding check was measured on it).

    python bench/tool_choice.py [--model lite] [--set tuning|heldout|heldout2|all] [--every N]

Runs each prompt through the chat service (the path every front end takes) on the local
model, greedy, and prints one JSON object: decision accuracy, right-tool accuracy among
correct calls, latency, and the per-case outcomes that went wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from litegate.chat import ChatCall, ChatCompletionRequest
from litegate.chat.tool_cases import CASES, HELDOUT2_CASES, HELDOUT_CASES
from litegate.config import Settings
from litegate.runtime import build


def run_set(rt, cases: list, max_tokens: int) -> dict:
    right = called_right_tool = calls_expected = 0
    latency, wrong, decisions = [], [], []
    for messages, tools, expected in cases:
        req = ChatCompletionRequest(messages=messages, tools=tools, tool_choice="auto", temperature=0,
                                    max_tokens=max_tokens)
        started = time.perf_counter()
        result = rt.chat.run_sync(ChatCall(req))
        latency.append((time.perf_counter() - started) * 1000)
        message = result["choices"][0]["message"]
        calls = message.get("tool_calls") or []
        decided = calls[0]["function"]["name"] if calls else None
        ok = (decided is None) == (expected is None)
        right += ok
        if expected is not None:
            calls_expected += 1
            called_right_tool += decided == expected
        signals = (result.get("litegate") or {}).get("tool_decision") or {}
        decisions.append({"prompt": messages[0]["content"][:60], "expected": expected, "got": decided, **signals})
        if not ok or (expected is not None and decided != expected):
            wrong.append({"prompt": messages[0]["content"][:60], "expected": expected, "got": decided,
                          "text": (message.get("content") or "")[:60], **signals})
    return {"cases": len(cases), "decision_accuracy": round(right / len(cases), 3),
            "right_decisions": right,
            "right_tool_when_a_call_was_due": round(called_right_tool / max(calls_expected, 1), 3),
            "latency_ms_p50": round(statistics.median(latency), 1), "wrong": wrong, "decisions": decisions}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="lite")
    ap.add_argument("--max-tokens", type=int, default=120)
    ap.add_argument("--every", type=int, default=1, help="only every Nth case of each set (a quick check)")
    ap.add_argument("--set", choices=["tuning", "heldout", "heldout2", "all"], default="all",
                    help="tuning: the cases decision rules were chosen on; heldout, heldout2: sets never tuned on")
    args = ap.parse_args()
    load = os.getloadavg()
    sets = {"tuning": CASES, "heldout": HELDOUT_CASES, "heldout2": HELDOUT2_CASES}
    chosen = list(sets) if args.set == "all" else [args.set]
    out: dict = {"bench": "tool_choice_auto", "model": args.model}
    with tempfile.TemporaryDirectory() as tmp:
        rt = build(Settings(home=Path(tmp)), model=args.model, record=False)
        rt.registry.engine(rt.default_model)
        time.sleep(3)
        for name in chosen:
            out[name] = run_set(rt, sets[name][::args.every], args.max_tokens)
        rt.close()
    if len(chosen) > 1:
        right = sum(out[n]["right_decisions"] for n in chosen)
        total = sum(out[n]["cases"] for n in chosen)
        out["decision_accuracy_all"] = round(right / total, 3)
    out["machine"] = {"cpus": os.cpu_count(), "load_avg_start": [round(x, 2) for x in load],
                      "load_avg_end": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
