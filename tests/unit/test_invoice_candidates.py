"""The invoice's own candidates on a laid-out page (a window envelope's recipient, a contact's
block beside it, tax printed per rate, the due date as payment terms, a one-line letterhead),
through the shipped invoice weights."""

from __future__ import annotations

import pytest

from litegate.documents import Document, Segment, prebuilt
from litegate.documents.prebuilt import invoice

pytestmark = pytest.mark.unit


def _page(pieces: list[tuple[str, float, float, float]]) -> Document:
    """A text-layer page from (text, x, y, size) pieces; a character is about half its size wide."""
    segments = [Segment(text, 1, [x, y, x + len(text) * size * 0.5, y + size]) for text, x, y, size in pieces]
    return Document("letter.pdf", "application/pdf", "pdf", "\n".join(p[0] for p in pieces), segments)


LETTER = [
    ("Kestrel Technik GmbH", 50, 40, 14), ("Lindenweg 4", 50, 58, 9), ("33100 Paderborn", 50, 70, 9),
    ("Kestrel Technik GmbH · Lindenweg 4 · 33100 Paderborn", 50, 120, 6),
    ("Firma", 50, 134, 9), ("Ostwind Handel KG", 50, 146, 9), ("Hafenweg 3", 50, 158, 9), ("20457 Hamburg", 50, 170, 9),
    ("Ihr Ansprechpartner", 350, 134, 9), ("Lena Vogt", 350, 146, 9), ("Tel. +49 5251 12345", 350, 158, 9),
    ("lena.vogt@kestrel.example", 350, 170, 9),
    ("Rechnung", 50, 220, 12), ("Rechnungsnummer", 350, 222, 9), ("RE-2024117", 470, 222, 9),
    ("Rechnungsdatum", 350, 234, 9), ("12.02.2024", 470, 234, 9),
    ("Pos", 50, 270, 9), ("Bezeichnung", 90, 270, 9), ("Betrag", 500, 270, 9),
    ("1", 50, 284, 9), ("Druckerpapier A4", 90, 284, 9), ("20,00", 500, 284, 9),
    ("2", 50, 296, 9), ("Wartung", 90, 296, 9), ("48,00", 500, 296, 9),
    ("Nettobetrag", 300, 330, 9), ("68,00", 500, 330, 9),
    ("USt 7%", 300, 342, 9), ("1,40", 505, 342, 9),
    ("USt 19%", 300, 354, 9), ("9,12", 505, 354, 9),
    ("Gesamtbetrag", 300, 368, 10), ("78,52 EUR", 490, 368, 10),
    ("Zahlbar innerhalb von 14 Tagen ohne Abzug.", 50, 400, 9),
    ("Kestrel Technik GmbH", 50, 780, 7), ("Sitz der Gesellschaft: Paderborn", 230, 780, 7),
    ("IBAN DE12 3456 7890", 420, 780, 7),
]


def test_the_window_address_is_the_customer_not_the_contact_block_beside_it() -> None:
    got = prebuilt.extract("invoice", _page(LETTER))["data"]
    assert got["customer"] == "Ostwind Handel KG"
    assert got["vendor"] == "Kestrel Technik GmbH" and got["invoice_number"] == "RE-2024117"


def test_tax_printed_per_rate_is_their_sum_and_terms_give_the_due_date() -> None:
    got = prebuilt.extract("invoice", _page(LETTER))["data"]
    assert got["tax"] == "10.52" and got["subtotal"] == "68.00" and got["total"] == "78.52"
    assert got["invoice_date"] == "2024-02-12" and got["due_date"] == "2024-02-26"


