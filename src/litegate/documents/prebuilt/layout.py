"""A page as lines with boxes, for extractors that read layout: where a line sits on its page,
how tall its text is, and which general keyword groups it holds (TOTAL, SUBTOTAL, TAX, CASH,
CHANGE, ROUNDING, ...), in the languages receipts and invoices are commonly printed in."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# Keyword groups: words that label a value on receipts and invoices. General vocabulary of the
# trade in several languages, never the wording of one shop or template.
KEYWORDS: dict[str, tuple[str, ...]] = {
    "subtotal": ("subtotal", "sub total", "sub-total", "zwischensumme", "sous-total", "sous total", "subtotaal",
                 "total before tax", "net amount", "netto", "nettobetrag", "net total", "sub ttl", "subttl",
                 # the net amount of an invoice (before tax) in the words of the trade
                 "total ht", "montant ht", "total hors taxes", "total hors taxe", "base ht", "gesamt netto",
                 "summe netto", "total net", "total excl. vat", "total excl vat", "taxable amount", "net value",
                 "nettowert", "warenwert", "total excluding tax", "importe neto", "base imponible"),
    "total": ("total", "grand total", "amount due", "balance due", "total due", "to pay", "summe", "gesamt",
              "gesamtbetrag", "zu zahlen", "endbetrag", "zahlbetrag", "rechnungsbetrag", "jumlah", "total bayar",
              "montant", "a payer", "à payer", "importe", "totale", "amount payable", "ttl", "total amount",
              "brutto", "betrag", "invoice total", "net payable", "totaal", "ukupno", "razem", "celkem", "toplam",
              "yhteensä"),
    "tax": ("tax", "vat", "gst", "sst", "mwst", "mw st", "ust", "steuer", "ppn", "pajak", "tva", "iva", "pb1",
            "service tax", "sales tax", "tax amount",
            # a tax amount's label that holds a word of the total's ("total VAT", "MwSt-Betrag")
            "total tva", "total vat", "total tax", "vat total", "tax total", "total taxes", "montant tva", "vat amount",
            "mwst-betrag", "mwst betrag", "ust-betrag", "ust betrag", "steuerbetrag", "umsatzsteuer", "mehrwertsteuer",
            "total iva", "cuota iva"),
    "cash": ("cash", "tunai", "bar", "espèces", "especes", "efectivo", "tender", "paid", "payment", "gegeben",
             "visa", "mastercard", "master card", "amex", "girocard", "ec-karte", "ec karte", "kartenzahlung",
             "debit", "credit", "card", "kredit", "contactless", "kontaktlos", "bezahlt"),
    "change": ("change", "kembali", "kembalian", "rückgeld", "rueckgeld", "ruckgeld", "zurück", "zuruck",
               "rendu", "cambio", "wechselgeld", "change due"),
    "rounding": ("rounding", "round", "rounded", "rnd", "pembulatan", "rundung", "adj", "adjustment"),
    "discount": ("discount", "disc", "rabatt", "diskon", "promo", "savings", "you saved", "coupon", "nachlass",
                 "remise", "voucher"),
    "tip": ("tip", "tips", "gratuity", "trinkgeld", "service charge", "pourboire", "propina"),
    "quantity": ("qty", "quantity", "stk", "pcs", "menge", "anzahl", "@"),
    "items": ("items", "item(s)", "artikel", "positionen", "article"),
    "date": ("date", "datum", "tanggal", "tgl", "fecha", "data", "dated", "invoice date", "rechnungsdatum",
             "date of issue", "issued"),
    # labels only the invoice's own date carries (not a delivery's, an order's or a service period's)
    "issued": ("invoice date", "rechnungsdatum", "rechnungs-datum", "belegdatum", "beleg-datum", "date of issue",
               "issue date", "date de facture", "date d'émission", "date de la facture", "fecha de factura",
               "fecha de emisión", "ausstellungsdatum", "invoice dated", "data fattura"),
    # dates of a delivery or a service period, printed beside the invoice's own
    "period": ("leistungsdatum", "leistungs-datum", "lieferdatum", "liefer-datum", "leistungszeitraum",
               "abrechnungszeitraum", "rechnungszeitraum", "delivery date", "service date", "service period",
               "date de livraison", "période", "period", "zeitraum", "fecha de entrega", "date of supply",
               "tax point", "start date", "end date", "leistungsbeginn", "leistungsende", "date début",
               "date de début", "date debut", "date de debut", "date fin", "date de fin", "fecha de inicio",
               "fecha de fin"),
    "due": ("due", "due date", "payment due", "fällig", "faellig", "zahlbar bis", "pay by", "échéance",
            "vencimiento", "jatuh tempo", "fälligkeit", "fälligkeitsdatum", "fälligkeitstag", "faelligkeit",
            "zahlungstermin", "payable by", "due on", "date limite de paiement", "scadenza"),
    "expiry": ("exp", "expiry", "expires", "valid", "gültig", "gueltig", "until", "bis"),
    "time": ("time", "zeit", "uhr", "jam", "hora", "heure"),
    "phone": ("tel", "tel.", "telephone", "phone", "ph", "fon", "telefon", "telp", "hp", "mobile", "fax"),
    "invoice_no": ("invoice no", "invoice number", "invoice #", "invoice:", "inv no", "inv#", "rechnung nr",
                   "rechnungsnummer", "rechnungs-nr", "facture n", "factura n", "no. faktur", "bill no",
                   "receipt no", "document no", "beleg-nr", "belegnummer", "beleg nr", "rechnungs-nr.",
                   "n° de facture", "numéro de facture", "facture n°", "invoice no.", "invoice", "rechnung",
                   "facture", "factura", "belegnr", "rechnungsnr", "invoice id", "invoice ref"),
    # a number's label that says nothing of what is numbered (Nr, No., #)
    "number": ("number", "nr", "nr.", "no", "no.", "nº", "n°", "#", "nummer", "numéro", "numero", "num"),
    # numbers printed on invoices that are not the invoice's: orders, delivery notes, customers, tax ids
    "other_ref": ("order", "bestell", "bestellung", "bestellnummer", "bestell-nr", "auftrag", "auftragsnummer",
                  "auftrags-nr", "lieferschein", "lieferschein-nr", "delivery note", "delivery", "commande",
                  "bon de commande", "bon de livraison", "livraison", "pedido", "albarán", "customer no",
                  "customer number", "kundennummer", "kunden-nr", "kunden-nr.", "n° client", "code client",
                  "account", "konto", "vat id", "vat no", "ust-idnr", "ust-id", "ust.-id", "steuernummer", "steuer-nr",
                  "siret", "siren", "tva intracom", "iban", "bic", "gln", "ean", "gtin", "reference", "référence",
                  "referenz", "your ref", "ihre referenz", "po", "p.o.", "contract", "vertrag", "projekt", "project",
                  "tender", "marché", "associated", "associée", "original invoice", "ursprungsrechnung"),
    "customer": ("bill to", "billed to", "sold to", "ship to", "customer", "client", "kunde", "rechnungsempfänger",
                 "invoice to", "to:", "attn", "buyer", "käufer", "kaeufer", "empfänger", "acheteur", "destinataire",
                 "adresse de facturation", "facturé à", "cliente", "warenempfänger", "lieferanschrift",
                 "lieferadresse", "delivery address", "adresse de livraison", "deliver to"),
    # labels of the issuer's block on an invoice (the vendor's name follows them)
    "vendor": ("seller", "vendor", "supplier", "from:", "lieferant", "verkäufer", "verkaeufer", "rechnungssteller",
               "rechnungsersteller", "absender", "fournisseur", "vendeur", "émetteur", "proveedor", "vendedor"),
    # words that open a recipient's block on a letter (the name follows them)
    "salutation": ("herrn", "herr", "frau", "firma", "mr", "mr.", "mrs", "mrs.", "ms", "ms.", "monsieur", "madame",
                   "mme", "z. hd.", "z.hd.", "c/o"),
    # lines of a receipt's head that name the sale or the service, not the shop
    "service": ("sale", "dine in", "dine-in", "eat in", "eat-in", "take out", "takeout", "take away", "carry out",
                "to go", "drive thru", "pickup", "pick up", "table", "tisch", "meja", "guest", "guests", "server",
                "cashier", "kasir", "kassierer", "seat", "order", "reprint", "duplicate", "customer copy",
                "merchant copy", "void", "refund", "return", "class", "lane", "pump", "check", "chk", "terminal",
                "register", "reg", "station", "trans", "transaction"),
    "header": ("receipt", "invoice", "tax invoice", "kassenbon", "rechnung", "quittung", "bill", "copy",
               "customer copy", "welcome", "willkommen", "thank you", "danke", "order", "struk", "nota", "facture",
               "factura", "bon", "beleg", "kassenbeleg"),
    "street": ("street", "st.", "road", "rd", "rd.", "jalan", "jln", "jl", "jl.", "str", "str.", "straße", "strasse",
               "avenue", "ave", "blvd", "boulevard", "lane", "ln", "platz", "weg", "allee", "via", "rue", "calle",
               "taman", "lot", "no.", "suite", "floor", "drive", "dr", "way", "ring", "damm", "gasse", "plaza",
               "highway", "hwy", "court", "ct", "place", "pl", "square", "centre", "center", "mall", "park"),
    "company": ("gmbh", "ltd", "limited", "inc", "llc", "sdn bhd", "bhd", "pt", "pt.", "co.", "corp", "ag", "kg",
                "ohg", "e.k.", "s.a.", "sarl", "srl", "s.l.", "plc", "pty", "bv", "b.v.", "oy", "ab", "company",
                "& co", "enterprise", "trading", "store", "shop", "restaurant", "cafe", "café", "market", "markt",
                "supermarket", "apotheke", "pharmacy", "hotel", "bakery", "bäckerei"),
}
GROUPS = tuple(KEYWORDS)


def _pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = sorted((re.escape(w) for w in words), key=len, reverse=True)
    return re.compile(r"(?<![a-z0-9äöüß])(?:" + "|".join(alternatives) + r")(?![a-z0-9äöüß])")


_PATTERNS = {group: _pattern(words) for group, words in KEYWORDS.items()}


def squash_ocr(text: str) -> str:
    """Lower case with OCR's usual swaps in words undone (T0TAL, SUBT0TAL, 5UMME)."""
    low = text.lower()
    return re.sub(r"(?<=[a-z])0|0(?=[a-z]{2})", "o", re.sub(r"(?<=[a-z])1(?=[a-z])", "l", low))


