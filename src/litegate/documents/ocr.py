"""Optical character recognition behind one small seam: an engine turns a page image into
words with boxes, and ``layout`` turns those into text in reading order.

Engines are registered by name (``register``) and built once, lazily, on first use; each
guards its own inference with a lock, so worker threads can share it. Built in:

- ``rapidocr`` (the default): PP-OCRv6 small detection and recognition run by onnxruntime,
  the ONNX files shipped inside the ``rapidocr`` wheel. They are passed by path and checked
  against pinned sha256s, so the library never reaches for its model download.
- ``tesseract``: Debian's ``tesseract-ocr`` (+ ``tesseract-ocr-eng``), run as a process.

bench/documents.py measures both on the same rendered pages.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from litegate.errors import ModelFileError, ModelNotAvailable

DEFAULT_ENGINE = "rapidocr"


@dataclass
class Word:
    """Recognised text with its axis-aligned box ``[x0, y0, x1, y1]`` in image pixels."""

    text: str
    box: list[float]
    score: float = 1.0


class OcrEngine(Protocol):
    name: str

    def recognize(self, image: Any) -> list[Word]:
        """Words (or runs of words) found on ``image``, a PIL image, in any order."""
        ...


_FACTORIES: dict[str, Callable[[], OcrEngine]] = {}
_BUILT: dict[str, OcrEngine] = {}
_BUILD_LOCK = threading.Lock()


def register(name: str, factory: Callable[[], OcrEngine]) -> None:
    """Make an engine available by name; ``factory`` runs once, on the name's first use."""
    with _BUILD_LOCK:
        _FACTORIES[name] = factory
        _BUILT.pop(name, None)


def names() -> list[str]:
    return list(_FACTORIES)


def engine(name: str | None = None) -> OcrEngine:
    """The engine called ``name`` (default: rapidocr), built on first use."""
    name = name or DEFAULT_ENGINE
    built = _BUILT.get(name)
    if built is not None:
        return built
    with _BUILD_LOCK:
        if name not in _BUILT:
            if name not in _FACTORIES:
                raise ModelNotAvailable(f"no OCR engine called {name!r}; available: {', '.join(_FACTORIES)}")
            _BUILT[name] = _FACTORIES[name]()
        return _BUILT[name]


# ---- reading order ---------------------------------------------------------------------------

def layout(words: list[Word]) -> list[tuple[str, list[float]]]:
    """Words grouped into lines, in reading order: (line text, line box).

    A word joins the line it overlaps most vertically (at least half the smaller height),
    lines run top to bottom and words left to right, joined by a space. Columns of a table
    row therefore come out as one line, which is how a reader (and a model) expects them."""
    lines: list[dict[str, Any]] = []
    for w in sorted(words, key=lambda w: (w.box[1] + w.box[3]) / 2):
        x0, y0, x1, y1 = w.box
        h = max(y1 - y0, 1.0)
        best, best_overlap = None, 0.0
        for line in lines:
            ly0, ly1 = line["y0"], line["y1"]
            overlap = min(y1, ly1) - max(y0, ly0)
            frac = overlap / max(min(h, line["h"]), 1.0)
            if frac >= 0.5 and frac > best_overlap:
                best, best_overlap = line, frac
        if best is None:
            lines.append({"words": [w], "y0": y0, "y1": y1, "h": h})
        else:
            best["words"].append(w)
            # the line's band follows its words' median, not the union (a tall word would
            # otherwise swallow the next line)
            best["y0"] = (best["y0"] * (len(best["words"]) - 1) + y0) / len(best["words"])
            best["y1"] = (best["y1"] * (len(best["words"]) - 1) + y1) / len(best["words"])
            best["h"] = max(best["y1"] - best["y0"], 1.0)
    out = []
    for line in sorted(lines, key=lambda line: line["y0"]):
        ws = sorted(line["words"], key=lambda w: w.box[0])
        text = " ".join(w.text.strip() for w in ws if w.text.strip())
        if text:
            box = [min(w.box[0] for w in ws), min(w.box[1] for w in ws), max(w.box[2] for w in ws),
                   max(w.box[3] for w in ws)]
            out.append((text, box))
    return out