def test_party_candidates_say_which_lines_are_contacts_labels_and_window_blocks() -> None:
    page = prebuilt.page_of(_page(LETTER))
    by_text: dict[str, dict[str, float]] = {}
    for c in invoice.customers(page):
        by_text.setdefault(c.value.value, c.features)  # the first of a name printed twice
    assert by_text["Ostwind Handel KG"]["pwindow"] == 1.0 and by_text["Ostwind Handel KG"]["pbelow_zip"] == 1.0
    assert by_text["Ostwind Handel KG"]["plab_salutation"] == 1.0  # "Firma" over the name
    assert by_text["lena.vogt@kestrel.example"]["pcontact"] == 1.0
    assert by_text["Ihr Ansprechpartner"]["pfoot_echo"] == 0.0
    assert by_text["Kestrel Technik GmbH"]["pfoot_echo"] == 1.0  # printed again in the footer: the issuer


def test_a_label_then_its_value_on_one_line_gives_the_value_alone() -> None:
    page = prebuilt.page_of("Bill to: Meridian Logistics Ltd\n12 Mill Lane\nLeeds LS1 4AP\nClient Services Team")
    values = [c.value.value for c in invoice.customers(page) if c.features.get("after_label")]
    assert values == ["Meridian Logistics Ltd"]  # "Client Services Team" holds a label word but no label


def test_a_one_line_letterhead_names_its_vendor_and_an_address_line_is_no_letterhead() -> None:
    page = prebuilt.page_of("Au bon moulin SARL - 1242 chemin des Vignes - 84000 Avignon\nStation Road, 21\n"
                            "Facture N° F-2024-88\nDate 03.04.2024\nTotal TTC 120,00")
    heads = {c.value.value: c.features for c in invoice.letterhead_names(page)}
    assert set(heads) == {"Au bon moulin SARL"} and heads["Au bon moulin SARL"]["seg_legal"] == 1.0
    places = [c.value.value for c in invoice.letterhead_addresses(page)]
    assert places == ["1242 chemin des Vignes, 84000 Avignon"]


FOOTER_ONLY = [
    ("RECHNUNG", 50, 60, 16), ("Ostwind Handel KG", 50, 130, 9), ("Hafenweg 3", 50, 142, 9),
    ("20457 Hamburg", 50, 154, 9), ("Rechnungsnummer", 350, 200, 9), ("RE-2024117", 470, 200, 9),
    ("Rechnungsdatum", 350, 212, 9), ("12.02.2024", 470, 212, 9),
    ("Wartung", 90, 284, 9), ("68,00", 500, 284, 9),
    ("Nettobetrag", 300, 330, 9), ("68,00", 500, 330, 9), ("USt 19%", 300, 342, 9), ("12,92", 505, 342, 9),
    ("Gesamtbetrag", 300, 368, 10), ("80,92 EUR", 490, 368, 10),
    ("Bitte geben Sie bei Zahlung die Rechnung RE-2024117 vom 12.02.2024 an.", 50, 400, 9),
    ("Kestrel Technik GmbH · Lindenweg 4 · 33100 Paderborn · Amtsgericht Paderborn HRB 4711", 50, 780, 6),
    ("USt-IdNr. DE123456789 · IBAN DE12 3456 7890", 50, 788, 6),
]


def test_a_vendor_named_only_in_a_one_line_footer_is_found_with_its_address() -> None:
    page = prebuilt.page_of(_page(FOOTER_ONLY))
    assert "Kestrel Technik GmbH" in {c.value.value for c in invoice.letterhead_names(page)}
    addresses = {c.value.value: c.features for c in invoice.letterhead_addresses(page)}
    assert set(addresses) == {"Lindenweg 4, 33100 Paderborn"}
    assert addresses["Lindenweg 4, 33100 Paderborn"]["seg_foot"] == 1.0
    got = prebuilt.extract("invoice", _page(FOOTER_ONLY))["data"]
    assert got["vendor"] == "Kestrel Technik GmbH" and got["vendor_address"] == "Lindenweg 4, 33100 Paderborn"
    assert got["customer"] == "Ostwind Handel KG"


