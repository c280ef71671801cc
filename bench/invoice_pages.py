"""Generated invoices laid out as invoicing software prints them, for training the prebuilt
``invoice`` extractor (bench/prebuilt.py): pieces of text with boxes on an A4 page, as a PDF's
text layer gives them, or joined into rows as OCR gives them.

What real invoices have and the line-by-line generator does not: a window envelope's address
(the sender in small print over the recipient's block), a letterhead or the issuer's block in
a right-hand column, label and value parted by a gap (or the label printed over the value),
item tables with a header row, totals with their labels at the left of the amount column, and
tax tables (rate, net, tax, gross) in German, English and French wording. All vocabulary is
general; no producer's layout is copied.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

# (language, label) choices; the extractor must read all of them, so each language's words are
# drawn at random within one invoice's language
LABELS = {
    "de": {"title": ["Rechnung", "RECHNUNG", "Rechnung Nr."],
           "number": ["Rechnungsnummer", "Rechnungs-Nr.", "Rechnung Nr.", "Belegnummer", "Beleg-Nr."],
           "date": ["Rechnungsdatum", "Datum", "Belegdatum"], "due": ["Fällig am", "Zahlbar bis", "Fälligkeitsdatum"],
           "customer_no": ["Kundennummer", "Kunden-Nr."], "delivery": ["Lieferdatum", "Leistungsdatum"],
           "bill_to": ["Rechnungsempfänger", "Kunde", "Rechnungsadresse", "Käufer"],
           "seller": ["Rechnungssteller", "Lieferant", "Verkäufer", "Absender"],
           "salutation": ["Herrn", "Frau", "Firma", ""], "country": "Deutschland",
           "contact": ["Ihr Ansprechpartner", "Kontakt", "Bearbeiter"],
           "register": ["Sitz der Gesellschaft: {city}", "Amtsgericht {city} HRB {n}", "Geschäftsführer: {person}",
                        "USt-IdNr. DE{n}{n}"],
           "subtotal": ["Nettobetrag", "Summe netto", "Zwischensumme", "Gesamt netto", "Rechnungssumme Netto"],
           "tax": ["USt.", "MwSt.", "Umsatzsteuer", "zzgl. MwSt.", "USt-Betrag"],
           "total": ["Gesamtbetrag", "Rechnungsbetrag", "Endbetrag", "Zahlbetrag", "Gesamtsumme brutto",
                     "Rechnungssumme Brutto"],
           "table": [["Satz", "Netto", "USt", "Brutto"], ["USt-Satz", "Nettobetrag", "Steuerbetrag", "Bruttobetrag"],
                     ["MwSt %", "Basis", "MwSt", "Gesamt"]],
           "items": ["Pos", "Bezeichnung", "Menge", "Einzelpreis", "Betrag"],
           "sum_row": ["Summe", "Gesamt", "Summe gesamt"],
           "printed": ["Datum: {date} Zeit: {time} Seite: 1", "Druckdatum {date} {time}",
                       "Gedruckt am {date} um {time}"],
           "terms": ["Zahlbar innerhalb von {days} Tagen ohne Abzug.", "Bitte überweisen Sie den Betrag bis zum {due}.",
                     "Vielen Dank für Ihren Auftrag.", "Zahlungsziel: {days} Tage netto",
                     "Zahlbar innerhalb {days} Tagen netto, 2% Skonto innerhalb 8 Tagen",
                     "Zahlbar innerhalb {days} Tagen netto bis {due}.",
                     "Zahlbar innerhalb {days} Tagen netto bis {due}, {pct}% Skonto innerhalb {sdays} Tagen "
                     "bis {sdue}"],
           "letter": ["Sehr geehrte Damen und Herren,", "wir bedanken uns für Ihren Auftrag und stellen Ihnen folgende "
                      "Leistungen in Rechnung:", "Sehr geehrter Herr Weber,", "für die Lieferung vom {date} berechnen "
                      "wir Ihnen:"],
           "other_ids": ["Bestell-Nr.", "Lieferschein-Nr.", "Auftragsnummer", "USt-IdNr.", "Steuernummer",
                         "Ihre Referenz"],
           # a number's label of a word the vocabulary does not know and "Nr." (not the invoice's either)
           "plain_ids": ["Vorgangs-Nr.", "Akten-Nr.", "Kenn-Nr.", "Lfd. Nr.", "Serien-Nr."],
           "goods": ["Warenwert", "Summe Positionen", "Zwischensumme"], "discount": ["Rabatt", "Nachlass"],
           "charge": ["Fracht", "Versandkosten", "Zuschlag"],
           "again_other": ["Lieferung vom {date}", "Ihre Bestellung vom {date}", "Leistung erbracht am {date}"],
           "again": ["Bitte geben Sie bei Zahlung {number} vom {date} an.", "Rechnung {number} vom {date}",
                     "Datum: {date}", "Erstellt am {date}"],
           "notes": ["Verpackung: Karton", "Art.-Nr.: {n}", "GTIN: 40{n}{n}", "Lieferung in {k} Kartons",
                     "Leistungszeitraum {date}"]},
    "en": {"title": ["Invoice", "INVOICE", "Tax Invoice"], "number": ["Invoice No.", "Invoice number", "Invoice #",
                                                                       "Number"],
           "date": ["Invoice date", "Date", "Date of issue"], "due": ["Due date", "Payment due", "Due"],
           "customer_no": ["Customer No.", "Account"], "delivery": ["Delivery date", "Service date"],
           "bill_to": ["Bill to", "Billed to", "Invoice to", "Customer", "Buyer"],
           "seller": ["From", "Seller", "Supplier", "Vendor"],
           "salutation": ["Mr", "Ms", "Attn:", ""], "country": "United Kingdom",
           "contact": ["Your contact", "Contact", "Questions?"],
           "register": ["Registered in England No. {n}", "Registered office: {city}", "Director: {person}",
                        "VAT Reg. No. GB{n}{n}"],
           "subtotal": ["Subtotal", "Net total", "Net amount", "Total excl. VAT", "Total before tax"],
           "tax": ["VAT", "Tax", "Sales tax", "VAT amount", "Total VAT"],
           "total": ["Total", "Total due", "Amount due", "Grand total", "Balance due", "Total incl. VAT"],
           "table": [["VAT rate", "Net", "VAT", "Gross"], ["Rate", "Net amount", "VAT amount", "Total"],
                     ["Tax %", "Taxable", "Tax", "Amount"]],
           "items": ["#", "Description", "Qty", "Unit price", "Amount"], "sum_row": ["Total", "Sum", "Totals"],
           "printed": ["Printed {date} {time}", "Date: {date} Time: {time} Page 1", "Print date {date} {time}"],
           "terms": ["Payment due within {days} days.", "Please pay by {due}.", "Thank you for your business.",
                     "Terms: Net {days}", "Payable within {days} days of the invoice date.",
                     "Payable within {days} days, by {due}.",
                     "Net {days} days (by {due}); {pct}% discount if paid within {sdays} days ({sdue})"],
           "letter": ["Dear Sir or Madam,", "Thank you for your order. We invoice you for the following items:",
                      "Dear Ms Raman,", "as agreed we charge you for the work done on {date}:"],
           "other_ids": ["Order No.", "Delivery note", "PO number", "VAT ID", "Your reference", "Account No."],
           "plain_ids": ["Serial No.", "File No.", "Case #", "Unit No.", "Chassis No."],
           "goods": ["Total items", "Goods value", "Subtotal"], "discount": ["Discount", "Rebate"],
           "charge": ["Freight", "Shipping", "Surcharge"],
           "again_other": ["Delivery of {date}", "Your order of {date}", "Work done on {date}"],
           "again": ["Please quote {number} of {date} with your payment.", "Invoice {number} dated {date}",
                     "Date: {date}", "Issued on {date}"],
           "notes": ["Packaging: box", "Item no.: {n}", "EAN {n}{n}", "Delivered in {k} boxes", "Period from {date}"]},
    "fr": {"title": ["Facture", "FACTURE", "Facture N°"], "number": ["N° de facture", "Facture N°", "Numéro de facture",
                                                                     "Numéro"],
           "date": ["Date de facture", "Date", "Date d'émission"], "due": ["Date d'échéance", "Échéance",
                                                                           "À payer avant le"],
           "customer_no": ["N° client", "Code client"], "delivery": ["Date de livraison"],
           "bill_to": ["Adresse de facturation", "Client", "Facturé à", "Acheteur", "Destinataire"],
           "seller": ["Fournisseur", "Vendeur", "Émetteur"],
           "salutation": ["Monsieur", "Madame", "M.", ""], "country": "France",
           "contact": ["Votre contact", "Contact", "Interlocuteur"],
           "register": ["SARL au capital de {n} €", "RCS {city} B {n}", "SIRET {n}{n}", "Gérant : {person}"],
           "subtotal": ["Total HT", "Montant HT", "Sous-total", "Total hors taxes"],
           "tax": ["TVA", "Total TVA", "Montant TVA", "Total taxes"],
           "total": ["Total TTC", "Net à payer", "Montant TTC", "Total à payer"],
           "table": [["Taux", "Base HT", "TVA", "Total TTC"], ["Taux TVA", "Montant HT", "Montant TVA", "TTC"]],
           "items": ["Réf.", "Désignation", "Qté", "Prix unitaire", "Montant HT"], "sum_row": ["Total", "Totaux"],
           "printed": ["Imprimé le {date} à {time}", "Date : {date} Heure : {time} Page 1"],
           "terms": ["Paiement à {days} jours.", "À régler avant le {due}.", "Merci de votre confiance.",
                     "Conditions de paiement : {days} jours net", "Paiement à {days} jours, soit le {due}.",
                     "Paiement à {days} jours ({due}), escompte {pct}% à {sdays} jours ({sdue})"],
           "letter": ["Madame, Monsieur,", "Nous vous remercions de votre commande et vous facturons les prestations "
                      "suivantes :", "Suite à notre intervention du {date}, voici notre facture."],
           "other_ids": ["N° de commande", "Bon de livraison", "N° TVA", "SIRET", "Votre référence", "Réf. marché"],
           "plain_ids": ["N° de dossier", "N° de série", "N° d'affaire", "N° de lot"],
           "goods": ["Total articles", "Montant brut HT", "Sous-total"], "discount": ["Remise", "Rabais"],
           "charge": ["Frais de port", "Majoration"],
           "again_other": ["Livraison du {date}", "Votre commande du {date}", "Prestation réalisée le {date}"],
           "again": ["Merci de rappeler la référence {number} du {date} lors du paiement.",
                     "Facture {number} du {date}", "Date : {date}", "Émise le {date}"],
           "notes": ["Conditionnement : carton", "Réf. : {n}", "Code article {n}", "Période du {date}",
                     "Livré en {k} colis"]},
}
FIRST = ["Anna", "Jonas", "Claire", "Marco", "Priya", "Lena", "Thomas", "Sophie", "Ahmed", "Julia", "Pierre", "Hans"]
LAST = ["Weber", "Dubois", "Schmidt", "Bellini", "Raman", "Vogt", "Martin", "Keller", "Karim", "Lindqvist", "Fischer"]
COMPANY = ["Nordlicht", "Alpen", "Kestrel", "Meridian", "Lumen", "Atlas", "Bergmann", "Rivage", "Sonnenhof", "Vortex",
           "Blauwal", "Granit", "Horizon", "Quercus", "Falken", "Ostwind", "Papillon", "Solaris", "Tannen", "Zephyr"]
TRADE = ["Bau", "Technik", "Logistik", "Consulting", "Software", "Handel", "Druck", "Elektro", "Systems", "Services",
         "Solutions", "Bureau", "Distribution", "Medical", "Design", "Energie", "Immobilien", "Versand"]
FORMS = {"de": ["GmbH", "AG", "GmbH & Co. KG", "e.K.", "KG", "UG", "a.G.", "e.V."],
         "en": ["Ltd", "Ltd.", "Inc.", "LLC", "PLC"], "fr": ["SARL", "SAS", "S.A.", "EURL"]}
STREETS = {"de": ["Hauptstraße", "Bahnhofstr.", "Lindenweg", "Industriestraße", "Am Markt", "Gartenallee",
                  "Ringstraße", "Kirchplatz"],
           "en": ["High Street", "Station Road", "Mill Lane", "King's Road", "Church Street", "Park Avenue"],
           "fr": ["rue de la Paix", "avenue Victor Hugo", "chemin des Vignes", "boulevard Voltaire", "place du Marché"]}
CITIES = {"de": ["Berlin", "München", "Hamburg", "Köln", "Paderborn", "Stuttgart", "Leipzig", "Bremen"],
          "en": ["London", "Leeds", "Bristol", "Manchester", "York", "Cardiff"],
          "fr": ["Paris", "Lyon", "Nantes", "Toulouse", "Lille", "Bordeaux"]}
ITEMS = ["Consulting (hours)", "Software licence", "Maintenance", "Office chairs", "Printer paper A4", "Design work",
         "Transport", "Installation", "Training day", "Cable 10m", "Server rack", "Trennblätter A4", "Farbe weiß 10l",
         "Schrauben 4x40", "Prestation de conseil", "Huile d'olive 1L", "Support annuel", "Hosting (month)"]
COUNTRY_LABEL = {"de": "DE", "en": "GB", "fr": "FR"}


def _company(rng: random.Random, lang: str) -> str:
    core = rng.choice(COMPANY) + rng.choice([" ", " ", " ", "", "-"]) + rng.choice(TRADE)
    return f"{core} {rng.choice(FORMS[lang])}" if rng.random() < 0.85 else core


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def _address(rng: random.Random, lang: str) -> list[str]:
    number = str(rng.randint(1, 180)) + rng.choice(["", "", "a"])
    street = rng.choice(STREETS[lang])
    first = f"{number} {street}" if lang in ("en", "fr") and rng.random() < 0.7 else f"{street} {number}"
    postcode = str(rng.randint(10000, 99999)) if lang != "en" else rng.choice(["LS1 4AP", "BS1 5TR", "M1 2AB"])
    city = rng.choice(CITIES[lang])
    second = f"{postcode} {city}" if lang != "en" else f"{city} {postcode}"
    return [first, second.upper() if rng.random() < 0.15 else second]


class Sheet:
    """Pieces of text with boxes on a page of ``width`` points (A4 is 595 wide)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.width = rng.uniform(560, 640)
        self.size = rng.uniform(8.5, 10.5)  # the body text's size in points
        self.pieces: list[tuple[str, list[float]]] = []
        self.due_in_terms = False  # the due date printed only as payment terms ("within 30 days")
        # the day of the delivery or service the letter and the item notes name (before the invoice's
        # date, and named as often as there are notes: a repeated date is not the invoice's for that)
        self.served = date(2014, 1, 1)
        self.logo_only = False  # the letterhead is a logo: the issuer's name and address only in the footer's line

    def put(self, text: str, x: float, y: float, scale: float = 1.0, right: bool = False) -> float:
        """A piece at ``x`` (its right edge with ``right``) and top ``y``; returns the next line's y."""
        size = self.size * scale
        w = len(text) * size * 0.52
        x0 = x - w if right else x
        self.pieces.append((text, [round(x0, 1), round(y, 1), round(x0 + w, 1), round(y + size * 1.2, 1)]))
        return y + size * self.rng.uniform(1.3, 1.6)

    def pair(self, label: str, value: str, x: float, y: float, value_x: float | None, colon: bool) -> float:
        """A label and its value: one piece ("Label: value"), or two parted by a gap."""
        label = f"{label}:" if colon else label
        if value_x is None:
            return self.put(f"{label} {value}", x, y)
        self.put(label, x, y)
        return self.put(value, value_x, y, right=self.rng.random() < 0.5)


