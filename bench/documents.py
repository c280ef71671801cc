"""The document layer on documents made here, with their ground truth: OCR engines compared on
the same pages, scanned and text PDFs, speech, and invoice fields read from OCR text.

    python bench/documents.py [--per-template 3] [--field-docs 12] [--engines rapidocr,tesseract]

Pages: invoices, receipts, statements and letters from four templates, with vendors, numbers,
dates (several formats), currencies and amounts drawn at random (fixed seed), each page in a
font drawn from DejaVu and Liberation (Debian: fonts-dejavu-core, fonts-liberation). Every page
is rendered clean at 150 dpi and "noisy" (rotated 0.5-2 degrees, blurred, Gaussian noise, JPEG
at quality 60). The ground truth is the text of each row, left to right, rows top to bottom
(what a reader would type); the character error rate (CER) is the edit distance between it and
the OCR text, both with runs of spaces collapsed and blank lines dropped, over its length: a
reading-order mistake counts as much as a misread character. Seconds per page are wall time
of ``documents.read`` (decode, OCR, layout) after one warm-up page.

Scanned PDFs are the noisy renders as image-only PDF pages; text PDFs are written by a small
PDF writer below (standard Helvetica, Times or Courier, WinAnsi text) and must come back
exactly (after collapsing spaces). Engines: rapidocr (PP-OCRv6 small, the default),
Debian's tesseract, and rapidocr-onnxruntime 1.4.4 (PP-OCRv4 mobile) when installed, each run
the way the default runs (no text-direction classifier, the page's tilt passed to layout).

Speech: short notes spoken by Debian's espeak-ng in several voices and speeds, through each
speech model; word error rate after lower-casing, dropping punctuation and writing number
words as digits. The multilingual model also hears the same request in four other languages
(espeak-ng's voices): the language it detects and its word error rate.

Fields: a nano extractor (MiniLM + CRF) trained on OCR text. "unseen_templates": trained on
the classic and receipt templates, tested on the modern and letter ones (layouts it never
saw); "seen_templates": trained on half the documents of every template, tested on the other
half. A field is right when it equals the true value after normalisation (OCR misreads count
against it). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from common import pdf_file
from litegate.documents import Limits, Part, read
from litegate.documents import ocr as ocr_engines

FONT_DIRS = ["/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype/liberation"]
FONT_FILES = {  # family -> (regular, bold, the PDF standard font it resembles)
    "DejaVu Sans": ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "Helvetica"),
    "DejaVu Serif": ("DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "Times-Roman"),
    "DejaVu Sans Mono": ("DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "Courier"),
    "Liberation Sans": ("LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf", "Helvetica"),
    "Liberation Serif": ("LiberationSerif-Regular.ttf", "LiberationSerif-Bold.ttf", "Times-Roman"),
    "Liberation Mono": ("LiberationMono-Regular.ttf", "LiberationMono-Bold.ttf", "Courier"),
}
VENDORS = ["Northwind Traders", "Blue Harbor Logistics", "Kestrel Office Supply", "Maple & Finch Bakery",
           "Orion Data Systems", "Greenfield Hardware Co.", "Silverline Print Works", "Copperleaf Catering",
           "Atlas Freight GmbH", "Riverside Dental Clinic", "Summit Outdoor Gear", "Lumen Electric Ltd",
           "Harbourview Hotel", "Quill & Ink Stationers", "Pioneer Auto Parts", "Evergreen Garden Centre"]
STREETS = ["Market Street", "Elm Avenue", "Station Road", "Harbour Lane", "Mill Road", "King Street",
           "Park Avenue", "Bridge Street"]
CITIES = ["Leeds LS1 4AP", "Portland OR 97205", "Hamburg 20095", "Dublin D02 X285", "Austin TX 78701",
          "Lyon 69002", "Bristol BS1 5TR", "Denver CO 80202"]
ITEMS = ["Printer paper A4", "Blue ballpoint pens", "Desk lamp LED", "Coffee beans 1kg", "USB-C cable 2m",
         "Shipping pallet", "Safety gloves", "Wall calendar", "Toner cartridge", "Cleaning service",
         "Consulting hours", "Sourdough loaf", "Hotel night", "Brake pads set", "Garden hose 25m",
         "Label printer", "Monitor stand", "Notebook A5", "Extension lead", "Water filter"]
CUSTOMERS = ["Jane Whitfield", "Marco Bellini", "Priya Raman", "Tom O'Brien", "Sofia Lindqvist", "Ahmed Karim"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
TEMPLATES = ["classic", "receipt", "modern", "letter"]
TRAIN_TEMPLATES = ["classic", "receipt"]  # the field extractor never sees the others


@dataclass
class Invoice:
    template: str
    vendor: str
    number: str
    date: str
    currency: str
    items: list[tuple[str, int, float]]
    total: str
    font: str
    rows: list[tuple[float, list[tuple[float, str, int, bool]]]] = field(default_factory=list)  # y, pieces
    width: int = 1240
    height: int = 1754

    def truth(self) -> str:
        return "\n".join(" ".join(p[1] for p in sorted(pieces, key=lambda p: p[0])) for _, pieces in self.rows)

    def fields(self) -> dict[str, str]:
        return {"vendor": self.vendor, "number": self.number, "date": self.date, "total": self.total}


def money(value: float, currency: str) -> str:
    return {"USD": f"${value:,.2f}", "EUR": f"EUR {value:,.2f}", "GBP": f"£{value:,.2f}",
            "EUR2": f"{value:,.2f} €"}[currency]


def make_invoice(rng: random.Random, template: str) -> Invoice:
    vendor = rng.choice(VENDORS)
    number = rng.choice([f"INV-{rng.randint(10000, 99999)}", f"{rng.randint(2021, 2025)}/{rng.randint(1, 9999):04d}",
                         f"A{rng.randint(100, 999)}-{rng.randint(1000, 9999)}", f"{rng.randint(100000, 999999)}"])
    y, m, d = rng.randint(2021, 2025), rng.randint(1, 12), rng.randint(1, 28)
    date = rng.choice([f"{y}-{m:02d}-{d:02d}", f"{d:02d}/{m:02d}/{y}", f"{MONTHS[m - 1]} {d}, {y}",
                       f"{d} {MONTHS[m - 1][:3]} {y}"])
    currency = rng.choice(["USD", "EUR", "GBP", "EUR2"])
    items = [(rng.choice(ITEMS), rng.randint(1, 12), round(rng.uniform(1.5, 480), 2))
             for _ in range(rng.randint(2, 6))]
    subtotal = sum(q * p for _, q, p in items)
    tax = round(subtotal * rng.choice([0.0, 0.07, 0.2]), 2)
    total = money(subtotal + tax, currency)
    inv = Invoice(template, vendor, number, date, currency, items, total, rng.choice(list(FONT_FILES)))
    LAYOUTS[template](inv, rng, subtotal, tax)
    return inv


def _classic(inv: Invoice, rng: random.Random, subtotal: float, tax: float) -> None:
    c, s = inv.currency, 26
    rows = [(110, [(100, inv.vendor, 44, True), (900, "INVOICE", 40, True)]),
            (180, [(100, f"{rng.randint(1, 220)} {rng.choice(STREETS)}", s, False)]),
            (220, [(100, rng.choice(CITIES), s, False), (820, f"Invoice No: {inv.number}", s, False)]),
            (260, [(820, f"Date: {inv.date}", s, False)]),
            (340, [(100, "Bill to:", s, True), (300, rng.choice(CUSTOMERS), s, False)]),
            (440, [(100, "Description", s, True), (620, "Qty", s, True), (760, "Unit price", s, True),
                   (1000, "Amount", s, True)])]
    y = 500
    for name, qty, price in inv.items:
        rows.append((y, [(100, name, s, False), (630, str(qty), s, False), (760, money(price, c), s, False),
                         (1000, money(qty * price, c), s, False)]))
        y += 46
    y += 40
    rows += [(y, [(760, "Subtotal", s, False), (1000, money(subtotal, c), s, False)]),
             (y + 46, [(760, "Tax", s, False), (1000, money(tax, c), s, False)]),
             (y + 100, [(760, "Total", s + 4, True), (1000, inv.total, s + 4, True)]),
             (y + 220, [(100, f"Payment due within {rng.choice([14, 30, 45])} days. Thank you for your business.",
                        s - 2, False)])]
    inv.rows = rows


def _receipt(inv: Invoice, rng: random.Random, subtotal: float, tax: float) -> None:
    c, s = inv.currency, 24
    inv.width = 720
    inv.vendor = inv.vendor.upper()  # as printed: the field's true value
    rows = [(60, [(60, inv.vendor, 32, True)]),
            (110, [(60, f"{rng.randint(1, 220)} {rng.choice(STREETS)}, {rng.choice(CITIES)}", s - 4, False)]),
            (170, [(60, f"Receipt {inv.number}", s, False)]),
            (210, [(60, f"{inv.date} {rng.randint(7, 21):02d}:{rng.randint(0, 59):02d}", s, False)])]
    y = 280
    for name, qty, price in inv.items:
        rows.append((y, [(60, f"{qty} x {name}", s, False), (440, money(qty * price, c), s, False)]))
        y += 40
    y += 30
    rows += [(y, [(60, "TAX", s, False), (440, money(tax, c), s, False)]),
             (y + 50, [(60, "TOTAL", s + 4, True), (440, inv.total, s + 4, True)]),
             (y + 110, [(60, rng.choice(["CARD", "CASH", "VISA **** " + str(rng.randint(1000, 9999))]), s, False)]),
             (y + 170, [(60, "Thank you, come again!", s, False)])]
    inv.rows = rows
    inv.height = y + 240


def _modern(inv: Invoice, rng: random.Random, subtotal: float, tax: float) -> None:
    c, s = inv.currency, 24
    rows = [(90, [(90, inv.vendor, 38, True)]),
            (150, [(90, f"{rng.randint(1, 220)} {rng.choice(STREETS)}", s, False),
                   (760, f"Invoice # {inv.number}", s, False)]),
            (190, [(90, rng.choice(CITIES), s, False), (760, f"Issued {inv.date}", s, False)]),
            (230, [(90, f"VAT ID {rng.choice(['GB', 'DE', 'IE'])}{rng.randint(100000000, 999999999)}", s, False),
                   (760, f"Due in {rng.choice([7, 14, 30])} days", s, False)]),
            (330, [(90, "Customer", s, True), (330, rng.choice(CUSTOMERS), s, False)]),
            (420, [(90, "Item", s, True), (560, "Hours/Qty", s, True), (780, "Rate", s, True),
                   (990, "Line total", s, True)])]
    y = 480
    for name, qty, price in inv.items:
        rows.append((y, [(90, name, s, False), (580, str(qty), s, False), (780, money(price, c), s, False),
                         (990, money(qty * price, c), s, False)]))
        y += 44
    rows += [(y + 60, [(780, "Net", s, False), (990, money(subtotal, c), s, False)]),
             (y + 104, [(780, "VAT", s, False), (990, money(tax, c), s, False)]),
             (y + 170, [(700, "Amount due", s + 6, True), (990, inv.total, s + 6, True)])]
    inv.rows = rows


def _letter(inv: Invoice, rng: random.Random, subtotal: float, tax: float) -> None:
    c, s = inv.currency, 26
    customer = rng.choice(CUSTOMERS)
    rows = [(100, [(100, inv.vendor, 36, True)]),
            (160, [(100, f"{rng.randint(1, 220)} {rng.choice(STREETS)}, {rng.choice(CITIES)}", s - 2, False)]),
            (260, [(100, inv.date, s, False)]),
            (330, [(100, f"Dear {customer},", s, False)]),
            (390, [(100, f"please find below our invoice {inv.number} for the goods delivered last", s, False)]),
            (430, [(100, f"month. The amount of {inv.total} is due within thirty days.", s, False)]),
            (510, [(100, "Goods", s, True), (900, "Price", s, True)])]
    y = 560
    for name, qty, price in inv.items:
        rows.append((y, [(100, f"{name} ({qty})", s, False), (900, money(qty * price, c), s, False)]))
        y += 44
    rows += [(y + 40, [(100, "Including tax", s, False), (900, money(tax, c), s, False)]),
             (y + 130, [(100, "Kind regards,", s, False)]),
             (y + 180, [(100, f"Accounts team, {inv.vendor}", s, False)])]
    inv.rows = rows


LAYOUTS = {"classic": _classic, "receipt": _receipt, "modern": _modern, "letter": _letter}


def _font(family: str, size: int, bold: bool) -> ImageFont.FreeTypeFont:
    regular, bold_file, _ = FONT_FILES[family]
    name = bold_file if bold else regular
    for d in FONT_DIRS:
        if (Path(d) / name).is_file():
            return ImageFont.truetype(str(Path(d) / name), size)
    raise SystemExit(f"font {name} is missing: apt-get install fonts-dejavu-core fonts-liberation")


def render(inv: Invoice) -> Image.Image:
    img = Image.new("L", (inv.width, inv.height), 255)
    draw = ImageDraw.Draw(img)
    for y, pieces in inv.rows:
        for x, text, size, bold in pieces:
            draw.text((x, y), text, font=_font(inv.font, size, bold), fill=0)
    return img


def degrade(img: Image.Image, rng: random.Random) -> Image.Image:
    """A page as a cheap scanner or phone would give it back."""
    angle = rng.choice([-1, 1]) * rng.uniform(0.5, 2.0)
    out = img.rotate(angle, resample=Image.BICUBIC, expand=False, fillcolor=255)
    out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 0.9)))
    arr = np.asarray(out, dtype=np.float32)
    arr = arr * rng.uniform(0.8, 0.95) + rng.uniform(5, 30)  # grey paper, lower contrast
    arr += np.random.default_rng(rng.randint(0, 1 << 30)).normal(0, 12, arr.shape)
    out = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    out.save(buf, format="JPEG", quality=60)
    return Image.open(io.BytesIO(buf.getvalue())).convert("L")


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def scanned_pdf(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="PDF", resolution=150)
    return buf.getvalue()


def text_pdf(inv: Invoice) -> bytes:
    """A one-page PDF with a real text layer: standard Type 1 fonts, WinAnsi text, one text
    object per piece, laid out where the render puts it (150 px = 72 pt)."""
    base = FONT_FILES[inv.font][2]
    bold = {"Helvetica": "Helvetica-Bold", "Times-Roman": "Times-Bold", "Courier": "Courier-Bold"}[base]
    k = 72 / 150
    w, h = inv.width * k, inv.height * k
    ops = []
    for y, pieces in inv.rows:
        for x, text, size, is_bold in sorted(pieces, key=lambda p: p[0]):
            raw = text.encode("cp1252")
            esc = raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
            ops.append(b"BT /%s %.2f Tf %.2f %.2f Td (%s) Tj ET" % (b"F2" if is_bold else b"F1", size * k * 0.75,
                                                                    x * k, h - (y + size * 0.8) * k, esc))
    stream = b"\n".join(ops)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.2f %.2f] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R /F2 6 0 R >> >> >>" % (w, h),
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /%s /Encoding /WinAnsiEncoding >>" % base.encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /%s /Encoding /WinAnsiEncoding >>" % bold.encode(),
    ]
    return pdf_file(objects, header=b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")


# ---- metrics ---------------------------------------------------------------------------------

def normalise(text: str) -> str:
    return "\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip())


def edit_distance(a: list | str, b: list | str) -> int:
    """Levenshtein distance, one NumPy row at a time (insertions via a running minimum)."""
    if not a or not b:
        return max(len(a), len(b))
    ids: dict = {}
    av = np.array([ids.setdefault(x, len(ids)) for x in a])
    bv = np.array([ids.setdefault(x, len(ids)) for x in b])
    ramp = np.arange(len(bv) + 1)
    row = ramp.copy()
    for ch in av:
        sub = row[:-1] + (bv != ch)
        new = np.empty_like(row)
        new[0] = row[0] + 1
        new[1:] = np.minimum(sub, row[1:] + 1)
        row = np.minimum.accumulate(new - ramp) + ramp
    return int(row[-1])


def cer(truth: str, text: str) -> float:
    t, h = normalise(truth), normalise(text)
    return edit_distance(t, h) / max(len(t), 1)


NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}


def words(text: str) -> list[str]:
    out = []
    for w in re.sub(r"[^\w\s']", " ", text.lower().replace("-", " ")).split():
        out.append(NUMBER_WORDS.get(w, w))
    return out


def wer(truth: str, text: str) -> tuple[int, int]:
    t = words(truth)
    return edit_distance(t, words(text)), len(t)


# ---- speech ----------------------------------------------------------------------------------

NOTES = [
    "Please send the signed contract to the legal team before Friday afternoon.",
    "The delivery from the warehouse arrived two days late and one box was damaged.",
    "Remind me to call the supplier tomorrow morning about the missing invoice.",
    "Our meeting with the bank has moved to Thursday at ten in the morning.",
    "The new office printer is out of toner again, please order three cartridges.",
    "Customer feedback this week was mostly positive, but shipping costs are a concern.",
    "Book a table for six people at the Italian restaurant near the station.",
    "The quarterly report needs updated sales figures from the northern region.",
    "Cancel the subscription for the design software, we no longer use it.",
    "The heating in the second floor meeting room is broken and needs a technician.",
    "Ask the accountant whether the travel expenses from March were approved.",
    "Water the plants in reception and check that the front door is locked.",
]
VOICES = [("en-us", 160), ("en", 150), ("en-us+m3", 175), ("en-gb-x-rp", 165)]


def speak(text: str, voice: str, speed: int, path: Path) -> None:
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text], check=True, timeout=60,
                   capture_output=True)


# ---- the runs --------------------------------------------------------------------------------

def timed_read(part: Part, limits: Limits) -> tuple[str, float]:
    started = time.perf_counter()
    doc = read(part, limits)
    return doc.text, time.perf_counter() - started


def register_v4() -> bool:
    """rapidocr-onnxruntime 1.4.4 (PP-OCRv4 mobile, models in its wheel) as a third engine,
    when it is installed: only to compare."""
    try:
        from rapidocr_onnxruntime import RapidOCR  # noqa: F401
    except ImportError:
        return False
    import threading

    class RapidOcrV4:
        name = "rapidocr-onnxruntime"

        def __init__(self) -> None:
            from rapidocr_onnxruntime import RapidOCR as Engine

            self._ocr = Engine()
            self._lock = threading.Lock()

        def recognize(self, image: Image.Image) -> list[ocr_engines.Word]:
            rgb = np.asarray(image.convert("RGB"))[:, :, ::-1].copy()
            with self._lock:
                result, _ = self._ocr(rgb, use_cls=False)  # as the default engine runs
            words = []
            for q, t, s in result or []:
                (ax, ay), (bx, by), _, (dx, dy) = q
                words.append(ocr_engines.Word(t, [min(p[0] for p in q), min(p[1] for p in q), max(p[0] for p in q),
                                                  max(p[1] for p in q)], float(s),
                                              (by - ay) / (bx - ax) if bx - ax > 1 else None,
                                              ((dx - ax) ** 2 + (dy - ay) ** 2) ** 0.5))
            return words

    ocr_engines.register("rapidocr-onnxruntime", RapidOcrV4)
    return True


def bench_ocr(pages: list[tuple[Invoice, Image.Image, Image.Image]], engines: list[str]) -> dict:
    out = {}
    for name in engines:
        try:
            ocr_engines.engine(name)
        except Exception as e:  # noqa: BLE001 - an engine that is not installed is reported, not fatal
            out[name] = {"error": str(e)}
            continue
        limits = Limits(ocr_engine=name)
        timed_read(Part("image/png", png_bytes(pages[0][1]), "warmup"), limits)
        row: dict = {}
        for variant, idx in (("clean", 1), ("noisy", 2)):
            errors, chars, seconds, per_template = 0.0, 0, [], {}
            for inv, *imgs in pages:
                text, s = timed_read(Part("image/png", png_bytes(imgs[idx - 1]), "page"), limits)
                t = normalise(inv.truth())
                e = edit_distance(t, normalise(text))
                errors += e
                chars += len(t)
                seconds.append(s)
                per_template.setdefault(inv.template, [0, 0])
                per_template[inv.template][0] += e
                per_template[inv.template][1] += len(t)
            row[variant] = {"cer": round(errors / max(chars, 1), 4), "s_per_page": round(float(np.mean(seconds)), 3),
                            "s_per_page_max": round(max(seconds), 3),
                            "cer_by_template": {k: round(v[0] / max(v[1], 1), 4) for k, v in per_template.items()}}
        out[name] = row
    return out


def bench_pdfs(pages: list[tuple[Invoice, Image.Image, Image.Image]]) -> dict:
    exact, errors, chars, text_s = 0, 0, 0, []
    for inv, _, _ in pages:
        text, s = timed_read(Part("application/pdf", text_pdf(inv), "pdf"), Limits())
        text_s.append(s)
        t, h = normalise(inv.truth()), normalise(text)
        exact += t == h
        errors += edit_distance(t, h)
        chars += len(t)
    scan_err, scan_chars, scan_s = 0, 0, []
    for inv, _, noisy in pages:
        started = time.perf_counter()
        doc = read(Part("application/pdf", scanned_pdf(noisy), "pdf"), Limits())
        scan_s.append(time.perf_counter() - started)
        assert doc.method == "ocr", doc.method
        t = normalise(inv.truth())
        scan_err += edit_distance(t, normalise(doc.text))
        scan_chars += len(t)
    return {"text_pdf": {"documents": len(pages), "exact": exact, "exact_rate": round(exact / len(pages), 3),
                         "cer": round(errors / max(chars, 1), 5), "s_per_page": round(float(np.mean(text_s)), 4)},
            "scanned_pdf_noisy": {"documents": len(pages), "cer": round(scan_err / max(scan_chars, 1), 4),
                                  "s_per_page": round(float(np.mean(scan_s)), 3)}}


FOREIGN = [("de", "Bitte schicken Sie die Rechnung bis Freitag an die Buchhaltung."),
           ("es", "Por favor, envíe la factura al departamento de contabilidad antes del viernes."),
           ("fr", "Merci d'envoyer la facture au service comptable avant vendredi."),
           ("it", "Per favore, mandate la fattura all'ufficio contabilità entro venerdì.")]


def bench_speech(count: int, models: list[str]) -> dict:
    if shutil.which("espeak-ng") is None:
        return {"skipped": "espeak-ng is not installed (apt-get install espeak-ng)"}
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        clips = []
        for i, note in enumerate(NOTES[:count]):
            voice, speed = VOICES[i % len(VOICES)]
            path = Path(tmp) / f"note{i}.wav"
            speak(note, voice, speed, path)
            clips.append((note, voice, path.read_bytes()))
        foreign = []
        for lang, text in FOREIGN:
            path = Path(tmp) / f"{lang}.wav"
            speak(text, lang, 150, path)
            foreign.append((lang, text, path.read_bytes()))
        for model in models:
            limits = Limits(speech_model=model)
            try:
                read(Part("audio/wav", clips[0][2], "warmup"), limits)
            except Exception as e:  # noqa: BLE001 - a model that is not installed is reported
                out[model] = {"error": str(e)}
                continue
            errors, total, seconds, audio_s, samples = 0, 0, [], 0.0, []
            for note, voice, data in clips:
                started = time.perf_counter()
                doc = read(Part("audio/wav", data, "note"), limits)
                seconds.append(time.perf_counter() - started)
                audio_s += doc.seconds
                e, n = wer(note, doc.text)
                errors += e
                total += n
                if e:
                    samples.append({"truth": note, "heard": doc.text, "voice": voice})
            row = {"notes": len(seconds), "wer": round(errors / max(total, 1), 4), "audio_seconds": round(audio_s, 1),
                   "s_per_note": round(float(np.mean(seconds)), 3),
                   "real_time_factor": round(sum(seconds) / audio_s, 3), "misheard": samples[:3]}
            if model != "whisper-tiny.en":
                detected = []
                for lang, text, data in foreign:
                    doc = read(Part("audio/wav", data, "note"), limits)
                    e, n = wer(text, doc.text)
                    detected.append({"spoken": lang, "detected": doc.language, "wer": round(e / n, 3)})
                row["languages"] = detected
            out[model] = row
    return out


def bench_fields(per_template: int, seed: int) -> dict:
    from litegate.evals.metrics import field_correct
    from litegate.nano.encoder import MiniLMEncoder
    from litegate.nano.extractor import NanoExtractor

    rng = random.Random(seed + 1)
    docs = []
    for template in TEMPLATES:
        for _ in range(per_template):
            inv = make_invoice(rng, template)
            text = read(Part("image/png", png_bytes(render(inv)), "page")).text
            docs.append((inv, text))
    encoder = MiniLMEncoder()
    fields = {"vendor": "the company that issued the invoice", "number": "the invoice or receipt number",
              "date": "the invoice date", "total": "the total amount due, with its currency"}

    def trial(train_docs: list, test_docs: list) -> dict:
        train, dropped = [], 0
        for inv, text in train_docs:
            data = inv.fields()
            if all(v in text for v in data.values()):
                train.append({"text": text, "data": data})
            else:
                dropped += 1  # OCR misread a value: it cannot be marked in this text
        started = time.perf_counter()
        extractor = NanoExtractor.train("invoice", train, encoder, fields=fields)
        train_s = time.perf_counter() - started
        predicted = extractor.predict([text for _, text in test_docs], encoder)
        right = {f: 0 for f in fields}
        wrong = []
        for (inv, _), out in zip(test_docs, predicted):
            for f, gold in inv.fields().items():
                ok = field_correct(gold, out["data"].get(f))
                right[f] += ok
                if not ok and len(wrong) < 4:
                    wrong.append({"template": inv.template, "field": f, "gold": gold, "got": out["data"].get(f)})
        n = len(test_docs)
        return {"train_docs": len(train), "train_dropped_ocr_misread": dropped, "test_docs": n,
                "accuracy": round(sum(right.values()) / max(n * len(fields), 1), 4),
                "by_field": {f: round(v / max(n, 1), 4) for f, v in right.items()}, "train_s": round(train_s, 1),
                "errors": wrong}

    unseen = trial([d for d in docs if d[0].template in TRAIN_TEMPLATES],
                   [d for d in docs if d[0].template not in TRAIN_TEMPLATES])
    unseen = {"train_templates": TRAIN_TEMPLATES,
              "test_templates": [t for t in TEMPLATES if t not in TRAIN_TEMPLATES], **unseen}
    half = per_template // 2  # every template in training, other documents of it in the test
    seen = trial([d for i, d in enumerate(docs) if i % per_template < half],
                 [d for i, d in enumerate(docs) if i % per_template >= half])
    return {"unseen_templates": unseen, "seen_templates": seen}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-template", type=int, default=3, help="pages per template for OCR and PDFs")
    ap.add_argument("--engines", default="rapidocr,tesseract,rapidocr-onnxruntime")
    ap.add_argument("--notes", type=int, default=len(NOTES))
    ap.add_argument("--speech-models", default="whisper-tiny.en,whisper-base")
    ap.add_argument("--field-docs", type=int, default=12, help="documents per template for the field test (0: skip)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    register_v4()

    rng = random.Random(args.seed)
    pages = []
    for template in TEMPLATES:
        for _ in range(args.per_template):
            inv = make_invoice(rng, template)
            clean = render(inv)
            pages.append((inv, clean, degrade(clean, rng)))
    report: dict = {"load_before": open("/proc/loadavg").read().split()[:3],
                    "pages": len(pages), "templates": TEMPLATES, "fonts": sorted({p[0].font for p in pages})}
    runs = [("ocr", lambda: bench_ocr(pages, [e for e in args.engines.split(",") if e])),
            ("pdf", lambda: bench_pdfs(pages)),
            ("speech", lambda: bench_speech(args.notes, [m for m in args.speech_models.split(",") if m]))]
    if args.field_docs:
        runs.append(("fields", lambda: bench_fields(args.field_docs, args.seed)))
    for name, run in runs:
        started = time.perf_counter()
        try:
            report[name] = run()
        except Exception as e:  # noqa: BLE001 - one part failing still reports the others
            report[name] = {"error": f"{type(e).__name__}: {e}"}
        print(f"{name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    report["load_after"] = open("/proc/loadavg").read().split()[:3]
    json.dump(report, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
