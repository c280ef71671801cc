"""Named, versioned models under ``<home>/<kind>s/NAME/vN/`` (classifiers, extractors): the
newest version answers unless an ``active`` file in the name's folder pins an older one (a
rollback); older versions stay; loads are cached. Each version names the encoder it was
trained with; the store hands it that encoder (``encoder_for``), and a request sees the store
through a ``RequestStore`` that reads each model once and encodes each text once."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from litegate.errors import InvalidRequest, NotFound
from litegate.nano.encoders import Encoder, EncoderRegistry, RequestMemo

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class VersionedStore:
    kind = "model"  # "classifier", "extractor": folder, messages, error param
    not_found: type[NotFound] = NotFound
    train_hint = ""  # how to make one, for the not-found message

    def __init__(self, home: Path, load: Callable[[Path], Any], load_info: Callable[[Path], Any],
                 encoders: EncoderRegistry | None = None):
        self.dir = Path(home) / f"{self.kind}s"
        self.encoders = encoders if encoders is not None else EncoderRegistry()
        self._load = load
        self._load_info = load_info  # a version's info alone, without loading its model
        self._cache: dict[tuple[str, int], Any] = {}
        self._lock = threading.Lock()

    @property
    def encoder(self) -> Encoder:
        """The default encoder (what a new model is trained with unless told otherwise)."""
        return self.encoders.default

    def encoder_for(self, model: Any) -> Encoder:
        """The encoder ``model`` was trained with: the one it must be run with."""
        return self.encoders.get(model.info.encoder)

    def for_request(self, memo: RequestMemo) -> RequestStore:
        return RequestStore(self, memo)

    def check_name(self, name: str) -> None:
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise InvalidRequest(f"a {self.kind} name is 1-64 letters, digits, '_', '.' or '-', starting with a "
                                 "letter or digit", param="name")

    def versions(self, name: str) -> list[int]:
        folder = self.dir / name
        if not folder.is_dir():
            return []
        return sorted(int(p.name[1:]) for p in folder.iterdir()
                      if p.is_dir() and p.name.startswith("v") and p.name[1:].isdigit())

    def next_version(self, name: str) -> int:
        return (self.versions(name) or [0])[-1] + 1

    def active(self, name: str, versions: list[int] | None = None) -> int | None:
        """The version that answers: the pinned one after a rollback, else the newest
        (``versions``: the name's versions, when the caller has listed them already)."""
        versions = self.versions(name) if versions is None else versions
        if not versions:
            return None
        try:
            pinned = int((self.dir / name / "active").read_text().strip())
        except (OSError, ValueError):
            return versions[-1]
        return pinned if pinned in versions else versions[-1]

    def put(self, name: str, version: int, model: Any) -> None:
        """Save a new version (``model.save(dir)``), make it the active one and cache it."""
        (self.dir / name).mkdir(parents=True, exist_ok=True)
        model.save(self.dir / name / f"v{version}")
        with self._lock:
            self._cache[(name, version)] = model
        (self.dir / name / "active").unlink(missing_ok=True)

    def rollback(self, name: str) -> tuple[int, int]:
        """Pin the version before the active one; returns (from, to)."""
        self.get(name)  # a clear 404 for an unknown name
        versions = self.versions(name)
        current = self.active(name, versions)
        older = [v for v in versions if current is not None and v < current]
        if current is None or not older:
            raise InvalidRequest(f"{self.kind} {name!r} has no version before v{current} to roll back to",
                                 param=self.kind)
        pin = self.dir / name / "active"
        tmp = pin.with_name("active.tmp")
        tmp.write_text(str(older[-1]))
        tmp.replace(pin)
        return current, older[-1]

    def get(self, name: str, version: int | None = None) -> Any:
        self.check_name(name)
        versions = self.versions(name)
        code = f"{self.kind}_not_found"
        if not versions:
            known = ", ".join(self.names()) or "none yet"
            raise self.not_found(f"no {self.kind} named {name!r} (known: {known}); {self.train_hint.format(name=name)}",
                                 param=self.kind, code=code)
        version = version or self.active(name, versions)
        if version not in versions:
            raise self.not_found(f"{self.kind} {name!r} has no version {version} (has {versions})", param=self.kind,
                                 code=code)
        with self._lock:
            model = self._cache.get((name, version))
        if model is None:
            model = self._load(self.dir / name / f"v{version}")
            with self._lock:
                self._cache[(name, version)] = model
        return model

    def info(self, name: str, version: int) -> Any:
        """One version's info (the loaded model's if it is cached, else read from its folder):
        listing versions must not load every version's model."""
        with self._lock:
            model = self._cache.get((name, version))
        if model is not None:
            return model.info
        if version not in self.versions(name):
            self.get(name, version)  # the not-found error, worded as everywhere
        return self._load_info(self.dir / name / f"v{version}")

    def names(self) -> list[str]:
        if not self.dir.is_dir():
            return []
        return sorted(p.name for p in self.dir.iterdir() if p.is_dir() and self.versions(p.name))

    def list(self) -> list[Any]:
        return [self.get(name).info for name in self.names()]


class RequestStore:
    """One request's view of a store: each model is looked up once (its folder listed once)
    and each text encoded once, across a cascade's steps and the observers after it."""

    def __init__(self, store: VersionedStore, memo: RequestMemo):
        self.store = store
        self.memo = memo

    def get(self, name: str, version: int | None = None) -> Any:
        key = (self.store.kind, name, version)
        model = self.memo.models.get(key)
        if model is None:
            model = self.memo.models[key] = self.store.get(name, version)
        return model

    @property
    def encoder(self) -> Encoder:
        return self.memo.encoder(self.store.encoder)

    def encoder_for(self, model: Any) -> Encoder:
        return self.memo.encoder(self.store.encoder_for(model))

    def __getattr__(self, item: str) -> Any:
        return getattr(self.store, item)
