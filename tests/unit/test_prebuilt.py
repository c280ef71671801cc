"""The prebuilt receipt and invoice extractors on plain text (their weights ship in the package),
the extract task's prebuilt and typed paths, and page finding on a scan."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

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


def test_a_receipt_answers_its_subtotal_and_tax_only_where_it_prints_them() -> None:
    """A receipt that prints no subtotal or tax line gets neither (not an item's price read as
    one); the same shop's receipt that prints them gets both."""
    bare = prebuilt.extract("receipt", "MAPLE GROCERY\n88 Elm Road, Springfield\n2024-03-09 17:02\nMILK 1L 1.99\n"
                                       "BREAD 2.49\nEGGS 12 3.89\nAPPLES 4.12\nTOTAL 12.49\nCASH 20.00\nCHANGE 7.51")
    assert bare["data"]["total"] == "12.49"
    assert bare["data"]["subtotal"] is None and bare["data"]["tax"] is None and bare["data"]["tip"] is None
    full = prebuilt.extract("receipt", "MAPLE GROCERY\n88 Elm Road, Springfield\n2024-03-09 17:02\nMILK 1L 1.99\n"
                                       "BREAD 2.49\nSUBTOTAL 4.48\nTAX 0.36\nTOTAL 4.84\nCASH 5.00\nCHANGE 0.16")
    assert (full["data"]["subtotal"], full["data"]["tax"], full["data"]["total"]) == ("4.48", "0.36", "4.84")


def test_an_invoice_separates_its_dates_number_parties_and_amounts() -> None:
    data = prebuilt.extract("invoice", INVOICE)["data"]
    assert data["invoice_number"] == "INV-20931"
    assert data["invoice_date"] == "2024-03-14" and data["due_date"] == "2024-04-13"
    assert data["total"] == "275.95" and data["subtotal"] == "229.96" and data["tax"] == "45.99"
    assert data["vendor"].startswith("Kestrel Office Supply") and data["currency"] == "GBP"
    assert "Jane Whitfield" in (data["customer"] or "")


INVOICE_DE = """Lieferant
Lief-Nr: 449120
Brunnbauer Metall GmbH
Industriestraße 7
70565 Stuttgart
Käufer
Ostwind Handel KG
Hafenweg 3
20457 Hamburg
RECHNUNG
Beleg-Nr : R2024-0815
Beleg-Datum : 12.02.2024
Zahlbar bis: 13.03.2024
Pos Beschreibung Menge Preis Betrag
1 Schrauben M8 200 0,12 24,00
2 Winkel 50mm 40 1,10 44,00
Nettobetrag 68,00
MwSt 19% 12,92
Gesamtbetrag EUR 80,92"""


def test_a_german_invoice_with_labeled_blocks_gives_the_vendor_customer_and_number() -> None:
    # the issuer's block under "Lieferant" with a supplier number, the customer under "Käufer", the number as "Beleg-Nr"
    data = prebuilt.extract("invoice", INVOICE_DE)["data"]
    assert data["vendor"] == "Brunnbauer Metall GmbH" and data["customer"].startswith("Ostwind Handel KG")
    assert data["invoice_number"] == "R2024-0815" and data["invoice_date"] == "2024-02-12"
    assert data["due_date"] == "2024-03-13" and data["total"] == "80.92" and data["tax"] == "12.92"


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
    # the fields by name alone, as a list: the extractor's own descriptions
    named = extract_nano(TaskContext(), _Tier(), ExtractRequest(text=RECEIPT_EN, extractor="receipt",
                                                               fields=["total", "date"]))
    assert named.result["data"] == out.result["data"]
    for bad, message in ((["total", "total"], "names a field twice"), (["total", 3], "field names")):
        with pytest.raises(ValidationError, match=message):
            ExtractRequest(text=RECEIPT_EN, extractor="receipt", fields=bad)


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