def lines_to_text(lines: list[tuple[str, list[float]]]) -> str:
    """Lines joined by newlines; a blank line where the vertical gap is well over a line's
    height (a new block: the address, the items, the totals)."""
    if not lines:
        return ""
    heights = sorted(box[3] - box[1] for _, box in lines)
    typical = max(heights[len(heights) // 2], 1.0)
    parts = [lines[0][0]]
    for (_, prev), (text, box) in zip(lines, lines[1:]):
        parts.append("\n\n" if box[1] - prev[3] > 1.5 * typical else "\n")
        parts.append(text)
    return "".join(parts)


# ---- rapidocr --------------------------------------------------------------------------------

RAPIDOCR_MODELS = {  # inside the rapidocr 3.10.0 wheel, under rapidocr/models/
    "Det": ("PP-OCRv6_det_small.onnx", "090f04abcd9d9a7498bc4ebf677e4cb9bdce1fe4197ddb7e529f1ef44e1ff94f"),
    "Rec": ("PP-OCRv6_rec_small.onnx", "6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884"),
    "Cls": ("ch_ppocr_mobile_v2.0_cls_mobile.onnx", "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c"),
}
RAPIDOCR_HINT = "pip install rapidocr==3.10.0 onnxruntime"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


class RapidOcrEngine:
    """PP-OCRv6 small (multilingual Latin and CJK) through rapidocr and onnxruntime."""

    name = "rapidocr"

    def __init__(self, threads: int | None = None) -> None:
        try:
            import rapidocr
            from rapidocr import RapidOCR
        except ImportError as e:
            raise ModelNotAvailable(f"the rapidocr OCR engine is not installed ({e}); install it with: "
                                    f"{RAPIDOCR_HINT}") from None
        models = Path(rapidocr.__file__).parent / "models"
        params: dict[str, Any] = {"Global.log_level": "error"}
        for stage, (file_name, digest) in RAPIDOCR_MODELS.items():
            path = models / file_name
            if not path.is_file() or _sha256(path) != digest:
                # a missing file would make rapidocr download one: refuse instead
                raise ModelFileError(f"{path} is missing or does not match its pinned sha256; reinstall: "
                                     f"pip install --force-reinstall {RAPIDOCR_HINT.split('install ')[1]}")
            params[f"{stage}.model_path"] = str(path)
        if threads:
            params["EngineConfig.onnxruntime.intra_op_num_threads"] = threads
        self._ocr = RapidOCR(params=params)
        self._lock = threading.Lock()

    def recognize(self, image: Any) -> list[Word]:
        import numpy as np

        rgb = np.asarray(image.convert("RGB"))
        with self._lock:
            result = self._ocr(rgb[:, :, ::-1].copy())  # it works in OpenCV's BGR order
        if result.boxes is None or result.txts is None:
            return []
        words = []
        for quad, text, score in zip(result.boxes, result.txts, result.scores):
            xs = [float(p[0]) for p in quad]
            ys = [float(p[1]) for p in quad]
            words.append(Word(str(text), [min(xs), min(ys), max(xs), max(ys)], float(score)))
        return words


# ---- tesseract -------------------------------------------------------------------------------

class TesseractEngine:
    """Debian's tesseract (LSTM, English), one process per page; its own word boxes."""

    name = "tesseract"

    def __init__(self, lang: str = "eng", timeout_s: float = 120.0) -> None:
        if shutil.which("tesseract") is None:
            raise ModelNotAvailable("the tesseract OCR engine is not installed; install it with: "
                                    "apt-get install tesseract-ocr tesseract-ocr-eng")
        self.lang = lang
        self.timeout_s = timeout_s

    def recognize(self, image: Any) -> list[Word]:
        import io

        buf = io.BytesIO()
        image.convert("L").save(buf, format="PNG")
        try:
            done = subprocess.run(["tesseract", "stdin", "stdout", "-l", self.lang, "--psm", "3", "tsv"],
                                  input=buf.getvalue(), capture_output=True, timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            raise ModelNotAvailable(f"tesseract took over {self.timeout_s:g} s on one page") from None
        if done.returncode != 0:
            raise ModelNotAvailable(f"tesseract failed: {done.stderr.decode(errors='replace').strip()[-200:]}")
        words = []
        for row in done.stdout.decode("utf-8", errors="replace").splitlines()[1:]:
            cols = row.split("\t")
            if len(cols) != 12 or cols[0] != "5" or not cols[11].strip():
                continue
            x, y, w, h = (float(c) for c in cols[6:10])
            words.append(Word(cols[11], [x, y, x + w, y + h], max(float(cols[10]), 0.0) / 100))
        return words


register("rapidocr", RapidOcrEngine)
register("tesseract", TesseractEngine)
