"""Receipts as a user sends them, against a real server with the real OCR: the prebuilt receipt
extractor on an image (typed, normalized values with the text as printed and its box), the
text the file became on request, the same scan upside down, a blank page and a photo with no
document (nulls and a note, never a 500), and ``litegate read`` / ``litegate extractors``."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw, ImageFont

from conftest import litegate_cmd
from test_documents import png

LINES = [("SUNRISE BAKERY LTD", 40, "center"), ("21 Market Street", 28, "center"), ("Leeds LS1 4AP", 28, "center"),
         ("Tel: 0113 496 0123", 28, "center"), ("Date: 14/03/2024 Time: 09:47", 28, "left"),
         ("Sourdough loaf 4.20", 28, "left"), ("Coffee beans 1kg 12.99", 28, "left"), ("SUBTOTAL 17.19", 28, "left"),
         ("VAT 20% 3.44", 28, "left"), ("TOTAL £20.63", 34, "left"), ("CASH 25.00", 28, "left"),
         ("CHANGE 4.37", 28, "left"), ("Thank you for shopping", 28, "center")]


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf", size)


def render_receipt() -> Image.Image:
    """A receipt on a darker scanner lid, as a flatbed scan of a till roll looks."""
    scan = Image.new("L", (1400, 1500), 150)
    paper = Image.new("L", (640, 1120), 250)
    draw = ImageDraw.Draw(paper)
    y = 30
    for text, size, align in LINES:
        width = draw.textlength(text, font=_font(size))
        draw.text(((640 - width) / 2 if align == "center" else 30, y), text, font=_font(size), fill=10)
        y += int(size * 1.9)
    scan.paste(paper, (600, 180))
    return scan


def _files(data: bytes) -> list[dict[str, str]]:
    return [{"mime_type": "image/png", "data": base64.b64encode(data).decode()}]


@pytest.fixture(scope="module")
def receipt_png() -> bytes:
    return png(render_receipt())


def test_the_prebuilt_receipt_extractor_reads_a_scanned_receipt(http: httpx.Client, receipt_png: bytes) -> None:
    listed = {e["name"]: e for e in http.get("/v1/extractors").json()["data"]}
    assert listed["receipt"]["prebuilt"] and listed["invoice"]["types"]["due_date"] == "date"
    r = http.post("/v1/tasks/extract", json={"files": _files(receipt_png), "extractor": "receipt", "tier": "nano",
                                             "document_text": True})
    assert r.status_code == 200, r.text
    body = r.json()
    data = body["data"]
    assert data["total"] == "20.63" and data["currency"] == "GBP" and data["date"] == "2024-03-14"
    assert data["merchant_name"] == "SUNRISE BAKERY LTD" and data["subtotal"] == "17.19" and data["tax"] == "3.44"
    assert data["merchant_address"] == "21 Market Street, Leeds LS1 4AP" and data["time"] == "09:47"
    total = body["typed"]["total"]
    assert total["text"] == "£20.63" and total["amount"] == 20.63 and total["page"] == 1
    # boxes are in the pixels of the image as sent: the receipt lies at x 600..1240 of the scan
    assert 600 <= total["box"]["x"] < 1240 and total["box"]["w"] > 0
    doc = body["documents"][0]
    assert "TOTAL £20.63" in doc["text"] and any(line["text"] == "TOTAL £20.63" for line in doc["lines"])
    assert all(set(line["box"]) == {"x", "y", "w", "h"} for line in doc["lines"])
    plain = http.post("/v1/tasks/extract", json={"files": _files(receipt_png), "extractor": "receipt",
                                                 "tier": "nano"}).json()
    assert "text" not in plain["documents"][0]  # only on request


def test_an_upside_down_scan_is_read_the_right_way_up(http: httpx.Client) -> None:
    turned = png(render_receipt().rotate(180))
    body = http.post("/v1/tasks/extract", json={"files": _files(turned), "extractor": "receipt",
                                                "tier": "nano"}).json()
    assert body["data"]["total"] == "20.63", body


@pytest.mark.parametrize("image", [Image.new("L", (800, 1100), 255), Image.effect_noise((900, 700), 60)],
                         ids=["blank page", "photo with no document"])
def test_no_document_gives_nulls_with_low_confidence_and_a_note(http: httpx.Client, image: Image.Image) -> None:
    r = http.post("/v1/tasks/extract", json={"files": _files(png(image)), "extractor": "receipt", "tier": "nano"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert all(v is None for k, v in body["data"].items() if k != "currency")
    assert body["confidence"] < 0.6 and (body.get("notes") or body["documents"][0]["notes"])


def test_litegate_read_prints_what_the_server_reads(home: Path, receipt_png: bytes, tmp_path: Path) -> None:
    path = tmp_path / "receipt.png"
    path.write_bytes(receipt_png)
    env = dict(os.environ, LITEGATE_HOME=str(home))
    plain = subprocess.run(litegate_cmd("read", str(path)), env=env, capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0, plain.stderr
    assert "TOTAL £20.63" in plain.stdout
    as_json = subprocess.run(litegate_cmd("read", str(path), "--json"), env=env, capture_output=True, text=True,
                             timeout=300)
    doc = json.loads(as_json.stdout)
    assert doc["text"].strip() == plain.stdout.strip() and doc["lines"][0]["page"] == 1
    missing = subprocess.run(litegate_cmd("read", str(tmp_path / "nope.png")), env=env, capture_output=True,
                             text=True, timeout=60)
    assert missing.returncode == 1 and "cannot read" in missing.stderr and "Traceback" not in missing.stderr
    listed = subprocess.run(litegate_cmd("extractors"), env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and "receipt\tprebuilt" in listed.stdout


AD_RECEIPT = """WUNSCHLOS GLÜCKLICH?
URL in Ihr Smartphone eintippen
Marktkauf Lehr
Detmolder Str. 4
33102 Paderborn
BANANEN 1,19 A
KAFFEE 4,99 A
SUMME EUR 6,18
BAR 10,00
RÜCKGELD 3,82
18.05.2020 12:02"""


def test_the_lite_tier_chooses_among_the_candidates_and_invents_nothing(http: httpx.Client) -> None:
    """The real lite model, under the grammar, when the request asks it to choose the fields below
    a confidence: every field it was asked is a value printed on the receipt or null, each with a
    confidence; the fields the scorer was sure of are its own."""
    nano = http.post("/v1/tasks/extract", json={"text": AD_RECEIPT, "extractor": "receipt", "tier": "nano"}).json()
    alone = http.post("/v1/tasks/extract", json={"text": AD_RECEIPT, "extractor": "receipt", "tier": "lite"}).json()
    assert alone["data"] == nano["data"]  # by default nothing is asked: the extractor's own answers
    r = http.post("/v1/tasks/extract", json={"text": AD_RECEIPT, "extractor": "receipt", "tier": "lite",
                                             "choose_below": 0.9}, timeout=600)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["tier"] == "lite"
    assert http.post("/v1/tasks/extract", json={"text": AD_RECEIPT, "extractor": "receipt", "tier": "lite",
                                                "choose_below": 2}).status_code == 400
    flat = " ".join(AD_RECEIPT.split())
    chosen = {f: t for f, t in out["typed"].items() if t.get("chosen_by") == "lite"}
    for field, typed in chosen.items():
        assert " ".join(str(typed["text"]).split()) in flat, field  # printed on the receipt, never invented
    for field, value in out["data"].items():
        if field not in chosen and out["typed"].get(field, {}).get("chosen_by") is None and value is not None:
            assert value == nano["data"][field]  # not asked: the scorer's own answer
    assert all(0.0 <= c <= 1.0 for c in out["field_confidence"].values())
    assert out["data"]["total"] == "6.18" and out["data"]["date"] == "2020-05-18"


def test_small_print_on_a_long_receipt_is_read_at_the_scans_resolution() -> None:
    """A long till roll scanned at 300 dpi: lines are found on a reduced copy of the page but read
    from the page itself; every line comes back, in order, with its box in the scan's pixels."""
    from litegate.documents import Limits, Part, read

    lines = [f"ITEM {i:02d} FRESH APPLES 1KG {i + 0.49:.2f}" for i in range(30)] + ["TOTAL 464.70"]
    scan = Image.new("L", (900, 5600), 252)
    draw = ImageDraw.Draw(scan)
    for i, text in enumerate(lines):
        draw.text((40, 60 + i * 175), text, font=_font(28), fill=15)
    doc = read(Part("image/png", png(scan), "roll"), Limits())
    read_lines = [s.text for s in doc.segments]
    assert read_lines[:30] == lines[:30], doc.text
    total = doc.segments[-1]
    assert total.text.endswith("464.70") and total.box is not None  # (this font's O reads as 0)
    assert 5290 < total.box[1] < 5330 and 20 < total.box[0] < 60 and 230 < total.box[2] < 270
