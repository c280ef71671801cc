"""How many calls the fan-out asks for, and whether argument values are put in place, on BFCL's
due calls themselves: no model, no server, seconds.

    python bench/bfcl_fanout.py --data DIR [--split tuning|untouched|all] [--show N]

For every item of the non-live categories with a due answer (simple, multiple, parallel,
parallel_multiple; BFCL's data, Apache-2.0, not copied here), the due calls stand in for the
model's (each argument's first accepted value):

- ``count_from_first``: with only the first due call made, the fan-out asks for exactly the due
  number of calls (one due call: asks for none);
- ``count_when_done``: with every due call made, it asks for nothing more;
- ``direction``: a due call is never changed by ``chat/direction.py`` (``false_exchanges``),
  and of every pair of its numeric arguments with different values, written the wrong way
  round, how many are put back (``put_back`` of ``swapped_pairs``).

Prints one JSON object per split. The end-to-end figures (the model's own calls) come from
bench/bfcl.py.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bfcl import load, openai_tools  # noqa: E402
from litegate.chat import fanout  # noqa: E402
from litegate.chat.decision import last_user_text  # noqa: E402
from litegate.chat.direction import put_right  # noqa: E402
from litegate.chat.tools import MAX_PARALLEL_CALLS, parse_tools  # noqa: E402

CATEGORIES = ["simple", "multiple", "parallel", "parallel_multiple"]


def _first(options: list[Any]) -> Any:
    return next((o for o in options if o != ""), None)


def due_calls(item: dict[str, Any], names: dict[str, str]) -> list[dict[str, Any]]:
    """The item's due calls as a model would write them (tool names as served, first accepted values)."""
    served = {bfcl_name: name for name, bfcl_name in names.items()}
    out = []
    for truth in item["truth"]:
        name, options = next(iter(truth.items()))
        args = {k: _first(v) for k, v in options.items() if _first(v) is not None}
        out.append({"name": served[name], "arguments": args})
    return out


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def direction_counts(calls: list[dict[str, Any]], request: str) -> dict[str, int]:
    counts = {"calls": len(calls), "false_exchanges": 0, "swapped_pairs": 0, "put_back": 0}
    for call in calls:
        args = call["arguments"]
        counts["false_exchanges"] += put_right(call, request) != call
        numeric = [k for k, v in args.items() if _numeric(v)]
        for p, q in itertools.combinations(numeric, 2):
            if args[p] != args[q]:
                swapped = dict(args, **{p: args[q], q: args[p]})
                counts["swapped_pairs"] += 1
                counts["put_back"] += put_right(dict(call, arguments=swapped), request)["arguments"] == args
    return counts


def run(data: Path, split: str, show: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    shown = 0
    for category in CATEGORIES:
        row = {"items": 0, "count_from_first": 0, "count_when_done": 0}
        direction = {"calls": 0, "false_exchanges": 0, "swapped_pairs": 0, "put_back": 0}
        for item in load(data, category):
            if split != "all" and item["split"] != split or not item["truth"]:
                continue
            tools, names = openai_tools(item["function"])
            functions, request = parse_tools(tools), last_user_text(item["question"][0]) or ""
            calls, due = due_calls(item, names), len(item["truth"])
            from_first = fanout.calls_wanted(request, functions, calls[:1], MAX_PARALLEL_CALLS) or 1
            when_done = fanout.calls_wanted(request, functions, calls, MAX_PARALLEL_CALLS) or due
            row["items"] += 1
            row["count_from_first"] += from_first == due
            row["count_when_done"] += when_done == due
            if (from_first != due or when_done != due) and shown < show:
                shown += 1
                print(json.dumps({"id": item["id"], "due": due, "from_first": from_first, "when_done": when_done,
                                  "left_when_done": [list(k) for k in fanout.left_over(request, functions, calls)]}),
                      file=sys.stderr)
            for key, n in direction_counts(calls, request).items():
                direction[key] += n
        results[category] = {**row, "direction": direction}
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True, help="BFCL's bfcl_eval/data folder (non-live files)")
    ap.add_argument("--split", choices=["tuning", "untouched", "all"], default="tuning")
    ap.add_argument("--show", type=int, default=0, help="print the first N items counted wrong (stderr)")
    args = ap.parse_args()
    print(json.dumps({"bench": "bfcl_fanout", "split": args.split, "results": run(args.data, args.split, args.show)},
                     indent=2))


if __name__ == "__main__":
    main()
