"""Real scanned receipts through the document layer: OCR character error, seconds per page and
the fields a user asks for, on public scans with their own labels (not documents made here).

    python bench/receipts.py --data path/to/vision-data [--split test] [--limit N]
                             [--engine rapidocr] [--no-fields] [--dump out.jsonl]
    python bench/receipts.py --set wildreceipt --data path/to/wildreceipt --limit 90 --dump wild.jsonl

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

- ``wildreceipt``: photos and scans of real receipts, mostly English-speaking shops and
  restaurants (the set's test file, 472 receipts: ``test.txt`` beside ``image_files/``), each
  run of text boxed by a person and typed with one of the set's classes (``class_list.txt``):
  the name, address, date and total labels are the runs of their classes. No transcript is
  compared here (bench/ocr.py measures its OCR).

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
bench/data/softmatic-addresses.jsonl) are all in it and nothing else of substance. On
WildReceipt a name or an address is right when it equals its label ignoring case, spacing and
punctuation (the set writes runs without spaces); a date when it is a reading of the labeled
date (day and month in either order when the label is ambiguous, as the set does not say which);
a total when it is one of the labeled totals. Each wrong field says where it comes from
(``wrong_from``: ocr, candidates or choice). Prints one JSON object.
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


def wildreceipt_rows(root: Path) -> list[dict[str, Any]]:
    """The rows of WildReceipt's test file (one receipt each: its image's path and its boxed,
    typed and labeled runs) whose image the set holds, shared by this bench, bench/ocr.py and
    bench/receipt_optional.py."""
    ann = root / "test.txt"
    if not ann.is_file():
        raise SystemExit(f"{root} holds no test.txt: pass the folder of the set (test.txt beside image_files/)")
    rows = [json.loads(line) for line in ann.read_text().splitlines() if line.strip()]
    return [r for r in rows if (root / r["file_name"]).is_file()]  # one row names an image the set lacks


WILD_CLASSES = {"merchant_name": 1, "merchant_address": 3, "date": 7, "total": 23}  # class_list.txt's numbers


def load_wildreceipt(root: Path) -> list[Sample]:
    """WildReceipt's test file: each run of text boxed by a person and typed with one of the
    set's 26 classes (class_list.txt: 1 Store_name_value, 3 Store_addr_value, 7 Date_value,
    23 Total_value, ...). A field's label is its runs joined in reading order; a date or total
    labeled more than once (a card slip repeats them) is the set of what its runs say, and a
    name or address printed at two places (the name on top and again at the foot) is labeled
    at each: any one of these blocks, whole, is right (an address is all its runs: its lines
    may be parted by the phone's)."""
    samples = []
    for row in wildreceipt_rows(root):
        runs: dict[int, list[tuple[float, float, str, float]]] = {}
        for a in row["annotations"]:
            ys, xs = a["box"][1::2], a["box"][0::2]
            runs.setdefault(a["label"], []).append(((min(ys) + max(ys)) / 2, min(xs), a["text"], max(ys) - min(ys)))
        fields: dict[str, Any] = {}
        for name, label in WILD_CLASSES.items():
            ordered = [r for r in _reading_order(runs.get(label, [])) if r[2].strip()]
            texts = [r[2] for r in ordered]
            if not texts:
                continue
            if name == "date":
                days = {d for t in texts for d in _readings(t)}
                if days:
                    fields[name] = frozenset(days)
            elif name == "total":
                cents = {round(m.amount * 100) for t in texts if (m := parse_money(t)) is not None}
                if cents:
                    fields[name] = frozenset(cents)
            elif name == "merchant_name":
                fields[name] = frozenset(" ".join(r[2] for r in block) for block in _blocks(ordered))
            else:  # an address's lines may be parted by its phone's: all of them, joined
                fields[name] = " ".join(texts)
        samples.append(Sample(row["file_name"], root / row["file_name"], None, fields, "wildreceipt"))
    return samples


Run = tuple[float, float, str, float]  # centre y, left x, text, height


def _blocks(ordered: list[Run]) -> list[list[Run]]:
    """Runs in reading order cut where a gap of more than two lines parts them."""
    blocks: list[list[Run]] = []
    for run in ordered:
        if blocks and run[0] - blocks[-1][-1][0] <= 2.2 * max(run[3], blocks[-1][-1][3], 1.0):
            blocks[-1].append(run)
        else:
            blocks.append([run])
    return blocks


def _reading_order(runs: list[Run]) -> list[Run]:
    """Runs top to bottom, left to right within a line (centres within a few pixels)."""
    ordered = sorted(runs)
    lines: list[list[Run]] = []
    for run in ordered:
        if lines and abs(run[0] - lines[-1][0][0]) < 6:
            lines[-1].append(run)
        else:
            lines.append([run])
    return [r for line in lines for r in sorted(line, key=lambda r: r[1])]


def _readings(text: str) -> set[date]:
    """The calendar days a labeled date may be: both orders of day and month when it is written
    ambiguously (03/04/2019), since the set does not say which its shop meant."""
    out = set()
    for day_first in (True, False):
        parsed = parse_date(text, day_first)
        if parsed is not None:
            out.add(parsed.value)
    return out


LOADERS = {"softmatic": load_softmatic, "wildreceipt": load_wildreceipt}


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


def field_right(name: str, truth: Any, value: Any, whole_label: bool = False) -> bool:
    """Whether an answer is right; ``whole_label``: a name or address label is the whole text
    as printed (WildReceipt), which the answer must equal, rather than a key it must hold."""
    if value is None:
        return False
    if isinstance(truth, frozenset):  # a labeled set: any of its dates or totals
        return any(field_right(name, t, value) for t in truth)
    if whole_label and name in ("merchant_name", "merchant_address"):
        return bool(squash(truth)) and squash(truth) == squash(value)
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
            row["fields"] = {name: {"truth": _shown(truth), "got": got.get(name), "confidence": confidence.get(name),
                                    "right": field_right(name, truth, got.get(name), s.dataset == "wildreceipt")}
                             for name, truth in s.fields.items()}
            for name, f in row["fields"].items():
                if not f["right"]:
                    f["wrong_from"] = blame(doc, name, s.fields[name], s.dataset == "wildreceipt")
        agg = per_split.setdefault(s.split, {"rows": []})
        agg["rows"].append(row)
        if dump:
            segments = [{"text": g.text, "page": g.page, "box": g.box} for g in doc.segments]
            dump.write(json.dumps({**row, "text": doc.text, "segments": segments}, ensure_ascii=False) + "\n")
            dump.flush()
        print(f"[{i + 1}/{len(samples)}] {s.id} {row.get('cer')} {seconds:.1f}s", file=sys.stderr)
    return {split: {**summarise(agg["rows"]), "rows_kept": agg["rows"]} for split, agg in sorted(per_split.items())}


def blame(doc: Any, name: str, truth: Any, whole_label: bool) -> str:
    """Where a wrong answer comes from: ``ocr`` (a name or address is not in the text read, or
    no date or amount on the page is the right one), ``candidates`` (it is in the text but no
    candidate is it), or ``choice`` (a candidate is right and another was answered)."""
    from litegate.documents import fieldtypes, prebuilt

    page = prebuilt.page_of(doc)
    text = "\n".join(line.text for line in page.lines)
    source = prebuilt.RECEIPT[name].source
    pool = prebuilt.candidates_for(page, source, fieldtypes.currency_of(text), "receipt")
    if any(field_right(name, truth, c.value.value, whole_label) for c in pool):
        return "choice"
    if name in ("merchant_name", "merchant_address"):
        printed = squash(text.replace("ß", "ss"))
        labels = truth if isinstance(truth, frozenset) else [truth]
        in_text = any(all(squash(p.replace("ß", "ss")) in printed for p in (t if isinstance(t, tuple) else [t]))
                      for t in labels)
        return "candidates" if in_text else "ocr"
    wide = {"date": [d[2].value for d in fieldtypes.find_dates(text)] +
            [d[2].value for d in fieldtypes.find_dates(text, day_first=False)],
            "total": [m[2].text for m in fieldtypes.find_money(text)]}[name]
    return "candidates" if any(field_right(name, truth, v, whole_label) for v in wide) else "ocr"


def _shown(truth: Any) -> str:
    return " | ".join(sorted(map(str, truth))) if isinstance(truth, frozenset) else str(truth)


def _counts(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        if v:
            out[v] = out.get(v, 0) + 1
    return out


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
        out["wrong_from"] = {n: _counts(r["fields"][n].get("wrong_from") for r in rows if n in r["fields"])
                             for n in names}
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
                                                                  "are asked (default: the extract task's, none)")
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