# a tax named only to say an amount includes or excludes it ("Total incl. VAT", "Netto (exkl. USt.)")
_TAX_QUALIFIER_BEFORE = re.compile(r"(?:inkl|exkl|incl|excl|including|excluding|inclusive|exclusive|ohne|hors|sans|"
                                   r"before|avant|w/o|without)\.?(?:\s+of)?\s*(?:\d+(?:[.,]\d+)?\s*%\s*)?$")
_TAX_COMPOUND = re.compile(r"\b\w+steuer\b")  # German compounds: Umsatzsteuer, Versicherungsteuer
_TAX_QUALIFIER_AFTER = re.compile(r"^\s*(?:incl|inkl|included|inclusive|enthalten)\b")
# "zzgl. MwSt." opens a tax's own line, but after a net's label ("Nettobetrag (zzgl. 19% MwSt.)") it
# only says the net is before tax
_TAX_PLUS_BEFORE = re.compile(r"(?:zzgl|zuzügl|zuzüglich|plus)\.?\s*(?:\d+(?:[.,]\d+)?\s*%\s*)?$")


def keyword_spans(text: str) -> dict[str, list[tuple[int, int]]]:
    """Where each keyword group occurs in ``text``. A "subtotal" is not also a "total"; a tax
    named only as included or excluded is no tax's label; and a total of a tax ("Summe
    Umsatzsteuer", "Total VAT") is the tax, not the total."""
    low = squash_ocr(text)
    raw = {group: [(m.start(), m.end()) for m in pattern.finditer(low)] for group, pattern in _PATTERNS.items()}
    raw["tax"] = sorted(set(raw["tax"]) | {m.span() for m in _TAX_COMPOUND.finditer(low)})
    raw["tax"] = [(a, b) for a, b in raw["tax"] if not _TAX_QUALIFIER_BEFORE.search(low[max(0, a - 16):a])
                  and not _TAX_QUALIFIER_AFTER.match(low[b:b + 12])
                  and not (_TAX_PLUS_BEFORE.search(low[max(0, a - 16):a]) and any(e <= a for _, e in raw["subtotal"]))]
    inside = raw["subtotal"] + [(a, b) for a, b in raw["tax"] if b - a > 4]
    raw["total"] = [] if raw["tax"] else [s for s in raw["total"] if not any(a <= s[0] < b for a, b in inside)]
    return {group: spans for group, spans in raw.items() if spans}


