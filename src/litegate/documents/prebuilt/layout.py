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
                 "total before tax", "net amount", "netto", "nettobetrag", "net total", "sub ttl", "subttl"),
    "total": ("total", "grand total", "amount due", "balance due", "total due", "to pay", "summe", "gesamt",
              "gesamtbetrag", "zu zahlen", "endbetrag", "zahlbetrag", "rechnungsbetrag", "jumlah", "total bayar",
              "montant", "a payer", "à payer", "importe", "totale", "amount payable", "ttl", "total amount",
              "brutto", "betrag", "invoice total", "net payable"),
    "tax": ("tax", "vat", "gst", "sst", "mwst", "mw st", "ust", "steuer", "ppn", "pajak", "tva", "iva", "pb1",
            "service tax", "sales tax", "tax amount"),
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
    "due": ("due", "due date", "payment due", "fällig", "faellig", "zahlbar bis", "pay by", "échéance",
            "vencimiento", "jatuh tempo"),
    "expiry": ("exp", "expiry", "expires", "valid", "gültig", "gueltig", "until", "bis"),
    "time": ("time", "zeit", "uhr", "jam", "hora", "heure"),
    "phone": ("tel", "tel.", "telephone", "phone", "ph", "fon", "telefon", "telp", "hp", "mobile", "fax"),
    "invoice_no": ("invoice no", "invoice number", "invoice #", "invoice:", "inv no", "inv#", "rechnung nr",
                   "rechnungsnummer", "rechnungs-nr", "facture n", "factura n", "no. faktur", "bill no",
                   "receipt no", "document no", "number", "nr", "no.", "beleg-nr", "belegnummer", "beleg nr",
                   "rechnungs-nr.", "n° de facture", "numéro de facture", "facture n°", "invoice no."),
    "customer": ("bill to", "billed to", "sold to", "ship to", "customer", "client", "kunde", "rechnungsempfänger",
                 "invoice to", "to:", "attn", "buyer", "käufer", "kaeufer", "empfänger", "acheteur", "destinataire",
                 "adresse de facturation", "facturé à", "cliente"),
    # labels of the issuer's block on an invoice (the vendor's name follows them)
    "vendor": ("seller", "vendor", "supplier", "from:", "lieferant", "verkäufer", "verkaeufer", "rechnungssteller",
               "rechnungsersteller", "absender", "fournisseur", "vendeur", "émetteur", "proveedor", "vendedor"),
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


def keyword_spans(text: str) -> dict[str, list[tuple[int, int]]]:
    """Where each keyword group occurs in ``text`` (a "subtotal" is not also a "total")."""
    low = squash_ocr(text)
    out: dict[str, list[tuple[int, int]]] = {}
    for group, pattern in _PATTERNS.items():
        spans = [(m.start(), m.end()) for m in pattern.finditer(low)]
        if group == "total":
            sub = out.get("subtotal", [])
            spans = [s for s in spans if not any(a <= s[0] < b for a, b in sub)]
        if spans:
            out[group] = spans
    return out


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

    @property
    def height(self) -> float:
        return max(self.box[3] - self.box[1], 1.0)


@dataclass
class Page:
    """The lines of a document with the page sizes they are measured against."""

    lines: list[Line]
    width: float
    height: float
    median_height: float

    def y_rel(self, line: Line) -> float:
        return min(max((line.box[1] + line.box[3]) / 2 / self.height, 0.0), 1.0)

    def x_rel(self, x: float) -> float:
        return min(max(x / self.width, 0.0), 1.0)


_MARKER = re.compile(r"^\[(?:file \d+|end of file \d+|note)[:\]]", re.IGNORECASE)


def _page(lines: list[Line]) -> Page:
    for i, line in enumerate(lines):
        line.index = i
        line.keywords = keyword_spans(line.text)
    if not lines:
        return Page([], 1.0, 1.0, 1.0)
    heights = sorted(line.height for line in lines)
    return Page(lines, max(max(line.box[2] for line in lines), 1.0), max(max(line.box[3] for line in lines), 1.0),
                heights[len(heights) // 2])


def from_text(text: str) -> Page:
    """Lines of plain text, each given a box of one unit per line and character: without real
    boxes, position on the page is the line's place in the text."""
    lines: list[Line] = []
    for raw in text.splitlines():
        if not raw.strip() or _MARKER.match(raw.strip()):
            continue
        y = float(len(lines))
        indent = len(raw) - len(raw.lstrip())
        lines.append(Line(raw.strip(), [float(indent), y, float(len(raw.rstrip())), y + 1.0], page_y0=y))
    return _page(lines)


def from_document(doc: Any) -> Page:
    """Lines of a read document: its segments with boxes, pages stacked top to bottom (a
    receipt is one page; an invoice's totals are at the end of its last page)."""
    boxed = [s for s in doc.segments if s.box is not None and s.text.strip()]
    if not boxed:
        return from_text(doc.text)
    lines, offset, page, bottom = [], 0.0, None, 0.0
    for seg in boxed:
        if seg.page != page:
            offset, page = bottom, seg.page
        x0, y0, x1, y1 = seg.box
        for k, part in enumerate(p for p in seg.text.splitlines() if p.strip()):
            lines.append(Line(part.strip(), [x0, y0 + offset + k, x1, y1 + offset + k], seg.page or 1, page_y0=y0 + k))
        bottom = max(bottom, y1 + offset)
    return _page(lines)