def test_a_later_part_with_a_legal_form_is_a_name_and_a_contact_part_is_not() -> None:
    page = prebuilt.page_of("Tel. 0521 1234 · Kestrel Technik GmbH · Lindenweg 4 · 33100 Paderborn\nRechnung 4711\n"
                            "Datum 01.11.2024\nSumme 447,88")
    names = {c.value.value: c.features for c in invoice.letterhead_names(page)}
    assert names["Kestrel Technik GmbH"]["seg_later"] == 1.0
    assert all(not prebuilt.cands.squash(n).startswith("tel05") or f["seg_later"] == 0.0 for n, f in names.items())


def test_payment_terms_count_from_each_printed_date_and_a_discount_term_is_marked() -> None:
    page = prebuilt.page_of("Rechnungsdatum 01.03.2024\nZahlbar innerhalb 30 Tagen netto, 2% Skonto innerhalb 8 Tagen")
    terms = {(c.value.value, c.features.get("terms_discount")) for c in invoice.due_dates(page)
             if c.features.get("terms")}
    assert terms == {("2024-03-31", 0.0), ("2024-03-09", 1.0)}


def test_per_rate_taxes_give_one_sum_and_a_printed_sum_gives_none() -> None:
    text = "Nettobetrag 68,00\nUSt 7% 1,40\nUSt 19% 9,12\nGesamtbetrag 78,52"
    page = prebuilt.page_of(text)
    pool = prebuilt.candidates_for(page, "money", "EUR", "invoice")
    sums = [c for c in pool if c.features.get("synth_sum")]
    assert [c.value.amount for c in sums] == [10.52] and sums[0].features["sum_closes"] == 1.0
    page = prebuilt.page_of(text + "\nUSt gesamt 10,52")
    assert not invoice.tax_sums(page, prebuilt.cands.money(page, "EUR"))


def test_a_block_label_is_found_up_its_column_past_a_piece_spanning_both_columns() -> None:
    # "Lieferant" and "Käufer" over their blocks, with one identifier line running under both
    page = prebuilt.page_of(_page([
        ("Lieferant", 40, 60, 8), ("Käufer", 210, 60, 8),
        ("GLN 4000001000005 Lief-Nr: 5499 GLN 4000002000002", 40, 70, 8),
        ("Brunnbauer Metall GmbH", 40, 80, 8), ("Ostwind Handel KG", 210, 80, 8),
        ("Industriestraße 7", 40, 90, 8), ("Hafenweg 3", 210, 90, 8),
        ("70565 Stuttgart", 40, 100, 8), ("20457 Hamburg", 210, 100, 8),
        ("Rechnungsdatum 12.02.2024", 40, 140, 8), ("Gesamtbetrag 80,92", 40, 160, 8)]))
    by_text = {c.value.value: c.features for c in invoice.customers(page)}
    assert by_text["Ostwind Handel KG"].get("plab_customer") == 1.0
    assert by_text["Brunnbauer Metall GmbH"].get("plab_vendor") == 1.0
    assert "plab_customer" not in by_text["Brunnbauer Metall GmbH"]


def test_a_rate_row_gives_its_tax_not_its_base_and_the_sum_compares_as_itself() -> None:
    # each rate's row prints its base and its tax: the tax is the smaller; the sum is no "largest amount"
    text = ("Summe netto 473,00\nSteuerbasisbetrag USt. 7% 275,00 19,25\nSteuerbasisbetrag USt. 19% 198,00 37,62\n"
            "Rechnungssumme Brutto 529,87")
    pool = prebuilt.candidates_for(prebuilt.page_of(text), "money", "EUR", "invoice")
    sums = [c for c in pool if c.features.get("synth_sum")]
    assert [c.value.amount for c in sums] == [56.87]
    assert sums[0].features["max"] == 0.0 and sums[0].features["addend_small"] == 1.0  # 473,00 + 56,87 = 529,87
    net = next(c for c in pool if c.value.amount == 473.0)
    assert net.features["addend_large"] == 1.0


