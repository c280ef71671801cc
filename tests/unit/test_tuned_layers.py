"""A tuned encoder without torch: the tuned layers stored in 8 bits and read back unchanged,
the encoder that serves the shipped lower layers and the tuned top ones computing what one
whole graph of the same layers computes, and tuning's checks before any work (a clear error
naming the extra when PyTorch is missing)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeEncoder
from test_onnx_layers import TinyEncoder

from litegate.errors import InvalidRequest
from litegate.nano.classifier import ClassifierStore
from litegate.nano.encoders import EncoderRegistry
from litegate.nano.onnx_layers import quantize_blocks
from litegate.nano.tuned import TunedEncoder, TunedLayers, to_8bit
from litegate.nano.tuning import TuneSettings, tunable

pytestmark = pytest.mark.unit
INTENTS = [{"text": t, "label": "weather"} for t in ("will it rain today", "is it sunny outside")] + \
          [{"text": t, "label": "music"} for t in ("play some jazz", "put on a song")]


def tuned_top(encoder: TinyEncoder, seed: int = 1) -> TunedLayers:
    """The encoder's last layer, moved a little (as tuning would) and in 8 bits."""
    rng = np.random.default_rng(seed)
    moved = tuple(w + (rng.standard_normal(w.shape) * 0.02).astype(np.float32) for w in encoder._layers[-1])
    layer = tuple(to_8bit(w) if w.ndim == 2 else w for w in moved)
    return TunedLayers(encoder.name, encoder.layers, [layer], {"layers": 1})


def test_8bit_weights_quantize_to_the_same_bytes_again() -> None:
    w = np.random.default_rng(0).standard_normal((96, 40)).astype(np.float32)
    stored = to_8bit(w)
    assert np.abs(stored - w).max() < np.abs(w).max() / 127
    for got, want in zip(quantize_blocks(stored), quantize_blocks(w)):
        assert np.allclose(got, want, rtol=1e-6) if got.dtype == np.float32 else np.array_equal(got, want)


def test_tuned_layers_round_trip_through_the_version_folder(tmp_path: Path) -> None:
    tuned = tuned_top(TinyEncoder())
    tuned.save(tmp_path)
    back = TunedLayers.load(tmp_path)
    assert back is not None and back.base == tuned.base and back.settings == {"layers": 1}
    for got, want in zip(back.layers[0], tuned.layers[0]):
        assert got.shape == want.shape and np.allclose(got, want, atol=1e-6)
    assert TunedLayers.load(tmp_path / "nothing") is None  # a version trained without tuning
    (tmp_path / "tuned.npz").write_bytes(b"not an npz")
    with pytest.raises(Exception, match="not a readable tuned encoder"):
        TunedLayers.load(tmp_path)


@pytest.mark.parametrize("runtime", ["onnx", "numpy"])
def test_the_tuned_encoder_is_the_base_lower_layers_then_the_tuned_top(runtime: str) -> None:
    base = TinyEncoder(runtime)
    tuned = tuned_top(base)
    served = tuned.encoder(base)
    assert tuned.encoder(base) is served and isinstance(served, TunedEncoder) and served.frozen == 1
    whole = TinyEncoder(runtime)  # one graph of the same layers: the lower shipped one, the tuned top
    whole._layers = [base._layers[0], tuned.layers[0]]
    ids = np.array([[1, 5, 7, 9, 2], [1, 4, 2, 0, 0]])
    mask = (ids > 0).astype(np.float32)
    got = served._forward(ids, mask)
    want = whole._forward(ids, mask)
    assert np.allclose(got, want, atol=2e-5)
    assert np.abs((got * base._forward(ids, mask)).sum(1)).min() < 0.9999  # the top layer did change
    lower = served._run_layers(ids, mask, 1, batch=False)  # words read below the tuned layers: the base's
    assert np.array_equal(lower, base._run_layers(ids, mask, 1, batch=False))


def test_tuned_layers_refuse_another_base_encoder() -> None:
    tuned = tuned_top(TinyEncoder())
    with pytest.raises(Exception, match="belong to"):
        TunedLayers("all-mpnet-base-v2", 12, tuned.layers, {}).encoder(TinyEncoder())
    with pytest.raises(InvalidRequest, match="cannot be tuned"):
        tunable(FakeEncoder(), "fast")


@pytest.mark.parametrize(("value", "param"), [
    ("yes", "tune"), ({"layers": 0}, "tune.layers"), ({"epochs": 2.5}, "tune.epochs"),
    ({"loss": "triplet"}, "tune.loss"), ({"learning_rate": 0}, "tune.learning_rate"), ({"depth": 2}, "tune.depth"),
    ({"seed": "x"}, "tune.seed"),
])
def test_tuning_settings_are_checked(value: object, param: str) -> None:
    with pytest.raises(InvalidRequest) as e:
        TuneSettings.from_request(value)
    assert e.value.param == param


def test_tuning_settings_from_a_request() -> None:
    assert TuneSettings.from_request(None) is None and TuneSettings.from_request(False) is None
    assert TuneSettings.from_request(True) == TuneSettings()
    assert TuneSettings.from_request({"layers": 1, "epochs": 1}) == TuneSettings(layers=1, epochs=1)


def test_without_torch_tuning_fails_first_with_the_extra_to_install(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    encoded: list[int] = []

    class Counting(FakeEncoder):
        def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
            encoded.append(len(texts))
            return super().encode(texts, batch_size)

    class NoTorch:  # import torch raises ImportError, as when it is not installed
        @staticmethod
        def find_spec(name: str, *_: object) -> None:
            if name == "torch" or name.startswith("torch."):
                raise ImportError(f"No module named {name!r}")

    for name in [m for m in sys.modules if m == "torch" or m.startswith("torch.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [NoTorch(), *sys.meta_path])
    store = ClassifierStore(tmp_path, EncoderRegistry(tmp_path, factory=Counting))
    with pytest.raises(InvalidRequest, match=r"pip install 'litegate\[tune\]'") as e:
        store.train("intents", INTENTS, tune=True)
    assert e.value.param == "tune" and "\n" not in e.value.message
    with pytest.raises(InvalidRequest, match="multilingual encoder cannot be tuned"):
        store.train("intents", INTENTS, encoder="multilingual", tune=True)
    assert encoded == [] and store.names() == []
    assert store.train("intents", INTENTS).tuned is None  # without tune: as before
