"""Label probabilities, below both the tasks and the tiers.

Two ways to price every label from one generation:

- by token id (local tiers): the model answers with one of the label names under a grammar
  that allows nothing else; greedy decoding walks one label, and the top log-probabilities at
  each step price the others (``LabelScorer``);
- by token text (remote tiers, whose token ids are unknown): the same walk over the returned
  top log-probabilities, matching alternatives to labels by their text
  (``text_label_distribution``); a provider without log-probabilities gives the named label
  all the mass (``text_only_distribution``).

Probabilities are renormalised over the label set (the grammar's view), never over the whole
vocabulary, and no one asks the model to print a number.
"""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
        body = {"messages": messages, "max_tokens": max_tokens or self.max_len + 2, "temperature": 0.0,
                "logprobs": True, "top_logprobs": TOP_LOGPROBS, "grammar": self.grammar}
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


# -- by token text ------------------------------------------------------------------------

_SPECIAL = re.compile(r"<\|[^|>]*\|>|</?s>")
_TRAILING = " \t\r\n\"'.,;:!?)]}"


def _consistent(prefix: str, label: str) -> bool:
    """Whether generated text ``prefix`` can still be (or already is) ``label``."""
    p = prefix.lstrip(" \t\r\n\"'`").casefold()
    lab = label.casefold()
    if lab.startswith(p):
        return True
    return p.startswith(lab) and not p[len(lab):].strip(_TRAILING)


def text_label_distribution(labels: list[str], steps: list[dict[str, Any]]) -> dict[str, float]:
    """Label probabilities from OpenAI-shaped logprobs whose tokens are known only as text.

    Along the generated path, each step's alternatives give the labels they lead to their
    probability (renormalised over the alternatives that lead to some label: the label set's
    view); an alternative off the path splits its mass evenly between the labels it leads
    to. The path's own mass goes to the label it completes. A path that leaves the labels
    (the model wrote something else) leaves its mass to the alternatives that did not.
    """
    n = len(labels)
    final = [0.0] * n
    path = 1.0
    prefix = ""
    alive = list(range(n))
    for step in steps:
        chosen = _SPECIAL.sub("", step.get("token") or "")
        alts: dict[str, float] = {}
        for item in step.get("top_logprobs") or []:
            tok = _SPECIAL.sub("", item.get("token") or "")
            alts[tok] = alts.get(tok, 0.0) + math.exp(item.get("logprob", -50.0))
        alts.setdefault(chosen, math.exp(step.get("logprob", 0.0)))
        members = {a: [i for i in alive if _consistent(prefix + a, labels[i])] for a in alts}
        useful = {a: p for a, p in alts.items() if members[a]}
        total = sum(useful.values())
        for a, p in useful.items():
            if a != chosen:
                for i in members[a]:
                    final[i] += path * (p / total) / len(members[a])
        if chosen not in useful:
            # the model wrote something that is no label: as under a grammar, the
            # alternatives that lead to labels share the path's mass
            path, alive = 0.0, []
            break
        path *= useful[chosen] / total
        prefix += chosen
        alive = members[chosen]
        if len(alive) == 1 or not chosen:
            break
    done = [i for i in alive if _consistent(prefix, labels[i]) and prefix.strip(_TRAILING).casefold()
            .lstrip(" \"'`") == labels[i].casefold()]
    for i in done or alive:
        final[i] += path / len(done or alive)  # (nothing when the walk left the labels)
    total = sum(final)
    if total <= 0:
        return {label: 1.0 / n for label in labels}
    return {label: final[i] / total for i, label in enumerate(labels)}


def text_only_distribution(labels: list[str], text: str) -> dict[str, float]:
    """No log-probabilities: the label the reply names gets everything (calibration then
    learns how far to trust such a tier); a reply naming no label gets the uniform
    distribution, whose low confidence escalates or goes to human review."""
    named = [i for i, label in enumerate(labels) if _consistent(text.strip(), label)
             and text.strip().strip(_TRAILING).lstrip(" \"'`").casefold() == label.casefold()]
    if len(named) != 1:
        return {label: 1.0 / len(labels) for label in labels}
    return {label: float(i == named[0]) for i, label in enumerate(labels)}
