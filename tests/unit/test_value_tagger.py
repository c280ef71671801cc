"""The value tagger shipped in the package (nano.value_tagger): its pinned file, its
probabilities, which encoders it reads, and extractors that go without it."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeEncoder

from litegate.errors import ModelFileError
from litegate.nano import value_tagger
from litegate.nano.extractor import NanoExtractor
from litegate.nano.value_tagger import ValueTagger


class Named:
    def __init__(self, name: str, dim: int) -> None:
        self.name, self.dim = name, dim


def test_the_shipped_tagger_reads_the_fast_encoders_words() -> None:
    tagger = value_tagger.shipped()
    assert tagger.weights.shape == (3, 3 * 384) and tagger.bias.shape == (3,)
    assert tagger.meta["utterances"] > 5000 and "CC BY 4.0" in tagger.meta["data"]
    assert tagger.applies(Named("all-MiniLM-L6-v2", 384), 4)
    assert not tagger.applies(Named("all-MiniLM-L6-v2", 384), 6)  # another layer's vectors
    assert not tagger.applies(Named("all-mpnet-base-v2", 768), 8)
    assert not tagger.applies(FakeEncoder(), 4)
    p = tagger.probabilities(np.random.default_rng(0).normal(size=(7, 3 * 384)).astype(np.float32))
    assert p.shape == (7, 3) and np.allclose(p.sum(1), 1.0) and (p >= 0).all()
    with pytest.raises(ValueError, match="1152 inputs"):
        tagger.probabilities(np.zeros((2, 64), np.float32))


def test_a_changed_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(value_tagger, "SHA256", "0" * 64)
    value_tagger.shipped.cache_clear()
    try:
        with pytest.raises(ModelFileError, match="pinned sha256"):
            value_tagger.shipped()
    finally:
        monkeypatch.undo()
        value_tagger.shipped.cache_clear()
    (tmp_path / "bad.npz").write_bytes(b"not a tagger")
    with pytest.raises(ModelFileError, match="not a value tagger"):
        ValueTagger.load(tmp_path / "bad.npz")
    small = ValueTagger(np.zeros((3, 6), np.float32), np.zeros(3, np.float32), "x", 1, 4, {})
    small.save(tmp_path / "small.npz")  # 6 inputs where a dim of 4 means 12
    with pytest.raises(ModelFileError, match="another shape"):
        ValueTagger.load(tmp_path / "small.npz")


def test_extractors_of_other_encoders_and_earlier_versions_go_without_it() -> None:
    examples = [{"text": f"send {n} euros to Ann Lee", "data": {"amount": f"{n} euros", "person": "Ann Lee"}}
                for n in range(10, 30)]
    model = NanoExtractor.train("pay", examples, FakeEncoder(), fields={"amount": "", "person": ""})
    assert model.tagger.values is False
    state = model.tagger.__getstate__()
    del state["values"]  # a tagger pickled before the value tagger shipped
    again = pickle.loads(pickle.dumps(model.tagger))
    again.__setstate__(state)
    assert again.values is False
    [out] = model.predict(["send 77 euros to Bo Li"], FakeEncoder())
    assert out["data"]["amount"] == "77 euros"
