"""OCR alone on real scans with human transcripts: character error rate, how many of the
transcript's words were read, and seconds per page, per data set and split.

    python bench/ocr.py --set wildreceipt --data path/to/wildreceipt [--split dev] [--limit N]
    python bench/ocr.py --set softmatic --data path/to/vision-data
    python bench/ocr.py --set funsd --data path/to/funsd/dataset

Data sets (each read from a local copy; nothing is downloaded):

- ``wildreceipt``: photos and scans of real shop and restaurant receipts (mostly English), each
  text run boxed and typed by a person (the test file of the set, 472 receipts: ``test.txt``
  beside ``image_files/``). The transcript writes a run without its spaces
  (``KOREANRESTAURANT``) and leaves illegible runs empty: so the rate here is taken with all
  whitespace removed, and text read inside a region the transcript marks illegible is not
  counted.
- ``softmatic``: 48 German shop receipts at 300 dpi (see bench/receipts.py); the transcript is a
  commercial OCR service's reading, not a person's.
- ``funsd``: scanned business forms with a person's word-level transcript (``annotations/*.json``
  beside ``images/*.png``).

Split: a page is ``dev`` when the first byte of the sha1 of its file name is below 86 (a third),
else ``test``. Only ``dev`` is looked at while tuning; ``test`` is the held-out figure.

Measures, per page: the character error rate (edit distance over the transcript's length; both
sides put in reading order by ``documents.ocr.layout`` from their own boxes, accents folded);
``word_recall``, the share of the transcript's words (runs of 3+ characters) found in the OCR
text, which does not depend on reading order; seconds for the page through ``documents.images.
ocr_image`` (preprocessing, detection, recognition, layout) after one warm-up page, split into
preparation, detection plus recognition, and layout. Prints one JSON object with the load average.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from litegate.compute import ComputeBudget, available_cpus
from litegate.documents import images as doc_images
from litegate.documents import ocr, preprocess

sys.path.insert(0, str(Path(__file__).parent))
from receipts import edit_distance, load_softmatic, wildreceipt_rows  # noqa: E402  (a sibling bench script)


@dataclass
class Page:
    id: str
    image: Path
    words: list[ocr.Word]  # the transcript, with boxes in the image's pixels
    ignore: list[list[float]] = field(default_factory=list)  # regions the transcript marks illegible
    spaced: bool = True  # False: the transcript writes runs without spaces
    reference: str | None = None  # a transcript already in reading order (no boxes)

    @property
    def split(self) -> str:
        return "dev" if hashlib.sha1(self.id.encode()).digest()[0] < 86 else "test"


def _quad_box(quad: list[float]) -> list[float]:
    xs, ys = quad[0::2], quad[1::2]
    return [min(xs), min(ys), max(xs), max(ys)]


def load_wildreceipt(root: Path) -> list[Page]:
    pages = []
    for row in wildreceipt_rows(root):
        words, ignore = [], []
        for a in row["annotations"]:
            box = _quad_box(a["box"])
            if a["text"].strip():
                words.append(ocr.Word(a["text"], box))
            else:
                ignore.append(box)
        pages.append(Page(row["file_name"], root / row["file_name"], words, ignore, spaced=False))
    return pages


def load_softmatic_pages(root: Path) -> list[Page]:
    pages = []
    for s in load_softmatic(root):
        if s.reference is None:
            continue
        words = [ocr.Word(word, [0.0, 0.0, 0.0, 0.0]) for word in s.reference.split()]
        pages.append(Page(s.id, s.image, words, reference=s.reference))
    return pages


def load_funsd(root: Path) -> list[Page]:
    pages = []
    for ann in sorted(root.glob("*_data/annotations/*.json")):
        image = ann.parent.parent / "images" / (ann.stem + ".png")
        if not image.is_file():
            continue
        form = json.loads(ann.read_text())["form"]
        words = [ocr.Word(w["text"], [float(v) for v in w["box"]])
                 for f in form for w in f["words"] if w["text"].strip()]
        pages.append(Page(f"{ann.parent.parent.name}/{image.name}", image, words))
    return pages


LOADERS = {"wildreceipt": load_wildreceipt, "softmatic": load_softmatic_pages, "funsd": load_funsd}


# ---- scoring ---------------------------------------------------------------------------------

def fold(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


def page_text(lines: list[tuple[str, list[float]]], spaced: bool) -> str:
    """The lines as compared: accents folded, runs of spaces collapsed (or, for a transcript
    written without spaces, every space dropped), one line a line."""
    out = []
    for text, _ in lines:
        words = fold(text).split()
        if words:
            out.append(" ".join(words) if spaced else "".join(words))
    return "\n".join(out)


def _inside(box: list[float], regions: list[list[float]], share: float = 0.5) -> bool:
    """Whether at least ``share`` of ``box`` lies in one of ``regions``."""
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-6)
    for r in regions:
        w = min(box[2], r[2]) - max(box[0], r[0])
        h = min(box[3], r[3]) - max(box[1], r[1])
        if w > 0 and h > 0 and w * h >= share * area:
            return True
    return False


def illegible(word: ocr.Word, page: Page) -> bool:
    """Read inside a region the transcript marks illegible, and on none of its words (an
    illegible region may be drawn over legible lines too)."""
    return _inside(word.box, page.ignore) and not _inside(word.box, [w.box for w in page.words], 0.2)


def score(page: Page, words: list[ocr.Word]) -> dict[str, Any]:
    if page.ignore:
        words = [w for w in words if not illegible(w, page)]
    # the transcript's boxes are upright rectangles: give each the tilt the OCR measured at its
    # height on the same photo (and the height of its letters, not of the tilted run), so one
    # reading order applies to both sides
    tilts = ocr.tilts_at(words, [(w.box[1] + w.box[3]) / 2 for w in page.words])
    truth_words = [ocr.Word(w.text, w.box, slope=tilt,
                            height=max((w.box[3] - w.box[1]) - abs(tilt) * (w.box[2] - w.box[0]),
                                       0.5 * (w.box[3] - w.box[1])))
                   if tilt else w for w, tilt in zip(page.words, tilts)]
    ref = (page_text([(line, []) for line in page.reference.splitlines()], page.spaced) if page.reference is not None
           else page_text(ocr.layout(truth_words), page.spaced))
    hyp = page_text(ocr.layout(words), page.spaced)
    errors = edit_distance(ref, hyp)
    flat = "".join(hyp.split())
    truth = ["".join(fold(w.text).split()) for w in page.words]
    truth = [t for t in truth if len(t) >= 3]
    found = sum(t in flat for t in truth)
    return {"cer": round(errors / max(len(ref), 1), 4), "ref_chars": len(ref), "errors": errors,
            "words": len(truth), "words_found": found, "text": hyp}


# ---- running ---------------------------------------------------------------------------------

def read_page(path: Path, engine: str | None) -> tuple[list[ocr.Word], dict[str, float]]:
    """The page through the same steps as ``documents.images.ocr_image``, timed step by step
    (wall and CPU seconds); the words' boxes in the image's pixels."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        image = ImageOps.exif_transpose(im).convert("RGB")
    c0, t0 = time.process_time(), time.perf_counter()
    prepared, place = preprocess.prepare(image, doc_images.OCR_MAX_SIDE)
    t1 = time.perf_counter()
    if hasattr(doc_images, "recognize_upright"):
        words = doc_images.recognize_upright(ocr.engine(engine), prepared, place)
    else:  # the code before recognize_upright was split out of ocr_image (for before/after runs)
        words = ocr.engine(engine).recognize(prepared)
        if words and doc_images._legibility(words) < doc_images.TURN_BELOW:
            turned = ocr.engine(engine).recognize(prepared.rotate(180))
            if doc_images._legibility(turned) > doc_images._legibility(words) + 0.05:
                words, place.turned = turned, True
    t2 = time.perf_counter()
    steps = dict(getattr(ocr.engine(engine), "last_seconds", {}))  # the engine's own split, if it keeps one
    ocr.layout(words)  # timed here; scored on the original's pixels below
    t3 = time.perf_counter()
    c3 = time.process_time()
    for w in words:
        w.box = place.to_original(w.box)
        w.height = w.height / place.scale if w.height else None
    return words, {"prepare": t1 - t0, "ocr": t2 - t1, **steps, "layout": t3 - t2, "total": t3 - t0, "cpu": c3 - c0}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3) if ordered else 0.0


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    cers = [r["cer"] for r in rows]
    seconds = [r["seconds"]["total"] for r in rows]
    return {
        "pages": len(rows),
        "cer_mean": round(sum(cers) / len(cers), 4),
        "cer_median": pct(cers, 0.5),
        "cer_pooled": round(sum(r["errors"] for r in rows) / max(sum(r["ref_chars"] for r in rows), 1), 4),
        "word_recall": round(sum(r["words_found"] for r in rows) / max(sum(r["words"] for r in rows), 1), 4),
        "seconds_p50": pct(seconds, 0.5),
        "seconds_p90": pct(seconds, 0.9),
        "cpu_seconds_p50": pct([r["seconds"]["cpu"] for r in rows], 0.5),
        "seconds_mean_by_step": {k: round(sum(r["seconds"].get(k, 0.0) for r in rows) / len(rows), 3)
                                 for k in ("prepare", "ocr", "detect", "read", "layout")},
        "load1_mean": round(sum(r["load1"] for r in rows) / len(rows), 2),
    }


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", required=True, choices=sorted(LOADERS))
    ap.add_argument("--data", type=Path, required=True, help="local copy of the data set")
    ap.add_argument("--split", default="all", choices=["all", "dev", "test"])
    ap.add_argument("--limit", type=int, default=0, help="at most this many pages per split")
    ap.add_argument("--engine", default=None, help="OCR engine (default: the default engine)")
    ap.add_argument("--threads", type=int, default=ComputeBudget.split(available_cpus()).ocr_threads,
                    help="onnxruntime threads for OCR (default: the server's share of this machine's CPUs)")
    ap.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                    help="a rapidocr setting for this run (e.g. Det.limit_side_len=960); repeatable")
    ap.add_argument("--det-max-side", type=int, default=0,
                    help="longer side of the copy text lines are detected on (default: the engine's)")
    ap.add_argument("--det-letter-height", type=int, default=-1,
                    help="letters' height in pixels on the copy text lines are detected on; 0: size by the "
                         "sides only (default: the engine's)")
    ap.add_argument("--shape-ratio", type=float, default=-1,
                    help="a character breaking its word's shape (Lew1s) is read as the likeliest one keeping it "
                         "from this share of its probability; 0: off (default: the engine's)")
    ap.add_argument("--word-ratio", type=float, default=-1,
                    help="a word read that is no word, one letter from one that is, is read as that word when the "
                         "letter had this share of the read one's probability; 0: off (default: the engine's)")
    ap.add_argument("--dump", type=Path, help="write each page's scores and text as JSON lines")
    args = ap.parse_args()
    pages = LOADERS[args.set](args.data)
    if args.split != "all":
        pages = [p for p in pages if p.split == args.split]
    if args.limit:
        taken: dict[str, int] = {}
        kept = []
        for p in pages:
            if taken.get(p.split, 0) < args.limit:
                taken[p.split] = taken.get(p.split, 0) + 1
                kept.append(p)
        pages = kept
    if not pages:
        raise SystemExit("no pages to read")
    ocr.set_threads(args.threads)
    if args.det_max_side:
        ocr.DET_MAX_SIDE = args.det_max_side
    if args.det_letter_height >= 0:
        ocr.DET_LETTER_HEIGHT = args.det_letter_height
    if args.shape_ratio >= 0:
        ocr.SHAPE_RATIO = args.shape_ratio
    if args.word_ratio >= 0:
        ocr.WORD_RATIO = args.word_ratio
    if args.param:
        extra = {k: _value(v) for k, v in (p.split("=", 1) for p in args.param)}
        ocr.register("rapidocr-tuned", lambda: ocr.RapidOcrEngine(extra=extra))
        args.engine = "rapidocr-tuned"
    load_before = [round(x, 2) for x in os.getloadavg()]
    read_page(pages[0].image, args.engine)  # warm-up: the engine is built on first use
    per_split: dict[str, list[dict[str, Any]]] = {}
    dump = args.dump.open("w") if args.dump else None
    try:
        for i, page in enumerate(pages):
            load = os.getloadavg()[0]
            words, seconds = read_page(page.image, args.engine)
            scored = score(page, words)
            text = scored.pop("text")
            row = {"id": page.id, "split": page.split, **scored,
                   "seconds": {k: round(v, 3) for k, v in seconds.items()}, "load1": round(load, 2)}
            per_split.setdefault(page.split, []).append(row)
            if dump:
                dump.write(json.dumps({**row, "text": text}, ensure_ascii=False) + "\n")
            print(f"[{i + 1}/{len(pages)}] {page.id} cer={row['cer']} {seconds['total']:.2f}s", file=sys.stderr)
    finally:
        if dump:
            dump.close()
    print(json.dumps({"set": args.set, "engine": args.engine or ocr.DEFAULT_ENGINE, "cpus": os.cpu_count(),
                      "ocr_threads": ocr.threads(), "params": args.param,
                      "det_max_side": getattr(ocr, "DET_MAX_SIDE", None),
                      "det_letter_height": getattr(ocr, "DET_LETTER_HEIGHT", None),
                      "shape_ratio": ocr.SHAPE_RATIO, "word_ratio": ocr.WORD_RATIO, "load_before": load_before,
                      "load_after": [round(x, 2) for x in os.getloadavg()],
                      "splits": {s: summarise(rows) for s, rows in sorted(per_split.items())}}, indent=2))


if __name__ == "__main__":
    main()