@dataclass
class Line:
    """One line of a page: its text, box ``[x0, y0, x1, y1]`` in page pixels, page number, and
    the keyword groups it holds."""

    text: str
    box: list[float]
    page: int = 1
    index: int = 0
    keywords: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    page_y0: float = 0.0  # the top of the box on its own page (``box`` stacks pages one under another)
    # where it stands among the others: its row (pieces of a text layer's row parted by a wide
    # gap share one), and the nearest piece above and below it in the same column, if any
    row: int = 0
    above: int | None = None
    below: int | None = None

    @property
    def height(self) -> float:
        return max(self.box[3] - self.box[1], 1.0)


@dataclass
class Page:
    """The lines of a document with the page sizes they are measured against. ``boxed``: the
    boxes were measured on the page (OCR, a text layer); plain text's boxes are made up, one unit
    per line, so every line looks the same size and the same distance from the next."""

    lines: list[Line]
    width: float
    height: float
    median_height: float
    rows: list[tuple[int, int]] = field(default_factory=list)  # (first, end) line index of each row
    boxed: bool = True

    def row_left(self, line: Line) -> list[Line]:
        """The piece of the line's row just left of it (a label parted from its value by a gap),
        if any; farther pieces of the row belong to other columns."""
        first, _ = self.rows[line.row] if self.rows else (line.index, line.index)
        return [p for p in self.lines[max(first, line.index - 1):line.index] if len(p.text) <= LABEL_CHARS]

    def row_lines(self, row: int) -> list[Line]:
        if not self.rows or not 0 <= row < len(self.rows):
            return []
        first, end = self.rows[row]
        return self.lines[first:end]

    def y_rel(self, line: Line) -> float:
        return min(max((line.box[1] + line.box[3]) / 2 / self.height, 0.0), 1.0)

    def x_rel(self, x: float) -> float:
        return min(max(x / self.width, 0.0), 1.0)