class _Chooser:
    """An LLM tier that answers a choice of candidates: ``pick(field, options)`` names one
    option (or None); each value's tokens get log-probability ``logprob``."""

    name, model, capabilities = "lite", "fake", frozenset({"chat", "grammar"})

    def __init__(self, pick, logprob: float = -0.1) -> None:
        self.pick = pick
        self.logprob = logprob
        self.bodies: list[dict] = []
        self.schemas: list[dict] = []

    def chat(self, body: dict, schema: object = None) -> dict:
        import json

        self.bodies.append(body)
        props = schema.schema["properties"]  # type: ignore[attr-defined]
        self.schemas.append(schema.schema)  # type: ignore[attr-defined]
        reply = {f: self.pick(f, [o for o in p["enum"] if o is not None]) for f, p in props.items()}
        pieces, values = ["{"], set()
        for i, (f, v) in enumerate(reply.items()):
            pieces.append((", " if i else "") + json.dumps(f) + ": ")
            values.add(len(pieces))
            pieces.append(json.dumps(v, ensure_ascii=False))
        pieces.append("}")
        tokens = [{"token": t, "bytes": list(t.encode()), "logprob": self.logprob if k in values else 0.0}
                  for k, t in enumerate(pieces)]
        return {"choices": [{"message": {"content": "".join(pieces)}, "finish_reason": "stop",
                             "logprobs": {"content": tokens}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5}}


AD_ON_TOP = "WUNSCHLOS GLUECKLICH?\n" + RECEIPT_EN


def test_an_llm_tier_chooses_only_the_unsure_fields_among_their_candidates() -> None:
    from litegate.tasks import choose
    from litegate.tasks.extract import choose_prebuilt

    alone = prebuilt.extract("receipt", AD_ON_TOP, alternatives=choose.OPTIONS)["fields"]
    threshold = alone["merchant_name"]["confidence"] + 1e-4  # the name is asked
    unsure = set(choose.unsure_fields({"fields": alone}, threshold))
    assert "merchant_name" in unsure and "total" not in unsure

    def pick(field: str, options: list[str]) -> str | None:
        named = [o for o in options if "SUNRISE" in o]
        return named[0] if field == "merchant_name" and named else None

    llm = _Chooser(pick, logprob=-0.05)
    out = choose_prebuilt(TaskContext(), llm, ExtractRequest(text=AD_ON_TOP, extractor="receipt"), threshold)
    [schema] = llm.schemas
    assert set(schema["properties"]) == unsure  # only the uncertain fields are asked
    options = schema["properties"]["merchant_name"]["enum"]
    assert None in options and len(options) <= choose.OPTIONS + 1
    assert all(o in AD_ON_TOP.replace("\n", " ") for o in options if o)  # every option is printed text
    data, conf = out.result["data"], out.result["field_confidence"]
    assert data["merchant_name"].startswith("SUNRISE MART")
    assert abs(conf["merchant_name"] - math.exp(-0.05)) < 1e-3  # the probability of the choice's tokens
    assert data["total"] == "16.43" and conf["total"] == alone["total"]["confidence"]  # kept, not asked
    assert out.tier == "lite" and out.usage.prompt_tokens == 10
    assert "candidates" not in out.result["typed"]["merchant_name"]


def test_a_choice_of_none_is_null_and_nothing_outside_the_options_passes_the_schema() -> None:
    import jsonschema

    from litegate.tasks.extract import choose_prebuilt

    llm = _Chooser(lambda field, options: None)
    out = choose_prebuilt(TaskContext(), llm, ExtractRequest(text=AD_ON_TOP, extractor="receipt"), threshold=1.01)
    schema = llm.schemas[0]
    assert all(out.result["data"][f] is None for f in schema["properties"])
    with pytest.raises(jsonschema.ValidationError):  # an invented name is no option
        jsonschema.validate({**{f: None for f in schema["properties"]}, "merchant_name": "Invented GmbH"}, schema)


def test_sure_fields_cost_no_llm_call() -> None:
    from litegate.tasks.extract import choose_prebuilt

    llm = _Chooser(lambda field, options: options[0])
    out = choose_prebuilt(TaskContext(), llm, ExtractRequest(text=RECEIPT_EN, extractor="receipt",
                                                              fields={"total": ""}), threshold=0.0)
    assert llm.bodies == [] and out.result["data"]["total"] == "16.43" and out.model == "prebuilt:receipt"


def test_an_llm_tier_given_a_prebuilt_extractor_runs_it_and_chooses() -> None:
    from litegate.tasks.extract import extract_llm

    llm = _Chooser(lambda field, options: options[0])
    alone = extract_llm(TaskContext(), llm, ExtractRequest(text=RECEIPT_DE, extractor="receipt"))
    assert llm.bodies == [] and alone.model == "prebuilt:receipt"  # by default the extractor's own answers
    out = extract_llm(TaskContext(), llm, ExtractRequest(text=RECEIPT_DE, extractor="receipt", choose_below=1.0))
    assert llm.schemas and all("enum" in p for p in llm.schemas[0]["properties"].values())
    assert out.result["data"]["total"] == "2.75" and out.result["data"]["date"] == "2020-05-16"
    assert out.model == "fake" and set(out.result["field_confidence"]) == set(prebuilt.SPECS["receipt"])
    with pytest.raises(ValueError):
        ExtractRequest(text=RECEIPT_DE, extractor="receipt", choose_below=1.5)


def test_a_postcode_beside_a_place_is_told_from_a_register_number() -> None:
    from litegate.documents.prebuilt.candidates import _ZIP_PLACE

    for printed in ("85630 Grasbrunn", "LAS VEGAS NV 89103", "Omaha, NE 68154", "CHENNAI-600096",
                    "SURREY BC V3S 9N7", "London EC1N 2HT", "D-20095 Hamburg"):
        assert _ZIP_PLACE.search(printed), printed
    for printed in ("Trans #: 46704 Serv: Anna", "Order #68771 DINE IN", "Bon: 12345 Kasse 2", "02130"):
        assert not _ZIP_PLACE.search(printed), printed


RECEIPT_FOOT = """AdLabD neI
WUNSCHLOS GLÜCKLICH?
Datum 02.03.2020 19:02
MILCH 0,99
BROT 1,79
SUMME EUR 2,78
BAR 5,00
RÜCKGELD 2,22
Vielen Dank für Ihren Einkauf
Bitte beachten Sie unsere Angebote
Öffnungszeiten Mo-Sa 8-20 Uhr
Kundenservice 0800 123 4567
Steuer-Nr. 12/345/67890
Bewahren Sie den Beleg auf
Es bediente Sie Kasse 3
Filiale 1234
Aldi Nord GmbH & Co. KG
Hauptstraße 5
33100 Paderborn"""


def test_an_address_printed_at_the_foot_is_a_candidate_and_the_legal_name_is_marked() -> None:
    page = prebuilt.page_of(RECEIPT_FOOT)
    pool = prebuilt.candidates_for(page, "shop_address", None, "receipt")
    foot = [c for c in pool if c.features.get("below_top")]
    assert any(c.value.value == "Hauptstraße 5, 33100 Paderborn" for c in foot)
    assert all(c.line >= 16 for c in foot) and not any("RÜCKGELD" in c.value.value for c in foot)
    names = {c.value.value: c.features for c in prebuilt.candidates_for(page, "names", None, "receipt")}
    assert names["Aldi Nord GmbH & Co. KG"]["legal_form"] == 1.0
    assert names["WUNSCHLOS GLÜCKLICH?"]["exclaim"] == 1.0
    found = prebuilt.extract("receipt", RECEIPT_FOOT)["data"]
    assert found["merchant_address"] == "Hauptstraße 5, 33100 Paderborn"
    assert found["total"] == "2.78"


def test_a_name_over_its_kind_of_business_and_its_echo_in_the_legal_name() -> None:
    text = ("GOLDEN LOTUS\nKOREAN RESTAURANT\n2621 ORANGETHORPE AVE\nFULLERTON, CA 92833\nTOTAL $60.44\n"
            "Golden Lotus Inc.")
    page = prebuilt.page_of(text)
    names = {c.value.value: c.features for c in prebuilt.candidates_for(page, "names", None, "receipt")}
    assert names["GOLDEN LOTUS KOREAN RESTAURANT"]["kind_second"] == 1.0
    assert names["KOREAN RESTAURANT"]["kind_under_text"] == 1.0
    assert names["GOLDEN LOTUS"]["echo"] == 1.0 and names["KOREAN RESTAURANT"]["echo"] == 0.0
    foot = prebuilt.page_of(RECEIPT_FOOT)
    aldi = {c.value.value: c.features for c in prebuilt.candidates_for(foot, "names", None, "receipt")}
    assert aldi["WUNSCHLOS GLÜCKLICH?"]["echo"] == 0.0


def test_a_calibration_maps_confidences_only_and_a_stale_one_is_ignored(tmp_path) -> None:
    import json

    from litegate.documents.prebuilt import model

    weights = {"fields": {"total": {"weights": {"kw_total": 6.0}, "bias": -1.0, "threshold": 0.0}}}
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(weights))
    raw = model.load(path)["scorers"]["total"]
    assert raw.calibration is None
    cal = {"weights_sha1": model.weights_sha1(path), "fields": {"total": {"a": 0.2, "b": 0.5}}}
    path.with_suffix(".calibration.json").write_text(json.dumps(cal))
    scorer = model.load(path)["scorers"]["total"]
    page = prebuilt.page_of("MILK 2.00\nTOTAL 9.50\nCASH 10.00")
    pool = prebuilt.candidates_for(page, "money", None, "receipt")
    (best_raw, p_raw), (best, p) = raw.best(pool), scorer.best(pool)
    assert best is best_raw and best.value.amount == 9.5  # the same answer, a humbler confidence
    assert p_raw > 0.99 and 0.5 < p < p_raw
    assert [c for _, c in scorer.ranked(pool, 3)] == [c for _, c in raw.ranked(pool, 3)]
    path.write_text(json.dumps({"fields": {"total": {"weights": {"kw_total": 5.0}, "bias": -1.0}}}))
    assert model.load(path)["scorers"]["total"].calibration is None  # fitted to other weights