def test_a_per_rate_sum_larger_than_the_gross_is_no_candidate() -> None:
    text = "Nettobetrag zzgl. 19% MwSt. 376,37\nUSt 19% 376,37 71,51\nSumme gesamt 447,88"
    page = prebuilt.page_of(text)
    assert "tax" not in page.lines[0].keywords and "subtotal" in page.lines[0].keywords  # "plus VAT" after a net
    assert not [c for c in prebuilt.candidates_for(page, "money", "EUR", "invoice") if c.features.get("synth_sum")]
    assert "tax" in prebuilt.page_of("zzgl. MwSt. 19% 71,51").lines[0].keywords  # a tax's own line


def test_a_label_printed_over_a_date_labels_it() -> None:
    page = prebuilt.page_of(_page([("Rechnung 4711", 50, 40, 12), ("Invoice Date", 300, 100, 9),
                                   ("Due Date", 400, 100, 9), ("February 17, 2026", 300, 112, 9),
                                   ("March 3, 2026", 400, 112, 9), ("Total 80,00", 300, 200, 9)]))
    by_value = {c.value.value: c.features for c in invoice.dates(page)}
    assert by_value["2026-03-03"].get("kw_due") == 1.0 and by_value["2026-03-03"].get("label_above") == 1.0
    assert by_value["2026-02-17"].get("kw_issued") == 1.0 and "kw_due" not in by_value["2026-02-17"]


def test_a_date_on_the_terms_line_is_marked_and_so_are_the_terms_counted_beside_it() -> None:
    page = prebuilt.page_of("Rechnungsdatum 05.06.2013\nZahlbar innerhalb 30 Tagen netto bis 04.07.2013")
    got = invoice.due_dates(page)
    printed = next(c for c in got if c.value.value == "2013-07-04" and not c.features.get("terms"))
    assert printed.features["on_terms_line"] == 1.0
    assert all(c.features["terms_line_dated"] == 1.0 for c in got if c.features.get("terms"))


def test_an_address_on_one_line_is_no_letterhead_and_a_name_broken_before_its_legal_form_goes_on() -> None:
    page = prebuilt.page_of("Lilienthalallee 26, 80786 München\nRechnung 4711\nDatum 01.11.2024\nSumme 447,88")
    assert not invoice.letterhead_names(page)
    page = prebuilt.page_of(_page([("MVM Musterhafter", 70, 70, 10),
                                   ("Versicherungsverein Musterstadt a.G.", 70, 81, 10),
                                   ("Musterstr. 12", 70, 120, 10), ("12345 Musterstadt", 70, 131, 10),
                                   ("24. Januar 2014", 400, 200, 10), ("Gesamt 59,50", 70, 300, 10)]))
    by_text = {c.value.value: c.features for c in prebuilt.cands.names(page)}
    assert by_text["MVM Musterhafter"]["legal_below"] == 1.0
    assert by_text["MVM Musterhafter Versicherungsverein Musterstadt a.G."]["legal_last_only"] == 1.0


def test_the_date_chosen_as_the_invoices_own_is_not_also_its_due_date() -> None:
    # a due-date scorer that takes any date: only the rule keeps it off the invoice's own date
    scorers = dict(prebuilt._weights("invoice")["scorers"])
    scorers["due_date"] = prebuilt.model.FieldScorer({}, 3.0)
    text = "Rechnung 4711\nRechnungsdatum 12.02.2024\nGesamtbetrag 80,92"
    for fields in (None, ["due_date", "invoice_date"]):
        got = prebuilt.extract("invoice", text, fields, scorers=scorers)["data"]
        assert got["invoice_date"] == "2024-02-12" and got["due_date"] is None
    got = prebuilt.extract("invoice", text + "\nZahlbar bis 26.02.2024", scorers=scorers)["data"]
    assert got["due_date"] == "2024-02-26"
    # the invoice's date printed again elsewhere is still its date, not a due date; a due label makes it one
    again = text + "\nBitte geben Sie bei Zahlung die Rechnung 4711 vom 12.02.2024 an."
    assert prebuilt.extract("invoice", again, scorers=scorers)["data"]["due_date"] is None
    got = prebuilt.extract("invoice", text + "\nFällig am 12.02.2024", scorers=scorers)["data"]
    assert got["due_date"] == "2024-02-12"


