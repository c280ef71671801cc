"""The nano extractor as shipped (the span stage), trained over HTTP on ~100 utterances of NLU++
banking with the real encoder, scored on another fold through the extract task, as a user would;
and the stage's features, read for every field at once, against the per-field code."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import httpx
import numpy as np
import pytest

from litegate.config import Settings
from litegate.evals.datasets import nlupp_banking, nlupp_fields
from litegate.evals.metrics import extraction_metrics
from litegate.nano.extractor import _prepare, _span_doc
from litegate.nano.span_scorer import pair_features, spans_of
from litegate.runtime import build


@pytest.fixture(scope="module")
def trained(server: str) -> dict:
    r = httpx.post(server + "/v1/extractors", json={"name": "slots", "examples": nlupp_banking([0])[:100],
                                                    "fields": nlupp_fields()}, timeout=600)
    assert r.status_code == 201, r.text
    return r.json()


def extract(server: str, text: str) -> dict:
    r = httpx.post(server + "/v1/tasks/extract", json={"text": text, "extractor": "slots", "tier": "nano"}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_hundred_utterances_make_an_extractor_that_reads_periods_and_their_ends(trained: dict, server: str) -> None:
    assert trained["decoder"] == "spans" and trained["examples"] == 100
    out = extract(server, "how much did I spend on groceries from the 3rd to the 9th of May")
    assert out["data"]["date_from"] == "3rd" and out["data"]["date_to"] == "9th of May"
    assert out["data"]["date"] is None and 0.0 <= out["confidence"] <= 1.0


def test_slot_f1_on_an_unseen_fold(trained: dict, server: str) -> None:
    test = nlupp_banking([1])
    answers = [{k: v for k, v in extract(server, r["text"])["data"].items() if v is not None} for r in test]
    scores = extraction_metrics([r["data"] for r in test], answers, sorted(nlupp_fields()))
    # the CRF's own path scores 0.38-0.47 from such 100 utterances (bench/README.md, "Extraction")
    assert scores["slot_f1"] >= 0.5, scores


def test_a_name_written_in_lower_case_after_a_preposition_is_read(trained: dict, server: str) -> None:
    # no capital letter, no recognizer: the span stage's candidates after "to" / "from" (features 2)
    out = extract(server, "please send 40 euros to mirela voss tomorrow")
    assert out["data"]["person_name"] == "mirela voss" and out["data"]["amount_of_money"] == "40 euros"


def test_the_stage_reads_every_field_at_once_as_it_read_them_one_by_one(trained: dict, home: Path) -> None:
    # the real encoder's word vectors and a real CRF's marginals: the features read for every field
    # at once and the one calibration call per text give what the per-field code gave (its copy
    # lives in bench/span_features.py, which times both); the extractor is the module's own, as
    # the server saved it under the session's home, read back rather than trained a second time
    spec = importlib.util.spec_from_file_location("span_features_bench",
                                                  Path(__file__).resolve().parents[1] / "bench" / "span_features.py")
    assert spec is not None and spec.loader is not None
    peer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peer)
    rt = build(Settings(home=home), record=False)  # the encoder with the runtime's thread budget
    model = rt.extractors.get("slots")
    assert model.info.trained_at == trained["trained_at"] and model.info.examples == 100
    encoder = rt.extractors.encoder_for(model)
    stage = model.span_stage
    assert stage is not None and model.info.decoder == "spans"
    compared = 0
    for doc in (_span_doc(d, model.tagger) for d in _prepare([r["text"] for r in nlupp_banking([1])[:40]], encoder)):
        cands = spans_of(doc, stage.tag_index, stage.fields, stage.features, stage.stats.values)
        if not cands:
            continue
        compared += 1
        got = pair_features(doc, cands, stage.stats, stage.tag_index, stage.features)
        assert np.array_equal(got, peer.per_field(doc, cands, stage.stats, stage.tag_index, stage.features))
        assert stage.spans(doc) == peer.before_spans(stage, doc)
    rt.close()
    assert compared >= 30


def test_the_crf_reads_the_value_tagger_learned_from_other_domains(trained: dict, home: Path) -> None:
    # trained with the fast encoder, the extractor's CRF reads the shipped value tagger's two
    # probabilities; the tagger, which never saw banking, marks a lower-case name and an amount
    # as values and the words around them as none
    rt = build(Settings(home=home), record=False)
    model = rt.extractors.get("slots")
    encoder = rt.extractors.encoder_for(model)
    assert model.tagger.values is True
    [doc] = _prepare(["transfer 50 pounds to greogry please"], encoder)
    features = model.tagger.features(doc)
    assert all("value=B" in f and "value=I" in f for f in features)
    starts = {doc.text[a:b]: f["value=B"] / 2 for (a, b), f in zip(doc.offsets, features)}
    rt.close()
    assert starts["greogry"] > 0.5 and starts["50"] > 0.5
    assert max(starts["transfer"], starts["to"], starts["please"]) < 0.1