SERVICE_AND_CASH = """TRATTORIA SOLE
VIA ROMA 12
00100 ROMA
22.03.2019
PANE 2,00
PESCE 300,00
VINO 70,00
Totale 372,00
Servizio 37,20
Totale EURO 409,20
CONTANTI 500,00"""


def test_the_total_is_the_last_total_and_neither_the_cash_given_nor_the_change() -> None:
    money = prebuilt.candidates_for(prebuilt.page_of(SERVICE_AND_CASH), "money", "EUR", "receipt")
    by_value = {c.value.value: c.features for c in money}
    assert by_value["372.00"]["total_later_larger"] == 1.0 and by_value["409.20"]["last_total"] == 1.0
    cash = prebuilt.candidates_for(prebuilt.page_of(RECEIPT_EN), "money", "MYR", "receipt")
    by_value = {c.value.value: c.features for c in cash}
    assert by_value["16.43"]["paid_less_change"] == 1.0 and by_value["16.43"]["net_plus_tax"] == 1.0
    assert by_value["20.00"]["paid_less_change"] == 0.0
    assert prebuilt.extract("receipt", SERVICE_AND_CASH)["data"]["total"] == "409.20"
    no_change = "GOLDEN CHOPSTICKS\n88 Orchard Road\n12/03/2019\n1 SOUP 10.00\nSubtotal 33.00\n7% GST 2.31\n" \
                "Total 35.31\nCASH 50.00"
    paid = {c.value.value: c.features for c in prebuilt.candidates_for(prebuilt.page_of(no_change), "money", None,
                                                                      "receipt")}
    assert paid["50.00"]["cash_over_total"] == 1.0 and paid["35.31"]["cash_over_total"] == 0.0
    assert prebuilt.extract("receipt", no_change)["data"]["total"] == "35.31"


