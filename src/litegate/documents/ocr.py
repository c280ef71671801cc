"""Optical character recognition behind one small seam: an engine turns a page image into
words with boxes, and ``layout`` turns those into text in reading order.

Engines are registered by name (``register``) and built once, lazily, on first use; each
guards its own inference with a lock, so worker threads can share it. Built in:

- ``rapidocr`` (the default): PP-OCRv6 small detection and recognition run by onnxruntime,
  the ONNX files shipped inside the ``rapidocr`` wheel. They are passed by path and checked
  against pinned sha256s, so the library never reaches for its model download.
- ``rapidocr-verbatim``: the same models, the recogniser's own greedy reading with no word
  mended (``ShapeDecode`` off), for codes and names that must stay exactly as read.
- ``tesseract``: Debian's ``tesseract-ocr`` (+ ``tesseract-ocr-eng``), run as a process.

bench/documents.py measures them on the same rendered invoices, receipts and letters: rapidocr
misread 0.02% of characters on clean pages and 0.04% on rotated, blurred, noisy ones, against
1.7% and 1.0% for tesseract (and 1.3% and 5.2% for rapidocr-onnxruntime's PP-OCRv4), at about
the same time per page (1.2-1.4 s on 2 busy cores); hence the default.
"""

from __future__ import annotations

import bisect
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from litegate.documents import lexicon, preprocess
from litegate.errors import ModelFileError, ModelNotAvailable
from litegate.packages import file_sha256

DEFAULT_ENGINE = "rapidocr"
MAX_SIDE = 4000  # pixels; documents.images scales larger pages down to this before OCR


@dataclass
class Word:
    """Recognised text with its axis-aligned box ``[x0, y0, x1, y1]`` in image pixels. On a
    skewed page an engine also gives the slope of the text's baseline (dy/dx) and the text's
    own height (the box of a tilted line is taller than its letters)."""

    text: str
    box: list[float]
    score: float = 1.0
    slope: float | None = None
    height: float | None = None


class OcrEngine(Protocol):
    name: str

    def recognize(self, image: Any) -> list[Word]:
        """Words (or runs of words) found on ``image``, a PIL image, in any order."""
        ...


_FACTORIES: dict[str, Callable[[], OcrEngine]] = {}
_BUILT: dict[str, OcrEngine] = {}
_BUILD_LOCK = threading.Lock()
_THREADS = {"intra_op": 0}  # the compute budget's share for OCR (0: onnxruntime's own choice, every core)


def set_threads(threads: int) -> None:
    """Threads each OCR engine may use (litegate.compute's budget); engines built with another
    count are rebuilt on their next use."""
    with _BUILD_LOCK:
        if _THREADS["intra_op"] != threads:
            _THREADS["intra_op"] = threads
            _BUILT.clear()


def threads() -> int:
    return _THREADS["intra_op"]


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

NEAR_TILT = 6  # wide words whose median slope gives the page's tilt at a height (bench/ocr.py: 4-7 alike)


def _wide(w: Word) -> bool:
    return w.slope is not None and w.box[2] - w.box[0] > 3 * (w.height or 1.0)


