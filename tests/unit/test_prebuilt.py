"""The prebuilt receipt and invoice extractors on plain text (their weights ship in the package),
the extract task's prebuilt and typed paths, and page finding on a scan."""

from __future__ import annotations

import pytest

from litegate.documents import Document, Segment, prebuilt, preprocess
from litegate.documents.prebuilt import layout
from litegate.errors import ExtractorNotFound, InvalidRequest
from litegate.tasks.base import TaskContext, TaskOutput
from litegate.tasks.extract import ExtractRequest, apply_types, extract_nano

pytestmark = pytest.mark.unit

RECEIPT_EN = """SUNRISE MART SDN BHD
No. 12, Jalan Ampang
50450 Kuala Lumpur
Tel: 03-2161 1234
Date: 25/12/2018 8:13:39 PM
NASI GORENG 12.00
ES TEH 3.50
SUBTOTAL 15.50
SST 6% 0.93
TOTAL RM 16.43
CASH 20.00
CHANGE 3.57
THANK YOU"""

RECEIPT_DE = """Bäckerei Linden
Hauptstraße 5
33100 Paderborn
EUR
BRÖTCHEN 0,35 A
KAFFEE 2,40 A
SUMME EUR 2,75
BAR 5,00
RÜCKGELD 2,25
MWST Netto MWST-BETRAG BRUTTO
A 7,00% 2,57 0,18 2,75
16.05.20 09:47 Bon 4411"""

INVOICE = """Kestrel Office Supply Ltd
21 Market Street
Leeds LS1 4AP
INVOICE
Invoice No: INV-20931
Date: 14 March 2024
Due Date: 13 April 2024
Bill To:
Jane Whitfield
4 Elm Avenue, Bristol BS1 5TR
Description Qty Unit price Amount
Printer paper A4 4 12.99 51.96
Toner cartridge 2 89.00 178.00
Subtotal 229.96
VAT 20% 45.99
Total £275.95
Thank you for your business"""


def test_an_english_receipt_gives_every_field_normalized_with_the_printed_text() -> None:
    got = prebuilt.extract("receipt", RECEIPT_EN)
    data = got["data"]
    assert data["merchant_name"] == "SUNRISE MART SDN BHD"
    assert data["merchant_address"] == "No. 12, Jalan Ampang, 50450 Kuala Lumpur"
    assert data["date"] == "2018-12-25" and data["time"] == "20:13:39"
    assert data["total"] == "16.43" and data["subtotal"] == "15.50" and data["tax"] == "0.93"
    assert data["currency"] == "MYR" and data["tip"] is None
    total = got["fields"]["total"]
    assert total["text"] == "RM 16.43" and total["amount"] == 16.43 and total["currency"] == "MYR"
    assert set(total["box"]) == {"x", "y", "w", "h"} and total["page"] == 1
    assert 0.5 < total["confidence"] <= 1.0


def test_a_german_receipt_takes_the_total_not_the_cash_or_the_tax_table() -> None:
    data = prebuilt.extract("receipt", RECEIPT_DE)["data"]
    assert data["total"] == "2.75" and data["date"] == "2020-05-16" and data["currency"] == "EUR"
    assert data["merchant_name"] == "Bäckerei Linden"


def test_an_invoice_separates_its_dates_number_parties_and_amounts() -> None:
    data = prebuilt.extract("invoice", INVOICE)["data"]
    assert data["invoice_number"] == "INV-20931"
    assert data["invoice_date"] == "2024-03-14" and data["due_date"] == "2024-04-13"
    assert data["total"] == "275.95" and data["subtotal"] == "229.96" and data["tax"] == "45.99"
    assert data["vendor"].startswith("Kestrel Office Supply") and data["currency"] == "GBP"
    assert "Jane Whitfield" in (data["customer"] or "")


def test_a_blank_page_or_a_non_document_gives_nulls_with_a_note() -> None:
    for text in ("", "   \n  ", "a cat sitting on a sofa"):
        got = prebuilt.extract("receipt", text)
        assert all(v is None for k, v in got["data"].items() if k != "currency")
        assert got["notes"]
    with pytest.raises(ExtractorNotFound):
        prebuilt.extract("passport", RECEIPT_EN)