def _boxed(rows: list[tuple[str, float]]) -> Document:
    """A scanned page's lines: centred, each as tall as given, one under another."""
    segments, y = [], 10.0
    for text, height in rows:
        width = len(text) * height * 0.55
        segments.append(Segment(text, page=1, box=[(600 - width) / 2, y, (600 + width) / 2, y + height]))
        y += height * 1.3
    return Document("scan", "image/png", "image", "\n".join(t for t, _ in rows), segments, pages=1, method="ocr")


def test_a_name_in_two_lines_of_large_print_is_taken_whole_and_a_sale_line_is_no_name() -> None:
    doc = _boxed([("SALE", 18), ("VOLUME ONE", 40), ("BOOKSHOP", 40), ("417 Main Street", 18),
                  ("Springfield, IL 62701", 18), ("03/14/2019 12:31", 18), ("NOTEBOOK 4.50", 18), ("PENS 3.20", 18),
                  ("TOTAL 7.70", 18), ("CASH 10.00", 18), ("CHANGE 2.30", 18)])
    page = prebuilt.page_of(doc)
    names = {c.value.value: c.features for c in prebuilt.candidates_for(page, "names", None, "receipt")}
    assert names["VOLUME ONE"]["cut_below"] == 1.0 and names["BOOKSHOP"]["cut_above"] == 1.0
    whole = names["VOLUME ONE BOOKSHOP"]
    assert whole["tallest"] == 1.0 and whole["cut_above"] == whole["cut_below"] == 0.0
    assert names["SALE"]["kw_service"] == 1.0 and names["SALE"]["tallest"] == 0.0
    found = prebuilt.extract("receipt", doc)["data"]
    assert found["merchant_name"] == "VOLUME ONE BOOKSHOP" and found["total"] == "7.70"