def tilts_at(words: list[Word], heights: list[float], near: int = NEAR_TILT) -> list[float]:
    """The page's skew (dy/dx) at each of ``heights`` (y in the page's pixels): the median
    baseline slope of the ``near`` words wide enough to tell whose centres are nearest that
    height. A photographed receipt bends: its head may slope one way and its foot the other,
    and one slope for the page put a price beside the label of the next line (WildReceipt dev,
    100 photos: CER 5.46% -> 5.05% against one median slope per page). Past ~11 degrees it is
    no scan: 0 is given."""
    sloped = sorted(((w.box[1] + w.box[3]) / 2, float(w.slope)) for w in words if _wide(w))  # type: ignore[arg-type]
    if len(sloped) < 3:
        return [0.0] * len(heights)
    ys = [y for y, _ in sloped]
    out = []
    for y in heights:
        # the ``near`` nearest by height: a window grown from where y falls in the sorted list
        lo = hi = bisect.bisect_left(ys, y)
        while hi - lo < min(near, len(ys)):
            if lo > 0 and (hi >= len(ys) or y - ys[lo - 1] <= ys[hi] - y):
                lo -= 1
            else:
                hi += 1
        slopes = sorted(s for _, s in sloped[lo:hi])
        middle = (slopes[(len(slopes) - 1) // 2] + slopes[len(slopes) // 2]) / 2
        out.append(middle if abs(middle) < 0.2 else 0.0)
    return out


RULE_CHARS = frozenset("*-=_~#.·•+")  # what a printed rule or a dotted leader is drawn with


def is_rule(text: str) -> bool:
    """Whether a run of text is a printed rule (``*****``, ``-------``, ``.......``): five or
    more characters, nearly all of them rule characters (a stray misread is allowed), or a rule
    the recogniser took for ideographs (``_misread_rule``). A rule separates blocks but carries
    no text, and read as text it only adds noise."""
    run = "".join(text.split())
    if len(run) < 5:
        return False
    return sum(ch in RULE_CHARS for ch in run) >= 0.8 * len(run) or _misread_rule(run)


def _ideograph(ch: str) -> bool:
    return "\u2e80" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af"


def _misread_rule(run: str) -> bool:
    """The recogniser reads CJK as well as Latin, and a row of asterisks or of ``+=+=`` often
    comes out as ideographs: ``本本本本本本水水``, ``*冰冰**冰***本**``, ``十二十二十=十二``.
    Such a run is ideographs and rule characters only, and a few ideographs repeated over and
    over (at most 40% of them distinct), where a line of CJK text rarely repeats a character.
    WildReceipt and softmatic (Latin-script receipts): 26 such runs in 518 pages, all rules."""
    ideographs = [ch for ch in run if _ideograph(ch)]
    rule = sum(ch in RULE_CHARS for ch in run)
    return (len(ideographs) >= 3 and rule + len(ideographs) >= 0.8 * len(run)
            and len(set(ideographs)) <= max(2, 0.4 * len(ideographs)))


def without_rules(text: str) -> str:
    """``text`` less its runs (between spaces) that are rules misread as ideographs: a line
    such as ``FUEL TOTAL 55.19 本车本本车车`` keeps its words."""
    runs = text.split()
    kept = [run for run in runs if not (len(run) >= 5 and _misread_rule(run))]
    return text if len(kept) == len(runs) else " ".join(kept)


def layout(words: list[Word]) -> list[tuple[str, list[float]]]:
    """Words grouped into lines, in reading order: (line text, line box).

    The page is first straightened (each word's centre moved by the page's skew where it
    stands, ``tilts_at``), so a row of a slightly rotated or bent page stays one row across it.
    A word then joins the line it overlaps most vertically (at least half the smaller
    height); lines run top to bottom and words left to right, joined by a space. The cells of
    a table row therefore come out as one line, which is how a reader (and a model) expects
    them. Printed rules are left out, read as rule characters or misread as ideographs
    (``is_rule``, ``without_rules``)."""
    words = [w if text == w.text else replace(w, text=text)
             for w in words if not is_rule(w.text) and (text := without_rules(w.text))]
    tilts = tilts_at(words, [(w.box[1] + w.box[3]) / 2 for w in words])
    centres = sorted((w.box[0] + w.box[2]) / 2 for w in words)
    middle = centres[len(centres) // 2] if centres else 0.0  # turned about the page's middle, not its edge
    placed = []
    for w, tilt in zip(words, tilts):
        x0, y0, x1, y1 = w.box
        h = max(w.height or (y1 - y0), 1.0)
        yc = (y0 + y1) / 2 - tilt * ((x0 + x1) / 2 - middle)
        placed.append((yc - h / 2, yc + h / 2, h, w))
    lines: list[dict[str, Any]] = []
    for y0, y1, h, w in sorted(placed, key=lambda p: p[0] + p[1]):
        best, best_overlap = None, 0.0
        for line in lines:
            overlap = min(y1, line["y1"]) - max(y0, line["y0"])
            frac = overlap / max(min(h, line["h"]), 1.0)
            if frac >= 0.5 and frac > best_overlap:
                best, best_overlap = line, frac
        if best is None:
            lines.append({"words": [w], "y0": y0, "y1": y1, "h": h})
        else:
            # the line's band follows its words' mean, not their union (a tall word would
            # otherwise swallow the next line)
            n = len(best["words"]) + 1
            best["words"].append(w)
            best["y0"] += (y0 - best["y0"]) / n
            best["y1"] += (y1 - best["y1"]) / n
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
}
# The wheel's text-direction classifier (upright or 180 degrees) is left off: on long lines of
# upright text it often answers "180" and the line comes out as garbage (bench/documents.py:
# a 15% error rate on such a letter with it, 0% without).
RAPIDOCR_HINT = "pip install rapidocr==3.10.0 onnxruntime"


class RapidOcrEngine:
    """PP-OCRv6 small (multilingual Latin and CJK) through rapidocr and onnxruntime."""

    name = "rapidocr"

    def __init__(self, threads: int | None = None, extra: dict[str, Any] | None = None, mend: bool = True) -> None:
        """``mend``: read words whose shape or spelling breaks as the recogniser's likeliest
        alternative (``ShapeDecode``); off, the text is the recogniser's own greedy reading
        (the ``rapidocr-verbatim`` engine, for codes and names that must stay as printed)."""
        threads = threads or _THREADS["intra_op"]
        try:
            import rapidocr
            from rapidocr import RapidOCR
        except ImportError as e:
            raise ModelNotAvailable(f"the rapidocr OCR engine is not installed ({e}); install it with: "
                                    f"{RAPIDOCR_HINT}") from None
        models = Path(rapidocr.__file__).parent / "models"
        # lines are detected on a reduced copy (see _detect) but read from the page itself, cut
        # out line by line (bench/ocr.py: character error on 300 dpi receipts 8.9% -> 8.7%)
        params: dict[str, Any] = {"Global.log_level": "error", "Global.use_cls": False,
                                  # the recogniser pads each batch of lines to its widest line and
                                  # to at least this width; rapidocr's 320 made a short line (a
                                  # price, a date) cost as much as a long one
                                  "Rec.rec_img_shape": [3, REC_HEIGHT, REC_MIN_WIDTH],
                                  # a line whose detection map averages under rapidocr's 0.5 over its
                                  # box is dropped before it is read: bold condensed print and
                                  # faded photos lose whole lines so (DET_BOX_THRESH)
                                  "Det.box_thresh": DET_BOX_THRESH}
        for stage, (file_name, digest) in RAPIDOCR_MODELS.items():
            path = models / file_name
            if not path.is_file() or file_sha256(path) != digest:
                # a missing file would make rapidocr download one: refuse instead
                raise ModelFileError(f"{path} is missing or does not match its pinned sha256; reinstall: "
                                     f"pip install --force-reinstall {RAPIDOCR_HINT.split('install ')[1]}")
            params[f"{stage}.model_path"] = str(path)
        if threads:
            # the detection and recognition models run one after the other: one inter-op thread
            params["EngineConfig.onnxruntime.intra_op_num_threads"] = threads
            params["EngineConfig.onnxruntime.inter_op_num_threads"] = 1
        params.update(extra or {})  # settings under test (bench/ocr.py --param)
        self._ocr = RapidOCR(params=params)
        if mend and (SHAPE_RATIO or WORD_RATIO):
            rec = self._ocr._load_rec_model()
            # the lexicon is read here, with the models, rather than on the first page
            rec.postprocess_op = ShapeDecode(rec.postprocess_op.character, SHAPE_RATIO,
                                             lexicon.words() if WORD_RATIO else None, WORD_RATIO)
        self._text_score = float(self._ocr.cfg.Global.text_score)  # lines read with less confidence are dropped
        self.last_seconds: dict[str, float] = {}
        self.last_detect_size: tuple[int, int] = (0, 0)  # (width, height) of the copy lines were detected on
        self._lock = threading.Lock()

    def recognize(self, image: Any) -> list[Word]:
        import numpy as np

        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])  # OpenCV's channel order
        with self._lock:
            started = time.perf_counter()
            quads = self._detect(bgr)
            detected = time.perf_counter()
            crops = [line_crop(bgr, quad, REC_HEIGHT) for quad in quads]
            texts, scores = self._read_lines(crops) if crops else ([], [])
            # where a page's time went, for bench/ocr.py
            self.last_seconds = {"detect": detected - started, "read": time.perf_counter() - detected}
        words = []
        for quad, text, score in zip(quads, texts, scores):
            if score < self._text_score or not text.strip():
                continue
            # quad: top-left, top-right, bottom-right, bottom-left, following the text's tilt
            (ax, ay), (bx, by), _, (dx, dy) = quad
            xs = [p[0] for p in quad]
            ys = [p[1] for p in quad]
            slope = (by - ay) / (bx - ax) if bx - ax > 1 else None
            words.append(Word(text, [min(xs), min(ys), max(xs), max(ys)], score, slope,
                              ((dx - ax) ** 2 + (dy - ay) ** 2) ** 0.5))
        return words

    def _detect(self, bgr: Any) -> list[list[tuple[float, float]]]:
        """The text lines' quadrilaterals in ``bgr``'s pixels. A page whose letters are taller
        than ``DET_LETTER_HEIGHT`` pixels (a 300 dpi scan, a sharp phone photo) is detected on
        a copy shrunk until they are that tall: the detector's cost grows with the pixels and it
        finds such lines as well there. Any other page is detected as rapidocr sizes it: at most
        ``DET_MAX_SIDE`` long, its short side brought up to 736 pixels (a low-resolution photo's
        small, blurred print is found better enlarged)."""
        import cv2

        rows, cols = bgr.shape[:2]
        letters = preprocess.letter_height(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)) if DET_LETTER_HEIGHT else None
        detector = self._ocr._load_det_model()
        if letters is not None and letters > DET_LETTER_HEIGHT:
            scale = max(DET_LETTER_HEIGHT / letters, DET_MIN_SIDE / max(rows, cols))  # a tiny copy finds nothing
            scale = min(scale, DET_MAX_SIDE / max(rows, cols), 1.0)
            # the copy is sized already: the detector only rounds its sides to multiples of 32
            detector.limit_type, detector.limit_side_len = "max", 10 * DET_MAX_SIDE
        else:
            scale = min(1.0, DET_MAX_SIDE / max(rows, cols))
            detector.limit_type, detector.limit_side_len = "min", DET_MIN_SHORT_SIDE
        small = bgr if scale == 1.0 else cv2.resize(bgr, (max(1, round(cols * scale)), max(1, round(rows * scale))),
                                                    interpolation=cv2.INTER_AREA)
        found = detector(small)
        # the size the detector saw (before its rounding to multiples of 32), for tests and benches
        grown = max(1.0, detector.limit_side_len / min(small.shape[:2])) if detector.limit_type == "min" else 1.0
        self.last_detect_size = (round(small.shape[1] * grown), round(small.shape[0] * grown))
        if found.boxes is None:
            return []
        sx, sy = cols / small.shape[1], rows / small.shape[0]
        return [[(float(p[0]) * sx, float(p[1]) * sy) for p in quad] for quad in found.boxes]

    def _read_lines(self, crops: list[Any]) -> tuple[list[str], list[float]]:
        from rapidocr.ch_ppocr_rec import TextRecInput

        read = self._ocr._load_rec_model()(TextRecInput(img=crops))
        if read.txts is None:
            return [], []
        return [str(t) for t in read.txts], [float(v) for v in read.scores]


