"""Label probabilities from one constrained generation.

The model is asked to answer with one of the label names, and a grammar lets it emit
nothing else. Greedy decoding walks one label; the top log-probabilities returned at each
step also price every other label: at the first step each label's first token carries the
mass of all labels that start with it, and along the chosen path later steps split that
mass further. Labels that share a prefix off the chosen path share its mass evenly. The
probabilities are renormalised over the label set (the grammar's view), never over the
whole vocabulary, and no one asks the model to print a number.
"""

from __future__ import annotations

import json
import math
from typing import Any

from litegate.engine import LlamaEngine

TOP_LOGPROBS = 20
UNCHOSEN_END = 0.05  # weight of a label the path ran past (its end-of-answer was not taken)


def gbnf_alternatives(options: list[str]) -> str:
    return "root ::= " + " | ".join(json.dumps(o, ensure_ascii=False) for o in options)


class LabelScorer:
    """Scores a fixed label set on one engine; tokenisations are computed once."""

    def __init__(self, engine: LlamaEngine, labels: list[str]):
        self.engine = engine
        self.labels = labels
        self.tokens = [engine.tokenize(label) for label in labels]
        self.grammar = gbnf_alternatives(labels)
        self.max_len = max(len(t) for t in self.tokens)

    def score(self, messages: list[dict[str, Any]],
              max_tokens: int | None = None) -> tuple[dict[str, float], dict[str, Any]]:
        """(label -> probability, raw engine response) for a chat whose reply is a label;
        ``max_tokens`` below the longest label prices only that many steps."""
        body = {"messages": messages, "max_tokens": max_tokens or self.max_len + 2, "temperature": 0.0, "logprobs": True,
                "top_logprobs": TOP_LOGPROBS, "grammar": self.grammar}
        result = self.engine.run("chat", body)
        content = result["choices"][0].get("logprobs", {}).get("content") or []
        return self.distribution(content), result

    def distribution(self, steps: list[dict[str, Any]]) -> dict[str, float]:
        n = len(self.labels)
        mass = [1.0] * n  # probability of each label's path, as far as it can be priced
        alive = list(range(n))  # labels consistent with the generated prefix
        for t, step in enumerate(steps):
            top = {int(item["id"]): math.exp(item["logprob"]) for item in step.get("top_logprobs", [])}
            chosen = int(step.get("id", -1))
            groups: dict[int, list[int]] = {}
            for i in alive:
                if t < len(self.tokens[i]):
                    groups.setdefault(self.tokens[i][t], []).append(i)
            ended = [i for i in alive if t >= len(self.tokens[i])]
            if not groups:
                break
            if ended:
                # the path went on past labels that were already complete: they lose
                for i in ended:
                    mass[i] *= UNCHOSEN_END
            floor = min(top.values()) * 0.5 if top else 1e-9  # unlisted tokens rank below the listed
            weights = {tok: top.get(tok, floor) for tok in groups}
            total = sum(weights.values())
            for tok, members in groups.items():
                share = weights[tok] / total
                if tok != chosen:
                    share /= len(members)  # off the path: members split their prefix's mass evenly
                for i in members:
                    mass[i] *= share
            if chosen not in groups:
                alive = []
                break  # the model spelled the label differently; keep what is priced
            alive = groups[chosen]
        # the path stopped: labels it completed win over longer ones that share its prefix
        complete = [i for i in alive if len(self.tokens[i]) <= len(steps)]
        if complete:
            for i in alive:
                if i not in complete:
                    mass[i] *= UNCHOSEN_END
        total = sum(mass)
        if total <= 0:
            return {label: 1.0 / n for label in self.labels}
        return {label: mass[i] / total for i, label in enumerate(self.labels)}
