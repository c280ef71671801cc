"""How often `tool_choice: "auto"` makes the right decision: call a tool (and the right one)
or answer in text, on the labeled set in litegate/chat/tool_cases.py (36 prompts, 8 tools).

    python bench/tool_choice.py [--model lite] [--threshold T ...]

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
from litegate.chat.tool_cases import CASES
from litegate.config import Settings
from litegate.runtime import build


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="lite")
    ap.add_argument("--max-tokens", type=int, default=120)
    args = ap.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        rt = build(Settings(home=Path(tmp)), model=args.model, record=False)
        rt.registry.engine(rt.default_model)
        time.sleep(3)
        right = called_right_tool = calls_expected = 0
        latency, wrong, cases = [], [], []
        for messages, tools, expected in CASES:
            req = ChatCompletionRequest(messages=messages, tools=tools, tool_choice="auto", temperature=0,
                                        max_tokens=args.max_tokens)
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
            cases.append({"prompt": messages[0]["content"][:60], "expected": expected, "got": decided,
                          **((result.get("litegate") or {}).get("tool_decision") or {})})
            if not ok or (expected is not None and decided != expected):
                wrong.append({"prompt": messages[0]["content"][:60], "expected": expected, "got": decided,
                              "text": (message.get("content") or "")[:60],
                              "p_call": (result.get("litegate") or {}).get("tool_decision")})
        rt.close()
    print(json.dumps({
        "bench": "tool_choice_auto", "model": args.model, "cases": len(CASES),
        "decision_accuracy": round(right / len(CASES), 3),
        "right_tool_when_a_call_was_due": round(called_right_tool / max(calls_expected, 1), 3),
        "latency_ms_p50": round(statistics.median(latency), 1), "wrong": wrong, "decisions": cases,
        "machine": {"cpus": os.cpu_count(), "load_avg_start": [round(x, 2) for x in load],
                    "load_avg_end": [round(x, 2) for x in os.getloadavg()]}}, indent=2))


if __name__ == "__main__":
    main()