class ShapeDecode:
    """The recogniser's greedy CTC decoding, with a character that breaks the shape of its
    word read as the likeliest character that keeps it: a digit between letters (``Lew1s``,
    ``Mal1``) as a letter, a letter between digits (``2O19``) as a digit, when the recogniser
    gave that one at least ``ratio`` times the probability of what it read. Words of mixed
    shape where the read character is sure (``EC1N``, ``V6M``, ``12TH``) stay as read. Given a
    lexicon (``words``) and ``word_ratio``, words it does not hold are then spelt against it
    (``_spell``)."""

    def __init__(self, character: list[str], ratio: float, words: frozenset[str] | None = None,
                 word_ratio: float = 0.0) -> None:
        import numpy as np

        self.character = character
        self.ratio = ratio
        self.words = words
        self.word_ratio = word_ratio
        # one character each (index 0 is the CTC blank, spelt "blank")
        kinds = np.array([0 if len(c) != 1 or i == 0 else 2 if c.isdigit() and c.isascii() else 1 if c.isalpha() else 0
                          for i, c in enumerate(character)])
        self.letters = np.where(kinds == 1)[0]
        self.digits = np.where(kinds == 2)[0]
        # the letters a word of the lexicon may hold (Latin, accented ones included)
        self.latin = np.array([i for i in self.letters if ord(character[i]) < 0x250], dtype=int)

    def __call__(self, preds: Any, return_word_box: bool = False, **kwargs: Any) -> tuple[list[Any], list[Any]]:
        import numpy as np

        idx = preds.argmax(axis=2)
        lines = []
        for b, row in enumerate(idx):
            # greedy CTC: a step's character when it is no blank and not the step before's again
            keep = np.flatnonzero((row != 0) & np.concatenate(([True], row[1:] != row[:-1])))
            chars = [self.character[k] for k in row[keep]]
            probs = preds[b, keep, row[keep]].astype(float).tolist()
            for i, t in enumerate(keep):
                want = self._wanted(chars, i)
                if want is None or not self.ratio:
                    continue
                pool = self.letters if want == "letter" else self.digits
                j = int(pool[preds[b, t, pool].argmax()])
                if preds[b, t, j] >= self.ratio * probs[i]:
                    chars[i], probs[i] = self.character[j], float(preds[b, t, j])
            if self.words and self.word_ratio:
                self._spell(preds[b], keep, chars, probs, self.words)
            lines.append(("".join(chars), round(sum(probs) / len(probs), 5) if probs else 0.0))
        return lines, []

    def _spell(self, steps: Any, keep: Any, chars: list[str], probs: list[float], known: frozenset[str]) -> None:
        """Each word of ``MIN_WORD_LETTERS`` letters or more that is not in the lexicon and is
        one letter away from a word that is, where the recogniser gave that letter at least
        ``word_ratio`` times the probability of the one it read, is read as that word
        (``Recelved``, ``Philadelphta``); the likeliest such letter wins. Runs of letters and
        digits go to ``_letters_for_digits`` first; letters touching a digit are not spelt
        further, and a word with no such neighbour stays as read."""
        import numpy as np

        self._letters_for_digits(steps, keep, chars, probs, known)
        for m in lexicon.WORD.finditer(_one_each(chars)):
            start, end = m.span()
            if end - start < MIN_WORD_LETTERS or (start > 0 and chars[start - 1].isdigit()) \
                    or (end < len(chars) and chars[end].isdigit()):
                continue
            word = m.group().lower()
            if word in known:
                continue
            best: tuple[float, int, str] | None = None
            for i in range(start, end):
                row = steps[keep[i]]
                for j in np.argsort(row[self.latin])[::-1][:SPELL_ALTERNATIVES]:
                    c = self.character[int(self.latin[j])]
                    share = float(row[self.latin[j]]) / max(probs[i], 1e-9)
                    if share < self.word_ratio:
                        break
                    low = c.lower()
                    if low == chars[i].lower() or word[:i - start] + low + word[i - start + 1:] not in known:
                        continue
                    if best is None or share > best[0]:
                        best = (share, i, c)
            if best is not None:
                _, i, c = best
                # the place's probability stays the read letter's: the word is surer, not less sure,
                # and a line's mean decides whether it is kept and whether the page is read turned
                chars[i] = c.upper() if chars[i].isupper() else c.lower() if chars[i].islower() else c

    def _letters_for_digits(self, steps: Any, keep: Any, chars: list[str], probs: list[float],
                            known: frozenset[str]) -> None:
        """A run of letters and digits (``H111``, ``W1LLOW``, ``5ALE``) that becomes a word when each
        digit is read as the likeliest letter the recogniser also saw there (at least
        ``word_ratio`` of the digit's probability) is read as that word (``Hill``). Runs that do
        not become a word, codes and amounts among them, stay as read."""
        import numpy as np

        for m in _ALNUM_RUN.finditer(_one_each(chars)):
            start, end = m.span()
            run = m.group()
            if end - start < MIN_WORD_LETTERS or run.isdigit() or run.isalpha():
                continue
            letters = [c for c in run if c.isalpha()]
            # the case of the letters read: W1LLOW stays in capitals, H111 becomes Hill
            upper = len(letters) > 1 and all(c.isupper() for c in letters)
            read = list(run)
            for i in range(start, end):
                if not chars[i].isdigit():
                    continue
                row = steps[keep[i]]
                j = int(self.latin[int(np.argmax(row[self.latin]))])
                if float(row[j]) < self.word_ratio * max(probs[i], 1e-9):
                    break
                read[i - start] = self.character[j]
            else:
                if "".join(read).lower() in known:
                    for i in range(start, end):
                        if chars[i].isdigit():
                            c = read[i - start]
                            chars[i] = c.upper() if upper else c.lower()

    @staticmethod
    def _wanted(chars: list[str], i: int) -> str | None:
        def shape(k: int) -> str | None:
            if k < 0 or k >= len(chars) or not chars[k].isalnum():
                return None
            return "digit" if chars[k].isdigit() else "letter"

        kind = shape(i)
        if kind is None:
            return None
        other = "letter" if kind == "digit" else "digit"
        left, right = shape(i - 1), shape(i + 1)
        if left == other and right == other:
            return other
        # at a word's end or start, two of the other kind beside it
        if left is None and right == other and shape(i + 2) == other:
            return other if kind == "digit" else None  # a leading letter before digits is a unit or a code: kept
        if right is None and left == other and shape(i - 2) == other:
            return other if kind == "digit" else None  # 30ml, 12TH: a trailing letter after digits is kept
        return None


