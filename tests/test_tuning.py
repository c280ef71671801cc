"""Tuning the encoder's top layers on a classifier's examples, for real: PyTorch at training, the
fast encoder's real weights, a real server over HTTP and the CLI a user runs. A tiny run (three
labels, four examples each, one layer, one epoch) goes through the same code path as a big one;
the tuned version answers the same after a restart, with no torch needed to serve it."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from conftest import litegate_cmd, start_server, stop_server

torch = pytest.importorskip("torch", reason="PyTorch is not installed: tuning needs the tune extra "
                                            "(pip install 'litegate[tune]')")

from litegate.nano.encoder import MiniLMEncoder  # noqa: E402 - after the skip: these tests need torch
from litegate.nano.tuned import frozen_states  # noqa: E402
from litegate.nano.tuning import TuneSettings, _padded, _TopLayers, tune  # noqa: E402

ROWS = [("will it rain today", "weather"), ("is it sunny outside", "weather"), ("snow forecast for tomorrow",
        "weather"), ("how hot will it be this afternoon", "weather"), ("play some jazz", "music"),
        ("put on a song by the beatles", "music"), ("next track please", "music"), ("turn the music up", "music"),
        ("set an alarm for seven", "alarm"), ("wake me up at six thirty", "alarm"), ("cancel my morning alarm",
        "alarm"), ("remind me at noon with an alarm", "alarm")]
EXAMPLES = [{"text": t, "label": lab} for t, lab in ROWS]
ASKED = ["will I need an umbrella", "play my workout playlist", "set a wake up call for 5 am", "hello there"]
TINY = {"layers": 1, "epochs": 1}


def test_the_torch_layers_compute_what_the_numpy_forward_does() -> None:
    """Tuning starts from the served encoder: its torch copy of the top layers, on the frozen
    layers' vectors, gives the float32 NumPy sentence vectors."""
    encoder = MiniLMEncoder(runtime="numpy")
    texts = [t for t, _ in ROWS[:5]]
    states = frozen_states(encoder, texts, encoder.layers - 2)
    x, mask = _padded(states, np.arange(len(texts)), encoder.dim)
    model = _TopLayers(torch, encoder, encoder._layers[-2:])
    with torch.no_grad():
        got = model(torch.from_numpy(x), torch.from_numpy(encoder._attention_bias(mask)),
                    torch.from_numpy(mask)).numpy()
    assert (got * encoder.encode(texts)).sum(1).min() > 0.999


def test_a_tiny_tuning_run_pulls_each_label_together() -> None:
    encoder = MiniLMEncoder()
    texts, labels = [t for t, _ in ROWS], [lab for _, lab in ROWS]
    tuned = tune(encoder, texts, labels, TuneSettings(layers=1, epochs=3, learning_rate=1e-4))
    same = np.array(labels)[:, None] == np.array(labels)[None, :]

    def margin(vectors: np.ndarray) -> float:
        sims = vectors @ vectors.T
        return float(sims[same & ~np.eye(len(texts), dtype=bool)].mean() - sims[~same].mean())

    served = tuned.encoder(encoder)
    assert len(tuned.layers) == 1 and tuned.settings["examples"] == len(texts)
    assert margin(served.encode(texts)) > margin(encoder.encode(texts)) + 0.02
    # the head trains on vectors from the frozen layers' states, computed once: what encode gives
    from_states = served.encode_states(frozen_states(encoder, texts, served.frozen))
    assert np.allclose(from_states, served.encode(texts), atol=1e-4)


@pytest.fixture(scope="module")
def tuned_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tuned-home")


def answers(base: str) -> list[dict]:
    out = []
    for text in ASKED:
        r = httpx.post(f"{base}/v1/tasks/classify", json={"text": text, "classifier": "tuned-intents",
                                                           "tier": "nano"}, timeout=60)
        assert r.status_code == 200, r.text
        out.append({k: r.json()[k] for k in ("label", "confidence", "scores")})
    return out


def test_train_tuned_over_http_then_the_same_answers_after_a_restart(tuned_home: Path) -> None:
    proc, base = start_server(tuned_home, "--ctx", "2048")
    try:
        r = httpx.post(f"{base}/v1/classifiers", json={"name": "tuned-intents", "examples": EXAMPLES,
                                                        "encoder": "fast", "tune": TINY}, timeout=60)
        assert r.status_code == 202, r.text  # tuning takes minutes: a job to poll
        job = r.json()
        deadline = time.monotonic() + 600
        while job["status"] in ("queued", "in_progress") and time.monotonic() < deadline:
            time.sleep(0.5)
            job = httpx.get(f"{base}/v1/classifiers/jobs/{job['id']}", timeout=60).json()
        assert job["status"] == "succeeded", job
        info = job["classifier"]
        assert info["encoder"] == "fast" and info["tuned"]["layers"] == 1 and info["tuned"]["epochs"] == 1
        before = answers(base)
        assert [a["label"] for a in before[:3]] == ["weather", "music", "alarm"]
        for body, param in (({"tune": {"layers": 6}}, "tune.layers"), ({"tune": "deep"}, None),
                            ({"tune": True, "encoder": "multilingual"}, "tune")):
            r = httpx.post(f"{base}/v1/classifiers", json={"name": "bad", "examples": EXAMPLES, **body}, timeout=60)
            assert r.status_code in (400, 422), r.text
            if param is not None:
                assert r.json()["error"]["param"] == param
    finally:
        stop_server(proc)
    folder = tuned_home / "classifiers" / "tuned-intents" / "v1"
    assert (folder / "tuned.npz").stat().st_size < 3_000_000  # one 8-bit layer of the fast encoder
    proc, base = start_server(tuned_home, "--ctx", "2048")
    try:
        after = answers(base)
    finally:
        stop_server(proc)
    for a, b in zip(before, after):
        assert a["label"] == b["label"] and a["confidence"] == pytest.approx(b["confidence"], abs=1e-6)
        assert all(a["scores"][k] == pytest.approx(b["scores"][k], abs=1e-6) for k in a["scores"])