def test_a_due_label_of_one_word_labels_its_date() -> None:
    page = prebuilt.page_of("Rechnung 4711\nRechnungsdatum 11.03.2014\nFälligkeitstag: 01.04.2014\nSumme 447,88")
    by_value = {c.value.value: c.features for c in invoice.dates(page)}
    assert by_value["2014-04-01"].get("kwleft_due") == 1.0 and "kw_due" not in by_value["2014-03-11"]


def test_a_credit_notes_amounts_compare_by_size() -> None:
    text = "Gutschrift\nArtikel A -5,00\nArtikel B -2,90\nNettobetrag -7,90\nUSt 19% -1,50\nEndbetrag -9,40"
    pool = prebuilt.candidates_for(prebuilt.page_of(text), "money", "EUR", "invoice")
    by_amount = {c.value.amount: c.features for c in pool}
    assert by_amount[-9.4]["max"] == 1.0 and by_amount[-9.4]["negative"] == 0.0
    assert by_amount[-7.9]["addend_large"] == 1.0 and by_amount[-1.5]["addend_small"] == 1.0
    receipt = prebuilt.candidates_for(prebuilt.page_of(text), "money", "EUR", "receipt")
    assert all(c.features["negative"] == 1.0 for c in receipt)  # receipts keep the sign as printed


def test_an_amount_under_a_column_of_amounts_that_it_sums_is_marked() -> None:
    page = prebuilt.page_of(_page([
        ("Rechnung 4711", 50, 40, 12), ("Satz", 50, 100, 9), ("Netto", 200, 100, 9), ("USt", 300, 100, 9),
        ("7 %", 50, 112, 9), ("275,00", 200, 112, 9), ("19,25", 300, 112, 9),
        ("19 %", 50, 124, 9), ("198,00", 200, 124, 9), ("37,62", 300, 124, 9),
        ("Summe", 50, 136, 9), ("473,00", 200, 136, 9), ("56,87", 300, 136, 9)]))
    pool = prebuilt.candidates_for(page, "money", "EUR", "invoice")
    marked = sorted(c.value.amount for c in pool if c.features.get("column_sum"))
    assert marked == [56.87, 473.0]
    assert not [c for c in pool if c.features.get("synth_sum")]  # the tax's sum is printed


def test_the_date_after_a_cash_discount_term_is_marked_as_the_discounts() -> None:
    page = prebuilt.page_of("Rechnungsdatum 05.03.2013\nZahlbar innerhalb 30 Tagen netto bis 04.04.2013, "
                            "3% Skonto innerhalb 10 Tagen bis 15.03.2013")
    printed = {c.value.value: c.features["discount_date"] for c in invoice.due_dates(page)
               if not c.features.get("terms")}
    assert printed == {"2013-03-05": 0.0, "2013-04-04": 0.0, "2013-03-15": 1.0}


def test_the_vendors_address_is_not_taken_from_the_customers_block() -> None:
    # an address scorer that prefers the lower of two address blocks: without the rule it answers
    # the customer's postal lines under the customer's name
    scorers = dict(prebuilt._weights("invoice")["scorers"])
    scorers["vendor_address"] = prebuilt.model.FieldScorer({"kwprev_company": 5.0, "zip_place": 2.0, "y": 3.0}, -6.0)
    pool = prebuilt.candidates_for(prebuilt.page_of(_page(LETTER)), "address", "EUR", "invoice")
    best, _ = scorers["vendor_address"].best(pool)
    assert best is not None and best.value.value == "Hafenweg 3, 20457 Hamburg"
    got = prebuilt.extract("invoice", _page(LETTER), scorers=scorers)["data"]
    assert got["customer"] == "Ostwind Handel KG" and got["vendor_address"] == "Lindenweg 4, 33100 Paderborn"
