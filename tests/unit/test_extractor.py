"""The nano extractor (CRF over lexical features and encoder similarities), its store, and the
extract task on the nano tier — with a fake encoder, so in seconds."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from fakes import FakeEncoder, runtime
from fastapi.testclient import TestClient

from litegate.errors import ExtractorNotFound, InvalidRequest
from litegate.nano.encoders import EncoderRegistry
from litegate.nano.extractor import ExtractorStore, NanoExtractor, check_examples
from litegate.server import create_app
from litegate.tasks.extract import grounded_grammar

NAMES = ["Ann Lee", "Bob Stone", "Cara Diaz", "Dan Ross", "Eve Park", "Finn Hale", "Gus Moore", "Hana Kim"]


def examples(n: int = 40, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        amount, name = f"{rng.randint(2, 900)} euros", rng.choice(NAMES)
        form = rng.randrange(3)
        if form == 0:
            out.append({"text": f"please send {amount} to {name} today", "data": {"amount": amount, "person": name}})
        elif form == 1:
            out.append({"text": f"I paid {name} yesterday", "data": {"person": name}})
        else:
            out.append({"text": f"transfer {amount} now please", "data": {"amount": amount}})
    return out


@pytest.fixture(scope="module")
def trained() -> NanoExtractor:
    return NanoExtractor.train("pay", examples(), FakeEncoder(), fields={"amount": "money", "person": "who"})


def test_it_learns_to_copy_values_it_never_saw(trained: NanoExtractor) -> None:
    [out] = trained.predict(["please send 777 euros to Ivo Marsh today"], FakeEncoder())
    assert out["data"] == {"amount": "777 euros", "person": "Ivo Marsh"}
    assert out["spans"]["amount"] == [12, 21]
    assert all(0.0 <= c <= 1.0 for c in out["field_confidence"].values())
    assert out["confidence"] == min(out["field_confidence"].values())
    [none] = trained.predict(["what is my balance"], FakeEncoder())
    assert none["data"] == {"amount": None, "person": None}


def test_training_keeps_examples_and_an_honest_estimate(trained: NanoExtractor) -> None:
    assert trained.info.examples == 40 and trained.info.field_examples["amount"] > 10
    # out-of-fold predictions on this easy pattern are all right: nothing for isotonic to fit,
    # so the CRF's own marginals stand as the confidence
    assert trained.info.oof_f1 is not None and 0.9 < trained.info.oof_f1 <= 1.0
    assert set(trained.calibration) <= {"found", "absent"}
    near = trained.nearest("please send 5 euros to Ann Lee today", 2, FakeEncoder())
    assert len(near) == 2 and "send" in near[-1]["text"]


def test_the_probe_feeds_the_crf_and_versions_without_it_still_load(trained: NanoExtractor) -> None:
    import pickle

    from litegate.nano.extractor import _prepare

    tagger = trained.tagger
    assert tagger.probe is not None and set(tagger.probe.classes_) >= {0, tagger.tags.index("B-amount")}
    [doc] = _prepare(["please send 777 euros to Ivo Marsh today"], FakeEncoder())
    words = tagger.features(doc)
    # "777" starts an amount: the probe says so, and the CRF learned a weight for that feature
    assert words[2]["probe=B-amount"] > 1.0 and words[2]["probe=O"] < 0.5
    weights = tagger._open().info().state_features
    assert weights.get(("probe=B-amount", "B-amount"), 0.0) > 0.0
    state = tagger.__getstate__()
    del state["probe"]  # as pickled before the probe existed
    old = pickle.loads(pickle.dumps(tagger))
    old.__setstate__(state)
    assert old.probe is None and not any(k.startswith("probe") for k in old.features(doc)[2])


@pytest.mark.parametrize("bad, message", [
    ([], "non-empty list"),
    ([{"text": "pay Ann", "data": {"person": "Bob"}}], "'examples.0.data.person': 'Bob' does not occur in the text"),
    ([{"text": "pay Ann", "data": {"person": 5}}], "must be a non-empty string"),
    ([{"text": "", "data": {}}], "'examples.0.text' must be a non-empty string"),
    ([{"text": "pay Ann", "data": {}}], "no fields"),
    ([{"text": "pay Ann", "data": {"bad name!": "Ann"}}], "not valid"),
])
def test_bad_training_data_names_the_line_and_field(bad: list, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        check_examples(bad, None)


def test_a_field_outside_the_declared_ones_is_refused_and_a_thin_field_warned() -> None:
    with pytest.raises(InvalidRequest, match="'examples.0.data.city': 'city' is not one of the fields"):
        check_examples([{"text": "in Rome", "data": {"city": "Rome"}}], {"person": "who"})
    _, _, fields, warnings = check_examples([{"text": "pay Ann", "data": {"person": "Ann"}}], {"person": "", "x": ""})
    assert list(fields) == ["person", "x"]
    assert any("'person' has 1 example" in w for w in warnings) and any("'x' has 0" in w for w in warnings)


def test_store_versions_and_not_found(tmp_path: Path) -> None:
    store = ExtractorStore(tmp_path, EncoderRegistry(factory=FakeEncoder))
    assert store.train("pay", examples(24)).version == 1
    assert store.train("pay", examples(24, seed=1)).version == 2
    assert store.versions("pay") == [1, 2] and store.get("pay").info.version == 2
    assert store.get("pay", 1).info.version == 1
    fresh = ExtractorStore(tmp_path, EncoderRegistry(factory=FakeEncoder))  # loads from disk
    [out] = fresh.get("pay").predict(["transfer 12 euros now please"], FakeEncoder())
    assert out["data"]["amount"] == "12 euros"
    with pytest.raises(ExtractorNotFound, match="no extractor named 'nope'"):
        store.get("nope")


def test_extract_on_the_nano_tier_over_http(tmp_path: Path) -> None:
    rt = runtime(tmp_path)
    with TestClient(create_app(rt, close_runtime=False)) as client:
        r = client.post("/v1/extractors", json={"name": "pay", "examples": examples(), "fields": {"amount": "money",
                                                                                                  "person": "who"}})
        assert r.status_code == 201, r.text
        assert r.json()["object"] == "extractor" and r.json()["fields"]["amount"] == "money"
        listed = client.get("/v1/extractors").json()["data"]
        assert [e["name"] for e in listed] == ["pay", "receipt", "invoice"]  # the prebuilt ones after the trained
        assert listed[1]["prebuilt"] and listed[1]["types"]["total"] == "money"
        assert client.get("/v1/extractors/pay").json()["versions"] == [1]
        out = client.post("/v1/tasks/extract", json={"text": "please send 31 euros to Ann Lee today",
                                                      "extractor": "pay"}).json()
        assert (out["tier"], out["model"], out["data"]) == ("nano", "pay@v1",
                                                             {"amount": "31 euros", "person": "Ann Lee"})
        only = client.post("/v1/tasks/extract", json={"text": "send 31 euros to Ann Lee", "extractor": "pay",
                                                       "fields": {"person": ""}, "tier": "nano"}).json()
        assert list(only["data"]) == ["person"]
        r = client.post("/v1/tasks/extract", json={"text": "x", "extractor": "pay", "fields": {"city": ""}})
        assert r.status_code == 400 and "'city'" in r.json()["error"]["message"]
        assert r.json()["error"]["param"] == "fields.city"
        r = client.post("/v1/tasks/extract", json={"text": "x", "extractor": "nope"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "extractor_not_found"
        r = client.post("/v1/extractors", json={"name": "bad", "examples": [{"text": "hi", "data": {"a": "zz"}}]})
        assert r.status_code == 400 and "does not occur" in r.json()["error"]["message"]
    rt.close()


def test_grounded_grammar_is_valid_llguidance() -> None:
    from llguidance import LLMatcher

    text = 'He said "pay \\ 20€" to Zoë, twice.'
    grammar = grounded_grammar(["amount", "person", "note"], text)
    assert LLMatcher.validate_grammar(LLMatcher.grammar_from_lark(grammar)) == ""
    assert grammar.count("substring_words") == 1 and '"\\"amount\\":"' in grammar
    assert json.loads(json.dumps(text, ensure_ascii=False))  # the text is embedded JSON-escaped


def test_a_local_llm_learns_from_the_extractor_and_drops_values_it_doubts(tmp_path: Path) -> None:
    from fakes import FakeEngine

    tokens = [('{"amount":"', -0.01), ("31 euros", -0.1), ('","person":"', -0.01), ("Ann Lee", -3.0), ('"}', 0.0)]
    rt = runtime(tmp_path, engines={"lite": FakeEngine(lambda body: tokens)})
    rt.extractors.train("pay", examples(), fields={"amount": "money", "person": "who"})
    out = rt.tasks.run("extract", {"text": "please send 31 euros to Ann Lee today", "extractor": "pay",
                                   "tier": "lite"})
    # the value the model gave 5% is dropped as not stated; the one it was sure of is kept
    assert out["data"] == {"amount": "31 euros", "person": None} and out["spans"]["amount"] == [12, 20]
    assert out["field_confidence"]["amount"] > 0.85
    body = rt.registry.engines["lite"].bodies[-1]
    system, shots = body["messages"][0]["content"], body["messages"][1:-1]
    # each field's description shows values it took in training; worked examples are retrieved
    assert "- amount: money (e.g. " in system and "euros" in system.split("- amount:")[1].split("\n")[0]
    assert "- person: who (e.g. " in system and len(shots) == 8
    rt.close()