def invoice_page(rng: random.Random, fmt: Any, date_text: Any) -> tuple[list[tuple[str, list[float]]], dict[str, Any]]:
    """(pieces, truth) of one generated invoice. ``fmt(amount, style)`` and ``date_text(rng, d,
    style)`` print amounts and dates as the receipt generator does."""
    lang = rng.choice(["de", "de", "en", "fr"])
    words = LABELS[lang]
    pick = rng.choice
    code, sign, style = pick([("EUR", "€", "eu"), ("EUR", "EUR", "eu"), ("EUR", "", "eu"), ("GBP", "£", "us"),
                              ("USD", "$", "us"), ("CHF", "CHF", "ch")])
    if lang == "en" and style == "eu" and rng.random() < 0.5:
        style = "us"
    s = Sheet(rng)
    vendor, customer = _company(rng, lang), (_company(rng, lang) if rng.random() < 0.7 else _person(rng))
    vaddr, caddr = _address(rng, lang), _address(rng, lang)
    issued = date(2014, 1, 1) + timedelta(days=rng.randint(0, 4000))
    due = issued + timedelta(days=pick([10, 14, 30, 60])) if rng.random() < 0.75 else None
    s.served = issued - timedelta(days=rng.randint(1, 40))
    number = pick([f"{rng.randint(100000, 9999999)}", f"RE-{issued.year}{rng.randint(1000, 9999)}",
                   f"F{issued.year}-{rng.randint(10, 9999):04d}", f"INV-{rng.randint(1000, 99999)}",
                   f"{issued.year}-{rng.randint(100, 9999)}", f"{issued.year}{rng.randint(10**5, 10**7)}"])
    truth: dict[str, Any] = {"vendor": vendor, "vendor_address": ", ".join(vaddr), "customer": customer,
                             "invoice_number": number, "invoice_date": issued.isoformat(),
                             "due_date": due.isoformat() if due else None, "currency": code}
    margin, right_col = rng.uniform(35, 60), s.width * rng.uniform(0.55, 0.65)
    y = rng.uniform(30, 60)
    vendor_right = rng.random() < 0.35  # the issuer's block in the right-hand column, else a letterhead at the left
    side = not vendor_right and rng.random() < 0.3  # the issuer's and the recipient's blocks side by side, labelled
    # letterhead or issuer's block
    vx = right_col if vendor_right else margin
    vy = y
    # a logo for a letterhead (no text): the issuer is named only in the footer's line, and perhaps the sender's line
    s.logo_only = not side and not vendor_right and rng.random() < 0.12
    if s.logo_only:
        vy += rng.uniform(30, 60)
    elif not side and rng.random() < 0.2:  # a one-line letterhead: the name, the street and the town on one line
        vy = s.put(pick([" · ", " - ", " | ", ", "]).join([vendor] + vaddr), margin, vy, pick([0.8, 1.0, 1.2]))
    else:
        if side or rng.random() < 0.25:
            vy = s.put(pick(words["seller"]), vx, vy, 0.85)
        scale = rng.choice([1.0, 1.3, 1.6])
        words_of = vendor.split(" ")
        if len(words_of) >= 3 and rng.random() < 0.15:  # a long name broken over two lines
            cut = rng.randint(1, len(words_of) - 1)
            vy = s.put(" ".join(words_of[:cut]), vx, vy, scale)
            vy = s.put(" ".join(words_of[cut:]), vx, vy, scale)
        else:
            vy = s.put(vendor, vx, vy, scale)
        for line in vaddr + ([words["country"]] if rng.random() < 0.3 else []):
            vy = s.put(line, vx, vy)
    if rng.random() < 0.5 and not s.logo_only:
        vy = s.put(f"{pick(['Tel.', 'Phone', 'Tél.', 'Telefon'])} +{rng.randint(30, 49)} {rng.randint(100, 999)} "
                   f"{rng.randint(10000, 99999)}", vx, vy)
    # the recipient: under a label, or in a window envelope under the sender's small line
    cy = max(y + 100, vy + 12) if not vendor_right else y + rng.uniform(70, 110)
    if vendor_right and rng.random() < 0.3:  # the two blocks side by side at the top, neither labelled
        cy = y
    cx = margin + rng.uniform(0, 20)
    if side:
        cx, cy = s.width * rng.uniform(0.28, 0.36), y
        cy = s.put(pick(words["bill_to"]), cx, cy, 0.85)
    elif rng.random() < 0.55:  # the sender's line, the name often without its legal form
        short = vendor.rsplit(" ", 1)[0] if rng.random() < 0.4 and " " in vendor else vendor
        cy = s.put(pick([" · ", ", ", " - "]).join([short] + vaddr), cx, cy, 0.65)
    elif rng.random() < 0.6:
        cy = s.put(pick(words["bill_to"]) + rng.choice(["", ":"]), cx, cy, 0.9)
    salutation = pick(words["salutation"])
    if salutation and rng.random() < 0.5:
        cy = s.put(salutation, cx, cy)
    cy = s.put(customer, cx, cy)
    if rng.random() < 0.35 and customer[0] not in FIRST:  # a contact person under the company's name
        cy = s.put(pick(["", "", "z. Hd. ", "Attn: ", "c/o "]) + _person(rng), cx, cy)
    for line in caddr + ([words["country"]] if rng.random() < 0.3 else []):
        cy = s.put(line, cx, cy)
    # the invoice's facts: a column of label/value pairs at the right (or under the title)
    letter_date = rng.random() < 0.2  # the date alone at the right, as a letter is dated
    meta = [(pick(words["number"]), number)] + ([] if letter_date else [(pick(words["date"]),
                                                                        date_text(rng, issued, style))])
    s.due_in_terms = bool(due) and rng.random() < 0.3
    if due and not s.due_in_terms:
        meta.append((pick(words["due"]), date_text(rng, due, style)))
    if rng.random() < 0.5:
        meta.append((pick(words["customer_no"]), f"{rng.randint(1000, 99999)}"))
    if rng.random() < 0.4:
        meta.append((pick(words["delivery"]), date_text(rng, issued - timedelta(days=rng.randint(0, 9)), style)))
    others = words["other_ids"] + ([rng.choice(words["plain_ids"])] if rng.random() < 0.3 else [])
    for label in rng.sample(others, k=rng.choice([0, 1, 1, 2, 3])):  # numbers that are not the invoice's
        meta.append((label, pick([f"{rng.choice('ABLPK')}{rng.randint(10**5, 10**10)}",
                                  f"DE{rng.randint(10**8, 10**9)}", f"{rng.randint(1000, 999999)}",
                                  f"{issued.year}-{rng.randint(10, 9999)}", _long_reference(rng)])))
    rng.shuffle(meta)
    mx = margin if vendor_right else right_col
    my = (cy + 20) if vendor_right else y + rng.uniform(60, 120)
    value_x = None if rng.random() < 0.35 else (s.width - margin if rng.random() < 0.5 else mx + rng.uniform(90, 130))
    colon = rng.random() < 0.5
    if rng.random() < 0.6:
        my = s.put(pick(words["title"]), mx, my, rng.choice([1.2, 1.5]))
    above = rng.random() < 0.15 and value_x is not None  # labels printed over their values, side by side
    if above:
        start = min(mx, s.width - margin - len(meta) * 110)
        for k, (label, value) in enumerate(meta):
            s.put(label, start + k * 110, my, 0.85)
            s.put(value, start + k * 110, my + s.size * 1.4)
        my += s.size * 3.2
    else:
        for label, value in meta:
            my = s.pair(label, value, mx, my, value_x if value_x is None or value_x > mx + len(label) * s.size * 0.6
                        else None, colon)
    ky = _contact_block(s, rng, words, right_col, (vy if vendor_right else my) + 12) if rng.random() < 0.35 else 0.0
    table_y = max(cy, my, vy, ky) + rng.uniform(25, 60)
    if letter_date:
        town = f"{rng.choice(CITIES[lang])}, " + ("den " if lang == "de" and rng.random() < 0.5 else "") \
            if rng.random() < 0.5 else ""
        if town and rng.random() < 0.4:  # the town and its date parted by a gap: two pieces
            s.put(town.strip(), s.width * 0.55, table_y - 12)
            s.put(date_text(rng, issued, style), s.width - margin, table_y - 12, right=True)
        else:
            s.put(town + date_text(rng, issued, style), s.width - margin, table_y - 12, right=True)
        table_y += 8
    if rng.random() < 0.4:  # the letter's opening words before the items
        for text in words["letter"][:2] if rng.random() < 0.6 else words["letter"][2:]:
            table_y = s.put(text.format(date=date_text(rng, s.served, style)), margin, table_y)
        table_y += s.size * 1.5
    return _body(s, rng, lang, truth, table_y, margin, fmt, style, sign, due, date_text)


