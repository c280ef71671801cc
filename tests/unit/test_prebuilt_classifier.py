"""The prebuilt ``document_type`` classifier (nano.classifier.PREBUILT): trained once per model
folder on first use from the examples the package ships, shared by every home and key reading
that folder, and shadowed by a key's own classifier of the same name."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest
from fakes import FakeEncoder

from litegate.errors import ClassifierNotFound
from litegate.nano.classifier import PREBUILT, ClassifierStore, prebuilt_examples
from litegate.nano.encoders import EncoderRegistry
from litegate.tenancy import Tenant, acting_as

pytestmark = pytest.mark.unit


def test_the_shipped_examples_are_in_the_package_and_balanced_enough_to_learn() -> None:
    path = PREBUILT["document_type"]
    assert path.is_file() and path.stat().st_size < 400_000
    with gzip.open(path, "rt", encoding="utf-8") as f:
        first = json.loads(f.readline())
    assert set(first) == {"text", "label"}
    counts = Counter(ex["label"] for ex in prebuilt_examples("document_type"))
    assert set(counts) == {"receipt", "invoice", "contract"} and min(counts.values()) >= 50


@pytest.fixture()
def few(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A twentieth of the shipped examples (training on all of them is the integration tests' work)."""
    path = tmp_path / "document_type.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for ex in prebuilt_examples("document_type")[::20]:
            f.write(json.dumps(ex) + "\n")
    monkeypatch.setitem(PREBUILT, "document_type", path)


@pytest.mark.usefixtures("few")
def test_it_is_trained_once_per_model_folder_on_first_use(tmp_path: Path) -> None:
    models = tmp_path / "models"
    store = ClassifierStore(tmp_path / "home-a", EncoderRegistry(models, factory=FakeEncoder))
    assert store.names() == []  # no name to answer with until trained; listed as it will be
    [listed] = store.list()
    assert (listed.name, listed.version, listed.prebuilt) == ("document_type", 0, True)
    assert listed.labels == ["contract", "invoice", "receipt"] and not (models / "prebuilt").exists()
    clf = store.get("document_type")
    assert clf.info.prebuilt and clf.info.labels == ["contract", "invoice", "receipt"] and clf.info.version == 1
    assert store.names() == ["document_type"] and store.versions("document_type") == [1]
    assert [(i.name, i.version) for i in store.list()] == [("document_type", 1)]
    folder = store.folder("document_type")
    assert folder.parent == models / "prebuilt" and not (tmp_path / "home-a" / "classifiers").exists()
    saved = (folder / "v1" / "model.pkl").stat().st_mtime_ns
    # another home on the same model folder reads it; nothing is trained again
    other = ClassifierStore(tmp_path / "home-b", EncoderRegistry(models, factory=FakeEncoder))
    assert other.get("document_type").info.prebuilt and other.folder("document_type") == folder
    assert (folder / "v1" / "model.pkl").stat().st_mtime_ns == saved


@pytest.mark.usefixtures("few")
def test_a_keys_own_classifier_of_that_name_comes_first(tmp_path: Path) -> None:
    store = ClassifierStore(tmp_path / "home", EncoderRegistry(tmp_path / "models", factory=FakeEncoder))
    mine = [{"text": f"{word} number {i}", "label": word} for word in ("alpha", "beta") for i in range(4)]
    with acting_as(Tenant("fp-a")):
        store.train("document_type", mine)
        assert store.get("document_type").info.labels == ["alpha", "beta"]
    with acting_as(Tenant("fp-b")):
        assert store.get("document_type").info.prebuilt  # the other key still has the prebuilt one
    with pytest.raises(ClassifierNotFound):
        store.get("no_such_classifier")


@pytest.mark.usefixtures("few")
def test_a_model_folder_that_cannot_take_a_write_is_a_clear_507_before_any_training(tmp_path: Path) -> None:
    from litegate.errors import StorageError

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the model folder should be")
    store = ClassifierStore(tmp_path / "home", EncoderRegistry(blocker / "models", factory=FakeEncoder))
    with pytest.raises(StorageError, match="LITEGATE_MODELS_DIR") as caught:
        store.get("document_type")
    assert caught.value.status_code == 507 and "document_type" in str(caught.value)
    assert [(i.name, i.version) for i in store.list()] == [("document_type", 0)]  # still listed, untrained


@pytest.mark.usefixtures("few")
def test_a_pipeline_service_trains_the_prebuilt_classifiers_its_steps_name_when_it_starts(tmp_path: Path) -> None:
    """So the first run's call is not the one that waits for (and is timed with) the training."""
    import time

    from fakes import runtime

    from litegate.pipelines import PipelineService, load_pipeline

    path = tmp_path / "sort.toml"
    path.write_text('[[step]]\nname = "kind"\nkind = "classify"\ntier = "nano"\nclassifier = "document_type"\n')
    rt = runtime(tmp_path / "home")
    svc = PipelineService(rt, {"sort": load_pipeline(path)}, poll_s=0.05)
    try:
        assert rt.classifiers.names() == []
        svc.start()
        deadline = time.monotonic() + 30
        while rt.classifiers.names() != ["document_type"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rt.classifiers.names() == ["document_type"]
        assert rt.classifiers.get("document_type").info.prebuilt
    finally:
        svc.close()
        rt.close()
