"""Named, versioned models under ``<home>/<kind>s/NAME/vN/`` (classifiers, extractors): the
newest version answers unless an ``active`` file in the name's folder pins an older one (a
rollback); older versions stay; loads are cached. Each version names the encoder it was
trained with; the store hands it that encoder (``encoder_for``), and a request sees the store
through a ``RequestStore`` that reads each model once and encodes each text once.

Names belong to an owner (``litegate.tenancy``): the operator (the CLI, an admin key, everyone
on a server without keys) trains the shared models under ``<kind>s/NAME``; an API key that is
not an admin trains its own under ``<kind>s/~keys/<its fingerprint>/NAME``, which no other key
sees. A key reads its own model of a name first and the shared one otherwise (the operator's
models serve every key), and never changes a shared one."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from litegate.errors import Forbidden, InvalidRequest, NotFound
from litegate.nano.encoders import Encoder, EncoderRegistry, RequestMemo
from litegate.tenancy import current

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
KEYS_DIR = "~keys"  # the keys' own models; no name can start with "~", so it never lists as one


def namespace() -> str | None:
    """Whose names the caller works with (``Tenant.namespace``)."""
    return current().namespace


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
        """The encoder ``model`` was trained with: the one it must be run with (with its own
        tuned top layers when it was tuned)."""
        base = self.encoders.get(model.info.encoder)
        tuned = getattr(model, "tuned", None)
        return base if tuned is None else tuned.encoder(base)

    def for_request(self, memo: RequestMemo) -> RequestStore:
        return RequestStore(self, memo)

    def check_name(self, name: str) -> None:
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise InvalidRequest(f"a {self.kind} name is 1-64 letters, digits, '_', '.' or '-', starting with a "
                                 "letter or digit", param="name")

    def _own(self, name: str) -> Path:
        """The caller's folder for ``name``: where it trains (it may not exist yet)."""
        ns = namespace()
        return self.dir / name if ns is None else self.dir / KEYS_DIR / ns / name

    def folder(self, name: str) -> Path:
        """The folder that answers for ``name``: the caller's own, else the shared one."""
        own = self._own(name)
        return own if namespace() is None or own.is_dir() else self.dir / name

    def owned(self, name: str) -> bool:
        """Whether the caller may change ``name`` (train a version, roll back): its own, or it is the operator."""
        return namespace() is None or self._own(name).is_dir()

    def versions(self, name: str) -> list[int]:
        return _versions(self.folder(name))

    def next_version(self, name: str) -> int:
        return (_versions(self._own(name)) or [0])[-1] + 1

    def active(self, name: str, versions: list[int] | None = None) -> int | None:
        """The version that answers: the pinned one after a rollback, else the newest
        (``versions``: the name's versions, when the caller has listed them already)."""
        versions = self.versions(name) if versions is None else versions
        if not versions:
            return None
        try:
            pinned = int((self.folder(name) / "active").read_text().strip())
        except (OSError, ValueError):
            return versions[-1]
        return pinned if pinned in versions else versions[-1]

    def put(self, name: str, version: int, model: Any) -> None:
        """Save a new version (``model.save(dir)``) in the caller's folder, make it the active one
        and cache it."""
        folder = self._own(name)
        folder.mkdir(parents=True, exist_ok=True)
        model.save(folder / f"v{version}")
        with self._lock:
            self._cache[(str(folder), version)] = model
        (folder / "active").unlink(missing_ok=True)

    def rollback(self, name: str) -> tuple[int, int]:
        """Pin the version before the active one; returns (from, to)."""
        self.get(name)  # a clear 404 for an unknown name
        if not self.owned(name):
            raise Forbidden(f"{self.kind} {name!r} is the operator's: only an admin key may roll it back",
                            param=self.kind)
        versions = self.versions(name)
        current_version = self.active(name, versions)
        older = [v for v in versions if current_version is not None and v < current_version]
        if current_version is None or not older:
            raise InvalidRequest(f"{self.kind} {name!r} has no version before v{current_version} to roll back to",
                                 param=self.kind)
        pin = self.folder(name) / "active"
        tmp = pin.with_name("active.tmp")
        tmp.write_text(str(older[-1]))
        tmp.replace(pin)
        return current_version, older[-1]

    def get(self, name: str, version: int | None = None) -> Any:
        self.check_name(name)
        folder = self.folder(name)
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
        key = (str(folder), version)
        with self._lock:
            model = self._cache.get(key)
        if model is None:
            model = self._load(folder / f"v{version}")
            with self._lock:
                self._cache[key] = model
        return model

    def info(self, name: str, version: int) -> Any:
        """One version's info (the loaded model's if it is cached, else read from its folder):
        listing versions must not load every version's model."""
        folder = self.folder(name)
        with self._lock:
            model = self._cache.get((str(folder), version))
        if model is not None:
            return model.info
        if version not in _versions(folder):
            self.get(name, version)  # the not-found error, worded as everywhere
        return self._load_info(folder / f"v{version}")

    def names(self) -> list[str]:
        """The names the caller sees: its own and the shared ones."""
        ns = namespace()
        roots = [self.dir] + ([self.dir / KEYS_DIR / ns] if ns is not None else [])
        return sorted({p.name for root in roots if root.is_dir() for p in root.iterdir()
                       if p.is_dir() and NAME_RE.fullmatch(p.name) and _versions(p)})

    def list(self) -> list[Any]:
        return [self.get(name).info for name in self.names()]


def _versions(folder: Path) -> list[int]:
    if not folder.is_dir():
        return []
    return sorted(int(p.name[1:]) for p in folder.iterdir()
                  if p.is_dir() and p.name.startswith("v") and p.name[1:].isdigit())


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
