"""OCR sized to the print: a tall receipt scanned at 300 dpi is detected on a shrunk copy and
still read line for line, and a small low-resolution photo is still detected enlarged."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from litegate.documents import Limits, Part, ocr, read

MONO = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
ITEMS = [("BREAD RYE", "2,49"), ("MILK 1L", "1,19"), ("APPLES 1KG", "3,20"), ("COFFEE BEANS", "7,99"),
         ("BUTTER", "2,29"), ("EGGS 10", "3,49"), ("CHEESE", "4,75"), ("TOMATOES", "1,89")]


def _receipt(size: int, width: int) -> tuple[bytes, list[str]]:
    if not Path(MONO).is_file():
        pytest.skip("DejaVu fonts are needed to render the receipt (Debian package fonts-dejavu-core)")
    font = ImageFont.truetype(MONO, size)
    lines = ["CORNER GROCERY"] + [f"{name} {price}" for name, price in ITEMS] + ["TOTAL 27,29"]
    step = int(size * 2.2)
    page = Image.new("RGB", (width, step * (3 * len(lines) // 2 + 2)), (248, 248, 246))
    draw = ImageDraw.Draw(page)
    for i, line in enumerate(lines):
        name, _, price = line.rpartition(" ") if i else (line, "", "")
        y = step * (1 + 3 * i // 2)
        draw.text((size, y), name, font=font, fill=(25, 25, 25))
        if price:
            draw.text((width - size - font.getlength(price), y), price, font=font, fill=(25, 25, 25))
    buf = io.BytesIO()
    page.save(buf, format="PNG")
    return buf.getvalue(), lines


def test_a_300_dpi_receipt_is_detected_on_a_shrunk_copy_and_read_line_for_line() -> None:
    data, lines = _receipt(size=40, width=900)  # capitals ~29 pixels tall, like a 300 dpi scan
    doc = read(Part("image/png", data, "file", "receipt.png"))
    assert [line for line in doc.text.splitlines() if line] == lines, doc.text
    detected = ocr.engine().last_detect_size  # type: ignore[attr-defined]
    width, height = Image.open(io.BytesIO(data)).size
    assert detected[0] * detected[1] < 0.5 * width * height


def test_a_small_low_resolution_photo_is_still_detected_enlarged() -> None:
    data, lines = _receipt(size=13, width=330)  # capitals ~9 pixels: a receipt photographed from afar
    doc = read(Part("image/png", data, "file", "photo.png"))
    found = doc.text.splitlines()
    assert sum(line in found for line in lines) >= len(lines) - 1, doc.text
    assert min(ocr.engine().last_detect_size) >= ocr.DET_MIN_SHORT_SIDE - 32  # type: ignore[attr-defined]


def test_the_verbatim_engine_reads_the_recognisers_own_text_without_mending_words() -> None:
    data, lines = _receipt(size=40, width=900)
    doc = read(Part("image/png", data, "file", "receipt.png"), Limits(ocr_engine="rapidocr-verbatim"))
    assert [line for line in doc.text.splitlines() if line] == lines, doc.text
    # the default mends shapes and spellings in its decoding; the verbatim engine keeps rapidocr's own
    mended = ocr.engine("rapidocr")._ocr._load_rec_model().postprocess_op  # type: ignore[attr-defined]
    plain = ocr.engine("rapidocr-verbatim")._ocr._load_rec_model().postprocess_op  # type: ignore[attr-defined]
    assert isinstance(mended, ocr.ShapeDecode) and mended.words is not None
    assert not isinstance(plain, ocr.ShapeDecode)