_MARKER = re.compile(r"^\[(?:file \d+|end of file \d+|note)[:\]]", re.IGNORECASE)


def _page(lines: list[Line], boxed: bool = True) -> Page:
    for i, line in enumerate(lines):
        line.index = i
        line.keywords = keyword_spans(line.text)
    if not lines:
        return Page([], 1.0, 1.0, 1.0, boxed=boxed)
    heights = sorted(line.height for line in lines)
    page = Page(lines, max(max(line.box[2] for line in lines), 1.0), max(max(line.box[3] for line in lines), 1.0),
                heights[len(heights) // 2], boxed=boxed)
    _link(page)
    return page


COLUMN_LOOKUP_ROWS = 4  # how many rows up (or down) a piece's column neighbour may be
LABEL_CHARS = 40  # a longer piece is text of its own (a footer, a sentence), not a value's label


def _link(page: Page) -> None:
    """Rows (a piece continuing the row of the one before it: same page, its middle inside that
    one's height, to its right) and each piece's nearest neighbours above and below in the same
    column (horizontal overlap, with a little slack for ragged alignment)."""
    lines, rows = page.lines, []
    first = 0
    for i in range(1, len(lines) + 1):
        if i == len(lines) or not _same_row(lines[i - 1], lines[i]):
            rows.append((first, i))
            first = i
    for r, (a, b) in enumerate(rows):
        for line in lines[a:b]:
            line.row = r
    page.rows = rows
    slack = page.median_height / 2
    for line in lines:
        for r in range(line.row - 1, max(line.row - 1 - COLUMN_LOOKUP_ROWS, -1), -1):
            hit = next((o for o in page.row_lines(r) if o.page == line.page and
                        min(o.box[2], line.box[2]) + slack > max(o.box[0], line.box[0])), None)
            if hit is not None:
                line.above = hit.index
                if hit.below is None:
                    hit.below = line.index
                break


def _same_row(prev: Line, line: Line) -> bool:
    middle = (line.box[1] + line.box[3]) / 2
    return line.page == prev.page and prev.box[1] <= middle <= prev.box[3] and line.box[0] >= prev.box[2] - 1.0


def from_text(text: str) -> Page:
    """Lines of plain text, each given a box of one unit per line and character: without real
    boxes, position on the page is the line's place in the text, and the page is not ``boxed``
    (no line's print size or spacing is known)."""
    lines: list[Line] = []
    for raw in text.splitlines():
        if not raw.strip() or _MARKER.match(raw.strip()):
            continue
        y = float(len(lines))
        indent = len(raw) - len(raw.lstrip())
        lines.append(Line(raw.strip(), [float(indent), y, float(len(raw.rstrip())), y + 1.0], page_y0=y))
    return _page(lines, boxed=False)


def from_document(doc: Any) -> Page:
    """Lines of a read document: its segments with boxes (OCR'd pages) and the positioned lines
    of text-layer pages, pages stacked top to bottom (a receipt is one page; an invoice's
    totals are at the end of its last page)."""
    boxed = [(s.page, s.text, s.box) for s in doc.segments if s.box is not None and s.text.strip()]
    if any(getattr(s, "lines", None) for s in doc.segments):
        boxed = [(s.page, t, b) for s in doc.segments
                 for t, b in (s.lines or ([(s.text, s.box)] if s.box is not None else [])) if t.strip()]
    if not boxed:
        return from_text(doc.text)
    lines, offset, page, bottom = [], 0.0, None, 0.0
    for seg_page, seg_text, box in boxed:
        if seg_page != page:
            offset, page = bottom, seg_page
        x0, y0, x1, y1 = box
        for k, part in enumerate(p for p in seg_text.splitlines() if p.strip()):
            lines.append(Line(part.strip(), [x0, y0 + offset + k, x1, y1 + offset + k], seg_page or 1, page_y0=y0 + k))
        bottom = max(bottom, y1 + offset)
    return _page(lines)