def test_lines_with_boxes_are_read_from_a_document_and_pages_are_stacked() -> None:
    doc = Document("f", "application/pdf", "pdf", "x", [Segment("ACME GmbH", 1, [10, 10, 200, 40]),
                                                        Segment("TOTAL 9,99", 2, [10, 20, 200, 50])])
    page = layout.from_document(doc)
    assert [line.page for line in page.lines] == [1, 2] and page.lines[1].box[1] > page.lines[0].box[3]
    got = prebuilt.extract("receipt", doc)["fields"]["total"]
    assert got["value"] == "9.99" and got["page"] == 2 and got["box"]["y"] == 20


class _Tier:
    name = "nano"


def test_the_extract_task_runs_a_prebuilt_extractor_and_checks_its_fields() -> None:
    out = extract_nano(TaskContext(), _Tier(), ExtractRequest(text=RECEIPT_EN, extractor="receipt",
                                                             fields={"total": "", "date": ""}))
    assert out.result["data"] == {"total": "16.43", "date": "2018-12-25"}
    start, end = out.result["spans"]["total"]
    assert RECEIPT_EN[start:end] == "RM 16.43"
    assert out.result["typed"]["date"]["text"] == "25/12/2018" and out.model == "prebuilt:receipt"
    with pytest.raises(InvalidRequest, match="does not extract"):
        extract_nano(TaskContext(), _Tier(), ExtractRequest(text=RECEIPT_EN, extractor="receipt",
                                                           fields={"colour": ""}))
    with pytest.raises(InvalidRequest, match="types.when"):
        extract_nano(TaskContext(), _Tier(), ExtractRequest(text=RECEIPT_EN, extractor="receipt",
                                                           types={"when": "moment"}))


def test_typed_fields_are_normalized_and_an_untyped_value_is_dropped() -> None:
    out = TaskOutput(result={"data": {"when": "paid on 3 Jan 2024", "amount": "EUR 1.234,50", "due": "soon"},
                             "field_confidence": {"when": 0.9, "amount": 0.8, "due": 0.7}, "spans": {}},
                     confidence=0.7, tier="lite", model="m")
    apply_types(out, {"when": "date", "amount": "money", "due": "date"})
    assert out.result["data"] == {"when": "2024-01-03", "amount": "1234.50", "due": None}
    assert out.result["typed"]["amount"]["currency"] == "EUR" and out.result["typed"]["when"]["text"] == "3 Jan 2024"
    assert out.result["field_confidence"]["due"] == 0.0 and out.confidence == 0.0


def test_a_receipt_on_a_darker_scanner_lid_is_found_and_cropped() -> None:
    from PIL import Image, ImageDraw

    scan = Image.new("RGB", (1200, 1700), (150, 145, 140))
    ImageDraw.Draw(scan).rectangle([700, 100, 1100, 1500], fill=(245, 245, 245))
    box = preprocess.find_page(scan)
    assert box is not None and abs(box[0] - 700) < 60 and abs(box[2] - 1100) < 60
    assert preprocess.find_page(Image.new("RGB", (800, 1200), (250, 250, 250))) is None
    prepared, place = preprocess.prepare(scan, 4000)
    assert prepared.size[0] < 600 and place.to_original([0, 0, 10, 10])[0] == pytest.approx(box[0])
    place.turned = True
    x0, y0, x1, y1 = place.to_original([0, 0, 10, 10])
    assert x1 == pytest.approx(box[2]) and y1 == pytest.approx(box[3])


class _Llm:
    """An LLM tier's surface as extract_llm uses it; the reply is what a model might say."""

    name, model, capabilities = "lite", "fake", frozenset()

    def __init__(self, reply: dict) -> None:
        self.reply = reply
        self.bodies: list[dict] = []

    def chat(self, body: dict, schema: object = None) -> dict:
        import json

        self.bodies.append(body)
        return {"choices": [{"message": {"content": json.dumps(self.reply)}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5}}


def test_an_llm_tier_given_a_prebuilt_extractor_gets_its_fields_and_its_answer_typed() -> None:
    from litegate.tasks.extract import extract_llm

    reply = {f: None for f in prebuilt.SPECS["receipt"]} | {"date": "25/12/2018", "total": "RM 16.43",
                                                             "time": "8:13:39 PM"}
    llm = _Llm(reply)
    out = extract_llm(TaskContext(), llm, ExtractRequest(text=RECEIPT_EN, extractor="receipt"))
    assert "merchant_address" in llm.bodies[0]["messages"][0]["content"]  # the extractor's fields, described
    data = out.result["data"]
    assert data["date"] == "2018-12-25" and data["total"] == "16.43" and data["time"] == "20:13:39"
    assert out.result["typed"]["total"]["currency"] == "MYR" and out.result["typed"]["total"]["text"] == "RM 16.43"