def test_an_address_run_that_goes_on_past_its_postcode_and_town_is_marked() -> None:
    text = "LINDEN MARKT\nLindenallee 12\n20095 Hamburg\nUNSERE ÖFFNUNGSZEITEN\nMo-Sa 8-20 Uhr\nSUMME 2,00\n01.02.2020"
    runs = {c.value.value: c.features for c in prebuilt.candidates_for(prebuilt.page_of(text), "shop_address", "EUR",
                                                                      "receipt")}
    assert runs["Lindenallee 12, 20095 Hamburg"]["past_place"] == 0.0
    assert runs["Lindenallee 12, 20095 Hamburg, UNSERE ÖFFNUNGSZEITEN"]["past_place"] == 1.0
    assert prebuilt.extract("receipt", text)["data"]["merchant_address"] == "Lindenallee 12, 20095 Hamburg"


PRINT_FEATURES = {"height", "tallest", "height_top", "cut_above", "cut_below", "same_height", "legal_below"}


def test_plain_text_carries_no_print_size_or_spacing_and_measured_boxes_do() -> None:
    rows = [("VOLUME ONE", 40), ("BOOKSHOP", 40), ("417 Main Street", 18), ("03/14/2019", 18), ("TOTAL 7.70", 18)]
    text = "\n".join(t for t, _ in rows)
    plain, scan = prebuilt.page_of(text), prebuilt.page_of(_boxed(rows))
    assert not plain.boxed and scan.boxed
    assert not layout.from_document(Document("t", "text/plain", "text", text, [Segment(text, 1)])).boxed
    for page in (plain, scan):
        names = prebuilt.candidates_for(page, "names", None, "receipt")
        money = prebuilt.candidates_for(page, "money", None, "receipt")
        kept = {k for c in names for k in c.features}
        if page.boxed:
            assert PRINT_FEATURES <= kept and all("height" in c.features for c in money)
        else:
            assert not kept & PRINT_FEATURES and not any("height" in c.features for c in money)
        # what does not read print is the same on both: keywords, text shape, the store number
        by_value = {c.value.value: c.features for c in names}
        assert by_value["VOLUME ONE BOOKSHOP"]["two_lines"] == 1.0 and "store_number" in by_value["BOOKSHOP"]
    # "the same print" on a scan: the name's two lines of large print, not the street under them
    scan_names = {c.value.value: c.features for c in prebuilt.candidates_for(scan, "names", None, "receipt")}
    assert scan_names["VOLUME ONE"]["cut_below"] == 1.0 and scan_names["BOOKSHOP"]["cut_below"] == 0.0