def _long_reference(rng: random.Random) -> str:
    """A long number printed among the invoice's facts that is not its number: an article's GTIN,
    a vehicle's identification number, a bank's reference."""
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    return rng.choice([str(rng.randint(10**12, 10**13 - 1)),
                       "".join(rng.choice(letters + "0123456789") for _ in range(17)),
                       f"{rng.choice(letters)}{rng.randint(10**13, 10**15)}{rng.randint(100, 999)}"])


def _contact_block(s: Sheet, rng: random.Random, words: dict[str, Any], x: float, y: float) -> float:
    """A contact's block beside the recipient's (a person, a phone, an e-mail): not the customer."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    y = s.put(rng.choice(words["contact"]) + rng.choice(["", ":"]), x, y, 0.9)
    y = s.put(f"{first} {last}", x, y)
    y = s.put(f"{rng.choice(['Tel.', 'Phone', 'Tél.'])} +{rng.randint(30, 49)} {rng.randint(100, 999)} "
              f"{rng.randint(10000, 99999)}", x, y)
    return s.put(f"{first.lower()}.{last.lower()}@{rng.choice(COMPANY).lower()}.example", x, y)


def truth_date(truth: dict[str, Any]) -> date:
    return date.fromisoformat(truth["invoice_date"])


def _body(s: Sheet, rng: random.Random, lang: str, truth: dict[str, Any], y: float, margin: float,
          fmt: Any, style: str, sign: str, due: date | None, date_text: Any) -> tuple[list, dict[str, Any]]:
    """The items, the totals and a tax table under the header."""
    words = LABELS[lang]
    pick = rng.choice

    def money(a: float) -> str:
        text = fmt(a, style)
        return (f"{text} {sign}" if style == "eu" else f"{sign}{text}") if sign and rng.random() < 0.5 else text
    cols = [margin, margin + 40, s.width * 0.55, s.width * 0.68, s.width - margin]
    head = words["items"]
    for k, x in enumerate(cols):
        s.put(head[k], x, y, 0.9, right=k >= 3)
    y += s.size * 1.8
    rates = rng.choice([[0.19], [0.2], [0.07, 0.19], [0.1, 0.2], [0.0], [0.19], [0.055, 0.2], [0.21], [0.07, 0.19]])
    net: dict[float, float] = {}
    decimal_qty = rng.random() < 0.5  # quantities printed as amounts ("1,00", "20,0000 Stk.")
    unit = pick(["", "", " Stk.", " pcs", " h", " PCE", " Unit(s)"])
    for k in range(rng.choice([1, 2, 2, 3, 3, 4, 5, 6, 8, 10, 12])):
        qty = rng.choice([1, 1, 1, 2, 3, 5, 10]) if rng.random() < 0.5 else rng.randint(1, 40)
        price, rate = round(rng.uniform(1, 600), 2), rng.choice(rates)
        amount = round(qty * price, 2)
        net[rate] = net.get(rate, 0.0) + amount
        s.put(str(k + 1), cols[0], y)
        s.put(rng.choice(ITEMS), cols[1], y)
        s.put((fmt(qty, style) + rng.choice(["", "00"]) if decimal_qty else str(qty)) + unit, cols[2], y)
        s.put(fmt(price, style), cols[3], y, right=True)
        y = s.put(money(amount), cols[4], y, right=True)
        if rng.random() < 0.3:  # a note under the item's description
            note = pick(words["notes"]).format(n=rng.randint(1000, 99999), k=rng.randint(2, 9),
                                               date=date_text(rng, s.served, style))
            y = s.put(note, cols[1] + rng.choice([0, 10]), y, 0.9)
    goods = round(sum(net.values()), 2)
    # a discount or a charge on the whole invoice between the items' sum and the net the tax is on
    adjust = round(goods * rng.choice([-0.1, -0.05, -0.03, 0.02]), 2) if rng.random() < 0.2 else 0.0
    if adjust:
        top = max(net, key=lambda r: net[r])
        net[top] = round(net[top] + adjust, 2)
    subtotal = round(sum(net.values()), 2)
    taxes = {r: round(v * r, 2) for r, v in net.items()}
    tax = round(sum(taxes.values()), 2)
    total = round(subtotal + tax, 2)
    truth.update(subtotal=subtotal, tax=tax if tax else None, total=total)
    y += s.size * rng.uniform(1, 3)
    label_x = rng.choice([margin, s.width * 0.5, s.width * 0.6])
    rows = [(rng.choice(words["goods"]), goods), (rng.choice(words["discount" if adjust < 0 else "charge"]), adjust)] \
        if adjust else []
    rows.append((rng.choice(words["subtotal"]), subtotal))
    if tax and len(taxes) > 1 and rng.random() < 0.5:  # tax printed per rate only, its sum nowhere
        label = rng.choice(words["tax"])
        rows.extend((f"{label} {r * 100:g}%", v) for r, v in taxes.items())
    elif tax:
        rate_text = " / ".join(f"{r * 100:g}%" for r in taxes) if rng.random() < 0.5 else ""
        rows.append((f"{rng.choice(words['tax'])} {rate_text}".strip(), tax))
    rows.append((rng.choice(words["total"]), total))
    if rng.random() < 0.2:  # the totals side by side, each label over its amount
        xs = [s.width * f for f in sorted(rng.sample([0.35, 0.45, 0.55, 0.65, 0.75], k=len(rows) - 1))] + \
            [s.width - margin]
        for (label, amount), x in zip(rows, xs):
            s.put(label, x, y, 0.9, right=True)
            s.put(money(amount), x, y + s.size * 1.5, right=True)
        return _footer(s, rng, lang, truth, y + s.size * 4, margin, style, due, date_text)
    table = tax and rng.random() < 0.45
    # the totals printed only as the tax table's cells: net, tax and gross per rate, and a sum row under them
    table_only = table and rng.random() < 0.3
    for label, amount in ([] if table_only else rows[:3 if adjust else 1] if table else rows):
        s.put(label, label_x, y, 1.1 if amount == total else 1.0)
        y = s.put(money(amount), cols[4], y, 1.1 if amount == total else 1.0, right=True)
    if table:  # a tax table: one row per rate with its net, tax and gross, then the total
        y += s.size
        head = rng.choice(words["table"])
        xs = [margin, margin + 90, margin + 180, margin + 270] if rng.random() < 0.5 else \
            [s.width * 0.4, s.width * 0.55, s.width * 0.7, s.width - margin]
        for k, x in enumerate(xs):
            s.put(head[k], x, y, 0.9, right=k > 0)
        y += s.size * 1.5
        for r, v in net.items():
            cells = [f"{r * 100:g} %", money(v), money(taxes[r]), money(round(v + taxes[r], 2))]
            for k, x in enumerate(xs):
                s.put(cells[k], x, y, right=k > 0)
            y += s.size * 1.5
        if len(net) > 1 and (table_only or rng.random() < 0.5):  # a sum row under the rates: net, tax and gross
            cells = [pick(words["sum_row"]), money(subtotal), money(tax), money(total)]
            for k, x in enumerate(xs):
                s.put(cells[k], x, y, right=k > 0)
            y += s.size * 1.5
        if not table_only and (len(net) > 1 or rng.random() < 0.5):
            s.put(rows[-1][0], label_x, y + s.size * 0.5, 1.1)
            y = s.put(money(total), cols[4], y + s.size * 0.5, 1.1, right=True)
    return _footer(s, rng, lang, truth, y + s.size * 2, margin, style, due, date_text)


def _footer(s: Sheet, rng: random.Random, lang: str, truth: dict[str, Any], y: float, margin: float, style: str,
            due: date | None, date_text: Any) -> tuple[list, dict[str, Any]]:
    words = LABELS[lang]
    # terms name days only when there is a due date, and its days; "{due}" only when it is printed
    terms = [t for t in words["terms"] if due or "{" not in t]
    if s.due_in_terms:
        terms = [t for t in terms if "{days}" in t and "{due}" not in t]
    days = (due - truth_date(truth)).days if due else 0
    for text in rng.sample(terms, k=1 if s.due_in_terms else min(2, len(terms))):
        # beside the date it gives, a term's days may be counted differently (the printed date is the due date)
        shown = days + 1 if "{due}" in text and rng.random() < 0.3 else days
        early = min(rng.choice([7, 8, 10, 14]), max(days - 1, 1))  # a cash discount's days, before the due date
        y = s.put(text.format(due=date_text(rng, due, style) if due else "", days=shown, pct=rng.choice([2, 3]),
                              sdays=early, sdue=date_text(rng, truth_date(truth) + timedelta(days=early), style)),
                  margin, y)
    if rng.random() < 0.3:  # a date printed again: the invoice's own (a payment reference), which is no due
        # date, or as often the delivery's, so that a date printed twice is not the invoice's for that
        own = rng.random() < 0.35  # real pages repeat service, delivery and due dates more often than their own
        again = rng.choice(words["again" if own else "again_other"]).format(
            number=truth["invoice_number"], date=date_text(rng, truth_date(truth) if own else s.served, style))
        y = s.put(again, margin, y, rng.choice([1.0, 0.8]))
    iban = f"IBAN {truth['currency'][:2]}{rng.randint(10, 99)} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}"
    if s.logo_only or rng.random() < 0.15:  # the footer as one line: the legal name, its address, the register
        register = [t.format(city=rng.choice(CITIES[lang]), n=rng.randint(1000, 99999), person=_person(rng))
                    for t in rng.sample(words["register"], k=rng.choice([1, 2]))]
        sep = rng.choice([" · ", " - ", " | ", ", ", " • "])
        parts = [truth["vendor"], *truth["vendor_address"].split(", ")]
        if rng.random() < 0.5:
            parts += register
        fy = s.put(sep.join(parts), margin, y + 30, rng.choice([0.6, 0.7, 0.8]))
        s.put(sep.join((register if len(parts) == 3 else []) + [iban]), margin, fy, 0.7)
        return s.pieces, truth
    if rng.random() < 0.5:  # a footer of columns: the legal name and address, the register, the bank
        columns = [[truth["vendor"], *truth["vendor_address"].split(", ")],
                   [t.format(city=rng.choice(CITIES[lang]), n=rng.randint(1000, 99999), person=_person(rng))
                    for t in rng.sample(words["register"], k=rng.choice([2, 3]))],
                   [iban, f"BIC {rng.choice(['DEUT', 'COBA', 'BNPA', 'BARC'])}{COUNTRY_LABEL[lang]}FFXXX"]]
        for k, column in enumerate(columns):
            fy = y + 30
            for text in column:
                fy = s.put(text, margin + k * (s.width - 2 * margin) / 3, fy, 0.7)
        return s.pieces, truth
    if rng.random() < 0.15:  # when the page was printed, in small print (not the invoice's date)
        printed = truth_date(truth) - timedelta(days=rng.randint(1, 6))
        clock = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
        s.put(rng.choice(words["printed"]).format(date=date_text(rng, printed, style), time=clock),
              s.width - margin, y + 50, 0.5, right=True)
    foot = [iban, f"{COUNTRY_LABEL[lang]}{rng.randint(100000000, 999999999)}",
            truth["vendor"] if rng.random() < 0.5 else "www.example.com"]
    for k, text in enumerate(foot):
        s.put(text, margin + k * (s.width - 2 * margin) / 3, y + 30, 0.75)
    return s.pieces, truth


def as_rows(pieces: list[tuple[str, list[float]]], joined: bool) -> list[tuple[str, list[float]]]:
    """Pieces in reading order (rows top to bottom, left to right); with ``joined`` each row as
    one line, as OCR gives it."""
    rows: list[list[tuple[str, list[float]]]] = []
    for text, box in sorted(pieces, key=lambda p: (p[1][1] + p[1][3]) / 2):
        middle = (box[1] + box[3]) / 2
        if rows and rows[-1][0][1][1] <= middle <= rows[-1][0][1][3]:
            rows[-1].append((text, box))
        else:
            rows.append([(text, box)])
    out = []
    for row in rows:
        row.sort(key=lambda p: p[1][0])
        if joined:
            out.append((" ".join(t for t, _ in row), [min(b[0] for _, b in row), min(b[1] for _, b in row),
                                                       max(b[2] for _, b in row), max(b[3] for _, b in row)]))
        else:
            out.extend(row)
    return out
