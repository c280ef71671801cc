"""A classifier's vectors read at several encoder layers: the lower layer comes out of the same
pass (graph and NumPy agree, a tuned encoder gives it too), each layer pooled and the whole joined
at unit length, the version records what it read, and a version trained before the record loads
and answers exactly as it did."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeEncoder
from test_label_names import EXAMPLES
from test_onnx_layers import TinyEncoder, inputs
from test_tuned_layers import tuned_top

from litegate.errors import ModelFileError
from litegate.learning.adapters import ClassifierKind
from litegate.nano.classifier import ClassifierStore, NanoClassifier
from litegate.nano.encoder import joined, mean_pooled
from litegate.nano.encoders import KINDS, EncoderRegistry, MemoEncoder, features
from litegate.nano.onnx_layers import OnnxLayers

pytestmark = pytest.mark.unit


def test_a_tapped_graph_gives_the_lower_layer_of_the_same_pass() -> None:
    encoder = TinyEncoder()
    ids, mask = inputs(encoder, [6, 11, 3])
    n, t = ids.shape
    x, bias = encoder._embed(ids).reshape(n, t, encoder.dim), encoder._attention_bias(mask)
    final, lower = OnnxLayers(encoder._layers, encoder.dim, encoder.heads, encoder.eps, taps=(1,)).run_tapped(x, bias)
    alone = OnnxLayers(encoder._layers[:1], encoder.dim, encoder.heads, encoder.eps).run(x, bias)
    assert np.array_equal(lower, alone)  # the same weights, the same products: the same numbers
    assert np.array_equal(final, OnnxLayers(encoder._layers, encoder.dim, encoder.heads, encoder.eps).run(x, bias))
    with pytest.raises(ValueError, match="below the graph's 2"):
        OnnxLayers(encoder._layers, encoder.dim, encoder.heads, encoder.eps, taps=(2,))


@pytest.mark.parametrize("runtime", ["onnx", "numpy"])
def test_a_reading_joins_each_layers_pooled_vector_at_unit_length(runtime: str) -> None:
    encoder = TinyEncoder(runtime)
    ids, mask = inputs(encoder, [5, 9, 2])
    n, t = ids.shape
    got = encoder._forward(ids, mask, reading=(2, 1))
    parts = [mean_pooled(encoder._run_layers(ids, mask, k, batch=False).reshape(n, t, encoder.dim), mask)
             for k in (2, 1)]
    assert got.shape == (3, 2 * encoder.dim)
    assert np.allclose(got, np.concatenate(parts, axis=1) / np.sqrt(2), atol=1e-6)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(encoder._forward(ids, mask), encoder._forward(ids, mask, reading=(2,)))
    assert joined([parts[0]]) is parts[0]


def test_the_graph_and_numpy_read_the_same_layers() -> None:
    served, reference = TinyEncoder("onnx"), TinyEncoder("numpy")
    ids, mask = inputs(served, [4, 13, 7])
    got, want = served._forward(ids, mask, reading=(2, 1)), reference._forward(ids, mask, reading=(2, 1))
    assert ((got * want).sum(1) > 0.995).all()


@pytest.mark.parametrize("runtime", ["onnx", "numpy"])
def test_a_tuned_encoder_reads_a_layer_below_its_tuned_ones(runtime: str) -> None:
    base = TinyEncoder(runtime)
    served = tuned_top(base).encoder(base)  # layer 2 tuned, layer 1 the shipped one
    ids, mask = inputs(base, [5, 8])
    n, t = ids.shape
    got = served._forward(ids, mask, reading=(2, 1))
    lower = mean_pooled(base._run_layers(ids, mask, 1, batch=False).reshape(n, t, base.dim), mask)
    assert np.allclose(got[:, base.dim:] * np.sqrt(2), lower, atol=1e-6)  # layer 1: the base's own
    assert np.allclose(got[:, :base.dim] * np.sqrt(2), served._forward(ids, mask), atol=1e-5)  # layer 2: tuned
    # from the frozen layer's word pieces, computed once for tuning, the same vectors
    states = [base._run_layers(ids[i:i + 1, :int(mask[i].sum())], mask[i:i + 1, :int(mask[i].sum())], 1,
                               batch=False) for i in range(n)]
    assert np.allclose(served.encode_states(states, layers=(2, 1)), got, atol=1e-5)


def test_a_reading_outside_the_encoder_is_a_clear_error() -> None:
    with pytest.raises(ModelFileError, match="has 2: retrain"):
        TinyEncoder().reading((2, 5))
    assert TinyEncoder().reading(None) == (2,)

    class SentenceOnly:  # an encoder with sentence vectors alone (the multilingual engine)
        name, dim = "sentences", 4

        def encode(self, texts: list[str]) -> np.ndarray:
            return np.ones((len(texts), 4), np.float32) / 2

    assert features(SentenceOnly(), ["a"], None).shape == (1, 4)
    with pytest.raises(ModelFileError, match="does not give: retrain"):
        features(SentenceOnly(), ["a"], [12, 10])


def test_the_memo_keeps_each_reading_apart() -> None:
    calls: list[tuple[int, object]] = []

    class Counting(FakeEncoder):
        def features(self, texts: list[str], layers: list[int] | tuple[int, ...] | None = None,
                     batch_size: int = 64) -> np.ndarray:
            calls.append((len(texts), layers))
            return super().features(texts, layers, batch_size)

    memo = MemoEncoder(Counting())
    both = memo.features(["a b", "c"], (12, 10))
    assert np.array_equal(memo.features(["c", "a b"], (12, 10)), both[::-1])
    assert memo.encode(["a b"]).shape == (1, 64) and both.shape == (2, 128)
    assert calls == [(2, (12, 10))]


def test_the_version_records_its_reading_and_an_old_record_answers_as_before(tmp_path: Path) -> None:
    store = ClassifierStore(tmp_path, EncoderRegistry(tmp_path, factory=FakeEncoder))
    assert KINDS["accurate"].reading == (12, 10) and KINDS["fast"].reading == (6, 4)
    info = store.train("intents", EXAMPLES, encoder="accurate")
    assert info.vector_layers == [12, 10]
    saved = json.loads((tmp_path / "classifiers/intents/v1/meta.json").read_text())
    assert saved["vector_layers"] == [12, 10]
    clf = store.get("intents")
    encoder = store.encoder_for(clf)
    assert np.array_equal(clf.vectors(["rain"], encoder), FakeEncoder().features(["rain"], (12, 10)))
    probs, _ = clf.predict(["will it snow", "play a tune"], encoder)
    assert [clf.labels[i] for i in probs.argmax(1)] == ["weather", "music"]
    assert store.train("fast", EXAMPLES).vector_layers == [6, 4]
    # an encoder without layers to read (the multilingual engine): its sentence vector
    assert store.train("plain", EXAMPLES, encoder="multilingual").vector_layers is None

    # a version written before readings were recorded: no such field in its meta.json
    old = NanoClassifier.train("old", EXAMPLES, FakeEncoder())
    folder = tmp_path / "old-v1"
    old.save(folder)
    meta = json.loads((folder / "meta.json").read_text())
    del meta["vector_layers"]
    (folder / "meta.json").write_text(json.dumps(meta))
    back = NanoClassifier.load(folder)
    assert back.info.vector_layers is None
    texts = ["is it raining", "a song please", "alarm"]
    for got, want in zip(back.predict(texts, FakeEncoder()), old.predict(texts, FakeEncoder())):
        assert np.array_equal(got, want)


def test_a_distilled_version_keeps_the_reading_it_learns_from(tmp_path: Path) -> None:
    store = ClassifierStore(tmp_path, EncoderRegistry(tmp_path, factory=FakeEncoder))
    store.train("intents", EXAMPLES, encoder="accurate")
    current = store.get("intents")
    more = [*EXAMPLES, {"text": "is it windy", "label": "weather"}]
    new = ClassifierKind().train("intents", current, more, calibrate=False, encoder=store.encoder_for(current),
                                 version=2)
    assert new.info.vector_layers == [12, 10] and new.info.encoder == "accurate"