def test_train_tuned_from_the_cli(tmp_path: Path) -> None:
    data = tmp_path / "intents.jsonl"
    data.write_text("".join(json.dumps(ex) + "\n" for ex in EXAMPLES))
    env = dict(os.environ, LITEGATE_HOME=str(tmp_path / "home"))

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(litegate_cmd(*args), env=env, capture_output=True, text=True, timeout=600)

    r = run("train", "cli-tuned", "--data", str(data), "--tune", "--tune-layers", "1", "--tune-epochs", "1")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["tuned"]["layers"] == 1 and "top 1 layers tuned" in r.stderr
    r = run("classify", "--classifier", "cli-tuned", "--tier", "nano", "turn on some music")
    assert r.returncode == 0 and json.loads(r.stdout)["label"] == "music", r.stderr
    r = run("train", "x", "--data", str(data), "--tune-layers", "1")
    assert r.returncode == 1 and r.stderr.strip() == "error: --tune-layers and --tune-epochs go with --tune"
    r = run("train", "x", "--data", str(data), "--tune", "--tune-layers", "9")
    assert r.returncode == 1 and "'tune.layers' must be a whole number from 1 to 5" in r.stderr


def test_a_distilled_version_keeps_the_tuned_layers(tmp_path: Path) -> None:
    """Learning from corrections retrains the head on the tuned encoder's vectors: the new
    version must carry the same tuned layers, or it would be served by the untuned encoder."""
    from litegate.learning.adapters import ClassifierKind
    from litegate.nano.classifier import ClassifierStore, NanoClassifier
    from litegate.nano.encoders import EncoderRegistry

    store = ClassifierStore(tmp_path, EncoderRegistry(Path(os.environ["LITEGATE_MODELS_DIR"])))
    store.train("learns", EXAMPLES, learn=True, tune=TINY)
    current = store.get("learns")
    data = EXAMPLES + [{"text": "blast some rock music", "label": "music"}]
    new = ClassifierKind().train("learns", current, data, calibrate=False, encoder=store.encoder_for(current),
                                 version=2)
    assert new.tuned is current.tuned and new.info.tuned == current.info.tuned
    store.put("learns", 2, new)
    again = NanoClassifier.load(tmp_path / "classifiers" / "learns" / "v2")
    assert again.tuned is not None and len(again.tuned.layers) == 1
    probs, _ = again.predict(["blast some rock music"], store.encoder_for(again))
    assert again.labels[int(probs.argmax())] == "music"


@pytest.mark.parametrize("reading", [(6, 5), (6, 4)])
def test_a_tuned_version_reads_a_lower_layer_beside_its_tuned_ones(tmp_path: Path, reading: tuple[int, ...],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A reading at the frozen layer comes from the states tuning computed once; one below them
    is read again; either way the head trained on what the served version reads."""
    import dataclasses

    from litegate.nano import encoders as encoder_kinds
    from litegate.nano.classifier import ClassifierStore, NanoClassifier
    from litegate.nano.encoders import EncoderRegistry

    monkeypatch.setitem(encoder_kinds.KINDS, "fast", dataclasses.replace(encoder_kinds.KINDS["fast"], reading=reading))
    store = ClassifierStore(tmp_path, EncoderRegistry(Path(os.environ["LITEGATE_MODELS_DIR"])))
    info = store.train("read", EXAMPLES, tune=TINY)
    assert info.vector_layers == list(reading) and info.tuned["layers"] == 1
    clf = NanoClassifier.load(tmp_path / "classifiers" / "read" / "v1")
    served = store.encoder_for(clf)
    texts = [t for t, _ in ROWS]
    vectors = clf.vectors(texts, served)
    assert vectors.shape == (len(texts), 2 * 384)
    # the stored typicality vectors are the training texts as the served version reads them
    assert np.allclose(clf._train_matrix.T, vectors, atol=2e-3)
    lower = served.features(texts, reading[1:])  # the lower layer alone, unit length
    assert np.allclose(vectors[:, 384:] * np.sqrt(2), lower, atol=1e-5)
    probs, _ = clf.predict(ASKED[:3], served)
    assert [clf.labels[i] for i in probs.argmax(1)] == ["weather", "music", "alarm"]
