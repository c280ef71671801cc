"""Real scanned receipts through the document layer: OCR character error, seconds per page and
the fields a user asks for, on public scans with their own labels (not documents made here).

    python bench/receipts.py --data path/to/vision-data [--split test] [--limit N]
                             [--engine rapidocr] [--no-fields] [--dump out.jsonl]

Data sets (each read from a local copy; nothing is downloaded):

- ``softmatic``: 48 German shop receipts scanned at 300 dpi on a flatbed (github.com/softmatic/
  vision-data, 2D/Receipts, CC BY 4.0): 26 cropped to the receipt (A), 22 lying on a whole A4
  scan (B, C). The file name holds the merchant, the date of purchase and the total in cents
  (``aldi_02032020_19_02423.jpg``); each scan comes with the lines and words a commercial OCR
  service read from it (``*_blocks.json``), the only transcript the set has: the character
  error rate here is the disagreement with that reading, not with a human transcript. That
  reading writes no diacritics (Stück as Stuck), so both sides are compared with accents folded;
  on a few thin receipts it also reads the print on the back showing through as mirrored
  gibberish, which counts against the OCR here (the median is printed beside the mean).

Split: a receipt is ``dev`` when the first byte of the sha1 of its file name is below 86 (a
third), else ``test``. Only ``dev`` is looked at while changing the code; ``test`` is the
held-out figure. Every figure is printed per split.

Character error rate: both texts are put through the same reading order (``documents.ocr.
layout`` on the reference's word boxes, so a reading-order choice counts the same on both
sides), runs of spaces collapsed, blank lines dropped; edit distance over the reference's
length. Seconds per page: wall time of ``documents.read`` (decode, preprocessing, OCR, layout)
after one warm-up page, with the load average beside it.

Fields (the prebuilt ``receipt`` extractor, no training by the user): a merchant is right when
the set's merchant key is contained in the extracted name, both lower-cased with everything
but letters and digits dropped (the key is a short name such as ``aldi``; receipts whose key
is a kind of shop rather than a name, ``tanke`` and ``apotheke``, are left out of this field);
a date when it is the same calendar day; a total when it is the same number of cents; an
address when its street, postcode and city (labeled by hand from the images for this bench, in
bench/data/softmatic-addresses.jsonl) are all in it and nothing else of substance. Prints one
JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from litegate.documents import Document, Limits, Part, Segment, read
from litegate.documents import ocr as ocr_engines
from litegate.documents.fieldtypes import parse_date, parse_money

GENERIC_MERCHANTS = {"tanke", "apotheke"}  # a kind of shop, not the name printed on the receipt


@dataclass
class Sample:
    id: str
    image: Path
    reference: str | None
    fields: dict[str, Any] = field(default_factory=dict)
    dataset: str = ""

    @property
    def split(self) -> str:
        return "dev" if hashlib.sha1(self.id.encode()).digest()[0] < 86 else "test"


def _textract_text(blocks_path: Path, width: int, height: int) -> str:
    """The reference transcript: the service's WORD blocks put in reading order by the same
    layout the OCR output goes through."""
    blocks = json.loads(blocks_path.read_text())
    words = []
    for b in blocks:
        if b.get("BlockType") != "WORD" or not b.get("Text"):
            continue
        bb = b["Geometry"]["BoundingBox"]
        x0, y0 = bb["Left"] * width, bb["Top"] * height
        words.append(ocr_engines.Word(b["Text"], [x0, y0, x0 + bb["Width"] * width, y0 + bb["Height"] * height]))
    return ocr_engines.lines_to_text(ocr_engines.layout(words))


def load_softmatic(root: Path) -> list[Sample]:
    from PIL import Image

    base = root / "2D" / "Receipts"
    addresses = _addresses()
    if not base.is_dir():
        raise SystemExit(f"{root} does not hold 2D/Receipts: fetch github.com/softmatic/vision-data and pass its path")
    samples = []
    for image in sorted(base.glob("*/*.jpg")):
        parts = image.stem.removesuffix("_B").split("_")
        merchant, day, cents = parts[0], parts[1], parts[-1]
        blocks = image.with_name(image.stem + "_blocks.json")
        with Image.open(image) as im:
            reference = _textract_text(blocks, *im.size) if blocks.is_file() else None
        fields = {"date": date(int(day[4:]), int(day[2:4]), int(day[:2])), "total": int(cents)}
        if merchant not in GENERIC_MERCHANTS:
            fields["merchant_name"] = merchant
        sample_id = f"{image.parent.name}/{image.name}"
        if sample_id in addresses:
            fields["merchant_address"] = addresses[sample_id]
        samples.append(Sample(sample_id, image, reference, fields, "softmatic"))
    return samples


ADDRESSES = Path(__file__).parent / "data" / "softmatic-addresses.jsonl"


def _addresses() -> dict[str, tuple[str, str, str]]:
    """The merchant's address on each receipt (street, postcode, city), labeled by hand from the
    images for this bench (the set labels none)."""
    if not ADDRESSES.is_file():
        return {}
    rows = [json.loads(line) for line in ADDRESSES.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {r["id"]: (r["street"], r["postcode"], r["city"]) for r in rows}


LOADERS = {"softmatic": load_softmatic}


# ---- scoring ---------------------------------------------------------------------------------

def normalise(text: str) -> str:
    folded = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    return "\n".join(" ".join(line.split()) for line in folded.splitlines() if line.strip())


def edit_distance(a: str, b: str) -> int:
    import numpy as np

    if not a or not b:
        return max(len(a), len(b))
    prev = np.arange(len(b) + 1)
    bb = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    # a row at a time, vectorised over b (the insert step needs a running minimum)
    av = np.frombuffer(a.encode("utf-32-le"), dtype=np.uint32)
    for i in range(1, len(av) + 1):
        sub = prev[:-1] + (bb != av[i - 1])
        cur = np.empty_like(prev)
        cur[0] = i
        cur[1:] = np.minimum(sub, prev[1:] + 1)
        # insertions: cur[j] = min(cur[j], cur[j-1] + 1), a running minimum of cur[j] - j
        cur = np.minimum.accumulate(cur - np.arange(len(cur))) + np.arange(len(cur))
        prev = cur
    return int(prev[-1])


def cer(reference: str, text: str) -> float:
    ref, hyp = normalise(reference), normalise(text)
    return edit_distance(ref, hyp) / max(len(ref), 1)


def squash(text: Any) -> str:
    return re.sub(r"[^0-9a-z]", "", str(text or "").lower())


def field_right(name: str, truth: Any, value: Any) -> bool:
    if value is None:
        return False
    if name == "merchant_name":
        return bool(squash(truth)) and squash(truth) in squash(value)
    if name == "date":
        parsed = parse_date(str(value))
        return parsed is not None and parsed.value == truth
    if name == "total":
        money = parse_money(str(value))
        return money is not None and round(money.amount * 100) == truth
    if name == "merchant_address":
        return address_right(truth, str(value))
    return squash(truth) == squash(value)


def address_right(truth: tuple[str, str, str], value: str) -> bool:
    """Street, postcode and city each in the answer and nothing else of substance (a run of
    lines that adds the shop's name or phone is wrong), ignoring spacing and punctuation; the
    order is free (some receipts print the city first)."""
    got = squash(value.replace("ß", "ss"))
    rest = got
    for part in truth:
        part = squash(part.replace("ß", "ss"))
        if part not in rest:
            return False
        rest = rest.replace(part, "", 1)
    return len(rest) <= 2


# ---- running ---------------------------------------------------------------------------------

def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def extract_fields(doc: Any, llm: Any = None, threshold: float = 0.0) -> tuple[dict[str, Any], dict[str, Any]]:
    """The prebuilt receipt extractor's answer, or with ``llm`` the same extractor whose fields
    below ``threshold`` the LLM tier chose among their candidates (the extract task's path for
    LLM tiers): ({field: value}, {field: confidence})."""
    from litegate.documents.prebuilt import extract_document
    from litegate.tasks.base import TaskContext
    from litegate.tasks.extract import ExtractRequest, choose_prebuilt

    if llm is None:
        found = extract_document("receipt", doc)
        return ({name: f["value"] for name, f in found["fields"].items()},
                {name: f["confidence"] for name, f in found["fields"].items()})
    req = ExtractRequest(extractor="receipt", text=doc.text)
    req._documents = [doc]
    out = choose_prebuilt(TaskContext(), llm, req, threshold)
    return out.result["data"], out.result["field_confidence"]


def _from_dump(row: dict[str, Any]) -> Document:
    segments = [Segment(g["text"], page=g.get("page"), box=g.get("box")) for g in row.get("segments", [])]
    return Document(row["id"], "image/jpeg", "image", row["text"], segments, pages=1, method="ocr")


def run(samples: list[Sample], limits: Limits, fields: bool, dump: Any,
        dumped: dict[str, dict[str, Any]] | None = None, llm: Any = None, threshold: float = 0.0) -> dict[str, Any]:
    per_split: dict[str, dict[str, Any]] = {}
    if dumped is None:
        read(Part("image/jpeg", samples[0].image.read_bytes(), "warmup"), limits)
    for i, s in enumerate(samples):
        load = os.getloadavg()[0]
        started = time.perf_counter()
        if dumped is not None:
            doc = _from_dump(dumped[s.id])
            seconds, load = dumped[s.id]["seconds"], dumped[s.id]["load1"]
        else:
            doc = read(Part("image/jpeg", s.image.read_bytes(), s.id), limits)
            seconds = time.perf_counter() - started
        row: dict[str, Any] = {"id": s.id, "split": s.split, "seconds": round(seconds, 2), "load1": round(load, 2)}
        if s.reference is not None:
            row["cer"] = round(cer(s.reference, doc.text), 4)
        if fields:
            started = time.perf_counter()
            got, confidence = extract_fields(doc, llm, threshold)
            row["fields_seconds"] = round(time.perf_counter() - started, 2)
            row["fields"] = {name: {"truth": str(truth), "got": got.get(name), "confidence": confidence.get(name),
                                    "right": field_right(name, truth, got.get(name))}
                             for name, truth in s.fields.items()}
        agg = per_split.setdefault(s.split, {"rows": []})
        agg["rows"].append(row)
        if dump:
            segments = [{"text": g.text, "page": g.page, "box": g.box} for g in doc.segments]
            dump.write(json.dumps({**row, "text": doc.text, "segments": segments}, ensure_ascii=False) + "\n")
            dump.flush()
        print(f"[{i + 1}/{len(samples)}] {s.id} {row.get('cer')} {seconds:.1f}s", file=sys.stderr)
    return {split: {**summarise(agg["rows"]), "rows_kept": agg["rows"]} for split, agg in sorted(per_split.items())}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = sorted(r["seconds"] for r in rows)
    out: dict[str, Any] = {"pages": len(rows), "seconds_p50": seconds[len(seconds) // 2],
                           "fields_seconds_p50": sorted(r.get("fields_seconds", 0) for r in rows)[len(rows) // 2],
                           "seconds_mean": round(sum(seconds) / len(seconds), 2),
                           "load1_mean": round(sum(r["load1"] for r in rows) / len(rows), 2)}
    cers = [r["cer"] for r in rows if "cer" in r]
    if cers:
        out["cer_mean"] = round(sum(cers) / len(cers), 4)
        out["cer_median"] = sorted(cers)[len(cers) // 2]
    if rows and "fields" in rows[0]:
        names = sorted({n for r in rows for n in r["fields"]})
        acc = {}
        for n in names:
            scored = [r["fields"][n]["right"] for r in rows if n in r["fields"]]
            acc[n] = round(sum(scored) / len(scored), 3)
        out["fields_right"] = acc
        out["fields_mean"] = round(sum(acc.values()) / len(acc), 3)
        out["all_right"] = round(sum(all(f["right"] for f in r["fields"].values()) for r in rows) / len(rows), 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="local copy of the data set")
    ap.add_argument("--set", default="softmatic", choices=sorted(LOADERS))
    ap.add_argument("--split", default="all", choices=["all", "dev", "test"])
    ap.add_argument("--limit", type=int, default=0, help="at most this many receipts per split")
    ap.add_argument("--engine", default=None, help="OCR engine (default: the default engine)")
    ap.add_argument("--no-fields", action="store_true", help="OCR only")
    ap.add_argument("--dump", type=Path, help="write each receipt's text and fields as JSON lines")
    ap.add_argument("--choose", metavar="TIER", help="an LLM tier (lite, pro) chooses among the candidates of "
                                                     "the fields the extractor is unsure of")
    ap.add_argument("--threshold", type=float, default=None, help="with --choose: fields below this confidence "
                                                                  "are asked (default: the extract task's)")
    ap.add_argument("--rows", type=Path, help="write each receipt's fields (truth, answer, confidence) as JSON lines")
    ap.add_argument("--from-dump", type=Path, help="take each receipt's text (and its seconds) from an earlier "
                                                   "--dump instead of reading the image again")
    args = ap.parse_args()
    samples = LOADERS[args.set](args.data)
    if args.split != "all":
        samples = [s for s in samples if s.split == args.split]
    if args.limit:
        kept: dict[str, int] = {}
        samples = [s for s in samples if kept.setdefault(s.split, 0) < args.limit
                   and not kept.__setitem__(s.split, kept[s.split] + 1)]
    limits = Limits(ocr_engine=args.engine)
    before = load_avg()
    dump = args.dump.open("w") if args.dump else None
    llm: Any = None
    rt: Any = None
    threshold = 0.0
    try:
        dumped = None
        if args.from_dump:
            dumped = {r["id"]: r for r in map(json.loads, args.from_dump.read_text().splitlines())}
            samples = [s for s in samples if s.id in dumped]
        if args.choose:
            import tempfile

            from litegate.config import Settings
            from litegate.runtime import build
            from litegate.tasks import choose

            rt = build(Settings(home=Path(tempfile.mkdtemp(prefix="receipts-"))), record=False)
            llm = rt.tasks.tier(args.choose)
            threshold = choose.UNSURE if args.threshold is None else args.threshold
        results = run(samples, limits, not args.no_fields, dump, dumped, llm, threshold)
    finally:
        if dump:
            dump.close()
        if rt is not None:
            rt.close()
    if args.rows:
        with args.rows.open("w") as out:
            for split in results.values():
                for row in split.pop("rows_kept"):
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        for split in results.values():
            split.pop("rows_kept")
    print(json.dumps({"set": args.set, "engine": args.engine or ocr_engines.DEFAULT_ENGINE, "cpus": os.cpu_count(),
                      "choose": args.choose, "threshold": threshold if args.choose else None,
                      "load_before": before, "load_after": load_avg(), "splits": results}, indent=2))


if __name__ == "__main__":
    main()