# a character that breaks its word's shape is read as the likeliest one that keeps it when that
# one had at least this share of the read one's probability (0: off). WildReceipt dev, 40 pages:
# CER 3.75% -> 3.66%, word recall 0.902 -> 0.911 at 0.03; 0.001 also turned codes (C8C9 -> CBC9)
SHAPE_RATIO = 0.03
# a word not in documents.lexicon, one letter from a word that is, is read as that word when the
# recogniser gave the letter at least this share of the read one's probability (0: off)
WORD_RATIO = 0.05
MIN_WORD_LETTERS = 4  # shorter words are left as read
SPELL_ALTERNATIVES = 4  # the likeliest letters tried at each place of a word
_ALNUM_RUN = re.compile(r"[^\W_]+")
REC_HEIGHT = 48  # pixels: the recogniser's input height
REC_MIN_WIDTH = 192  # pixels: the narrowest input it gets (96 misread more short lines: `$` as `S`)
DET_MAX_SIDE = 2000  # pixels: the longer side of the copy text is detected on, at most ...
DET_MIN_SIDE = 640  # ... and at least
DET_MIN_SHORT_SIDE = 736  # rapidocr's own sizing, kept for pages with small or unmeasurable letters
DET_LETTER_HEIGHT = 18  # pixels: taller letters are shrunk to this for detection (0: size by the sides only)
# a detected box is kept when the detection map averages at least this over it (rapidocr: 0.5).
# WildReceipt dev, 100 pages: CER 5.61% -> 5.46% mean, 5.14% -> 4.93% pooled (0.3 and 0.35 the
# same within 0.02 points; 0.2 worse); softmatic dev unchanged. Lowering it only adds boxes.
DET_BOX_THRESH = 0.4


