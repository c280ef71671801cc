"""Label probabilities from one generation: by token id (local tiers) and by token text
(remote tiers)."""

from __future__ import annotations

import math

import pytest

from litegate.tiers.scoring import LabelScorer, gbnf_alternatives, text_label_distribution, text_only_distribution


class TokenEngine:
    """Tokenizes by a fixed table and answers with scripted log-probability steps."""

    def __init__(self, vocab: dict[str, list[int]], steps: list[dict]):
        self.vocab, self.steps, self.bodies = vocab, steps, []

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        return self.vocab[text]

    def run(self, kind: str, body: dict) -> dict:
        self.bodies.append(body)
        return {"choices": [{"message": {"content": ""}, "logprobs": {"content": self.steps}}], "usage": {}}


def id_step(chosen: int, probs: dict[int, float]) -> dict:
    return {"id": chosen, "logprob": math.log(probs[chosen]),
            "top_logprobs": [{"id": t, "logprob": math.log(p)} for t, p in probs.items()]}


def test_labels_sharing_a_first_token_split_its_mass_along_the_path() -> None:
    vocab = {"card_declined": [1, 2], "card_lost": [1, 3], "cash_back": [4]}
    engine = TokenEngine(vocab, [id_step(1, {1: 0.6, 4: 0.3, 9: 0.1}), id_step(3, {3: 0.75, 2: 0.25})])
    scorer = LabelScorer(engine, list(vocab))
    scores, _ = scorer.score([{"role": "user", "content": "x"}])
    first = 0.6 / 0.9  # token 9 leads to no label: renormalised over the label set
    assert scores["card_lost"] == pytest.approx(first * 0.75)
    assert scores["card_declined"] == pytest.approx(first * 0.25)
    assert scores["cash_back"] == pytest.approx(0.3 / 0.9)
    body = engine.bodies[0]
    assert body["grammar"] == gbnf_alternatives(list(vocab)) and body["max_tokens"] == 4 and body["temperature"] == 0


def test_a_label_the_path_ran_past_loses_to_the_longer_one() -> None:
    vocab = {"pay": [5], "payment": [5, 6]}
    engine = TokenEngine(vocab, [id_step(5, {5: 1.0}), id_step(6, {6: 0.9, 7: 0.1})])
    scores = LabelScorer(engine, list(vocab)).distribution(engine.steps)
    assert scores["payment"] > 0.9 > scores["pay"] > 0


def test_grammar_lists_labels_as_json_strings() -> None:
    assert gbnf_alternatives(['a "b"', "c"]) == 'root ::= "a \\"b\\"" | "c"'


def text_step(token: str, alts: dict[str, float]) -> dict:
    return {"token": token, "logprob": math.log(alts[token]),
            "top_logprobs": [{"token": t, "logprob": math.log(p)} for t, p in alts.items()]}


def test_text_label_walk() -> None:
    labels = ["card_declined", "card_lost", "cash_back"]
    steps = [text_step("card", {"card": 0.8, "cash": 0.15, "hello": 0.05}),
             text_step("_lost", {"_lost": 0.9, "_decl": 0.1}),
             text_step("<|im_end|>", {"<|im_end|>": 1.0})]
    scores = text_label_distribution(labels, steps)
    # "hello" leads to no label: renormalised over card (0.8) and cash (0.15)
    assert scores["cash_back"] == pytest.approx(0.15 / 0.95, rel=1e-6)
    assert scores["card_lost"] == pytest.approx(0.8 / 0.95 * 0.9, rel=1e-6)
    assert scores["card_declined"] == pytest.approx(0.8 / 0.95 * 0.1, rel=1e-6)


def test_a_reply_that_leaves_the_labels() -> None:
    # as under a grammar, the alternatives that lead to labels share the mass; none at all
    # gives the uniform distribution
    assert text_label_distribution(["yes", "no"], [text_step("maybe", {"maybe": 0.9, "yes": 0.1})]) == \
        {"yes": 1.0, "no": 0.0}
    assert text_label_distribution(["yes", "no"], [text_step("maybe", {"maybe": 1.0})]) == {"yes": 0.5, "no": 0.5}


def test_quotes_case_and_trailing_punctuation_still_name_the_label() -> None:
    scores = text_label_distribution(["Billing", "Bug"], [text_step('"billing".', {'"billing".': 0.7, "Bug": 0.3})])
    assert scores["Billing"] == pytest.approx(0.7) and scores["Bug"] == pytest.approx(0.3)


def test_without_log_probabilities_the_named_label_takes_all() -> None:
    assert text_only_distribution(["a", "b"], " b.") == {"a": 0.0, "b": 1.0}
    assert text_only_distribution(["a", "b"], "neither") == {"a": 0.5, "b": 0.5}
