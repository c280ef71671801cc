"""Classifier and extractor names per owner (nano.versions): a key trains and sees its own, the
operator's shared ones serve every key and no key changes them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from litegate.errors import Forbidden, NotFound
from litegate.nano.versions import KEYS_DIR, VersionedStore
from litegate.tenancy import OPERATOR, Tenant, acting_as

pytestmark = pytest.mark.unit


@dataclass
class Info:
    name: str
    version: int
    labels: list[str]


class Model:
    def __init__(self, info: Info):
        self.info = info

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True)
        (directory / "meta.json").write_text(json.dumps(self.info.__dict__))


def load(directory: Path) -> Model:
    return Model(Info(**json.loads((directory / "meta.json").read_text())))


def train(store: VersionedStore, name: str, labels: list[str]) -> None:
    version = store.next_version(name)
    store.put(name, version, Model(Info(name, version, labels)))


@pytest.fixture()
def store(tmp_path: Path) -> VersionedStore:
    return VersionedStore(tmp_path, load, lambda d: load(d).info)


A, B, ADMIN = Tenant("fp-a"), Tenant("fp-b"), Tenant("fp-admin", admin=True)


def test_a_keys_names_are_its_own(store: VersionedStore) -> None:
    with acting_as(A):
        train(store, "intent", ["refund", "shipping"])
        assert store.names() == ["intent"] and store.versions("intent") == [1]
    with acting_as(B):
        assert store.names() == []
        with pytest.raises(NotFound):
            store.get("intent")
        train(store, "intent", ["other"])  # B's own, v1: A's is untouched
        assert store.get("intent").info.labels == ["other"] and store.versions("intent") == [1]
    with acting_as(A):
        assert store.get("intent").info.labels == ["refund", "shipping"]
    with acting_as(OPERATOR):  # the keys' models are not the operator's names either
        assert store.names() == []
    assert (store.dir / KEYS_DIR / "fp-a" / "intent" / "v1").is_dir()


def test_the_operators_names_serve_every_key_and_no_key_changes_them(store: VersionedStore) -> None:
    with acting_as(ADMIN):
        train(store, "shared", ["a", "b"])
        train(store, "shared", ["a", "b", "c"])
    with acting_as(A):
        assert store.names() == ["shared"] and store.get("shared").info.labels == ["a", "b", "c"]
        with pytest.raises(Forbidden):
            store.rollback("shared")
        train(store, "shared", ["mine"])  # a key's own model of the name answers for it from now on
        assert store.get("shared").info.labels == ["mine"] and store.versions("shared") == [1]
    with acting_as(B):
        assert store.get("shared").info.labels == ["a", "b", "c"]
    with acting_as(OPERATOR):
        assert store.rollback("shared") == (2, 1) and store.get("shared").info.labels == ["a", "b"]