def _one_each(chars: list[str]) -> str:
    """The decoded characters as one string, a character per place (so a match's span indexes
    ``chars``): a multi-character entry of the recogniser's alphabet stands as ``\\0``."""
    return "".join(c if len(c) == 1 else "\0" for c in chars)


def line_crop(bgr: Any, quad: list[tuple[float, float]], height: int) -> Any:
    """One detected line cut out of the full-resolution page and straightened. The detector
    works on a reduced copy of a large page; cutting the line from the page itself keeps the
    strokes of small print, and a line taller than the recogniser's input is shrunk with area
    averaging (its own resize would alias thin strokes)."""
    import cv2
    import numpy as np

    pts = np.array(quad, dtype=np.float32)
    width = int(max(np.linalg.norm(pts[0] - pts[1]), np.linalg.norm(pts[2] - pts[3])))
    tall = int(max(np.linalg.norm(pts[0] - pts[3]), np.linalg.norm(pts[1] - pts[2])))
    width, tall = max(width, 1), max(tall, 1)
    target = np.array([[0, 0], [width, 0], [width, tall], [0, tall]], dtype=np.float32)
    crop = cv2.warpPerspective(bgr, cv2.getPerspectiveTransform(pts, target), (width, tall),
                               borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC)
    if tall >= 1.5 * width:  # a vertical run of text: read it turned
        crop = np.rot90(crop)
    if crop.shape[0] > height:
        scale = height / crop.shape[0]
        crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), height), interpolation=cv2.INTER_AREA)
    return crop


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
        words: list[Word] = []
        lines: dict[tuple[str, ...], list[Word]] = {}
        for row in done.stdout.decode("utf-8", errors="replace").splitlines()[1:]:
            cols = row.split("\t")
            if len(cols) != 12 or cols[0] != "5" or not cols[11].strip():
                continue
            x, y, w, h = (float(c) for c in cols[6:10])
            words.append(Word(cols[11], [x, y, x + w, y + h], max(float(cols[10]), 0.0) / 100))
            lines.setdefault(tuple(cols[1:5]), []).append(words[-1])
        for line in lines.values():  # tesseract found the lines: their tilt is the page's skew
            if len(line) >= 2:
                first, last = line[0].box, line[-1].box
                if last[2] - first[0] > 0:
                    slope = ((last[3] - first[3]) / (last[2] - first[2])) if last[2] != first[2] else 0.0
                    for word in line:
                        word.slope, word.height = slope, None
        return words


register("rapidocr", RapidOcrEngine)
register("rapidocr-verbatim", lambda: RapidOcrEngine(mend=False))
register("tesseract", TesseractEngine)
