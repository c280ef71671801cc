"""The encoder registry (built once, injected; each kind made once; a model loads with the
encoder it was trained with) and the per-request memo (a cascaded extract request reads its
extractor once and encodes its text once), over the real app with fake encoders."""

from __future__ import annotations

import inspect
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fakes import FakeEncoder, FakeEngine, FakeRegistry, runtime
from fastapi.testclient import TestClient

from litegate.config import Settings
from litegate.configfile import Config
from litegate.errors import InvalidRequest
from litegate.nano.encoder import MiniLMEncoder
from litegate.nano.encoders import KINDS, Encoder, EncoderRegistry, MemoEncoder, looks_english
from litegate.nano.versions import VersionedStore
from litegate.runtime import build
from litegate.server import create_app
from litegate.tasks.cascade import CascadePolicy, Step

INTENTS = [{"text": t, "label": "weather"} for t in ("will it rain today", "is it sunny outside", "snow forecast")] + \
          [{"text": t, "label": "music"} for t in ("play some jazz", "put on a song", "next track please")]


class CountingEncoder(FakeEncoder):
    """A fake encoder that counts, per text, what it was asked to encode."""

    def __init__(self) -> None:
        self.sentences: Counter[str] = Counter()
        self.tokens: Counter[str] = Counter()

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        self.sentences.update(texts)
        return super().encode(texts, batch_size)

    def encode_tokens(self, texts: list[str], layer: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        self.tokens.update(texts)
        return super().encode_tokens(texts, layer)


def test_the_fakes_and_the_real_encoders_have_the_protocols_methods() -> None:
    for cls in (FakeEncoder, MiniLMEncoder, MemoEncoder):
        for method in ("encode", "encode_tokens", "count_tokens"):
            assert callable(getattr(cls, method)), (cls, method)
    real = inspect.signature(MiniLMEncoder.encode_tokens).parameters
    assert list(inspect.signature(FakeEncoder.encode_tokens).parameters)[:3] == list(real)[:3]
    assert isinstance(FakeEncoder(), Encoder)


def test_each_kind_is_made_once_even_when_asked_at_the_same_moment() -> None:
    made: list[Any] = []

    def factory() -> FakeEncoder:
        made.append(1)
        return FakeEncoder()

    registry = EncoderRegistry(factory=factory)
    threads = [threading.Thread(target=registry.get, args=("accurate",)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1
    assert registry.get("fast") is registry.get(None) is registry.default is not registry.get("accurate")
    assert len(made) == 2


def test_names_resolve_to_kinds_and_unknown_ones_are_refused() -> None:
    registry = EncoderRegistry()
    assert registry.resolve("all-MiniLM-L6-v2") == "fast"  # versions trained before the registry
    assert registry.resolve("all-mpnet-base-v2") == "accurate" and registry.resolve(None) == "fast"
    with pytest.raises(InvalidRequest, match="unknown encoder 'huge'; encoders: fast, accurate, multilingual"):
        registry.resolve("huge")
    with pytest.raises(InvalidRequest, match="sentence vectors only"):
        registry.choose("multilingual", ["a text"], words=True)
    assert {row["name"] for row in registry.describe()} == set(KINDS)
    assert not any(row["loaded"] for row in registry.describe())  # describing builds nothing


def test_auto_picks_the_multilingual_encoder_for_texts_not_in_english() -> None:
    registry = EncoderRegistry()
    english = ["what is the weather like today", "play my workout playlist", "how do I reset my password"]
    french = ["quel temps fait-il aujourd'hui", "mets ma playlist de sport", "comment changer mon mot de passe"]
    german = ["wie wird das Wetter morgen", "spiel meine Musik", "ich habe mein Passwort vergessen"]
    japanese = ["今日の天気は", "音楽をかけて", "パスワードを忘れました"]
    assert looks_english(english) and not any(looks_english(t) for t in (french, german, japanese))
    assert registry.choose("auto", english) == "fast"
    assert registry.choose("auto", german) == "multilingual"
    assert registry.choose("auto", german, words=True) == "fast"  # extractors need word vectors


def test_a_classifier_records_its_encoder_and_answers_with_it(tmp_path: Path) -> None:
    rt = runtime(tmp_path)
    try:
        client = TestClient(create_app(rt))
        r = client.post("/v1/classifiers", json={"name": "intents", "examples": INTENTS, "encoder": "accurate"})
        assert r.status_code == 201 and r.json()["encoder"] == "accurate", r.text
        accurate = rt.encoders.get("accurate")
        before = accurate.encode  # count the calls the accurate instance gets from here on
        calls: list[list[str]] = []
        accurate.encode = lambda texts, **kw: (calls.append(texts), before(texts, **kw))[1]
        out = client.post("/v1/tasks/classify", json={"text": "play a song", "classifier": "intents",
                                                       "tier": "nano"}).json()
        assert out["label"] == "music" and calls == [["play a song"]]
        r = client.post("/v1/classifiers", json={"name": "x", "examples": INTENTS, "encoder": "huge"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "encoder"
        r = client.post("/v1/extractors", json={"name": "x", "examples": [{"text": "pay Ann", "data": {"p": "Ann"}}],
                                                 "encoder": "multilingual"})
        assert r.status_code == 400 and "sentence vectors only" in r.json()["error"]["message"]
        listed = client.get("/v1/encoders").json()["data"]
        assert [e["name"] for e in listed] == ["fast", "accurate", "multilingual"] and listed[0]["default"]
        assert [e["classifier_layers"] for e in listed] == [[6, 4], [12, 10], None]
    finally:
        rt.close()


def test_a_cascaded_extract_request_reads_its_extractor_once_and_encodes_its_text_once(
        tmp_path: Path, monkeypatch) -> None:
    tokens = [('{"amount":"', -0.01), ("31 euros", -0.1), ('"}', 0.0)]
    encoder = CountingEncoder()
    rt = build(Settings(home=tmp_path), Config(tiers=[]),
               registry=FakeRegistry({"lite": FakeEngine(lambda b: tokens)}), encoder_factory=lambda: encoder)
    try:
        examples = [{"text": f"please send {n} euros to Ann today", "data": {"amount": f"{n} euros"}}
                    for n in range(2, 30)]
        rt.extractors.train("pay", examples, fields={"amount": "money"}, learn=True)
        # nano is never sure enough: the call escalates to lite, which learns from the extractor
        rt.policies.save(CascadePolicy(task="extract", steps=[Step("nano", 1.01, escalate=True), Step("lite", 0.0)]))
        listed: list[str] = []
        versions = VersionedStore.versions
        monkeypatch.setattr(VersionedStore, "versions",
                            lambda self, name: (listed.append(name), versions(self, name))[1])
        text = "please send 31 euros to Bob today"
        out = rt.tasks.run("extract", {"text": text, "extractor": "pay"})
        rt.learner.flush()
        assert out["escalated_from"] == "nano" and out["tier"] == "lite" and out["data"]["amount"] == "31 euros"
        assert (encoder.sentences[text], encoder.tokens[text]) == (1, 1)  # nano's words; lite's examples + learner
        assert listed == ["pay"]
        # the learner recorded the call (and its typicality, from the memo) after listing nothing
        assert sum(d["calls"] for d in rt.learner.curve("extractor", "pay")["days"]) == 1
    finally:
        rt.close()


def test_embeddings_pick_the_encoder_by_name_and_refuse_unknown_ones(tmp_path: Path) -> None:
    rt = runtime(tmp_path)
    try:
        client = TestClient(create_app(rt))
        r = client.post("/v1/embeddings", json={"input": ["hello there"], "model": "all-mpnet-base-v2"})
        assert r.status_code == 200, r.text
        assert r.json()["model"] == "all-mpnet-base-v2" and "accurate" in rt.encoders._built
        assert "multilingual" not in rt.encoders._built  # only what is asked for is made
        r = client.post("/v1/embeddings", json={"input": ["hello there"], "model": "nano"})
        assert r.status_code == 200 and r.json()["model"] == "all-minilm-l6-v2"
        r = client.post("/v1/embeddings", json={"input": ["hello"], "model": "text-embedding-3-large"})
        assert r.status_code == 404 and "all-mpnet-base-v2" in r.json()["error"]["message"]
    finally:
        rt.close()
